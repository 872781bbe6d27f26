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
use crate::restart::{ChildKey, Children};
use crate::status::now_ms;
use crate::status::Condition;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::info;

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

/// A sensor as a supervised child: its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SensorKey(Arc<str>);

impl std::fmt::Display for SensorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for SensorKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl ChildKey for SensorKey {
    fn kind(&self) -> &'static str {
        "sensor"
    }

    fn escalation(&self) -> Option<Condition> {
        Some(Condition::SensorRestartsEscalated)
    }

    fn detail(&self, _why: &str) -> String {
        format!("sensor {}", self.0)
    }
}

/// State built in `pre_start`.
pub struct SensorSupState {
    ctx: Arc<Ctx>,
    ports: Arc<SensorPorts>,
    /// The sensors, with when each last delivered samples.
    sensors: Children<SensorKey, ActorRef<SensorMsg>, Instant>,
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
        let sensors = Children::new(
            ctx.cfg.supervisor.clone(),
            ctx.status.clone(),
            ctx.metrics.clone(),
        );
        Ok(SensorSupState {
            ctx,
            ports,
            sensors,
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
                for (_, e) in st.sensors.iter() {
                    if let Some(a) = e.handle() {
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
                let key = SensorKey(sensor);
                if st.sensors.is_down(&key) {
                    spawn(&myself, st, key).await;
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
        if let Some((sensor, why)) = st.sensors.exit(evt) {
            failed(&myself, st, &sensor, &why);
        }
        st.ctx
            .metrics
            .sensors_active
            .set(st.sensors.running() as i64);
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
    if !st.sensors.contains(&*sensor) {
        if st.sensors.len() >= st.ctx.cfg.sensors.max_sensors {
            st.ctx.metrics.reject("sensor_limit");
            return;
        }
        let key = SensorKey(sensor.clone());
        st.sensors.insert(key.clone(), now);
        spawn(myself, st, key).await;
    }
    let Some(e) = st.sensors.get_mut(&*sensor) else {
        return;
    };
    e.data = now;
    let sent = match e.handle() {
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

async fn spawn(myself: &ActorRef<SensorSupMsg>, st: &mut SensorSupState, sensor: SensorKey) {
    let args = SensorArgs {
        sensor: sensor.0.clone(),
        ctx: st.ctx.clone(),
        ports: st.ports.clone(),
    };
    match Actor::spawn_linked(None, SensorActor, args, myself.get_cell()).await {
        Ok((actor, _)) => {
            st.sensors.started(&sensor, actor);
            st.ctx
                .metrics
                .sensors_active
                .set(st.sensors.running() as i64);
        }
        Err(err) => failed(myself, st, &sensor, &err.to_string()),
    }
}

/// Reports the failure of `sensor` and schedules its restart (and, under `one_for_all`, every
/// other sensor's).
fn failed(myself: &ActorRef<SensorSupMsg>, st: &mut SensorSupState, sensor: &SensorKey, why: &str) {
    for r in st.sensors.failed(sensor, why) {
        let id = r.key.0;
        myself.send_after(r.delay, move || SensorSupMsg::Restart(id));
    }
    st.ctx
        .metrics
        .sensors_active
        .set(st.sensors.running() as i64);
}

fn sweep(st: &mut SensorSupState) {
    let idle = st.ctx.cfg.sensors.idle_timeout.get();
    let now = Instant::now();
    let idle_actors = st
        .sensors
        .retain(|_, last_seen| now.duration_since(*last_seen) < idle);
    for a in &idle_actors {
        a.stop(Some("idle".into()));
    }
    if !idle_actors.is_empty() {
        info!(message = "Idle sensors stopped.", count = idle_actors.len());
        st.ctx
            .metrics
            .sensors_active
            .set(st.sensors.running() as i64);
    }
    // Baselines outlive idle sensors so a returning sensor skips its warm-up, but not forever:
    // beyond twice the sensor cap, those of sensors without an actor go.
    let cap = st.ctx.cfg.sensors.max_sensors.saturating_mul(2);
    let mut baselines = st.ctx.baselines.lock();
    if baselines.len() > cap {
        let excess = baselines.len() - cap;
        let victims: Vec<Arc<str>> = baselines
            .keys()
            .filter(|k| !st.sensors.contains::<str>(k))
            .take(excess)
            .cloned()
            .collect();
        for k in victims {
            baselines.remove(&k);
        }
    }
    drop(baselines);
    st.sensors.review();
}

#[cfg(all(test, feature = "fault-injection"))]
mod tests;
