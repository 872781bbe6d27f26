//! The uplink: commits outbound messages to the store (ids, seq), publishes them at QoS 1 to
//! the upstream broker, deletes each from the store only on its PUBACK, and keeps the
//! retained `status` topic current.
//!
//! Design constraints:
//! - **The store is the truth.** A message is inserted into the store, becomes *committed*
//!   when a flush covering it completes (group commit: one `flush_async` at a time, off the
//!   actor, covering every insert before it), and only committed messages are published.
//!   Inserts are grouped too: a received message waits in `pending` for the `Commit` the
//!   first of them queued behind itself, so everything that arrived meanwhile is inserted as
//!   one group (one sled batch, one high-water write; at most `commit::MAX_GROUP`), seqs in
//!   arrival order. A stop commits what is pending; a crash loses it, as it loses the mailbox.
//! - **Delete on PUBACK only.** `publish()` returning Ok means "queued locally"; packet ids are
//!   learnt from rumqttc's `Outgoing::Publish` events (in request order within a session) and
//!   matched to PUBACKs. Each session gets a fresh client and event loop, so requests queued
//!   for a dead session never leak into the next and break that matching.
//! - **Resend after reconnect.** Everything not acknowledged is still in the store; a new
//!   session starts two lanes: *live* (messages committed during this session, sent at once)
//!   and *backlog* (everything older, in seq order, paced by `replay_rate` so a long outage
//!   drains fast without starving live traffic or flooding the uplink).
//! - Reconnects back off exponentially with jitter; a connected session with messages in
//!   flight and no PUBACK for `ack_timeout` is torn down and rebuilt (watchdog). At most
//!   `inflight` messages await a PUBACK at once.
//! - A traced alert (see [`crate::telemetry`]) carries its trace id in `trace_id`; its
//!   `store.commit` span runs from its commit to the flush covering it, its `uplink.publish`
//!   span from its publish to its PUBACK, both kept in a bounded map ([`InFlight`]). Every
//!   other message gets a fresh random trace id. Each committed alert is logged with its
//!   `trace_id`, and so is every other line about that message ([`commit`]).
//! - **Feedback intake only.** The session subscribes `feedback/+`; each feedback message goes
//!   to the [`Commands`] sink the uplink was given at spawn, which classifies and rate-limits
//!   it (no I/O, no waiting) and, if admitted, hands it to the feedback stage, which applies it
//!   (a `raw-request` answer comes back here as an ordinary [`UplinkMsg::Publish`]).
//!
//! By job: `session.rs` (connect, link events, loss, reconnect backoff, watchdog), `acks.rs`
//! (PUBACK matching), `lanes.rs` (live and backlog lanes, pacing), `commit.rs` (group commit and flush), `recovery.rs` (the
//! store closed and reopened), `status_topic.rs` (the retained status); this file holds the
//! actor, its state and its housekeeping tick.

use crate::ctx::Ctx;
use crate::metrics::{ClassLabel, ReasonLabel};
use crate::mqtt::{self, LinkEvent};
use crate::restart::jittered;
use crate::status::{now_ms, Condition};
use crate::telemetry::InFlight;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rumqttc::{AsyncClient, Event, LastWill, Outgoing, Packet, QoS};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tracing::{info, warn};

mod acks;
mod commit;
mod lanes;
mod recovery;
mod session;
mod status_topic;

use crate::outbound::{Class, Outbound};
pub(crate) use commit::store_replaced;
pub use commit::{commit_message, commit_traced};
use lanes::{backlog, evicted, flush, pump};
pub use recovery::Reopened;
use session::{connect, drop_session, on_link, Redial, Session};
use status_topic::publish_status;
pub use status_topic::status_payload;

/// Topic (under the gateway's prefix) filter of every feedback kind.
pub const FEEDBACK_FILTER: &str = "feedback/+";

/// Where the uplink hands what arrives on its feedback subscription (topic, payload): `false`
/// when the kind is unknown (the uplink logs it). Runs on the uplink's mailbox: must not block.
pub type Commands = Arc<dyn Fn(&str, bytes::Bytes) -> bool + Send + Sync>;

/// Messages of the uplink actor.
#[derive(Debug)]
pub enum UplinkMsg {
    /// Commit and send. Received messages wait for the next [`UplinkMsg::Commit`], so
    /// everything queued in the mailbox by then is committed as one group.
    Publish(Box<Outbound>),
    /// Commit the received messages as one group (queued behind the `Publish` that found no
    /// group waiting, so it covers every `Publish` queued before it).
    Commit,
    /// Something happened in session `gen`.
    Link(u64, LinkEvent),
    /// Start session `gen` (after a backoff).
    Connect(u64),
    /// A flush covering every seq up to `upto` finished (or failed).
    Flushed {
        /// Which opening of the store it ran on (results from a closed one are ignored).
        store_gen: u64,
        /// Highest seq the flush covers.
        upto: u64,
        /// The error, if it failed.
        error: Option<crate::store::StoreError>,
    },
    /// Send more (the replay pacing has room again).
    Pump,
    /// Watchdog, store check, status refresh.
    Tick,
    /// Try to reopen the closed store.
    Reopen,
    /// A reopen attempt finished.
    Reopened(Box<Reopened>),
    /// The store's periodic upkeep finished (it runs on a blocking thread).
    Housekept(Box<crate::store::Housekeeping>),
}

