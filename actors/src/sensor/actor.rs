//! One sensor: its window, baseline, decisions and period summary.
//!
//! Design constraints: per sample, constant work (window update, summary update); per hop,
//! one feature vector sent to the inference pool; per decision, one threshold comparison.
//! Decisions come back as messages ([`SensorMsg::Scored`]), so the actor never waits on the
//! model, and are applied in window order whatever order the pool finishes them in
//! ([`super::order`]). Which anomalous decisions become alerts is the [`AlertGate`]'s call (episodes,
//! cooldown, reminders, the global cap: see [`super::storm`]); every suppressed one is counted
//! and reported upstream once, by the sensor's next alert or summary (`alerts_suppressed`).
//! With trace export on, each decision is sampled once its outcome is known (alerts always)
//! and only a sampled one has spans built ([`crate::telemetry`]); the data path records a few
//! `Instant`s for them, nothing per sample.

use super::detector::Detector;
use super::order::Reorder;
use super::raw::RawCapture;
use super::report::{self, Raised};
use super::storm::{At, Verdict};
use super::summary::PeriodSummary;
use super::tracker::{Step, Tracker};
use super::SampleBatch;
use super::SensorPorts;
use crate::ctx::Ctx;
use crate::inference::{PoolMsg, Reply, ReplyTo, ScoreRequest, Scored, Stamps, Ticket};
use crate::metrics::ReasonLabel;
use crate::outbound::{Body, Outbound};
use crate::ratelog::RateLog;
use crate::telemetry::{DecisionTrace, Outcome, TraceLink};
use crate::uplink::UplinkMsg;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

/// Messages of a sensor actor.
#[derive(Debug)]
pub enum SensorMsg {
    /// New samples from ingest.
    Samples(SampleBatch),
    /// A decision's score, back from the inference pool.
    Scored(Box<Scored>),
    /// Request `seq` ended without a decision (shed, or lost with a worker or the pool).
    Unanswered(u64),
    /// Time to release decisions held too long behind a request that never came back.
    ReleaseHeld,
    /// Close the summary period `[start, end)` (ms) and send it upstream.
    Summarize {
        /// Period start, ms.
        start: i64,
        /// Period end, ms.
        end: i64,
    },
}

impl From<Reply> for SensorMsg {
    fn from(r: Reply) -> Self {
        match r {
            Reply::Scored(s) => SensorMsg::Scored(s),
            Reply::Unanswered(seq) => SensorMsg::Unanswered(seq),
        }
    }
}

/// The way back of a [`Reply`] a sensor could not take (it stopped).
impl TryFrom<SensorMsg> for Reply {
    type Error = SensorMsg;
    fn try_from(m: SensorMsg) -> Result<Self, SensorMsg> {
        match m {
            SensorMsg::Scored(s) => Ok(Reply::Scored(s)),
            SensorMsg::Unanswered(seq) => Ok(Reply::Unanswered(seq)),
            other => Err(other),
        }
    }
}

/// A sensor actor; everything it needs comes in [`SensorArgs`].
pub struct SensorActor;

/// Spawn arguments.
pub struct SensorArgs {
    /// Sensor id (topic level).
    pub sensor: Arc<str>,
    /// Shared services.
    pub ctx: Arc<Ctx>,
    /// The stages it sends to and the state it shares.
    pub ports: Arc<SensorPorts>,
}

/// State built in `pre_start`.
pub struct SensorState {
    sensor: Arc<str>,
    ctx: Arc<Ctx>,
    ports: Arc<SensorPorts>,
    /// This actor as inference's requests name it.
    reply_to: ReplyTo,
    /// The window and the learned baseline.
    tracker: Tracker,
    summary: PeriodSummary,
    /// Score calibration, and the alert gate: episodes, cooldown and reminders of this
    /// sensor's alerts, and the suppressed counts not yet reported upstream.
    detector: Detector,
    log: RateLog,
    /// Windows scored since the baseline was last saved to the context.
    since_save: u32,
    /// A raw troubleshooting window being collected after an alert.
    capture: Option<RawCapture>,
    /// Puts decisions back in window order.
    order: Reorder<Box<Scored>>,
}

/// Windows between saves of an adapting baseline.
const SAVE_EVERY: u32 = 64;

