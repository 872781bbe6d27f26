//! The two lanes of a session: live records (committed during it, sent at once) and the
//! backlog (everything older, in seq order, paced by `replay_rate`), within `inflight`; and
//! the store figures behind the backlog gauges.

use super::acks::Sent;
use super::*;
use crate::store::{Record, Store, StoreError};

pub(super) fn backlog(ctx: &Ctx) -> u64 {
    ctx.store
        .get()
        .map_or(0, |s| s.stats().iter().map(|(_, s)| s.count).sum())
}

/// Evictions per class (zero while the store is closed; they are persisted in it).
pub(super) fn evicted(ctx: &Ctx) -> [u64; 3] {
    ctx.store.get().map_or([0; 3], |s| s.evicted())
}

/// Starts a flush of everything inserted so far, unless one is running (it will be followed
/// by another when it ends): the group commit.
pub(super) fn flush(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState) {
    if st.flushing || st.inserted <= st.durable {
        return;
    }
    let Some(store) = st.ctx.store.get() else {
        return;
    };
    st.flushing = true;
    let upto = st.inserted;
    let flush = store.flush_async();
    let (me, store_gen) = (myself.clone(), st.store_gen);
    tokio::spawn(async move {
        let error = flush.await.err();
        let _ = me.cast(UplinkMsg::Flushed {
            store_gen,
            upto,
            error,
        });
    });
}

pub(super) fn pump(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState) {
    let limit = st.ctx.cfg.uplink.inflight;
    let Some(store) = st.ctx.store.get() else {
        return;
    };
    let Some(s) = st.session.as_mut() else { return };
    if !s.connected {
        return;
    }
    while s.acks.in_flight() < limit {
        let replay = &st.replay;
        let r = match s.lanes.next(&store, st.durable, || replay.check().is_ok()) {
            Ok(Next::Live(r)) => r,
            Ok(Next::Backlog(r)) => {
                st.replayed += 1;
                r
            }
            Ok(Next::Paced) => {
                if !st.pump_scheduled {
                    st.pump_scheduled = true;
                    myself.send_after(Duration::from_millis(20), || UplinkMsg::Pump);
                }
                break;
            }
            Ok(Next::Idle) => break,
            Err(e @ crate::store::StoreError::Decode(_)) => {
                st.ctx
                    .status
                    .condition(Condition::StoreError, Some(format!("read: {e}")));
                break;
            }
            Err(e) => {
                recovery::store_failed(myself, st, "read", &e);
                break;
            }
        };
        let len = r.payload.len() as u64;
        match s
            .client
            .try_publish(r.topic, QoS::AtLeastOnce, false, r.payload)
        {
            Ok(()) => {
                s.acks.sent(Sent::Record(r.class, r.seq));
                st.traced.published(r.seq);
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
                // the record, still in the store, is sent again then.
                st.ctx
                    .metrics
                    .uplink_dropped
                    .get_or_create(&ReasonLabel {
                        reason: "queue_full",
                    })
                    .inc();
                break;
            }
        }
    }
}

/// Where a session's two lanes are. The live lane holds the records committed during the
/// session (seq `live_start` and above), sent as soon as they are durable; the backlog holds
/// everything older, sent oldest first when the live lane is empty and the replay pacing
/// allows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lanes {
    /// Seqs below this were committed before the session: the backlog lane.
    live_start: u64,
    /// Next seq to consider in the backlog lane.
    backlog_cursor: u64,
    /// Next seq to consider in the live lane.
    live_cursor: u64,
}

/// What to send next.
#[derive(Debug)]
pub(super) enum Next {
    /// A record of the live lane.
    Live(Record),
    /// A record of the backlog.
    Backlog(Record),
    /// Only the backlog has records, and the pacing says wait.
    Paced,
    /// Nothing to send.
    Idle,
}

impl Lanes {
    /// The lanes of a session that starts when every seq up to `durable` is committed.
    pub(super) fn starting_after(durable: u64) -> Self {
        Lanes {
            live_start: durable + 1,
            backlog_cursor: 0,
            live_cursor: durable + 1,
        }
    }

    /// The next record to send among those durable (seq ≤ `durable`): live first; then the
    /// backlog, if `may_replay` grants a token.
    pub(super) fn next(
        &mut self,
        store: &Store,
        durable: u64,
        mut may_replay: impl FnMut() -> bool,
    ) -> Result<Next, StoreError> {
        loop {
            if let Some(r) = store.next_in(self.live_cursor, durable + 1)? {
                self.live_cursor = r.seq + 1;
                return Ok(Next::Live(r));
            }
            if self.backlog_cursor >= self.live_start {
                return Ok(Next::Idle);
            }
            if !may_replay() {
                return Ok(Next::Paced);
            }
            match store.next_in(self.backlog_cursor, self.live_start)? {
                Some(r) => {
                    self.backlog_cursor = r.seq + 1;
                    return Ok(Next::Backlog(r));
                }
                None => self.backlog_cursor = self.live_start,
            }
        }
    }
}

#[cfg(test)]
mod tests;
