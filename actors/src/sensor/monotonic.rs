//! Sliding-window minimum / maximum with a monotonic deque.
//!
//! Purpose: the sensor [`Window`](super::window::Window) reports the min and max
//! value and the min and max timestamp of its contents after every sample, while
//! the oldest sample leaves the window as a new one arrives.
//!
//! # Design constraints
//! - Entries leave the window strictly in arrival (FIFO) order. Every accepted
//!   sample is tagged with a sequence number from a counter that increases by one
//!   per accepted sample, and eviction names the sequence number of the sample
//!   leaving, so equality of tags identifies it even after the counter wraps.
//! - **Invariant**: the deque holds `(seq, value)` pairs in increasing `seq` order
//!   whose values are strictly monotonic (decreasing for a max queue, increasing
//!   for a min queue); the front is the extremum of the window. Values that can
//!   never become the extremum (an older value dominated by a newer one) are
//!   dropped on push.
//! - **Per-sample cost**: amortised `O(1)` — each element is pushed once and
//!   popped at most once; worst case for a single push is `O(n)`.
//! - **Memory** follows the candidates actually held, never more than the window
//!   capacity: a queue grows (doubling, capped at the capacity) only when it is
//!   full, and keeps its allocation. Most queues stay small (a noisy value has
//!   about `ln n` candidates; the newest timestamp of in-order samples is one),
//!   and reserving the capacity for all four up front cost 4 × 16 B per window
//!   sample for every sensor. Once a queue reached its high-water mark it no
//!   longer allocates.
//! - Values must be totally ordered by `PartialOrd` for the window's contents; the
//!   window only ever inserts finite `f64` and `i64`, so that holds.

use std::collections::VecDeque;

use crate::sample::{Sample, MAX_WINDOW_LEN};

/// Which extremum a [`MonotonicQueue`] tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extremum {
    /// Track the smallest value in the window.
    Min,
    /// Track the largest value in the window.
    Max,
}

/// Sliding-window extremum in amortised `O(1)` per sample (see module docs).
#[derive(Clone, Debug)]
pub struct MonotonicQueue<T> {
    /// Candidate extrema as `(sequence number, value)`, oldest first; the front is
    /// the current extremum.
    queue: VecDeque<(u64, T)>,
    /// Whether this queue tracks the minimum or the maximum.
    kind: Extremum,
    /// The window capacity: the most candidates the queue can hold, and so the most it
    /// ever allocates room for.
    capacity: usize,
}

impl<T: Copy + PartialOrd> MonotonicQueue<T> {
    /// Creates an empty queue for a window of `capacity` samples; nothing is
    /// allocated until the first push (see module docs).
    pub fn new(kind: Extremum, capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            kind,
            capacity: capacity.clamp(1, MAX_WINDOW_LEN),
        }
    }

    /// Adds the newest sample, tagged `seq`, dropping candidates it dominates.
    pub fn push(&mut self, seq: u64, v: T) {
        while let Some(&(_, back)) = self.queue.back() {
            let dominated = match self.kind {
                Extremum::Max => back <= v,
                Extremum::Min => back >= v,
            };
            if !dominated {
                break;
            }
            self.queue.pop_back();
        }
        let held = self.queue.len();
        if held == self.queue.capacity() {
            // Double, but never past the window: a full window has `capacity` candidates.
            let room = (2 * held).max(4).min(self.capacity.max(held + 1));
            self.queue.reserve_exact(room - held);
        }
        self.queue.push_back((seq, v));
    }

    /// Notes that the sample tagged `seq` (the oldest in the window) has left.
    pub fn evict(&mut self, seq: u64) {
        if self.queue.front().is_some_and(|&(s, _)| s == seq) {
            self.queue.pop_front();
        }
    }

    /// The current extremum, or `None` when the window is empty.
    pub fn get(&self) -> Option<T> {
        self.queue.front().map(|&(_, v)| v)
    }

    /// Removes every entry, keeping the allocation.
    pub fn clear(&mut self) {
        self.queue.clear();
    }

    /// Number of candidates held (at most the window length).
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no candidates are held (the window is empty).
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// The four extrema a window reports: min/max of values and of timestamps.
#[derive(Clone, Debug)]
pub struct SampleExtremes {
    /// Sliding minimum of values (`WindowStats::min`).
    min_v: MonotonicQueue<f64>,
    /// Sliding maximum of values (`WindowStats::max`).
    max_v: MonotonicQueue<f64>,
    /// Sliding minimum of timestamps (`WindowStats::start_ts`).
    min_ts: MonotonicQueue<i64>,
    /// Sliding maximum of timestamps (`WindowStats::end_ts`).
    max_ts: MonotonicQueue<i64>,
}

