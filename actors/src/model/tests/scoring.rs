//! `Autoencoder::score_batch` against a plain tensor formulation of the same score, on the
//! shipped packages (f32 and int8), and against itself across batch sizes: the pool now sends
//! batches of any size from 1 up, so a vector's score must not depend on its batch.

use std::path::Path;

use candle_core::{Device, Tensor, D};
use candle_nn::Linear;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::autoencoder::forward;
use super::super::manifest::linear_names;
use super::super::{load_builtin, load_package, LoadedModel};

/// The score as broadcast tensor ops: standardise, forward, mean squared error, plus the
/// support term, all in candle.
fn reference(m: &LoadedModel, x: &[Vec<f32>]) -> Vec<f32> {
    let man = &m.manifest;
    let n = man.layers[0];
    let dev = Device::Cpu;
    let named = m.model.named_tensors();
    let linears: Vec<Linear> = linear_names(&man.layers)
        .iter()
        .map(|l| {
            Linear::new(
                named[&format!("{l}.weight")].clone(),
                Some(named[&format!("{l}.bias")].clone()),
            )
        })
        .collect();
    let flat: Vec<f32> = x.iter().flatten().copied().collect();
    let input = Tensor::from_vec(flat, (x.len(), n), &dev).unwrap();
    let mean = Tensor::from_slice(&man.input_mean, (1, n), &dev).unwrap();
    let inv: Vec<f32> = man.input_std.iter().map(|s| 1.0 / s).collect();
    let inv = Tensor::from_vec(inv, (1, n), &dev).unwrap();
    let z = input
        .broadcast_sub(&mean)
        .unwrap()
        .broadcast_mul(&inv)
        .unwrap();
    let recon = forward(&linears, &z).unwrap();
    let err = (recon - &z)
        .unwrap()
        .sqr()
        .unwrap()
        .mean(D::Minus1)
        .unwrap();
    let mut scores = err.to_vec1::<f32>().unwrap();
    if !man.input_low.is_empty() {
        for (s, row) in scores.iter_mut().zip(x) {
            let mut sum = 0f32;
            for (i, &v) in row.iter().enumerate() {
                let (lo, hi) = (man.input_low[i], man.input_high[i]);
                let d = if v > hi {
                    v - hi
                } else if v < lo {
                    lo - v
                } else {
                    0.0
                };
                let inv = 1.0 / man.input_std[i].max(1e-6);
                sum += (d * inv) * (d * inv);
            }
            *s += sum / n as f32;
        }
    }
    scores
}

/// Rows around the training distribution: most inside it, some far outside (support term).
fn rows(count: usize, seed: u64, m: &LoadedModel) -> Vec<Vec<f32>> {
    let man = &m.manifest;
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let wide = rng.random_bool(0.2);
            (0..man.layers[0])
                .map(|i| {
                    let spread = if wide { 8.0 } else { 1.5 };
                    man.input_mean[i] + man.input_std[i] * rng.random_range(-spread..spread)
                })
                .collect()
        })
        .collect()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(1.0)
}

fn check_package(m: &LoadedModel, seed: u64) {
    let x = rows(3_000, seed, m);
    let got = m.model.score_batch(&x).unwrap();
    let want = reference(m, &x);
    assert_eq!(got.len(), want.len());
    for (r, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(close(*g, *w), "row {r}: score {g}, tensor formulation {w}");
    }
    // Any batch size gives each row the score it gets alone.
    for size in [1usize, 2, 7, 8, 32, 64, 128, 500] {
        for chunk in x.chunks(size).take(4) {
            let batch = m.model.score_batch(chunk).unwrap();
            for (row, s) in chunk.iter().zip(&batch) {
                let alone = m.model.score_batch(std::slice::from_ref(row)).unwrap()[0];
                assert!(close(*s, alone), "batch {size}: {s} vs alone {alone}");
            }
        }
    }
}

#[test]
fn shipped_f32_model_scores_as_the_tensor_formulation_at_every_batch_size() {
    check_package(&load_builtin().unwrap(), 1);
}

#[test]
fn shipped_int8_model_scores_as_the_tensor_formulation_at_every_batch_size() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/model-int8");
    check_package(&load_package(&dir).unwrap(), 2);
}

#[test]
fn a_non_finite_row_scores_infinity_without_touching_its_neighbours() {
    let m = load_builtin().unwrap();
    let mut x = rows(6, 3, &m);
    let clean = m.model.score_batch(&x).unwrap();
    x[2][4] = f32::NAN;
    x[4][0] = f32::NEG_INFINITY;
    let s = m.model.score_batch(&x).unwrap();
    assert_eq!(s[2], f32::INFINITY);
    assert_eq!(s[4], f32::INFINITY);
    for r in [0, 1, 3, 5] {
        assert!(close(s[r], clean[r]), "row {r}: {} vs {}", s[r], clean[r]);
    }
}
