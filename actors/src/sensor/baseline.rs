//! Per-sensor baseline learned online, producing the normalised feature vector.
//!
//! Purpose: one anomaly model is shared by all sensors, so features must be
//! scale-free. During a warm-up the [`Baseline`] learns a sensor's normal level
//! (`μ`, `σ` over raw samples), its normal window spread (`ws`, mean window
//! std) and its normal texture (`bm_k`, mean band-k FFT magnitude). Afterwards
//! [`Baseline::features`] maps each [`WindowStats`] to a fixed-length `f32`
//! vector as defined in [`features`](super::features) (names:
//! [`feature_names`], re-exported here with [`FEATURE_NAMES`]).
//!
//! # Design constraints
//! - **Warm-up**: [`observe_sample`](Baseline::observe_sample) runs Welford over
//!   raw finite samples and [`observe_window`](Baseline::observe_window) running
//!   means of window std and band magnitudes, both only until
//!   [`is_ready`](Baseline::is_ready) (≥ `max(warmup_samples, 1)` samples and ≥ 1
//!   window). Samples keep refining `μ, σ` until a first window arrives.
//! - **Adaptation**: after warm-up, [`adapt`](Baseline::adapt) is called for every
//!   window, after its features were taken, whatever the model decides of it: the
//!   features are then a function of the sample stream alone, so a live sensor (whose
//!   decisions come back asynchronously) and an offline evaluation see exactly the
//!   same vectors. It moves `μ`, `σ²`, `ws`, `bm_k` towards the window by an EMA with
//!   rate `adapt_rate` (0 = frozen), every step bounded so that an anomaly pulls the
//!   baseline only slowly: the mean by at most `r·3σ`, `σ²` towards the per-sample
//!   second moment around `μ`, `min(std² + dev², 9σ²)` with `dev` the bounded mean
//!   deviation, and `ws`, `bm_k` by at most `3r` e-folds in log space. A level change
//!   that persists inflates `σ` by up to `1 + 8r` per window until it is absorbed;
//!   a spike's inflation decays at `1 − r` per window.
//! - **Cost**: `observe_sample` `O(1)` per sample; `observe_window`, `adapt` and
//!   `features` `O(bands)` per window. Plain data, no allocation except the
//!   returned feature `Vec`. State round-trips through [`BaselineSnapshot`].

pub use super::features::{feature_names, DEFAULT_BANDS, FEATURE_NAMES, SCALAR_FEATURES};
use super::features::{normalise, sat, Reference};
use super::moments::{ema, running_mean};
use super::window::{WindowStats, MAX_WINDOW_LEN};
pub use crate::learned::{BaselineConfig, BaselineSnapshot};

/// Most bands a valid window can have; bounds allocations from band counts.
const MAX_BANDS: usize = MAX_WINDOW_LEN / 2;

/// Bound of one adaptation step, in level σ (mean) and in e-folds (spread, bands).
pub const STEP_LIMIT: f64 = 3.0;

/// One bounded EMA step of a positive scale `cur` towards `x` in log space: at most
/// [`STEP_LIMIT`] e-folds of pull, whatever `x` is (0 and huge values included).
fn log_step(cur: f64, x: f64, r: f64, floor: f64) -> f64 {
    let base = sat(cur).max(floor).max(1e-12);
    let ratio = ((x + 0.01 * base) / (1.01 * base)).ln();
    let ratio = if ratio.is_nan() {
        0.0
    } else {
        ratio.clamp(-STEP_LIMIT, STEP_LIMIT)
    };
    sat(base * (r * ratio).exp())
}

/// Per-sensor baseline (see module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Baseline {
    /// Tunables.
    pub(crate) cfg: BaselineConfig,
    /// Expected band count of incoming [`WindowStats`] and of the feature vector.
    pub(crate) bands: usize,
    /// Learned state.
    pub(crate) state: BaselineSnapshot,
}

impl Baseline {
    /// An empty (warming-up) baseline for windows with `bands` bands (capped at
    /// `MAX_WINDOW_LEN / 2`, the most a valid window can have).
    pub fn new(cfg: BaselineConfig, bands: usize) -> Self {
        let bands = bands.min(MAX_BANDS);
        let state = BaselineSnapshot::empty(bands);
        Self { cfg, bands, state }
    }

