//! Anomaly model for edgegw: a small autoencoder trained on normal feature vectors only, its
//! on-disk package (manifest + safetensors weights, f32 or int8), and a rule-based fallback.
//!
//! A vector is flagged when its score is strictly above the scorer's threshold. For the model
//! the score is the mean squared reconstruction error in standardised space; for the fallback
//! rule it is a weighted maximum of absolute z-like features (see [`fallback`]).
//!
//! Typical use:
//! - offline or on the gateway: [`train::train`] then [`train::TrainedModel::save`];
//! - optionally [`quant::quantize_package`] for a smaller OTA package;
//! - at start-up or on update: [`Scorer::load_or_fallback`], share the [`Scorer`] (or the
//!   `Arc<LoadedModel>` inside) with every sensor task, call [`Scorer::score_batch`].
//!
//! # Design constraints
//! - A package comes from disk or over the air and may be missing, truncated, corrupted or
//!   inconsistent: nothing a file can contain may panic. Every failure is a [`ModelError`] and the
//!   caller falls back to [`fallback::FallbackRule`], which needs no file at all.
//! - The weights file is checksummed (SHA-256 in the manifest) and the very bytes that were
//!   hashed are the ones parsed, so a corrupt file is refused rather than half-loaded.
//! - CPU only, 2 cores, no GPU: the network is tiny and scored in one batched forward pass.
//! - Deterministic given a seed (training), and free of `unsafe` (no memory-mapped loading).

pub mod autoencoder;
pub mod fallback;
pub mod manifest;
pub mod quant;
pub mod scorer;
pub mod train;

#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

pub use autoencoder::Autoencoder;
pub use fallback::FallbackRule;
pub use manifest::{Calibration, Manifest, TrainReport};
pub use quant::quantize_package;
pub use scorer::Scorer;
pub use train::{train, TrainOptions, TrainedModel};

/// The environment variable through which candle's CPU kernels learn their thread count.
pub const KERNEL_THREADS_VAR: &str = "RAYON_NUM_THREADS";

/// Pins candle's CPU kernels to one thread (`RAYON_NUM_THREADS=1`) unless the variable is
/// already set, and returns the value in force. Call it first thing in `main`, before any
/// other thread exists: it sets an environment variable, which is only sound while the
/// process is single-threaded.
///
/// Why: candle 0.11 looks its thread count up on every matmul, and with the variable unset the
/// lookup reads and parses `/proc/cpuinfo` (`num_cpus::get_physical`, not cached): about 45 µs
/// per matmul, four per forward pass, over three quarters of a batch-1 inference (see
/// docs/model.md, "Inference latency"). With the variable set it is a string read. One thread
/// loses nothing: this network is far below gemm's threading threshold at any batch size, and
/// the pool's workers (`inference.workers`) are the gateway's unit of parallelism; kernels
/// spreading over further threads would only compete with them for the same cores.
pub fn pin_kernel_threads() -> String {
    match std::env::var(KERNEL_THREADS_VAR) {
        Ok(v) => v,
        Err(_) => {
            std::env::set_var(KERNEL_THREADS_VAR, "1");
            "1".to_string()
        }
    }
}

/// Whether candle's kernel thread count is fixed, so no inference pays for the lookup
/// [`pin_kernel_threads`] describes.
pub fn kernel_threads_pinned() -> bool {
    std::env::var_os(KERNEL_THREADS_VAR).is_some()
}

/// Largest `manifest.json` accepted; a real one is a few kilobytes.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// Largest weights file accepted; the default model is a few kilobytes.
pub const MAX_WEIGHTS_BYTES: u64 = 256 << 20;

/// Everything that can go wrong while training, saving, loading or scoring a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file of the package could not be read, written or renamed (missing file, permissions,
    /// full disk); `path` names the file.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// candle refused an operation or could not parse the weights file.
    #[error("candle error: {0}")]
    Candle(#[from] candle_core::Error),
    /// `manifest.json` is not valid JSON for a [`Manifest`] (syntax error, missing or unknown
    /// field, wrong type); serde's message names the field and position.
    #[error("manifest is not valid: {source}")]
    ManifestParse {
        /// The serde error.
        source: serde_json::Error,
    },
    /// The manifest parsed but is inconsistent; `reason` names the field.
    #[error("bad manifest: {reason}")]
    BadManifest {
        /// Which field is wrong and why.
        reason: String,
    },
    /// The weights file does not hash to the manifest's `weights_sha256`: it is corrupt,
    /// truncated, or belongs to another package.
    #[error("weights checksum mismatch: manifest says {expected}, file hashes to {actual}")]
    ChecksumMismatch {
        /// Hex digest recorded in the manifest.
        expected: String,
        /// Hex digest of the file on disk.
        actual: String,
    },
    /// The weights file passed the checksum but its tensors do not match the manifest (missing,
    /// extra, wrong dtype or shape, non-finite values).
    #[error("bad weights: {reason}")]
    BadWeights {
        /// Which tensor is wrong and why.
        reason: String,
    },
    /// An input row has a different number of features than the model expects.
    #[error("feature count mismatch: expected {expected}, got {got}")]
    FeatureMismatch {
        /// Number of features the model expects.
        expected: usize,
        /// Number of features in the offending row.
        got: usize,
    },
    /// The package's feature names (or their order) differ from the caller's extractor, so
    /// its scores would be meaningless even though the counts might agree.
    #[error("feature names mismatch: model has {model:?}, extractor has {extractor:?}")]
    FeatureNamesMismatch {
        /// Feature names in the model manifest.
        model: Vec<String>,
        /// Feature names the caller produces.
        extractor: Vec<String>,
    },
    /// A training option is out of range; `reason` names it.
    #[error("bad training options: {reason}")]
    BadTrainOptions {
        /// Which option is wrong and why.
        reason: String,
    },
    /// The training data cannot be used (too few rows, non-finite values).
    #[error("bad training data: {reason}")]
    BadTrainingData {
        /// What is wrong with the data.
        reason: String,
    },
    /// The training loss became NaN or infinite, so the weights are unusable.
    #[error("training diverged at epoch {epoch}: loss {loss}")]
    TrainingDiverged {
        /// Zero-based epoch in which the loss stopped being finite.
        epoch: usize,
        /// The offending loss value.
        loss: f32,
    },
}

