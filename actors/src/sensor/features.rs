//! The scale-free feature vector: names and the normalisation of a
//! [`WindowStats`] against a sensor's learned [`Reference`].
//!
//! Purpose: one anomaly model is shared by all sensors, so its inputs must not
//! depend on a sensor's units or level. [`Baseline`](super::baseline::Baseline)
//! learns the reference; this module turns a window into `f32` features.
//!
//! # Design constraints
//! - **Definitions** (`μ`, `σ` = level mean/std; `ws` = mean window std;
//!   `bm_k` = mean band-k magnitude; `ε = 1e-9`):
//!   - scale floor `f = 1e-6·max(1, |μ|)`; `σ_eff = max(σ, f, 1e-12)`,
//!     `ws_eff = max(ws, f, 1e-12)`, `bm_k_eff = max(bm_k, 1e-3·f, 1e-12)`.
//!     Band magnitudes of white noise are ≈ `std·√(3/(8·len))` (~1e-2 of the
//!     std for `len = 4096`), so their floor sits lower so as not to mask
//!     texture. The floors stop a sensor that was constant during warm-up
//!     from dividing by zero.
//!   - `mean_z, min_z, max_z, p05_z, p50_z, p95_z = (x − μ)/(σ_eff + ε)`;
//!   - `std_log_ratio = ln((std + ε_s)/(ws_eff + ε_s))`, `ε_s = 0.01·ws_eff`, so
//!     a stuck sensor gives `ln(0.01/1.01) ≈ −4.6`, not `−∞`;
//!   - `band_k_log_ratio = ln((mag_k + ε_k)/(bm_k_eff + ε_k))`, `ε_k = 0.01·bm_k_eff`.
//! - **Never NaN/inf**: every feature is clamped to `±clamp`. Arithmetic is
//!   arranged so finite (or infinite) inputs cannot overflow into NaN: ±inf is
//!   saturated to ±`f64::MAX`, differences and sums are taken on halved values.
//!   As a last resort a NaN (only reachable from NaN inputs) becomes `0`.
//! - **Cost**: `O(7 + bands)` per window, one allocation (the returned `Vec`).

use super::window::{WindowStats, MAX_WINDOW_LEN};

/// Number of non-band features preceding the band features.
pub const SCALAR_FEATURES: usize = 7;

/// Band count that [`FEATURE_NAMES`] is written for.
pub const DEFAULT_BANDS: usize = 4;

/// Feature names, in vector order, for [`DEFAULT_BANDS`] bands.
pub const FEATURE_NAMES: [&str; SCALAR_FEATURES + DEFAULT_BANDS] = [
    "mean_z",
    "std_log_ratio",
    "min_z",
    "max_z",
    "p05_z",
    "p50_z",
    "p95_z",
    "band_0_log_ratio",
    "band_1_log_ratio",
    "band_2_log_ratio",
    "band_3_log_ratio",
];

/// The additive `ε` of the z-score denominators.
const EPS: f64 = 1e-9;

/// Feature names, in vector order, for any band count up to
/// `MAX_WINDOW_LEN / 2` (larger counts are capped there; equals
/// [`FEATURE_NAMES`] for `bands == 4`).
pub fn feature_names(bands: usize) -> Vec<String> {
    let bands = bands.min(MAX_WINDOW_LEN / 2);
    FEATURE_NAMES[..SCALAR_FEATURES]
        .iter()
        .map(|s| (*s).to_string())
        .chain((0..bands).map(|k| format!("band_{k}_log_ratio")))
        .collect()
}

/// A sensor's learned normal behaviour, the yardstick for its windows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reference<'a> {
    /// Level mean `μ` over raw samples.
    pub level_mean: f64,
    /// Level variance `σ²` over raw samples.
    pub level_var: f64,
    /// Mean window std `ws`.
    pub window_std: f64,
    /// Mean band magnitudes `bm_k`; a missing entry counts as 0 (the floor).
    pub band_means: &'a [f64],
}

/// Normalises `w` against `r` into `7 + w.bands.len()` features, each in
/// `[−clamp, clamp]` (`clamp` must be finite and `>= 0`, capped at `f32::MAX`;
/// anything else is treated as 20). Order as in [`feature_names`].
pub fn normalise(w: &WindowStats, r: &Reference<'_>, clamp: f64) -> Vec<f32> {
    let clamp = if clamp.is_finite() && clamp >= 0.0 {
        clamp.min(f64::from(f32::MAX))
    } else {
        20.0
    };
    let mu = sat(r.level_mean);
    let floor = 1e-6 * mu.abs().max(1.0); // NaN μ: max() yields 1
    let sigma = r
        .level_var
        .max(0.0)
        .sqrt()
        .max(floor)
        .clamp(1e-12, f64::MAX);
    let denom = sigma * 0.5 + EPS * 0.5;
    let z = |x: f64| (sat(x) * 0.5 - mu * 0.5) / denom;
    let ws = sat(r.window_std).max(floor).max(1e-12);
    let mut out = Vec::with_capacity(SCALAR_FEATURES + w.bands.len());
    out.push(z(w.mean));
    out.push(log_ratio(w.std, ws));
    out.extend([w.min, w.max, w.p05, w.p50, w.p95].map(z));
    for (k, &mag) in w.bands.iter().enumerate() {
        let bm = r.band_means.get(k).copied().unwrap_or(0.0);
        out.push(log_ratio(mag, sat(bm).max(1e-3 * floor).max(1e-12)));
    }
    out.into_iter().map(|x| finish(x, clamp)).collect()
}

