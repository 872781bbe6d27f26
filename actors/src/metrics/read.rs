//! The instruments read as data: every family with its series and values, taken from the
//! instruments themselves. It feeds the OTLP metric export and the figures of `/status`, so
//! both see the numbers Prometheus scrapes from the same instruments — one set of
//! instruments, three readers, and no text in between.
//!
//! Design constraints: every instrument of [`super::Metrics`] is [`Read`]: counters and gauges
//! are `prometheus_client`'s, whose values can be read; families and histograms are the
//! gateway's own ([`super::instrument`]), because the crate's can be encoded but not read.
//! Reading takes each instrument's lock once and runs off the data path: an export every few
//! seconds, `/status` once a second.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::BTreeMap;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic, cumulative since start.
    Counter,
    /// A current value.
    Gauge,
    /// Cumulative bucket counts with a sum and a count.
    Histogram,
}

/// A label set as name/value pairs, sorted by name.
pub type Labels = Vec<(&'static str, &'static str)>;

/// One histogram series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    /// `(upper bound, cumulative count)`, ascending; the last bound is `+Inf`.
    pub cumulative: Vec<(f64, u64)>,
    /// Sum of the observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Buckets {
    /// The `q` quantile (0..=1) of the observations counted in `self` but not in `earlier`
    /// (the same series read before; `None` for everything since start), interpolated linearly
    /// inside its bucket as Prometheus' `histogram_quantile` does. `None` without observations.
    pub fn quantile_since(&self, earlier: Option<&Buckets>, q: f64) -> Option<f64> {
        let counts: Vec<(f64, u64)> = self
            .cumulative
            .iter()
            .enumerate()
            .map(|(i, &(le, c))| {
                let before = earlier
                    .and_then(|e| e.cumulative.get(i))
                    .map_or(0, |&(_, c)| c);
                (le, c.saturating_sub(before))
            })
            .collect();
        let total = counts.last()?.1;
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut lower = (0.0, 0u64);
        for &(le, c) in &counts {
            if c as f64 >= rank {
                if le.is_infinite() {
                    // Beyond the last finite bound: report that bound, as Prometheus does.
                    return Some(lower.0);
                }
                let in_bucket = (c - lower.1) as f64;
                let frac = if in_bucket > 0.0 {
                    (rank - lower.1 as f64) / in_bucket
                } else {
                    1.0
                };
                return Some(lower.0 + (le - lower.0) * frac);
            }
            lower = (le, c);
        }
        Some(lower.0)
    }
}

/// A series' value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter or gauge.
    Number(f64),
    /// A histogram.
    Histogram(Buckets),
}

/// One metric family, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The registered name (`edgegw_samples_ingested`, without `_total`).
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Its series, by label set.
    pub series: BTreeMap<Labels, Value>,
}

impl Family {
    /// The single series without labels, if any.
    pub fn unlabelled(&self) -> Option<&Value> {
        self.series.get(&Vec::new())
    }
}

/// An instrument holding one series: a counter, a gauge, a histogram.
pub trait Series {
    /// Its type.
    const KIND: Kind;
    /// Its value now.
    fn value(&self) -> Value;
}

impl Series for Counter {
    const KIND: Kind = Kind::Counter;
    fn value(&self) -> Value {
        Value::Number(self.get() as f64)
    }
}

impl Series for Gauge {
    const KIND: Kind = Kind::Gauge;
    fn value(&self) -> Value {
        Value::Number(self.get() as f64)
    }
}

/// An instrument that can be read: a [`Series`], or a family of them.
pub trait Read: Send + Sync {
    /// Its type.
    fn kind(&self) -> Kind;
    /// Its series and their values now.
    fn read(&self) -> BTreeMap<Labels, Value>;
}

impl<T: Series + Send + Sync> Read for T {
    fn kind(&self) -> Kind {
        T::KIND
    }
    fn read(&self) -> BTreeMap<Labels, Value> {
        BTreeMap::from([(Vec::new(), self.value())])
    }
}

/// A label set made of one `&'static str` label (every label set of the gateway).
pub trait LabelPair {
    /// The label's name.
    const NAME: &'static str;
    /// The label's value.
    fn value(&self) -> &'static str;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.
    use super::*;
    use crate::metrics::Metrics;

