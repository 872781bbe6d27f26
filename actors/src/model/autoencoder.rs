//! The MLP autoencoder: standardise, encode to a bottleneck, decode, and score each row by its
//! mean squared reconstruction error in standardised space.
//!
//! # Design constraints
//! - CPU only, small and fixed-shape: a whole batch of feature vectors goes through the network
//!   as one `[rows, features]` tensor, so scoring costs a handful of small matmuls per batch
//!   rather than per sensor.
//! - Activation is `tanh` on every layer but the last, which is linear. `tanh` is bounded and
//!   smooth: with a bottleneck of only a few units ReLU easily leaves units dead for good, while
//!   `tanh` keeps every unit trainable; and because the bottleneck code saturates, an input far
//!   outside the training distribution cannot be reproduced by simply scaling the code up, so its
//!   reconstruction error grows with its distance, which is what the score needs.
//! - Immutable after construction and made only of candle `Tensor`s, so it is `Send + Sync` and
//!   can be shared behind an `Arc` by every sensor task.
//! - Every tensor handed in (from training or from a weights file) is checked against `layers`
//!   for presence, dtype, shape and finiteness before the model exists.

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::Linear;

use super::manifest::linear_names;
use super::ModelError;

/// A ready-to-score autoencoder with its input standardisation.
#[derive(Debug, Clone)]
pub struct Autoencoder {
    /// Linear layers from input to output; `tanh` follows all but the last.
    linears: Vec<Linear>,
    /// Tensor name stem of each linear (`enc0`, …, `dec1`), used when exporting weights.
    names: Vec<String>,
    /// Layer widths from input to output, as in the manifest.
    layers: Vec<usize>,
    /// Per-feature mean as a `[1, features]` tensor, subtracted before the network.
    mean: Tensor,
    /// The same mean on the host, substituted for rows with non-finite values.
    mean_host: Vec<f32>,
    /// Per-feature reciprocal standard deviation as a `[1, features]` tensor.
    inv_std: Tensor,
    /// Training support per feature, `(low, high, 1/std)` on the host; empty = no support term.
    support: Vec<(f32, f32, f32)>,
}

/// Runs the network (without standardisation) on a `[rows, layers[0]]` tensor.
pub(crate) fn forward(linears: &[Linear], z: &Tensor) -> candle_core::Result<Tensor> {
    let mut h = z.clone();
    let last = linears.len().saturating_sub(1);
    for (i, l) in linears.iter().enumerate() {
        h = l.forward(&h)?;
        if i < last {
            h = h.tanh()?;
        }
    }
    Ok(h)
}

fn bad_weights(reason: String) -> ModelError {
    ModelError::BadWeights { reason }
}

/// Takes `name` out of `tensors` as an f32 tensor of shape `dims` with finite values.
fn take_checked(
    tensors: &mut HashMap<String, Tensor>,
    name: &str,
    dims: &[usize],
) -> Result<Tensor, ModelError> {
    let t = tensors
        .remove(name)
        .ok_or_else(|| bad_weights(format!("tensor {name} is missing")))?;
    if t.dtype() != DType::F32 {
        return Err(bad_weights(format!(
            "tensor {name}: expected dtype f32, got {:?}",
            t.dtype()
        )));
    }
    if t.dims() != dims {
        return Err(bad_weights(format!(
            "tensor {name}: expected shape {dims:?}, got {:?}",
            t.dims()
        )));
    }
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(bad_weights(format!(
            "tensor {name}: contains non-finite values"
        )));
    }
    Ok(t)
}

