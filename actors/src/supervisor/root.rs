//! The root supervisor: starts the stages in dependency order, restarts a failed one by
//! policy (one-for-one, or one-for-all when configured), escalates to degraded mode.
//!
//! Design constraints: a stage that fails in `pre_start` is treated like one that crashed: it
//! is retried with backoff, slower and slower, and the gateway runs degraded meanwhile — never
//! a crash loop and never an exit. Stages find each other through [`crate::port::Slot`]s, which
//! are cleared while a stage is down and set again when it is back.

use crate::ctx::Ctx;
use crate::feedback::{self, FeedbackActor, FeedbackPorts, FeedbackShared, Refused};
use crate::http::HttpActor;
use crate::inference::{InferencePool, PoolMsg};
use crate::ingest::IngestActor;
use crate::port::Slot;
use crate::restart::{ChildKey, Children};
use crate::sensor::storm::AlertCap;
use crate::sensor::{SensorPorts, SensorSupMsg, SensorSupervisor};
use crate::status::{Condition, StageState};
use crate::uplink::{Commands, UplinkActor, UplinkMsg};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

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
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ChildKey for Stage {
    fn kind(&self) -> &'static str {
        self.name()
    }

    fn stage(&self) -> Option<&'static str> {
        Some(self.name())
    }

    fn escalation(&self) -> Option<Condition> {
        Some(Condition::StageEscalated(self.name()))
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

/// State built in `pre_start`.
pub struct RootState {
    ctx: Arc<Ctx>,
    wiring: Wiring,
    children: Children<Stage, ActorCell>,
    /// Stages stopped on purpose (shutdown): never restarted.
    stopped: HashSet<Stage>,
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
        let mut children = Children::new(
            ctx.cfg.supervisor.clone(),
            ctx.status.clone(),
            ctx.metrics.clone(),
        );
        for s in Stage::ALL {
            children.insert(s, ());
        }
        let mut st = RootState {
            wiring: Wiring::new(&ctx),
            ctx,
            children,
            stopped: HashSet::new(),
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
                if !st.stopped.contains(&s) && st.children.is_down(&s) {
                    start(&myself, st, s).await;
                }
            }
            RootMsg::Review => st.children.review(),
            RootMsg::StopStage(s, reply) => {
                st.stopped.insert(s);
                if let Some(cell) = st.children.stop(&s) {
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
        if let Some((stage, why)) = st.children.exit(evt) {
            failed(&myself, st, stage, &why);
        }
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
        Ok(cell) => st.children.started(&stage, cell),
        Err(e) => failed(myself, st, stage, &format!("failed to start: {e}")),
    }
}

/// Reports the failure of `stage` and schedules its restart (and, under `one_for_all`, its
/// siblings'), emptying the slots of every stage that is now down.
fn failed(myself: &ActorRef<RootMsg>, st: &mut RootState, stage: Stage, why: &str) {
    for r in st.children.failed(&stage, why) {
        st.wiring.clear(r.key);
        let key = r.key;
        myself.send_after(r.delay, move || RootMsg::Restart(key));
    }
}
