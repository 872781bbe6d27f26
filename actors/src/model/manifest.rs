//! The `manifest.json` that describes a model package, and its consistency checks.
//!
//! A package is a directory holding `manifest.json` and one weights file. The manifest says
//! which features the model expects (by name and order), how to standardise them, the network
//! shape, the decision threshold and how it was calibrated, and the SHA-256 of the weights file.
//!
//! # Design constraints
//! - Packages arrive over the air and may be truncated, corrupted or written by an older or
//!   newer tool: parsing uses `deny_unknown_fields`, and [`Manifest::validate`] checks every
//!   cross-field invariant before any weight is read, naming the offending field.
//! - The weights file name comes from the package, so it must be a plain file name: no path
//!   separators, no `..`, nothing that could point outside the package directory.
//! - Tensor names are derived from `layers` alone ([`linear_names`]), so the loader can refuse a
//!   weights file with missing, extra or wrongly shaped tensors.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The only manifest format this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The only model kind this module implements.
pub const KIND_AUTOENCODER: &str = "autoencoder";
/// `quantization` value of a package whose weights are stored as f32.
pub const QUANT_F32: &str = "f32";
/// `quantization` value of a package whose weight matrices are stored as per-row int8.
pub const QUANT_INT8: &str = "int8";
/// File name of the manifest inside a package directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the weights inside a package directory, as written by this module.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Everything the gateway needs to know about a model package besides its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Manifest format version; must equal [`FORMAT_VERSION`] so a future layout is refused
    /// rather than misread.
    pub format: u32,
    /// Human-readable model name, reported in logs and metrics next to each decision.
    pub name: String,
    /// Model version, reported with `name` so a decision can be traced to a package.
    pub version: String,
    /// Model family; only [`KIND_AUTOENCODER`] exists today.
    pub kind: String,
    /// Feature names in the order the network expects them; the caller's extractor must agree.
    pub features: Vec<String>,
    /// Per-feature mean of the training split, subtracted before the network.
    pub input_mean: Vec<f32>,
    /// Per-feature standard deviation of the training split (floored), divided out before the
    /// network so every feature weighs alike in the reconstruction error.
    pub input_std: Vec<f32>,
    /// Per-feature lower edge of the training data (its 0.1 % quantile, raw units). With
    /// `input_high` it bounds the support the network has seen: distance outside it is added to
    /// the score, because an autoencoder can reconstruct inputs far along its learned manifold
    /// (a sustained level shift moves every level feature together) almost as well as normal
    /// ones. Empty in packages without a support term.
    #[serde(default)]
    pub input_low: Vec<f32>,
    /// Per-feature upper edge of the training data (its 99.9 % quantile, raw units).
    #[serde(default)]
    pub input_high: Vec<f32>,
    /// Layer widths from input to output, e.g. `[11, 16, 4, 16, 11]`; first and last equal the
    /// feature count.
    pub layers: Vec<usize>,
    /// A vector whose score is strictly above this value is flagged as anomalous.
    pub threshold: f32,
    /// How `threshold` was derived, kept so operators can judge and re-tune it.
    pub calibration: Calibration,
    /// File name of the weights inside the package directory.
    pub weights: String,
    /// Lower-case hex SHA-256 of the weights file; a mismatch refuses the package.
    pub weights_sha256: String,
    /// Storage of the weight matrices: [`QUANT_F32`] or [`QUANT_INT8`].
    pub quantization: String,
    /// Creation time in milliseconds since the Unix epoch, for provenance only.
    pub created_ms: i64,
    /// Free text describing the training data (site, period, sensors), for provenance only.
    pub trained_on: String,
    /// Summary of the training run, for provenance and sanity checks.
    pub train: TrainReport,
}

/// Statistics of the validation scores from which the threshold was derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Quantile of the validation scores used as the base of the threshold (e.g. 0.999).
    pub quantile: f64,
    /// Factor applied to that quantile to leave headroom for drift (e.g. 1.5).
    pub margin: f64,
    /// Number of validation vectors the statistics were computed on.
    pub samples: usize,
    /// Median validation score: the typical reconstruction error of normal data.
    pub score_p50: f32,
    /// 99th percentile of the validation scores.
    pub score_p99: f32,
    /// 99.9th percentile of the validation scores.
    pub score_p999: f32,
    /// Largest validation score.
    pub score_max: f32,
}

/// Summary of the training run that produced the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainReport {
    /// Number of passes over the training split.
    pub epochs: usize,
    /// Mean training loss (MSE in standardised space) over the last epoch.
    pub final_loss: f32,
    /// Number of vectors in the training split.
    pub train_samples: usize,
    /// Number of vectors in the validation (calibration) split.
    pub val_samples: usize,
}

fn bad(reason: impl Into<String>) -> ModelError {
    ModelError::BadManifest {
        reason: reason.into(),
    }
}

