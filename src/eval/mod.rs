//! `edgegw eval`: labelled recorded series through the gateway's own detection path, scored
//! with NAB's published method.
//!
//! Design constraints:
//! - Judges what `run` would do: the configuration is loaded exactly as `run` loads it
//!   (built-in defaults, `--config`, `EDGEGW_*` overrides), the model is the one `run` would
//!   load, and every series goes through [`edgegw_actors::eval::detect`], which drives the
//!   live sensor's own window, baseline, model, calibration, threshold and alert gate, in
//!   event time. Only the wall-clock alert cap is not applied.
//! - Each value column of a file is one sensor, named as `edgegw replay` names it; the
//!   file's detections are the union of its sensors' alerts, each at its window's end.
//! - Deterministic: the same files, labels, config and model give the same report.
//! - Every input is checked before anything runs: a missing file, a file without labels or
//!   a bad label file exits 2 naming it.

mod load;
mod report;

use crate::config;
use edgegw_actors::eval::detect::{run_series, SeriesRun};
use edgegw_actors::eval::labels::{self, ColumnKind, NabLabels};
use edgegw_actors::eval::nab::{self, FileTruth, Profile};
use edgegw_actors::system::load_scorer;
use std::path::PathBuf;
use std::process::ExitCode;

/// `edgegw eval` options.
#[derive(clap::Args)]
#[command(after_help = "\
LABELS is NAB's combined_windows.json layout ({\"<dir>/<file>.csv\": [[start, end], …]}, \
files matched by their last two path components, or by file name), or `columns`: the CSVs' \
own label columns (anomaly, label, is_anomaly: each run of labelled rows is one window; \
changepoint: each labelled row opens a window, see docs/detection.md).

