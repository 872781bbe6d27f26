//! Sensor-level tests: determinism, profiles and anomaly semantics.

use super::*;
use rand::SeedableRng;

/// A profile with no deterministic structure, so statistics of a span are
/// statistics of the noise alone.
fn flat(base: f64, noise_std: f64, ar: f64) -> SensorProfile {
    SensorProfile {
        base,
        season_amp: 0.0,
        season_period_s: 300.0,
        noise_std,
        ar,
        drift_per_hour: 0.0,
        harmonic_amp: 0.0,
        harmonic_hz: 0.0,
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn std(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / xs.len() as f64).sqrt()
}

/// Runs a sensor at 10 Hz for `n` samples from ts 0; returns (ts, value).
fn run(profile: &SensorProfile, seed: u64, n: i64, anomalies: &[Anomaly]) -> Vec<(i64, f64)> {
    let mut s = SensorSim::new(profile.clone(), seed);
    (0..n)
        .map(|k| (k * 100, s.value_at(k * 100, anomalies)))
        .collect()
}

fn values_in(series: &[(i64, f64)], lo: i64, hi: i64) -> Vec<f64> {
    series
        .iter()
        .filter(|(t, _)| *t >= lo && *t < hi)
        .map(|(_, v)| *v)
        .collect()
}

fn random_profiles(n: usize, seed: u64) -> Vec<SensorProfile> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| SensorSim::random_profile(&mut rng))
        .collect()
}

#[test]
fn sensor_is_deterministic_per_seed() {
    let p = random_profiles(1, 7).remove(0);
    let a = run(&p, 42, 500, &[]);
    let b = run(&p, 42, 500, &[]);
    let c = run(&p, 43, 500, &[]);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn random_profiles_span_orders_of_magnitude() {
    let ps = random_profiles(500, 1);
    let mags: Vec<f64> = ps.iter().map(|p| p.base.abs()).collect();
    assert!(mags.iter().all(|m| (0.1..=1e5).contains(m)));
    assert!(mags.iter().any(|&m| m < 1.0) && mags.iter().any(|&m| m > 1e4));
    assert!(ps.iter().any(|p| p.base < 0.0));
    assert!(ps.iter().any(|p| p.harmonic_amp > 0.0));
    for p in &ps {
        let rel = p.noise_std / (p.base.abs() + 1.0);
        assert!((0.002..=0.03).contains(&rel), "noise {rel}");
        assert!((0.0..=0.9).contains(&p.ar));
        assert!((60.0..=600.0).contains(&p.season_period_s));
    }
}

#[test]
fn level_shift_moves_span_mean_by_sigma_times_noise_scale() {
    let p = flat(1e5, 50.0, 0.6);
    let scale = p.noise_scale();
    let shift = Anomaly {
        kind: AnomalyKind::LevelShift { sigma: 8.0 },
        start_ms: 60_000,
        duration_ms: 30_000,
    };
    let series = run(&p, 5, 1_200, &[shift]);
    let before = mean(&values_in(&series, 30_000, 60_000));
    let during = mean(&values_in(&series, 60_000, 90_000));
    let moved = (during - before) / scale;
    assert!((moved - 8.0).abs() < 1.6, "moved {moved}σ");

    // Against an anomaly-free twin, the effect is exact on random profiles
    // and nothing changes outside the span.
    for (i, p) in random_profiles(20, 2).iter().enumerate() {
        let clean = run(p, i as u64, 1_200, &[]);
        let shifted = run(p, i as u64, 1_200, &[shift]);
        for ((t, c), (_, s)) in clean.iter().zip(&shifted) {
            let expect = if shift.contains(*t) {
                8.0 * p.noise_scale()
            } else {
                0.0
            };
            assert!((s - c - expect).abs() <= 1e-9 * (c.abs() + 1.0));
        }
    }
}

#[test]
fn stuck_repeats_last_pre_anomaly_value() {
    let p = random_profiles(1, 3).remove(0);
    let stuck = Anomaly {
        kind: AnomalyKind::Stuck,
        start_ms: 20_000,
        duration_ms: 10_000,
    };
    let clean = run(&p, 1, 600, &[]);
    let series = run(&p, 1, 600, &[stuck]);
    let span = values_in(&series, 20_000, 30_000);
    assert_eq!(span.len(), 100);
    assert!(span.iter().all(|v| *v == span[0]));
    let spread = span.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v))
        - span.iter().fold(f64::INFINITY, |m, v| m.min(*v));
    assert_eq!(spread, 0.0, "zero variance over the span");
    let last_before = values_in(&series, 0, 20_000).pop().unwrap();
    assert_eq!(span[0], last_before);
    // Outside the span the series is the clean one.
    assert_eq!(
        values_in(&series, 30_000, 60_000),
        values_in(&clean, 30_000, 60_000)
    );
}