    /// Counts a raw sample; while warming up, adds it to the level statistics
    /// (Welford). Non-finite values are ignored.
    pub fn observe_sample(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let s = &mut self.state;
        s.samples_seen = s.samples_seen.saturating_add(1);
        if self.is_ready() {
            return;
        }
        let s = &mut self.state;
        s.level_n = s.level_n.saturating_add(1);
        let old = s.level_mean;
        s.level_mean = running_mean(old, v, s.level_n);
        let dd = 4.0 * (v * 0.5 - old * 0.5) * (v * 0.5 - s.level_mean * 0.5);
        s.level_var = if s.level_n <= 1 {
            0.0
        } else if dd.is_finite() && s.level_var.is_finite() {
            s.level_var + (dd - s.level_var) / s.level_n as f64
        } else {
            f64::INFINITY
        };
    }

    /// While warming up, adds a window's std and band magnitudes to the running
    /// means. Windows with NaN fields or the wrong band count are ignored.
    pub fn observe_window(&mut self, w: &WindowStats) {
        if self.is_ready() || !self.usable(w) {
            return;
        }
        let s = &mut self.state;
        s.windows_seen = s.windows_seen.saturating_add(1);
        let n = s.windows_seen;
        s.window_std = running_mean(s.window_std, sat(w.std), n);
        for (bm, &mag) in s.band_means.iter_mut().zip(&w.bands) {
            *bm = running_mean(*bm, sat(mag), n);
        }
    }

    /// Whether warm-up is complete: `max(warmup_samples, 1)` samples and at least
    /// one window observed.
    pub fn is_ready(&self) -> bool {
        let need = self.cfg.warmup_samples.max(1) as u64;
        self.state.level_n >= need && self.state.windows_seen >= 1
    }

    /// The normalised feature vector (order of [`feature_names`]), or `None`
    /// until ready or when `w` has a different band count.
    pub fn features(&self, w: &WindowStats) -> Option<Vec<f32>> {
        if !self.is_ready() || w.bands.len() != self.bands {
            return None;
        }
        let s = &self.state;
        let r = Reference {
            level_mean: s.level_mean,
            level_var: s.level_var,
            window_std: s.window_std,
            band_means: &s.band_means,
        };
        Some(normalise(w, &r, self.clamp()))
    }

    /// After warm-up, moves the baseline towards `w` by an EMA at `adapt_rate`, with every
    /// step bounded (see module docs): a wild window moves it by at most the step of a window
    /// [`STEP_LIMIT`] σ away, so anomalies pull it slowly while a level change that persists
    /// is absorbed within a few tens of windows. No-op while warming up, when frozen, or for
    /// windows with NaN fields or the wrong band count.
    pub fn adapt(&mut self, w: &WindowStats) {
        let r = self.rate();
        if !self.is_ready() || r == 0.0 || !self.usable(w) {
            return;
        }
        let s = &mut self.state;
        let floor = 1e-6 * sat(s.level_mean).abs().max(1.0);
        let sigma = s.level_var.max(0.0).sqrt().max(floor).min(f64::MAX / 8.0);
        let lim = STEP_LIMIT * sigma;
        let (mean, std) = (sat(w.mean), sat(w.std).max(0.0));
        let dev = (2.0 * (mean * 0.5 - s.level_mean * 0.5)).clamp(-lim, lim);
        s.level_mean = sat(s.level_mean + r * dev);
        let second = (std.min(lim) * std.min(lim) + dev * dev).min(lim * lim);
        s.level_var = ema(s.level_var, second, r);
        s.window_std = log_step(s.window_std, std, r, floor);
        for (bm, &mag) in s.band_means.iter_mut().zip(&w.bands) {
            *bm = log_step(*bm, sat(mag).max(0.0), r, 1e-3 * floor);
        }
    }

    /// A copy of the learned state, for persistence.
    pub fn snapshot(&self) -> BaselineSnapshot {
        self.state.clone()
    }

    /// Rebuilds a baseline from a snapshot. `band_means` is truncated or
    /// zero-padded to `bands` (capped like [`new`](Self::new)) if the band
    /// count changed.
    pub fn restore(cfg: BaselineConfig, bands: usize, snapshot: BaselineSnapshot) -> Self {
        let bands = bands.min(MAX_BANDS);
        let mut state = snapshot;
        state.band_means.resize(bands, 0.0);
        Self { cfg, bands, state }
    }

