//! The root supervisor: starts the stages in dependency order, restarts a failed one by
//! policy (one-for-one, or one-for-all when configured), escalates to degraded mode.
//!
//! Design constraints: a stage that fails in `pre_start` is treated like one that crashed: it
//! is retried with backoff, slower and slower, and the gateway runs degraded meanwhile — never
//! a crash loop and never an exit. Stages find each other through [`crate::port::Slot`]s, which
//! are cleared while a stage is down and set again when it is back.

use crate::config::Strategy;
use crate::ctx::Ctx;
use crate::feedback::{self, FeedbackActor, FeedbackPorts, FeedbackShared, Refused};
use crate::http::HttpActor;
use crate::inference::{InferencePool, PoolMsg};
use crate::ingest::IngestActor;
use crate::port::Slot;
use crate::restart::{RestartTracker, Verdict};
use crate::sensor::storm::AlertCap;
use crate::sensor::{SensorPorts, SensorSupMsg, SensorSupervisor};
use crate::status::{Condition, StageState};
use crate::uplink::{Commands, UplinkActor, UplinkMsg};
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// A child of the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Upstream publishing.
    Uplink,
    /// Feedback from the cloud.
    Feedback,
    /// Inference pool.
    Inference,
    /// Sensor supervisor.
    Sensors,
    /// MQTT ingest.
    Ingest,
    /// HTTP endpoint.
    Http,
}

impl Stage {
    /// Start order: consumers before producers.
    pub const ALL: [Stage; 6] = [
        Stage::Uplink,
        Stage::Feedback,
        Stage::Inference,
        Stage::Sensors,
        Stage::Ingest,
        Stage::Http,
    ];

    /// Name in metrics and `/status`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Uplink => "uplink",
            Stage::Feedback => "feedback",
            Stage::Inference => "inference",
            Stage::Sensors => "sensors",
            Stage::Ingest => "ingest",
            Stage::Http => "http",
        }
    }

    fn condition(self) -> Condition {
        Condition::StageEscalated(self.name())
    }
}

/// Messages of the root supervisor.
#[derive(Debug)]
pub enum RootMsg {
    /// Start a stage again after its backoff.
    Restart(Stage),
    /// Clear escalations of stages that stayed up.
    Review,
    /// Stop one stage on purpose (shutdown sequencing).
    StopStage(Stage, RpcReplyPort<()>),
}

/// The root supervisor.
pub struct RootSupervisor;

#[derive(Default)]
struct Child {
    cell: Option<ActorCell>,
    tracker: RestartTracker,
}

/// State built in `pre_start`.
pub struct RootState {
    ctx: Arc<Ctx>,
    wiring: Wiring,
    children: HashMap<Stage, Child>,
    by_actor: HashMap<ActorId, Stage>,
    expected_stop: HashSet<ActorId>,
    stopped: HashSet<Stage>,
    rng: SmallRng,
}

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = Arc<Ctx>;

    async fn pre_start(
        &self,
        myself: ActorRef<RootMsg>,
        ctx: Arc<Ctx>,
    ) -> Result<RootState, ActorProcessingErr> {
        let mut st = RootState {
            wiring: Wiring::new(&ctx),
            ctx,
            children: Stage::ALL.iter().map(|s| (*s, Child::default())).collect(),
            by_actor: HashMap::new(),
            expected_stop: HashSet::new(),
            stopped: HashSet::new(),
            rng: SmallRng::from_os_rng(),
        };
        for s in Stage::ALL {
            start(&myself, &mut st, s).await;
        }
        myself.send_interval(Duration::from_secs(5), || RootMsg::Review);
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<RootMsg>,
        msg: RootMsg,
        st: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RootMsg::Restart(s) => {
                if !st.stopped.contains(&s) && st.children.get(&s).is_some_and(|c| c.cell.is_none())
                {
                    start(&myself, st, s).await;
                }
            }
            RootMsg::Review => review(st),
            RootMsg::StopStage(s, reply) => {
                st.stopped.insert(s);
                if let Some(cell) = st.children.get_mut(&s).and_then(|c| c.cell.take()) {
                    st.expected_stop.insert(cell.get_id());
                    st.wiring.clear(s);
                    let _ = cell
                        .stop_and_wait(Some("shutdown".into()), Some(Duration::from_secs(5)))
                        .await;
                }
                st.ctx.status.stage(s.name(), StageState::Stopped, None);
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RootMsg>,
        evt: SupervisionEvent,
        st: &mut RootState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match evt {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                reason.unwrap_or_else(|| "stopped without a reason".into()),
            ),
            _ => return Ok(()),
        };
        let id = cell.get_id();
        if st.expected_stop.remove(&id) {
            st.by_actor.remove(&id);
            return Ok(());
        }
        let Some(stage) = st.by_actor.remove(&id) else {
            return Ok(());
        };
        if let Some(c) = st.children.get_mut(&stage) {
            c.cell = None;
        }
        failed(&myself, st, stage, why);
        Ok(())
    }
}

/// The stages' addresses and the state some of them share, handed to each stage as its ports
/// when it is spawned. A slot is set while its stage runs and cleared while it restarts.
struct Wiring {
    sensors: Arc<Slot<SensorSupMsg>>,
    inference: Arc<Slot<PoolMsg>>,
    uplink: Arc<Slot<UplinkMsg>>,
    sensor_ports: Arc<SensorPorts>,
    feedback_ports: Arc<FeedbackPorts>,
    commands: Commands,
}

