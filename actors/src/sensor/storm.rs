//! Alert storm control: which anomalous decisions of a sensor become alerts, and the
//! accounting of the ones that do not.
//!
//! # Semantics
//!
//! All per-sensor timing is the **sensor's own clock**: the count of its samples, where a
//! silence counts the samples its typical interval says it stood for
//! ([`super::tracker::Tracker::clock`]). A 5-minute sensor and a 100 Hz one therefore get the
//! same behaviour per sample, and a replay or a backfill alerts exactly like the live data it
//! reproduces, whatever the speed it is published at. The sensor hands its decisions over in
//! window order ([`super::order`]), and the gate does not rely on it: each decision keeps its
//! own time, so a sensor's alerts are in clock order and at least `alert_cooldown` apart (a
//! decision older than the sensor's last alert never alerts), and the silence of
//! `episode_gap` is measured from the newest decision seen.
//!
//! - **Episode**: a run of anomalous decisions of one sensor. It opens at an anomalous
//!   decision when none is open, and ends after `episode_end` consecutive normal decisions
//!   (hysteresis), or when the sensor made no decision at all for longer than `episode_gap`.
//! - **Raise**: an anomalous decision raises an alert when its episode *wants* one (it has not
//!   alerted yet, or its last alert is at least `alert_repeat` old, `0s` = never a reminder),
//!   the sensor's previous alert is at least `alert_cooldown` old (across episodes, so a
//!   flapping sensor alerts at most once per cooldown), and the global cap
//!   (`alerts.max_per_minute`, wall clock, shared by all sensors) lets it through.
//!   Checked in that order; the first that refuses is the suppression's reason:
//!   `duplicate`, `cooldown`, `cap`.
//! - An episode whose first decisions were suppressed (cooldown, cap) keeps wanting its alert,
//!   so every episode that outlasts the cooldown is announced.
//!
//! # Accounting (the invariant the tests check)
//!
//! Every anomalous decision is either an alert or a suppression, and each suppression is
//! reported upstream exactly once, by the sensor's next message that carries
//! `alerts_suppressed`: its next alert or its next summary, whichever is first. So per sensor,
//! upstream: alerts + Σ `alerts_suppressed` = anomalous decisions (Σ summary `anomalous`), and
//! Σ `alerts_suppressed` over all sensors = `edgegw_alerts_suppressed_total`.
//!
//! Design constraints: pure and O(1) per decision, no clock of its own (time comes in as an
//! argument, the cap as a closure), so it is tested with injected time. The state lives in the
//! sensor actor: a restart or an idle stop loses the open episode and the suppressions not yet
//! reported (at most one summary period's worth).

use crate::config::AlertsConfig;
pub use crate::metrics::Suppressed;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;

/// The episode an alert belongs to, as carried in its `episode` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpisodeInfo {
    /// Event time (ms) of the episode's first anomalous decision.
    pub start: i64,
    /// Anomalous decisions in the episode so far, this one included.
    pub decisions: u64,
}

/// What to do with one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A normal decision.
    Normal,
    /// Send an alert.
    Raise {
        /// Suppressions since the sensor's previous alert or summary (its `alerts_suppressed`).
        suppressed_before: u64,
        /// Its episode.
        episode: EpisodeInfo,
    },
    /// An anomalous decision withheld, counted.
    Suppress(Suppressed),
}

/// The gate's settings, in units of the sensor clock the caller passes to
/// [`AlertGate::decide`] (the sensor's own samples, live and in evaluation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateConfig {
    /// Minimum spacing of two alerts of the sensor.
    pub cooldown: i64,
    /// Reminder period inside an episode; 0 = no reminders.
    pub repeat: i64,
    /// Consecutive normal decisions that end an episode.
    pub episode_end: u32,
    /// A silence (no decision) longer than this ends an episode.
    pub gap: i64,
}

/// When a decision happened: on the sensor clock (the gate's spacing) and in event time
/// (the episode start an alert reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// Sensor clock (the sensor's own samples).
    pub clock: i64,
    /// Event time (ms) of the decision's window end.
    pub ts: i64,
}

#[derive(Debug, Clone, Copy)]
struct Episode {
    /// Event time (ms) of the first anomalous decision.
    start: i64,
    decisions: u64,
    normal_run: u32,
    last_alert: Option<i64>,
}

