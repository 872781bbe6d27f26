//! Training an autoencoder on normal feature vectors and calibrating its threshold.
//!
//! # Design constraints
//! - Only normal data is available, so the threshold comes from the score distribution of a
//!   held-out validation split: `threshold = quantile(val_scores, q) * margin`.
//! - Deterministic given `seed`: the split, the per-epoch shuffles and the initial weights all
//!   come from one seeded `StdRng` (weights are drawn here, not by candle's unseeded
//!   initialisers); the same seed gave bit-identical weights with 1 and 2 rayon threads.
//! - Fast on a 2-core CPU: the training split is standardised once into one host buffer,
//!   each mini-batch is a single `[batch, features]` tensor, and the model is a few hundred
//!   parameters, so 50k vectors × 60 epochs take seconds in release mode.
//! - The trained model is rebuilt through `Autoencoder::from_tensors`, the same checked path
//!   the loader uses, so what is calibrated is exactly what gets saved and loaded.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::autoencoder::{forward, Autoencoder};
use super::manifest::{self, linear_names, Calibration, Manifest, TrainReport};
use super::ModelError;

/// Smallest data set [`train`] accepts; below this the calibration is meaningless.
pub const MIN_TRAIN_ROWS: usize = 20;
/// Floor on each feature's standard deviation, so constant features do not blow up.
pub const STD_FLOOR: f32 = 1e-3;
/// Floor on the calibrated threshold, so perfectly reconstructed data still yields a valid
/// (strictly positive) threshold.
pub const MIN_THRESHOLD: f32 = 1e-6;

/// Hyper-parameters and provenance for [`train`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Width of the hidden layers on either side of the bottleneck.
    pub hidden: usize,
    /// Width of the bottleneck; smaller forces the model to learn the normal structure only.
    pub bottleneck: usize,
    /// Passes over the training split.
    pub epochs: usize,
    /// Vectors per optimiser step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Fraction of the data held out for threshold calibration, in (0, 1).
    pub val_fraction: f64,
    /// Quantile of the validation scores the threshold starts from, in (0, 1].
    pub quantile: f64,
    /// Factor applied to that quantile (≥ 1 leaves headroom for drift).
    pub margin: f64,
    /// Seed of every random choice (split, shuffles, initial weights).
    pub seed: u64,
    /// Model name written to the manifest.
    pub name: String,
    /// Model version written to the manifest.
    pub version: String,
    /// Free-text provenance of the training data, written to the manifest.
    pub trained_on: String,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            hidden: 16,
            bottleneck: 4,
            epochs: 60,
            batch_size: 256,
            learning_rate: 1e-3,
            val_fraction: 0.2,
            quantile: 0.999,
            margin: 1.5,
            seed: 0x5eed,
            name: "edgegw-autoencoder".to_string(),
            version: "0.1.0".to_string(),
            trained_on: String::new(),
        }
    }
}

/// The result of [`train`]: a calibrated model and its manifest, not yet on disk.
#[derive(Debug)]
pub struct TrainedModel {
    /// The manifest; `weights_sha256` is empty until [`TrainedModel::save`] computes it from
    /// the written file (read it back with [`super::inspect`]).
    pub manifest: Manifest,
    /// The trained network, ready to score.
    pub model: Autoencoder,
}

impl TrainedModel {
    /// Writes `model.safetensors` and `manifest.json` into `dir` (created if needed), each
    /// under a temporary name first and then renamed into place.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        super::write_package(dir, &self.manifest, &self.model.named_tensors()).map(|_| ())
    }
}

fn bad_opt(reason: &str) -> ModelError {
    ModelError::BadTrainOptions {
        reason: reason.to_string(),
    }
}

