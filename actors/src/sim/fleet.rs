//! A fleet of simulated sensors with jittered sampling clocks and a seeded
//! random anomaly schedule, plus the normal-only training-series helper.
//!
//! Design constraints: every random stream (profile, noise, clock jitter,
//! anomaly schedule) has its own seed derived from the fleet seed, so e.g.
//! injecting an anomaly or changing the schedule never changes any sensor's
//! timestamps or clean values.

use super::rng::{mix, SimRng};
use super::{finite_or, Anomaly, AnomalyKind, SensorProfile, SensorSim};

/// Highest supported sampling rate: timestamps are whole, strictly
/// increasing milliseconds.
const MAX_RATE_HZ: f64 = 1000.0;
/// Lowest supported sampling rate (one sample every ~11.6 days).
const MIN_RATE_HZ: f64 = 1e-6;
/// Largest jitter fraction; keeps nominal sample order intact.
const MAX_JITTER_FRAC: f64 = 0.9;
/// Jitter used by [`normal_series`].
const TRAIN_JITTER_FRAC: f64 = 0.1;
/// Stream discriminators for [`mix`].
const STREAM_PROFILE: u64 = 1;
const STREAM_NOISE: u64 = 2;
const STREAM_CLOCK: u64 = 3;
const STREAM_SCHEDULE: u64 = 4;

/// Configuration of a simulated fleet.
#[derive(Clone, Debug, PartialEq)]
pub struct FleetConfig {
    /// Number of sensors.
    pub sensors: usize,
    /// Per-sensor sampling rate in Hz (clamped to 1e-6..=1000; non-finite → 1).
    pub rate_hz: f64,
    /// Master seed: everything (profiles, noise, jitter, schedule) derives from it.
    pub seed: u64,
    /// Mean interval in seconds between randomly injected anomalies across the
    /// whole fleet; `None` (or non-positive / non-finite) = no anomalies. Gaps
    /// are uniform in 0.5..1.5 × the mean (less bursty than a Poisson process,
    /// so short demos and tests reliably see about the expected count).
    pub anomaly_every_s: Option<f64>,
    /// Sampling-time jitter as a fraction of the period (e.g. 0.1), for
    /// irregular sampling; clamped to 0..=0.9.
    pub jitter_frac: f64,
}

impl Default for FleetConfig {
    /// Ten clean sensors at 10 Hz with 10% jitter.
    fn default() -> Self {
        Self {
            sensors: 10,
            rate_hz: 10.0,
            seed: 0,
            anomaly_every_s: None,
            jitter_frac: 0.1,
        }
    }
}

/// Per-sensor sampling schedule: nominal grid `start + (k + phase) · period`
/// plus uniform jitter of ±jitter/2 periods, forced strictly increasing.
#[derive(Clone, Debug)]
struct Clock {
    start_ms: i64,
    period_ms: f64,
    phase: f64,
    jitter_frac: f64,
    rng: SimRng,
    k: u64,
    /// Timestamp of the next sample; `None` once time has saturated.
    next_ms: Option<i64>,
}

impl Clock {
    fn new(start_ms: i64, period_ms: f64, jitter_frac: f64, seed: u64) -> Self {
        let mut rng = SimRng::new(seed);
        // Stagger sensors across one period so a fleet does not burst at once.
        let phase = rng.unit();
        let mut clock = Self {
            start_ms,
            period_ms,
            phase,
            jitter_frac,
            rng,
            k: 0,
            next_ms: None,
        };
        clock.next_ms = Some(clock.candidate(start_ms.saturating_sub(1)));
        clock
    }

    fn candidate(&mut self, prev: i64) -> i64 {
        let jitter = (self.rng.unit() - 0.5) * self.jitter_frac;
        let offset = ((self.k as f64 + self.phase + jitter) * self.period_ms).round();
        // `as` saturates for huge offsets; the max keeps order strict.
        let ts = self.start_ms.saturating_add(offset as i64);
        ts.max(prev.saturating_add(1)).max(self.start_ms)
    }

    fn peek(&self) -> Option<i64> {
        self.next_ms
    }

    fn advance(&mut self) {
        if let Some(prev) = self.next_ms {
            self.k = self.k.saturating_add(1);
            let next = self.candidate(prev);
            self.next_ms = (next > prev).then_some(next);
        }
    }
}

/// One fleet member: its simulator, clock and live anomalies.
#[derive(Clone, Debug)]
struct Member {
    sim: SensorSim,
    clock: Clock,
    /// Anomalies that may still affect future samples (expired ones pruned).
    live: Vec<Anomaly>,
}