#[test]
fn noise_burst_scales_noise_std_by_factor() {
    let p = flat(20.0, 0.1, 0.5);
    let burst = Anomaly {
        kind: AnomalyKind::NoiseBurst { factor: 5.0 },
        start_ms: 60_000,
        duration_ms: 60_000,
    };
    let series = run(&p, 8, 1_800, &[burst]);
    let before = std(&values_in(&series, 0, 60_000));
    let during = std(&values_in(&series, 60_000, 120_000));
    let ratio = during / before;
    assert!((ratio - 5.0).abs() < 1.0, "ratio {ratio}");
    let after = std(&values_in(&series, 120_000, 180_000));
    assert!((after / before - 1.0).abs() < 0.3);
}

#[test]
fn spikes_hit_first_sample_and_about_thirty_percent_after() {
    let p = flat(-300.0, 2.0, 0.3);
    let scale = p.noise_scale();
    let spike = Anomaly {
        kind: AnomalyKind::Spike {
            magnitude_sigma: 10.0,
        },
        start_ms: 10_050,
        duration_ms: 100_000,
    };
    let clean = run(&p, 4, 1_200, &[]);
    let spiky = run(&p, 4, 1_200, &[spike]);
    let offsets: Vec<f64> = clean
        .iter()
        .zip(&spiky)
        .filter(|((t, _), _)| spike.contains(*t))
        .map(|((_, c), (_, s))| (s - c) / scale)
        .collect();
    assert!((offsets[0].abs() - 10.0).abs() < 1e-6);
    assert!(offsets
        .iter()
        .all(|o| o.abs() < 1e-6 || (o.abs() - 10.0).abs() < 1e-6));
    let hit = offsets.iter().filter(|o| o.abs() > 1.0).count() as f64 / offsets.len() as f64;
    assert!((0.2..0.4).contains(&hit), "hit rate {hit}");
    assert!(offsets.iter().any(|o| *o > 1.0) && offsets.iter().any(|o| *o < -1.0));

    // A zero-length spike still hits exactly one sample.
    let single = Anomaly {
        duration_ms: 0,
        ..spike
    };
    let one = run(&p, 4, 1_200, &[single]);
    let diffs = clean.iter().zip(&one).filter(|(c, s)| c.1 != s.1).count();
    assert_eq!(diffs, 1);
}

#[test]
fn hostile_inputs_are_sanitised() {
    let nan = SensorProfile {
        base: f64::NAN,
        season_amp: f64::INFINITY,
        season_period_s: 0.0,
        noise_std: -1.0,
        ar: 3.0,
        drift_per_hour: f64::NEG_INFINITY,
        harmonic_amp: 1.0,
        harmonic_hz: f64::NAN,
    };
    let weird = [Anomaly {
        kind: AnomalyKind::NoiseBurst { factor: f64::NAN },
        start_ms: i64::MAX - 5,
        duration_ms: i64::MAX,
    }];
    let mut s = SensorSim::new(nan, 0);
    assert!(s.profile().noise_scale().is_finite());
    for ts in [i64::MIN, 0, i64::MAX - 3, i64::MAX] {
        assert!(s.value_at(ts, &weird).is_finite());
    }
}