Example: edgegw eval data/nab/data/*/*.csv --labels data/nab/labels/combined_windows.json")]
pub struct EvalArgs {
    /// Labelled CSV files (the replay layouts: a timestamp column, value columns, label
    /// columns).
    #[arg(required = true, value_name = "FILE.csv")]
    files: Vec<PathBuf>,
    /// `combined_windows.json` (NAB layout), or `columns`.
    #[arg(long, value_name = "LABELS")]
    labels: String,
    /// Also write the full report as JSON here.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    /// Gateway config whose detection settings are evaluated (default: built-in, as `run`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Put in front of every sensor name, as `replay --sensor-prefix`.
    #[arg(long, value_name = "P", default_value = "")]
    sensor_prefix: String,
    /// Score these alerts instead of running the detector: uplink alert messages captured
    /// from a gateway the same files were replayed into, one per line (the JSON payload, or
    /// `topic payload` as `mosquitto_sub -v` prints it); each counts at its `ts` for the
    /// file whose sensor it names.
    #[arg(long, value_name = "ALERTS.jsonl")]
    alerts: Option<PathBuf>,
}

/// Alerts captured from a gateway: sensor → alert timestamps.
type Captured = std::collections::HashMap<String, Vec<i64>>;

/// Reads captured alert messages (see `--alerts`).
fn read_captured(path: &std::path::Path) -> Result<Captured, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Captured::new();
    for (i, line) in text.lines().enumerate() {
        let Some(start) = line.find('{') else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&line[start..])
            .map_err(|e| format!("{}:{}: not a JSON alert: {e}", path.display(), i + 1))?;
        let (Some(sensor), Some(ts)) = (
            v.get("sensor").and_then(|s| s.as_str()),
            v.get("ts").and_then(|t| t.as_i64()),
        ) else {
            return Err(format!(
                "{}:{}: an alert needs \"sensor\" and \"ts\"",
                path.display(),
                i + 1
            ));
        };
        out.entry(sensor.to_string()).or_default().push(ts);
    }
    Ok(out)
}

/// One evaluated file.
pub struct FileEval {
    /// Its key in the labels (`dir/file.csv`).
    pub key: String,
    /// Rows scored.
    pub rows: usize,
    /// Rows left out (a timestamp or value that does not parse).
    pub skipped_rows: u64,
    /// Sensors (value columns).
    pub sensors: usize,
    /// The union of its sensors' alerts (window-end timestamps, sorted, deduplicated).
    pub detections: Vec<i64>,
    /// Per-sensor runs.
    pub runs: Vec<(String, SeriesRun)>,
    /// The score under each profile of [`Profile::ALL`].
    pub scores: Vec<nab::FileScore>,
}

/// The labels key and windows of a loaded file: from the NAB labels, or from its own label
/// columns (every labelled column contributes its windows).
fn windows_of(
    labels: Option<&NabLabels>,
    f: &load::Loaded,
) -> Result<(String, Vec<(i64, i64)>), String> {
    match labels {
        Some(l) => {
            let key = l.key_for(&f.path).map_err(|e| e.to_string())?;
            let w = l.windows(key).unwrap_or_default().to_vec();
            Ok((key.to_string(), w))
        }
        None => {
            if f.labels.is_empty() {
                return Err(
                    "--labels columns, but the file has no label column (anomaly, changepoint, label, is_anomaly)"
                        .into(),
                );
            }
            let mut w = Vec::new();
            for (name, vals) in &f.labels {
                if let Some(kind) = ColumnKind::from_column_name(name) {
                    w.extend(labels::windows_from_columns(&f.timestamps, vals, kind));
                }
            }
            let w = labels::merge_overlapping(w);
            let key = f
                .path
                .iter()
                .rev()
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|c| c.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            Ok((key, w))
        }
    }
}

/// Runs `edgegw eval`.
pub fn eval(a: EvalArgs) -> ExitCode {
    let cfg = match config::load_for_command(a.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let labels = if a.labels == "columns" {
        None
    } else {
        let parsed = std::fs::read_to_string(&a.labels)
            .map_err(|e| e.to_string())
            .and_then(|t| NabLabels::from_json(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: --labels {}: {e}", a.labels);
                return ExitCode::from(2);
            }
        }
    };
    let captured = match a.alerts.as_deref().map(read_captured).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: --alerts {e}");
            return ExitCode::from(2);
        }
    };
    let (scorer, refused) = load_scorer(&cfg);
    if let Some(why) = refused {
        eprintln!("warning: model refused ({why}); evaluating the fallback rule, as run would");
    }
    let mut files = Vec::new();
    for path in &a.files {
        let loaded = match load::load(path, &a.sensor_prefix) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let (key, windows) = match windows_of(labels.as_ref(), &loaded) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        let mut runs = Vec::new();
        let mut detections = Vec::new();
        for (name, samples) in &loaded.series {
            if let Some(c) = &captured {
                let got = c.get(name).cloned().unwrap_or_default();
                detections.extend(&got);
                runs.push((name.clone(), SeriesRun::captured(samples, got)));
                continue;
            }
            let run = match run_series(&cfg.sensors, &scorer, samples.iter().copied()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: invalid [sensors] window settings: {e}");
                    return ExitCode::from(2);
                }
            };
            detections.extend(run.alerts.iter().map(|al| al.ts));
            runs.push((name.clone(), run));
        }
        detections.sort_unstable();
        detections.dedup();
        let truth = FileTruth {
            timestamps: loaded.timestamps.clone(),
            windows,
        };
        let scores = Profile::ALL
            .iter()
            .map(|p| nab::score_file(&truth, &detections, p))
            .collect();
        files.push(FileEval {
            key,
            rows: loaded.timestamps.len(),
            skipped_rows: loaded.skipped_rows,
            sensors: loaded.series.len(),
            detections,
            runs,
            scores,
        });
    }
    let model = (scorer.name().to_string(), scorer.version().to_string());
    let rep = report::Report::new(&files, &model);
    print!("{}", rep.table());
    if let Some(out) = &a.json {
        let text = match serde_json::to_string_pretty(&rep.json()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot encode the report: {e}");
                return ExitCode::from(1);
            }
        };
        if let Err(e) = std::fs::write(out, text + "\n") {
            eprintln!("error: cannot write {}: {e}", out.display());
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
