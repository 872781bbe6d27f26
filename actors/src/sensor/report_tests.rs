//! The bodies a sensor sends upstream, pinned to their wire form.

use super::*;
use crate::sample::Sample;
use crate::sensor::storm::Verdict;
use serde_json::json;

fn window() -> WindowStats {
    WindowStats {
        start_ts: 1_731_000_000_000,
        end_ts: 1_731_000_000_630,
        n: 64,
        mean: 21.5,
        std: 0.25,
        min: 21.0,
        max: 22.0,
        p05: 21.1,
        p50: 21.5,
        p95: 21.9,
        bands: vec![0.1, 0.2],
    }
}

fn decision(score: f32) -> Decision {
    let episode = EpisodeInfo {
        start: 1_730_999_990_000,
        decisions: 3,
    };
    Decision {
        score,
        model: 0.8765432,
        novelty: 0.33333334,
        confidence: 0.99999994,
        threshold: 0.8,
        verdict: Verdict::Raise {
            suppressed_before: 2,
            episode,
        },
    }
}

fn model() -> ModelId {
    ModelId {
        name: "edgegw-ae".into(),
        version: "1.0.0".into(),
        sha256: "ab12".into(),
    }
}

fn raised<'a>(
    w: &'a WindowStats,
    d: &'a Decision,
    m: &'a ModelId,
    names: &'a [String],
    features: &'a [f32],
    fallback: bool,
) -> Raised<'a> {
    Raised {
        window: w,
        features,
        names,
        model: m,
        model_score: 1.2345678,
        fallback,
        decision: d,
        suppressed_before: 2,
        episode: EpisodeInfo {
            start: 1_730_999_990_000,
            decisions: 3,
        },
    }
}

#[test]
fn alert_body_is_the_decision_rounded() {
    let (w, d, m) = (window(), decision(0.912_345_7), model());
    let names: Vec<String> = ["mean_z", "std_log_ratio", "max_z"]
        .map(String::from)
        .into();
    let features = [1.5f32, -0.123_456_79, f32::NAN];
    let body = alert(&raised(&w, &d, &m, &names, &features, false));
    // Rounded to 6 decimals, a non-finite value as 0, no `fallback` unless it scored.
    let expected = json!({
        "window": {"start": 1_731_000_000_000i64, "end": 1_731_000_000_630i64, "n": 64},
        "score": 0.912346, "threshold": 0.8, "confidence": 1.0, "model_score": 1.234568,
        "novelty": 0.333333,
        "model": {"name": "edgegw-ae", "version": "1.0.0", "sha256": "ab12"},
        "features": {"mean_z": 1.5, "std_log_ratio": -0.123457, "max_z": 0.0},
        "alerts_suppressed": 2,
        "episode": {"start": 1_730_999_990_000i64, "decisions": 3},
    });
    assert_eq!(serde_json::to_value(&body).unwrap(), expected);
}

#[test]
fn alert_body_says_when_the_fallback_scored() {
    let (w, d, m) = (window(), decision(f32::INFINITY), model());
    let names = vec!["mean_z".to_string()];
    let body = alert(&raised(&w, &d, &m, &names, &[2.0], true));
    let expected = json!({
        "window": {"start": 1_731_000_000_000i64, "end": 1_731_000_000_630i64, "n": 64},
        "score": 0.0, "threshold": 0.8, "confidence": 1.0, "model_score": 1.234568,
        "novelty": 0.333333,
        "model": {"name": "edgegw-ae", "version": "1.0.0", "sha256": "ab12"},
        "features": {"mean_z": 2.0},
        "alerts_suppressed": 2,
        "episode": {"start": 1_730_999_990_000i64, "decisions": 3},
        "fallback": true,
    });
    assert_eq!(serde_json::to_value(&body).unwrap(), expected);
}

#[test]
fn raw_window_body_spans_its_samples() {
    let samples = [(1_000, 21.0), (1_010, 21.25), (1_020, -3.5)]
        .map(|(ts, v)| Sample { ts, v })
        .to_vec();
    let c = RawCapture {
        alert_end: 1_010,
        samples,
        remaining: 0,
    };
    let expected = json!({
        "reason": "alert",
        "alert_window_end": 1_010,
        "window": {"start": 1_000, "end": 1_020, "n": 3},
        "samples": [[1_000, 21.0], [1_010, 21.25], [1_020, -3.5]],
    });
    let body = raw_window(&c).unwrap();
    assert_eq!(serde_json::to_value(&body).unwrap(), expected);
    let empty = RawCapture {
        samples: Vec::new(),
        ..c
    };
    assert_eq!(raw_window(&empty), None);
}

#[test]
fn summary_body_has_the_period_numbers() {
    let stats = SummaryStats {
        count: 600,
        mean: 21.5,
        std: 0.125,
        min: 20.0,
        max: 23.0,
        p50: 21.4,
        p95: 22.75,
        alerts: 1,
    };
    let body = summary(
        (1_731_000_000_000, 1_731_000_060_000),
        Some(&stats),
        1,
        (4, 3),
        ("edgegw-ae", "1.0.0"),
    );
    let expected = json!({
        "period": {"start": 1_731_000_000_000i64, "end": 1_731_000_060_000i64},
        "count": 600,
        "mean": 21.5, "std": 0.125, "min": 20.0, "max": 23.0, "p50": 21.4, "p95": 22.75,
        "alerts": 1, "alerts_suppressed": 3, "anomalous": 4,
        "model": {"name": "edgegw-ae", "version": "1.0.0"},
    });
    assert_eq!(serde_json::to_value(&body).unwrap(), expected);
}

#[test]
fn summary_body_of_a_period_without_samples_has_null_numbers() {
    let body = summary((0, 60_000), None, 0, (2, 1), ("fallback", "1"));
    let expected = json!({
        "period": {"start": 0, "end": 60_000},
        "count": 0,
        "mean": null, "std": null, "min": null, "max": null, "p50": null, "p95": null,
        "alerts": 0, "alerts_suppressed": 1, "anomalous": 2,
        "model": {"name": "fallback", "version": "1"},
    });
    assert_eq!(serde_json::to_value(&body).unwrap(), expected);
}
