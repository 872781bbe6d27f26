//! Fixed-capacity sliding window over one sensor's scalar stream, emitting
//! summary statistics every `hop` accepted samples.
//!
//! Purpose: turn a raw `(timestamp, value)` stream into [`WindowStats`] (level,
//! spread, extremes, quantiles, spectral bands) that the per-sensor
//! [`Baseline`](super::baseline::Baseline) normalises for the shared anomaly model.
//!
//! # Design constraints
//! - **Memory** (one window per live sensor, so every byte counts ten thousand
//!   times): the ring, the sorted values and the sorted timestamps are sized to
//!   `len` once in [`Window::new`]; the extrema queues grow with the candidates
//!   they actually hold, up to `len`; the FFT plan, Hann window and work buffers
//!   are shared per window size or per thread, not per window. Once the queues
//!   reached their high-water mark the steady state allocates nothing except the
//!   `Vec` inside each emitted [`WindowStats`].
//! - **Per-sample cost** of [`Window::push`]:
//!   - ring buffer of samples ([`Ring`]): `O(1)`;
//!   - admission checks ([`Admission`], the window's timestamps kept sorted):
//!     `O(log len)` compares, `O(1)` moves for samples in time order;
//!   - mean / std ([`SlidingMoments`], Welford with replace + exact resync every
//!     `len` samples): `O(1)`, amortised `O(1)` including the resync;
//!   - min / max of values and of timestamps ([`SampleExtremes`], four
//!     monotonic deques): amortised `O(1)`;
//!   - quantiles ([`SortedWindow`]): `O(log len)` compares + `O(len)` memmove
//!     (≤ 32 KiB for `len ≤ 4096`);
//!   - FFT bands ([`Spectrum`]): `O(len log len)` only at emissions, i.e.
//!     amortised `O(len log len / hop)`; the FFT is planned once per length.
//!
//!   Measured whole-`push` cost (release, 2-core dev VM, with the baseline's
//!   per-window work): ≈0.2 µs/sample at `len/hop = 64/16`, ≈0.5 µs at
//!   `4096/1024`, ≈1.5 µs at `4096/64` (FFT-dominated).
//! - **Emission cadence**: counting accepted samples from 1, `push` returns
//!   `Ok(Some(stats))` on the sample that first fills the window (count `len`)
//!   and then on every `hop`-th accepted sample after it (`len + hop`,
//!   `len + 2·hop`, …). Rejected samples do not count.
//! - **Rejections** ([`Admission`]; checked before any state changes, so a
//!   rejected `push` leaves the window exactly as it was): `NonFinite` if the
//!   value is NaN/±inf; else `Duplicate` if a sample with the same `ts` is
//!   currently in the window (`O(1)` hash-set lookup); else `TooLate` if
//!   `ts < newest_ts − allowed_lateness_ms`, `newest_ts` being the largest `ts`
//!   ever accepted. An evicted `ts` is no longer a duplicate.
//! - **Late samples within the allowed lateness** are accepted in *arrival
//!   order*: they enter the ring at the newest position and leave it after
//!   `len` further accepted samples. Mean, std, min, max and quantiles are
//!   order-independent; the FFT sees arrival order, which for small amounts of
//!   reordering only slightly perturbs the high-frequency bands.
//! - **Irregular sampling**: the window is count-based, not time-based; FFT bin
//!   `k` means `k/len` cycles *per sample*. `start_ts` / `end_ts` are the exact
//!   minimum / maximum `ts` of the samples in the window (maintained by two
//!   monotonic queues), so `end_ts − start_ts` shows how much time the window
//!   really spans.
//! - **Numerics**: only finite values are admitted; mean is always finite; std
//!   and bands are finite or `+inf` (only for magnitudes beyond ~1e154), never
//!   NaN. Stays accurate over unbounded streams (resync bounds drift).

use super::admission::Admission;
use super::moments::SlidingMoments;
use super::monotonic::SampleExtremes;
use super::percentile::SortedWindow;
use super::ring::Ring;
use super::spectrum::Spectrum;
pub use crate::sample::{
    Rejection, Sample, WindowConfig, WindowConfigError, WindowStats, MAX_WINDOW_LEN,
};

