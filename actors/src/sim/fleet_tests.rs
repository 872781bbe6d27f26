//! Fleet-level tests: shapes, sampling clocks, anomaly schedule, injection.

use super::*;

#[test]
fn fleet_and_normal_series_are_deterministic() {
    let cfg = FleetConfig {
        sensors: 20,
        rate_hz: 10.0,
        seed: 9,
        anomaly_every_s: Some(5.0),
        jitter_frac: 0.1,
    };
    let collect = |cfg: &FleetConfig| {
        let mut f = Fleet::new(cfg.clone(), 1_000);
        let mut out = Vec::new();
        for now in (1_000..=61_000).step_by(250) {
            f.tick(now, &mut out);
        }
        (out, f.injected().to_vec())
    };
    assert_eq!(collect(&cfg), collect(&cfg));
    assert_eq!(
        normal_series(5, 300, 10.0, 3),
        normal_series(5, 300, 10.0, 3)
    );
    assert_ne!(
        normal_series(5, 300, 10.0, 3),
        normal_series(5, 300, 10.0, 4)
    );
}

#[test]
fn normal_series_shape_finite_and_matches_fleet() {
    let series = normal_series(12, 250, 10.0, 11);
    assert_eq!(series.len(), 12);
    for s in &series {
        assert_eq!(s.len(), 250);
        assert!(s.iter().all(|(_, v)| v.is_finite()));
        assert!(s.windows(2).all(|w| w[0].0 < w[1].0));
    }
    // Same as a clean fleet with 10% jitter started at 0.
    let cfg = FleetConfig {
        sensors: 12,
        rate_hz: 10.0,
        seed: 11,
        anomaly_every_s: None,
        jitter_frac: 0.1,
    };
    let mut fleet = Fleet::new(cfg, 0);
    let mut out = Vec::new();
    fleet.tick(30_000, &mut out);
    for (i, s) in series.iter().enumerate() {
        let from_fleet: Vec<(i64, f64)> = out
            .iter()
            .filter(|(idx, _, _)| *idx == i)
            .map(|&(_, t, v)| (t, v))
            .take(250)
            .collect();
        assert_eq!(&from_fleet, s);
    }
    assert!(normal_series(0, 10, 10.0, 1).is_empty());
    assert!(normal_series(3, 0, 10.0, 1).iter().all(Vec::is_empty));
}

#[test]
fn jitter_gives_irregular_strictly_increasing_timestamps() {
    let cfg = FleetConfig {
        sensors: 8,
        rate_hz: 10.0,
        seed: 2,
        anomaly_every_s: None,
        jitter_frac: 0.1,
    };
    let mut fleet = Fleet::new(cfg, 1_700_000_000_000);
    let mut out = Vec::new();
    for k in 1..=100 {
        fleet.tick(1_700_000_000_000 + k * 100, &mut out);
    }
    for i in 0..8 {
        let ts: Vec<i64> = out.iter().filter(|s| s.0 == i).map(|s| s.1).collect();
        assert!((98..=101).contains(&ts.len()), "{} samples", ts.len());
        let gaps: Vec<i64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| (89..=111).contains(g)), "{gaps:?}");
        assert!(gaps.iter().any(|g| *g != gaps[0]), "regular sampling");
    }
    // Without jitter the grid is regular.
    let mut regular = Fleet::new(
        FleetConfig {
            jitter_frac: 0.0,
            ..FleetConfig::default()
        },
        0,
    );
    let mut out = Vec::new();
    regular.tick(10_000, &mut out);
    let ts: Vec<i64> = out.iter().filter(|s| s.0 == 0).map(|s| s.1).collect();
    assert!(ts.windows(2).all(|w| w[1] - w[0] == 100));
}

#[test]
fn tick_granularity_does_not_change_output() {
    let cfg = FleetConfig {
        sensors: 5,
        rate_hz: 20.0,
        seed: 77,
        anomaly_every_s: Some(3.0),
        jitter_frac: 0.2,
    };
    let mut coarse = Fleet::new(cfg.clone(), 0);
    let mut fine = Fleet::new(cfg, 0);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    coarse.tick(60_000, &mut a);
    for now in (0..=60_000).step_by(37) {
        fine.tick(now, &mut b);
    }
    fine.tick(60_000, &mut b);
    a.sort_by_key(|s| (s.0, s.1));
    b.sort_by_key(|s| (s.0, s.1));
    assert_eq!(a, b);
    assert_eq!(coarse.injected(), fine.injected());
}

fn anomalies_in_100s(seed: u64) -> usize {
    let cfg = FleetConfig {
        sensors: 50,
        rate_hz: 10.0,
        seed,
        anomaly_every_s: Some(10.0),
        jitter_frac: 0.1,
    };
    let mut fleet = Fleet::new(cfg, 0);
    let mut out = Vec::new();
    for now in (0..=100_000).step_by(100) {
        fleet.tick(now, &mut out);
    }
    fleet.injected().len()
}

