//! The Numenta Anomaly Benchmark score of binary detections, with NAB's arithmetic
//! (`nab/sweeper.py` and the normalisation of `nab/runner.py`), checked against the
//! published scoreboard (`actors/tests/nab_scorer.rs`).
//!
//! # Method
//!
//! Per data file of `n` rows, with labelled windows resolved to inclusive row ranges
//! `[left, right]` of width `right − left + 1`:
//!
//! - The first `min(floor(0.15 n), 0.15 × 5000)` rows are probationary: a detection there is
//!   ignored, and a window lying wholly inside them is not scored (neither hit nor missed).
//! - A row inside a window is worth `σ(−(right − i + 1) / width) × tp / σ(−1)`, where
//!   `σ(x) = 2 / (1 + e^{5x}) − 1` for `x ≤ 3` and `−1` above 3 ([`scaled_sigmoid`]): a
//!   detection at the window's first row earns exactly `tp`, later ones less.
//! - A row outside every window is worth `σ(|prevRight − i| / (prevWidth − 1)) × fp` after a
//!   window has ended, exactly `−fp` before any has. After a one-row window the division is
//!   by zero and gives `+∞`, so the row costs the full `−fp` (NAB itself would raise there).
//! - Each scored window counts its best (= earliest) detection, or `−fn` when it has none;
//!   every detection outside all windows adds its (negative) worth. The file's raw score is
//!   the sum.
//!
//! Over a corpus, `null = −fn × scored windows` (NAB scores its null detector, which detects
//! nothing), `perfect = tp × windows` (NAB counts every labelled window), and the normalised
//! score is `100 × (raw − null) / (perfect − null)`; see [`Total`].
//!
//! # Which NAB
//!
//! NAB's current `sweeper.py` cuts the sigmoid off at `x >= 3` (so a detection exactly three
//! window widths after a window costs `−fp` instead of `σ(3) × fp ≈ −0.9999994 fp`). The
//! published scoreboard (`results/final_results.json`) was computed with the earlier cut-off,
//! `x > 3`, implemented here: with it all seven published detectors come back to within
//! 2e-11 of their published scores; with `>=` windowedGaussian, which has such a detection,
//! is off by 3e-8. Both score a row before the first window as exactly `−fp`.
//!
//! Design constraints: pure functions, no I/O (callers read files, [`super::labels`] parses
//! labels); the arithmetic is NAB's operation for operation, so results match to the last
//! bits up to the order of floating-point sums. Windows and detections given as timestamps
//! are mapped onto rows as [`FileTruth::window_rows`] and [`FileTruth::detection_rows`]
//! document.

mod total;
mod truth;

#[cfg(test)]
mod tests;

pub use total::{DelaySummary, Total};
pub use truth::FileTruth;

/// Share of each file that is probationary (not scored).
pub const PROBATION_PERCENT: f64 = 0.15;

/// Row count at which the probationary period stops growing (`0.15 × 5000 = 750` rows).
pub const PROBATION_CAP_ROWS: f64 = 5000.0;

/// Weights of one NAB application profile (`config/profiles.json`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Profile name as in NAB's `profiles.json`.
    pub name: &'static str,
    /// Reward for a detection at a window's first row.
    pub tp: f64,
    /// Cost scale of a detection outside every window.
    pub fp: f64,
    /// Cost of a window without a detection.
    pub fn_: f64,
}

impl Profile {
    /// NAB's `standard` profile.
    pub const STANDARD: Profile = Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
    };
    /// NAB's `reward_low_FP_rate` profile: false positives cost twice as much.
    pub const REWARD_LOW_FP_RATE: Profile = Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
    };
    /// NAB's `reward_low_FN_rate` profile: missed windows cost twice as much.
    pub const REWARD_LOW_FN_RATE: Profile = Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
    };
    /// The three NAB profiles, standard first.
    pub const ALL: [Profile; 3] = [
        Self::STANDARD,
        Self::REWARD_LOW_FP_RATE,
        Self::REWARD_LOW_FN_RATE,
    ];

    /// The NAB profile with that name, if any.
    pub fn by_name(name: &str) -> Option<Profile> {
        Self::ALL.into_iter().find(|p| p.name == name)
    }
}

/// NAB's scaled sigmoid: `2 / (1 + e^{5x}) − 1` for `x ≤ 3.0`, `−1.0` above
/// (`σ(−1) ≈ 0.98661`, `σ(0) = 0`, `σ(1) ≈ −0.98661`). Computed as NAB writes it,
/// `2·sigmoid(−5x) − 1`, so that the bits match.
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 * (1.0 / (1.0 + (5.0 * x).exp())) - 1.0
    }
}

/// Index of the first scored row of a file of `rows` rows:
/// `min(floor(0.15 × rows), 0.15 × 5000)`, computed in `f64` as NAB does.
pub fn first_scored_row(rows: usize) -> usize {
    let len = (PROBATION_PERCENT * rows as f64)
        .floor()
        .min(PROBATION_PERCENT * PROBATION_CAP_ROWS);
    // `len` is a whole number in [0, 750]: the conversion is exact.
    len as usize
}

