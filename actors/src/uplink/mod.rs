//! The uplink: commits outbound messages (ids, seq), publishes them at QoS 1 to the upstream
//! broker, forgets them only on their PUBACK, and keeps the retained `status` topic current.
//!
//! Design constraints: `publish()` returning Ok only means "queued locally", so a record
//! leaves the outbox only when the PUBACK for its packet id arrives (packet ids are learnt
//! from rumqttc's `Outgoing::Publish` events, which follow request order within a session).
//! Each session gets a fresh client and event loop: requests of a dead session cannot leak
//! into the next, and every unacknowledged record is resent in seq order after a reconnect.
//! Reconnects back off exponentially with jitter; a session that is connected but gets no
//! PUBACK for `ack_timeout` while records are in flight is torn down and rebuilt. At most
//! `inflight` records await a PUBACK at once.

pub mod outbox;

use crate::config::{check, ConfigError};
use crate::ctx::Ctx;
use crate::duration::Dur;
use crate::metrics::{ClassLabel, ReasonLabel};
use crate::mqtt::{self, LinkEvent};
use crate::status::{now_ms, UPLINK_DOWN};
use crate::supervisor::policy::jittered;
use outbox::MemoryOutbox;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rand::Rng;
use rumqttc::{AsyncClient, Event, LastWill, Outgoing, Packet, QoS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// `[uplink]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UplinkConfig {
    /// The upstream broker.
    pub url: String,
    /// First topic level of everything published.
    pub prefix: String,
    /// Records awaiting a PUBACK at once.
    pub inflight: usize,
    /// Records held in memory awaiting acknowledgement before eviction by class.
    pub memory_backlog: usize,
    /// A connected session with records in flight and no PUBACK for this long is rebuilt.
    pub ack_timeout: Dur,
    /// First reconnect delay (doubles per failure, with jitter).
    pub reconnect_initial: Dur,
    /// Longest reconnect delay.
    pub reconnect_max: Dur,
    /// MQTT keep-alive of the uplink session.
    pub keep_alive: Dur,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            prefix: "edgegw".into(),
            inflight: 100,
            memory_backlog: 100_000,
            ack_timeout: Dur::secs(30),
            reconnect_initial: Dur::ms(200),
            reconnect_max: Dur::secs(15),
            keep_alive: Dur::secs(30),
        }
    }
}

impl UplinkConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        mqtt::parse_url(&self.url).map_err(|r| ConfigError::new("uplink.url", r))?;
        check(
            !self.prefix.is_empty() && !self.prefix.contains(['+', '#']),
            "uplink.prefix",
            "must be non-empty and free of '+' and '#'",
        )?;
        check(
            (1..=65_000).contains(&self.inflight),
            "uplink.inflight",
            "must be between 1 and 65000",
        )?;
        check(
            self.memory_backlog >= self.inflight,
            "uplink.memory_backlog",
            "must be at least uplink.inflight",
        )?;
        check(
            self.ack_timeout.get() >= Duration::from_secs(1),
            "uplink.ack_timeout",
            "must be at least 1s",
        )?;
        check(
            !self.reconnect_initial.get().is_zero(),
            "uplink.reconnect_initial",
            "must be greater than 0",
        )?;
        check(
            self.reconnect_max >= self.reconnect_initial,
            "uplink.reconnect_max",
            "must be at least uplink.reconnect_initial",
        )?;
        check(
            self.keep_alive.get() >= Duration::from_secs(1),
            "uplink.keep_alive",
            "must be at least 1s",
        )
    }
}

/// Outbound message class: topic, QoS and eviction order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// One anomaly decision.
    Alert = 0,
    /// A per-sensor period summary.
    Summary = 1,
    /// A raw troubleshooting window.
    Raw = 2,
}

impl Class {
    /// Metric label and topic segment stem.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Alert => "alert",
            Class::Summary => "summary",
            Class::Raw => "raw",
        }
    }
    fn topic(self) -> &'static str {
        match self {
            Class::Alert => "alerts",
            Class::Summary => "summaries",
            Class::Raw => "raw",
        }
    }
}

