//! Ground truth for evaluation: labelled anomaly windows, from NAB's `combined_windows.json` or
//! from a CSV's own label columns, as `(start_ms, end_ms)` pairs ready for [`super::nab`].
//!
//! # NAB label files
//!
//! `combined_windows.json` maps `"<category>/<file>.csv"` to a list of `["start", "end"]`
//! timestamp pairs. A CSV path given on a command line is matched to a key by its last two
//! path components (`…/realKnownCause/nyc_taxi.csv` → `realKnownCause/nyc_taxi.csv`), falling
//! back to the file name alone when exactly one key ends with it. A file absent from the labels
//! is an error naming it; so is a file name that matches several keys.
//!
//! Timestamps are `YYYY-MM-DD hh:mm:ss[.ffffff]` (a `T` may stand for the space), read as UTC
//! and converted to milliseconds since the Unix epoch ([`parse_ts_ms`]). NAB labels carry
//! microseconds (`"2014-04-10 07:15:00.000000"`), data rows do not (`"2014-04-10 07:15:00"`);
//! both become the same instant, which is how they are matched.
//!
//! # Label columns
//!
//! [`windows_from_columns`] builds windows from a per-row label column. No NAB-style widening
//! of short anomalies is done; what is done, exactly:
//!
//! - [`ColumnKind::Anomaly`] (columns `anomaly`, `label`, `is_anomaly`): every maximal run of
//!   consecutive labelled rows becomes one window `[first row ts, last row ts]`, so a single
//!   labelled row is a one-row window.
//! - [`ColumnKind::Changepoint`] (column `changepoint`): every labelled row `c` opens a window
//!   that starts at `c` and spans `w = max(1, floor(0.10 × rows / changepoints))` rows (NAB's
//!   window-width rule: 10 % of the file shared among its anomalies), stopping early before the
//!   next changepoint and at the end of the file. The window lies after the change, not around
//!   it: a detector cannot react to a change before it happens.
//!
//! A row is labelled when its value is nonzero and not NaN. A file with several label columns
//! (SKAB has `anomaly` and `changepoint`) gets the windows of all of them, and windows that
//! overlap are then one window, their union ([`merge_overlapping`]): the scorer counts one
//! window per anomaly, and a detection inside both must not be a hit and a false alert at once.
//!
//! Design constraints: pure functions of their inputs (no file I/O here, callers read the
//! files); windows come out sorted by start and never overlap.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDateTime;

/// Errors loading labels.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The label file is not JSON of the `{"<file>": [["start", "end"], …]}` shape.
    #[error("label file is not NAB windows JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The data file has no entry in the label file (neither by category/name nor by name).
    #[error("no labels for {path}")]
    MissingFile {
        /// The data file path as given.
        path: String,
    },
    /// Several label keys end with the data file's name and its category did not match any.
    #[error("labels for {path} are ambiguous: {candidates:?}")]
    AmbiguousFile {
        /// The data file path as given.
        path: String,
        /// The label keys that match the file name.
        candidates: Vec<String>,
    },
    /// A timestamp is not `YYYY-MM-DD hh:mm:ss[.ffffff]`.
    #[error("unparseable timestamp {value:?}")]
    Timestamp {
        /// The offending text.
        value: String,
    },
    /// A window ends before it starts.
    #[error("window [{start}, {end}] of {key} ends before it starts")]
    InvertedWindow {
        /// The label key.
        key: String,
        /// The window start as written.
        start: String,
        /// The window end as written.
        end: String,
    },
}

/// Parses `YYYY-MM-DD hh:mm:ss[.f…]` (or with `T` for the space) as UTC, to milliseconds since
/// the Unix epoch. Sub-millisecond digits are truncated.
pub fn parse_ts_ms(s: &str) -> Result<i64, LabelError> {
    let t = s.trim();
    NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f"))
        .map(|dt| dt.and_utc().timestamp_millis())
        .map_err(|_| LabelError::Timestamp {
            value: s.to_owned(),
        })
}

/// NAB's labelled windows for a whole corpus, keyed by `"<category>/<file>.csv"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NabLabels {
    /// Windows per key, as `(start_ms, end_ms)` in the file's order.
    files: BTreeMap<String, Vec<(i64, i64)>>,
}