fn check_options(o: &TrainOptions) -> Result<(), ModelError> {
    if o.hidden == 0 || o.bottleneck == 0 {
        return Err(bad_opt("hidden and bottleneck must be > 0"));
    }
    if o.hidden > manifest::MAX_LAYER_WIDTH || o.bottleneck > manifest::MAX_LAYER_WIDTH {
        return Err(bad_opt(
            "hidden and bottleneck must not exceed MAX_LAYER_WIDTH",
        ));
    }
    if o.name.trim().is_empty() || o.version.trim().is_empty() {
        return Err(bad_opt("name and version must not be empty"));
    }
    if o.epochs == 0 || o.batch_size == 0 {
        return Err(bad_opt("epochs and batch_size must be > 0"));
    }
    if !(o.learning_rate.is_finite() && o.learning_rate > 0.0) {
        return Err(bad_opt("learning_rate must be finite and > 0"));
    }
    if !(o.val_fraction > 0.0 && o.val_fraction < 1.0) {
        return Err(bad_opt("val_fraction must be in (0, 1)"));
    }
    if !(o.quantile > 0.0 && o.quantile <= 1.0) {
        return Err(bad_opt("quantile must be in (0, 1]"));
    }
    if !(o.margin.is_finite() && o.margin > 0.0) {
        return Err(bad_opt("margin must be finite and > 0"));
    }
    Ok(())
}

fn check_data(data: &[Vec<f32>], names: &[String]) -> Result<(), ModelError> {
    let n = names.len();
    if n == 0 {
        return Err(ModelError::BadTrainingData {
            reason: "no feature names".to_string(),
        });
    }
    for (i, f) in names.iter().enumerate() {
        if f.trim().is_empty() || names[..i].contains(f) {
            return Err(ModelError::BadTrainingData {
                reason: format!("feature name {i} (\"{f}\") is empty or duplicated"),
            });
        }
    }
    if data.len() < MIN_TRAIN_ROWS {
        return Err(ModelError::BadTrainingData {
            reason: format!("{} rows, need at least {MIN_TRAIN_ROWS}", data.len()),
        });
    }
    for (i, row) in data.iter().enumerate() {
        if row.len() != n {
            return Err(ModelError::FeatureMismatch {
                expected: n,
                got: row.len(),
            });
        }
        if row.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::BadTrainingData {
                reason: format!("row {i} has a non-finite value"),
            });
        }
    }
    Ok(())
}

/// Per-feature mean and (population, floored) standard deviation over `rows`.
fn mean_std(data: &[Vec<f32>], rows: &[usize], n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0f64; n];
    let mut sq = vec![0f64; n];
    for &r in rows {
        for (j, &v) in data[r].iter().enumerate() {
            sum[j] += f64::from(v);
            sq[j] += f64::from(v) * f64::from(v);
        }
    }
    let cnt = rows.len().max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / cnt).collect();
    let std = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| ((s / cnt - m * m).max(0.0).sqrt() as f32).max(STD_FLOOR))
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), std)
}

/// Linear-interpolated quantile of sorted, non-empty `v`.
fn quantile(sorted: &[f32], q: f64) -> f32 {
    let Some(&last) = sorted.last() else {
        return 0.0;
    };
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = (pos - lo as f64) as f32;
    match (sorted.get(lo), sorted.get(hi)) {
        (Some(&a), Some(&b)) => a + (b - a) * frac,
        _ => last,
    }
}

/// Weight and bias variables of one linear layer, drawn uniformly in ±1/√fan_in (the
/// Kaiming-uniform default of common frameworks) from the seeded RNG.
fn init_linear(
    rng: &mut StdRng,
    fan_in: usize,
    fan_out: usize,
    dev: &Device,
) -> Result<(Var, Var), ModelError> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let w: Vec<f32> = (0..fan_in * fan_out)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    let b: Vec<f32> = (0..fan_out)
        .map(|_| rng.random_range(-bound..bound))
        .collect();
    Ok((
        Var::from_vec(w, (fan_out, fan_in), dev)?,
        Var::from_vec(b, fan_out, dev)?,
    ))
}

