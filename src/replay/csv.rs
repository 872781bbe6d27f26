//! One recorded CSV file read row by row: the delimiter sniffed, the header turned into a
//! [`Layout`], every row parsed into a timestamp and the finite values of its sensors.
//!
//! Design constraints:
//! - Streaming: one record buffer per file, reused; a file of any size costs the same memory.
//! - Bad input never stops a replay: a row whose timestamp or any value does not parse (or
//!   that is not UTF-8) is skipped whole and recorded in [`Skips`] with `file:line`; an empty
//!   cell skips just that column's sample, a non-finite value (`NaN`, `inf`) likewise, counted.
//! - Only what makes the whole file unusable is an error ([`OpenError`]): it cannot be opened,
//!   has no header, no timestamp column or no value column.

use super::columns::{self, Layout};
use super::lines::LineCounter;
use super::ts;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Most skipped rows kept with their `file:line` for the final report.
pub const MAX_REPORTED: usize = 20;

/// A file that cannot be replayed at all.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct OpenError {
    /// The file.
    pub path: PathBuf,
    /// Why, for the user.
    pub reason: String,
}

/// A read failure in the middle of a file (the disk, not the content).
#[derive(Debug, thiserror::Error)]
#[error("{}: read failed: {source}", path.display())]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// The underlying error.
    pub source: ::csv::Error,
}

/// Rows and values left out, over all files.
#[derive(Debug, Default)]
pub struct Skips {
    /// Rows skipped whole.
    pub rows: u64,
    /// Single values skipped because they were NaN or infinite.
    pub non_finite: u64,
    /// Rows whose timestamp is earlier than the row before in the same file (still published).
    pub backwards: u64,
    /// The first [`MAX_REPORTED`] skipped rows: `file:line: reason`.
    pub examples: Vec<String>,
}

impl Skips {
    fn row(&mut self, path: &Path, line: u64, reason: std::fmt::Arguments<'_>) {
        self.rows += 1;
        if self.examples.len() < MAX_REPORTED {
            self.examples
                .push(format!("{}:{line}: {reason}", path.display()));
        }
    }
}

/// One open file and its current row.
pub struct Source {
    /// The file, for messages.
    pub path: PathBuf,
    /// Its columns.
    pub layout: Layout,
    /// Global sensor index of each entry of `layout.values`.
    sensors: Vec<usize>,
    rdr: ::csv::Reader<BufReader<File>>,
    rec: ::csv::StringRecord,
    /// The current row: timestamp and `(sensor index, value)` of its present, finite values.
    pub ts: i64,
    /// See `ts`.
    pub values: Vec<(usize, f64)>,
    last_ts: Option<i64>,
    lines: LineCounter,
}