impl NabLabels {
    /// Parses the text of a `combined_windows.json`.
    pub fn from_json(text: &str) -> Result<Self, LabelError> {
        let raw: BTreeMap<String, Vec<(String, String)>> = serde_json::from_str(text)?;
        let mut files = BTreeMap::new();
        for (key, pairs) in raw {
            let mut windows = Vec::with_capacity(pairs.len());
            for (start, end) in pairs {
                let (s, e) = (parse_ts_ms(&start)?, parse_ts_ms(&end)?);
                if e < s {
                    return Err(LabelError::InvertedWindow { key, start, end });
                }
                windows.push((s, e));
            }
            files.insert(key, windows);
        }
        Ok(Self { files })
    }

    /// The label keys (`"<category>/<file>.csv"`), sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Number of labelled files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when no file is labelled.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The key a data file path matches (see the module docs for the rule).
    pub fn key_for(&self, path: &Path) -> Result<&str, LabelError> {
        let shown = || path.display().to_string();
        let names: Vec<&str> = path
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        let Some(&name) = names.last() else {
            return Err(LabelError::MissingFile { path: shown() });
        };
        if let [.., category, _] = names.as_slice() {
            let key = format!("{category}/{name}");
            if let Some((k, _)) = self.files.get_key_value(&key) {
                return Ok(k);
            }
        }
        let candidates: Vec<&String> = self
            .files
            .keys()
            .filter(|k| k.as_str() == name || k.rsplit('/').next() == Some(name))
            .collect();
        match candidates.as_slice() {
            [k] => Ok(k.as_str()),
            [] => Err(LabelError::MissingFile { path: shown() }),
            many => Err(LabelError::AmbiguousFile {
                path: shown(),
                candidates: many.iter().map(|k| (*k).clone()).collect(),
            }),
        }
    }

    /// The windows (`(start_ms, end_ms)`) of the file at `path`, matched as [`Self::key_for`].
    pub fn windows_for(&self, path: &Path) -> Result<&[(i64, i64)], LabelError> {
        let key = self.key_for(path)?;
        Ok(self.windows(key).unwrap_or(&[]))
    }

    /// The windows under an exact key, if labelled.
    pub fn windows(&self, key: &str) -> Option<&[(i64, i64)]> {
        self.files.get(key).map(Vec::as_slice)
    }
}

/// How a CSV label column marks anomalies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Rows inside an anomaly are labelled (`anomaly`, `label`, `is_anomaly`): runs → windows.
    Anomaly,
    /// The row where a change happens is labelled (`changepoint`): each opens a window.
    Changepoint,
}

impl ColumnKind {
    /// The kind a CSV column header names, case-insensitively; `None` for other columns.
    pub fn from_column_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "anomaly" | "label" | "is_anomaly" => Some(Self::Anomaly),
            "changepoint" => Some(Self::Changepoint),
            _ => None,
        }
    }
}

/// Windows from a per-row label column (see the module docs for the exact rule).
/// `timestamps` and `labels` are row-aligned; extra entries of the longer one are ignored.
pub fn windows_from_columns(
    timestamps: &[i64],
    labels: &[f64],
    kind: ColumnKind,
) -> Vec<(i64, i64)> {
    let n = timestamps.len().min(labels.len());
    let marked: Vec<usize> = (0..n)
        .filter(|&i| labels[i] != 0.0 && !labels[i].is_nan())
        .collect();
    let mut windows = Vec::new();
    match kind {
        ColumnKind::Anomaly => {
            let mut run: Option<(usize, usize)> = None;
            for &i in &marked {
                run = match run {
                    Some((s, e)) if e + 1 == i => Some((s, i)),
                    Some((s, e)) => {
                        windows.push((timestamps[s], timestamps[e]));
                        Some((i, i))
                    }
                    None => Some((i, i)),
                };
            }
            if let Some((s, e)) = run {
                windows.push((timestamps[s], timestamps[e]));
            }
        }
        ColumnKind::Changepoint => {
            if marked.is_empty() {
                return windows;
            }
            // Integer form of floor(0.10 × n / k), exact for every n and k.
            let width = (n / (10 * marked.len())).max(1);
            for (j, &c) in marked.iter().enumerate() {
                let limit = marked.get(j + 1).map_or(n, |&next| next);
                let end = (c + width).min(limit) - 1;
                windows.push((timestamps[c], timestamps[end]));
            }
        }
    }
    windows
}