    /// Finite samples ever passed to [`observe_sample`](Self::observe_sample).
    pub fn samples_seen(&self) -> u64 {
        self.state.samples_seen
    }

    /// The configuration in use.
    pub fn config(&self) -> &BaselineConfig {
        &self.cfg
    }

    /// Band count expected in windows and produced in features.
    pub fn bands(&self) -> usize {
        self.bands
    }

    /// Length of the feature vector: `7 + bands`.
    pub fn feature_len(&self) -> usize {
        SCALAR_FEATURES + self.bands
    }

    /// Whether `w` may update the baseline: right band count, no NaN field.
    fn usable(&self, w: &WindowStats) -> bool {
        w.bands.len() == self.bands
            && [w.mean, w.std, w.min, w.max, w.p05, w.p50, w.p95]
                .iter()
                .chain(&w.bands)
                .all(|x| !x.is_nan())
    }

    /// The configured clamp, sanitised (NaN / non-positive → 20).
    fn clamp(&self) -> f64 {
        let c = self.cfg.clamp;
        if c.is_nan() || c <= 0.0 {
            20.0
        } else {
            f64::from(c.min(f32::MAX))
        }
    }

    /// The configured adapt rate, sanitised into `[0, 1]` (NaN → 0).
    fn rate(&self) -> f64 {
        let r = self.cfg.adapt_rate;
        if r.is_nan() || r <= 0.0 {
            0.0
        } else {
            r.min(1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::window::{Sample, Window, WindowConfig};
    use super::*;

    const BANDS: usize = 4;

    /// Deterministic standard normal: 64-bit LCG + Box–Muller.
    struct Gauss(u64);
    impl Gauss {
        fn uniform(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn next(&mut self) -> f64 {
            let (u, v) = (self.uniform(), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    /// A window + baseline pair fed like the sensor actor would.
    struct Rig {
        w: Window,
        b: Baseline,
        ts: i64,
    }

    impl Rig {
        fn new(cfg: BaselineConfig) -> Self {
            let wc = WindowConfig {
                len: 64,
                hop: 16,
                bands: BANDS,
                allowed_lateness_ms: 0,
            };
            Self {
                w: Window::new(wc).unwrap(),
                b: Baseline::new(cfg, BANDS),
                ts: 0,
            }
        }

        /// Pushes values; returns the feature vectors of windows emitted when ready.
        fn feed(&mut self, vals: impl IntoIterator<Item = f64>) -> Vec<Vec<f32>> {
            let mut out = Vec::new();
            for v in vals {
                self.ts += 1;
                let Ok(emitted) = self.w.push(Sample { ts: self.ts, v }) else {
                    continue;
                };
                self.b.observe_sample(v);
                if let Some(st) = emitted {
                    match self.b.features(&st) {
                        Some(f) => out.push(f),
                        None => self.b.observe_window(&st),
                    }
                }
            }
            out
        }
    }

    fn avg(fs: &[Vec<f32>], i: usize) -> f64 {
        fs.iter().map(|f| f64::from(f[i])).sum::<f64>() / fs.len() as f64
    }

    fn assert_sane(f: &[f32], clamp: f32) {
        assert_eq!(f.len(), SCALAR_FEATURES + BANDS);
        assert!(f.iter().all(|x| x.is_finite() && x.abs() <= clamp), "{f:?}");
    }

    #[test]
    fn warm_up_gates_features() {
        let mut rig = Rig::new(BaselineConfig::default());
        let mut g = Gauss(1);
        assert!(rig
            .feed((0..599).map(|_| 1000.0 + 5.0 * g.next()))
            .is_empty());
        assert!(!rig.b.is_ready());
        rig.feed((0..60).map(|_| 1000.0 + 5.0 * g.next()));
        assert!(rig.b.is_ready());
        assert_eq!(rig.b.samples_seen(), 659);
        assert_eq!(rig.b.snapshot().level_n, 600);
    }

    #[test]
    fn normal_noise_then_level_shift_then_stuck() {
        let mut rig = Rig::new(BaselineConfig {
            adapt_rate: 0.0,
            ..Default::default()
        });
        let mut g = Gauss(7);
        rig.feed((0..2000).map(|_| 1000.0 + 5.0 * g.next()));
        let fs = rig.feed((0..4000).map(|_| 1000.0 + 5.0 * g.next()));
        assert!(fs.len() > 200);
        fs.iter().for_each(|f| assert_sane(f, 20.0));
        let mean_abs_z = fs.iter().map(|f| f64::from(f[0].abs())).sum::<f64>() / fs.len() as f64;
        assert!(mean_abs_z < 1.0, "{mean_abs_z}");
        assert!(avg(&fs, 1).abs() < 0.1, "std_log_ratio {}", avg(&fs, 1));
        assert!(avg(&fs, 5).abs() < 0.5, "p50_z {}", avg(&fs, 5));
        assert!((avg(&fs, 4) + 1.64).abs() < 0.5 && (avg(&fs, 6) - 1.64).abs() < 0.5);
        for k in 0..BANDS {
            let r = avg(&fs, SCALAR_FEATURES + k);
            assert!(r.abs() < 0.3, "band {k} log ratio {r}");
        }
        // +10σ level shift: once a whole window is shifted, mean_z ≈ 10.
        let fs = rig.feed((0..256).map(|_| 1050.0 + 5.0 * g.next()));
        let last = fs.last().unwrap();
        assert!((f64::from(last[0]) - 10.0).abs() < 1.0, "{last:?}");
        assert!(f64::from(last[1]).abs() < 0.3, "spread unchanged: {last:?}");
        // Stuck sensor: spread and texture collapse to ≈ ln(0.01/1.01).
        let fs = rig.feed(std::iter::repeat_n(1000.25, 256));
        let last = fs.last().unwrap();
        assert_sane(last, 20.0);
        assert!(last[1] < -3.0 && last[SCALAR_FEATURES..].iter().all(|&r| r < -3.0));
    }

    #[test]
    fn adapt_tracks_level_and_zero_rate_freezes() {
        let mut g = Gauss(11);
        let warm: Vec<f64> = (0..1000).map(|_| 100.0 + g.next()).collect();
        let shifted: Vec<f64> = (0..64).map(|_| 110.0 + g.next()).collect();
        for (rate, expect_moves) in [(0.0, false), (0.2, true)] {
            let mut rig = Rig::new(BaselineConfig {
                adapt_rate: rate,
                ..Default::default()
            });
            rig.feed(warm.iter().copied());
            rig.feed(shifted.iter().copied());
            let st = rig.w.stats().unwrap();
            let before = rig.b.snapshot();
            let z0 = rig.b.features(&st).unwrap()[0];
            for _ in 0..50 {
                rig.b.adapt(&st);
            }
            let z1 = rig.b.features(&st).unwrap()[0];
            assert_eq!(rig.b.snapshot() != before, expect_moves);
            if expect_moves {
                assert!(z1.abs() < 0.5 && z0 > 5.0, "{z0} -> {z1}");
            } else {
                assert_eq!(z0, z1);
            }
        }
    }

    #[test]
    fn snapshot_restore_round_trips() {
        let mut rig = Rig::new(BaselineConfig::default());
        let mut g = Gauss(5);
        rig.feed((0..800).map(|_| -3.0 + 0.1 * g.next()));
        let st = rig.w.stats().unwrap();
        let snap = rig.b.snapshot();
        let restored = Baseline::restore(BaselineConfig::default(), BANDS, snap.clone());
        assert_eq!(restored, rig.b);
        assert_eq!(restored.snapshot(), snap);
        assert_eq!(restored.features(&st), rig.b.features(&st));
        assert_eq!(restored.samples_seen(), 800);
        let huge = Baseline::new(BaselineConfig::default(), usize::MAX);
        assert_eq!(huge.bands(), MAX_WINDOW_LEN / 2);
        let narrower = Baseline::restore(BaselineConfig::default(), 2, snap);
        assert_eq!(narrower.snapshot().band_means.len(), 2);
        assert_eq!(narrower.feature_len(), 9);
        assert_eq!(
            narrower.features(&st),
            None,
            "band count mismatch is refused"
        );
    }
}