impl Source {
    /// Opens `path`, sniffs its delimiter and reads its header; sensor names get `prefix`.
    pub fn open(path: &Path, prefix: &str) -> Result<Source, OpenError> {
        let err = |reason: String| OpenError {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|e| err(format!("cannot open: {e}")))?;
        let mut buf = BufReader::with_capacity(64 * 1024, file);
        let delimiter = sniff(
            buf.fill_buf()
                .map_err(|e| err(format!("cannot read: {e}")))?,
        );
        let mut rdr = ::csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(::csv::Trim::All)
            .from_reader(buf);
        let header = rdr
            .headers()
            .map_err(|e| err(format!("bad header: {e}")))?
            .clone();
        if header.iter().all(str::is_empty) {
            return Err(err("empty file: no header line".into()));
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        let layout =
            columns::layout(header.iter(), stem.as_deref().unwrap_or(""), prefix).map_err(err)?;
        Ok(Source {
            path: path.to_path_buf(),
            layout,
            sensors: Vec::new(),
            rdr,
            rec: ::csv::StringRecord::new(),
            ts: 0,
            values: Vec::new(),
            last_ts: None,
            lines: LineCounter::default(),
        })
    }

    /// The header line's cells.
    pub fn header(&mut self) -> Result<::csv::StringRecord, ::csv::Error> {
        self.rdr.headers().cloned()
    }

    /// Cell `col` of the current row (`""` when absent).
    pub fn cell(&self, col: usize) -> &str {
        self.rec.get(col).unwrap_or("")
    }

    /// Sets the global sensor index of each value column (same order as `layout.values`).
    pub fn set_sensors(&mut self, sensors: Vec<usize>) {
        self.sensors = sensors;
    }

    /// Reads the next usable row into `ts`/`values`; `false` at the end of the file.
    pub fn advance(&mut self, skips: &mut Skips) -> Result<bool, ReadError> {
        loop {
            match self.rdr.read_record(&mut self.rec) {
                Ok(false) => return Ok(false),
                Ok(true) => {
                    if self.parse_row(skips) {
                        return Ok(true);
                    }
                }
                Err(e) => {
                    if matches!(e.kind(), ::csv::ErrorKind::Utf8 { .. }) {
                        let byte = e.position().map_or(0, ::csv::Position::byte);
                        let line = self.lines.line_of(&self.path, byte);
                        skips.row(&self.path, line, format_args!("not UTF-8"));
                        continue;
                    }
                    return Err(ReadError {
                        path: self.path.clone(),
                        source: e,
                    });
                }
            }
        }
    }

    /// Parses `rec`; false (and recorded) when the row is skipped.
    fn parse_row(&mut self, skips: &mut Skips) -> bool {
        if self.rec.iter().all(str::is_empty) {
            return false; // a blank line is no row
        }
        let cell = self.rec.get(self.layout.ts).unwrap_or("");
        let Some(ts) = ts::parse_ms(cell) else {
            let line = record_line(&mut self.lines, &self.path, &self.rec);
            skips.row(&self.path, line, format_args!("bad timestamp {cell:?}"));
            return false;
        };
        self.values.clear();
        let mut non_finite = 0;
        for ((col, name), &sensor) in self.layout.values.iter().zip(&self.sensors) {
            let cell = self.rec.get(*col).unwrap_or("");
            if cell.is_empty() {
                continue;
            }
            match cell.parse::<f64>() {
                Ok(v) if v.is_finite() => self.values.push((sensor, v)),
                Ok(_) => non_finite += 1,
                Err(_) => {
                    let line = record_line(&mut self.lines, &self.path, &self.rec);
                    skips.row(
                        &self.path,
                        line,
                        format_args!("bad value {cell:?} for {name}"),
                    );
                    return false;
                }
            }
        }
        skips.non_finite += non_finite;
        if self.last_ts.is_some_and(|last| ts < last) {
            skips.backwards += 1;
        }
        self.last_ts = Some(ts);
        self.ts = ts;
        true
    }
}

/// The line of `rec` in `path`.
fn record_line(lines: &mut LineCounter, path: &Path, rec: &::csv::StringRecord) -> u64 {
    lines.line_of(path, rec.position().map_or(0, ::csv::Position::byte))
}

/// The delimiter of a file whose first bytes are `head`: the most frequent of `,`, `;` and tab
/// on its first line (`,` when none occurs).
fn sniff(head: &[u8]) -> u8 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or(head);
    let count = |d: u8| line.iter().filter(|b| **b == d).count();
    [b';', b'\t'].into_iter().fold(
        b',',
        |best, d| if count(d) > count(best) { d } else { best },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiter_is_sniffed_from_the_header() {
        assert_eq!(sniff(b"timestamp,value\n2014-01-01 00:00:00,1"), b',');
        assert_eq!(sniff(b"datetime;A;B;anomaly\n2020;1,5;2"), b';');
        assert_eq!(sniff(b"ts\ta\tb\n"), b'\t');
        assert_eq!(sniff(b"timestamp"), b',');
        assert_eq!(sniff(b""), b',');
    }

    fn source(text: &str, name: &str) -> (tempfile::TempDir, Source) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let mut s = Source::open(&p, "").unwrap();
        let n = s.layout.values.len();
        s.set_sensors((0..n).collect());
        (dir, s)
    }

    #[test]
    fn rows_are_parsed_and_bad_ones_skipped_with_their_line() {
        let text = "timestamp;a;b;label\r\n\
                    2020-01-01 00:00:00;1.5;2;0\r\n\
                    garbage;1;2;0\r\n\
                    2020-01-01 00:00:02;x;2;0\r\n\
                    \r\n\
                    2020-01-01 00:00:03;;NaN;1\r\n\
                    2020-01-01 00:00:01;4;5;0";
        let (_d, mut s) = source(text, "f.csv");
        let mut skips = Skips::default();
        let mut rows = Vec::new();
        while s.advance(&mut skips).unwrap() {
            rows.push((s.ts, s.values.clone()));
        }
        let t0 = 1_577_836_800_000;
        assert_eq!(
            rows,
            vec![
                (t0, vec![(0, 1.5), (1, 2.0)]),
                (t0 + 3000, vec![]),
                (t0 + 1000, vec![(0, 4.0), (1, 5.0)]),
            ]
        );
        assert_eq!(skips.rows, 2);
        assert_eq!(skips.non_finite, 1);
        assert_eq!(skips.backwards, 1);
        assert!(skips.examples[0].ends_with("f.csv:3: bad timestamp \"garbage\""));
        assert!(skips.examples[1].ends_with("f.csv:4: bad value \"x\" for a"));
    }

    #[test]
    fn unusable_files_name_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.csv");
        let e = Source::open(&missing, "").err().unwrap().to_string();
        assert!(e.contains("nope.csv") && e.contains("cannot open"), "{e}");
        let empty = dir.path().join("empty.csv");
        std::fs::write(&empty, "").unwrap();
        let e = Source::open(&empty, "").err().unwrap().to_string();
        assert!(e.contains("empty.csv") && e.contains("empty file"), "{e}");
        let nots = dir.path().join("nots.csv");
        std::fs::write(&nots, "when,value\n1,2\n").unwrap();
        let e = Source::open(&nots, "").err().unwrap().to_string();
        assert!(e.contains("no timestamp column"), "{e}");
    }
}
