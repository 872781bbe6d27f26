//! Deterministic simulated sensor fleet: the data source for `edgegw train`
//! (normal-only series for the anomaly autoencoder), `edgegw demo` (a fleet
//! published over MQTT with injected anomalies) and the end-to-end tests
//! (one sensor gets a level shift, the rest must stay normal).
//!
//! Each sensor's normal behaviour is a [`SensorProfile`]: a level, a slow
//! seasonal sinusoid, AR(1) coloured noise, a slow linear drift and an optional
//! vibration harmonic. Anomalies ([`Anomaly`]) are layered on top, with
//! magnitudes expressed in units of the sensor's own effective noise
//! ([`SensorProfile::noise_scale`]), so "8σ" means the same thing for a
//! thermometer at 20 °C and a pressure sensor at 1e5 Pa.
//!
//! # Design constraints
//! - **Deterministic.** The same seed (and the same sequence of timestamps)
//!   yields bit-identical values. The simulator therefore uses its own fixed
//!   PRNG (xoshiro256++ in `rng.rs`) instead of `rand`'s algorithm-agnostic
//!   `StdRng`; `rand` is only used for the [`rand::Rng`] parameter of
//!   [`SensorSim::random_profile`].
//! - **Anomalies never perturb the normal stream.** Anomaly decisions (spike
//!   coin flips and signs) are stateless hashes of `(seed, ts, anomaly start)`,
//!   never draws from the noise generator, so a sensor with an injected
//!   anomaly produces exactly the clean series outside the anomaly span, and
//!   every other sensor of a fleet is unaffected by an injection.
//! - **Scale-free fleet.** [`SensorSim::random_profile`] spreads levels over
//!   six orders of magnitude (and both signs) so a model cannot rely on
//!   absolute scale.
//! - **Cheap per tick.** The demo runs 1000 sensors at 10 Hz: a sample costs
//!   one normal draw, two `sin`s and a scan of that sensor's (pruned) list of
//!   live anomalies; no allocation except the caller's output vector.
//! - **No panics on input.** Non-finite or out-of-range parameters are
//!   sanitised (documented per item), out-of-range indices are ignored, and
//!   time arithmetic saturates.

mod fleet;
#[cfg(test)]
mod fleet_tests;
mod rng;
mod sensor;
#[cfg(test)]
mod sensor_tests;

pub use fleet::{normal_series, Fleet, FleetConfig};
pub use sensor::SensorSim;

/// A sensor's normal behaviour. All amplitudes are in the sensor's own units.
#[derive(Clone, Debug, PartialEq)]
pub struct SensorProfile {
    /// Mean level, e.g. 20.0 (°C) up to 1e5 (Pa); may be negative. The fleet
    /// spans several orders of magnitude so models cannot rely on scale.
    pub base: f64,
    /// Amplitude of the slow seasonal sinusoid (daily cycle in compressed time).
    pub season_amp: f64,
    /// Period of the seasonal sinusoid in seconds (60..600 s in the demo).
    pub season_period_s: f64,
    /// Standard deviation of the white-noise innovation driving the AR(1) noise.
    pub noise_std: f64,
    /// AR(1) coefficient of the coloured noise, `0..0.9` (clamped to ±0.99).
    pub ar: f64,
    /// Slow linear drift, in units per hour since the sensor's first sample.
    pub drift_per_hour: f64,
    /// Amplitude of a vibration component (0 for sensors without one).
    pub harmonic_amp: f64,
    /// Frequency of the vibration component in Hz.
    pub harmonic_hz: f64,
}

impl SensorProfile {
    /// Effective (stationary) standard deviation of the AR(1) noise,
    /// `noise_std / sqrt(1 - ar²)`: the unit in which anomaly magnitudes are
    /// expressed. Returns 0 for a non-finite or negative `noise_std`.
    pub fn noise_scale(&self) -> f64 {
        let std = finite_or(self.noise_std, 0.0).abs();
        let ar = finite_or(self.ar, 0.0).clamp(-MAX_AR, MAX_AR);
        std / (1.0 - ar * ar).sqrt()
    }
}

/// Largest |AR coefficient| accepted; keeps the noise stationary and
/// `noise_scale` finite.
pub(crate) const MAX_AR: f64 = 0.99;

/// Returns `x` if finite, else `fallback` (input sanitising helper).
pub(crate) fn finite_or(x: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        fallback
    }
}

/// The kind (and magnitude) of an injected anomaly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AnomalyKind {
    /// Isolated outliers: the first sample of the span, and each later sample
    /// in it with probability 0.3, is offset by ±`magnitude_sigma` × noise scale.
    Spike {
        /// Offset in units of the sensor's noise scale.
        magnitude_sigma: f64,
    },
    /// A sustained offset of `sigma` × noise scale over the whole span.
    LevelShift {
        /// Offset in units of the sensor's noise scale (may be negative).
        sigma: f64,
    },
    /// The sensor repeats its last pre-anomaly value exactly (a frozen reading).
    Stuck,
    /// The noise component is multiplied by `factor` over the span.
    NoiseBurst {
        /// Multiplier applied to the sensor's coloured noise.
        factor: f64,
    },
}

/// One anomaly on one sensor, active for `start_ms <= ts < start_ms + duration_ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anomaly {
    /// What happens during the span.
    pub kind: AnomalyKind,
    /// First timestamp (ms) of the span.
    pub start_ms: i64,
    /// Length of the span in ms. A `Spike` with a span too short to contain a
    /// sample still hits the first sample at or after `start_ms`.
    pub duration_ms: i64,
}

impl Anomaly {
    /// Exclusive end of the span (saturating), for ground-truth labelling.
    pub fn end_ms(&self) -> i64 {
        self.start_ms.saturating_add(self.duration_ms.max(0))
    }

    /// Whether `ts_ms` lies inside the span, for ground-truth labelling.
    pub fn contains(&self, ts_ms: i64) -> bool {
        ts_ms >= self.start_ms && ts_ms < self.end_ms()
    }
}