impl Member {
    fn emit_until(&mut self, idx: usize, now_ms: i64, out: &mut Vec<(usize, i64, f64)>) {
        while let Some(ts) = self.clock.peek().filter(|&ts| ts <= now_ms) {
            out.push((idx, ts, self.sim.value_at(ts, &self.live)));
            self.clock.advance();
        }
        self.prune();
    }

    /// Drops anomalies that can no longer affect a sample: a sample at or
    /// after the start was already produced and the span is over.
    fn prune(&mut self) {
        if let Some(last) = self.sim.last_ts() {
            self.live
                .retain(|a| !(last >= a.start_ms && last >= a.end_ms().saturating_sub(1)));
        }
    }
}

/// A deterministic fleet of simulated sensors.
#[derive(Clone, Debug)]
pub struct Fleet {
    cfg: FleetConfig,
    ids: Vec<String>,
    members: Vec<Member>,
    injected: Vec<(usize, Anomaly)>,
    schedule_rng: SimRng,
    /// Mean inter-anomaly time in ms, if random injection is enabled.
    anomaly_mean_ms: Option<f64>,
    next_anomaly_ms: i64,
}

impl Fleet {
    /// Builds the fleet; sensors start sampling at (or just after) `start_ms`.
    /// Sensor ids are `s0001`.. zero-padded to 4 digits, or more when needed.
    /// The stored config has `rate_hz`, `jitter_frac` and `anomaly_every_s`
    /// sanitised (see [`FleetConfig`]).
    pub fn new(cfg: FleetConfig, start_ms: i64) -> Self {
        let rate_hz = finite_or(cfg.rate_hz, 1.0).clamp(MIN_RATE_HZ, MAX_RATE_HZ);
        let jitter_frac = finite_or(cfg.jitter_frac, 0.0).clamp(0.0, MAX_JITTER_FRAC);
        let anomaly_every_s = cfg
            .anomaly_every_s
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| s.max(1e-3));
        let cfg = FleetConfig {
            rate_hz,
            jitter_frac,
            anomaly_every_s,
            ..cfg
        };
        let period_ms = 1000.0 / rate_hz;
        let width = cfg.sensors.to_string().len().max(4);
        let ids = (1..=cfg.sensors).map(|i| format!("s{i:0width$}")).collect();
        let members = (0..cfg.sensors)
            .map(|i| {
                let i = i as u64;
                let mut prng = SimRng::new(mix(cfg.seed, i, STREAM_PROFILE));
                let profile = SensorSim::random_profile(&mut prng);
                Member {
                    sim: SensorSim::new(profile, mix(cfg.seed, i, STREAM_NOISE)),
                    clock: Clock::new(
                        start_ms,
                        period_ms,
                        jitter_frac,
                        mix(cfg.seed, i, STREAM_CLOCK),
                    ),
                    live: Vec::new(),
                }
            })
            .collect();
        let mut schedule_rng = SimRng::new(mix(cfg.seed, u64::MAX, STREAM_SCHEDULE));
        let anomaly_mean_ms = anomaly_every_s.map(|s| s * 1000.0);
        let first_gap = anomaly_mean_ms.map_or(0.0, |m| m * schedule_rng.unit());
        Self {
            cfg,
            ids,
            members,
            injected: Vec::new(),
            schedule_rng,
            anomaly_mean_ms,
            next_anomaly_ms: start_ms.saturating_add(first_gap.round().max(1.0) as i64),
        }
    }

    /// The (sanitised) configuration.
    pub fn config(&self) -> &FleetConfig {
        &self.cfg
    }

    /// Number of sensors.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the fleet has no sensors.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sensor ids in index order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(String::as_str)
    }

    /// Id of sensor `idx`; `""` if out of range.
    pub fn id(&self, idx: usize) -> &str {
        self.ids.get(idx).map_or("", String::as_str)
    }

    /// Profile of sensor `idx` (e.g. its `noise_scale()` for tests); `None`
    /// if out of range.
    pub fn profile(&self, idx: usize) -> Option<&SensorProfile> {
        self.members.get(idx).map(|m| m.sim.profile())
    }

    /// Appends every sample due at or before `now_ms` for every sensor (each
    /// at `rate_hz` with jitter, timestamps strictly increasing per sensor) as
    /// `(sensor index, ts_ms, value)`, sensor by sensor. Random anomalies due
    /// by `now_ms` are scheduled first. The caller bounds the work through the
    /// span since the previous call (samples are never skipped).
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<(usize, i64, f64)>) {
        self.schedule_until(now_ms);
        for (idx, m) in self.members.iter_mut().enumerate() {
            m.emit_until(idx, now_ms, out);
        }
    }

    /// Everything injected so far, explicit and random, in injection order
    /// (ground truth for the demo view and tests).
    pub fn injected(&self) -> &[(usize, Anomaly)] {
        &self.injected
    }

    /// Injects `a` on sensor `sensor` (ignored if out of range). It affects
    /// samples not yet produced; a span already partly in the past only
    /// applies to its remaining samples.
    pub fn inject(&mut self, sensor: usize, a: Anomaly) {
        if let Some(m) = self.members.get_mut(sensor) {
            m.live.push(a);
            self.injected.push((sensor, a));
        }
    }

    /// Next `n` samples of sensor `idx` regardless of wall time (training).
    fn take_samples(&mut self, idx: usize, n: usize) -> Vec<(i64, f64)> {
        let mut series = Vec::with_capacity(n.min(1 << 16));
        if let Some(m) = self.members.get_mut(idx) {
            while series.len() < n {
                let Some(ts) = m.clock.peek() else { break };
                series.push((ts, m.sim.value_at(ts, &m.live)));
                m.clock.advance();
            }
        }
        series
    }

    /// Draws the random anomaly schedule up to `now_ms`: uniform sensor,
    /// uniform kind, magnitude 6..12σ (factor 6..12 for bursts), duration
    /// 5..30 s — except spikes, which span 1..5 sample periods so they stay
    /// isolated outliers.
    fn schedule_until(&mut self, now_ms: i64) {
        let Some(mean_ms) = self.anomaly_mean_ms else {
            return;
        };
        if self.members.is_empty() {
            return;
        }
        let period_ms = 1000.0 / self.cfg.rate_hz;
        while self.next_anomaly_ms <= now_ms {
            let rng = &mut self.schedule_rng;
            let sensor = rng.below(self.members.len() as u64) as usize;
            let magnitude = rng.range(6.0, 12.0);
            let sign = if rng.unit() < 0.5 { 1.0 } else { -1.0 };
            let long_ms = rng.range(5_000.0, 30_000.0);
            let spike_ms = (rng.range(1.0, 5.0) * period_ms).max(1.0);
            let (kind, duration) = match rng.below(4) {
                0 => (
                    AnomalyKind::Spike {
                        magnitude_sigma: magnitude,
                    },
                    spike_ms,
                ),
                1 => (
                    AnomalyKind::LevelShift {
                        sigma: sign * magnitude,
                    },
                    long_ms,
                ),
                2 => (AnomalyKind::Stuck, long_ms),
                _ => (AnomalyKind::NoiseBurst { factor: magnitude }, long_ms),
            };
            let start_ms = self.next_anomaly_ms;
            self.inject(
                sensor,
                Anomaly {
                    kind,
                    start_ms,
                    duration_ms: duration.round() as i64,
                },
            );
            let gap = (mean_ms * self.schedule_rng.range(0.5, 1.5))
                .round()
                .max(1.0);
            self.next_anomaly_ms = start_ms.saturating_add(gap as i64);
            if self.next_anomaly_ms == i64::MAX {
                break;
            }
        }
    }
}