impl Actor for SensorActor {
    type Msg = SensorMsg;
    type State = SensorState;
    type Arguments = SensorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SensorMsg>,
        args: SensorArgs,
    ) -> Result<SensorState, ActorProcessingErr> {
        let ctx = args.ctx;
        let cfg = &ctx.cfg.sensors;
        let saved = ctx.baselines.lock().get(&args.sensor).cloned();
        let tracker = Tracker::new(cfg, saved).map_err(|e| format!("{e:?}"))?;
        let seed = args.sensor.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        Ok(SensorState {
            ports: args.ports,
            reply_to: myself.get_derived(),
            detector: Detector::new(cfg),
            sensor: args.sensor,
            tracker,
            summary: PeriodSummary::new(seed),
            log: RateLog::new(Duration::from_secs(30)),
            since_save: 0,
            capture: None,
            order: super::order::for_config(&ctx.cfg.inference),
            ctx,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SensorMsg>,
        msg: SensorMsg,
        st: &mut SensorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SensorMsg::Samples(batch) => {
                st.ctx.faults.check("sensor").await;
                on_samples(st, batch)
            }
            SensorMsg::Scored(s) => settle(&myself, st, s.req.ticket.seq(), Some(s)),
            SensorMsg::Unanswered(seq) => settle(&myself, st, seq, None),
            SensorMsg::ReleaseHeld => {
                let due = st.order.wake(Instant::now());
                apply(&myself, st, due);
            }
            SensorMsg::Summarize { start, end } => on_summarize(st, start, end),
        }
        Ok(())
    }
}

fn on_samples(st: &mut SensorState, batch: SampleBatch) {
    let ctx = st.ctx.clone();
    let m = &ctx.metrics;
    // Trace timestamps are taken only when traces are exported.
    let traced = ctx.traces.is_some();
    let handled = if traced {
        Instant::now()
    } else {
        batch.received
    };
    for s in batch.samples {
        let step = match st.tracker.push(s) {
            Ok(step) => step,
            Err(r) => {
                let reason = r.reason();
                m.reject(reason);
                let payload = format!("{{\"ts\":{},\"v\":{}}}", s.ts, s.v);
                st.ctx.dead_letter(
                    &format!("sensor:{}", st.sensor),
                    reason,
                    String::new(),
                    payload.as_bytes(),
                );
                if let Some(suppressed) = st.log.allow(reason, batch.received) {
                    warn!(message = "Sample rejected by its window.", sensor = %st.sensor, reason, ts = s.ts, suppressed);
                }
                continue;
            }
        };
        m.samples_ingested.inc();
        st.summary.add(s.v);
        if st.capture.as_mut().is_some_and(|c| c.push(s)) {
            if let Some(c) = st.capture.take() {
                send_raw(st, c);
            }
        }
        let (stats, features) = match step {
            Step::Accepted => continue,
            Step::Warmed => {
                save_baseline(st);
                continue;
            }
            Step::Ready(stats, features) => (stats, features),
        };
        let req = ScoreRequest {
            sensor: st.sensor.clone(),
            features,
            stats,
            clock: st.tracker.clock(),
            novelty: st.tracker.take_novelty(),
            stamps: Stamps {
                received: batch.received,
                handled,
                ready: if traced { Instant::now() } else { handled },
            },
            reply: st.reply_to.clone(),
            ticket: Ticket::new(st.order.issue(), st.reply_to.clone()),
        };
        if !st.ports.inference.cast(PoolMsg::Score(Box::new(req))) {
            m.samples_dropped
                .get_or_create(&ReasonLabel {
                    reason: "inference_restarting",
                })
                .inc();
        }
    }
}

fn save_baseline(st: &mut SensorState) {
    st.since_save = 0;
    st.ctx
        .baselines
        .lock()
        .insert(st.sensor.clone(), st.tracker.snapshot());
}

/// Resolves request `seq` (with its decision, or none) and applies what is due, in order.
fn settle(
    myself: &ActorRef<SensorMsg>,
    st: &mut SensorState,
    seq: u64,
    scored: Option<Box<Scored>>,
) {
    let due = st.order.resolve(seq, scored, Instant::now());
    apply(myself, st, due);
}

/// Applies released decisions; counts requests given up; asks for a wake-up while any are held.
// The decisions stay in the boxes they arrived in: holding or releasing one moves a pointer,
// not a `Scored`.
#[allow(clippy::vec_box)]
fn apply(myself: &ActorRef<SensorMsg>, st: &mut SensorState, due: Vec<Box<Scored>>) {
    for s in due {
        on_scored(st, *s);
    }
    let skipped = st.order.take_skipped();
    if skipped > 0 {
        st.ctx
            .metrics
            .samples_dropped
            .get_or_create(&ReasonLabel {
                reason: "decision_unanswered",
            })
            .inc_by(skipped);
    }
    if let Some(after) = st.order.wake_after(Instant::now()) {
        myself.send_after(after, || SensorMsg::ReleaseHeld);
    }
}

