//! Ingest: one MQTT connection to the local broker, payload parsing, routing to sensors.
//!
//! Design constraints: the rumqttc event loop is polled in its own task and casts every
//! packet in, so the mailbox is never blocked by the network. Every rejected message is
//! counted by reason, kept as a dead letter and logged at a limited rate; none stops the
//! gateway. Subscriptions are renewed on every ConnAck because sessions are clean.

pub mod account;
pub mod binary;
pub mod encode;
pub mod parse;

use crate::ctx::Ctx;
use crate::flow::Permit;
use crate::mqtt::{self, LinkEvent, ReconnectBackoff};
use crate::port::Slot;
use crate::ratelog::RateLog;
use crate::sensor::{SampleBatch, SensorSupMsg};
use crate::status::Condition;
use crate::status::{now_ms, StageState};
use parse::{Limits, TopicFilter};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Messages of the ingest actor.
#[derive(Debug)]
pub enum IngestMsg {
    /// Something happened on the MQTT connection; a publish carries its share of the
    /// in-flight budget.
    Link(LinkEvent, Instant, Permit),
}

/// The ingest actor.
pub struct IngestActor;

/// State built in `pre_start`.
pub struct IngestState {
    ctx: Arc<Ctx>,
    /// The sensor stage, where parsed samples go.
    sensors: Arc<Slot<SensorSupMsg>>,
    client: AsyncClient,
    poller: JoinHandle<()>,
    filters: Vec<TopicFilter>,
    limits: Limits,
    log: RateLog,
    connected: bool,
    /// Reused parse buffer: a message costs one exact-size allocation, not one per sample.
    scratch: Vec<crate::sensor::window::Sample>,
}

impl Actor for IngestActor {
    type Msg = IngestMsg;
    type State = IngestState;
    type Arguments = (Arc<Ctx>, Arc<Slot<SensorSupMsg>>);

    async fn pre_start(
        &self,
        myself: ActorRef<IngestMsg>,
        (ctx, sensors): (Arc<Ctx>, Arc<Slot<SensorSupMsg>>),
    ) -> Result<IngestState, ActorProcessingErr> {
        if ctx.faults.start_fails("ingest") {
            return Err("injected fault: ingest cannot start".into());
        }
        let cfg = &ctx.cfg.ingest;
        let link = Arc::new(cfg.link().load()?);
        link.warn_if_expiring(crate::status::now_ms() / 1000);
        let filters = cfg
            .topics
            .iter()
            .map(|t| TopicFilter::new(t))
            .collect::<Result<Vec<_>, _>>()?;
        let client_id = format!(
            "edgegw-{}-ingest-{}",
            ctx.cfg.gateway.id,
            std::process::id()
        );
        // Read packets as large as a broker may carry (the embedded broker's limit), not just
        // `ingest.max_payload_bytes`: a payload over our limit must be rejected and counted as
        // `oversize`, not break the connection (a clean session then drops every message the
        // broker had queued for us).
        let max_packet = cfg.max_payload_bytes.max(ctx.cfg.broker.max_payload_bytes) + 1024;
        let opts = mqtt::link_options(&link, &client_id, cfg.keep_alive.get(), max_packet);
        let (client, el) = mqtt::client(opts, 64);
        let me = myself.clone();
        let gate = ctx.ingest_gate.clone();
        let poller = mqtt::spawn_event_loop(
            el,
            link,
            ReconnectBackoff::default(),
            Some(ctx.ingest_gate.clone()),
            move |ev| {
                let permit = match &ev {
                    LinkEvent::Event(Event::Incoming(Packet::Publish(p))) => {
                        gate.acquire(p.payload.len())
                    }
                    _ => Permit::default(),
                };
                me.cast(IngestMsg::Link(ev, Instant::now(), permit)).is_ok()
            },
        );
        ctx.status.stage("ingest", StageState::Running, None);
        Ok(IngestState {
            sensors,
            limits: Limits {
                max_payload_bytes: cfg.max_payload_bytes,
                max_batch_samples: cfg.max_batch_samples,
                max_future_ms: cfg.max_clock_skew.get().as_millis() as i64,
            },
            ctx,
            client,
            poller,
            filters,
            log: RateLog::new(Duration::from_secs(10)),
            connected: false,
            scratch: Vec::new(),
        })
    }

    async fn post_stop(
        &self,
        _: ActorRef<IngestMsg>,
        st: &mut IngestState,
    ) -> Result<(), ActorProcessingErr> {
        st.poller.abort();
        let _ = st.client.try_disconnect();
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<IngestMsg>,
        msg: IngestMsg,
        st: &mut IngestState,
    ) -> Result<(), ActorProcessingErr> {
        st.ctx.faults.check("ingest").await;
        match msg {
            IngestMsg::Link(LinkEvent::Event(Event::Incoming(Packet::Publish(p))), at, permit) => {
                on_publish(st, &p.topic, &p.payload, at, permit);
            }
            IngestMsg::Link(LinkEvent::Event(Event::Incoming(Packet::ConnAck(_))), _, _) => {
                let qos = if st.ctx.cfg.ingest.qos == 0 {
                    QoS::AtMostOnce
                } else {
                    QoS::AtLeastOnce
                };
                for t in &st.ctx.cfg.ingest.topics {
                    // Queued locally; a full queue means the link is already failing and the
                    // next ConnAck subscribes again.
                    let _ = st.client.try_subscribe(t.clone(), qos);
                }
                st.connected = true;
                st.ctx.status.condition(Condition::IngestDown, None);
                info!(message = "Ingest connected.", url = %st.ctx.cfg.ingest.url);
            }
            IngestMsg::Link(LinkEvent::Down { error, retry_in }, at, _) => {
                st.ctx
                    .status
                    .condition(Condition::IngestDown, Some(error.clone()));
                if st.connected || st.log.allow("ingest_down", at).is_some() {
                    warn!(message = "Ingest broker unreachable.", %error, retry_in_ms = retry_in.as_millis() as u64);
                }
                st.connected = false;
            }
            IngestMsg::Link(LinkEvent::Event(_), _, _) => {}
        }
        Ok(())
    }
}

fn on_publish(
    st: &mut IngestState,
    topic: &str,
    payload: &[u8],
    received: Instant,
    permit: Permit,
) {
    let ctx = &st.ctx;
    ctx.metrics.ingest_messages.inc();
    ctx.metrics.ingest_bytes.inc_by(payload.len() as u64);
    ctx.metrics
        .ingest_inflight_bytes
        .set(ctx.ingest_gate.used() as i64);
    let parsed = parse::sensor_of(&st.filters, topic).and_then(|sensor| {
        parse::parse(payload, now_ms(), &st.limits, &mut st.scratch).map(|()| sensor)
    });
    match parsed {
        Ok(sensor) => {
            let samples = st.scratch.as_slice().to_vec();
            let msg = SensorSupMsg::Deliver {
                sensor: sensor.into(),
                batch: SampleBatch {
                    samples,
                    received,
                    permit,
                },
            };
            if !st.sensors.cast(msg) {
                ctx.metrics
                    .samples_dropped
                    .get_or_create(&crate::metrics::ReasonLabel {
                        reason: "sensors_restarting",
                    })
                    .inc();
            }
        }
        Err(r) => {
            let code = r.code();
            ctx.metrics.reject(code);
            ctx.dead_letter(topic, code, r.to_string(), payload);
            if let Some(suppressed) = st.log.allow(code, received) {
                warn!(message = "Ingest message rejected.", reason = code, %topic, error = %r, suppressed);
            }
        }
    }
}
