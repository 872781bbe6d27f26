//! What a sensor reports upstream: the body of an alert (a raised decision), of the raw
//! window captured around it, and of a period summary. The uplink adds the fields every
//! message carries (`id`, `seq`, `ts`, `trace_id`, `sensor`); the wire form is in
//! docs/wire.md.
//!
//! Design constraints: scores, the threshold and the features are rounded to 6 decimals
//! ([`round`]) so payloads stay short and stable; a summary of a period without samples has
//! `count` 0 and null statistics; `fallback` is written only when the fallback rule scored.

use super::detector::Decision;
use super::raw::RawCapture;
use super::storm::EpisodeInfo;
use super::summary::SummaryStats;
use crate::inference::ModelId;
use crate::outbound::wire::{
    Alert, AlertModel, Episode, Period, RawAroundAlert, RawWindow, Summary, SummaryModel, Window,
};
use crate::sample::WindowStats;

/// A raised decision, as its alert reports it.
pub(super) struct Raised<'a> {
    /// The scored window.
    pub window: &'a WindowStats,
    /// Its features, in the scorer's order.
    pub features: &'a [f32],
    /// The scorer's feature names, in the same order.
    pub names: &'a [String],
    /// The scorer that scored it.
    pub model: &'a ModelId,
    /// The model's own score (before calibration).
    pub model_score: f32,
    /// True when the fallback rule scored it.
    pub fallback: bool,
    /// The decision.
    pub decision: &'a Decision,
    /// Suppressions since the sensor's previous alert or summary.
    pub suppressed_before: u64,
    /// The episode the alert belongs to.
    pub episode: EpisodeInfo,
}

/// The body of the alert for `r`.
pub(super) fn alert(r: &Raised<'_>) -> Alert {
    let (w, d) = (r.window, r.decision);
    Alert {
        window: Window {
            start: w.start_ts,
            end: w.end_ts,
            n: w.n as u64,
        },
        score: round(d.score as f64),
        threshold: round(d.threshold as f64),
        confidence: round(d.confidence as f64),
        model: AlertModel {
            name: r.model.name.clone(),
            version: r.model.version.clone(),
            sha256: r.model.sha256.clone(),
        },
        features: r
            .names
            .iter()
            .zip(r.features)
            .map(|(n, v)| (n.clone(), round(*v as f64)))
            .collect(),
        model_score: round(r.model_score as f64),
        novelty: round(d.novelty as f64),
        alerts_suppressed: r.suppressed_before,
        episode: Episode {
            start: r.episode.start,
            decisions: r.episode.decisions,
        },
        fallback: r.fallback,
    }
}

/// The body of a finished raw window captured around an alert; None when it holds no sample.
pub(super) fn raw_window(c: &RawCapture) -> Option<RawWindow> {
    let (first, last) = (c.samples.first()?, c.samples.last()?);
    Some(RawWindow::Alert(RawAroundAlert {
        alert_window_end: c.alert_end,
        window: Window {
            start: first.ts,
            end: last.ts,
            n: c.samples.len() as u64,
        },
        samples: c.samples.iter().map(|s| (s.ts, s.v)).collect(),
    }))
}

/// The body of the summary of the period `(start, end)`: its numbers (None when no sample
/// arrived), the alerts raised in it, the alert gate's `(anomalous, suppressed)` counts and
/// the scorer's `(name, version)`.
pub(super) fn summary(
    period: (i64, i64),
    stats: Option<&SummaryStats>,
    alerts: u64,
    gate: (u64, u64),
    model: (&str, &str),
) -> Summary {
    let (anomalous, suppressed) = gate;
    Summary {
        period: Period {
            start: period.0,
            end: period.1,
        },
        count: stats.map_or(0, |s| s.count),
        mean: stats.map(|s| s.mean),
        std: stats.map(|s| s.std),
        min: stats.map(|s| s.min),
        max: stats.map(|s| s.max),
        p50: stats.map(|s| s.p50),
        p95: stats.map(|s| s.p95),
        alerts,
        alerts_suppressed: suppressed,
        anomalous,
        model: SummaryModel {
            name: model.0.to_string(),
            version: model.1.to_string(),
        },
    }
}

/// Rounds to 6 decimal places so payloads stay short and stable; a non-finite value is 0.
fn round(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1e6).round() / 1e6
    } else {
        0.0
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