/// A detected window and how late its first detection came.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delay {
    /// Index of the window in [`FileTruth::window_rows`] order.
    pub window: usize,
    /// Rows from the window's first row to its first scored detection (0 = on time).
    pub rows: usize,
    /// The same in time: detection timestamp minus window start timestamp.
    pub ms: i64,
    /// The window's weighted score (`tp` for `rows == 0`).
    pub score: f64,
}

/// The score of one data file under one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct FileScore {
    /// The profile the file was scored with.
    pub profile: Profile,
    /// NAB raw score: `tp_score + fp_score − fn × missed`.
    pub raw: f64,
    /// Labelled windows that cover at least one row (normalisation's `perfect` counts these).
    pub windows: usize,
    /// Windows reaching past the probationary period (the only ones hit or missed).
    pub scored_windows: usize,
    /// Scored windows with at least one detection.
    pub detected: usize,
    /// Detections after the probationary period outside every window.
    pub false_positives: usize,
    /// Sum of the detected windows' scores.
    pub tp_score: f64,
    /// Sum of the false positives' (negative) scores.
    pub fp_score: f64,
    /// Detections ignored because they fall in the probationary period.
    pub in_probation: usize,
    /// Detections that map to no row (timestamp after the last row, or index out of range).
    pub unmatched: usize,
    /// One entry per detected window, in window order.
    pub delays: Vec<Delay>,
}

impl FileScore {
    /// Scored windows without a detection.
    pub fn missed(&self) -> usize {
        self.scored_windows - self.detected
    }
}

/// Scores detections given by timestamp (ms): each maps to a row as
/// [`FileTruth::detection_rows`] says, then as [`score_rows`].
pub fn score_file(truth: &FileTruth, detections: &[i64], profile: &Profile) -> FileScore {
    let rows = truth.detection_rows(detections);
    let mut score = score_rows(truth, &rows, profile);
    score.unmatched = count_unmatched(truth, detections);
    score
}

/// Detections after the last row (the only ones [`FileTruth::detection_rows`] drops).
fn count_unmatched(truth: &FileTruth, detections: &[i64]) -> usize {
    let Some(&latest) = truth.timestamps.iter().max() else {
        return detections.len();
    };
    detections.iter().filter(|&&t| t > latest).count()
}

/// Scores detections given by row index (any order, duplicates allowed; indices past the
/// last row are counted in [`FileScore::unmatched`] and otherwise ignored).
pub fn score_rows(truth: &FileTruth, rows: &[usize], profile: &Profile) -> FileScore {
    let n = truth.timestamps.len();
    let windows = truth.window_rows();
    let first = first_scored_row(n);
    let mut flagged: Vec<usize> = rows.to_vec();
    flagged.sort_unstable();
    flagged.dedup();
    let unmatched = flagged.iter().filter(|&&r| r >= n).count();
    flagged.retain(|&r| r < n);

    let max_tp = scaled_sigmoid(-1.0);
    let mut best: Vec<Option<(usize, f64)>> = vec![None; windows.len()];
    let (mut fp_score, mut false_positives, mut in_probation) = (0.0, 0, 0);
    for &i in &flagged {
        if i < first {
            in_probation += 1;
            continue;
        }
        // Windows starting at or before row i; the last of them holds or precedes it.
        let k = windows.partition_point(|&(left, _)| left <= i);
        match k.checked_sub(1).map(|w| (w, windows[w])) {
            Some((w, (left, right))) if i <= right => {
                let width = (right - left + 1) as f64;
                let position = -((right - i + 1) as f64) / width;
                let score = scaled_sigmoid(position) * profile.tp / max_tp;
                if best[w].is_none_or(|(_, s)| score > s) {
                    best[w] = Some((i, score));
                }
            }
            placed => {
                let unweighted = match placed {
                    Some((_, (left, right))) => {
                        let width = (right - left + 1) as f64;
                        scaled_sigmoid(i.abs_diff(right) as f64 / (width - 1.0))
                    }
                    // No window has ended yet.
                    None => -1.0,
                };
                fp_score += unweighted * profile.fp;
                false_positives += 1;
            }
        }
    }

    // NAB sums `{"fp": …, window: …, …}` in that order: false positives first.
    let (mut raw, mut tp_score) = (fp_score, 0.0);
    let (mut scored_windows, mut delays) = (0, Vec::new());
    for (w, &(left, right)) in windows.iter().enumerate() {
        if right < first {
            continue;
        }
        scored_windows += 1;
        match best[w] {
            Some((i, score)) => {
                raw += score;
                tp_score += score;
                delays.push(Delay {
                    window: w,
                    rows: i - left,
                    ms: truth.timestamps[i] - truth.timestamps[left],
                    score,
                });
            }
            None => raw -= profile.fn_,
        }
    }
    FileScore {
        profile: *profile,
        raw,
        windows: windows.len(),
        scored_windows,
        detected: delays.len(),
        false_positives,
        tp_score,
        fp_score,
        in_probation,
        unmatched,
        delays,
    }
}
