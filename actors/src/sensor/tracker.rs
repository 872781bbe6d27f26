//! A sensor's window and baseline together: the per-sample state machine shared by the live
//! sensor actor, training (`offline`) and evaluation, so all three see exactly the same
//! features.
//!
//! Design constraints: constant work per sample (the window's); the baseline learns only
//! during warm-up from samples and windows, and afterwards only through [`Tracker::adapt`],
//! which the caller invokes for windows it judged normal.

use super::baseline::{Baseline, BaselineSnapshot};
use super::window::{Rejection, Sample, Window, WindowConfigError, WindowStats};
use super::SensorsConfig;

/// What one accepted sample led to.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Taken into the window; nothing else to do.
    Accepted,
    /// This sample completed the baseline's warm-up: decisions start with the next window.
    Warmed,
    /// A window is due for a decision: its statistics and normalised features.
    Ready(WindowStats, Vec<f32>),
}

/// One sensor's window and baseline.
#[derive(Debug, Clone)]
pub struct Tracker {
    window: Window,
    baseline: Baseline,
}

impl Tracker {
    /// A tracker for `cfg`, resuming `saved` baseline if given.
    pub fn new(
        cfg: &SensorsConfig,
        saved: Option<BaselineSnapshot>,
    ) -> Result<Self, WindowConfigError> {
        let baseline = match saved {
            Some(snap) => Baseline::restore(cfg.baseline_config(), cfg.bands, snap),
            None => Baseline::new(cfg.baseline_config(), cfg.bands),
        };
        Ok(Self {
            window: Window::new(cfg.window_config())?,
            baseline,
        })
    }

    /// Takes one sample; a rejection leaves everything unchanged.
    pub fn push(&mut self, s: Sample) -> Result<Step, Rejection> {
        let stats = self.window.push(s)?;
        let warming = !self.baseline.is_ready();
        if warming {
            self.baseline.observe_sample(s.v);
        }
        let Some(stats) = stats else {
            return Ok(Step::Accepted);
        };
        if warming {
            self.baseline.observe_window(&stats);
            return Ok(if self.baseline.is_ready() {
                Step::Warmed
            } else {
                Step::Accepted
            });
        }
        Ok(match self.baseline.features(&stats) {
            Some(f) => Step::Ready(stats, f),
            None => Step::Accepted,
        })
    }

    /// Lets the baseline follow a window judged normal.
    pub fn adapt(&mut self, stats: &WindowStats) {
        self.baseline.adapt(stats);
    }

    /// The learned baseline, for persistence.
    pub fn snapshot(&self) -> BaselineSnapshot {
        self.baseline.snapshot()
    }

    /// The learned baseline.
    pub fn baseline(&self) -> &Baseline {
        &self.baseline
    }

    /// The window's raw samples, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.window.samples()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_emits_features_every_hop() {
        let cfg = SensorsConfig {
            window: 16,
            hop: 4,
            warmup_samples: 32,
            ..SensorsConfig::default()
        };
        let mut t = Tracker::new(&cfg, None).unwrap();
        let mut steps = Vec::new();
        for i in 0..64i64 {
            let v = 10.0 + (i as f64 * 0.7).sin();
            steps.push(t.push(Sample { ts: i * 100, v }).unwrap());
        }
        let warmed = steps.iter().position(|s| *s == Step::Warmed).unwrap();
        assert!(warmed >= 31, "warm-up ended at sample {warmed}");
        let ready: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Step::Ready(..)))
            .map(|(i, _)| i)
            .collect();
        assert!(!ready.is_empty() && ready[0] > warmed);
        assert!(ready.windows(2).all(|w| w[1] - w[0] == 4));
        assert_eq!(
            t.push(Sample {
                ts: 63 * 100,
                v: 1.0
            }),
            Err(Rejection::Duplicate)
        );
        let resumed = Tracker::new(&cfg, Some(t.snapshot())).unwrap();
        assert_eq!(resumed.snapshot(), t.snapshot());
    }
}