impl ModelError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A validated manifest together with the model it describes.
#[derive(Debug)]
pub struct LoadedModel {
    /// The package manifest (threshold, feature names, provenance).
    pub manifest: Manifest,
    /// The network, ready to score.
    pub model: Autoencoder,
}

/// Reads a file whole, refusing files larger than `limit` bytes.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ModelError> {
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ModelError::io(path, e))?;
    if buf.len() as u64 > limit {
        return Err(ModelError::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("file larger than {limit} bytes"),
            ),
        ));
    }
    Ok(buf)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads, parses and validates `dir/manifest.json` without touching the weights.
pub fn inspect(dir: &Path) -> Result<Manifest, ModelError> {
    let path = dir.join(manifest::MANIFEST_FILE);
    let bytes = read_limited(&path, MAX_MANIFEST_BYTES)?;
    let m: Manifest =
        serde_json::from_slice(&bytes).map_err(|source| ModelError::ManifestParse { source })?;
    m.validate()?;
    Ok(m)
}

/// Loads a package: validates the manifest, verifies the weights checksum, parses the weights
/// (dequantising int8 packages to f32) and checks every tensor against `layers`.
pub fn load_package(dir: &Path) -> Result<LoadedModel, ModelError> {
    let manifest = inspect(dir)?;
    let path = dir.join(&manifest.weights);
    let bytes = read_limited(&path, MAX_WEIGHTS_BYTES)?;
    from_parts(manifest, &bytes)
}

/// The package shipped in `config/model/`, compiled into the binary so `edgegw run` works from
/// any directory. Checked exactly like a package on disk.
pub fn load_builtin() -> Result<LoadedModel, ModelError> {
    const MANIFEST: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/model/manifest.json"
    ));
    const WEIGHTS: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/model/model.safetensors"
    ));
    let manifest: Manifest =
        serde_json::from_slice(MANIFEST).map_err(|source| ModelError::ManifestParse { source })?;
    manifest.validate()?;
    from_parts(manifest, WEIGHTS)
}

fn from_parts(manifest: Manifest, bytes: &[u8]) -> Result<LoadedModel, ModelError> {
    let actual = sha256_hex(bytes);
    if actual != manifest.weights_sha256 {
        return Err(ModelError::ChecksumMismatch {
            expected: manifest.weights_sha256.clone(),
            actual,
        });
    }
    let raw = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?;
    let tensors = if manifest.quantization == manifest::QUANT_INT8 {
        quant::dequantize(&manifest.layers, raw)?
    } else {
        raw
    };
    let model = Autoencoder::from_tensors(
        &manifest.layers,
        &manifest.input_mean,
        &manifest.input_std,
        tensors,
    )?
    .with_support(
        &manifest.input_low,
        &manifest.input_high,
        &manifest.input_std,
    )?;
    Ok(LoadedModel { manifest, model })
}

fn sync_write(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let mut f = File::create(path).map_err(|e| ModelError::io(path, e))?;
    f.write_all(bytes).map_err(|e| ModelError::io(path, e))?;
    f.sync_all().map_err(|e| ModelError::io(path, e))
}

fn rename(from: &Path, to: &Path) -> Result<(), ModelError> {
    fs::rename(from, to).map_err(|e| ModelError::io(to, e))
}

/// Writes a package: `tensors` to `dir/<manifest.weights>` and the manifest, with
/// `weights_sha256` filled in, to `dir/manifest.json`. Returns the manifest as written.
///
/// Both files are written under temporary names, flushed to disk and then renamed over the
/// old ones, weights first. A crash between the two renames leaves new weights with the old
/// manifest, which the checksum refuses (the caller falls back) rather than a silently mixed
/// package; readers never see a half-written file.
pub(crate) fn write_package(
    dir: &Path,
    manifest: &Manifest,
    tensors: &std::collections::BTreeMap<String, Tensor>,
) -> Result<Manifest, ModelError> {
    fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut manifest = manifest.clone();
    let weights_tmp = dir.join(format!(".{}.tmp", manifest.weights));
    let manifest_tmp = dir.join(format!(".{}.tmp", manifest::MANIFEST_FILE));
    let owned: std::collections::HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    candle_core::safetensors::save(&owned, &weights_tmp)?;
    File::open(&weights_tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| ModelError::io(&weights_tmp, e))?;
    let bytes = read_limited(&weights_tmp, MAX_WEIGHTS_BYTES)?;
    manifest.weights_sha256 = sha256_hex(&bytes);
    manifest.validate()?;
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|source| ModelError::ManifestParse { source })?;
    sync_write(&manifest_tmp, &json)?;
    rename(&weights_tmp, &dir.join(&manifest.weights))?;
    rename(&manifest_tmp, &dir.join(manifest::MANIFEST_FILE))?;
    if let Ok(d) = File::open(dir) {
        // Best effort: persist the renames; not all platforms can fsync a directory.
        let _ = d.sync_all();
    }
    Ok(manifest)
}