/// A message to commit and send upstream; the uplink adds `id`, `seq`, `ts`, `trace_id` and
/// `sensor` to `body`.
#[derive(Debug)]
pub struct Outbound {
    /// Class.
    pub class: Class,
    /// Sensor id.
    pub sensor: Arc<str>,
    /// Event time, ms.
    pub ts: i64,
    /// Class-specific fields.
    pub body: Map<String, Value>,
    /// When it was produced, ms.
    pub created: i64,
}

/// Messages of the uplink actor.
#[derive(Debug)]
pub enum UplinkMsg {
    /// Commit and send.
    Publish(Box<Outbound>),
    /// Something happened in session `gen`.
    Link(u64, LinkEvent),
    /// Start session `gen` (after a backoff).
    Connect(u64),
    /// Watchdog and status refresh.
    Tick,
}

/// The uplink actor.
pub struct UplinkActor;

/// State built in `pre_start`.
pub struct UplinkState {
    ctx: Arc<Ctx>,
    outbox: MemoryOutbox,
    session: Option<Session>,
    gen: u64,
    delay: Duration,
    last_status: Option<(String, Vec<String>)>,
}

struct Session {
    client: AsyncClient,
    task: JoinHandle<()>,
    connected: bool,
    /// Seqs handed to rumqttc whose packet id is not known yet (0 = a status publish).
    unnumbered: VecDeque<u64>,
    /// Packet id → seq of records awaiting their PUBACK.
    awaiting: HashMap<u16, u64>,
    /// Last PUBACK (or connect) time, for the watchdog.
    last_progress: Instant,
}

impl Actor for UplinkActor {
    type Msg = UplinkMsg;
    type State = UplinkState;
    type Arguments = Arc<Ctx>;

    async fn pre_start(
        &self,
        myself: ActorRef<UplinkMsg>,
        ctx: Arc<Ctx>,
    ) -> Result<UplinkState, ActorProcessingErr> {
        if ctx.faults.start_fails("uplink") {
            return Err("injected fault: uplink cannot start".into());
        }
        mqtt::parse_url(&ctx.cfg.uplink.url)?;
        ctx.status.condition(UPLINK_DOWN, Some("connecting".into()));
        let mut st = UplinkState {
            outbox: MemoryOutbox::new(ctx.cfg.uplink.memory_backlog),
            delay: ctx.cfg.uplink.reconnect_initial.get(),
            ctx,
            session: None,
            gen: 0,
            last_status: None,
        };
        connect(&myself, &mut st, Duration::ZERO)?;
        myself.send_interval(Duration::from_secs(1), || UplinkMsg::Tick);
        Ok(st)
    }

    async fn post_stop(
        &self,
        _: ActorRef<UplinkMsg>,
        st: &mut UplinkState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(s) = st.session.take() {
            let _ = s.client.try_disconnect();
            // Give the event loop a moment to send DISCONNECT, then stop it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.task.abort();
        }
        st.ctx.metrics.uplink_connected.set(0);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<UplinkMsg>,
        msg: UplinkMsg,
        st: &mut UplinkState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            UplinkMsg::Publish(out) => {
                st.ctx.faults.check("uplink").await;
                commit(st, *out);
                pump(st);
            }
            UplinkMsg::Link(gen, ev) if gen == st.gen => on_link(&myself, st, ev)?,
            UplinkMsg::Link(..) => {}
            UplinkMsg::Connect(gen) if gen == st.gen && st.session.is_none() => {
                connect(&myself, st, Duration::ZERO)?
            }
            UplinkMsg::Connect(_) => {}
            UplinkMsg::Tick => tick(&myself, st)?,
        }
        update_gauges(st);
        Ok(())
    }
}

fn topic(ctx: &Ctx, rest: &str) -> String {
    format!("{}/{}/{}", ctx.cfg.uplink.prefix, ctx.cfg.gateway.id, rest)
}

