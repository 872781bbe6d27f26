//! Corpus totals of per-file NAB scores, and the normalised score.
//!
//! Design constraints: a [`Total`] only sums; every file added must have been scored with the
//! total's profile (checked in debug builds).

use super::{Delay, FileScore, Profile};

/// Sums of [`FileScore`]s over a corpus, under one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Total {
    /// The profile every file was scored with (its weights set `null` and `perfect`).
    pub profile: Profile,
    /// Files added.
    pub files: usize,
    /// Sum of the files' raw scores.
    pub raw: f64,
    /// Windows covering at least one row, over all files.
    pub windows: usize,
    /// Windows reaching past their file's probationary period.
    pub scored_windows: usize,
    /// Scored windows with a detection.
    pub detected: usize,
    /// Detections outside every window, after probation.
    pub false_positives: usize,
    /// Every detected window's delay, file after file.
    pub delays: Vec<Delay>,
}

/// Mean and median detection delay over the detected windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelaySummary {
    /// Mean delay in rows.
    pub mean_rows: f64,
    /// Median delay in rows (mean of the two middle values for an even count).
    pub median_rows: f64,
    /// Mean delay in milliseconds.
    pub mean_ms: f64,
    /// Median delay in milliseconds.
    pub median_ms: f64,
}

impl Total {
    /// An empty total for `profile`.
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            files: 0,
            raw: 0.0,
            windows: 0,
            scored_windows: 0,
            detected: 0,
            false_positives: 0,
            delays: Vec::new(),
        }
    }

    /// The total of `files` under `profile`.
    pub fn from_files<'a>(
        profile: Profile,
        files: impl IntoIterator<Item = &'a FileScore>,
    ) -> Self {
        let mut total = Self::new(profile);
        files.into_iter().for_each(|f| total.add(f));
        total
    }

    /// Adds one file's score (scored with this total's profile).
    pub fn add(&mut self, file: &FileScore) {
        debug_assert_eq!(
            file.profile, self.profile,
            "file scored with another profile"
        );
        self.files += 1;
        self.raw += file.raw;
        self.windows += file.windows;
        self.scored_windows += file.scored_windows;
        self.detected += file.detected;
        self.false_positives += file.false_positives;
        self.delays.extend_from_slice(&file.delays);
    }

    /// Raw score of the null detector (no detections): `−fn × scored windows`.
    pub fn null(&self) -> f64 {
        -self.profile.fn_ * self.scored_windows as f64
    }

    /// Raw score of the perfect detector as NAB counts it: `tp × windows`.
    pub fn perfect(&self) -> f64 {
        self.profile.tp * self.windows as f64
    }

    /// NAB's normalised score, `100 × (raw − null) / (perfect − null)`: 0 for the null
    /// detector, 100 for one that flags each window's first row and nothing else. NaN when
    /// the corpus has no window (`perfect == null`).
    pub fn normalised(&self) -> f64 {
        let (null, perfect) = (self.null(), self.perfect());
        if perfect == null {
            return f64::NAN;
        }
        100.0 * (self.raw - null) / (perfect - null)
    }

    /// Scored windows without a detection.
    pub fn missed(&self) -> usize {
        self.scored_windows - self.detected
    }

    /// Mean and median delay of the detected windows; `None` when none was detected.
    pub fn delay_summary(&self) -> Option<DelaySummary> {
        let mut rows: Vec<f64> = self.delays.iter().map(|d| d.rows as f64).collect();
        let mut ms: Vec<f64> = self.delays.iter().map(|d| d.ms as f64).collect();
        Some(DelaySummary {
            mean_rows: mean(&rows)?,
            median_rows: median(&mut rows)?,
            mean_ms: mean(&ms)?,
            median_ms: median(&mut ms)?,
        })
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}