/// Windows sorted by start, with every group of overlapping windows (one starts at or before
/// another's end) replaced by its union; the result never overlaps.
pub fn merge_overlapping(mut windows: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    windows.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(windows.len());
    for (start, end) in windows {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nab_and_row_timestamps_as_the_same_instant() {
        let a = parse_ts_ms("2014-04-10 07:15:00.000000").unwrap();
        let b = parse_ts_ms("2014-04-10 07:15:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_ts_ms("1970-01-01 00:00:01.5").unwrap(), 1500);
        assert_eq!(parse_ts_ms("1970-01-01T00:01:00").unwrap(), 60_000);
        assert!(matches!(
            parse_ts_ms("2014-02-30 00:00:00"),
            Err(LabelError::Timestamp { value }) if value == "2014-02-30 00:00:00"
        ));
    }

    #[test]
    fn matches_keys_by_category_then_name() {
        let json = r#"{"realKnownCause/nyc_taxi.csv": [["2014-11-01 19:00:00.000000",
            "2014-11-02 12:30:00.000000"]], "a/x.csv": [], "b/x.csv": []}"#;
        let labels = NabLabels::from_json(json).unwrap();
        let key = |p: &str| labels.key_for(Path::new(p)).map(str::to_owned);
        assert_eq!(
            key("/d/realKnownCause/nyc_taxi.csv").unwrap(),
            "realKnownCause/nyc_taxi.csv"
        );
        assert_eq!(
            key("elsewhere/nyc_taxi.csv").unwrap(),
            "realKnownCause/nyc_taxi.csv"
        );
        assert_eq!(key("nyc_taxi.csv").unwrap(), "realKnownCause/nyc_taxi.csv");
        assert_eq!(key("data/b/x.csv").unwrap(), "b/x.csv");
        assert!(matches!(
            key("c/x.csv"),
            Err(LabelError::AmbiguousFile { .. })
        ));
        assert!(
            matches!(key("c/y.csv"), Err(LabelError::MissingFile { path }) if path == "c/y.csv")
        );
        let w = labels.windows_for(Path::new("nyc_taxi.csv")).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].1 - w[0].0, (17 * 60 + 30) * 60_000);
    }

    #[test]
    fn rejects_bad_json_and_bad_timestamps() {
        assert!(matches!(
            NabLabels::from_json("[1]"),
            Err(LabelError::Json(_))
        ));
        let bad = r#"{"a/x.csv": [["yesterday", "2014-01-01 00:00:00"]]}"#;
        assert!(matches!(
            NabLabels::from_json(bad),
            Err(LabelError::Timestamp { value }) if value == "yesterday"
        ));
    }

    #[test]
    fn anomaly_runs_become_windows() {
        let ts: Vec<i64> = (0..8).map(|i| i * 10).collect();
        let labels = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, f64::NAN, 2.0];
        let w = windows_from_columns(&ts, &labels, ColumnKind::Anomaly);
        assert_eq!(w, vec![(10, 20), (40, 40), (70, 70)]);
    }

    #[test]
    fn changepoints_open_windows_capped_at_the_next() {
        // 100 rows, 2 changepoints: width = floor(0.10 * 100 / 2) = 5 rows.
        let ts: Vec<i64> = (0..100).collect();
        let mut labels = vec![0.0; 100];
        labels[10] = 1.0;
        labels[13] = 1.0;
        let w = windows_from_columns(&ts, &labels, ColumnKind::Changepoint);
        assert_eq!(w, vec![(10, 12), (13, 17)]);
        labels[13] = 0.0;
        labels[98] = 1.0;
        let w = windows_from_columns(&ts, &labels, ColumnKind::Changepoint);
        assert_eq!(w, vec![(10, 14), (98, 99)]);
        assert_eq!(
            ColumnKind::from_column_name(" Is_Anomaly"),
            Some(ColumnKind::Anomaly)
        );
        assert_eq!(ColumnKind::from_column_name("value"), None);
    }

    #[test]
    fn overlapping_windows_of_two_columns_become_their_union() {
        // SKAB's layout: an anomaly run over rows 40..=60, changepoints where it starts and
        // just after it ends; 100 rows and 2 changepoints give 5-row changepoint windows.
        let ts: Vec<i64> = (0..100).collect();
        let mut anomaly = vec![0.0; 100];
        anomaly[40..=60].fill(1.0);
        let mut change = vec![0.0; 100];
        change[40] = 1.0;
        change[61] = 1.0;
        let mut all = windows_from_columns(&ts, &anomaly, ColumnKind::Anomaly);
        all.extend(windows_from_columns(&ts, &change, ColumnKind::Changepoint));
        assert_eq!(merge_overlapping(all), vec![(40, 60), (61, 65)]);
        assert_eq!(
            merge_overlapping(vec![(30, 35), (0, 10), (5, 20), (20, 25)]),
            vec![(0, 25), (30, 35)]
        );
    }
}
