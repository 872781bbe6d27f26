//! A labelled CSV file read whole for evaluation: its rows' timestamps, one series per value
//! column (named as `edgegw replay` names the sensors), and its label columns.
//!
//! Design constraints: the same reader, column rules and timestamp parsing as `replay`
//! ([`crate::replay`]), so an evaluated file is exactly the data a replay publishes; rows
//! whose timestamp or a value does not parse are left out of both (counted).

use crate::replay::columns::{normalise, LABEL_COLUMNS};
use crate::replay::csv::{OpenError, ReadError, Skips, Source};
use std::path::{Path, PathBuf};

/// One file, read.
pub struct Loaded {
    /// The file.
    pub path: PathBuf,
    /// Timestamp (ms) of every usable row, in file order.
    pub timestamps: Vec<i64>,
    /// `(sensor name, samples)` per value column, samples in file order.
    pub series: Vec<(String, Vec<(i64, f64)>)>,
    /// `(normalised column name, value per row of `timestamps`)` per label column.
    pub labels: Vec<(String, Vec<f64>)>,
    /// Rows left out.
    pub skipped_rows: u64,
}

/// Why a file cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Unusable header or file.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The disk failed mid-file.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Reads `path`; sensor names get `prefix`.
pub fn load(path: &Path, prefix: &str) -> Result<Loaded, LoadError> {
    let mut src = Source::open(path, prefix)?;
    let n = src.layout.values.len();
    src.set_sensors((0..n).collect());
    let mut series: Vec<(String, Vec<(i64, f64)>)> = src
        .layout
        .values
        .iter()
        .map(|(_, name)| (name.clone(), Vec::new()))
        .collect();
    let mut skips = Skips::default();
    let mut timestamps = Vec::new();
    while src.advance(&mut skips)? {
        timestamps.push(src.ts);
        for &(k, v) in &src.values {
            series[k].1.push((src.ts, v));
        }
    }
    let labels = label_columns(path, timestamps.len())?;
    Ok(Loaded {
        path: path.to_path_buf(),
        timestamps,
        series,
        labels,
        skipped_rows: skips.rows,
    })
}

/// The label columns of `path`, one value per usable row (a second pass with the same
/// reader settings; rows the first pass skipped are skipped here too, by the same rule).
fn label_columns(path: &Path, rows: usize) -> Result<Vec<(String, Vec<f64>)>, LoadError> {
    let err = |reason: String| OpenError {
        path: path.to_path_buf(),
        reason,
    };
    let mut src = Source::open(path, "")?;
    let header = src.header().map_err(|e| err(format!("bad header: {e}")))?;
    let cols: Vec<(usize, String)> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (i, normalise(h)))
        .filter(|(_, n)| LABEL_COLUMNS.contains(&n.as_str()))
        .collect();
    if cols.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(String, Vec<f64>)> = cols
        .iter()
        .map(|(_, n)| (n.clone(), Vec::with_capacity(rows)))
        .collect();
    let n = src.layout.values.len();
    src.set_sensors((0..n).collect());
    let mut skips = Skips::default();
    while src.advance(&mut skips)? {
        for ((col, _), (_, vals)) in cols.iter().zip(out.iter_mut()) {
            let v = src.cell(*col).trim().parse::<f64>().unwrap_or(0.0);
            vals.push(if v.is_finite() { v } else { 0.0 });
        }
    }
    Ok(out)
}
