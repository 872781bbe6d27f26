//! The `edgegw eval` report: per file, per category (the labels' directory, NAB's data
//! sets) and in total, as a text table and as JSON.
//!
//! Normalisation is NAB's: over a set of files, `100 × (raw − null)/(perfect − null)` with
//! `null = −fnWeight × windows` (no detection at all) and `perfect = tpWeight × windows`.

use super::FileEval;
use edgegw_actors::eval::nab::{FileScore, Profile};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Milliseconds in a day.
const DAY_MS: f64 = 86_400_000.0;

/// Sums over a set of files.
#[derive(Default, Clone)]
struct Sums {
    files: usize,
    sensors: usize,
    rows: usize,
    alerts: usize,
    windows: usize,
    detected: usize,
    false_alerts: usize,
    /// Sensor-days of data.
    sensor_days: f64,
    /// Delay of each detected window: rows, ms.
    delays_rows: Vec<u64>,
    delays_ms: Vec<i64>,
    /// Raw score per profile.
    raw: Vec<f64>,
}

impl Sums {
    fn add(&mut self, f: &FileEval) {
        self.files += 1;
        self.sensors += f.sensors;
        self.rows += f.rows;
        self.alerts += f.runs.iter().map(|(_, r)| r.alerts.len()).sum::<usize>();
        let std = &f.scores[0];
        self.windows += std.windows;
        self.detected += std.detected;
        self.false_alerts += std.false_positives;
        self.delays_rows
            .extend(std.delays.iter().map(|d| d.rows as u64));
        self.delays_ms.extend(std.delays.iter().map(|d| d.ms));
        let span = span_days(f);
        self.sensor_days += span * f.sensors as f64;
        if self.raw.is_empty() {
            self.raw = vec![0.0; f.scores.len()];
        }
        for (r, s) in self.raw.iter_mut().zip(&f.scores) {
            *r += s.raw;
        }
    }

    /// NAB's normalised score under profile `k`.
    fn normalised(&self, k: usize) -> f64 {
        normalised(
            self.raw.get(k).copied().unwrap_or(0.0),
            self.windows,
            &Profile::ALL[k],
        )
    }

    fn json(&self) -> Value {
        let mut scores = serde_json::Map::new();
        for (k, p) in Profile::ALL.iter().enumerate() {
            scores.insert(
                p.name.to_string(),
                json!({"score": round2(self.normalised(k)), "raw": round2(self.raw.get(k).copied().unwrap_or(0.0))}),
            );
        }
        json!({
            "files": self.files,
            "sensors": self.sensors,
            "rows": self.rows,
            "alerts": self.alerts,
            "windows": self.windows,
            "windows_detected": self.detected,
            "false_alerts": self.false_alerts,
            "false_alerts_per_sensor_day": round2(self.false_per_day()),
            "delay_rows_median": median(&self.delays_rows),
            "delay_ms_median": median(&self.delays_ms),
            "nab": Value::Object(scores),
        })
    }

    fn false_per_day(&self) -> f64 {
        if self.sensor_days > 0.0 {
            self.false_alerts as f64 / self.sensor_days
        } else {
            0.0
        }
    }
}

/// `100 × (raw − null)/(perfect − null)`; 0 for a set without windows.
pub fn normalised(raw: f64, windows: usize, p: &Profile) -> f64 {
    let null = -p.fn_ * windows as f64;
    let perfect = p.tp * windows as f64;
    if perfect - null > 0.0 {
        100.0 * (raw - null) / (perfect - null)
    } else {
        0.0
    }
}

fn span_days(f: &FileEval) -> f64 {
    let ts = f
        .runs
        .iter()
        .flat_map(|(_, r)| [r.first_ts, r.last_ts])
        .flatten();
    let (lo, hi) = ts.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    if hi > lo {
        (hi - lo) as f64 / DAY_MS
    } else {
        0.0
    }
}

fn median<T: Copy + Ord>(v: &[T]) -> Option<f64>
where
    f64: From<Wide<T>>,
{
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    Some(f64::from(Wide(s[s.len() / 2])))
}

/// A count or a duration, for [`median`].
struct Wide<T>(T);

impl From<Wide<u64>> for f64 {
    fn from(w: Wide<u64>) -> f64 {
        w.0 as f64
    }
}