/// Saturates ±inf to ±`f64::MAX` (NaN passes through).
pub(crate) fn sat(x: f64) -> f64 {
    x.clamp(-f64::MAX, f64::MAX)
}

/// `ln((x + 0.01·base)/(base + 0.01·base))` for `base > 0`, computed on halved
/// values so the sums cannot overflow; negative `x` counts as 0.
fn log_ratio(x: f64, base: f64) -> f64 {
    let eps = 0.005 * base;
    (sat(x).max(0.0) * 0.5 + eps).ln() - (base * 0.5 + eps).ln()
}

/// Clamps to `±clamp` and converts, mapping NaN to 0 (last-resort guard).
fn finish(x: f64, clamp: f64) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(-clamp, clamp) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::super::baseline::{Baseline, BaselineConfig};
    use super::super::window::{Sample, Window, WindowConfig};
    use super::*;
    use proptest::prelude::*;

    /// Runs `warm` then `test` through a window + baseline the way the sensor
    /// actor does; returns the baseline, the window and the features of `test`.
    fn run(cfg: BaselineConfig, warm: &[f64], test: &[f64]) -> (Baseline, Window, Vec<Vec<f32>>) {
        let wc = WindowConfig {
            len: 64,
            hop: 16,
            bands: 4,
            allowed_lateness_ms: 0,
        };
        let (mut w, mut b, mut out) = (Window::new(wc).unwrap(), Baseline::new(cfg, 4), vec![]);
        for (i, &v) in warm.iter().chain(test).enumerate() {
            let Ok(emitted) = w.push(Sample { ts: i as i64, v }) else {
                continue;
            };
            b.observe_sample(v);
            match (emitted, i >= warm.len()) {
                (Some(st), true) if b.is_ready() => {
                    out.push(b.features(&st).unwrap());
                    b.adapt(&st);
                }
                (Some(st), _) => b.observe_window(&st),
                _ => {}
            }
        }
        (b, w, out)
    }

    fn assert_sane(f: &[f32], lim: f32) {
        assert_eq!(f.len(), 11);
        assert!(f.iter().all(|x| x.is_finite() && x.abs() <= lim), "{f:?}");
    }

    fn stats(mean: f64, std: f64, lo: f64, hi: f64, bands: Vec<f64>) -> WindowStats {
        WindowStats {
            start_ts: 0,
            end_ts: 1,
            n: 64,
            mean,
            std,
            min: lo,
            max: hi,
            p05: lo,
            p50: mean,
            p95: hi,
            bands,
        }
    }

    #[test]
    fn names() {
        assert_eq!(feature_names(4), FEATURE_NAMES.map(String::from).to_vec());
        assert_eq!(feature_names(2).len(), 9);
        assert_eq!(feature_names(usize::MAX).len(), 7 + MAX_WINDOW_LEN / 2);
        assert_eq!(feature_names(0).last().map(String::as_str), Some("p95_z"));
    }

    #[test]
    fn known_values() {
        let bm = [1.0, 2.0, 0.0, 1.0];
        let r = Reference {
            level_mean: 100.0,
            level_var: 4.0,
            window_std: 2.0,
            band_means: &bm,
        };
        let f = normalise(
            &stats(104.0, 2.0, 90.0, 200.0, vec![1.0, 0.0, 0.0, 5.0]),
            &r,
            20.0,
        );
        assert_eq!(f.len(), 11);
        assert!((f[0] - 2.0).abs() < 1e-6, "{f:?}");
        assert!(f[1].abs() < 1e-6);
        assert!((f[2] + 5.0).abs() < 1e-6);
        assert_eq!(f[3], 20.0, "clamped");
        assert!(f[7].abs() < 1e-6);
        assert!((f64::from(f[8]) - (0.02f64 / 2.02).ln()).abs() < 1e-6);
        let stuck = (0.01f64 / 1.01).ln();
        assert!(
            (f64::from(f[9]) - stuck).abs() < 1e-6,
            "0 against a floored 0"
        );
        assert!((f64::from(f[10]) - (5.01f64 / 1.01).ln()).abs() < 1e-5);
        // Stuck: std 0 against ws 2.
        let f = normalise(&stats(100.0, 0.0, 100.0, 100.0, vec![0.0; 4]), &r, 20.0);
        assert!((f64::from(f[1]) - (0.01f64 / 1.01).ln()).abs() < 1e-6);
    }

    #[test]
    fn constant_reference_uses_floors() {
        let bm = [0.0; 4];
        let r = Reference {
            level_mean: 5.0,
            level_var: 0.0,
            window_std: 0.0,
            band_means: &bm,
        };
        let f = normalise(&stats(5.0, 0.0, 5.0, 5.0, vec![0.0; 4]), &r, 20.0);
        let stuck = (0.01f64 / 1.01).ln() as f32;
        assert!(f[..SCALAR_FEATURES]
            .iter()
            .enumerate()
            .all(|(i, x)| i == 1 || *x == 0.0));
        assert!([f[1], f[7], f[8], f[9], f[10]]
            .iter()
            .all(|x| (x - stuck).abs() < 1e-6));
        let f = normalise(&stats(5.001, 1e-3, 5.0, 5.002, vec![1e-4; 4]), &r, 20.0);
        assert!(f.iter().all(|x| x.is_finite() && x.abs() <= 20.0), "{f:?}");
        assert_eq!(f[0], 20.0);
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            -1e3..1e3f64,
            Just(f64::MAX),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(1e-300),
            Just(1e300),
        ]
    }

    proptest! {
        #[test]
        fn always_finite_and_clamped(
            v in proptest::collection::vec(any_f64(), 11),
            r in proptest::collection::vec(any_f64(), 7),
            clamp in prop_oneof![Just(20.0), Just(f64::INFINITY), Just(f64::NAN), 0.0..100.0f64],
        ) {
            let w = WindowStats {
                start_ts: 0, end_ts: 0, n: 1,
                mean: v[0], std: v[1], min: v[2], max: v[3], p05: v[4], p50: v[5], p95: v[6],
                bands: v[7..].to_vec(),
            };
            let r = Reference {
                level_mean: r[0], level_var: r[1], window_std: r[2], band_means: &r[3..],
            };
            let lim = if clamp.is_finite() && clamp >= 0.0 { clamp } else { 20.0 };
            let f = normalise(&w, &r, clamp);
            prop_assert_eq!(f.len(), 11);
            let ok = |x: &f32| x.is_finite() && f64::from(x.abs()) <= lim * (1.0 + 1e-6);
            prop_assert!(f.iter().all(ok), "{:?}", f);
        }
    }

    #[test]
    fn adversarial_streams_give_finite_clamped_features() {
        let alt = |a: f64, b: f64| (0..700).map(move |i| if i % 2 == 0 { a } else { b });
        let ramp = |step: f64| (0..200).map(move |i| f64::from(i) * step);
        let streams: Vec<(Vec<f64>, Vec<f64>)> = vec![
            (vec![5.0; 700], vec![5.0; 200]),
            (vec![0.0; 700], ramp(1.0).collect()),
            (alt(1e300, -1e300).collect(), ramp(1e298).collect()),
            (alt(f64::MAX, -f64::MAX).collect(), vec![0.0; 200]),
            (alt(1e-310, 3e-310).collect(), ramp(1e-300).collect()),
            (vec![1e-300; 700], vec![f64::MAX; 200]),
        ];
        for (warm, test) in streams {
            for clamp in [20.0, f32::INFINITY, f32::NAN, -1.0] {
                let cfg = BaselineConfig {
                    clamp,
                    adapt_rate: 0.5,
                    ..Default::default()
                };
                let (mut b, w, fs) = run(cfg, &warm, &test);
                assert!(!fs.is_empty());
                let lim = if clamp > 0.0 { clamp } else { 20.0 };
                fs.iter().for_each(|f| assert_sane(f, lim));
                // Hand-made hostile stats: NaN / inf fields.
                let mut st = w.stats().unwrap();
                (st.mean, st.std, st.bands[0], st.p50) =
                    (f64::INFINITY, f64::NAN, f64::INFINITY, f64::NEG_INFINITY);
                b.adapt(&st); // ignored: has NaN
                assert_sane(&b.features(&st).unwrap(), lim);
                st.std = f64::INFINITY;
                b.adapt(&st);
                assert_sane(&b.features(&st).unwrap(), lim);
            }
        }
    }

    fn wide_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            -1e6..1e6f64,
            prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
            Just(f64::MAX),
            Just(-f64::MAX),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn streams_always_give_finite_clamped_features(
            warm in proptest::collection::vec(wide_f64(), 64..200),
            test in proptest::collection::vec(wide_f64(), 64..200),
            rate in 0.0f64..=1.0,
        ) {
            let cfg = BaselineConfig { warmup_samples: 32, adapt_rate: rate, clamp: 20.0 };
            let (_, _, fs) = run(cfg, &warm, &test);
            for f in fs {
                prop_assert!(f.iter().all(|x| x.is_finite() && x.abs() <= 20.0), "{:?}", f);
            }
        }
    }
}
