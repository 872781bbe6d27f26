//! The registry read back as data: the OpenMetrics text that `/metrics` serves, parsed into
//! families of series. It feeds the OTLP metric export and the figures of `/status`, so both
//! see exactly what Prometheus scrapes — one set of instruments, three readers.
//!
//! Design constraints: reads only what `prometheus_client` writes (`# HELP`, `# TYPE`, counters
//! as `<name>_total`, gauges, histograms as `_bucket{le}`/`_sum`/`_count`, `# EOF`); anything
//! else is skipped, never an error, so a new instrument type costs a missing export, not a
//! failed one. Runs off the data path (an export every few seconds, `/status` once a second).

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

/// A label set, sorted by name (without `le`).
pub type Labels = Vec<(String, String)>;

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

/// One metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The registered name (`edgegw_samples_ingested`, without `_total`).
    pub name: String,
    /// Its help text.
    pub help: String,
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

/// Every family of an exposition, in order of appearance.
pub fn parse(text: &str) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    let mut help = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').map_or("", |(_, h)| h).to_string();
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let Some((name, kind)) = rest.split_once(' ') else {
                continue;
            };
            let kind = match kind {
                "counter" => Kind::Counter,
                "gauge" => Kind::Gauge,
                "histogram" => Kind::Histogram,
                _ => continue,
            };
            out.push(Family {
                name: name.to_string(),
                help: std::mem::take(&mut help),
                kind,
                series: BTreeMap::new(),
            });
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some(fam) = out.last_mut() else { continue };
        let Some((name, mut labels, value)) = sample(line) else {
            continue;
        };
        let Some(suffix) = name.strip_prefix(fam.name.as_str()) else {
            continue;
        };
        match (fam.kind, suffix) {
            (Kind::Counter, "_total") | (Kind::Gauge, "") => {
                fam.series.insert(labels, Value::Number(value));
            }
            (Kind::Histogram, "_bucket" | "_sum" | "_count") => {
                let le = labels
                    .iter()
                    .position(|(k, _)| k == "le")
                    .map(|i| labels.remove(i).1);
                let entry = fam
                    .series
                    .entry(labels)
                    .or_insert_with(|| Value::Histogram(Buckets::default()));
                let Value::Histogram(b) = entry else { continue };
                match (suffix, le) {
                    ("_bucket", Some(le)) => {
                        let bound = if le == "+Inf" {
                            f64::INFINITY
                        } else {
                            le.parse().unwrap_or(f64::NAN)
                        };
                        if !bound.is_nan() {
                            b.cumulative.push((bound, value as u64));
                        }
                    }
                    ("_sum", _) => b.sum = value,
                    ("_count", _) => b.count = value as u64,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    for f in &mut out {
        for v in f.series.values_mut() {
            if let Value::Histogram(b) = v {
                b.cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
    }
    out
}

/// `name{labels} value` → its parts, labels sorted by name.
fn sample(line: &str) -> Option<(&str, Labels, f64)> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = head.split_once('{') else {
        return Some((head, Vec::new(), value));
    };
    let body = rest.strip_suffix('}')?;
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut val = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'n' => val.push('\n'),
                    c => val.push(c),
                },
                c => val.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').to_string(), val));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels.sort();
    Some((name, labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    #[test]
    fn reads_back_every_kind_from_the_registry() {
        let m = Metrics::new();
        m.samples_ingested.inc_by(7);
        m.reject("malformed_json");
        m.reject("malformed_json");
        m.reject("unknown_sensor");
        m.sensors_active.set(3);
        for v in [0.000_015, 0.000_015, 0.003, 20.0] {
            m.decision_latency_seconds.observe(v);
        }
        let fams = parse(&m.render());
        let get = |n: &str| fams.iter().find(|f| f.name == n).unwrap();

        let s = get("edgegw_samples_ingested");
        assert_eq!(s.kind, Kind::Counter);
        assert_eq!(s.unlabelled(), Some(&Value::Number(7.0)));
        assert!(!s.help.is_empty());

        let r = get("edgegw_ingest_rejected");
        let key = vec![("reason".to_string(), "malformed_json".to_string())];
        assert_eq!(r.series.get(&key), Some(&Value::Number(2.0)));
        assert_eq!(r.series.len(), 2);

        assert_eq!(get("edgegw_sensors_active").kind, Kind::Gauge);

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

    #[test]
    fn quantile_of_a_window_ignores_what_came_before() {
        let m = Metrics::new();
        for _ in 0..100 {
            m.decision_latency_seconds.observe(5.0);
        }
        let hist = |m: &Metrics| {
            let fams = parse(&m.render());
            let f = fams
                .into_iter()
                .find(|f| f.name == "edgegw_decision_latency_seconds")
                .unwrap();
            match f.unlabelled() {
                Some(Value::Histogram(h)) => h.clone(),
                _ => panic!("no histogram"),
            }
        };
        let before = hist(&m);
        assert_eq!(hist(&m).quantile_since(Some(&before), 0.99), None);
        for _ in 0..10 {
            m.decision_latency_seconds.observe(0.000_5);
        }
        let p99 = hist(&m).quantile_since(Some(&before), 0.99).unwrap();
        assert!((0.000_3..=0.000_5).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn labels_with_escapes_and_junk_lines() {
        let text =
            "# HELP x_y A thing.\n# TYPE x_y counter\nx_y_total{a=\"q\\\"uo,te\",b=\"2\"} 3\n\
                    garbage line\n# TYPE z summary\nz 1\n# EOF\n";
        let fams = parse(text);
        assert_eq!(fams.len(), 1);
        let key = vec![
            ("a".to_string(), "q\"uo,te".to_string()),
            ("b".to_string(), "2".to_string()),
        ];
        assert_eq!(fams[0].series.get(&key), Some(&Value::Number(3.0)));
    }
}
