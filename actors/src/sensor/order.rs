//! Per-sensor decision order: a small reorder buffer that applies a sensor's decisions in the
//! order its windows were sent to the inference pool, whatever order the pool's workers finish
//! them in.
//!
//! Each request gets the next sequence number of its sensor when it is sent ([`Reorder::issue`]).
//! Its answer comes back as a decision, or as word that none will come (the pool shed it on
//! overload, or lost it with a crashed or hung worker); both resolve the number
//! ([`Reorder::resolve`]). Decisions are released in sequence order; one that arrives while an
//! earlier number is unresolved is held.
//!
//! # Design constraints
//! - Never stuck, and no decision held longer than `max_hold`: a request can also vanish
//!   silently (the pool itself restarted with it in its queue). Once a held answer has waited
//!   `max_hold`, the unresolved numbers before it are given up and counted
//!   ([`Reorder::take_skipped`]) and it is released; when more than `max_held` answers are
//!   held, the first gap is given up at once (a memory bound). An answer that arrives after
//!   its number was given up is dropped (a later decision has been applied already), so the
//!   order holds in every case.
//! - No clock of its own: time comes in as an argument, so the bounds are tested with
//!   injected instants. Nothing here knows about actors: the sensor asks for a wake-up
//!   ([`Reorder::wake_after`]) when something is held and calls [`Reorder::expire`] then.
//! - In the common case (answers in order) a decision passes straight through: one comparison,
//!   no map insertion.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A sensor's reorder buffer for items of type `T` (its decisions).
#[derive(Debug)]
pub struct Reorder<T> {
    /// Sequence number the next request gets.
    next_issue: u64,
    /// Sequence number whose answer is released next; everything below it is done.
    next_release: u64,
    /// Answers past an unresolved number, by sequence number.
    held: BTreeMap<u64, Held<T>>,
    /// Longest an answer may be held before the gaps before it are skipped.
    max_hold: Duration,
    /// Most answers held before the first gap is skipped regardless of time.
    max_held: usize,
    /// Whether a wake-up has been asked for and not yet delivered.
    wake_pending: bool,
    /// Sequence numbers given up since the last [`Reorder::take_skipped`].
    skipped: u64,
}

/// One held answer.
#[derive(Debug)]
struct Held<T> {
    /// The decision, or `None` for a request that will not be answered.
    answer: Option<T>,
    /// When it arrived (its hold time counts from here).
    at: Instant,
}

impl<T> Reorder<T> {
    /// An empty buffer with the given bounds (`max_held` at least 1).
    pub fn new(max_hold: Duration, max_held: usize) -> Self {
        Self {
            next_issue: 0,
            next_release: 0,
            held: BTreeMap::new(),
            max_hold,
            max_held: max_held.max(1),
            wake_pending: false,
            skipped: 0,
        }
    }

    /// The sequence number for the next request sent.
    pub fn issue(&mut self) -> u64 {
        let seq = self.next_issue;
        self.next_issue += 1;
        seq
    }

    /// Resolves `seq` with its decision (`Some`) or with word that none will come (`None`),
    /// and returns the decisions now due, in sequence order. Numbers already released or
    /// skipped, numbers never issued, and second answers for a held number are ignored.
    pub fn resolve(&mut self, seq: u64, answer: Option<T>, now: Instant) -> Vec<T> {
        if seq < self.next_release || seq >= self.next_issue {
            return Vec::new();
        }
        let mut out = Vec::new();
        if seq == self.next_release {
            self.next_release += 1;
            out.extend(answer);
            self.drain_ready(&mut out);
            return out;
        }
        self.held.entry(seq).or_insert(Held { answer, at: now });
        if self.held.len() > self.max_held {
            if let Some(&first) = self.held.keys().next() {
                self.release_through(first, &mut out);
            }
        }
        out
    }

