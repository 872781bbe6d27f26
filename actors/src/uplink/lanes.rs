//! The two lanes of a session: live records (committed during it, sent at once) and the
//! backlog (everything older, in seq order, paced by `replay_rate`), within `inflight`; and
//! the store figures behind the backlog gauges.

use super::*;

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
    while s.unnumbered.len() + s.awaiting.len() < limit {
        // Live lane first: committed during this session, sent at once.
        let mut from_backlog = false;
        let mut next = store.next_in(s.live_cursor, st.durable + 1);
        if matches!(next, Ok(None)) && s.backlog_cursor < s.live_start {
            if st.replay.check().is_err() {
                if !st.pump_scheduled {
                    st.pump_scheduled = true;
                    myself.send_after(Duration::from_millis(20), || UplinkMsg::Pump);
                }
                break;
            }
            from_backlog = true;
            next = store.next_in(s.backlog_cursor, s.live_start);
        }
        let r = match next {
            Ok(Some(r)) => r,
            Ok(None) => {
                if from_backlog {
                    s.backlog_cursor = s.live_start;
                    continue;
                }
                break;
            }
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
        if from_backlog {
            s.backlog_cursor = r.seq + 1;
            st.replayed += 1;
        } else {
            s.live_cursor = r.seq + 1;
        }
        let len = r.payload.len() as u64;
        match s
            .client
            .try_publish(r.topic, QoS::AtLeastOnce, false, r.payload)
        {
            Ok(()) => {
                s.unnumbered.push_back((r.class, r.seq));
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
