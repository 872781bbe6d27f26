//! int8 packages: per-output-row symmetric quantisation of the weight matrices.
//!
//! Each weight matrix `W[out, in]` is stored as `<layer>.weight.q`, a `U8` tensor holding
//! `round(W / scale[row]) + 128` (values 1..=255), and `<layer>.weight.scale`, an f32 `[out]`
//! tensor with `scale[row] = max|W[row, ·]| / 127`. Biases stay f32 under their usual names.
//!
//! # Design constraints
//! - The gain is a smaller package for OTA updates, not faster inference: the loader
//!   dequantises to f32 once at load time and scoring runs the same f32 code path. On the
//!   default 11-16-4-16-11 network the matrix payload shrinks exactly 4×, but the safetensors
//!   header and the f32 biases and scales are fixed costs, so the whole file shrinks less
//!   (default model: 2668 B -> 1712 B; an 11-128-16-128-11 model: 29364 B -> 10064 B).
//! - No data is available at quantisation time, so the threshold is kept as calibrated on the
//!   f32 model; the tests measure how far int8 scores drift from f32 scores.
//! - Re-quantising an int8 package reproduces it exactly (each row's max maps back to ±127).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::manifest::{linear_names, Manifest, QUANT_INT8};
use super::{load_package, write_package, ModelError};

/// Offset added to the signed int8 value so it fits a `U8` tensor.
const ZERO_POINT: i32 = 128;
/// Largest magnitude of a quantised value (symmetric range, -128 unused).
const QMAX: f32 = 127.0;

/// Quantises the package in `src` (f32 or int8, verified as by [`load_package`]) into `dst`
/// (created if needed) and returns the manifest written there. Name, version, threshold and
/// calibration are kept; `quantization` becomes `"int8"`.
pub fn quantize_package(src: &Path, dst: &Path) -> Result<Manifest, ModelError> {
    let loaded = load_package(src)?;
    let mut out = BTreeMap::new();
    for (name, t) in loaded.model.named_tensors() {
        match name.strip_suffix(".weight") {
            Some(stem) => {
                let (q, scale) = quantize_matrix(&t)?;
                out.insert(format!("{stem}.weight.q"), q);
                out.insert(format!("{stem}.weight.scale"), scale);
            }
            None => {
                out.insert(name, t);
            }
        }
    }
    let mut manifest = loaded.manifest;
    manifest.quantization = QUANT_INT8.to_string();
    write_package(dst, &manifest, &out)
}

/// Per-row symmetric quantisation of a `[out, in]` f32 matrix into (`U8` values, f32 scales).
fn quantize_matrix(w: &Tensor) -> Result<(Tensor, Tensor), ModelError> {
    let rows = w.to_vec2::<f32>()?;
    let (n_out, n_in) = w.dims2()?;
    let mut q = Vec::with_capacity(n_out * n_in);
    let mut scales = Vec::with_capacity(n_out);
    for row in &rows {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = max / QMAX;
        scales.push(scale);
        for &v in row {
            let s = if scale > 0.0 {
                (v / scale).round()
            } else {
                0.0
            };
            // Clamped to ±127, so the shifted value is always within 1..=255.
            let shifted = s.clamp(-QMAX, QMAX) as i32 + ZERO_POINT;
            q.push(u8::try_from(shifted).unwrap_or(ZERO_POINT as u8));
        }
    }
    let dev = Device::Cpu;
    Ok((
        Tensor::from_vec(q, (n_out, n_in), &dev)?,
        Tensor::from_vec(scales, n_out, &dev)?,
    ))
}

fn bad(reason: String) -> ModelError {
    ModelError::BadWeights { reason }
}

/// Removes `name` from `raw`, checking dtype and shape.
fn take(
    raw: &mut HashMap<String, Tensor>,
    name: &str,
    dtype: DType,
    dims: &[usize],
) -> Result<Tensor, ModelError> {
    let t = raw
        .remove(name)
        .ok_or_else(|| bad(format!("tensor {name} is missing")))?;
    if t.dtype() != dtype {
        return Err(bad(format!(
            "tensor {name}: expected dtype {dtype:?}, got {:?}",
            t.dtype()
        )));
    }
    if t.dims() != dims {
        return Err(bad(format!(
            "tensor {name}: expected shape {dims:?}, got {:?}",
            t.dims()
        )));
    }
    Ok(t)
}

/// Turns the tensors of an int8 weights file into the f32 tensors
/// `Autoencoder::from_tensors` expects. Biases pass through; any tensor that is not
/// part of the int8 layout is refused.
pub(crate) fn dequantize(
    layers: &[usize],
    mut raw: HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let dev = Device::Cpu;
    let mut out = HashMap::new();
    for (i, name) in linear_names(layers).iter().enumerate() {
        let (Some(&n_in), Some(&n_out)) = (layers.get(i), layers.get(i + 1)) else {
            return Err(bad(format!("layers {layers:?} too short for {name}")));
        };
        let q = take(
            &mut raw,
            &format!("{name}.weight.q"),
            DType::U8,
            &[n_out, n_in],
        )?;
        let scale_name = format!("{name}.weight.scale");
        let scale = take(&mut raw, &scale_name, DType::F32, &[n_out])?.to_vec1::<f32>()?;
        if scale.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(bad(format!(
                "tensor {scale_name}: scales must be finite and >= 0"
            )));
        }
        let mut w = Vec::with_capacity(n_out * n_in);
        for (row, s) in q.to_vec2::<u8>()?.iter().zip(&scale) {
            w.extend(row.iter().map(|&v| (i32::from(v) - ZERO_POINT) as f32 * s));
        }
        out.insert(
            format!("{name}.weight"),
            Tensor::from_vec(w, (n_out, n_in), &dev)?,
        );
        let bias = format!("{name}.bias");
        let b = take(&mut raw, &bias, DType::F32, &[n_out])?;
        out.insert(bias, b);
    }
    if let Some(extra) = raw.keys().min() {
        return Err(bad(format!("unexpected tensor {extra}")));
    }
    Ok(out)
}