    /// Releases every answer that has been held for `max_hold` by `now`, skipping the
    /// unresolved numbers before it, and returns the decisions that releases (in order).
    /// Call it when the wake-up asked for comes; it is cheap when nothing is held.
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let mut out = Vec::new();
        let due = self
            .held
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.at) >= self.max_hold)
            .map(|(&seq, _)| seq)
            .next_back();
        if let Some(last) = due {
            self.release_through(last, &mut out);
        }
        out
    }

    /// Marks a wake-up as delivered and expires what is due, like [`Reorder::expire`].
    pub fn wake(&mut self, now: Instant) -> Vec<T> {
        self.wake_pending = false;
        self.expire(now)
    }

    /// When answers are held and no wake-up is outstanding: how long from `now` until the
    /// oldest of them is due. The caller arranges a call to [`Reorder::wake`] after that
    /// delay; until then this returns `None`.
    pub fn wake_after(&mut self, now: Instant) -> Option<Duration> {
        if self.wake_pending {
            return None;
        }
        let oldest = self.held.values().map(|h| h.at).min()?;
        self.wake_pending = true;
        Some(
            self.max_hold
                .saturating_sub(now.saturating_duration_since(oldest)),
        )
    }

    /// Sequence numbers given up (their answers never came in time) since the last call.
    pub fn take_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.skipped)
    }

    /// Answers held behind a gap.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Requests issued whose answer has not arrived yet (nor been given up).
    pub fn awaited(&self) -> u64 {
        self.next_issue - self.next_release - self.held.len() as u64
    }

    /// Releases every held answer up to and including `last`, giving up the unresolved
    /// numbers between them, then whatever follows contiguously.
    fn release_through(&mut self, last: u64, out: &mut Vec<T>) {
        while let Some(entry) = self.held.first_entry() {
            let seq = *entry.key();
            if seq > last {
                break;
            }
            self.skipped += seq - self.next_release;
            out.extend(entry.remove().answer);
            self.next_release = seq + 1;
        }
        self.drain_ready(out);
    }

    /// Releases held answers from `next_release` on while they are contiguous.
    fn drain_ready(&mut self, out: &mut Vec<T>) {
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != self.next_release {
                break;
            }
            out.extend(entry.remove().answer);
            self.next_release += 1;
        }
    }
}