fn on_scored(st: &mut SensorState, s: Scored) {
    let now = Instant::now();
    let m = &st.ctx.metrics;
    m.decisions.inc();
    m.decision_latency_seconds
        .observe(now.duration_since(s.req.stamps.received).as_secs_f64());
    let ctx = st.ctx.clone();
    let ports = &st.ports;
    let end_ts = s.req.stats.end_ts;
    let sensor = &st.sensor;
    let d = st.detector.decide(
        At {
            clock: s.req.clock,
            ts: end_ts,
        },
        s.score,
        s.threshold,
        s.req.novelty,
        |score| {
            ports
                .feedback
                .decide(sensor, end_ts, score, ctx.cfg.sensors.threshold)
        },
        || ports.alert_cap.allow(),
    );
    let (suppressed_before, episode) = match d.verdict {
        Verdict::Normal => {
            trace(st, &s, now, Outcome::Normal);
            st.since_save += 1;
            if st.since_save >= SAVE_EVERY {
                save_baseline(st);
            }
            return;
        }
        Verdict::Suppress(why) => {
            m.alerts_suppressed.inc();
            m.alerts_suppressed_by_reason
                .get_or_create(&ReasonLabel {
                    reason: why.reason(),
                })
                .inc();
            trace(st, &s, now, Outcome::Suppressed);
            return;
        }
        Verdict::Raise {
            suppressed_before,
            episode,
        } => (suppressed_before, episode),
    };
    st.summary.alerts += 1;
    m.alerts.inc();
    let scorer = st.ctx.scorer();
    let body = Body::Alert(report::alert(&Raised {
        window: &s.req.stats,
        features: &s.req.features,
        names: scorer.feature_names(),
        model: &s.model,
        model_score: s.score,
        fallback: s.fallback,
        decision: &d,
        suppressed_before,
        episode,
    }));
    let alert_end = s.req.stats.end_ts;
    let link = trace(st, &s, now, Outcome::Alert);
    send_up(st, alert_end, body, None, link);
    let cfg = &st.ctx.cfg.sensors;
    if cfg.raw_on_alert && st.capture.is_none() {
        let c = RawCapture::new(
            s.req.stats.start_ts,
            alert_end,
            st.tracker.samples(),
            cfg.raw_after,
        );
        if c.remaining == 0 {
            send_raw(st, c);
        } else {
            st.capture = Some(c);
        }
    }
}

/// Sends a finished raw window upstream (class `raw`: evicted first under pressure).
fn send_raw(st: &SensorState, c: RawCapture) {
    let (Some(body), Some(last)) = (report::raw_window(&c), c.samples.last()) else {
        return;
    };
    let keep = c.samples.iter().map(|s| (s.ts, s.v)).collect();
    send_up(st, last.ts, Body::Raw(body), Some(keep), None);
}

/// Closes the period. A period without samples is skipped unless decisions of it are still to
/// be reported (a decision that came back after its samples' period closed): then the summary
/// has `count` 0 and null statistics, so no suppression stays unreported.
fn on_summarize(st: &mut SensorState, start: i64, end: i64) {
    let alerts = st.summary.alerts;
    let stats = st.summary.take();
    if stats.is_none() && !st.detector.gate().has_pending() {
        return;
    }
    let (anomalous, suppressed) = st.detector.gate_mut().take_period();
    let scorer = st.ctx.scorer();
    let body = report::summary(
        (start, end),
        stats.as_ref(),
        alerts,
        (anomalous, suppressed),
        (scorer.name(), scorer.version()),
    );
    send_up(st, end, Body::Summary(body), None, None);
}

fn send_up(
    st: &SensorState,
    ts: i64,
    body: Body,
    raw: Option<Vec<(i64, f64)>>,
    trace: Option<TraceLink>,
) {
    let out = Outbound {
        sensor: st.sensor.clone(),
        ts,
        body,
        raw,
        trace,
    };
    if !st.ports.uplink.cast(UplinkMsg::Publish(Box::new(out))) {
        st.ctx
            .metrics
            .uplink_dropped
            .get_or_create(&ReasonLabel {
                reason: "uplink_restarting",
            })
            .inc();
    }
}

/// Emits the decision's trace if it is sampled (alerts always, others by ratio); returns its
/// `decision` span, under which the uplink hangs the record's commit and publish.
fn trace(st: &SensorState, s: &Scored, from: Instant, outcome: Outcome) -> Option<TraceLink> {
    let traces = st.ctx.traces.as_ref()?;
    if !traces.sample(outcome == Outcome::Alert) {
        return None;
    }
    Some(traces.decision(&DecisionTrace {
        sensor: &st.sensor,
        stamps: s.req.stamps,
        window: (s.req.stats.n, s.req.stats.end_ts),
        batch: (s.ran.0, s.ran.1, s.batch),
        model: (&s.model.name, &s.model.version, s.fallback),
        score: (s.score, s.threshold),
        outcome,
        decided_from: from,
    }))
}