#[test]
fn anomaly_schedule_rate_matches_config() {
    let counts: Vec<usize> = (0..50).map(anomalies_in_100s).collect();
    assert!(counts.iter().all(|n| (5..=20).contains(n)), "{counts:?}");
    let avg = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
    assert!((9.0..=11.0).contains(&avg), "average {avg}");
}

#[test]
fn scheduled_anomalies_have_specified_shape() {
    let cfg = FleetConfig {
        sensors: 10,
        rate_hz: 10.0,
        seed: 5,
        anomaly_every_s: Some(2.0),
        jitter_frac: 0.1,
    };
    let mut fleet = Fleet::new(cfg, 0);
    let mut out = Vec::new();
    fleet.tick(2_000_000, &mut out);
    let inj = fleet.injected();
    assert!(inj.len() > 500);
    let mut kinds = [0usize; 4];
    for (sensor, a) in inj {
        assert!(*sensor < 10);
        match a.kind {
            AnomalyKind::Spike { magnitude_sigma: m } => {
                kinds[0] += 1;
                assert!((6.0..12.0).contains(&m) && (100..=500).contains(&a.duration_ms));
            }
            AnomalyKind::LevelShift { sigma } => {
                kinds[1] += 1;
                assert!((6.0..12.0).contains(&sigma.abs()));
            }
            AnomalyKind::Stuck => kinds[2] += 1,
            AnomalyKind::NoiseBurst { factor } => {
                kinds[3] += 1;
                assert!((6.0..12.0).contains(&factor));
            }
        }
        if !matches!(a.kind, AnomalyKind::Spike { .. }) {
            assert!((5_000..=30_000).contains(&a.duration_ms));
        }
    }
    assert!(kinds.iter().all(|&k| k > inj.len() / 8), "{kinds:?}");
    assert!(out.iter().all(|s| s.2.is_finite()));
}

#[test]
fn explicit_injection_affects_only_its_sensor_and_span() {
    let cfg = FleetConfig {
        sensors: 30,
        rate_hz: 10.0,
        seed: 123,
        anomaly_every_s: None,
        jitter_frac: 0.1,
    };
    let mut clean = Fleet::new(cfg.clone(), 0);
    let mut faulty = Fleet::new(cfg, 0);
    let shift = Anomaly {
        kind: AnomalyKind::LevelShift { sigma: 8.0 },
        start_ms: 30_000,
        duration_ms: 20_000,
    };
    faulty.inject(7, shift);
    faulty.inject(999, shift); // out of range: ignored
    assert_eq!(faulty.injected(), &[(7, shift)]);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for now in (0..=60_000).step_by(500) {
        clean.tick(now, &mut a);
        faulty.tick(now, &mut b);
    }
    assert_eq!(a.len(), b.len());
    let scale = faulty.profile(7).unwrap().noise_scale();
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.0, x.1), (y.0, y.1));
        if x.0 == 7 && shift.contains(x.1) {
            assert!((y.2 - x.2 - 8.0 * scale).abs() <= 1e-9 * (x.2.abs() + 1.0));
        } else {
            assert_eq!(x.2, y.2);
        }
    }
}

#[test]
fn ids_are_zero_padded_and_lookups_never_panic() {
    let small = Fleet::new(
        FleetConfig {
            sensors: 3,
            ..FleetConfig::default()
        },
        0,
    );
    assert_eq!(small.ids().collect::<Vec<_>>(), ["s0001", "s0002", "s0003"]);
    assert_eq!(small.id(2), "s0003");
    assert_eq!(small.id(3), "");
    assert!(small.profile(3).is_none());
    let big = Fleet::new(
        FleetConfig {
            sensors: 12_345,
            ..FleetConfig::default()
        },
        0,
    );
    assert_eq!(big.id(0), "s00001");
    assert_eq!(big.id(12_344), "s12345");
    assert_eq!(big.len(), 12_345);
}

#[test]
fn hostile_fleet_config_is_sanitised() {
    for rate in [0.0, -5.0, f64::NAN, f64::INFINITY, 1e9] {
        let cfg = FleetConfig {
            sensors: 2,
            rate_hz: rate,
            seed: 0,
            anomaly_every_s: Some(f64::NAN),
            jitter_frac: f64::NAN,
        };
        let mut f = Fleet::new(cfg, i64::MAX - 10_000);
        let mut out = Vec::new();
        f.tick(i64::MAX, &mut out);
        assert!(out.windows(2).all(|w| w[0].0 != w[1].0 || w[0].1 < w[1].1));
        assert!(f.injected().is_empty());
    }
}