/// The uplink actor.
pub struct UplinkActor;

/// State built in `pre_start`.
pub struct UplinkState {
    ctx: Arc<Ctx>,
    /// The upstream broker: address, TLS, login (files read once, at start).
    link: Arc<crate::config::ClientLink>,
    commands: Commands,
    session: Option<Session>,
    gen: u64,
    /// The delay before the next connection attempt.
    redial: Redial,
    last_status: Option<(String, Vec<String>, [u64; 3])>,
    /// Messages received and not committed yet: the next group (see [`commit`]).
    pending: Vec<Outbound>,
    /// A [`UplinkMsg::Commit`] is queued for `pending`.
    commit_queued: bool,
    /// Highest seq inserted into the store.
    inserted: u64,
    /// Highest seq covered by a completed flush: only these may be sent.
    durable: u64,
    /// A flush is running.
    flushing: bool,
    /// Bumped at each reopen of the store.
    store_gen: u64,
    /// Set while the store is closed after a failure.
    recovery: Option<recovery::Recovery>,
    /// Delay before the next reopen attempt.
    reopen_delay: Duration,
    /// Limits the "message dropped" warnings while the store is closed.
    droplog: crate::ratelog::RateLog,
    replay: DefaultDirectRateLimiter,
    pump_scheduled: bool,
    last_check: Instant,
    /// The store's upkeep is running on a blocking thread.
    housekeeping: bool,
    /// Backlog messages sent since the last tick, for the drain-rate gauge.
    replayed: u64,
    last_tick: Instant,
    /// Traced records between commit and PUBACK, for their last two spans.
    traced: InFlight,
}

/// Traced records followed at once (beyond, the oldest are forgotten and counted).
const TRACED_RECORDS: usize = 1024;

impl Actor for UplinkActor {
    type Msg = UplinkMsg;
    type State = UplinkState;
    type Arguments = (Arc<Ctx>, Commands);

    async fn pre_start(
        &self,
        myself: ActorRef<UplinkMsg>,
        (ctx, commands): (Arc<Ctx>, Commands),
    ) -> Result<UplinkState, ActorProcessingErr> {
        if ctx.faults.start_fails("uplink") {
            return Err("injected fault: uplink cannot start".into());
        }
        let link = Arc::new(ctx.cfg.uplink.link().load()?);
        link.warn_if_expiring(crate::status::now_ms() / 1000);
        ctx.status
            .condition(Condition::UplinkDown, Some("connecting".into()));
        let cfg = &ctx.cfg.uplink;
        let rate = NonZeroU32::new(cfg.replay_rate).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(cfg.replay_burst).unwrap_or(NonZeroU32::MIN);
        // A previous uplink may have inserted records it did not live to flush: flush before
        // treating everything in the store as committed, so nothing is sent that a crash could
        // still take back (and whose seq could then be reassigned).
        let mut failed = None;
        let mut durable = 0;
        if let Some(store) = ctx.store.get() {
            match store.flush_async().await {
                Ok(()) => durable = store.next_seq() - 1,
                Err(e) => failed = Some(e),
            }
        }
        let mut st = UplinkState {
            link,
            commands,
            redial: Redial::new(cfg.reconnect_initial.get(), cfg.reconnect_max.get()),
            replay: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            traced: InFlight::new(ctx.traces.clone(), TRACED_RECORDS),
            ctx,
            session: None,
            gen: 0,
            last_status: None,
            pending: Vec::new(),
            commit_queued: false,
            inserted: durable,
            durable,
            flushing: false,
            store_gen: 0,
            recovery: None,
            reopen_delay: recovery::initial_delay(),
            droplog: crate::ratelog::RateLog::new(Duration::from_secs(10)),
            pump_scheduled: false,
            last_check: Instant::now(),
            housekeeping: false,
            replayed: 0,
            last_tick: Instant::now(),
        };
        match failed {
            Some(e) => recovery::store_failed(&myself, &mut st, "flush", &e),
            None if st.ctx.store.get().is_none() => recovery::start_closed(&myself, &mut st),
            None => {}
        }
        connect(&myself, &mut st, Duration::ZERO)?;
        myself.send_interval(Duration::from_secs(1), || UplinkMsg::Tick);
        Ok(st)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<UplinkMsg>,
        st: &mut UplinkState,
    ) -> Result<(), ActorProcessingErr> {
        // A stop overtakes the queued `Commit`: what was received goes into the store now
        // (the gateway's final flush covers it).
        commit::commit_pending(&myself, st);
        if let Some(s) = st.session.take() {
            s.close().await;
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
                st.pending.push(*out);
                if st.pending.len() >= commit::MAX_GROUP {
                    commit::commit_pending(&myself, st);
                    flush(&myself, st);
                } else if !st.commit_queued {
                    st.commit_queued = myself.cast(UplinkMsg::Commit).is_ok();
                    if !st.commit_queued {
                        commit::commit_pending(&myself, st);
                        flush(&myself, st);
                    }
                }
            }
            UplinkMsg::Commit => {
                st.commit_queued = false;
                commit::commit_pending(&myself, st);
                flush(&myself, st);
            }
            UplinkMsg::Flushed { store_gen, .. } if store_gen != st.store_gen => {}
            UplinkMsg::Flushed { upto, error, .. } => {
                st.flushing = false;
                match error {
                    None => {
                        st.durable = st.durable.max(upto);
                        st.traced.durable(upto);
                        recovery::healthy(st);
                        if st.ctx.status.has_condition(Condition::StoreError) {
                            st.ctx.status.condition(Condition::StoreError, None);
                        }
                    }
                    Some(e) => recovery::store_failed(&myself, st, "flush", &e),
                }
                flush(&myself, st);
                pump(&myself, st);
            }
            UplinkMsg::Reopen => recovery::reopen(&myself, st),
            UplinkMsg::Reopened(r) => recovery::reopened(&myself, st, *r),
            UplinkMsg::Link(gen, ev) if gen == st.gen => on_link(&myself, st, ev),
            UplinkMsg::Link(..) => {}
            UplinkMsg::Connect(gen) if gen == st.gen && st.session.is_none() => {
                connect(&myself, st, Duration::ZERO)?
            }
            UplinkMsg::Connect(_) => {}
            UplinkMsg::Pump => {
                st.pump_scheduled = false;
                pump(&myself, st);
            }
            UplinkMsg::Tick => tick(&myself, st),
            UplinkMsg::Housekept(h) => housekept(st, &h),
        }
        Ok(())
    }
}

