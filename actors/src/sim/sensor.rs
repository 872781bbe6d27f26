//! One simulated sensor: normal signal generation plus anomaly overlay.
//!
//! Design constraints: the noise generator is advanced exactly once per
//! sample whatever anomalies are active, so anomalies never shift the normal
//! stream; anomaly randomness comes from a stateless hash instead.

use super::rng::{mix, splitmix64, unit_from_bits, SimRng};
use super::{finite_or, Anomaly, AnomalyKind, SensorProfile, MAX_AR};
use std::f64::consts::TAU;

/// Probability that a non-first sample inside a `Spike` span is an outlier.
const SPIKE_PROB: f64 = 0.3;

/// A single deterministic sensor; feed it increasing timestamps.
#[derive(Clone, Debug)]
pub struct SensorSim {
    profile: SensorProfile,
    seed: u64,
    rng: SimRng,
    /// Current AR(1) noise state (stationary from the first sample on).
    ar_state: f64,
    season_phase: f64,
    harmonic_phase: f64,
    /// Timestamp of the first sample: origin for drift and phases.
    origin_ms: Option<i64>,
    last_ts: Option<i64>,
    last_out: Option<f64>,
    /// `(start_ms of the Stuck anomaly, frozen value)` while stuck.
    stuck: Option<(i64, f64)>,
}

impl SensorSim {
    /// Creates a sensor. Non-finite profile fields become 0 (the period
    /// becomes 1 s if not positive), `ar` is clamped to ±0.99 and `noise_std`
    /// made non-negative; [`SensorSim::profile`] returns the sanitised profile.
    pub fn new(profile: SensorProfile, seed: u64) -> Self {
        let profile = sanitize(profile);
        let mut rng = SimRng::new(mix(seed, 0x5E45_0A11, 1));
        let season_phase = rng.range(0.0, TAU);
        let harmonic_phase = rng.range(0.0, TAU);
        // Start the AR process in its stationary distribution: no warm-up.
        let ar_state = profile.noise_scale() * rng.normal();
        Self {
            profile,
            seed,
            rng,
            ar_state,
            season_phase,
            harmonic_phase,
            origin_ms: None,
            last_ts: None,
            last_out: None,
            stuck: None,
        }
    }

    /// Draws a varied, realistic profile: |base| log-uniform over 1e-1..1e5
    /// (negative 20% of the time), noise 0.2%..3% of |base|+1 (log-uniform),
    /// AR 0..0.9, seasonal amplitude up to 5% of |base|+1 with period
    /// 60..600 s, drift up to ±1% of |base|+1 per hour, and a vibration
    /// harmonic (0.1..2 Hz, 0.5..3 × noise) on about 30% of sensors.
    pub fn random_profile(rng: &mut impl rand::Rng) -> SensorProfile {
        let mut u = || rng.random::<f64>();
        let log_uniform = |u: f64, lo: f64, hi: f64| (lo.ln() + u * (hi.ln() - lo.ln())).exp();
        let magnitude = log_uniform(u(), 1e-1, 1e5);
        let base = if u() < 0.2 { -magnitude } else { magnitude };
        let scale = base.abs() + 1.0;
        let noise_std = scale * log_uniform(u(), 0.002, 0.03);
        let ar = 0.9 * u();
        let season_amp = scale * 0.05 * u();
        let season_period_s = log_uniform(u(), 60.0, 600.0);
        let drift_per_hour = scale * 0.01 * (2.0 * u() - 1.0);
        let has_harmonic = u() < 0.3;
        let harmonic_amp_u = u();
        let harmonic_hz_u = u();
        let (harmonic_amp, harmonic_hz) = if has_harmonic {
            (
                noise_std * (0.5 + 2.5 * harmonic_amp_u),
                0.1 + 1.9 * harmonic_hz_u,
            )
        } else {
            (0.0, 0.0)
        };
        SensorProfile {
            base,
            season_amp,
            season_period_s,
            noise_std,
            ar,
            drift_per_hour,
            harmonic_amp,
            harmonic_hz,
        }
    }