impl Wiring {
    fn new(ctx: &Arc<Ctx>) -> Self {
        let (inference, uplink) = (Arc::new(Slot::default()), Arc::new(Slot::default()));
        let shared = Arc::new(FeedbackShared::new(&ctx.cfg));
        let feedback_ports = Arc::new(FeedbackPorts {
            uplink: Arc::clone(&uplink),
            feedback: Arc::new(Slot::default()),
            shared: Arc::clone(&shared),
        });
        let commands: Commands = {
            let (ctx, ports) = (Arc::clone(ctx), Arc::clone(&feedback_ports));
            Arc::new(move |topic, payload| {
                !matches!(
                    feedback::intake(&ctx, &ports, topic, payload),
                    Err(Refused::UnknownKind)
                )
            })
        };
        Wiring {
            sensors: Arc::new(Slot::default()),
            sensor_ports: Arc::new(SensorPorts {
                inference: Arc::clone(&inference),
                uplink: Arc::clone(&uplink),
                feedback: shared,
                alert_cap: Arc::new(AlertCap::new(&ctx.cfg.alerts)),
            }),
            inference,
            uplink,
            feedback_ports,
            commands,
        }
    }

    /// Empties the slot of `stage` (it is down).
    fn clear(&self, stage: Stage) {
        match stage {
            Stage::Uplink => self.uplink.set(None),
            Stage::Feedback => self.feedback_ports.feedback.set(None),
            Stage::Inference => self.inference.set(None),
            Stage::Sensors => self.sensors.set(None),
            Stage::Ingest | Stage::Http => {}
        }
    }
}

async fn spawn(
    ctx: &Arc<Ctx>,
    w: &Wiring,
    stage: Stage,
    sup: ActorCell,
) -> Result<ActorCell, ActorProcessingErr> {
    let c = ctx.clone();
    Ok(match stage {
        Stage::Uplink => {
            let args = (c, w.commands.clone());
            let (a, _) = Actor::spawn_linked(None, UplinkActor, args, sup).await?;
            w.uplink.set(Some(a.clone()));
            a.get_cell()
        }
        Stage::Feedback => {
            let args = (c, w.feedback_ports.clone());
            let (a, _) = Actor::spawn_linked(None, FeedbackActor, args, sup).await?;
            w.feedback_ports.feedback.set(Some(a.clone()));
            a.get_cell()
        }
        Stage::Inference => {
            let (a, _) = Actor::spawn_linked(None, InferencePool, c, sup).await?;
            w.inference.set(Some(a.clone()));
            a.get_cell()
        }
        Stage::Sensors => {
            let args = (c, w.sensor_ports.clone());
            let (a, _) = Actor::spawn_linked(None, SensorSupervisor, args, sup).await?;
            w.sensors.set(Some(a.clone()));
            a.get_cell()
        }
        Stage::Ingest => Actor::spawn_linked(None, IngestActor, (c, w.sensors.clone()), sup)
            .await?
            .0
            .get_cell(),
        Stage::Http => {
            let args = (c, w.feedback_ports.shared.clone());
            Actor::spawn_linked(None, HttpActor, args, sup)
                .await?
                .0
                .get_cell()
        }
    })
}

async fn start(myself: &ActorRef<RootMsg>, st: &mut RootState, stage: Stage) {
    st.ctx
        .status
        .stage(stage.name(), StageState::Starting, None);
    match spawn(&st.ctx, &st.wiring, stage, myself.get_cell()).await {
        Ok(cell) => {
            st.by_actor.insert(cell.get_id(), stage);
            if let Some(c) = st.children.get_mut(&stage) {
                c.tracker.started(Instant::now());
                c.cell = Some(cell);
            }
            st.ctx.status.stage(stage.name(), StageState::Running, None);
        }
        Err(e) => failed(myself, st, stage, format!("failed to start: {e}")),
    }
}

fn failed(myself: &ActorRef<RootMsg>, st: &mut RootState, stage: Stage, why: String) {
    st.wiring.clear(stage);
    st.ctx.metrics.restart(stage.name());
    let policy = &st.ctx.cfg.supervisor;
    let Some(child) = st.children.get_mut(&stage) else {
        return;
    };
    let verdict = child
        .tracker
        .on_failure(policy, Instant::now(), &mut st.rng);
    let state = match verdict {
        Verdict::Restart(_) => StageState::Restarting,
        Verdict::Escalate(_) => {
            st.ctx
                .status
                .condition(stage.condition(), Some(why.clone()));
            StageState::Escalated
        }
    };
    st.ctx.status.stage(stage.name(), state, Some(why.clone()));
    let delay = verdict.delay();
    if matches!(verdict, Verdict::Escalate(_)) {
        error!(message = "Stage keeps failing; escalated, retrying slowly.", stage = stage.name(), error = %why, retry_in_ms = delay.as_millis() as u64);
    } else {
        warn!(message = "Stage failed; restarting.", stage = stage.name(), error = %why, retry_in_ms = delay.as_millis() as u64);
    }
    myself.send_after(delay, move || RootMsg::Restart(stage));
    if policy.strategy == Strategy::OneForAll {
        for other in Stage::ALL
            .into_iter()
            .filter(|s| *s != stage && !st.stopped.contains(s))
        {
            if let Some(cell) = st.children.get_mut(&other).and_then(|c| c.cell.take()) {
                st.expected_stop.insert(cell.get_id());
                st.wiring.clear(other);
                cell.stop(Some("one_for_all restart".into()));
                st.ctx
                    .status
                    .stage(other.name(), StageState::Restarting, None);
                info!(
                    message = "Restarting sibling (one_for_all).",
                    stage = other.name()
                );
                myself.send_after(delay, move || RootMsg::Restart(other));
            }
        }
    }
}

fn review(st: &mut RootState) {
    let now = Instant::now();
    let policy = &st.ctx.cfg.supervisor;
    for (stage, c) in &st.children {
        if c.cell.is_some() && !c.tracker.escalated(policy, now) {
            st.ctx.status.condition(stage.condition(), None);
        }
    }
}