/// Normal-only series for training: `n_sensors` random profiles ×
/// `samples_per_sensor` samples at `rate_hz` (10% jitter), no anomalies,
/// starting at ts 0. Identical to the first samples of each sensor of
/// `Fleet::new(FleetConfig { sensors: n_sensors, rate_hz, seed,
/// anomaly_every_s: None, jitter_frac: 0.1 }, 0)`.
pub fn normal_series(
    n_sensors: usize,
    samples_per_sensor: usize,
    rate_hz: f64,
    seed: u64,
) -> Vec<Vec<(i64, f64)>> {
    let cfg = FleetConfig {
        sensors: n_sensors,
        rate_hz,
        seed,
        anomaly_every_s: None,
        jitter_frac: TRAIN_JITTER_FRAC,
    };
    let mut fleet = Fleet::new(cfg, 0);
    (0..n_sensors)
        .map(|i| fleet.take_samples(i, samples_per_sensor))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_anomalies_are_pruned_from_live_lists() {
        let cfg = FleetConfig {
            sensors: 4,
            anomaly_every_s: Some(0.5),
            ..FleetConfig::default()
        };
        let mut fleet = Fleet::new(cfg, 0);
        let mut out = Vec::new();
        for now in (0..=600_000).step_by(1_000) {
            fleet.tick(now, &mut out);
        }
        assert!(fleet.injected().len() > 1_000);
        // At most ~30 s of anomalies at 2/s across 4 sensors can be live.
        let live: usize = fleet.members.iter().map(|m| m.live.len()).sum();
        assert!(live < 150, "{live} live anomalies");
    }
}
