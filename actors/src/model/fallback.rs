//! Rule-based scorer used when no model package is usable (missing, refused or failing).
//!
//! The score of a row is the maximum over the recognised features of `|value| × weight`:
//! weight 1 for `mean_z`, `max_z`, `min_z` and `p50_z`; 2 for `std_log_ratio`; 1.5 for every
//! `band_*` feature. A row is flagged when its score is strictly above `z_limit`.
//!
//! # Design constraints
//! - Needs no file, no training and no candle, so it is always available and cannot fail:
//!   [`FallbackRule::score_batch`] returns plain scores, never an error.
//! - Deterministic and cheap: a name lookup per batch and a few comparisons per row.
//! - Features are found by name, so it works with whatever subset the extractor produces;
//!   unknown names are ignored (a row with no recognised feature scores 0 and is never flagged),
//!   values missing from a short row are ignored, and a non-finite value anywhere in a row makes
//!   its score `f32::INFINITY`, as for the model.

/// Name reported by a scorer running the fallback rule.
pub const FALLBACK_NAME: &str = "fallback";
/// Version reported by a scorer running the fallback rule; bump when the rule changes.
pub const FALLBACK_VERSION: &str = "rule-1";

/// Threshold rule on the z-like features of the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FallbackRule {
    /// Score above which a row is flagged; 6 keeps false alarms on normal data (|z| ≲ 5) rare.
    pub z_limit: f32,
}

impl Default for FallbackRule {
    fn default() -> Self {
        Self { z_limit: 6.0 }
    }
}

impl FallbackRule {
    /// Weight of a feature in the score, or `None` when the rule ignores it.
    pub fn weight_of(name: &str) -> Option<f32> {
        match name {
            "mean_z" | "max_z" | "min_z" | "p50_z" => Some(1.0),
            "std_log_ratio" => Some(2.0),
            _ if name.starts_with("band_") => Some(1.5),
            _ => None,
        }
    }

    /// Scores each row of `x`, whose values follow `feature_names`.
    pub fn score_batch(&self, feature_names: &[String], x: &[Vec<f32>]) -> Vec<f32> {
        let used: Vec<(usize, f32)> = feature_names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Self::weight_of(n).map(|w| (i, w)))
            .collect();
        x.iter()
            .map(|row| {
                if row.iter().any(|v| !v.is_finite()) {
                    return f32::INFINITY;
                }
                used.iter()
                    .filter_map(|&(i, w)| row.get(i).map(|v| v.abs() * w))
                    .fold(0.0, f32::max)
            })
            .collect()
    }

    /// Score above which a row is flagged: `z_limit`.
    pub fn threshold(&self) -> f32 {
        self.z_limit
    }
}
