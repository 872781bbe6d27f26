//! The summary line of a log statement's suppressed lines, and the flush marker.
//!
//! Design constraints: an `Event` needs `'static` metadata, so each statement's summary
//! metadata (its name, level and target, with the summary's fields) is built once and leaked;
//! the limit builds it at most once per key of its bounded table. The callsites here are never
//! registered with the dispatcher: summaries are handed to the wrapped layer directly, and the
//! flush marker is dispatched without the `enabled` check (no filter may keep it from the
//! limit), then dropped by the limit.

use std::fmt::{self, Write as _};
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::{Field, FieldSet, Value, Visit};
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;
use tracing_core::{Event, Level, Metadata};
use tracing_log::NormalizeEvent;

/// The message of a summary line.
pub const SUPPRESSED: &str = "Similar log lines suppressed.";
/// Longest `of` kept, bytes.
pub(super) const MAX_OF: usize = 256;

/// What a summary line says about its statement besides the count.
pub(super) struct Summary {
    /// The statement's name, target and level, with the summary's fields.
    meta: Metadata<'static>,
    /// `file:line` of the statement.
    callsite: String,
}

/// Reports, through the current subscriber, every suppressed count not reported yet (call it
/// once at exit: the last window's count would otherwise be lost).
pub fn flush() {
    let none: [(&Field, Option<&dyn Value>); 0] = [];
    let values = FLUSH_META.fields().value_set(&none);
    tracing::dispatcher::get_default(|d| d.event(&Event::new(&FLUSH_META, &values)));
}

/// The fields of every summary line.
const FIELDS: &[&str] = &["message", "suppressed", "of", "callsite"];

/// A callsite of this module (never registered).
struct Marker(&'static Metadata<'static>);

impl Callsite for Marker {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        self.0
    }
}

/// The callsite the summaries' fields belong to.
static SUMMARY_CALLSITE: Marker = Marker(&SUMMARY_META);

static SUMMARY_META: Metadata<'static> = Metadata::new(
    "log suppression summary",
    module_path!(),
    Level::INFO,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(FIELDS, Identifier(&SUMMARY_CALLSITE)),
    Kind::EVENT,
);

/// The callsite of [`flush`]'s marker event.
static FLUSH_CALLSITE: Marker = Marker(&FLUSH_META);

static FLUSH_META: Metadata<'static> = Metadata::new(
    "log limit flush",
    module_path!(),
    Level::ERROR,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(&[], Identifier(&FLUSH_CALLSITE)),
    Kind::EVENT,
);

/// Whether `event` is [`flush`]'s marker.
pub(super) fn is_flush(event: &Event<'_>) -> bool {
    event.metadata().callsite() == Identifier(&FLUSH_CALLSITE)
}

/// Replaces `into` with `event`'s message, at most [`MAX_OF`] bytes of it.
pub(super) fn copy_message(event: &Event<'_>, into: &mut String) {
    into.clear();
    event.record(&mut MessageOf(Bounded(into)));
}

impl Summary {
    /// The summary of `event`'s statement: its name, level and target (a `log` record's own
    /// target), its `file:line`. Leaked: called once per key.
    pub(super) fn leak(event: &Event<'_>) -> &'static Summary {
        let m = event.metadata();
        let (target, file, line, module, callsite) = match event.normalized_metadata() {
            Some(n) => (
                &*Box::leak(n.target().to_owned().into_boxed_str()),
                None,
                None,
                None,
                format!("{}:{}", n.file().unwrap_or("?"), n.line().unwrap_or(0)),
            ),
            None => (
                m.target(),
                m.file(),
                m.line(),
                m.module_path(),
                format!("{}:{}", m.file().unwrap_or("?"), m.line().unwrap_or(0)),
            ),
        };
        let meta = Metadata::new(
            m.name(),
            target,
            *m.level(),
            file,
            line,
            module,
            FieldSet::new(FIELDS, Identifier(&SUMMARY_CALLSITE)),
            Kind::EVENT,
        );
        Box::leak(Box::new(Summary { meta, callsite }))
    }

    /// Builds the summary line (`suppressed` lines suppressed, the first of them saying `of`)
    /// and hands it to `f`.
    pub(super) fn with_event(&'static self, suppressed: u64, of: &str, f: impl FnOnce(&Event<'_>)) {
        let meta = &self.meta;
        let fields = meta.fields();
        let (Some(message), Some(count), Some(of_field), Some(callsite)) = (
            fields.field("message"),
            fields.field("suppressed"),
            fields.field("of"),
            fields.field("callsite"),
        ) else {
            return;
        };
        let at = self.callsite.as_str();
        let values = [
            (&message, Some(&SUPPRESSED as &dyn Value)),
            (&count, Some(&suppressed as &dyn Value)),
            (&of_field, Some(&of as &dyn Value)),
            (&callsite, Some(&at as &dyn Value)),
        ];
        let values = fields.value_set(&values);
        f(&Event::new(meta, &values));
    }
}

/// Copies an event's `message`.
struct MessageOf<'a>(Bounded<'a>);

impl Visit for MessageOf<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = self.0.write_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

/// Appends to a string up to [`MAX_OF`] bytes (on a character boundary), drops the rest.
struct Bounded<'a>(&'a mut String);

impl fmt::Write for Bounded<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut end = s.len().min(MAX_OF.saturating_sub(self.0.len()));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.0.push_str(&s[..end]);
        Ok(())
    }
}
