//! What a sensor has learned, as plain data kept outside its actor (a restarted actor resumes
//! from it): the [`BaselineSnapshot`] of its [`Baseline`](crate::sensor::baseline::Baseline) and that baseline's
//! [`BaselineConfig`]. A leaf, so the context that keeps the snapshots imports no stage. Re-exported by
//! `baseline`.
//!
//! # Design constraints
//! - Serde-free plain data with public fields, `Clone + Debug + PartialEq`, so
//!   the actor can persist a snapshot in whatever format it uses and a
//!   restarted actor resumes exactly where it left off.
//! - No per-sample cost of their own.

/// Tunables of a [`Baseline`](crate::sensor::baseline::Baseline).
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineConfig {
    /// Raw samples to learn from before features are produced (default 600).
    pub warmup_samples: usize,
    /// EMA rate per normal window after warm-up (default 0.002; 0 = frozen;
    /// NaN/negative act as 0, values above 1 as 1).
    pub adapt_rate: f64,
    /// Features are clamped to `±clamp` (default 20) so one wild window cannot
    /// dominate the model; NaN or non-positive values fall back to 20.
    pub clamp: f32,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            warmup_samples: 600,
            adapt_rate: 0.002,
            clamp: 20.0,
        }
    }
}

/// The learned state of a [`Baseline`](crate::sensor::baseline::Baseline), as plain
/// data so a restarted actor can resume where it left off.
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineSnapshot {
    /// Finite samples ever passed to `observe_sample` (lifetime count).
    pub samples_seen: u64,
    /// Samples that entered the level statistics (warm-up progress).
    pub level_n: u64,
    /// Level mean `μ`.
    pub level_mean: f64,
    /// Level variance `σ²` (may be `+inf` for absurd magnitudes).
    pub level_var: f64,
    /// Windows observed during warm-up.
    pub windows_seen: u64,
    /// Mean window std `ws`.
    pub window_std: f64,
    /// Mean band magnitudes `bm_k`, one per band.
    pub band_means: Vec<f64>,
}

impl BaselineSnapshot {
    /// The state of a baseline that has seen nothing, for `bands` bands.
    pub fn empty(bands: usize) -> Self {
        Self {
            samples_seen: 0,
            level_n: 0,
            level_mean: 0.0,
            level_var: 0.0,
            windows_seen: 0,
            window_std: 0.0,
            band_means: vec![0.0; bands],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = BaselineConfig::default();
        assert_eq!(
            (c.warmup_samples, c.adapt_rate, c.clamp),
            (600, 0.002, 20.0)
        );
        assert_eq!(BaselineSnapshot::empty(3).band_means, vec![0.0; 3]);
    }
}
