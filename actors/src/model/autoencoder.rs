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
    /// Per-feature mean, subtracted before the network (on the host, as rows are copied in).
    mean: Vec<f32>,
    /// Per-feature reciprocal standard deviation, multiplied in after the mean is subtracted.
    inv_std: Vec<f32>,
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
        Ok(Self {
            linears,
            names,
            layers: layers.to_vec(),
            mean: input_mean.to_vec(),
            inv_std: inv,
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
    /// batched forward pass, plus the support term (if the package has one).
    ///
    /// A row holding a NaN or infinite value cannot be normal data and scores `f32::INFINITY`
    /// (it is replaced by the training mean for the forward pass so it cannot poison the batch).
    /// A row of the wrong length refuses the whole batch with [`ModelError::FeatureMismatch`].
    ///
    /// The host does what it does per value anyway while copying the rows in: the finiteness
    /// check, standardisation and the support term; candle runs the network on the standardised
    /// `[rows, features]` tensor. The arithmetic is the same, operation for operation, as
    /// standardising with broadcast tensor ops, so scores do not change.
    pub fn score_batch(&self, x: &[Vec<f32>]) -> Result<Vec<f32>, ModelError> {
        let n = self.n_features();
        if x.is_empty() {
            return Ok(Vec::new());
        }
        let mut z = Vec::with_capacity(x.len() * n);
        let mut extra = Vec::with_capacity(if self.support.is_empty() { 0 } else { x.len() });
        let mut non_finite = Vec::new();
        for (r, row) in x.iter().enumerate() {
            if row.len() != n {
                return Err(ModelError::FeatureMismatch {
                    expected: n,
                    got: row.len(),
                });
            }
            let finite = row.iter().all(|v| v.is_finite());
            if !finite {
                non_finite.push(r);
            }
            let row = if finite { row.as_slice() } else { &self.mean };
            z.extend(self.standardise(row));
            if !self.support.is_empty() {
                extra.push(self.support_distance(row));
            }
        }
        let input = Tensor::from_vec(z, (x.len(), n), &Device::Cpu)?;
        let mut scores = self.recon_error(&input)?.to_vec1::<f32>()?;
        for (s, e) in scores.iter_mut().zip(&extra) {
            *s += e;
        }
        for r in non_finite {
            if let Some(s) = scores.get_mut(r) {
                *s = f32::INFINITY;
            }
        }
        Ok(scores)
    }

    /// `row` in standardised units: `(x - mean) * (1 / std)` per feature.
    fn standardise<'a>(&'a self, row: &'a [f32]) -> impl Iterator<Item = f32> + 'a {
        row.iter()
            .zip(&self.mean)
            .zip(&self.inv_std)
            .map(|((&v, &m), &inv)| (v - m) * inv)
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

    /// Reconstruction part of the score for a `[rows, features]` tensor of standardised
    /// features: the mean squared error of each row's reconstruction.
    fn recon_error(&self, z: &Tensor) -> Result<Tensor, ModelError> {
        let recon = forward(&self.linears, z)?;
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