impl SampleExtremes {
    /// Empty queues for a window of `capacity` samples (allocated as they fill).
    pub fn new(capacity: usize) -> Self {
        Self {
            min_v: MonotonicQueue::new(Extremum::Min, capacity),
            max_v: MonotonicQueue::new(Extremum::Max, capacity),
            min_ts: MonotonicQueue::new(Extremum::Min, capacity),
            max_ts: MonotonicQueue::new(Extremum::Max, capacity),
        }
    }

    /// Adds the newest sample, tagged `seq`. Amortised `O(1)`.
    pub fn push(&mut self, seq: u64, s: &Sample) {
        self.min_v.push(seq, s.v);
        self.max_v.push(seq, s.v);
        self.min_ts.push(seq, s.ts);
        self.max_ts.push(seq, s.ts);
    }

    /// Notes that the sample tagged `seq` (the oldest) has left. `O(1)`.
    pub fn evict(&mut self, seq: u64) {
        self.min_v.evict(seq);
        self.max_v.evict(seq);
        self.min_ts.evict(seq);
        self.max_ts.evict(seq);
    }

    /// `(min, max)` of the values, `None` when empty.
    pub fn values(&self) -> Option<(f64, f64)> {
        Some((self.min_v.get()?, self.max_v.get()?))
    }

    /// `(min, max)` of the timestamps, `None` when empty.
    pub fn timestamps(&self) -> Option<(i64, i64)> {
        Some((self.min_ts.get()?, self.max_ts.get()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_naive(vals in proptest::collection::vec(-50i64..50, 1..300), cap in 1usize..20) {
            let mut mx = MonotonicQueue::new(Extremum::Max, cap);
            let mut mn = MonotonicQueue::new(Extremum::Min, cap);
            for (i, &v) in vals.iter().enumerate() {
                let seq = i as u64;
                if i >= cap {
                    mx.evict(seq - cap as u64);
                    mn.evict(seq - cap as u64);
                }
                mx.push(seq, v);
                mn.push(seq, v);
                let win = &vals[i.saturating_sub(cap - 1)..=i];
                prop_assert_eq!(mx.get(), win.iter().copied().max());
                prop_assert_eq!(mn.get(), win.iter().copied().min());
                prop_assert!(mx.len() <= cap && mn.len() <= cap);
            }
        }
    }

    #[test]
    fn sample_extremes() {
        let mut e = SampleExtremes::new(2);
        assert_eq!(e.values(), None);
        e.push(0, &Sample { ts: 10, v: 3.0 });
        e.push(1, &Sample { ts: 5, v: -1.0 });
        assert_eq!(e.values(), Some((-1.0, 3.0)));
        assert_eq!(e.timestamps(), Some((5, 10)));
        e.evict(0);
        e.push(2, &Sample { ts: 7, v: 0.5 });
        assert_eq!(e.values(), Some((-1.0, 0.5)));
        assert_eq!(e.timestamps(), Some((5, 7)));
    }

    #[test]
    fn wrapping_sequence_numbers() {
        let mut mx = MonotonicQueue::new(Extremum::Max, 2);
        mx.push(u64::MAX, 5.0);
        mx.push(0, 1.0);
        assert_eq!(mx.get(), Some(5.0));
        mx.evict(u64::MAX);
        assert_eq!(mx.get(), Some(1.0));
        mx.clear();
        assert!(mx.is_empty());
        assert_eq!(mx.get(), None);
    }
}