impl Autoencoder {
    /// Builds the model from f32 tensors named as [`linear_names`] describes, refusing missing,
    /// extra, mistyped, misshapen or non-finite tensors.
    pub(crate) fn from_tensors(
        layers: &[usize],
        input_mean: &[f32],
        input_std: &[f32],
        mut tensors: HashMap<String, Tensor>,
    ) -> Result<Self, ModelError> {
        let n = layers.first().copied().unwrap_or(0);
        if layers.len() < 2 || input_mean.len() != n || input_std.len() != n {
            return Err(bad_weights(format!(
                "inconsistent shape: layers {layers:?}, {} means, {} stds",
                input_mean.len(),
                input_std.len()
            )));
        }
        let names = linear_names(layers);
        let mut linears = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let (fan_in, fan_out) = (layers[i], layers[i + 1]);
            let w = take_checked(&mut tensors, &format!("{name}.weight"), &[fan_out, fan_in])?;
            let b = take_checked(&mut tensors, &format!("{name}.bias"), &[fan_out])?;
            linears.push(Linear::new(w, Some(b)));
        }
        if let Some(extra) = tensors.keys().min() {
            return Err(bad_weights(format!("unexpected tensor {extra}")));
        }
        let inv: Vec<f32> = input_std.iter().map(|s| 1.0 / s).collect();
        if inv.iter().any(|v| !v.is_finite()) || input_mean.iter().any(|v| !v.is_finite()) {
            return Err(bad_weights("non-finite standardisation".to_string()));
        }
        let dev = Device::Cpu;
        Ok(Self {
            linears,
            names,
            layers: layers.to_vec(),
            mean: Tensor::from_slice(input_mean, (1, n), &dev)?,
            mean_host: input_mean.to_vec(),
            inv_std: Tensor::from_vec(inv, (1, n), &dev)?,
            support: Vec::new(),
        })
    }

    /// Number of features each input row must have.
    pub fn n_features(&self) -> usize {
        self.layers.first().copied().unwrap_or(0)
    }

    /// Layer widths from input to output.
    pub fn layers(&self) -> &[usize] {
        &self.layers
    }

    /// Per-row mean squared reconstruction error in standardised space, computed in a single
    /// batched forward pass.
    ///
    /// A row holding a NaN or infinite value cannot be normal data and scores `f32::INFINITY`
    /// (it is replaced by the training mean for the forward pass so it cannot poison the batch).
    /// A row of the wrong length refuses the whole batch with [`ModelError::FeatureMismatch`].
    pub fn score_batch(&self, x: &[Vec<f32>]) -> Result<Vec<f32>, ModelError> {
        let n = self.n_features();
        if x.is_empty() {
            return Ok(Vec::new());
        }
        let mut flat = Vec::with_capacity(x.len() * n);
        let mut non_finite = Vec::new();
        for (r, row) in x.iter().enumerate() {
            if row.len() != n {
                return Err(ModelError::FeatureMismatch {
                    expected: n,
                    got: row.len(),
                });
            }
            if row.iter().all(|v| v.is_finite()) {
                flat.extend_from_slice(row);
            } else {
                non_finite.push(r);
                flat.extend_from_slice(&self.mean_host);
            }
        }
        let input = Tensor::from_vec(flat, (x.len(), n), &Device::Cpu)?;
        let mut scores = self.score_tensor(&input)?.to_vec1::<f32>()?;
        for r in non_finite {
            if let Some(s) = scores.get_mut(r) {
                *s = f32::INFINITY;
            }
        }
        Ok(scores)
    }

    /// Scores a `[rows, features]` tensor of raw (unstandardised) features.
    pub(crate) fn score_tensor(&self, input: &Tensor) -> Result<Tensor, ModelError> {
        let recon = self.recon_tensor(input)?;
        if self.support.is_empty() {
            return Ok(recon);
        }
        let rows = input.to_vec2::<f32>()?;
        let extra: Vec<f32> = rows.iter().map(|r| self.support_distance(r)).collect();
        Ok((recon + Tensor::from_vec(extra, rows.len(), &Device::Cpu)?)?)
    }

    /// Mean squared distance, in standardised units, by which `row` lies outside the training
    /// support; 0 inside it.
    fn support_distance(&self, row: &[f32]) -> f32 {
        let sum: f32 = row
            .iter()
            .zip(&self.support)
            .map(|(&x, &(lo, hi, inv))| {
                let d = if x > hi {
                    x - hi
                } else if x < lo {
                    lo - x
                } else {
                    0.0
                };
                (d * inv) * (d * inv)
            })
            .sum();
        sum / self.support.len().max(1) as f32
    }

    /// Sets the training support (`low`, `high` per feature, raw units); the score then adds
    /// the mean squared standardised distance outside it. Lengths must match the features.
    pub(crate) fn with_support(
        mut self,
        low: &[f32],
        high: &[f32],
        std: &[f32],
    ) -> Result<Self, ModelError> {
        let n = self.n_features();
        if low.is_empty() && high.is_empty() {
            self.support.clear();
            return Ok(self);
        }
        if low.len() != n || high.len() != n || std.len() != n {
            return Err(ModelError::FeatureMismatch {
                expected: n,
                got: low.len().min(high.len()),
            });
        }
        self.support = (0..n)
            .map(|i| (low[i], high[i], 1.0 / std[i].max(1e-6)))
            .collect();
        Ok(self)
    }

    /// Reconstruction part of the score for a `[rows, features]` tensor of raw features.
    fn recon_tensor(&self, input: &Tensor) -> Result<Tensor, ModelError> {
        let z = input
            .broadcast_sub(&self.mean)?
            .broadcast_mul(&self.inv_std)?;
        let recon = forward(&self.linears, &z)?;
        Ok((recon - z)?.sqr()?.mean(D::Minus1)?)
    }

    /// The weights as named f32 tensors (`<layer>.weight`, `<layer>.bias`), in a stable order,
    /// ready to be written to a safetensors file or quantised.
    pub fn named_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (name, l) in self.names.iter().zip(&self.linears) {
            out.insert(format!("{name}.weight"), l.weight().clone());
            if let Some(b) = l.bias() {
                out.insert(format!("{name}.bias"), b.clone());
            }
        }
        out
    }
}
