//! Plain data a sensor's window takes and gives: the input [`Sample`] (what ingest parses),
//! the [`WindowConfig`] and its validation error, the [`Rejection`] reasons, the emitted
//! [`WindowStats`] (what inference is asked about) and a [`Calibrated`] judgement. A leaf:
//! ingest, sensor and inference share these without importing each other; re-exported by
//! `sensor::window`.
//!
//! # Design constraints
//! - Plain, dependency-free data: `Copy` where small, no serde, no allocation
//!   except the `bands` vector of [`WindowStats`].
//! - Errors are plain enums with `Display` and `std::error::Error`, naming the
//!   offending config field so operators can fix their configuration.
//! - No per-sample cost of their own; [`Rejection::reason`] is a constant lookup.

use std::fmt;

/// Largest accepted `len`: bounds memory and the per-sample memmove of the
/// quantile structure (65 536 values = 512 KiB).
pub const MAX_WINDOW_LEN: usize = 1 << 16;

/// One observation of a scalar sensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Event time in milliseconds since the Unix epoch; identifies the sample
    /// for duplicate detection and drives lateness.
    pub ts: i64,
    /// The measured value; must be finite to be accepted.
    pub v: f64,
}

/// Shape and admission policy of a [`Window`](crate::sensor::window::Window).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowConfig {
    /// Samples per window (ring capacity), `4..=MAX_WINDOW_LEN`.
    pub len: usize,
    /// Emit stats every `hop` accepted samples once the window is full, `1..=len`.
    pub hop: usize,
    /// Number of FFT band magnitudes in each [`WindowStats`], `1..=len/2`.
    pub bands: usize,
    /// A sample older than the newest accepted `ts` by more than this many
    /// milliseconds is rejected as [`Rejection::TooLate`]; must be `>= 0`.
    pub allowed_lateness_ms: i64,
}

impl WindowConfig {
    /// Checks every field's range; the error names the first offending field.
    pub fn validate(&self) -> Result<(), WindowConfigError> {
        if !(4..=MAX_WINDOW_LEN).contains(&self.len) {
            return Err(WindowConfigError::Len(self.len));
        }
        if !(1..=self.len).contains(&self.hop) {
            return Err(WindowConfigError::Hop(self.hop));
        }
        if !(1..=self.len / 2).contains(&self.bands) {
            return Err(WindowConfigError::Bands(self.bands));
        }
        if self.allowed_lateness_ms < 0 {
            return Err(WindowConfigError::AllowedLatenessMs(
                self.allowed_lateness_ms,
            ));
        }
        Ok(())
    }
}

/// Why a [`WindowConfig`] was refused; each variant names the offending field
/// and carries its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowConfigError {
    /// `len` is below 4 or above [`MAX_WINDOW_LEN`].
    Len(usize),
    /// `hop` is 0 or larger than `len`.
    Hop(usize),
    /// `bands` is 0 or larger than `len / 2`.
    Bands(usize),
    /// `allowed_lateness_ms` is negative.
    AllowedLatenessMs(i64),
}

impl WindowConfigError {
    /// The name of the offending [`WindowConfig`] field, e.g. `"len"`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Len(_) => "len",
            Self::Hop(_) => "hop",
            Self::Bands(_) => "bands",
            Self::AllowedLatenessMs(_) => "allowed_lateness_ms",
        }
    }
}

impl fmt::Display for WindowConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Len(v) => write!(f, "invalid window len {v}: must be 4..={MAX_WINDOW_LEN}"),
            Self::Hop(v) => write!(f, "invalid window hop {v}: must be 1..=len"),
            Self::Bands(v) => write!(f, "invalid window bands {v}: must be 1..=len/2"),
            Self::AllowedLatenessMs(v) => {
                write!(f, "invalid window allowed_lateness_ms {v}: must be >= 0")
            }
        }
    }
}

impl std::error::Error for WindowConfigError {}

/// Why [`Window::push`](crate::sensor::window::Window::push) refused a sample (the
/// window is left unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// A sample with the same `ts` is already in the window.
    Duplicate,
    /// `ts` is older than the newest accepted `ts` by more than the allowed lateness.
    TooLate,
    /// The value is NaN or infinite.
    NonFinite,
}

impl Rejection {
    /// Stable short label for metrics: `"duplicate"`, `"late"`, `"non_finite"`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::TooLate => "late",
            Self::NonFinite => "non_finite",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Summary of a window's contents.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowStats {
    /// Smallest `ts` among the samples in the window.
    pub start_ts: i64,
    /// Largest `ts` among the samples in the window.
    pub end_ts: i64,
    /// Number of samples summarised (== `len` for emitted stats).
    pub n: usize,
    /// Arithmetic mean: the level.
    pub mean: f64,
    /// Population standard deviation: the spread.
    pub std: f64,
    /// Smallest value: catches dips.
    pub min: f64,
    /// Largest value: catches spikes.
    pub max: f64,
    /// 5th percentile (linear interpolation, see
    /// [`SortedWindow`](crate::sensor::percentile::SortedWindow)): robust low tail.
    pub p05: f64,
    /// Median: robust level.
    pub p50: f64,
    /// 95th percentile: robust high tail.
    pub p95: f64,
    /// `cfg.bands` mean FFT magnitudes, low→high frequency, DC excluded: texture.
    pub bands: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(len: usize, hop: usize, bands: usize, late: i64) -> WindowConfig {
        WindowConfig {
            len,
            hop,
            bands,
            allowed_lateness_ms: late,
        }
    }

    #[test]
    fn validation_names_the_field() {
        let bad = [
            (cfg(3, 1, 1, 0), "len"),
            (cfg(MAX_WINDOW_LEN + 1, 1, 1, 0), "len"),
            (cfg(8, 0, 1, 0), "hop"),
            (cfg(8, 9, 1, 0), "hop"),
            (cfg(8, 8, 0, 0), "bands"),
            (cfg(8, 8, 5, 0), "bands"),
            (cfg(8, 8, 4, -1), "allowed_lateness_ms"),
        ];
        for (c, field) in bad {
            let e = c.validate().unwrap_err();
            assert_eq!(e.field(), field);
            assert!(e.to_string().contains(field), "{e}");
        }
        assert_eq!(cfg(4, 4, 2, 0).validate(), Ok(()));
        assert_eq!(
            cfg(MAX_WINDOW_LEN, 1, MAX_WINDOW_LEN / 2, 0).validate(),
            Ok(())
        );
    }

    #[test]
    fn rejection_reasons() {
        assert_eq!(Rejection::Duplicate.reason(), "duplicate");
        assert_eq!(Rejection::TooLate.reason(), "late");
        assert_eq!(Rejection::NonFinite.reason(), "non_finite");
        assert_eq!(Rejection::TooLate.to_string(), "late");
    }
}

/// A calibrated decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibrated {
    /// `1 − q`: how sure the sensor's own history makes us that this is unusual (0–1).
    pub likelihood: f64,
    /// `min(1, −log10(q)/decades)`: the score thresholds apply to (0–1).
    pub score: f32,
}

impl Calibrated {
    /// Nothing unusual: likelihood and score 0 (a decision still learning, or none made).
    pub const NONE: Calibrated = Calibrated {
        likelihood: 0.0,
        score: 0.0,
    };
}