fn topic(ctx: &Ctx, rest: &str) -> String {
    format!("{}/{}/{}", ctx.cfg.uplink.prefix, ctx.cfg.gateway.id, rest)
}

pub(super) fn count_evictions(ctx: &Ctx, evicted: &[(Class, u64)]) {
    for (c, _) in evicted {
        ctx.metrics
            .store_evicted
            .get_or_create(&ClassLabel { class: c.as_str() })
            .inc();
    }
}

fn tick(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState) {
    let timeout = st.ctx.cfg.uplink.ack_timeout.get();
    let stuck = st
        .session
        .as_ref()
        .is_some_and(|s| s.stuck(timeout, Instant::now()));
    if stuck {
        drop_session(
            myself,
            st,
            "no PUBACK within uplink.ack_timeout; session rebuilt",
        );
    }
    let ctx = st.ctx.clone();
    let Some(store) = ctx.store.get() else {
        publish_status(st);
        return;
    };
    if !st.housekeeping && st.last_check.elapsed() >= ctx.cfg.store.check_every.get() {
        st.last_check = Instant::now();
        st.housekeeping = true;
        let cutoff = now_ms() - ctx.cfg.store.raw_retention.get().as_millis() as i64;
        let (store, me) = (store.clone(), myself.clone());
        tokio::task::spawn_blocking(move || {
            let h = store.housekeep(cutoff);
            let _ = me.cast(UplinkMsg::Housekept(Box::new(h)));
        });
    }
    let m = &ctx.metrics;
    for (c, s) in store.stats() {
        m.store_backlog
            .get_or_create(&ClassLabel { class: c.as_str() })
            .set(s.count as i64);
    }
    m.store_bytes.set(store.report().disk_bytes as i64);
    drop(store);
    let dt = st.last_tick.elapsed().as_secs_f64().max(1e-3);
    m.store_drain_per_second
        .set((st.replayed as f64 / dt) as i64);
    st.replayed = 0;
    st.last_tick = Instant::now();
    flush(myself, st);
    publish_status(st);
    pump(myself, st);
}

/// Reports the store's upkeep: evictions counted, errors and the near-budget condition set.
fn housekept(st: &mut UplinkState, h: &crate::store::Housekeeping) {
    st.housekeeping = false;
    let ctx = &st.ctx;
    count_evictions(ctx, &h.evicted);
    for e in &h.errors {
        ctx.status.condition(Condition::StoreError, Some(e.clone()));
    }
    let near = h.fill >= ctx.cfg.store.near_budget;
    if near != ctx.status.has_condition(Condition::StoreNearBudget) {
        ctx.status.condition(
            Condition::StoreNearBudget,
            near.then(|| format!("{:.0}% of store.max_bytes", h.fill * 100.0)),
        );
    }
}

#[cfg(test)]
mod tests;