/// One sensor's alert gate: episodes, cooldown, reminders and the suppressed counts.
#[derive(Debug, Clone)]
pub struct AlertGate {
    cfg: GateConfig,
    episode: Option<Episode>,
    /// Newest decision time seen (event time never runs backwards here).
    last_decision: Option<i64>,
    /// The sensor's last alert, any episode (for the cooldown).
    last_alert: Option<i64>,
    /// Suppressions not yet reported upstream.
    pending: u64,
    /// Anomalous decisions since the last summary.
    anomalous: u64,
}

impl AlertGate {
    /// A gate with no episode open.
    pub fn new(cfg: GateConfig) -> Self {
        Self {
            cfg,
            episode: None,
            last_decision: None,
            last_alert: None,
            pending: 0,
            anomalous: 0,
        }
    }

    /// Decides on one decision made at `at`; `cap` is asked only when everything else allows
    /// an alert, and consumes a unit of the global cap when it returns true.
    pub fn decide(&mut self, at: At, anomalous: bool, cap: impl FnOnce() -> bool) -> Verdict {
        let now = at.clock;
        if self
            .last_decision
            .is_some_and(|t| now.saturating_sub(t) > self.cfg.gap)
        {
            self.episode = None;
        }
        self.last_decision = Some(self.last_decision.map_or(now, |t| t.max(now)));
        if !anomalous {
            if let Some(ep) = self.episode.as_mut() {
                ep.normal_run += 1;
                if ep.normal_run >= self.cfg.episode_end {
                    self.episode = None;
                }
            }
            return Verdict::Normal;
        }
        self.anomalous += 1;
        let ep = self.episode.get_or_insert(Episode {
            start: at.ts,
            decisions: 0,
            normal_run: 0,
            last_alert: None,
        });
        ep.start = ep.start.min(at.ts);
        ep.decisions += 1;
        ep.normal_run = 0;
        let wants = match ep.last_alert {
            None => true,
            Some(t) => self.cfg.repeat > 0 && now.saturating_sub(t) >= self.cfg.repeat,
        };
        let reason = if !wants {
            Some(Suppressed::Duplicate)
        } else if self
            .last_alert
            .is_some_and(|t| now.saturating_sub(t) < self.cfg.cooldown)
        {
            Some(Suppressed::Cooldown)
        } else if !cap() {
            Some(Suppressed::Cap)
        } else {
            None
        };
        if let Some(r) = reason {
            self.pending += 1;
            return Verdict::Suppress(r);
        }
        ep.last_alert = Some(now);
        self.last_alert = Some(now);
        // Raised only at `now >= last_alert + cooldown`: alert times only grow.
        let episode = EpisodeInfo {
            start: ep.start,
            decisions: ep.decisions,
        };
        Verdict::Raise {
            suppressed_before: std::mem::take(&mut self.pending),
            episode,
        }
    }

    /// Closes a summary period: `(anomalous decisions, suppressions not yet reported)` since
    /// the last summary, both reset.
    pub fn take_period(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.anomalous),
            std::mem::take(&mut self.pending),
        )
    }

    /// Whether a summary has something to report even without samples.
    pub fn has_pending(&self) -> bool {
        self.anomalous > 0 || self.pending > 0
    }
}

/// The global alert cap: a governor direct limiter shared by every sensor actor (lock-free
/// `check`), clock injectable for tests.
pub struct AlertCap<C: Clock = DefaultClock> {
    limiter: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
}

impl AlertCap {
    /// A cap of `cfg.max_per_minute` on the real clock.
    pub fn new(cfg: &AlertsConfig) -> Self {
        Self::with_clock(cfg, DefaultClock::default())
    }
}

impl<C: Clock> AlertCap<C> {
    /// A cap of `cfg.max_per_minute` (burst the same) on `clock`.
    pub fn with_clock(cfg: &AlertsConfig, clock: C) -> Self {
        let n = NonZeroU32::new(cfg.max_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::direct_with_clock(Quota::per_minute(n), clock),
        }
    }

    /// Takes one alert from the cap; false when it is exhausted.
    pub fn allow(&self) -> bool {
        self.limiter.check().is_ok()
    }
}
