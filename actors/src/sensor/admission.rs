//! Admission policy of the sensor [`Window`](super::window::Window): which
//! samples are refused as non-finite, duplicate or too late.
//!
//! # Design constraints
//! - Checks run in this order and **before any state changes**, so a refused
//!   sample leaves the window exactly as it was:
//!   1. [`Rejection::NonFinite`]: the value is NaN or ±inf.
//!   2. [`Rejection::Duplicate`]: a sample with the same `ts` is *currently in
//!      the window*. Detected by binary search in the window's timestamps kept
//!      sorted, updated as the ring evicts. Because duplicates are never
//!      admitted, each `ts` appears at most once in the window, so removing an
//!      evicted `ts` is exact. A `ts` whose sample has already been evicted is
//!      *not* a duplicate; it is judged by lateness.
//!   3. [`Rejection::TooLate`]: `ts < newest_ts − allowed_lateness_ms`, where
//!      `newest_ts` is the largest `ts` ever admitted (it never decreases, even
//!      after that sample is evicted).
//! - **Per-sample cost**: `O(log n)` compares to check, and an insert and a
//!   removal that each move at most `n / 2` timestamps (a `VecDeque` shifts the
//!   shorter side). Samples in time order cost `O(1)`: the newest goes at the
//!   back, the oldest leaves from the front; only late ones are moved into place.
//! - **Memory**: exactly `n × 8` bytes, reserved once. A `HashSet<i64>` did the
//!   check in `O(1)` expected but held 128 buckets for a window of 64 (1 168
//!   bytes against 512), for every sensor.

use std::collections::VecDeque;

use crate::sample::{Rejection, Sample, MAX_WINDOW_LEN};

/// Duplicate / lateness bookkeeping for one window (see module docs).
#[derive(Clone, Debug)]
pub struct Admission {
    /// Timestamps of the samples currently in the window, ascending.
    in_window: VecDeque<i64>,
    /// Largest `ts` ever admitted; the reference point for lateness.
    newest_ts: Option<i64>,
    /// How far (ms) behind `newest_ts` a sample may be and still be admitted.
    allowed_lateness_ms: i64,
}

impl Admission {
    /// Empty bookkeeping for a window of `capacity` samples (reservation capped
    /// at [`MAX_WINDOW_LEN`]).
    pub fn new(capacity: usize, allowed_lateness_ms: i64) -> Self {
        Self {
            in_window: VecDeque::with_capacity(capacity.min(MAX_WINDOW_LEN)),
            newest_ts: None,
            allowed_lateness_ms,
        }
    }

    /// Decides whether `s` may enter, without changing anything.
    pub fn check(&self, s: &Sample) -> Result<(), Rejection> {
        if !s.v.is_finite() {
            return Err(Rejection::NonFinite);
        }
        if self.in_window.binary_search(&s.ts).is_ok() {
            return Err(Rejection::Duplicate);
        }
        match self.newest_ts {
            Some(n) if s.ts < n.saturating_sub(self.allowed_lateness_ms) => Err(Rejection::TooLate),
            _ => Ok(()),
        }
    }

    /// Records that a sample with timestamp `ts` entered the window.
    pub fn admit(&mut self, ts: i64) {
        // After `check` the timestamp is not in the window; `Err` is its place.
        if let Err(i) = self.in_window.binary_search(&ts) {
            self.in_window.insert(i, ts);
        }
        self.newest_ts = Some(self.newest_ts.map_or(ts, |n| n.max(ts)));
    }

    /// Records that the sample with timestamp `ts` left the window.
    pub fn evict(&mut self, ts: i64) {
        if let Ok(i) = self.in_window.binary_search(&ts) {
            self.in_window.remove(i);
        }
    }

    /// Largest `ts` ever admitted.
    pub fn newest_ts(&self) -> Option<i64> {
        self.newest_ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts: i64, v: f64) -> Sample {
        Sample { ts, v }
    }

    #[test]
    fn policy_and_order() {
        let mut a = Admission::new(4, 10);
        assert_eq!(a.check(&s(100, 1.0)), Ok(()));
        a.admit(100);
        a.admit(90);
        assert_eq!(a.newest_ts(), Some(100));
        // Non-finite wins over duplicate, duplicate over late.
        assert_eq!(a.check(&s(100, f64::NAN)), Err(Rejection::NonFinite));
        assert_eq!(a.check(&s(100, 1.0)), Err(Rejection::Duplicate));
        assert_eq!(a.check(&s(89, 1.0)), Err(Rejection::TooLate));
        assert_eq!(a.check(&s(90, 1.0)), Err(Rejection::Duplicate));
        assert_eq!(a.check(&s(91, 1.0)), Ok(()));
        // Once evicted, the same ts is judged by lateness only.
        a.evict(90);
        assert_eq!(a.check(&s(90, 1.0)), Ok(()));
        a.evict(100);
        assert_eq!(a.check(&s(100, 1.0)), Ok(()));
        assert_eq!(a.newest_ts(), Some(100), "newest never decreases");
        // Saturating arithmetic at the extremes.
        let mut b = Admission::new(1, i64::MAX);
        b.admit(i64::MIN);
        assert_eq!(b.check(&s(i64::MAX, 0.0)), Ok(()));
        b.admit(i64::MAX);
        assert_eq!(b.check(&s(0, 0.0)), Ok(()));
        assert_eq!(b.check(&s(-1, 0.0)), Err(Rejection::TooLate));
    }
}
