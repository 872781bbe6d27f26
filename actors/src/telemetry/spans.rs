//! Building a decision's spans after the fact, and the uplink's map of traced records.
//!
//! Design constraints: spans are built only for sampled decisions, from `Instant`s recorded
//! along the way and converted to wall time against one anchor taken at emission; each span
//! gets its parent explicitly (a non-remote span context), never from an ambient context.

use super::Traces;
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

/// Where a decision's sample went through the gateway, recorded on the data path (one
/// `Instant` per ingest batch and per window, nothing per sample).
#[derive(Debug, Clone, Copy)]
pub struct Stamps {
    /// Ingest received the MQTT message holding the sample that completed the window.
    pub received: Instant,
    /// The sensor actor began processing that message.
    pub handled: Instant,
    /// The window's features were ready and sent to the inference pool.
    pub ready: Instant,
}

impl Stamps {
    /// All three at `t` (tests, and requests that did not come through ingest).
    pub fn at(t: Instant) -> Self {
        Stamps {
            received: t,
            handled: t,
            ready: t,
        }
    }
}

/// A span of an emitted trace, to hang later spans under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceLink {
    /// The trace (the `trace_id` of the uplink message).
    pub trace_id: TraceId,
    /// The span later spans are children of.
    pub span_id: SpanId,
}

impl TraceLink {
    /// The trace id as 32 lower-case hex digits, as the uplink message carries it.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

/// How a decision ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Score within the threshold.
    Normal,
    /// Above the threshold, withheld by the sensor's alert gate (duplicate, cooldown or cap).
    Suppressed,
    /// Above the threshold, alert sent upstream.
    Alert,
}

/// Everything a decision's trace shows.
#[derive(Debug)]
pub struct DecisionTrace<'a> {
    /// Sensor id.
    pub sensor: &'a str,
    /// The path of the sample.
    pub stamps: Stamps,
    /// Window size (samples) and end (ms).
    pub window: (usize, i64),
    /// The inference batch: when it started and ended, and its size.
    pub batch: (Instant, Instant, usize),
    /// Scorer name and version, and whether it was the fallback rule.
    pub model: (&'a str, &'a str, bool),
    /// Score and threshold.
    pub score: (f32, f32),
    /// What was decided.
    pub outcome: Outcome,
    /// When the decision started (its score arrived at the sensor).
    pub decided_from: Instant,
}

/// Converts `Instant`s to wall time against one anchor.
struct Clock(Instant, SystemTime);

impl Clock {
    fn now() -> Self {
        Clock(Instant::now(), SystemTime::now())
    }
    fn wall(&self, t: Instant) -> SystemTime {
        let wall = if t <= self.0 {
            self.1.checked_sub(self.0 - t)
        } else {
            self.1.checked_add(t - self.0)
        };
        wall.unwrap_or(self.1)
    }
}

impl Traces {
    /// Emits `ingest` → `features` → `inference` → `decision` for a sampled decision (the
    /// decision ends now) and returns the `decision` span for the uplink's spans.
    pub fn decision(&self, d: &DecisionTrace<'_>) -> TraceLink {
        let clock = Clock::now();
        let sensor = KeyValue::new("sensor", d.sensor.to_string());
        let s = &d.stamps;
        let ingest = self.span(
            None,
            "ingest",
            &clock,
            s.received,
            s.handled,
            vec![sensor.clone()],
        );
        let features = self.span(
            Some(ingest),
            "features",
            &clock,
            s.handled,
            s.ready,
            vec![
                sensor.clone(),
                KeyValue::new("window.n", d.window.0 as i64),
                KeyValue::new("window.end", d.window.1),
            ],
        );
        let (batch_start, batch_end, size) = d.batch;
        let inference = self.span(
            Some(features),
            "inference",
            &clock,
            s.ready,
            batch_end,
            vec![
                sensor.clone(),
                KeyValue::new("inference.batch_size", size as i64),
                KeyValue::new(
                    "inference.queue_us",
                    batch_start.saturating_duration_since(s.ready).as_micros() as i64,
                ),
                KeyValue::new("model.name", d.model.0.to_string()),
                KeyValue::new("model.version", d.model.1.to_string()),
                KeyValue::new("model.fallback", d.model.2),
            ],
        );
        self.span(
            Some(inference),
            "decision",
            &clock,
            d.decided_from,
            clock.0,
            vec![
                sensor,
                KeyValue::new("score", d.score.0 as f64),
                KeyValue::new("threshold", d.score.1 as f64),
                KeyValue::new("alert", d.outcome == Outcome::Alert),
                KeyValue::new("suppressed", d.outcome == Outcome::Suppressed),
            ],
        )
    }