/// Trains an autoencoder on normal vectors `data` (rows in `feature_names` order), calibrates
/// its threshold on a held-out split and returns it with a manifest ready to save.
pub fn train(
    data: &[Vec<f32>],
    feature_names: &[String],
    opts: &TrainOptions,
) -> Result<TrainedModel, ModelError> {
    check_options(opts)?;
    let n = feature_names.len();
    check_data(data, feature_names)?;
    let dev = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(opts.seed);

    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(&mut rng);
    let n_val = ((data.len() as f64 * opts.val_fraction).round() as usize).clamp(1, data.len() - 1);
    let (val_rows, train_rows) = order.split_at(n_val);
    let (mean, std) = mean_std(data, train_rows, n);

    // Standardise the training split once into a flat host buffer.
    let mut z = Vec::with_capacity(train_rows.len() * n);
    for &r in train_rows {
        z.extend(
            data[r]
                .iter()
                .zip(mean.iter().zip(&std))
                .map(|(v, (m, s))| (v - m) / s),
        );
    }

    let layers = vec![n, opts.hidden, opts.bottleneck, opts.hidden, n];
    let names = linear_names(&layers);
    let mut vars = Vec::new();
    let mut linears = Vec::new();
    for i in 0..names.len() {
        let (w, b) = init_linear(&mut rng, layers[i], layers[i + 1], &dev)?;
        linears.push(Linear::new(
            w.as_tensor().clone(),
            Some(b.as_tensor().clone()),
        ));
        vars.push((w, b));
    }
    let params = ParamsAdamW {
        lr: opts.learning_rate,
        ..ParamsAdamW::default()
    };
    let all: Vec<Var> = vars
        .iter()
        .flat_map(|(w, b)| [w.clone(), b.clone()])
        .collect();
    let mut opt = AdamW::new(all, params)?;

    let n_train = train_rows.len();
    let mut idx: Vec<usize> = (0..n_train).collect();
    let mut batch = Vec::with_capacity(opts.batch_size * n);
    let mut final_loss = f32::NAN;
    for epoch in 0..opts.epochs {
        idx.shuffle(&mut rng);
        let mut total = 0f64;
        for chunk in idx.chunks(opts.batch_size) {
            batch.clear();
            for &r in chunk {
                batch.extend_from_slice(&z[r * n..(r + 1) * n]);
            }
            let x = Tensor::from_slice(&batch, (chunk.len(), n), &dev)?;
            let recon = forward(&linears, &x)?;
            let loss = candle_nn::loss::mse(&recon, &x)?;
            opt.backward_step(&loss)?;
            total += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
        }
        final_loss = (total / n_train as f64) as f32;
        if !final_loss.is_finite() {
            return Err(ModelError::TrainingDiverged {
                epoch,
                loss: final_loss,
            });
        }
    }

    let mut tensors = HashMap::new();
    for (name, (w, b)) in names.iter().zip(&vars) {
        tensors.insert(format!("{name}.weight"), w.as_detached_tensor().copy()?);
        tensors.insert(format!("{name}.bias"), b.as_detached_tensor().copy()?);
    }
    // The support term: each feature's 0.1 %–99.9 % range on the training split.
    let (low, high): (Vec<f32>, Vec<f32>) = (0..n)
        .map(|i| {
            let mut col: Vec<f32> = train_rows.iter().map(|&r| data[r][i]).collect();
            col.sort_by(f32::total_cmp);
            (quantile(&col, 0.001), quantile(&col, 0.999))
        })
        .unzip();
    let model = Autoencoder::from_tensors(&layers, &mean, &std, tensors)?
        .with_support(&low, &high, &std)?;

    let val: Vec<Vec<f32>> = val_rows.iter().map(|&r| data[r].clone()).collect();
    let mut scores = model.score_batch(&val)?;
    scores.sort_by(f32::total_cmp);
    let base = quantile(&scores, opts.quantile);
    let threshold = ((f64::from(base) * opts.margin) as f32).max(MIN_THRESHOLD);
    let calibration = Calibration {
        quantile: opts.quantile,
        margin: opts.margin,
        samples: scores.len(),
        score_p50: quantile(&scores, 0.5),
        score_p99: quantile(&scores, 0.99),
        score_p999: quantile(&scores, 0.999),
        score_max: scores.last().copied().unwrap_or(0.0),
    };
    let created_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let manifest = Manifest {
        format: manifest::FORMAT_VERSION,
        name: opts.name.clone(),
        version: opts.version.clone(),
        kind: manifest::KIND_AUTOENCODER.to_string(),
        features: feature_names.to_vec(),
        input_mean: mean,
        input_std: std,
        input_low: low,
        input_high: high,
        layers,
        threshold,
        calibration,
        weights: manifest::WEIGHTS_FILE.to_string(),
        weights_sha256: String::new(),
        quantization: manifest::QUANT_F32.to_string(),
        created_ms,
        trained_on: opts.trained_on.clone(),
        train: TrainReport {
            epochs: opts.epochs,
            final_loss,
            train_samples: n_train,
            val_samples: val.len(),
        },
    };
    Ok(TrainedModel { manifest, model })
}
