//! The sensor supervisor: routes samples to per-sensor actors, spawns them on first sample
//! (up to `max_sensors`), stops idle ones, restarts crashed ones by policy, and closes summary
//! periods for all of them at aligned boundaries.
//!
//! Design constraints: one hop between ingest and a sensor (a map lookup and a cast). A sensor
//! that fails is restarted after a jittered backoff; while it waits, its samples are dropped
//! and counted (`edgegw_samples_dropped_total{reason="sensor_restarting"}`). A sensor that
//! exceeds its restart budget keeps being retried at the slowest backoff and marks the
//! gateway degraded until it recovers.

use super::actor::{SensorActor, SensorArgs, SensorMsg};
use super::SampleBatch;
use super::SensorPorts;
use crate::ctx::Ctx;
use crate::metrics::ReasonLabel;
use crate::restart::{RestartTracker, Verdict};
use crate::status::now_ms;
use crate::status::Condition;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Messages of the sensor supervisor.
#[derive(Debug)]
pub enum SensorSupMsg {
    /// Samples for `sensor` from ingest.
    Deliver {
        /// Sensor id.
        sensor: Arc<str>,
        /// The samples.
        batch: SampleBatch,
    },
    /// A summary boundary was reached.
    SummaryTick,
    /// Stop sensors idle for longer than `idle_timeout`.
    Sweep,
    /// Restart a crashed sensor after its backoff.
    Restart(Arc<str>),
}

/// The sensor supervisor.
pub struct SensorSupervisor;

struct Entry {
    actor: Option<ActorRef<SensorMsg>>,
    last_seen: Instant,
    tracker: RestartTracker,
}

/// State built in `pre_start`.
pub struct SensorSupState {
    ctx: Arc<Ctx>,
    ports: Arc<SensorPorts>,
    sensors: HashMap<Arc<str>, Entry>,
    by_actor: HashMap<ActorId, Arc<str>>,
    rng: SmallRng,
}

impl Actor for SensorSupervisor {
    type Msg = SensorSupMsg;
    type State = SensorSupState;
    type Arguments = (Arc<Ctx>, Arc<SensorPorts>);

    async fn pre_start(
        &self,
        myself: ActorRef<SensorSupMsg>,
        (ctx, ports): (Arc<Ctx>, Arc<SensorPorts>),
    ) -> Result<SensorSupState, ActorProcessingErr> {
        let idle = ctx.cfg.sensors.idle_timeout.get();
        myself.send_interval(
            (idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(10)),
            || SensorSupMsg::Sweep,
        );
        schedule_summary(&myself, &ctx);
        Ok(SensorSupState {
            ctx,
            ports,
            sensors: HashMap::new(),
            by_actor: HashMap::new(),
            rng: SmallRng::from_os_rng(),
        })
    }