/// Fixed-capacity sliding window with O(1)-ish per-sample statistics (see module docs).
#[derive(Clone, Debug)]
pub struct Window {
    /// The validated configuration.
    cfg: WindowConfig,
    /// The samples, oldest→newest by arrival.
    ring: Ring<Sample>,
    /// Duplicate / lateness bookkeeping.
    admission: Admission,
    /// Sequence number the next accepted sample gets (wrapping); tags entries
    /// of the monotonic queues so evictions can find them.
    next_seq: u64,
    /// Running mean / std.
    moments: SlidingMoments,
    /// Values in sorted order for quantiles.
    sorted: SortedWindow,
    /// Sliding min/max of values and timestamps.
    extremes: SampleExtremes,
    /// Accepted samples still needed before the next emission.
    until_emit: usize,
    /// The shared FFT plan for the bands.
    spectrum: Spectrum,
}

impl Window {
    /// Validates `cfg`, allocates the fixed buffers and takes the shared FFT plan.
    pub fn new(cfg: WindowConfig) -> Result<Self, WindowConfigError> {
        cfg.validate()?;
        let len = cfg.len;
        Ok(Self {
            ring: Ring::new(len),
            admission: Admission::new(len, cfg.allowed_lateness_ms),
            next_seq: 0,
            moments: SlidingMoments::new(len),
            sorted: SortedWindow::with_capacity(len),
            extremes: SampleExtremes::new(len),
            until_emit: len,
            spectrum: Spectrum::new(len, cfg.bands),
            cfg,
        })
    }

    /// Offers one sample. `Err` leaves the window unchanged; `Ok(Some(stats))`
    /// at each emission point (see module docs), `Ok(None)` otherwise.
    pub fn push(&mut self, s: Sample) -> Result<Option<WindowStats>, Rejection> {
        self.admission.check(&s)?;
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        match self.ring.push(s) {
            None => self.moments.add(s.v),
            Some(old) => {
                let old_seq = seq.wrapping_sub(self.cfg.len as u64);
                self.admission.evict(old.ts);
                self.sorted.remove(old.v);
                self.extremes.evict(old_seq);
                self.moments.replace(old.v, s.v);
            }
        }
        self.admission.admit(s.ts);
        self.sorted.insert(s.v);
        self.extremes.push(seq, &s);
        if self.moments.needs_resync() {
            self.moments.resync(self.ring.iter().map(|x| x.v));
        }

        self.until_emit = self.until_emit.saturating_sub(1);
        if self.until_emit > 0 {
            return Ok(None);
        }
        self.until_emit = self.cfg.hop;
        let values = self.ring.iter().map(|x| x.v);
        let bands = self.spectrum.bands(values, self.moments.mean());
        Ok(self.scalar_stats(bands))
    }

    /// Stats of the current contents (`None` if empty). The bands are computed
    /// on demand with temporary buffers (not on the per-sample path).
    pub fn stats(&self) -> Option<WindowStats> {
        if self.ring.is_empty() {
            return None;
        }
        let bands = self
            .spectrum
            .bands_alloc(self.ring.iter().map(|x| x.v), self.moments.mean());
        self.scalar_stats(bands)
    }

    /// Current contents, oldest→newest by arrival (for raw troubleshooting windows).
    pub fn samples(&self) -> Vec<Sample> {
        self.ring.iter().copied().collect()
    }

    /// Number of samples currently in the window.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the window holds no samples.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Whether the window holds `len` samples (emissions only happen when full).
    pub fn is_full(&self) -> bool {
        self.ring.is_full()
    }

    /// The validated configuration.
    pub fn config(&self) -> &WindowConfig {
        &self.cfg
    }

