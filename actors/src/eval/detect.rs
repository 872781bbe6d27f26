//! A recorded series run through a sensor's detection path, in event time, offline.
//!
//! Purpose: `edgegw eval` must judge what `run` would do, so this is not a second detector:
//! it drives the very [`Tracker`] (window, baseline, features), [`Scorer`] (the model, or
//! the fallback rule when the model fails, as the inference worker does) and [`Detector`]
//! (calibration, threshold, alert gate) a live sensor actor uses, with the same
//! configuration. What differs is only what cannot exist offline: the wall-clock alert cap
//! (`alerts.max_per_minute`) is not applied, and no feedback overrides the threshold.
//!
//! Design constraints: deterministic (same series, config and model → the same alerts, bit
//! for bit); one window scored at a time, in window order, exactly as the live sensor
//! applies its decisions.

use crate::model::Scorer;
use crate::sensor::detector::Detector;
use crate::sensor::storm::{At, Verdict};
use crate::sensor::tracker::{Step, Tracker};
use crate::sensor::window::{Sample, WindowConfigError};
use crate::sensor::SensorsConfig;

/// An alert the gateway would have raised.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalAlert {
    /// Event time of the alert: the end of its window (ms), as the uplink message's `ts`.
    pub ts: i64,
    /// Calibrated score.
    pub score: f32,
    /// Its confidence (0–1).
    pub confidence: f32,
    /// The model's raw score.
    pub model_score: f32,
}

/// What one series led to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesRun {
    /// Alerts, in order.
    pub alerts: Vec<EvalAlert>,
    /// Decisions made.
    pub decisions: u64,
    /// Anomalous decisions (alerts and suppressions).
    pub anomalous: u64,
    /// Samples the window refused (duplicates, late), as ingest would count them.
    pub rejected: u64,
    /// Windows the model failed on and the fallback rule scored.
    pub fallback_windows: u64,
    /// First and last sample timestamp (ms).
    pub first_ts: Option<i64>,
    /// See `first_ts`.
    pub last_ts: Option<i64>,
}

impl SeriesRun {
    /// A run whose alerts were captured elsewhere (a gateway's uplink) at `alerts`
    /// (timestamps), over `samples`.
    pub fn captured(samples: &[(i64, f64)], alerts: Vec<i64>) -> Self {
        Self {
            alerts: alerts
                .into_iter()
                .map(|ts| EvalAlert {
                    ts,
                    score: f32::NAN,
                    confidence: f32::NAN,
                    model_score: f32::NAN,
                })
                .collect(),
            first_ts: samples.iter().map(|s| s.0).min(),
            last_ts: samples.iter().map(|s| s.0).max(),
            ..Self::default()
        }
    }
}

/// Runs `samples` (in arrival order) through one sensor's detection path.
pub fn run_series(
    cfg: &SensorsConfig,
    scorer: &Scorer,
    samples: impl IntoIterator<Item = (i64, f64)>,
) -> Result<SeriesRun, WindowConfigError> {
    let mut tracker = Tracker::new(cfg, None)?;
    let mut detector = Detector::new(cfg);
    let fallback = Scorer::fallback(scorer.feature_names().to_vec());
    let mut out = SeriesRun::default();
    for (ts, v) in samples {
        out.first_ts = Some(out.first_ts.map_or(ts, |t| t.min(ts)));
        out.last_ts = Some(out.last_ts.map_or(ts, |t| t.max(ts)));
        let (stats, features) = match tracker.push(Sample { ts, v }) {
            Ok(Step::Ready(stats, features)) => (stats, features),
            Ok(_) => continue,
            Err(_) => {
                out.rejected += 1;
                continue;
            }
        };
        let novelty = tracker.take_novelty();
        let rows = [features];
        let (raw, threshold) = match scorer.score_batch(&rows) {
            Ok(s) if s.len() == 1 => (s[0], scorer.threshold()),
            _ => {
                out.fallback_windows += 1;
                let s = fallback.score_batch(&rows).unwrap_or_default();
                (s.first().copied().unwrap_or(0.0), fallback.threshold())
            }
        };
        out.decisions += 1;
        let d = detector.decide(
            At {
                clock: tracker.clock(),
                ts: stats.end_ts,
            },
            raw,
            threshold,
            novelty,
            |_| cfg.threshold,
            || true,
        );
        if d.anomalous() {
            out.anomalous += 1;
        }
        if let Verdict::Raise { .. } = d.verdict {
            out.alerts.push(EvalAlert {
                ts: stats.end_ts,
                score: d.score,
                confidence: d.confidence,
                model_score: raw,
            });
        }
    }
    Ok(out)
}
