//! A global rate limit on log lines: each log statement (callsite) writes at most `burst` lines
//! per `window`; the lines beyond are dropped and counted, and once the window has passed one
//! line reports them — `Similar log lines suppressed.` with `suppressed` (how many), `of` (the
//! message of the first one) and `callsite` (`file:line`), at the level and under the target of
//! the statement it stands for. A peer that misbehaves, a flapping link or a failing disk can
//! then cost at most `burst` lines per statement and window, never a flooded SD card.
//!
//! Design constraints:
//! - **A wrapper around the output layer, not a filter.** A per-layer `Filter` can only drop an
//!   event, and the summary line must also be written: by the same formatter (text or JSON),
//!   into the same writer, without passing through the limit or the level filter again (its
//!   statement already passed them). [`RateLimited`] wraps the `fmt` layer: it sees exactly the
//!   events the global `EnvFilter` let through, hands the admitted ones on, and builds each
//!   summary as an event of its own that it hands to the wrapped layer directly. Suppressed
//!   lines are never formatted. (Vector's `tracing-limit` has the same shape.)
//! - **Keyed by callsite**, which is a static in the binary: the table is bounded by the
//!   program's log statements. Records of the `log` crate (rumqttc, sled) all arrive through
//!   one bridge callsite per level; they are told apart by a hash of their target, file and
//!   line, and at most [`MAX_LOG_KEYS`] such keys are kept (beyond, a record shares its bridge
//!   callsite's key).
//! - **Cheap.** One short mutex section per event: a clock read, one hash lookup, a few integer
//!   updates, no allocation once the callsite has been seen, nothing written while the lock is
//!   held. A suppressed line's message is copied once per window (bounded, for `of`); the
//!   summary's metadata is built once per key and leaked (an `Event` needs `'static`
//!   metadata), which the bounded table bounds too.
//! - **No timer.** A count is reported by the first event of any callsite after its window has
//!   passed (the table keeps the earliest such deadline, so checking costs one comparison),
//!   just before that event. At exit, [`flush`] reports every count still pending, whatever
//!   its window: it dispatches a marker event that only this layer acts on (the layer is
//!   inside the global subscriber, reachable only through a dispatch).
//! - Time is injected ([`Clock`]), so the tests are deterministic.

mod summary;

pub use summary::flush;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};
use summary::Summary;
use tracing_core::callsite::Identifier;
use tracing_core::subscriber::Interest;
use tracing_core::{span, Dispatch, Event, LevelFilter, Metadata, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer};

/// `log`-crate statements told apart; beyond, records share their bridge callsite's key.
pub const MAX_LOG_KEYS: usize = 1024;

/// How many lines each log statement may write per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lines per window.
    pub burst: u32,
    /// The window.
    pub window: Duration,
}

impl Limits {
    /// 5 lines per 10 s, the defaults of `telemetry.log_burst` and `telemetry.log_window`.
    pub const DEFAULT: Limits = Limits {
        burst: 5,
        window: Duration::from_secs(10),
    };
}

/// Milliseconds on a monotonic clock.
pub trait Clock: Send + Sync + 'static {
    /// Now, in ms since an arbitrary origin.
    fn now_ms(&self) -> u64;
}

/// The process's monotonic clock.
pub struct Monotonic(Instant);

impl Default for Monotonic {
    fn default() -> Self {
        Monotonic(Instant::now())
    }
}

impl Clock for Monotonic {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// The layer `L` (the formatter), with the rate limit in front of its events.
pub struct RateLimited<L, C = Monotonic> {
    inner: L,
    clock: C,
    burst: u32,
    window_ms: u64,
    table: Mutex<Table>,
}

struct Table {
    slots: HashMap<Key, Slot>,
    /// Earliest end of a window whose suppressed lines are not reported yet (`u64::MAX`: none).
    next_due: u64,
}

/// A log statement: its callsite, and for a `log`-crate record a hash of where it came from
/// (0 for a `tracing` statement).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    callsite: Identifier,
    origin: u64,
}

struct Slot {
    /// Start of the current window, ms.
    start: u64,
    /// Lines written in the current window.
    written: u32,
    /// Lines suppressed and not reported yet.
    suppressed: u64,
    /// The message of the first of them.
    of: String,
    /// The summary's metadata, built at the first suppression.
    summary: Option<&'static Summary>,
}

