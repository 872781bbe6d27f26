use std::fs;
use std::path::Path;

use super::super::manifest::{Manifest, MANIFEST_FILE, WEIGHTS_FILE};
use super::super::{inspect, load_package, sha256_hex, ModelError};
use super::*;

fn saved() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    shared_model().save(dir.path()).unwrap();
    dir
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut Manifest)) {
    let mut m = inspect(dir).unwrap();
    f(&mut m);
    fs::write(dir.join(MANIFEST_FILE), serde_json::to_vec(&m).unwrap()).unwrap();
}

fn bad_manifest_reason(dir: &Path) -> String {
    match load_package(dir).unwrap_err() {
        ModelError::BadManifest { reason } => reason,
        e => panic!("expected BadManifest, got {e}"),
    }
}

#[test]
fn save_writes_checksummed_package_without_temp_files() {
    let dir = saved();
    let mut files: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, vec![MANIFEST_FILE, WEIGHTS_FILE]);
    let m = inspect(dir.path()).unwrap();
    assert_eq!(m.quantization, "f32");
    assert_eq!(
        m.weights_sha256,
        sha256_hex(&fs::read(dir.path().join(WEIGHTS_FILE)).unwrap())
    );
    // Saving again over an existing package replaces it cleanly.
    shared_model().save(dir.path()).unwrap();
    load_package(dir.path()).unwrap();
}

#[test]
fn corrupt_weights_are_refused_by_checksum() {
    let dir = saved();
    let path = dir.path().join(WEIGHTS_FILE);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    bytes[mid + 1] ^= 0x55;
    fs::write(&path, &bytes).unwrap();
    let e = load_package(dir.path()).unwrap_err();
    assert!(matches!(e, ModelError::ChecksumMismatch { .. }), "{e}");
    // Truncation too.
    fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let e = load_package(dir.path()).unwrap_err();
    assert!(matches!(e, ModelError::ChecksumMismatch { .. }), "{e}");
}

#[test]
fn missing_files_are_io_errors_naming_the_file() {
    let dir = saved();
    fs::remove_file(dir.path().join(WEIGHTS_FILE)).unwrap();
    match load_package(dir.path()).unwrap_err() {
        ModelError::Io { path, .. } => assert!(path.ends_with(WEIGHTS_FILE)),
        e => panic!("expected Io, got {e}"),
    }
    let empty = tempfile::tempdir().unwrap();
    match inspect(empty.path()).unwrap_err() {
        ModelError::Io { path, .. } => assert!(path.ends_with(MANIFEST_FILE)),
        e => panic!("expected Io, got {e}"),
    }
}

#[test]
fn garbage_or_unknown_manifest_is_a_parse_error_naming_the_problem() {
    let dir = saved();
    let mpath = dir.path().join(MANIFEST_FILE);
    fs::write(&mpath, b"\x00\x01 not json {").unwrap();
    let e = load_package(dir.path()).unwrap_err();
    assert!(matches!(e, ModelError::ManifestParse { .. }), "{e}");

    let good = serde_json::to_value(inspect(saved().path()).unwrap()).unwrap();
    let mut extra = good.clone();
    extra["colour"] = serde_json::json!("blue");
    fs::write(&mpath, extra.to_string()).unwrap();
    let e = load_package(dir.path()).unwrap_err().to_string();
    assert!(e.contains("unknown field") && e.contains("colour"), "{e}");

    let mut missing = good;
    missing.as_object_mut().unwrap().remove("threshold");
    fs::write(&mpath, missing.to_string()).unwrap();
    let e = load_package(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("missing field") && e.contains("threshold"),
        "{e}"
    );
}

/// A change applied to a valid manifest.
type Edit = Box<dyn FnOnce(&mut Manifest)>;

#[test]
fn inconsistent_manifest_fields_are_named() {
    let cases: Vec<(&str, Edit)> = vec![
        ("format", Box::new(|m| m.format = 2)),
        ("kind", Box::new(|m| m.kind = "forest".into())),
        (
            "input_mean",
            Box::new(|m| {
                m.input_mean.pop();
            }),
        ),
        ("input_std[3]", Box::new(|m| m.input_std[3] = 0.0)),
        ("layers", Box::new(|m| m.layers[0] = 12)),
        ("layers", Box::new(|m| m.layers = vec![N, N])),
        ("threshold", Box::new(|m| m.threshold = 0.0)),
        ("threshold", Box::new(|m| m.threshold = -1.0)),
        (
            "weights",
            Box::new(|m| m.weights = "../../etc/passwd".into()),
        ),
        (
            "weights_sha256",
            Box::new(|m| m.weights_sha256 = "abc".into()),
        ),
        ("quantization", Box::new(|m| m.quantization = "int4".into())),
        (
            "features[1]",
            Box::new(|m| m.features[1] = m.features[0].clone()),
        ),
        (
            "calibration.quantile",
            Box::new(|m| m.calibration.quantile = 1.5),
        ),
    ];
    for (field, edit) in cases {
        let dir = saved();
        edit_manifest(dir.path(), edit);
        let reason = bad_manifest_reason(dir.path());
        assert!(reason.starts_with(field), "expected {field}: {reason}");
    }
}

#[test]
fn weights_not_matching_layers_are_refused_even_with_valid_checksum() {
    let dir = saved();
    // Claim a wider hidden layer than the weights have; the checksum still matches.
    edit_manifest(dir.path(), |m| m.layers = vec![N, 17, 4, 16, N]);
    match load_package(dir.path()).unwrap_err() {
        ModelError::BadWeights { reason } => assert!(reason.contains("enc0.weight"), "{reason}"),
        e => panic!("expected BadWeights, got {e}"),
    }
    // A weights file that is not safetensors at all, with a matching checksum.
    let dir = saved();
    fs::write(dir.path().join(WEIGHTS_FILE), b"definitely not safetensors").unwrap();
    let sha = sha256_hex(b"definitely not safetensors");
    edit_manifest(dir.path(), |m| m.weights_sha256 = sha);
    let e = load_package(dir.path()).unwrap_err();
    assert!(matches!(e, ModelError::Candle(_)), "{e}");
}

#[test]
fn int8_manifest_over_f32_weights_is_refused() {
    let dir = saved();
    edit_manifest(dir.path(), |m| m.quantization = "int8".into());
    let e = load_package(dir.path()).unwrap_err();
    assert!(matches!(e, ModelError::BadWeights { .. }), "{e}");
}
