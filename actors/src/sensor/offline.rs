//! Feature vectors from a recorded series, computed exactly as a live sensor actor does (the
//! same [`Tracker`]), for training and evaluation.

use super::tracker::{Step, Tracker};
use super::window::Sample;
use super::SensorsConfig;

/// The feature vectors one sensor would send to the model for `series` (after its warm-up),
/// (the baseline follows every window, as it does live).
pub fn features_of_series(cfg: &SensorsConfig, series: &[(i64, f64)]) -> Vec<Vec<f32>> {
    let Ok(mut t) = Tracker::new(cfg, None) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &(ts, v) in series {
        if let Ok(Step::Ready(_, f)) = t.push(Sample { ts, v }) {
            out.push(f);
        }
    }
    out
}