impl Manifest {
    /// Checks every invariant the loader and scorer rely on; the error names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.format != FORMAT_VERSION {
            return Err(bad(format!(
                "format: expected {FORMAT_VERSION}, got {}",
                self.format
            )));
        }
        if self.name.trim().is_empty() {
            return Err(bad("name: must not be empty"));
        }
        if self.version.trim().is_empty() {
            return Err(bad("version: must not be empty"));
        }
        if self.kind != KIND_AUTOENCODER {
            return Err(bad(format!(
                "kind: expected \"{KIND_AUTOENCODER}\", got \"{}\"",
                self.kind
            )));
        }
        let n = self.features.len();
        if n == 0 {
            return Err(bad("features: must not be empty"));
        }
        for (i, f) in self.features.iter().enumerate() {
            if f.trim().is_empty() {
                return Err(bad(format!("features[{i}]: must not be empty")));
            }
            if self.features[..i].contains(f) {
                return Err(bad(format!("features[{i}]: duplicate name \"{f}\"")));
            }
        }
        check_vec(
            "input_mean",
            &self.input_mean,
            n,
            |v| v.is_finite(),
            "finite",
        )?;
        check_vec(
            "input_std",
            &self.input_std,
            n,
            |v| v.is_finite() && v > 0.0,
            "finite and > 0",
        )?;
        if !(self.input_low.is_empty() && self.input_high.is_empty()) {
            check_vec("input_low", &self.input_low, n, |v| v.is_finite(), "finite")?;
            check_vec(
                "input_high",
                &self.input_high,
                n,
                |v| v.is_finite(),
                "finite",
            )?;
            if let Some(i) = (0..n).find(|&i| self.input_low[i] > self.input_high[i]) {
                return Err(bad(format!(
                    "input_low[{i}]: must not exceed input_high[{i}]"
                )));
            }
        }
        self.validate_layers(n)?;
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err(bad(format!(
                "threshold: must be finite and > 0, got {}",
                self.threshold
            )));
        }
        let c = &self.calibration;
        if !(c.quantile > 0.0 && c.quantile <= 1.0) {
            return Err(bad(format!(
                "calibration.quantile: must be in (0, 1], got {}",
                c.quantile
            )));
        }
        if !(c.margin.is_finite() && c.margin > 0.0) {
            return Err(bad(format!(
                "calibration.margin: must be finite and > 0, got {}",
                c.margin
            )));
        }
        check_weights_name(&self.weights)?;
        if self.weights_sha256.len() != 64
            || !self
                .weights_sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad("weights_sha256: must be 64 lower-case hex digits"));
        }
        if self.quantization != QUANT_F32 && self.quantization != QUANT_INT8 {
            return Err(bad(format!(
                "quantization: expected \"{QUANT_F32}\" or \"{QUANT_INT8}\", got \"{}\"",
                self.quantization
            )));
        }
        Ok(())
    }

    fn validate_layers(&self, n: usize) -> Result<(), ModelError> {
        let l = &self.layers;
        if l.len() < 3 {
            return Err(bad(format!(
                "layers: need input, at least one hidden and output width, got {} entries",
                l.len()
            )));
        }
        if l.first() != Some(&n) || l.last() != Some(&n) {
            return Err(bad(format!(
                "layers: first and last must equal the feature count {n}, got {l:?}"
            )));
        }
        if let Some(i) = l.iter().position(|&w| w == 0 || w > MAX_LAYER_WIDTH) {
            return Err(bad(format!(
                "layers[{i}]: width must be in 1..={MAX_LAYER_WIDTH}, got {}",
                l[i]
            )));
        }
        Ok(())
    }
}

/// Upper bound on any layer width, so a hostile manifest cannot make the loader allocate
/// absurd tensors before the shape check.
pub const MAX_LAYER_WIDTH: usize = 4096;

fn check_vec(
    field: &str,
    v: &[f32],
    n: usize,
    ok: impl Fn(f32) -> bool,
    what: &str,
) -> Result<(), ModelError> {
    if v.len() != n {
        return Err(bad(format!(
            "{field}: length {} does not match {n} features",
            v.len()
        )));
    }
    if let Some(i) = v.iter().position(|&x| !ok(x)) {
        return Err(bad(format!("{field}[{i}]: must be {what}, got {}", v[i])));
    }
    Ok(())
}

fn check_weights_name(name: &str) -> Result<(), ModelError> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.');
    if plain {
        Ok(())
    } else {
        Err(bad(format!(
            "weights: must be a plain file name inside the package, got \"{name}\""
        )))
    }
}

/// Names of the linear layers for a `layers` list: `enc0, enc1, …` up to the bottleneck (the
/// narrowest hidden layer, first one on ties), then `dec0, dec1, …`.
///
/// Tensor names in the weights file are `<name>.weight` (`[out, in]`) and `<name>.bias`
/// (`[out]`), plus `.weight.q`/`.weight.scale` in int8 packages.
pub fn linear_names(layers: &[usize]) -> Vec<String> {
    let n_linear = layers.len().saturating_sub(1);
    let hidden = layers.get(1..layers.len().saturating_sub(1)).unwrap_or(&[]);
    // Index (into `layers`) of the bottleneck; linears before it are the encoder.
    let bottleneck = hidden
        .iter()
        .enumerate()
        .min_by_key(|&(i, &w)| (w, i))
        .map_or(1, |(i, _)| i + 1);
    (0..n_linear)
        .map(|i| {
            if i < bottleneck {
                format!("enc{i}")
            } else {
                format!("dec{}", i - bottleneck)
            }
        })
        .collect()
}
