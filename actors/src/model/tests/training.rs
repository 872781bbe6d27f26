use std::time::Instant;

use super::super::train::{train, TrainOptions};
use super::super::{inspect, load_package, Autoencoder, LoadedModel, ModelError, Scorer};
use super::*;

#[test]
fn model_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Autoencoder>();
    assert_send_sync::<LoadedModel>();
    assert_send_sync::<Scorer>();
    assert_send_sync::<ModelError>();
}

#[test]
fn trained_model_separates_normal_from_anomalous_after_save_and_load() {
    let trained = shared_model();
    let dir = tempfile::tempdir().unwrap();
    trained.save(dir.path()).unwrap();
    let loaded = load_package(dir.path()).unwrap();
    let m = &loaded.manifest;
    assert_eq!(m.layers, vec![N, 16, 4, 16, N]);
    assert_eq!(m.features, names());
    assert_eq!(m.train.train_samples + m.train.val_samples, 20_000);
    assert_eq!(m.calibration.samples, 4_000);
    assert!(m.calibration.score_p50 <= m.calibration.score_p99);
    assert!(m.calibration.score_p99 <= m.calibration.score_p999);
    assert!(m.calibration.score_p999 <= m.calibration.score_max);
    assert!(m.train.final_loss.is_finite() && m.train.final_loss < 0.1);

    let normal = normal_data(5_000, 99);
    let scores = loaded.model.score_batch(&normal).unwrap();
    // Saving and loading must not change a single score.
    assert_eq!(scores, trained.model.score_batch(&normal).unwrap());
    let fp = frac_above(&scores, m.threshold);
    println!(
        "threshold {:.5}, p50 {:.5}, normal above threshold {:.3}%",
        m.threshold,
        m.calibration.score_p50,
        fp * 100.0
    );
    assert!(fp <= 0.01, "false positive rate {fp}");

    let shifted = loaded.model.score_batch(&shifted_data(2_200, 5)).unwrap();
    let tp = frac_above(&shifted, m.threshold);
    println!(
        "shifted (+8 on one coordinate) above threshold {:.2}%",
        tp * 100.0
    );
    assert!(tp >= 0.95, "detection rate {tp}");

    let mut spike = vec![0.0f32; N];
    spike[0] = 10.0;
    let s = loaded.model.score_batch(&[spike]).unwrap();
    assert!(
        s[0] > m.threshold,
        "spike score {} <= {}",
        s[0],
        m.threshold
    );
}

#[test]
fn scoring_rejects_wrong_row_length_and_flags_non_finite_rows() {
    let model = &shared_model().model;
    let err = model
        .score_batch(&[vec![0.0; N], vec![0.0; N - 1]])
        .unwrap_err();
    assert!(
        matches!(err, ModelError::FeatureMismatch { expected: N, got } if got == N - 1),
        "{err}"
    );
    let mut bad = normal_data(3, 3);
    bad[1][4] = f32::NAN;
    let s = model.score_batch(&bad).unwrap();
    assert!(s[0].is_finite() && s[2].is_finite());
    assert_eq!(s[1], f32::INFINITY);
    assert!(model.score_batch(&[]).unwrap().is_empty());
}

#[test]
fn training_is_deterministic_given_the_seed() {
    let data = normal_data(2_000, 11);
    let opts = TrainOptions {
        epochs: 5,
        seed: 3,
        ..TrainOptions::default()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train(&data, &names(), &opts)
        .unwrap()
        .save(a.path())
        .unwrap();
    train(&data, &names(), &opts)
        .unwrap()
        .save(b.path())
        .unwrap();
    let (ma, mb) = (inspect(a.path()).unwrap(), inspect(b.path()).unwrap());
    assert_eq!(ma.weights_sha256, mb.weights_sha256);
    assert_eq!(ma.threshold, mb.threshold);
    let other = TrainOptions { seed: 4, ..opts };
    let c = tempfile::tempdir().unwrap();
    train(&data, &names(), &other)
        .unwrap()
        .save(c.path())
        .unwrap();
    assert_ne!(inspect(c.path()).unwrap().weights_sha256, ma.weights_sha256);
}

#[test]
fn training_refuses_bad_options_and_data() {
    let data = normal_data(100, 1);
    let bad_opts = [
        TrainOptions {
            epochs: 0,
            ..TrainOptions::default()
        },
        TrainOptions {
            val_fraction: 1.0,
            ..TrainOptions::default()
        },
        TrainOptions {
            learning_rate: f64::NAN,
            ..TrainOptions::default()
        },
        TrainOptions {
            bottleneck: 0,
            ..TrainOptions::default()
        },
    ];
    for o in &bad_opts {
        let e = train(&data, &names(), o).unwrap_err();
        assert!(matches!(e, ModelError::BadTrainOptions { .. }), "{e}");
    }
    let o = TrainOptions::default();
    let e = train(&data[..5], &names(), &o).unwrap_err();
    assert!(matches!(e, ModelError::BadTrainingData { .. }), "{e}");
    let mut nan = data.clone();
    nan[17][2] = f32::INFINITY;
    let e = train(&nan, &names(), &o).unwrap_err();
    assert!(e.to_string().contains("row 17"), "{e}");
    let e = train(&data, &names()[1..], &o).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::FeatureMismatch {
                expected: 10,
                got: 11
            }
        ),
        "{e}"
    );
    let mut dup = names();
    dup[1] = dup[0].clone();
    let e = train(&data, &dup, &o).unwrap_err();
    assert!(matches!(e, ModelError::BadTrainingData { .. }), "{e}");
}

/// Reports the cost of a full-size training run; it asserts quality, never time.
/// Run with `cargo test --release -- --ignored --nocapture full_size`.
#[test]
#[ignore = "full-size run (50k x 60 epochs); prints its duration"]
fn full_size_training_run() {
    let data = normal_data(50_000, 21);
    let start = Instant::now();
    let trained = train(&data, &names(), &TrainOptions::default()).unwrap();
    let elapsed = start.elapsed();
    let m = &trained.manifest;
    println!(
        "50k x {} epochs: {:.2?}, final loss {:.5}, threshold {:.5}",
        m.train.epochs, elapsed, m.train.final_loss, m.threshold
    );
    let fp = frac_above(
        &trained.model.score_batch(&normal_data(10_000, 22)).unwrap(),
        m.threshold,
    );
    let tp = frac_above(
        &trained.model.score_batch(&shifted_data(2_200, 23)).unwrap(),
        m.threshold,
    );
    println!(
        "normal above threshold {:.3}%, shifted above {:.2}%",
        fp * 100.0,
        tp * 100.0
    );
    assert!(fp <= 0.01 && tp >= 0.95);
}
