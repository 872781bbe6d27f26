//! The figures an operator looks at first, for `/status` and the demo view: samples/s and
//! decisions/s over the last 10 s, alerts per minute and the p99 decision latency over the
//! last minute.
//!
//! Design constraints: derived from the instruments themselves (read directly, as the OTLP
//! export reads them), sampled once a second by a task of the gateway, so the figures are the
//! same numbers a Prometheus scrape would give, and nothing is added to the data path. The
//! ring holds one minute of readings: constant memory.

use super::read::Buckets;
use super::Metrics;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Rates of samples and decisions are taken over this much of the recent past.
pub const SHORT_WINDOW: Duration = Duration::from_secs(10);
/// Alerts per minute and the p99 latency are taken over this much.
pub const LONG_WINDOW: Duration = Duration::from_secs(60);

/// One reading of the counters the figures come from.
#[derive(Debug, Clone)]
struct Reading {
    at: Instant,
    samples: f64,
    decisions: f64,
    alerts: f64,
    latency: Option<Buckets>,
}

/// The figures, as `/status` shows them under `figures`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Figures {
    /// Samples accepted per second, last 10 s.
    pub samples_per_sec: f64,
    /// Decisions per second, last 10 s.
    pub decisions_per_sec: f64,
    /// Alerts raised per minute, last 60 s (scaled up while the gateway is younger).
    pub alerts_per_min: f64,
    /// p99 of sample received → decision, ms, last 60 s; `None` without decisions.
    pub decision_latency_p99_ms: Option<f64>,
    /// The span the long-window figures actually cover, s (less than 60 just after start).
    pub window_s: f64,
}

/// A minute of readings.
#[derive(Debug, Default)]
pub struct Rates {
    ring: Mutex<VecDeque<Reading>>,
}

impl Rates {
    /// Takes a reading of `m` now (call about once a second).
    pub fn record(&self, m: &Metrics) {
        self.record_at(m, Instant::now());
    }

    fn record_at(&self, m: &Metrics, at: Instant) {
        let latency = Some(m.decision_latency_seconds.reading());
        let reading = Reading {
            at,
            samples: m.samples_ingested.get() as f64,
            decisions: m.decisions.get() as f64,
            alerts: m.alerts.get() as f64,
            latency,
        };
        let mut ring = self.ring.lock();
        while ring
            .front()
            .is_some_and(|r| at.duration_since(r.at) > LONG_WINDOW)
        {
            ring.pop_front();
        }
        ring.push_back(reading);
    }

    /// The figures from the readings so far (zeros until two readings exist).
    pub fn figures(&self) -> Figures {
        let ring = self.ring.lock();
        let (Some(last), Some(first)) = (ring.back(), ring.front()) else {
            return Figures::default();
        };
        let short = ring
            .iter()
            .find(|r| last.at.duration_since(r.at) <= SHORT_WINDOW)
            .unwrap_or(first);
        let per_sec = |a: f64, b: f64, from: &Reading| {
            let dt = last.at.duration_since(from.at).as_secs_f64();
            if dt > 0.0 {
                (a - b).max(0.0) / dt
            } else {
                0.0
            }
        };
        let window = last.at.duration_since(first.at).as_secs_f64();
        Figures {
            samples_per_sec: per_sec(last.samples, short.samples, short),
            decisions_per_sec: per_sec(last.decisions, short.decisions, short),
            alerts_per_min: per_sec(last.alerts, first.alerts, first) * 60.0,
            decision_latency_p99_ms: last.latency.as_ref().and_then(|l| {
                let earlier = if ring.len() > 1 {
                    first.latency.as_ref()
                } else {
                    None
                };
                l.quantile_since(earlier, 0.99).map(|s| s * 1e3)
            }),
            window_s: window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_their_windows() {
        let m = Metrics::new();
        let r = Rates::default();
        let t0 = Instant::now();
        assert_eq!(r.figures(), Figures::default());
        r.record_at(&m, t0);
        // 30 s at 100 samples/s and 10 decisions/s with 2 ms decisions, one alert every 10 s.
        for s in 1..=30u64 {
            m.samples_ingested.inc_by(100);
            m.decisions.inc_by(10);
            for _ in 0..10 {
                m.decision_latency_seconds.observe(0.002);
            }
            if s % 10 == 0 {
                m.alerts.inc();
            }
            r.record_at(&m, t0 + Duration::from_secs(s));
        }
        // Then 10 s with samples and decisions doubled.
        for s in 31..=40u64 {
            m.samples_ingested.inc_by(200);
            m.decisions.inc_by(20);
            r.record_at(&m, t0 + Duration::from_secs(s));
        }
        let f = r.figures();
        assert!((f.samples_per_sec - 200.0).abs() < 1e-9, "{f:?}");
        assert!((f.decisions_per_sec - 20.0).abs() < 1e-9, "{f:?}");
        // 3 alerts in 40 s.
        assert!((f.alerts_per_min - 4.5).abs() < 1e-9, "{f:?}");
        let p99 = f.decision_latency_p99_ms.unwrap();
        assert!((1.5..=2.0).contains(&p99), "{f:?}");
        assert!((f.window_s - 40.0).abs() < 1e-9);
    }

    #[test]
    fn the_ring_keeps_one_minute() {
        let m = Metrics::new();
        let r = Rates::default();
        let t0 = Instant::now();
        for s in 0..200u64 {
            m.alerts.inc();
            r.record_at(&m, t0 + Duration::from_secs(s));
        }
        assert!(r.ring.lock().len() <= 61);
        let f = r.figures();
        assert!((f.alerts_per_min - 60.0).abs() < 1e-9, "{f:?}");
        assert!((f.window_s - 60.0).abs() < 1e-9);
        // No decisions in the window: no latency figure.
        assert_eq!(f.decision_latency_p99_ms, None);
    }
}