/// A summary line to write.
struct Report {
    summary: &'static Summary,
    suppressed: u64,
    of: String,
}

impl<L, C: Clock> RateLimited<L, C> {
    /// Limits the events reaching `inner` to `limits`, on `clock`.
    pub fn with_clock(inner: L, limits: Limits, clock: C) -> Self {
        RateLimited {
            inner,
            clock,
            burst: limits.burst.max(1),
            window_ms: (limits.window.as_millis() as u64).max(1),
            table: Mutex::new(Table {
                slots: HashMap::new(),
                next_due: u64::MAX,
            }),
        }
    }

    /// Counts `event` against its statement's window: `true` when it may be written.
    fn admit(&self, t: &mut Table, event: &Event<'_>, origin: u64, now: u64) -> bool {
        let mut key = Key {
            callsite: event.metadata().callsite(),
            origin,
        };
        if origin != 0 && t.slots.len() >= MAX_LOG_KEYS && !t.slots.contains_key(&key) {
            key.origin = 0;
        }
        let slot = t.slots.entry(key).or_insert_with(|| Slot {
            start: now,
            written: 0,
            suppressed: 0,
            of: String::new(),
            summary: None,
        });
        if now.saturating_sub(slot.start) >= self.window_ms {
            // The sweep has reported what this window suppressed (its end was due).
            slot.start = now;
            slot.written = 0;
        }
        if slot.written < self.burst {
            slot.written += 1;
            return true;
        }
        slot.suppressed += 1;
        if slot.suppressed == 1 {
            summary::copy_message(event, &mut slot.of);
            if slot.summary.is_none() {
                slot.summary = Some(Summary::leak(event));
            }
            t.next_due = t.next_due.min(slot.start.saturating_add(self.window_ms));
        }
        false
    }

    /// Writes one summary line through the wrapped layer.
    fn report<S: Subscriber>(&self, r: &Report, ctx: &Context<'_, S>)
    where
        L: Layer<S>,
    {
        r.summary
            .with_event(r.suppressed, &r.of, |e| self.inner.on_event(e, ctx.clone()));
    }
}

impl Table {
    /// Moves the counts of every window that has passed (with `all`, of every window) into
    /// `due`.
    fn sweep(&mut self, now: u64, window_ms: u64, all: bool, due: &mut Vec<Report>) {
        let mut next = u64::MAX;
        for slot in self.slots.values_mut().filter(|s| s.suppressed > 0) {
            let end = slot.start.saturating_add(window_ms);
            if now < end && !all {
                next = next.min(end);
                continue;
            }
            if let Some(summary) = slot.summary {
                due.push(Report {
                    summary,
                    suppressed: slot.suppressed,
                    of: std::mem::take(&mut slot.of),
                });
            }
            slot.suppressed = 0;
        }
        self.next_due = next;
    }
}

/// 0 for a `tracing` statement; for a `log`-crate record (all records of one level share a
/// bridge callsite), a non-zero hash of its target, file and line.
fn origin(event: &Event<'_>) -> u64 {
    let Some(m) = event.normalized_metadata() else {
        return 0;
    };
    let mut h = DefaultHasher::new();
    (m.target(), m.file(), m.line()).hash(&mut h);
    h.finish() | 1
}

impl<S, L, C> Layer<S> for RateLimited<L, C>
where
    S: Subscriber,
    L: Layer<S>,
    C: Clock,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let now = self.clock.now_ms();
        let flush = summary::is_flush(event);
        let origin = origin(event);
        let mut due = Vec::new();
        let admitted = {
            let mut guard = self.table.lock();
            let t = &mut *guard;
            if now >= t.next_due || flush {
                t.sweep(now, self.window_ms, flush, &mut due);
            }
            !flush && self.admit(t, event, origin, now)
        };
        for r in &due {
            self.report(r, &ctx);
        }
        if admitted {
            self.inner.on_event(event, ctx);
        }
    }

    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        self.inner.max_level_hint()
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(id, follows, ctx);
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }
}

#[cfg(test)]
mod tests;