    async fn post_stop(
        &self,
        _: ActorRef<SensorSupMsg>,
        st: &mut SensorSupState,
    ) -> Result<(), ActorProcessingErr> {
        st.ctx.metrics.sensors_active.set(0);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SensorSupMsg>,
        msg: SensorSupMsg,
        st: &mut SensorSupState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SensorSupMsg::Deliver { sensor, batch } => deliver(&myself, st, sensor, batch).await,
            SensorSupMsg::SummaryTick => {
                let period = st.ctx.cfg.summary.period.get().as_millis() as i64;
                let end = now_ms() / period * period;
                for e in st.sensors.values() {
                    if let Some(a) = &e.actor {
                        let _ = a.cast(SensorMsg::Summarize {
                            start: end - period,
                            end,
                        });
                    }
                }
                schedule_summary(&myself, &st.ctx);
            }
            SensorSupMsg::Sweep => sweep(st),
            SensorSupMsg::Restart(sensor) => {
                if st.sensors.get(&sensor).is_some_and(|e| e.actor.is_none()) {
                    spawn(&myself, st, sensor).await;
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SensorSupMsg>,
        evt: SupervisionEvent,
        st: &mut SensorSupState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(sensor) = st.by_actor.remove(&cell.get_id()) {
                    failed(&myself, st, sensor, err.to_string());
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                // Only idle sensors are stopped on purpose, and sweep already forgot them.
                let id = cell.get_id();
                if let Some(sensor) = st.by_actor.remove(&id) {
                    let current = st.sensors.get(&sensor).and_then(|e| e.actor.as_ref());
                    if current.is_some_and(|a| a.get_id() == id) {
                        st.sensors.remove(&sensor);
                    }
                }
            }
            _ => {}
        }
        st.ctx.metrics.sensors_active.set(st.by_actor.len() as i64);
        Ok(())
    }
}

fn schedule_summary(myself: &ActorRef<SensorSupMsg>, ctx: &Ctx) {
    let period = ctx.cfg.summary.period.get().as_millis() as i64;
    let wait = period - now_ms().rem_euclid(period);
    myself.send_after(Duration::from_millis(wait as u64 + 1), || {
        SensorSupMsg::SummaryTick
    });
}

async fn deliver(
    myself: &ActorRef<SensorSupMsg>,
    st: &mut SensorSupState,
    sensor: Arc<str>,
    batch: SampleBatch,
) {
    let now = batch.received;
    if !st.sensors.contains_key(&sensor) {
        if st.sensors.len() >= st.ctx.cfg.sensors.max_sensors {
            st.ctx.metrics.reject("sensor_limit");
            return;
        }
        st.sensors.insert(
            sensor.clone(),
            Entry {
                actor: None,
                last_seen: now,
                tracker: RestartTracker::default(),
            },
        );
        spawn(myself, st, sensor.clone()).await;
    }
    let Some(e) = st.sensors.get_mut(&sensor) else {
        return;
    };
    e.last_seen = now;
    let sent = match &e.actor {
        Some(a) => a.cast(SensorMsg::Samples(batch)).is_ok(),
        None => false,
    };
    if !sent {
        st.ctx
            .metrics
            .samples_dropped
            .get_or_create(&ReasonLabel {
                reason: "sensor_restarting",
            })
            .inc();
    }
}

async fn spawn(myself: &ActorRef<SensorSupMsg>, st: &mut SensorSupState, sensor: Arc<str>) {
    let args = SensorArgs {
        sensor: sensor.clone(),
        ctx: st.ctx.clone(),
        ports: st.ports.clone(),
    };
    match Actor::spawn_linked(None, SensorActor, args, myself.get_cell()).await {
        Ok((actor, _)) => {
            st.by_actor.insert(actor.get_id(), sensor.clone());
            if let Some(e) = st.sensors.get_mut(&sensor) {
                e.tracker.started(Instant::now());
                e.actor = Some(actor);
            }
            st.ctx.metrics.sensors_active.set(st.by_actor.len() as i64);
        }
        Err(err) => failed(myself, st, sensor, err.to_string()),
    }
}

fn failed(
    myself: &ActorRef<SensorSupMsg>,
    st: &mut SensorSupState,
    sensor: Arc<str>,
    error: String,
) {
    let policy = &st.ctx.cfg.supervisor;
    let Some(e) = st.sensors.get_mut(&sensor) else {
        return;
    };
    e.actor = None;
    st.ctx.metrics.restart("sensor");
    let verdict = e.tracker.on_failure(policy, Instant::now(), &mut st.rng);
    if let Verdict::Escalate(_) = verdict {
        st.ctx.status.condition(
            Condition::SensorRestartsEscalated,
            Some(format!("sensor {sensor}")),
        );
    }
    warn!(message = "Sensor actor failed; restarting.", %sensor, %error, retry_in_ms = verdict.delay().as_millis() as u64);
    myself.send_after(verdict.delay(), move || SensorSupMsg::Restart(sensor));
}

fn sweep(st: &mut SensorSupState) {
    let idle = st.ctx.cfg.sensors.idle_timeout.get();
    let now = Instant::now();
    let mut stopped = 0usize;
    st.sensors.retain(|_, e| {
        let keep = now.duration_since(e.last_seen) < idle;
        if !keep {
            if let Some(a) = &e.actor {
                a.stop(Some("idle".into()));
                stopped += 1;
            }
        }
        keep
    });
    if stopped > 0 {
        info!(message = "Idle sensors stopped.", count = stopped);
    }
    // Baselines outlive idle sensors so a returning sensor skips its warm-up, but not forever:
    // beyond twice the sensor cap, those of sensors without an actor go.
    let cap = st.ctx.cfg.sensors.max_sensors.saturating_mul(2);
    let mut baselines = st.ctx.baselines.lock();
    if baselines.len() > cap {
        let excess = baselines.len() - cap;
        let victims: Vec<Arc<str>> = baselines
            .keys()
            .filter(|k| !st.sensors.contains_key(*k))
            .take(excess)
            .cloned()
            .collect();
        for k in victims {
            baselines.remove(&k);
        }
    }
    drop(baselines);
    let policy = &st.ctx.cfg.supervisor;
    if st
        .ctx
        .status
        .has_condition(Condition::SensorRestartsEscalated)
        && !st
            .sensors
            .values()
            .any(|e| e.tracker.escalated(policy, now))
    {
        st.ctx
            .status
            .condition(Condition::SensorRestartsEscalated, None);
    }
}
