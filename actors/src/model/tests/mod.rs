//! Tests with real candle training and real package files; shared fixtures live here.

mod fallback;
mod package;
mod quant;
mod scoring;
mod training;

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::train::{train, TrainOptions, TrainedModel};

/// Feature count of the synthetic data.
pub(super) const N: usize = 11;

/// The edgegw feature names, in extractor order.
pub(super) fn names() -> Vec<String> {
    let mut v: Vec<String> = [
        "mean_z",
        "std_log_ratio",
        "min_z",
        "max_z",
        "p05_z",
        "p50_z",
        "p95_z",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend((0..4).map(|i| format!("band_{i}_log_ratio")));
    v
}

fn gauss(rng: &mut StdRng) -> f32 {
    // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
    let u: f32 = 1.0 - rng.random::<f32>();
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f32::consts::PI * v).cos()
}

/// `rows` normal vectors: x = A z + 0.1 noise, z ~ N(0, I₃), with A fixed across calls.
pub(super) fn normal_data(rows: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut arng = StdRng::seed_from_u64(42);
    let a: Vec<[f32; 3]> = (0..N)
        .map(|_| std::array::from_fn(|_| arng.random_range(-1.0f32..1.0)))
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..rows)
        .map(|_| {
            let z = [gauss(&mut rng), gauss(&mut rng), gauss(&mut rng)];
            a.iter()
                .map(|r| r[0] * z[0] + r[1] * z[1] + r[2] * z[2] + 0.1 * gauss(&mut rng))
                .collect()
        })
        .collect()
}

/// Anomalies: normal vectors with one coordinate (cycling over all of them) shifted by +8.
pub(super) fn shifted_data(rows: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut x = normal_data(rows, seed);
    for (i, row) in x.iter_mut().enumerate() {
        row[i % N] += 8.0;
    }
    x
}

/// Options used by the shared model: defaults, fewer epochs to keep the suite quick.
pub(super) fn test_options() -> TrainOptions {
    TrainOptions {
        epochs: 30,
        seed: 7,
        trained_on: "synthetic correlated gaussian".to_string(),
        ..TrainOptions::default()
    }
}

/// One model trained on 20k synthetic vectors, shared by the tests that only need *a* model.
pub(super) fn shared_model() -> &'static TrainedModel {
    static MODEL: OnceLock<TrainedModel> = OnceLock::new();
    MODEL.get_or_init(|| train(&normal_data(20_000, 1), &names(), &test_options()).unwrap())
}

/// Fraction of `scores` strictly above `threshold`.
pub(super) fn frac_above(scores: &[f32], threshold: f32) -> f64 {
    scores.iter().filter(|&&s| s > threshold).count() as f64 / scores.len() as f64
}
