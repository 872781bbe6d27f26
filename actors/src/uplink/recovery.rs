//! Closing and reopening the store after an environment failure (disk full, read-only
//! filesystem, a failing device).
//!
//! Design constraints:
//! - sled refuses every write after its first I/O error until reopened, so retrying a flush in
//!   place only spins: on the first failure of a commit, flush, ack or read the uplink closes
//!   the store ([`StoreSlot::close`](crate::store::StoreSlot::close)) and reopens it with
//!   exponential backoff and jitter, off the actor (a blocking open).
//! - **Nothing committed is lost, nothing uncommitted is claimed.** Records inserted after the
//!   last completed flush were never sent; on close they are counted as dropped
//!   (`edgegw_uplink_dropped_total{reason="store_error"}`), and so is every message offered
//!   while the store is closed. After a reopen the durable cursor restarts from the reopened
//!   store's own high-water mark, so no seq that went upstream is ever given out again.
//! - While closed the MQTT session stays up: the retained status tells upstream why the
//!   gateway is degraded. PUBACKs that arrive meanwhile cannot delete their records, which
//!   are then sent again after the reopen: duplicates within the in-flight window.

use super::{UplinkMsg, UplinkState};
use crate::metrics::ReasonLabel;
use crate::restart::jittered;
use crate::status::Condition;
use crate::store::{Opened, Store, StoreError};
use ractor::ActorRef;
use std::time::Duration;
use tracing::{info, warn};

/// First delay before reopening a closed store (doubles per failed attempt).
const REOPEN_INITIAL: Duration = Duration::from_secs(1);
/// Longest delay between reopen attempts.
const REOPEN_MAX: Duration = Duration::from_secs(30);

/// The result of a reopen attempt, carried back to the actor.
pub struct Reopened(pub Result<Opened, StoreError>);

impl std::fmt::Debug for Reopened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Ok(o) => write!(f, "Reopened(next_seq {})", o.store.next_seq()),
            Err(e) => write!(f, "Reopened(Err({e}))"),
        }
    }
}

/// Where the uplink is in closing and reopening the store.
pub(super) struct Recovery {
    /// An attempt is running.
    attempting: bool,
}

/// Counts `n` outbound messages lost to a store failure.
pub(super) fn count_dropped(st: &UplinkState, n: u64) {
    if n > 0 {
        st.ctx
            .metrics
            .uplink_dropped
            .get_or_create(&ReasonLabel {
                reason: "store_error",
            })
            .inc_by(n);
    }
}

/// `what` failed with `e`: closes the store (once) and schedules its reopen.
pub(super) fn store_failed(
    myself: &ActorRef<UplinkMsg>,
    st: &mut UplinkState,
    what: &str,
    e: &StoreError,
) {
    close(myself, st, what, e, None);
}

/// Committing the message with `trace_id` failed: [`store_failed`], said on a line carrying
/// that `trace_id`.
pub(super) fn commit_failed(
    myself: &ActorRef<UplinkMsg>,
    st: &mut UplinkState,
    e: &StoreError,
    trace_id: &str,
) {
    close(myself, st, "commit", e, Some(trace_id));
}

fn close(
    myself: &ActorRef<UplinkMsg>,
    st: &mut UplinkState,
    what: &str,
    e: &StoreError,
    trace_id: Option<&str>,
) {
    if st.recovery.is_some() {
        return;
    }
    let lost = st.inserted.saturating_sub(st.durable);
    count_dropped(st, lost);
    st.ctx.store.close(format!("{what}: {e}"));
    st.flushing = false;
    st.recovery = Some(Recovery { attempting: false });
    warn!(message = "Store failed; closed, reopening with backoff.", %what, error = %e, lost_uncommitted = lost, retry_in_ms = st.reopen_delay.as_millis() as u64, trace_id);
    st.ctx.status.condition(
        Condition::StoreError,
        Some(format!("{what}: {e}; store closed, reopening")),
    );
    schedule(myself, st);
}

/// The store could not be opened at start: reopen it with backoff.
pub(super) fn start_closed(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState) {
    let why = st
        .ctx
        .store
        .closed_reason()
        .map(|c| c.reason)
        .unwrap_or_default();
    st.ctx.status.condition(
        Condition::StoreError,
        Some(format!("{why}; store closed, reopening")),
    );
    st.recovery = Some(Recovery { attempting: false });
    schedule(myself, st);
}

fn schedule(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState) {
    let wait = jittered(st.reopen_delay, 0.2, &mut rand::rng());
    st.reopen_delay = (st.reopen_delay * 2).min(REOPEN_MAX);
    myself.send_after(wait, || UplinkMsg::Reopen);
}

/// Timer: try to reopen, off the actor.
pub(super) fn reopen(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState) {
    let Some(r) = st.recovery.as_mut().filter(|r| !r.attempting) else {
        return;
    };
    r.attempting = true;
    let cfg = st.ctx.cfg.store.clone();
    let me = myself.clone();
    tokio::task::spawn_blocking(move || {
        // Flush once before anything in it counts as committed: what the old handle wrote may
        // still sit in the page cache only.
        let r = Store::open(&cfg).and_then(|o| {
            o.store.flush()?;
            Ok(o)
        });
        let _ = me.cast(UplinkMsg::Reopened(Box::new(Reopened(r))));
    });
}

/// A reopen attempt finished.
pub(super) fn reopened(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState, r: Reopened) {
    match r.0 {
        Ok(opened) => {
            let store = opened.store;
            st.durable = store.next_seq() - 1;
            st.inserted = st.durable;
            st.flushing = false;
            st.store_gen += 1;
            st.recovery = None;
            info!(
                message = "Store reopened.",
                next_seq = store.next_seq(),
                backlog = store.stats().iter().map(|(_, s)| s.count).sum::<u64>()
            );
            st.ctx.store.put(store);
            st.ctx.status.condition(Condition::StoreError, None);
            if let Some(why) = opened.recovered {
                super::commit::store_replaced(&st.ctx, &why);
            }
            // Everything held is resent in order, as after a reconnect.
            if let Some(s) = st.session.as_mut().filter(|s| s.connected) {
                s.lanes = super::lanes::Lanes::starting_after(st.durable);
            }
            super::flush(myself, st);
            super::pump(myself, st);
        }
        Err(e) => {
            if let Some(r) = st.recovery.as_mut() {
                r.attempting = false;
            }
            warn!(message = "Store reopen failed; retrying.", error = %e);
            st.ctx.status.condition(
                Condition::StoreError,
                Some(format!("reopen: {e}; store closed, retrying")),
            );
            schedule(myself, st);
        }
    }
}

/// A flush succeeded after a reopen: the next failure starts again from a short delay.
pub(super) fn healthy(st: &mut UplinkState) {
    st.reopen_delay = REOPEN_INITIAL;
}

/// The first reopen delay.
pub(super) const fn initial_delay() -> Duration {
    REOPEN_INITIAL
}