    /// Emits one span `[start, end]` named `name` under `parent` (a new trace if `None`).
    fn span(
        &self,
        parent: Option<TraceLink>,
        name: &'static str,
        clock: &Clock,
        start: Instant,
        end: Instant,
        attributes: Vec<KeyValue>,
    ) -> TraceLink {
        let cx = match parent {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                p.trace_id,
                p.span_id,
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let builder = SpanBuilder::from_name(name)
            .with_start_time(clock.wall(start))
            .with_attributes(attributes);
        let mut span = self.tracer.build_with_context(builder, &cx);
        let sc = span.span_context().clone();
        span.end_with_timestamp(clock.wall(end.max(start)));
        let link = TraceLink {
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
        };
        // A provider already shut down hands out invalid contexts: keep the chain's trace id.
        match parent {
            Some(p) if link.trace_id == TraceId::INVALID => p,
            _ => link,
        }
    }
}

/// Traced records between their commit and their PUBACK, by seq: bounded, in memory (a
/// restart forgets them, and their `uplink.publish` span is never emitted).
pub struct InFlight {
    traces: Option<Traces>,
    cap: usize,
    records: BTreeMap<u64, Record>,
}

struct Record {
    /// The `decision` span until committed, then the `store.commit` span.
    parent: TraceLink,
    since: Instant,
    committed: bool,
    published: Option<Instant>,
}

impl InFlight {
    /// At most `cap` records are tracked; beyond that the oldest is forgotten (counted).
    pub fn new(traces: Option<Traces>, cap: usize) -> Self {
        InFlight {
            traces,
            cap: cap.max(1),
            records: BTreeMap::new(),
        }
    }

    /// Record `seq` of trace `link` was inserted into the store; its commit began at `since`.
    pub fn inserted(&mut self, seq: u64, link: TraceLink, since: Instant) {
        let Some(t) = &self.traces else { return };
        if self.records.len() >= self.cap {
            if let Some((_, old)) = self.records.pop_first() {
                t.counters
                    .drop_spans("untracked", if old.committed { 1 } else { 2 });
            }
        }
        self.records.insert(
            seq,
            Record {
                parent: link,
                since,
                committed: false,
                published: None,
            },
        );
    }

    /// A flush made every seq up to `upto` durable: emits their `store.commit` spans.
    pub fn durable(&mut self, upto: u64) {
        let Some(t) = &self.traces else { return };
        if self.records.is_empty() {
            return;
        }
        let clock = Clock::now();
        for (seq, r) in self.records.range_mut(..=upto) {
            if r.committed {
                continue;
            }
            r.committed = true;
            let attrs = vec![KeyValue::new("uplink.seq", *seq as i64)];
            r.parent = t.span(
                Some(r.parent),
                "store.commit",
                &clock,
                r.since,
                clock.0,
                attrs,
            );
        }
    }

    /// Record `seq` was handed to the MQTT client (a resend restarts the span).
    pub fn published(&mut self, seq: u64) {
        if let Some(r) = self.records.get_mut(&seq).filter(|r| r.committed) {
            r.published = Some(Instant::now());
        }
    }

    /// Record `seq` was acknowledged: emits its `uplink.publish` span and forgets it.
    pub fn acked(&mut self, seq: u64) {
        let Some(t) = &self.traces else { return };
        let Some(r) = self.records.remove(&seq) else {
            return;
        };
        if let Some(from) = r.published {
            let clock = Clock::now();
            let attrs = vec![KeyValue::new("uplink.seq", seq as i64)];
            t.span(
                Some(r.parent),
                "uplink.publish",
                &clock,
                from,
                clock.0,
                attrs,
            );
        }
    }

    /// Records tracked now.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no record is tracked.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
