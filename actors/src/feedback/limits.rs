//! The inbound limits of feedback: per sensor (keyed), per kind, global — governor GCRA
//! limiters, checked narrowest first.
//!
//! Design constraints: a check is a few atomic operations (the keyed one a `DashMap` shard
//! lock), safe from the uplink's event path. The keyed state grows with every sensor id seen,
//! so [`Limits::cleanup`] drops keys whose state is back to "full burst available" and shrinks
//! the map; the feedback stage calls it on its timer. The clock is a parameter so tests run
//! on governor's `FakeRelativeClock`.

use super::Kind;
use crate::config::FeedbackConfig;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Keyed<C> =
    RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Every limit of the feedback channel.
pub struct Limits<C: Clock = DefaultClock> {
    /// All kinds together (`feedback.rate_per_sec` / `burst`).
    global: Direct<C>,
    /// One per kind, in [`Kind::ALL`] order (`feedback.kinds.*`).
    kinds: [Direct<C>; 4],
    /// Per sensor id, for the kinds that name one (`feedback.per_sensor_*`).
    per_sensor: Keyed<C>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

fn per_second(rate: u32, burst: u32) -> Quota {
    Quota::per_second(nz(rate)).allow_burst(nz(burst))
}

/// `n` per minute with `burst`: one cell every 60 s / n.
fn per_minute(n: u32, burst: u32) -> Quota {
    let period = Duration::from_nanos(60_000_000_000 / u64::from(n.max(1)));
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_minute(nz(n)))
        .allow_burst(nz(burst))
}

impl Limits<DefaultClock> {
    /// The limits of `cfg` on the real clock.
    pub fn new(cfg: &FeedbackConfig) -> Self {
        Self::with_clock(cfg, &DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limits<C> {
    /// The limits of `cfg` on `clock`.
    pub fn with_clock(cfg: &FeedbackConfig, clock: &C) -> Self {
        let kind = |k: Kind| {
            let l = cfg.kinds.get(k);
            RateLimiter::direct_with_clock(per_second(l.rate_per_sec, l.burst), clock.clone())
        };
        Limits {
            global: RateLimiter::direct_with_clock(
                per_second(cfg.rate_per_sec, cfg.burst),
                clock.clone(),
            ),
            kinds: Kind::ALL.map(kind),
            per_sensor: RateLimiter::dashmap_with_clock(
                per_minute(cfg.per_sensor_per_min, cfg.per_sensor_burst),
                clock.clone(),
            ),
        }
    }

    /// Whether a message of `kind` (naming `sensor`, if any) may be processed now. A refused
    /// message spends nothing of the limits wider than the one that refused it.
    pub fn admit(&self, kind: Kind, sensor: Option<&str>) -> bool {
        if let Some(s) = sensor {
            if self.per_sensor.check_key(&s.to_string()).is_err() {
                return false;
            }
        }
        self.kinds[kind as usize].check().is_ok() && self.global.check().is_ok()
    }

    /// Forgets sensors whose per-sensor state is back to a full burst and releases the memory.
    pub fn cleanup(&self) {
        self.per_sensor.retain_recent();
        self.per_sensor.shrink_to_fit();
    }

    /// Sensor keys held now.
    pub fn keys(&self) -> usize {
        self.per_sensor.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn cfg() -> FeedbackConfig {
        let mut c = FeedbackConfig {
            rate_per_sec: 10,
            burst: 20,
            per_sensor_per_min: 6,
            per_sensor_burst: 3,
            ..Default::default()
        };
        c.kinds.label.rate_per_sec = 5;
        c.kinds.label.burst = 8;
        c.kinds.threshold.rate_per_sec = 10;
        c.kinds.threshold.burst = 20;
        c.kinds.raw_request.rate_per_sec = 10;
        c.kinds.raw_request.burst = 20;
        c
    }

    fn admitted(l: &Limits<FakeRelativeClock>, kind: Kind, sensor: &str, n: usize) -> usize {
        (0..n).filter(|_| l.admit(kind, Some(sensor))).count()
    }

    #[test]
    fn per_sensor_limit_then_refill() {
        let clock = FakeRelativeClock::default();
        let l = Limits::with_clock(&cfg(), &clock);
        assert_eq!(
            admitted(&l, Kind::Threshold, "s1", 10),
            3,
            "burst of one sensor"
        );
        assert_eq!(
            admitted(&l, Kind::Threshold, "s2", 10),
            3,
            "another sensor has its own"
        );
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            admitted(&l, Kind::Threshold, "s1", 10),
            1,
            "6/min = one per 10 s"
        );
    }

    #[test]
    fn per_kind_limit_inside_global() {
        let clock = FakeRelativeClock::default();
        let l = Limits::with_clock(&cfg(), &clock);
        let labels = (0..100)
            .filter(|i| l.admit(Kind::Label, Some(&format!("s{i}"))))
            .count();
        assert_eq!(labels, 8, "label burst");
        // The global budget left: 20 - 8.
        let models = (0..100).filter(|_| l.admit(Kind::Model, None)).count();
        assert_eq!(models, 2, "model burst");
        let raw = (0..100)
            .filter(|i| l.admit(Kind::RawRequest, Some(&format!("r{i}"))))
            .count();
        assert_eq!(raw, 10, "what the global burst has left");
        clock.advance(Duration::from_secs(1));
        let raw = (0..100)
            .filter(|i| l.admit(Kind::RawRequest, Some(&format!("q{i}"))))
            .count();
        assert_eq!(raw, 10, "one second of the global rate");
    }

    #[test]
    fn idle_keys_are_cleaned_up() {
        let clock = FakeRelativeClock::default();
        let mut c = cfg();
        c.kinds.label = crate::config::KindLimit {
            rate_per_sec: 10,
            burst: 20,
        };
        let l = Limits::with_clock(&c, &clock);
        for i in 0..10_000 {
            l.admit(Kind::Label, Some(&format!("sensor-{i}")));
        }
        assert_eq!(l.keys(), 10_000, "every key tried is held");
        l.cleanup();
        assert!(
            l.keys() > 9_000,
            "keys still limited are kept: {}",
            l.keys()
        );
        // 3 cells at one per 10 s: full again after 30 s.
        clock.advance(Duration::from_secs(31));
        l.cleanup();
        assert_eq!(l.keys(), 0, "idle keys forgotten");
    }
}