    fn busy() -> Metrics {
        let m = Metrics::new();
        m.samples_ingested.inc_by(7);
        m.reject("malformed_json");
        m.reject("malformed_json");
        m.reject("unknown_sensor");
        m.sensors_active.set(3);
        m.restart("uplink");
        for v in [0.000_015, 0.000_015, 0.003, 20.0] {
            m.decision_latency_seconds.observe(v);
        }
        m.inference_batch_size.observe(3.0);
        m
    }

    #[test]
    fn reads_every_kind_from_the_instruments() {
        let fams = busy().read();
        let get = |n: &str| fams.iter().find(|f| f.name == n).unwrap();

        let s = get("edgegw_samples_ingested");
        assert_eq!(s.kind, Kind::Counter);
        assert_eq!(s.unlabelled(), Some(&Value::Number(7.0)));
        assert!(!s.help.is_empty());

        let r = get("edgegw_ingest_rejected");
        let key = vec![("reason", "malformed_json")];
        assert_eq!(r.series.get(&key), Some(&Value::Number(2.0)));
        assert_eq!(r.series.len(), 2);

        assert_eq!(get("edgegw_sensors_active").kind, Kind::Gauge);
        assert_eq!(
            get("edgegw_sensors_active").unlabelled(),
            Some(&Value::Number(3.0))
        );

        let Some(Value::Histogram(h)) = get("edgegw_decision_latency_seconds").unlabelled() else {
            panic!("no histogram series");
        };
        assert_eq!(h.count, 4);
        assert!((h.sum - 20.00303).abs() < 1e-9);
        assert_eq!(h.cumulative.last(), Some(&(f64::INFINITY, 4)));
        assert!(h
            .cumulative
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        // Two of four observations at 15 µs: the median lies in the 10–15 µs bucket.
        let p50 = h.quantile_since(None, 0.5).unwrap();
        assert!((10e-6..=15e-6).contains(&p50), "p50 {p50}");
        // The largest is beyond the last finite bound (10 s): reported as that bound.
        let p100 = h.quantile_since(None, 1.0).unwrap();
        assert!((10.0..11.0).contains(&p100), "p100 {p100}");
    }

    /// Every family read is in the scrape with the same values, and every family scraped is
    /// read: the two readers see one set of instruments.
    #[test]
    fn the_reading_and_the_scrape_agree() {
        let m = busy();
        let text = m.render();
        let fams = m.read();
        for f in &fams {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            assert!(
                text.contains(&format!("# TYPE {} {kind}\n", f.name)),
                "{} missing",
                f.name
            );
            for (labels, v) in &f.series {
                let l = if labels.is_empty() {
                    String::new()
                } else {
                    let pairs: Vec<String> =
                        labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                    format!("{{{}}}", pairs.join(","))
                };
                let lines = match v {
                    Value::Number(x) if f.kind == Kind::Counter => {
                        vec![format!("{}_total{l} {x}\n", f.name)]
                    }
                    Value::Number(x) => vec![format!("{}{l} {x}\n", f.name)],
                    Value::Histogram(b) => vec![
                        format!("{}_count{l} {}\n", f.name, b.count),
                        format!("{}_bucket{{le=\"+Inf\"}} {}\n", f.name, b.count),
                    ],
                };
                for line in lines {
                    assert!(text.contains(&line), "{line:?} not in the scrape");
                }
            }
        }
        let scraped = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(scraped, fams.len(), "every scraped family is read");
    }

    #[test]
    fn quantile_of_a_window_ignores_what_came_before() {
        let m = Metrics::new();
        for _ in 0..100 {
            m.decision_latency_seconds.observe(5.0);
        }
        let before = m.decision_latency_seconds.reading();
        let now = || m.decision_latency_seconds.reading();
        assert_eq!(now().quantile_since(Some(&before), 0.99), None);
        for _ in 0..10 {
            m.decision_latency_seconds.observe(0.000_5);
        }
        let p99 = now().quantile_since(Some(&before), 0.99).unwrap();
        assert!((0.000_3..=0.000_5).contains(&p99), "p99 {p99}");
    }
}