    /// The (sanitised) profile this sensor follows.
    pub fn profile(&self) -> &SensorProfile {
        &self.profile
    }

    /// Produces the sample at `ts_ms` with `anomalies` overlaid. Call with
    /// increasing timestamps: each call advances the noise process by one
    /// step, so the series is deterministic for a seed and a timestamp
    /// sequence. Anomalies outside their span have no effect; overlapping
    /// anomalies add up (offsets add, noise factors multiply) except `Stuck`,
    /// which overrides everything with the frozen value.
    pub fn value_at(&mut self, ts_ms: i64, anomalies: &[Anomaly]) -> f64 {
        let p = &self.profile;
        let origin = *self.origin_ms.get_or_insert(ts_ms);
        let t_s = ts_ms.saturating_sub(origin) as f64 / 1000.0;

        self.ar_state = p.ar * self.ar_state + p.noise_std * self.rng.normal();

        let mut clean = p.base + p.drift_per_hour * (t_s / 3600.0);
        if p.season_amp != 0.0 {
            clean += p.season_amp * (TAU * t_s / p.season_period_s + self.season_phase).sin();
        }
        if p.harmonic_amp != 0.0 {
            clean += p.harmonic_amp * (TAU * p.harmonic_hz * t_s + self.harmonic_phase).sin();
        }

        let scale = p.noise_scale();
        let mut offset = 0.0;
        let mut noise_factor = 1.0;
        let mut stuck_start: Option<i64> = None;
        let first_after = |start: i64| self.last_ts.is_none_or(|prev| prev < start);
        for a in anomalies {
            if ts_ms < a.start_ms {
                continue;
            }
            let in_span = ts_ms < a.end_ms();
            match a.kind {
                AnomalyKind::Spike { magnitude_sigma } => {
                    let first = first_after(a.start_ms);
                    if !(in_span || first) {
                        continue;
                    }
                    let h = splitmix64(mix(self.seed, ts_ms as u64, a.start_ms as u64));
                    if first || unit_from_bits(h) < SPIKE_PROB {
                        let sign = if h & 1 == 0 { 1.0 } else { -1.0 };
                        offset += sign * finite_or(magnitude_sigma, 0.0) * scale;
                    }
                }
                _ if !in_span => {}
                AnomalyKind::LevelShift { sigma } => offset += finite_or(sigma, 0.0) * scale,
                AnomalyKind::NoiseBurst { factor } => noise_factor *= finite_or(factor, 1.0),
                AnomalyKind::Stuck => {
                    stuck_start = Some(stuck_start.map_or(a.start_ms, |s| s.min(a.start_ms)));
                }
            }
        }

        let value = clean + noise_factor * self.ar_state + offset;
        let out = match stuck_start {
            Some(start) => match self.stuck {
                Some((s, frozen)) if s == start => frozen,
                _ => {
                    let frozen = self.last_out.unwrap_or(value);
                    self.stuck = Some((start, frozen));
                    frozen
                }
            },
            None => {
                self.stuck = None;
                value
            }
        };
        self.last_ts = Some(ts_ms);
        self.last_out = Some(out);
        out
    }

    /// Timestamp of the last sample produced, if any (used for pruning).
    pub(crate) fn last_ts(&self) -> Option<i64> {
        self.last_ts
    }
}

/// Replaces non-finite fields and clamps `ar` so generation never yields NaN.
fn sanitize(p: SensorProfile) -> SensorProfile {
    let period = finite_or(p.season_period_s, 1.0);
    SensorProfile {
        base: finite_or(p.base, 0.0),
        season_amp: finite_or(p.season_amp, 0.0),
        season_period_s: if period > 0.0 { period } else { 1.0 },
        noise_std: finite_or(p.noise_std, 0.0).abs(),
        ar: finite_or(p.ar, 0.0).clamp(-MAX_AR, MAX_AR),
        drift_per_hour: finite_or(p.drift_per_hour, 0.0),
        harmonic_amp: finite_or(p.harmonic_amp, 0.0),
        harmonic_hz: finite_or(p.harmonic_hz, 0.0),
    }
}
