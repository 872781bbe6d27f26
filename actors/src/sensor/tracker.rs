//! A sensor's window and baseline together: the per-sample state machine shared by the live
//! sensor actor, training (`offline`) and evaluation, so all three see exactly the same
//! features.
//!
//! Design constraints: constant work per sample (the window's); the baseline learns from
//! samples and windows during warm-up, and afterwards follows every window once its
//! features are taken (bounded steps, see [`super::baseline`]). Features are therefore a
//! function of the accepted sample stream alone: they never wait for, or depend on, a
//! decision, so the live actor and `edgegw eval` compute the same vectors.

use super::baseline::{Baseline, BaselineSnapshot};
use super::likelihood::Calibrated;
use super::novelty::{Novelty, NoveltyConfig};
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
    /// How new the sensor's course is (learned from every accepted sample, warm-up included);
    /// `None` when `sensors.novelty` is off.
    novelty: Option<Novelty>,
    /// The sensor's clock: accepted samples, plus the samples a silence stood for.
    clock: i64,
    /// Newest accepted timestamp.
    last_ts: Option<i64>,
    /// Typical interval between samples, ms (EMA of the gaps, each capped at 4× the current
    /// estimate so a silence does not inflate it); 0 until two samples were seen.
    interval_ms: f64,
}

/// A gap longer than this many typical intervals is a silence: the clock counts the samples
/// it stood for.
const SILENCE: f64 = 4.0;

/// Most samples one silence can add to the clock (a sensor back after a year).
const MAX_SILENCE_SAMPLES: f64 = 1e7;

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
            novelty: cfg.novelty.then(|| Novelty::new(NoveltyConfig::default())),
            clock: 0,
            last_ts: None,
            interval_ms: 0.0,
        })
    }

    /// The sensor's clock after the newest sample: the samples it has sent, where a silence
    /// longer than 4 typical intervals counts the samples it stood for. Alert spacing,
    /// reminders and episode gaps are measured on it, so they scale with each sensor's own
    /// sampling interval.
    pub fn clock(&self) -> i64 {
        self.clock
    }

    /// The typical interval between samples, ms (0 until known).
    pub fn interval_ms(&self) -> f64 {
        self.interval_ms
    }

    fn tick(&mut self, ts: i64) {
        let mut step = 1.0;
        if let Some(last) = self.last_ts {
            let gap = ts.saturating_sub(last) as f64;
            if gap > 0.0 {
                if self.interval_ms > 0.0 && gap > SILENCE * self.interval_ms {
                    step = (gap / self.interval_ms).round().min(MAX_SILENCE_SAMPLES);
                }
                self.interval_ms = if self.interval_ms > 0.0 {
                    0.95 * self.interval_ms + 0.05 * gap.min(SILENCE * self.interval_ms)
                } else {
                    gap
                };
            }
        }
        self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
        self.clock = self.clock.saturating_add(step as i64);
    }

    /// Takes one sample; a rejection leaves everything unchanged.
    pub fn push(&mut self, s: Sample) -> Result<Step, Rejection> {
        let stats = self.window.push(s)?;
        self.tick(s.ts);
        if let Some(n) = &mut self.novelty {
            n.observe(s.v);
        }
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
        let features = self.baseline.features(&stats);
        self.baseline.adapt(&stats);
        Ok(match features {
            Some(f) => Step::Ready(stats, f),
            None => Step::Accepted,
        })
    }

    /// The highest calibrated novelty since the previous call, taken with each window's
    /// features for its decision; [`Calibrated::NONE`] when `sensors.novelty` is off.
    pub fn take_novelty(&mut self) -> Calibrated {
        self.novelty
            .as_mut()
            .map_or(Calibrated::NONE, Novelty::take)
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

    #[test]
    fn novelty_can_be_switched_off() {
        let jump = |i: i64| {
            if i >= 3000 {
                50.0
            } else {
                10.0 + (i % 7) as f64 * 0.1
            }
        };
        let highest = |novelty: bool| {
            let cfg = SensorsConfig {
                novelty,
                ..SensorsConfig::default()
            };
            let mut t = Tracker::new(&cfg, None).unwrap();
            (0..3200i64)
                .map(|i| {
                    t.push(Sample {
                        ts: i * 100,
                        v: jump(i),
                    })
                    .unwrap();
                    t.take_novelty().score
                })
                .fold(0.0, f32::max)
        };
        assert!(highest(true) > 0.8);
        assert_eq!(highest(false), 0.0);
    }
}
