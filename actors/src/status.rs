//! The gateway's self-knowledge: each supervised stage's state, the mode and its reasons.
//!
//! Design constraints: written by supervisors and stages (rarely, on transitions), read by
//! `/status`, `/readyz`, the `status` uplink topic and the demo view. Never touched per sample.
//! The mode is derived, not stored: `offline` while the uplink is down, `degraded` while any
//! other condition holds, `online` otherwise. Decisions continue locally in every mode.

use parking_lot::RwLock;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Lifecycle of one supervised stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// Spawned, `pre_start` not finished.
    Starting,
    /// Handling messages.
    Running,
    /// Failed; a restart is scheduled after a backoff.
    Restarting,
    /// Failed more often than its policy allows; retried slowly, gateway degraded.
    Escalated,
    /// Stopped on purpose (shutdown).
    Stopped,
}

/// What `/status` shows of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    /// Current lifecycle state.
    pub state: StageState,
    /// Restarts since the gateway started.
    pub restarts: u64,
    /// The last failure, as text.
    pub last_error: Option<String>,
    /// When the state last changed, ms since the epoch.
    pub since: i64,
}

/// Overall mode, as published on the `status` topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Everything works.
    Online,
    /// Working, with a condition an operator should know about.
    Degraded,
    /// The uplink is down; decisions continue and are kept locally.
    Offline,
}

impl Mode {
    /// The lower-case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Online => "online",
            Mode::Degraded => "degraded",
            Mode::Offline => "offline",
        }
    }
}

/// A condition that changes the mode: every one makes the gateway `degraded`, except
/// [`Condition::UplinkDown`], which makes it `offline`. Its key (the code before the detail
/// in `/status` reasons) is fixed; the detail is free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The upstream broker is unreachable.
    UplinkDown,
    /// The local broker sensors publish to is unreachable.
    IngestDown,
    /// Samples acknowledged by the broker never reached the gateway.
    IngestLoss,
    /// A store write or read failed.
    StoreError,
    /// The store is above `store.near_budget`.
    StoreNearBudget,
    /// The store was found corrupt and set aside at start.
    StoreRecovered,
    /// A model package was refused.
    ModelRefused,
    /// Inference runs on the fallback rule.
    InferenceFallback,
    /// Sensor actors crash faster than their restart policy allows.
    SensorRestartsEscalated,
    /// A supervised stage (named) crashes faster than its restart policy allows.
    StageEscalated(&'static str),
}

impl Condition {
    /// The condition's code.
    pub fn key(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Condition::UplinkDown => "uplink_down",
            Condition::IngestDown => "ingest_down",
            Condition::IngestLoss => "ingest_loss",
            Condition::StoreError => "store_error",
            Condition::StoreNearBudget => "store_near_budget",
            Condition::StoreRecovered => "store_recovered",
            Condition::ModelRefused => "model_refused",
            Condition::InferenceFallback => "inference_fallback",
            Condition::SensorRestartsEscalated => "sensor_restarts_escalated",
            Condition::StageEscalated(stage) => {
                return Cow::Owned(format!("stage_escalated:{stage}"));
            }
        })
    }
}

#[derive(Default)]
struct Inner {
    stages: BTreeMap<&'static str, StageStatus>,
    conditions: BTreeMap<String, String>,
    mode_since: i64,
    last_mode: Option<Mode>,
}

/// Shared status board.
#[derive(Default)]
pub struct StatusBoard {
    inner: RwLock<Inner>,
}

impl StatusBoard {
    /// Records a stage's new state; `error` is kept as its last error when given.
    pub fn stage(&self, name: &'static str, state: StageState, error: Option<String>) {
        let mut g = self.inner.write();
        let e = g.stages.entry(name).or_insert(StageStatus {
            state,
            restarts: 0,
            last_error: None,
            since: now_ms(),
        });
        if e.state != state {
            e.since = now_ms();
        }
        e.state = state;
        if matches!(state, StageState::Restarting | StageState::Escalated) {
            e.restarts += 1;
        }
        if error.is_some() {
            e.last_error = error;
        }
    }

    /// Sets (`Some(detail)`) or clears (`None`) a mode condition.
    pub fn condition(&self, condition: Condition, detail: Option<String>) {
        let key = condition.key();
        let mut g = self.inner.write();
        match detail {
            Some(d) => {
                g.conditions.insert(key.into_owned(), d);
            }
            None => {
                g.conditions.remove(key.as_ref());
            }
        }
        let mode = Self::derive(&g.conditions);
        if g.last_mode != Some(mode) {
            g.last_mode = Some(mode);
            g.mode_since = now_ms();
        }
    }

    fn derive(c: &BTreeMap<String, String>) -> Mode {
        if c.contains_key(Condition::UplinkDown.key().as_ref()) {
            Mode::Offline
        } else if c.is_empty() {
            Mode::Online
        } else {
            Mode::Degraded
        }
    }

    /// The current mode, the time it began, and its reasons (`"code: detail"`).
    pub fn mode(&self) -> (Mode, i64, Vec<String>) {
        let g = self.inner.read();
        let reasons = g
            .conditions
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}: {v}")
                }
            })
            .collect();
        (Self::derive(&g.conditions), g.mode_since, reasons)
    }

    /// Whether `condition` is currently set.
    pub fn has_condition(&self, condition: Condition) -> bool {
        self.inner
            .read()
            .conditions
            .contains_key(condition.key().as_ref())
    }

    /// A copy of every stage's status.
    pub fn stages(&self) -> BTreeMap<&'static str, StageStatus> {
        self.inner.read().stages.clone()
    }

    /// Whether every named stage is running.
    pub fn all_running(&self, names: &[&str]) -> bool {
        let g = self.inner.read();
        names.iter().all(|n| {
            g.stages
                .get(n)
                .is_some_and(|s| s.state == StageState::Running)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_follows_conditions() {
        let b = StatusBoard::default();
        b.condition(Condition::StoreError, None);
        assert_eq!(b.mode().0, Mode::Online);
        b.condition(Condition::InferenceFallback, Some("model refused".into()));
        assert_eq!(b.mode().0, Mode::Degraded);
        b.condition(Condition::UplinkDown, Some(String::new()));
        let (m, _, reasons) = b.mode();
        assert_eq!(m, Mode::Offline);
        assert_eq!(reasons.len(), 2);
        b.condition(Condition::UplinkDown, None);
        b.condition(Condition::InferenceFallback, None);
        assert_eq!(b.mode().0, Mode::Online);
    }

    #[test]
    fn restarts_are_counted_per_stage() {
        let b = StatusBoard::default();
        b.stage("ingest", StageState::Running, None);
        b.stage("ingest", StageState::Restarting, Some("boom".into()));
        b.stage("ingest", StageState::Running, None);
        let s = &b.stages()["ingest"];
        assert_eq!(s.restarts, 1);
        assert_eq!(s.last_error.as_deref(), Some("boom"));
        assert!(b.all_running(&["ingest"]));
        assert!(!b.all_running(&["ingest", "uplink"]));
    }
}