    /// Assembles stats from the O(1) accumulators plus precomputed `bands`.
    fn scalar_stats(&self, bands: Vec<f64>) -> Option<WindowStats> {
        let (start_ts, end_ts) = self.extremes.timestamps()?;
        let (min, max) = self.extremes.values()?;
        // The running variance can keep a rounding residue after large values leave the
        // window; the exact extremes bound it (Popoviciu: σ ≤ (max − min) / 2), so a constant
        // window has σ = 0 exactly and a nearly constant one cannot look noisy.
        let std = self.moments.std().min((max - min) / 2.0);
        Some(WindowStats {
            start_ts,
            end_ts,
            n: self.ring.len(),
            mean: self.moments.mean(),
            std,
            min,
            max,
            p05: self.sorted.quantile(0.05)?,
            p50: self.sorted.quantile(0.5)?,
            p95: self.sorted.quantile(0.95)?,
            bands,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn cfg(len: usize, hop: usize, bands: usize, late: i64) -> WindowConfig {
        WindowConfig {
            len,
            hop,
            bands,
            allowed_lateness_ms: late,
        }
    }

    fn smp(ts: i64, v: f64) -> Sample {
        Sample { ts, v }
    }

    /// 64-bit LCG, top 53 bits → uniform in [-1, 1).
    fn noise(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (*state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    fn naive_q(sorted: &[f64], q: f64) -> f64 {
        let pos = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
    }

    /// Asserts `st` equals a naive recomputation over `samples`.
    fn check_naive(st: &WindowStats, samples: &[Sample]) -> Result<(), TestCaseError> {
        let n = samples.len();
        let vals: Vec<f64> = samples.iter().map(|s| s.v).collect();
        let mean = vals.iter().sum::<f64>() / n as f64;
        let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let mut sorted = vals.clone();
        sorted.sort_by(f64::total_cmp);
        prop_assert_eq!(st.n, n);
        prop_assert_eq!(st.start_ts, samples.iter().map(|s| s.ts).min().unwrap());
        prop_assert_eq!(st.end_ts, samples.iter().map(|s| s.ts).max().unwrap());
        prop_assert_eq!(st.min, sorted[0]);
        prop_assert_eq!(st.max, sorted[n - 1]);
        for (got, want) in [
            (st.mean, mean),
            (st.std, std),
            (st.p05, naive_q(&sorted, 0.05)),
            (st.p50, naive_q(&sorted, 0.5)),
            (st.p95, naive_q(&sorted, 0.95)),
        ] {
            prop_assert!(close(got, want, 1e-9), "got {got}, want {want}");
        }
        Ok(())
    }

    #[derive(Clone, Debug)]
    enum Op {
        Fresh(i64, f64),
        Dup(usize, f64),
        Late(i64, f64),
        NonFinite,
    }

    fn op() -> impl Strategy<Value = Op> {
        let v = prop_oneof![-1e3..1e3f64, (-3i32..=3).prop_map(f64::from)];
        prop_oneof![
            6 => (1i64..20, v.clone()).prop_map(|(d, v)| Op::Fresh(d, v)),
            2 => (any::<usize>(), v.clone()).prop_map(|(i, v)| Op::Dup(i, v)),
            2 => (0i64..80, v).prop_map(|(d, v)| Op::Late(d, v)),
            1 => Just(Op::NonFinite),
        ]
    }

    fn config() -> impl Strategy<Value = WindowConfig> {
        (4usize..=24)
            .prop_flat_map(|len| (Just(len), 1..=len, 1..=len / 2, 0i64..=40))
            .prop_map(|(len, hop, bands, late)| cfg(len, hop, bands, late))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn matches_naive_model(c in config(), ops in proptest::collection::vec(op(), 1..300)) {
            let mut w = Window::new(c.clone()).unwrap();
            let mut model: VecDeque<Sample> = VecDeque::new();
            let mut newest: Option<i64> = None;
            let mut accepted = 0usize;
            for op in ops {
                let base = newest.unwrap_or(0);
                let s = match op {
                    Op::Fresh(d, v) => smp(base + d, v),
                    Op::Dup(i, v) => smp(model.get(i % model.len().max(1)).map_or(0, |s| s.ts), v),
                    Op::Late(d, v) => smp(base - d, v),
                    Op::NonFinite => smp(base + 1, f64::NAN),
                };
                let expected = if !s.v.is_finite() {
                    Err(Rejection::NonFinite)
                } else if model.iter().any(|m| m.ts == s.ts) {
                    Err(Rejection::Duplicate)
                } else if newest.is_some_and(|n| s.ts < n - c.allowed_lateness_ms) {
                    Err(Rejection::TooLate)
                } else {
                    Ok(())
                };
                let before = w.stats();
                let got = w.push(s);
                match (expected, got) {
                    (Err(e), Err(g)) => {
                        prop_assert_eq!(e, g);
                        prop_assert_eq!(w.stats(), before);
                    }
                    (Ok(()), Ok(emitted)) => {
                        model.push_back(s);
                        if model.len() > c.len { model.pop_front(); }
                        newest = Some(newest.map_or(s.ts, |n| n.max(s.ts)));
                        accepted += 1;
                        let due = accepted >= c.len && (accepted - c.len).is_multiple_of(c.hop);
                        prop_assert_eq!(emitted.is_some(), due);
                        if let Some(st) = emitted {
                            prop_assert_eq!(st.bands.len(), c.bands);
                            check_naive(&st, model.make_contiguous())?;
                            prop_assert_eq!(Some(st), w.stats());
                        }
                    }
                    (e, g) => prop_assert!(false, "expected {e:?}, got {g:?}"),
                }
                let samples = w.samples();
                prop_assert_eq!(&samples, &Vec::from(model.clone()));
                prop_assert_eq!(w.len(), model.len());
                prop_assert_eq!(w.is_full(), model.len() == c.len);
                match w.stats() {
                    Some(st) => check_naive(&st, &samples)?,
                    None => prop_assert!(model.is_empty()),
                }
            }
        }
    }

    #[test]
    fn emits_every_hop_after_first_fill() {
        assert_eq!(Window::new(cfg(8, 0, 1, 0)).unwrap_err().field(), "hop");
        let mut w = Window::new(cfg(10, 3, 2, 0)).unwrap();
        assert!(w.is_empty() && w.stats().is_none() && w.config() == &cfg(10, 3, 2, 0));
        let emitted: Vec<i64> = (1..=30)
            .filter_map(|t| w.push(smp(t, t as f64)).unwrap().map(|_| t))
            .collect();
        assert_eq!(emitted, vec![10, 13, 16, 19, 22, 25, 28]);
    }

    #[test]
    fn rejections_leave_state_unchanged() {
        let mut w = Window::new(cfg(8, 4, 2, 100)).unwrap();
        for t in 0..12 {
            w.push(smp(1000 + t * 10, (t * t) as f64)).unwrap();
        }
        let (stats, samples) = (w.stats(), w.samples());
        // Newest ts is 1110; 1100 is in the window; 1009 is 101 ms late.
        let cases = [
            (smp(1100, 5.0), Rejection::Duplicate),
            (smp(1009, 5.0), Rejection::TooLate),
            (smp(2000, f64::INFINITY), Rejection::NonFinite),
        ];
        for (s, want) in cases {
            assert_eq!(w.push(s), Err(want));
            assert_eq!(w.stats(), stats);
            assert_eq!(w.samples(), samples);
        }
        // Within lateness and not in the window: accepted at the newest position.
        assert_eq!(w.push(smp(1010, 1.0)), Ok(None));
        assert_eq!(w.samples().last(), Some(&smp(1010, 1.0)));
        let st = w.stats().unwrap();
        assert_eq!((st.start_ts, st.end_ts), (1010, 1110));
    }

    #[test]
    fn sine_peaks_in_its_band_and_constant_is_flat() {
        let (len, bands) = (64usize, 4usize); // 32 bins, 8 per band
        for b in 0..bands {
            let bin = (1 + b * 8 + 4) as f64;
            let mut w = Window::new(cfg(len, len, bands, 0)).unwrap();
            let mut last = None;
            for i in 0..len {
                let v = 20.0 + (std::f64::consts::TAU * bin * i as f64 / len as f64).sin();
                last = w.push(smp(i as i64, v)).unwrap();
            }
            let st = last.unwrap();
            let best = (0..bands).max_by(|&x, &y| st.bands[x].total_cmp(&st.bands[y]));
            assert_eq!(best, Some(b), "{:?}", st.bands);
        }
        let mut w = Window::new(cfg(len, 16, bands, 0)).unwrap();
        for i in 0..200 {
            if let Some(st) = w.push(smp(i, 1e6 + 0.1)).unwrap() {
                assert!(st.bands.iter().all(|b| b.abs() < 1e-9), "{:?}", st.bands);
                assert_eq!(st.std, 0.0);
            }
        }
    }

    #[test]
    fn std_stays_accurate_over_millions_of_samples() {
        let mut w = Window::new(cfg(256, 256, 4, 0)).unwrap();
        let mut rng = 42u64;
        for i in 0..2_000_000i64 {
            w.push(smp(i, 1e6 + noise(&mut rng))).unwrap();
            if i % 400_000 == 399_999 {
                let st = w.stats().unwrap();
                let vals: Vec<f64> = w.samples().iter().map(|s| s.v).collect();
                let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 256.0;
                let rel = (st.std - var.sqrt()).abs() / var.sqrt();
                assert!(rel < 1e-6, "relative std error {rel} at sample {i}");
                assert!((st.mean - mean).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn huge_values_never_nan() {
        let mut w = Window::new(cfg(8, 1, 2, 0)).unwrap();
        for i in 0..40i64 {
            let v = if i >= 16 {
                i as f64
            } else {
                f64::MAX * (1 - 2 * (i % 2)) as f64
            };
            if let Some(st) = w.push(smp(i, v)).unwrap() {
                assert!(st.mean.is_finite() && !st.std.is_nan());
                assert!(st.bands.iter().all(|b| !b.is_nan()));
            }
        }
        let st = w.stats().unwrap();
        assert_eq!(st.mean, (32..40).sum::<i64>() as f64 / 8.0);
        assert!(st.std.is_finite());
    }
}
