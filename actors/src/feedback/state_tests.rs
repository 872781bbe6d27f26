use super::*;

fn shared() -> FeedbackShared {
    FeedbackShared::new(&crate::config::GatewayConfig::default())
}

fn label(sensor: &Arc<str>, from: i64, to: i64, anomaly: bool) -> LabelFb {
    LabelFb {
        sensor: sensor.clone(),
        from,
        to,
        anomaly,
    }
}

#[test]
fn normal_label_raises_above_the_highest_score_bounded() {
    let f = shared();
    let s: Arc<str> = "s1".into();
    for (i, score) in [0.5, 1.4, 1.8, 0.7].into_iter().enumerate() {
        assert_eq!(f.decide(&s, 1000 + i as i64, score, 1.0), 1.0);
    }
    let c = f.calibrate(&label(&s, 1000, 1003, false)).unwrap();
    assert_eq!(c.from, 1.0);
    assert!(c.to > 1.8 && c.to < 1.9, "{c:?}");
    assert_eq!(f.threshold_for("s1", 1.0), c.to);
    assert_eq!(f.threshold_for("s2", 1.0), 1.0, "other sensors untouched");
    // A span already below the threshold changes nothing.
    assert_eq!(f.calibrate(&label(&s, 1000, 1000, false)), None);
    // Bounded: at most RAISE_CAP × the model's threshold.
    f.decide(&s, 2000, 50.0, 1.0);
    let c = f.calibrate(&label(&s, 2000, 2000, false)).unwrap();
    assert_eq!(c.to, RAISE_CAP);
}

#[test]
fn anomaly_label_lowers_below_the_lowest_score_bounded() {
    let f = shared();
    let s: Arc<str> = "s1".into();
    for (i, score) in [0.8, 0.7, 0.9].into_iter().enumerate() {
        f.decide(&s, 10 + i as i64, score, 1.0);
    }
    let c = f.calibrate(&label(&s, 10, 12, true)).unwrap();
    assert!(c.to < 0.7 && c.to > 0.65, "{c:?}");
    f.decide(&s, 20, 0.01, 1.0);
    let c = f.calibrate(&label(&s, 20, 20, true)).unwrap();
    assert_eq!(c.to, LOWER_FLOOR, "floored");
    // Spans without recorded decisions, or unknown sensors: nothing.
    assert_eq!(f.calibrate(&label(&s, 500, 600, true)), None);
    assert_eq!(f.calibrate(&label(&"zz".into(), 10, 12, true)), None);
    assert!(f.status()["calibrations"] == 2);
}

#[test]
fn history_is_a_fixed_ring() {
    let f = shared();
    let s: Arc<str> = "s1".into();
    for i in 0..(HISTORY as i64 * 3) {
        f.decide(&s, i, 2.0, 1.0);
    }
    // Only the last HISTORY decisions are remembered.
    assert_eq!(f.calibrate(&label(&s, 0, HISTORY as i64 - 1, false)), None);
    let c = f
        .calibrate(&label(&s, 0, HISTORY as i64 * 3, false))
        .unwrap();
    assert_eq!(c.decisions, HISTORY);
}

#[test]
fn star_override_replaces_per_sensor_ones() {
    let f = shared();
    let s: Arc<str> = "s1".into();
    f.set_threshold(Some(&s), Some(2.0));
    assert_eq!(f.threshold_for("s1", 1.0), 2.0);
    f.set_threshold(None, Some(9.0));
    assert_eq!(f.threshold_for("s1", 1.0), 9.0);
    assert_eq!(f.threshold_for("s2", 1.0), 9.0);
    assert_eq!(f.overrides(), vec![("*".to_string(), 9.0)]);
}
