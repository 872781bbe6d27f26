//! Feature vectors from a recorded series, computed exactly as a live sensor actor does
//! (same window, same baseline warm-up and adaptation), for training and evaluation.

use super::baseline::Baseline;
use super::window::{Sample, Window};
use super::SensorsConfig;

/// The feature vectors one sensor would send to the model for `series` (after its warm-up),
/// treating every window as normal (the baseline adapts on each).
pub fn features_of_series(cfg: &SensorsConfig, series: &[(i64, f64)]) -> Vec<Vec<f32>> {
    let Ok(mut window) = Window::new(cfg.window_config()) else {
        return Vec::new();
    };
    let mut baseline = Baseline::new(cfg.baseline_config(), cfg.bands);
    let mut out = Vec::new();
    for &(ts, v) in series {
        let Ok(stats) = window.push(Sample { ts, v }) else {
            continue;
        };
        let warming = !baseline.is_ready();
        if warming {
            baseline.observe_sample(v);
        }
        let Some(stats) = stats else { continue };
        if warming {
            baseline.observe_window(&stats);
            continue;
        }
        if let Some(f) = baseline.features(&stats) {
            out.push(f);
            baseline.adapt(&stats);
        }
    }
    out
}