impl From<Wide<i64>> for f64 {
    fn from(w: Wide<i64>) -> f64 {
        w.0 as f64
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The report of one run.
pub struct Report<'a> {
    files: &'a [FileEval],
    model: &'a (String, String),
    total: Sums,
    categories: BTreeMap<String, Sums>,
}

impl<'a> Report<'a> {
    /// Sums `files` per category and in total.
    pub fn new(files: &'a [FileEval], model: &'a (String, String)) -> Self {
        let mut total = Sums::default();
        let mut categories: BTreeMap<String, Sums> = BTreeMap::new();
        for f in files {
            total.add(f);
            categories.entry(category(&f.key)).or_default().add(f);
        }
        Self {
            files,
            model,
            total,
            categories,
        }
    }

    /// The text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "model {} {}; NAB scoring (standard / low FP / low FN); detections = alerts at their window end\n",
            self.model.0, self.model.1
        );
        let _ = writeln!(
            out,
            "{:<58} {:>6} {:>6} {:>7} {:>5} {:>5} {:>8} {:>8} {:>8}",
            "file", "rows", "alerts", "windows", "hit", "false", "std", "low_fp", "low_fn"
        );
        for f in self.files {
            let s: &FileScore = &f.scores[0];
            let alerts: usize = f.runs.iter().map(|(_, r)| r.alerts.len()).sum();
            let _ = writeln!(
                out,
                "{:<58} {:>6} {:>6} {:>7} {:>5} {:>5} {:>8.2} {:>8.2} {:>8.2}",
                f.key,
                f.rows,
                alerts,
                s.windows,
                s.detected,
                s.false_positives,
                f.scores[0].raw,
                f.scores[1].raw,
                f.scores[2].raw
            );
        }
        let _ = writeln!(
            out,
            "\n{:<24} {:>5} {:>7} {:>5} {:>6} {:>9} {:>11} {:>8} {:>8} {:>8}",
            "set",
            "files",
            "windows",
            "hit",
            "false",
            "false/day",
            "delay_rows",
            "std",
            "low_fp",
            "low_fn"
        );
        let rows = self
            .categories
            .iter()
            .map(|(k, v)| (k.as_str(), v))
            .chain(std::iter::once(("total", &self.total)));
        for (name, s) in rows {
            let _ = writeln!(
                out,
                "{:<24} {:>5} {:>7} {:>5} {:>6} {:>9.2} {:>11} {:>8.2} {:>8.2} {:>8.2}",
                name,
                s.files,
                s.windows,
                s.detected,
                s.false_alerts,
                s.false_per_day(),
                median(&s.delays_rows).map_or("-".into(), |d| format!("{d:.0}")),
                s.normalised(0),
                s.normalised(1),
                s.normalised(2)
            );
        }
        out
    }

    /// The JSON document (`--json`).
    pub fn json(&self) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                let mut one = Sums::default();
                one.add(f);
                let mut v = one.json();
                if let Value::Object(m) = &mut v {
                    m.insert("file".into(), json!(f.key));
                    m.insert("skipped_rows".into(), json!(f.skipped_rows));
                    m.insert("detections".into(), json!(f.detections));
                    m.insert(
                        "sensors_detail".into(),
                        json!(f
                            .runs
                            .iter()
                            .map(|(n, r)| json!({"sensor": n, "decisions": r.decisions, "anomalous": r.anomalous, "alerts": r.alerts.len(), "rejected": r.rejected}))
                            .collect::<Vec<_>>()),
                    );
                }
                v
            })
            .collect();
        let cats: serde_json::Map<String, Value> = self
            .categories
            .iter()
            .map(|(k, v)| (k.clone(), v.json()))
            .collect();
        json!({
            "model": {"name": self.model.0, "version": self.model.1},
            "total": self.total.json(),
            "categories": Value::Object(cats),
            "files": files,
        })
    }
}

/// The category of a labels key: its directory (`realKnownCause/x.csv` → `realKnownCause`).
fn category(key: &str) -> String {
    match key.rsplit_once('/') {
        Some((dir, _)) => dir.rsplit('/').next().unwrap_or(dir).to_string(),
        None => "-".into(),
    }
}
