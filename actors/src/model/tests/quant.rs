use std::fs;

use super::super::manifest::WEIGHTS_FILE;
use super::super::{inspect, load_package, quantize_package, ModelError};
use super::*;

#[test]
fn int8_package_loads_agrees_with_f32_and_is_smaller() {
    let f32_dir = tempfile::tempdir().unwrap();
    shared_model().save(f32_dir.path()).unwrap();
    let int8_dir = tempfile::tempdir().unwrap();
    let qm = quantize_package(f32_dir.path(), int8_dir.path()).unwrap();
    assert_eq!(qm.quantization, "int8");
    assert_eq!(qm, inspect(int8_dir.path()).unwrap());

    let full = load_package(f32_dir.path()).unwrap();
    let q = load_package(int8_dir.path()).unwrap();
    assert_eq!(q.manifest.threshold, full.manifest.threshold);
    let thr = full.manifest.threshold;

    let mut x = normal_data(5_000, 77);
    x.extend(shifted_data(1_000, 78));
    let a = full.model.score_batch(&x).unwrap();
    let b = q.model.score_batch(&x).unwrap();
    let max_rel = a
        .iter()
        .zip(&b)
        .map(|(a, b)| (a - b).abs() / a.max(1e-6))
        .fold(0.0f32, f32::max);
    let near = a
        .iter()
        .zip(&b)
        .filter(|(a, _)| **a > thr * 0.5)
        .map(|(a, b)| (a - b).abs() / a)
        .fold(0.0f32, f32::max);
    let agree = a
        .iter()
        .zip(&b)
        .filter(|(a, b)| (**a > thr) == (**b > thr))
        .count();
    let agree = agree as f64 / a.len() as f64;
    let fsize = fs::metadata(f32_dir.path().join(WEIGHTS_FILE))
        .unwrap()
        .len();
    let qsize = fs::metadata(int8_dir.path().join(WEIGHTS_FILE))
        .unwrap()
        .len();
    println!(
        "int8 vs f32: max rel score diff {:.3}% (all rows), {:.3}% (rows above thr/2), \
         decisions agree {:.3}%, weights file {fsize} B -> {qsize} B",
        max_rel * 100.0,
        near * 100.0,
        agree * 100.0
    );
    assert!(agree >= 0.99, "decision agreement {agree}");
    assert!(near <= 0.05, "relative difference near threshold {near}");
    assert!(qsize < fsize);

    // The matrix payload is exactly 4x smaller: u8 vs f32 per weight.
    let matrix_elems: usize = full.manifest.layers.windows(2).map(|w| w[0] * w[1]).sum();
    let tensors = candle_core::safetensors::load(
        int8_dir.path().join(WEIGHTS_FILE),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let q_bytes: usize = tensors
        .iter()
        .filter(|(k, _)| k.ends_with(".weight.q"))
        .map(|(_, t)| t.elem_count())
        .sum();
    assert_eq!(q_bytes, matrix_elems);
    assert!(!tensors.keys().any(|k| k.ends_with(".weight")));
}

#[test]
fn requantising_an_int8_package_is_exact() {
    let f32_dir = tempfile::tempdir().unwrap();
    shared_model().save(f32_dir.path()).unwrap();
    let (q1, q2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let m1 = quantize_package(f32_dir.path(), q1.path()).unwrap();
    let m2 = quantize_package(q1.path(), q2.path()).unwrap();
    assert_eq!(m1.weights_sha256, m2.weights_sha256);
}

#[test]
fn corrupt_int8_package_is_refused() {
    let f32_dir = tempfile::tempdir().unwrap();
    shared_model().save(f32_dir.path()).unwrap();
    let q = tempfile::tempdir().unwrap();
    quantize_package(f32_dir.path(), q.path()).unwrap();
    let path = q.path().join(WEIGHTS_FILE);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, bytes).unwrap();
    let e = load_package(q.path()).unwrap_err();
    assert!(matches!(e, ModelError::ChecksumMismatch { .. }), "{e}");
    // Quantising a refused package fails the same way and writes nothing.
    let dst = tempfile::tempdir().unwrap();
    let e = quantize_package(q.path(), dst.path()).unwrap_err();
    assert!(matches!(e, ModelError::ChecksumMismatch { .. }), "{e}");
    assert_eq!(fs::read_dir(dst.path()).unwrap().count(), 0);
}