/// The retained status payload for the current mode.
pub fn status_payload(ctx: &Ctx, state: &str, reasons: &[String], since: i64) -> Vec<u8> {
    let scorer = ctx.scorer();
    json!({
        "state": state,
        "since": since,
        "reasons": reasons,
        "version": env!("CARGO_PKG_VERSION"),
        "model": {"name": scorer.name(), "version": scorer.version(), "fallback": scorer.is_fallback()},
    })
    .to_string()
    .into_bytes()
}

fn connect(
    myself: &ActorRef<UplinkMsg>,
    st: &mut UplinkState,
    delay: Duration,
) -> Result<(), ActorProcessingErr> {
    let cfg = &st.ctx.cfg.uplink;
    let url = mqtt::parse_url(&cfg.url)?;
    st.gen += 1;
    let gen = st.gen;
    let client_id = format!(
        "edgegw-{}-uplink-{}",
        st.ctx.cfg.gateway.id,
        std::process::id()
    );
    let mut opts = mqtt::options(&url, &client_id, cfg.keep_alive.get(), 4 << 20);
    opts.set_inflight(cfg.inflight.min(u16::MAX as usize) as u16);
    let will = status_payload(&st.ctx, "offline", &["last will".to_string()], now_ms());
    opts.set_last_will(LastWill::new(
        topic(&st.ctx, "status"),
        will,
        QoS::AtLeastOnce,
        true,
    ));
    let (client, el) = mqtt::client(opts, cfg.inflight + 16);
    let me = myself.clone();
    let task = mqtt::spawn_session(el, delay, move |ev| {
        me.cast(UplinkMsg::Link(gen, ev)).is_ok()
    });
    st.session = Some(Session {
        client,
        task,
        connected: false,
        unnumbered: VecDeque::new(),
        awaiting: HashMap::new(),
        last_progress: Instant::now(),
    });
    Ok(())
}

fn drop_session(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState, error: &str) {
    if let Some(s) = st.session.take() {
        s.task.abort();
        if s.connected {
            warn!(message = "Uplink disconnected.", %error, backlog = st.outbox.len());
        }
    }
    st.outbox.rewind();
    st.ctx.metrics.uplink_connected.set(0);
    st.ctx
        .status
        .condition(UPLINK_DOWN, Some(error.to_string()));
    let cfg = &st.ctx.cfg.uplink;
    let wait = jittered(st.delay, 0.25, &mut rand::rng());
    st.delay = (st.delay * 2).min(cfg.reconnect_max.get());
    st.gen += 1;
    let gen = st.gen;
    myself.send_after(wait, move || UplinkMsg::Connect(gen));
}

fn on_link(
    myself: &ActorRef<UplinkMsg>,
    st: &mut UplinkState,
    ev: LinkEvent,
) -> Result<(), ActorProcessingErr> {
    let Some(s) = st.session.as_mut() else {
        return Ok(());
    };
    match ev {
        LinkEvent::Event(Event::Incoming(Packet::ConnAck(_))) => {
            s.connected = true;
            s.last_progress = Instant::now();
            st.delay = st.ctx.cfg.uplink.reconnect_initial.get();
            st.ctx.metrics.uplink_connected.set(1);
            st.ctx.status.condition(UPLINK_DOWN, None);
            st.last_status = None;
            info!(message = "Uplink connected.", url = %st.ctx.cfg.uplink.url, backlog = st.outbox.len());
            publish_status(st);
            pump(st);
        }
        LinkEvent::Event(Event::Outgoing(Outgoing::Publish(pkid))) => {
            if let Some(seq) = s.unnumbered.pop_front() {
                if seq != 0 {
                    s.awaiting.insert(pkid, seq);
                }
            }
        }
        LinkEvent::Event(Event::Incoming(Packet::PubAck(ack))) => {
            s.last_progress = Instant::now();
            if let Some(seq) = s.awaiting.remove(&ack.pkid) {
                st.outbox.ack(seq);
            }
            pump(st);
        }
        LinkEvent::Event(_) => {}
        LinkEvent::Down { error, .. } => drop_session(myself, st, &error),
    }
    Ok(())
}

