//! Sliding-window mean and population standard deviation in constant time.
//!
//! Purpose: the sensor [`Window`](super::window::Window) reports mean and std of
//! its contents after every sample; recomputing them would cost `O(len)` per
//! sample.
//!
//! # Design constraints
//! - **Algorithm**: Welford's running mean / sum of squared deviations (`m2`),
//!   extended with removal and with a one-step *replace* (oldest value out, new
//!   value in) for a full window:
//!   `mean' = mean + (new − old)/n`,
//!   `m2' = m2 + (new − old)·((new − mean') + (old − mean))`.
//!   Updates are written relative to the running mean, so values around `1e6 ± 1`
//!   do not lose the `±1` to cancellation the way raw `Σx²` sums would.
//! - **Drift control**: removal-capable Welford accumulates rounding error as a
//!   random walk. Every `resync_every` (= window length) updates the owner calls
//!   [`SlidingMoments::resync`], which recomputes mean and `m2` exactly from the
//!   window (corrected two-pass). The error therefore never builds up over more
//!   than one window's worth of updates, however long the stream runs (tested on
//!   2·10⁶ samples of `1e6 + noise` against a naive recomputation).
//! - Also hosts the overflow-safe [`running_mean`] and [`ema`] steps the
//!   baseline learns with.
//! - **Per-sample cost**: `O(1)` for the update, plus the resync's `O(len)` once
//!   per `len` samples: amortised `O(1)` (≈3 extra passes' worth of adds per
//!   sample).
//! - **Guards**: the variance is clamped at `0` against tiny negative rounding.
//!   Finite inputs whose squared deviations overflow (|x| beyond ~1e154) put the
//!   accumulator in a *degraded* state; while degraded the owner resyncs after
//!   every update using a power-of-two rescaled exact computation, so `mean` stays
//!   finite and `std` is finite or `+inf`, never NaN. Normal operation resumes by
//!   itself once such values have left the window.

/// Exact moments of a set of values, as computed by [`exact_moments`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean (finite for finite inputs).
    pub mean: f64,
    /// Population standard deviation (finite or `+inf`, never NaN for finite inputs).
    pub std: f64,
    /// Sum of squared deviations from the mean (may be `+inf` when it overflows).
    pub m2: f64,
}

/// Running mean / std of a sliding window (see module docs).
#[derive(Clone, Debug)]
pub struct SlidingMoments {
    /// Number of values currently accumulated.
    n: usize,
    /// Running mean of the accumulated values.
    mean: f64,
    /// Running sum of squared deviations from `mean`.
    m2: f64,
    /// Updates since the last exact recomputation; drives periodic resync.
    since_resync: usize,
    /// How many updates may pass between exact recomputations (the window length).
    resync_every: usize,
    /// Set when `mean`/`m2` stopped being finite; forces a resync after every update.
    degraded: bool,
    /// Std from the last exact recomputation, used while `degraded` (m2 may be inf).
    exact_std: f64,
}

impl SlidingMoments {
    /// Creates an empty accumulator that asks for an exact resync every
    /// `resync_every` updates (at least 1).
    pub fn new(resync_every: usize) -> Self {
        Self {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            since_resync: 0,
            resync_every: resync_every.max(1),
            degraded: false,
            exact_std: 0.0,
        }
    }

    /// Adds one value (window not yet full). `O(1)`.
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        self.after_update();
    }

    /// Replaces `old` (leaving the window) by `new` (entering it), keeping `n`.
    /// `O(1)`. With an empty accumulator this behaves like [`add`](Self::add).
    pub fn replace(&mut self, old: f64, new: f64) {
        if self.n == 0 {
            self.add(new);
            return;
        }
        let d = new - old;
        let prev_mean = self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * ((new - self.mean) + (old - prev_mean));
        self.after_update();
    }

    /// Whether the owner must call [`resync`](Self::resync) now: periodically, or
    /// after every update while degraded.
    pub fn needs_resync(&self) -> bool {
        self.degraded || self.since_resync >= self.resync_every
    }

    /// Recomputes the state exactly from the window's current values. `O(n)`.
    pub fn resync<I>(&mut self, values: I)
    where
        I: Iterator<Item = f64> + Clone,
    {
        let m = exact_moments(values);
        self.n = m.n;
        self.mean = m.mean;
        self.m2 = m.m2;
        self.exact_std = m.std;
        self.degraded = !(m.mean.is_finite() && m.m2.is_finite());
        self.since_resync = 0;
    }

    /// Number of values accumulated.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Mean of the accumulated values (0 when empty).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Population standard deviation, clamped against tiny negative variance
    /// (0 when empty).
    pub fn std(&self) -> f64 {
        if self.degraded {
            return self.exact_std;
        }
        if self.n == 0 {
            return 0.0;
        }
        (self.m2.max(0.0) / self.n as f64).sqrt()
    }

    /// Counts an update towards the next resync and flags overflow.
    fn after_update(&mut self) {
        self.since_resync += 1;
        if !(self.mean.is_finite() && self.m2.is_finite()) {
            self.degraded = true;
        }
    }
}

/// `(2^e, 2^-e)` for the `e` that brings `max_abs` into `(0.5, 2]`-ish range,
/// clamped so both factors are normal powers of two; multiplying by either is
/// exact (barring underflow of subnormal inputs). Returns `(1, 1)` for 0 or
/// non-finite input.
pub fn power_of_two_scale(max_abs: f64) -> (f64, f64) {
    if !(max_abs.is_finite() && max_abs > 0.0) {
        return (1.0, 1.0);
    }
    let e = (max_abs.log2().ceil() as i32).clamp(-1022, 1022);
    (pow2(e), pow2(-e))
}