/// The buffer for a sensor of a pool configured by `cfg`.
///
/// Every way a request can end is reported (see [`crate::inference::Ticket`]), so a decision
/// waits behind an earlier request at most as long as that request's batch runs, or until the
/// pool gives its worker up as hung (`hang_timeout` plus one hang check, a quarter of it).
/// `max_hold` is twice `hang_timeout`, a safety net that normal operation never reaches.
/// `max_held` is what the pool itself may hold (its queue plus one batch per worker).
pub fn for_config<T>(cfg: &crate::config::InferenceConfig) -> Reorder<T> {
    Reorder::new(
        cfg.hang_timeout.get().saturating_mul(2),
        cfg.queue_capacity
            .saturating_add(cfg.workers.saturating_mul(cfg.max_batch)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    const HOLD: Duration = Duration::from_secs(10);

    fn buf() -> Reorder<u64> {
        Reorder::new(HOLD, 100)
    }

    fn issue(r: &mut Reorder<u64>, n: usize) -> Vec<u64> {
        (0..n).map(|_| r.issue()).collect()
    }

    #[test]
    fn in_order_answers_pass_straight_through() {
        let mut r = buf();
        let t = Instant::now();
        for s in issue(&mut r, 5) {
            assert_eq!(r.resolve(s, Some(s), t), vec![s]);
        }
        assert_eq!(r.held(), 0);
        assert_eq!(r.awaited(), 0);
        assert_eq!(r.wake_after(t), None);
    }

    #[test]
    fn a_later_answer_waits_for_the_earlier_one() {
        let mut r = buf();
        let t = Instant::now();
        issue(&mut r, 4);
        // Two batches finish in the wrong order: [2, 3] before [0, 1].
        assert!(r.resolve(2, Some(2), t).is_empty());
        assert!(r.resolve(3, Some(3), t).is_empty());
        assert_eq!(r.held(), 2);
        assert_eq!(r.resolve(0, Some(0), t), vec![0]);
        assert_eq!(r.resolve(1, Some(1), t), vec![1, 2, 3]);
        assert_eq!(r.held(), 0);
        assert_eq!(r.take_skipped(), 0);
    }

    #[test]
    fn a_request_that_will_not_be_answered_releases_the_ones_after_it() {
        let mut r = buf();
        let t = Instant::now();
        issue(&mut r, 4);
        assert!(r.resolve(1, Some(1), t).is_empty());
        assert!(r.resolve(3, Some(3), t).is_empty());
        // 0 was shed by the pool, 2 lost with a worker.
        assert_eq!(r.resolve(0, None, t), vec![1]);
        assert_eq!(r.resolve(2, None, t), vec![3]);
        assert_eq!(r.awaited(), 0);
        // Word of loss for an answer already held, or a second answer, changes nothing.
        issue(&mut r, 2);
        assert!(r.resolve(5, Some(5), t).is_empty());
        assert!(r.resolve(5, None, t).is_empty());
        assert_eq!(r.resolve(4, Some(4), t), vec![4, 5]);
        // Nor do numbers already done or never issued.
        assert!(r.resolve(4, Some(4), t).is_empty());
        assert!(r.resolve(99, Some(99), t).is_empty());
        assert_eq!(r.take_skipped(), 0);
    }

    #[test]
    fn a_silent_gap_is_skipped_after_max_hold_and_its_late_answer_dropped() {
        let mut r = buf();
        let t0 = Instant::now();
        issue(&mut r, 3);
        assert!(r.resolve(1, Some(1), t0).is_empty());
        assert_eq!(r.wake_after(t0), Some(HOLD));
        // One wake-up at a time.
        assert_eq!(r.wake_after(t0), None);
        let t1 = t0 + Duration::from_secs(4);
        assert!(r.resolve(2, Some(2), t1).is_empty());
        assert!(r.expire(t0 + HOLD - Duration::from_millis(1)).is_empty());
        assert_eq!(r.wake(t0 + HOLD), vec![1, 2]);
        assert_eq!(r.take_skipped(), 1);
        assert_eq!(r.take_skipped(), 0);
        // The missing answer turns up after all: too late, the ones after it are applied.
        assert!(r.resolve(0, Some(0), t0 + HOLD * 2).is_empty());
        assert_eq!(r.held(), 0);
        assert_eq!(r.wake_after(t0 + HOLD * 2), None);
    }

    #[test]
    fn no_answer_is_held_longer_than_max_hold() {
        let mut r = buf();
        let t0 = Instant::now();
        issue(&mut r, 6);
        // 0 and 2 silent; 1 and 3 answered at t0, 4 later, 5 still running.
        for s in [1, 3] {
            assert!(r.resolve(s, Some(s), t0).is_empty());
        }
        let t1 = t0 + HOLD / 2;
        assert!(r.resolve(4, Some(4), t1).is_empty());
        assert_eq!(r.wake_after(t1), Some(HOLD / 2));
        // At t0 + HOLD both gaps before 3 go at once; 4 follows, since it is contiguous.
        assert_eq!(r.wake(t0 + HOLD), vec![1, 3, 4]);
        assert_eq!(r.take_skipped(), 2);
        assert_eq!(r.awaited(), 1);
        assert_eq!(r.resolve(5, Some(5), t1 + HOLD), vec![5]);
    }

    #[test]
    fn expiry_releases_only_what_is_due() {
        let mut r = buf();
        let t0 = Instant::now();
        issue(&mut r, 5);
        // 0 and 2 silent; 1 held from t0, 3 from t0 + HOLD / 2.
        assert!(r.resolve(1, Some(1), t0).is_empty());
        assert!(r.resolve(3, Some(3), t0 + HOLD / 2).is_empty());
        assert_eq!(r.expire(t0 + HOLD), vec![1]);
        assert_eq!(r.take_skipped(), 1);
        assert_eq!(r.wake_after(t0 + HOLD), Some(HOLD / 2));
        // 2 answered in time after all.
        assert_eq!(r.resolve(2, Some(2), t0 + HOLD), vec![2, 3]);
        assert_eq!(r.take_skipped(), 0);
        assert_eq!(r.wake(t0 + HOLD * 2), Vec::<u64>::new());
        assert_eq!(r.wake_after(t0 + HOLD * 2), None);
    }

    #[test]
    fn too_many_held_answers_skip_the_gap_at_once() {
        let mut r: Reorder<u64> = Reorder::new(HOLD, 3);
        let t = Instant::now();
        issue(&mut r, 6);
        for s in 1..4 {
            assert!(r.resolve(s, Some(s), t).is_empty());
        }
        assert_eq!(r.resolve(4, Some(4), t), vec![1, 2, 3, 4]);
        assert_eq!(r.take_skipped(), 1);
        assert_eq!(r.resolve(5, Some(5), t), vec![5]);
    }

    #[test]
    fn random_completion_orders_release_each_answer_once_in_order() {
        // Batches of a sensor's requests finish in a random order, some requests are shed or
        // lost, some vanish; whatever happens, what is released is increasing and complete
        // for everything that was answered before its gap was skipped.
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut r: Reorder<u64> = Reorder::new(HOLD, 1000);
            let t = Instant::now();
            let n = 1 + (rng.random::<u64>() % 200) as usize;
            let seqs = issue(&mut r, n);
            let mut batches: Vec<Vec<u64>> = seqs.chunks(8).map(<[u64]>::to_vec).collect();
            for i in (1..batches.len()).rev() {
                let j = (rng.random::<u64>() % (i as u64 + 1)) as usize;
                batches.swap(i, j);
            }
            let (mut out, mut answered, mut vanished) = (Vec::new(), Vec::new(), Vec::new());
            for b in batches {
                for s in b {
                    match rng.random::<u64>() % 10 {
                        0 => out.extend(r.resolve(s, None, t)),
                        1 => vanished.push(s),
                        _ => {
                            answered.push(s);
                            out.extend(r.resolve(s, Some(s), t));
                        }
                    }
                }
            }
            out.extend(r.expire(t + HOLD));
            answered.sort_unstable();
            // Every answer is released exactly once, in order.
            assert_eq!(out, answered);
            assert_eq!(r.held(), 0);
            // Silent losses before the last resolved number were given up; any after it are
            // still awaited.
            let last = seqs.iter().rev().find(|s| !vanished.contains(s));
            let given_up = vanished
                .iter()
                .filter(|&&v| last.is_some_and(|&l| v < l))
                .count() as u64;
            assert_eq!(r.take_skipped(), given_up);
            assert_eq!(r.awaited(), vanished.len() as u64 - given_up);
        }
    }
}
