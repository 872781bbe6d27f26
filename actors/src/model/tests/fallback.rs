use std::sync::Arc;

use super::super::fallback::FallbackRule;
use super::super::{load_package, ModelError, Scorer};
use super::*;

fn row(pairs: &[(&str, f32)]) -> Vec<f32> {
    let names = names();
    let mut r = vec![0.0; names.len()];
    for (n, v) in pairs {
        r[names.iter().position(|x| x == n).unwrap()] = *v;
    }
    r
}

#[test]
fn fallback_flags_extremes_and_passes_quiet_rows() {
    let rule = FallbackRule::default();
    assert_eq!(rule.threshold(), 6.0);
    let x = vec![
        row(&[]),
        row(&[("mean_z", 10.0)]),
        row(&[("min_z", -7.0)]),
        row(&[("std_log_ratio", 3.5)]),
        row(&[("band_2_log_ratio", -4.5)]),
        row(&[("mean_z", 5.0), ("p05_z", 50.0)]), // p05_z is not used by the rule
        row(&[("p95_z", f32::NAN)]),
    ];
    let s = rule.score_batch(&names(), &x);
    assert_eq!(s, vec![0.0, 10.0, 7.0, 7.0, 6.75, 5.0, f32::INFINITY]);
    let flagged: Vec<bool> = s.iter().map(|&v| v > rule.threshold()).collect();
    assert_eq!(flagged, vec![false, true, true, true, true, false, true]);
    // Unknown names and short rows are ignored rather than failing.
    let odd = vec!["foo".to_string(), "mean_z".to_string()];
    assert_eq!(
        rule.score_batch(&odd, &[vec![100.0, 2.0], vec![100.0]]),
        vec![2.0, 0.0]
    );
}

#[test]
fn fallback_scorer_reports_its_identity_and_checks_rows() {
    let s = Scorer::Fallback(FallbackRule::default(), names());
    assert_eq!((s.name(), s.version()), ("fallback", "rule-1"));
    assert!(s.is_fallback());
    assert_eq!(s.feature_names(), names().as_slice());
    let scores = s
        .score_batch(&[row(&[("mean_z", 10.0)]), row(&[])])
        .unwrap();
    assert!(s.is_anomalous(scores[0]) && !s.is_anomalous(scores[1]));
    let e = s.score_batch(&[vec![0.0; 3]]).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::FeatureMismatch {
                expected: 11,
                got: 3
            }
        ),
        "{e}"
    );
}

#[test]
fn load_or_fallback_uses_the_model_when_valid_and_falls_back_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    shared_model().save(dir.path()).unwrap();
    let (s, err) = Scorer::load_or_fallback(dir.path(), &names(), FallbackRule::default());
    assert!(err.is_none() && !s.is_fallback());
    assert_eq!(s.name(), "edgegw-autoencoder");
    assert_eq!(s.threshold(), shared_model().manifest.threshold);
    let normal = normal_data(100, 5);
    assert_eq!(
        s.score_batch(&normal).unwrap(),
        shared_model().model.score_batch(&normal).unwrap()
    );

    let mut renamed = names();
    renamed.swap(0, 1);
    let (s, err) = Scorer::load_or_fallback(dir.path(), &renamed, FallbackRule::default());
    assert!(s.is_fallback());
    assert!(matches!(err, Some(ModelError::FeatureNamesMismatch { .. })));

    let empty = tempfile::tempdir().unwrap();
    let (s, err) = Scorer::load_or_fallback(empty.path(), &names(), FallbackRule::default());
    assert!(s.is_fallback() && matches!(err, Some(ModelError::Io { .. })));
    assert_eq!(s.version(), "rule-1");

    // The model variant can be shared across threads.
    let m = Arc::new(load_package(dir.path()).unwrap());
    let scorer = Scorer::Model(m);
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let s = scorer.clone();
            std::thread::spawn(move || s.score_batch(&normal_data(50, i)).unwrap().len())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 50);
    }
}
