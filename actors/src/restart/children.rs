//! The bookkeeping every supervisor shares: which child runs as which actor, each child's
//! failure history, the restart verdict, the strategy, and what a failure shows in metrics,
//! `/status` and the log.
//!
//! Design constraints: the root supervisor, the sensor supervisor and the inference pool all
//! use [`Children`], so a policy means the same at every level. The helper does not spawn and
//! does not schedule: a supervisor spawns its children its own way (their arguments differ) and
//! sends itself its own restart message for every [`Restart`] a failure returns. Stops made on
//! purpose (idle sensors, shutdown, `one_for_all` siblings, a killed hung worker) are marked
//! expected, so their exit events are not failures; an exit of an actor that is no longer the
//! child's current one is ignored.

use super::{RestartTracker, Verdict};
use crate::config::{RestartPolicy, Strategy};
use crate::metrics::Metrics;
use crate::status::{Condition, StageState, StatusBoard};
use ractor::{ActorCell, ActorId, ActorRef, SupervisionEvent};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// How one kind of child is named and reported.
pub trait ChildKey: Clone + Eq + Hash + fmt::Display + Send + 'static {
    /// Label of `edgegw_actor_restarts_total{stage}` when this child fails.
    fn kind(&self) -> &'static str;

    /// The `/status` stage this child is shown as, if any. Several children may share one
    /// (the workers of the pool): the stage is running when all of them are.
    fn stage(&self) -> Option<&'static str> {
        None
    }

    /// The condition raised while this child is escalated, if any.
    fn escalation(&self) -> Option<Condition>;

    /// The condition's detail when this child escalates after failing with `why`.
    fn detail(&self, why: &str) -> String {
        why.to_owned()
    }
}

/// An actor handle a supervisor keeps for a child: an [`ActorCell`] or an [`ActorRef`].
pub trait Handle: Clone + Send + 'static {
    /// The actor's cell.
    fn cell(&self) -> &ActorCell;
}

impl Handle for ActorCell {
    fn cell(&self) -> &ActorCell {
        self
    }
}

impl<M: ractor::Message> Handle for ActorRef<M> {
    fn cell(&self) -> &ActorCell {
        self
    }
}

/// One supervised child: its current actor (none while it waits for a restart), its failure
/// history and what the supervisor keeps beside it.
pub struct Child<H, T> {
    handle: Option<H>,
    tracker: RestartTracker,
    /// The supervisor's own per-child state.
    pub data: T,
}

impl<H, T> Child<H, T> {
    /// The running actor, if any.
    pub fn handle(&self) -> Option<&H> {
        self.handle.as_ref()
    }

    /// Restarts over the child's life.
    pub fn restarts(&self) -> u64 {
        self.tracker.total
    }
}

/// A restart the supervisor must schedule: start `key` again after `delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart<K> {
    /// The child.
    pub key: K,
    /// The backoff before it starts again.
    pub delay: Duration,
}

/// The children of one supervisor.
pub struct Children<K, H, T = ()> {
    policy: RestartPolicy,
    status: Arc<StatusBoard>,
    metrics: Arc<Metrics>,
    entries: HashMap<K, Child<H, T>>,
    by_actor: HashMap<ActorId, K>,
    expected: HashSet<ActorId>,
    rng: SmallRng,
}

impl<K: ChildKey, H: Handle, T> Children<K, H, T> {
    /// No children yet; failures are judged by `policy` and reported on `status` and `metrics`.
    pub fn new(policy: RestartPolicy, status: Arc<StatusBoard>, metrics: Arc<Metrics>) -> Self {
        Children {
            policy,
            status,
            metrics,
            entries: HashMap::new(),
            by_actor: HashMap::new(),
            expected: HashSet::new(),
            rng: SmallRng::from_os_rng(),
        }
    }

    /// Registers `key`, not running yet (the caller spawns it and calls [`Children::started`]).
    pub fn insert(&mut self, key: K, data: T) {
        self.entries.entry(key).or_insert(Child {
            handle: None,
            tracker: RestartTracker::default(),
            data,
        });
    }