/// `2^e` for `e` in `[-1022, 1023]`, built from its bit pattern (exact).
fn pow2(e: i32) -> f64 {
    let biased = (e.clamp(-1022, 1023) + 1023) as u64;
    f64::from_bits(biased << 52)
}

/// Exact mean / std / m2 of `values` by a rescaled, corrected two-pass algorithm:
/// values are multiplied by an exact power of two so the largest magnitude is
/// about 1 (no intermediate overflow), then `m2 = Σd² − (Σd)²/n` with
/// `d = y − mean_y`. `O(n)`, three passes.
pub fn exact_moments<I>(values: I) -> Moments
where
    I: Iterator<Item = f64> + Clone,
{
    let (n, max_abs) = values
        .clone()
        .fold((0usize, 0.0f64), |(n, m), x| (n + 1, m.max(x.abs())));
    if n == 0 {
        return Moments {
            n: 0,
            mean: 0.0,
            std: 0.0,
            m2: 0.0,
        };
    }
    let (scale, inv) = power_of_two_scale(max_abs);
    let nf = n as f64;
    let mean_y = values.clone().map(|x| x * inv).sum::<f64>() / nf;
    let (sd, sd2) = values.fold((0.0f64, 0.0f64), |(s, s2), x| {
        let d = x * inv - mean_y;
        (s + d, s2 + d * d)
    });
    let m2_y = (sd2 - sd * sd / nf).max(0.0);
    Moments {
        n,
        mean: mean_y * scale,
        std: (m2_y / nf).sqrt() * scale,
        m2: m2_y * scale * scale,
    }
}

/// Running mean after the `n`-th value (`n >= 1`), computed on halved values
/// so it cannot overflow for finite inputs (used by the baseline).
pub fn running_mean(mean: f64, x: f64, n: u64) -> f64 {
    if n <= 1 {
        x
    } else {
        mean + (x * 0.5 - mean * 0.5) * (2.0 / n as f64)
    }
}

/// Exponential moving average step `(1−r)·a + r·b` for `r ∈ (0, 1]`; a convex
/// combination cannot overflow (used by the baseline).
pub fn ema(a: f64, b: f64, r: f64) -> f64 {
    if r >= 1.0 {
        b
    } else {
        a * (1.0 - r) + b * r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_replace_match_exact() {
        let xs = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0, 6.0];
        let mut m = SlidingMoments::new(1000);
        for &x in &xs[..4] {
            m.add(x);
        }
        for i in 4..xs.len() {
            m.replace(xs[i - 4], xs[i]);
            let e = exact_moments(xs[i - 3..=i].iter().copied());
            assert!((m.mean() - e.mean).abs() < 1e-12);
            assert!((m.std() - e.std).abs() < 1e-12);
        }
    }

    #[test]
    fn pow2_is_exact() {
        assert_eq!(pow2(0), 1.0);
        assert_eq!(pow2(10), 1024.0);
        assert_eq!(pow2(-1), 0.5);
        assert_eq!(pow2(1023), 2f64.powi(1023));
        assert_eq!(pow2(-1022), f64::MIN_POSITIVE);
        let (s, i) = power_of_two_scale(1e300);
        assert!(s.is_finite() && i > 0.0 && (1e300 * i) <= 1.0);
        assert_eq!(power_of_two_scale(0.0), (1.0, 1.0));
    }

    #[test]
    fn overflow_degrades_then_recovers() {
        let mut m = SlidingMoments::new(1000);
        let window = [f64::MAX, -f64::MAX, 1.0];
        m.add(f64::MAX);
        m.add(-f64::MAX);
        assert!(m.needs_resync());
        m.resync(window[..2].iter().copied());
        assert!(m.mean().is_finite());
        assert!(!m.std().is_nan());
        // Replace the huge values by small ones: the state recovers.
        m.replace(f64::MAX, 1.0);
        m.resync([-f64::MAX, 1.0].iter().copied());
        m.replace(-f64::MAX, 3.0);
        m.resync([1.0, 3.0].iter().copied());
        assert!(!m.needs_resync());
        assert_eq!(m.mean(), 2.0);
        assert_eq!(m.std(), 1.0);
        m.add(2.0);
        assert!((m.std() - (2.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }

    #[test]
    fn running_mean_and_ema_do_not_overflow() {
        let m = [f64::MAX, -f64::MAX, f64::MAX]
            .iter()
            .zip(1u64..)
            .fold(0.0, |m, (&x, n)| running_mean(m, x, n));
        assert!(m.is_finite() && m > 0.0);
        assert_eq!(running_mean(0.0, 3.0, 1), 3.0);
        assert_eq!(running_mean(3.0, 5.0, 2), 4.0);
        assert_eq!(ema(f64::MAX, -f64::MAX, 0.5), 0.0);
        assert_eq!(ema(1.0, 2.0, 1.0), 2.0);
    }

    #[test]
    fn exact_handles_extremes() {
        let e = exact_moments([f64::MAX, f64::MAX].iter().copied());
        assert_eq!(e.mean, f64::MAX);
        assert_eq!(e.std, 0.0);
        let e = exact_moments([1e-310, 3e-310].iter().copied());
        assert!(e.mean > 0.0 && e.std > 0.0);
        let e = exact_moments(std::iter::empty());
        assert_eq!(e.n, 0);
    }
}