fn commit(st: &mut UplinkState, out: Outbound) {
    let ctx = &st.ctx;
    let class = out.class;
    let t = topic(ctx, &format!("{}/{}", class.topic(), out.sensor));
    let gw = &ctx.cfg.gateway.id;
    let epoch = ctx.epoch;
    let mut body = out.body;
    let (_, evicted) = st.outbox.commit(class, t, |seq| {
        body.insert("id".into(), json!(format!("{gw}:{epoch}:{seq}")));
        body.insert("seq".into(), json!(seq));
        body.insert("ts".into(), json!(out.ts));
        body.insert("trace_id".into(), json!(trace_id()));
        body.insert("sensor".into(), json!(&*out.sensor));
        Value::Object(body).to_string().into_bytes()
    });
    let label = ClassLabel {
        class: class.as_str(),
    };
    ctx.metrics.uplink_messages.get_or_create(&label).inc();
    for r in evicted {
        ctx.metrics
            .store_evicted
            .get_or_create(&ClassLabel {
                class: r.class.as_str(),
            })
            .inc();
    }
}

/// A fresh W3C trace id (32 hex digits, never all zero).
fn trace_id() -> String {
    let v: u128 = rand::rng().random::<u128>() | 1;
    format!("{v:032x}")
}

fn pump(st: &mut UplinkState) {
    let limit = st.ctx.cfg.uplink.inflight;
    let Some(s) = st.session.as_mut() else { return };
    if !s.connected {
        return;
    }
    while s.unnumbered.len() + s.awaiting.len() < limit {
        let Some(r) = st.outbox.next_unsent() else {
            break;
        };
        let len = r.payload.len() as u64;
        match s
            .client
            .try_publish(r.topic, QoS::AtLeastOnce, false, r.payload)
        {
            Ok(()) => {
                s.unnumbered.push_back(r.seq);
                st.ctx
                    .metrics
                    .uplink_bytes
                    .get_or_create(&ClassLabel {
                        class: r.class.as_str(),
                    })
                    .inc_by(len);
            }
            Err(_) => {
                // The request queue is full: the session is stuck; the watchdog rebuilds it and
                // the record is sent again then.
                st.ctx
                    .metrics
                    .uplink_dropped
                    .get_or_create(&ReasonLabel {
                        reason: "queue_full",
                    })
                    .inc();
                st.outbox.rewind();
                break;
            }
        }
    }
}

fn publish_status(st: &mut UplinkState) {
    let (mode, since, reasons) = st.ctx.status.mode();
    let key = (mode.as_str().to_string(), reasons.clone());
    if st.last_status.as_ref() == Some(&key) {
        return;
    }
    let Some(s) = st.session.as_mut().filter(|s| s.connected) else {
        return;
    };
    let payload = status_payload(&st.ctx, mode.as_str(), &reasons, since);
    if s.client
        .try_publish(topic(&st.ctx, "status"), QoS::AtLeastOnce, true, payload)
        .is_ok()
    {
        s.unnumbered.push_back(0);
        st.last_status = Some(key);
    }
}

fn tick(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState) -> Result<(), ActorProcessingErr> {
    let timeout = st.ctx.cfg.uplink.ack_timeout.get();
    let stuck = st.session.as_ref().is_some_and(|s| {
        s.connected
            && !(s.unnumbered.is_empty() && s.awaiting.is_empty())
            && s.last_progress.elapsed() > timeout
    });
    if stuck {
        drop_session(
            myself,
            st,
            "no PUBACK within uplink.ack_timeout; session rebuilt",
        );
        return Ok(());
    }
    publish_status(st);
    pump(st);
    Ok(())
}

fn update_gauges(st: &UplinkState) {
    let m = &st.ctx.metrics;
    for (c, n) in st.outbox.backlog() {
        m.store_backlog
            .get_or_create(&ClassLabel { class: c.as_str() })
            .set(n as i64);
    }
    m.store_bytes.set(st.outbox.bytes() as i64);
}