    /// The child `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&Child<H, T>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key)
    }

    /// The child `key`, mutably (for its `data`).
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut Child<H, T>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get_mut(key)
    }

    /// Whether `key` is registered.
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.contains_key(key)
    }

    /// Registered children.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no child is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Children with a running actor.
    pub fn running(&self) -> usize {
        self.by_actor.len()
    }

    /// Every child.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &Child<H, T>)> {
        self.entries.iter()
    }

    /// Whether `key` is registered and waiting for a restart (no running actor).
    pub fn is_down(&self, key: &K) -> bool {
        self.entries.get(key).is_some_and(|c| c.handle.is_none())
    }

    /// Records that `key` now runs as `handle`.
    pub fn started(&mut self, key: &K, handle: H) {
        let Some(c) = self.entries.get_mut(key) else {
            return;
        };
        self.by_actor.insert(handle.cell().get_id(), key.clone());
        c.tracker.started(Instant::now());
        c.handle = Some(handle);
        if let Some(stage) = key.stage() {
            let all_up = self
                .entries
                .iter()
                .filter(|(k, _)| k.stage() == Some(stage))
                .all(|(_, c)| c.handle.is_some());
            if all_up {
                self.status.stage(stage, StageState::Running, None);
            }
        }
    }

    /// Takes the actor of `key` to stop it on purpose: its exit will not count as a failure
    /// and the child stays registered, down, until started again.
    pub fn stop(&mut self, key: &K) -> Option<H> {
        let h = self.entries.get_mut(key)?.handle.take()?;
        let id = h.cell().get_id();
        self.by_actor.remove(&id);
        self.expected.insert(id);
        Some(h)
    }

    /// Forgets `key`; its actor, if any, is returned to be stopped on purpose.
    pub fn remove(&mut self, key: &K) -> Option<H> {
        let h = self.stop(key);
        self.entries.remove(key);
        h
    }

    /// Forgets every child whose `data` fails `keep`, returning the actors of those that ran
    /// (to be stopped on purpose).
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &T) -> bool) -> Vec<H> {
        let gone: Vec<K> = self
            .entries
            .iter()
            .filter(|(k, c)| !keep(k, &c.data))
            .map(|(k, _)| k.clone())
            .collect();
        gone.iter().filter_map(|k| self.remove(k)).collect()
    }

    /// The child whose unexpected exit `evt` reports, with the reason, after marking it down;
    /// `None` for stops made on purpose, stale actors and events that are not exits.
    pub fn exit(&mut self, evt: SupervisionEvent) -> Option<(K, String)> {
        let (cell, why) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                reason.unwrap_or_else(|| "stopped without a reason".into()),
            ),
            _ => return None,
        };
        let id = cell.get_id();
        if self.expected.remove(&id) {
            return None;
        }
        let key = self.by_actor.remove(&id)?;
        let c = self.entries.get_mut(&key)?;
        if c.handle.as_ref().is_some_and(|h| h.cell().get_id() == id) {
            c.handle = None;
            Some((key, why))
        } else {
            None
        }
    }

    /// Records that `key` failed (it exited, could not start, or hung and was killed): counts
    /// the restart, judges it by the policy, reports it, and under `one_for_all` stops the
    /// running siblings. Returns the restarts to schedule, `key`'s first.
    pub fn failed(&mut self, key: &K, why: &str) -> Vec<Restart<K>> {
        let Some(c) = self.entries.get_mut(key) else {
            return Vec::new();
        };
        if let Some(h) = c.handle.take() {
            self.by_actor.remove(&h.cell().get_id());
        }
        self.metrics.restart(key.kind());
        let verdict = c
            .tracker
            .on_failure(&self.policy, Instant::now(), &mut self.rng);
        let delay = verdict.delay();
        let escalated = matches!(verdict, Verdict::Escalate(_));
        if escalated {
            if let Some(condition) = key.escalation() {
                self.status.condition(condition, Some(key.detail(why)));
            }
        }
        if let Some(stage) = key.stage() {
            let state = if escalated {
                StageState::Escalated
            } else {
                StageState::Restarting
            };
            self.status.stage(stage, state, Some(why.to_owned()));
        }
        let retry_in_ms = delay.as_millis() as u64;
        if escalated {
            error!(message = "Child keeps failing; escalated, retrying slowly.", kind = key.kind(), child = %key, error = %why, retry_in_ms);
        } else {
            warn!(message = "Child failed; restarting.", kind = key.kind(), child = %key, error = %why, retry_in_ms);
        }
        let mut restarts = vec![Restart {
            key: key.clone(),
            delay,
        }];
        if self.policy.strategy == Strategy::OneForAll {
            let siblings: Vec<K> = self
                .entries
                .iter()
                .filter(|(k, c)| *k != key && c.handle.is_some())
                .map(|(k, _)| k.clone())
                .collect();
            for sibling in siblings {
                if let Some(h) = self.stop(&sibling) {
                    h.cell().stop(Some("one_for_all restart".into()));
                }
                if let Some(stage) = sibling.stage() {
                    self.status.stage(stage, StageState::Restarting, None);
                }
                info!(message = "Restarting sibling (one_for_all).", kind = sibling.kind(), child = %sibling);
                restarts.push(Restart {
                    key: sibling,
                    delay,
                });
            }
        }
        restarts
    }

    /// Clears the escalation conditions whose children have all stayed up: a condition stays
    /// while any child carrying it is down or still escalated.
    pub fn review(&self) {
        let now = Instant::now();
        let (mut clear, mut keep) = (HashSet::new(), HashSet::new());
        for (k, c) in &self.entries {
            let Some(condition) = k.escalation() else {
                continue;
            };
            if c.handle.is_none() || c.tracker.escalated(&self.policy, now) {
                keep.insert(condition);
            } else {
                clear.insert(condition);
            }
        }
        for condition in clear.difference(&keep) {
            if self.status.has_condition(*condition) {
                self.status.condition(*condition, None);
            }
        }
    }
}

#[cfg(test)]
mod tests;
