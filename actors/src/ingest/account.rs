//! The embedded broker's messages that never reached ingest: found, counted and reported.
//!
//! Purpose: a sample a sensor published and the broker acknowledged is committed in the
//! sensor's eyes. When the gateway's ingest falls behind the broker's bounded per-filter log
//! (sensors publishing faster than the gateway decides, ingest back-pressured by
//! `ingest.max_inflight_bytes`), rumqttd moves ingest's read cursor past what it never read
//! and says only that it did. This compares the broker's meters (messages appended to the
//! ingest filters, [`crate::broker::BrokerAccount`]) with what ingest received and counts the
//! difference as `edgegw_ingest_rejected_total{reason="broker_dropped"}`, with the status
//! condition [`Condition::IngestLoss`] while losses are recent.
//!
//! Design constraints: the two counts are read at different moments (the meters arrive once
//! a period), so the difference is only a loss when traffic has been still for longer than a
//! meter period and ingest holds nothing in flight; it is counted then, never twice (the
//! reported loss only grows). A cursor jump sets the condition at once, before the count
//! settles. Only for the embedded broker: an external broker keeps its own account (for
//! mosquitto, `max_queued_messages` and its `$SYS` dropped counters).

use crate::broker::{BrokerAccount, METER_PERIOD_S};
use crate::ctx::Ctx;
use crate::status::Condition;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

/// The `reason` of `edgegw_ingest_rejected_total` for messages the broker dropped.
pub const BROKER_DROPPED: &str = "broker_dropped";

/// How long [`Condition::IngestLoss`] stays set after the last loss.
pub const LOSS_HOLD: Duration = Duration::from_secs(600);

/// Still ticks (one a second) before a difference counts: longer than a meter period.
const STILL_TICKS: u32 = METER_PERIOD_S as u32 + 2;

/// One reading of the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Messages the broker appended to the ingest filters.
    pub appended: u64,
    /// Messages ingest received.
    pub received: u64,
    /// Payload bytes ingest holds in flight.
    pub inflight: usize,
    /// Cursor jumps the broker reported.
    pub jumps: u64,
}

/// What a reading showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Finding {
    /// Messages newly found lost.
    pub lost: u64,
    /// Cursor jumps since the last reading.
    pub jumps: u64,
}

/// The reconciliation, without clocks or I/O.
#[derive(Debug, Default)]
pub struct Reconciler {
    last: Option<Reading>,
    still: u32,
    reported: u64,
}

impl Reconciler {
    /// Takes one reading (one a second).
    pub fn observe(&mut self, r: Reading) -> Finding {
        let jumps = self
            .last
            .map_or(r.jumps, |l| r.jumps.saturating_sub(l.jumps));
        let moved = self
            .last
            .is_none_or(|l| l.appended != r.appended || l.received != r.received);
        self.still = if moved || r.inflight > 0 {
            0
        } else {
            self.still.saturating_add(1)
        };
        self.last = Some(r);
        let mut lost = 0;
        if self.still >= STILL_TICKS {
            let missing = r.appended.saturating_sub(r.received);
            lost = missing.saturating_sub(self.reported);
            self.reported = self.reported.max(missing);
        }
        Finding { lost, jumps }
    }

    /// Messages counted lost so far.
    pub fn reported(&self) -> u64 {
        self.reported
    }
}

/// Reconciles once a second for as long as the gateway runs.
pub async fn run(ctx: Arc<Ctx>, account: Arc<BrokerAccount>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rec = Reconciler::default();
    let mut last_loss: Option<Instant> = None;
    // The series exists from the start, so a dashboard sees 0 rather than nothing.
    drop(
        ctx.metrics
            .ingest_rejected
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: BROKER_DROPPED,
            }),
    );
    loop {
        tick.tick().await;
        let f = rec.observe(Reading {
            appended: account.appended(),
            received: ctx.metrics.ingest_messages.get(),
            inflight: ctx.ingest_gate.used(),
            jumps: account.cursor_jumps(),
        });
        let now = Instant::now();
        if f.jumps > 0 {
            warn!(message = "Ingest fell behind the embedded broker's log; the broker skipped messages it had acknowledged.", cursor_jumps = f.jumps);
            last_loss = Some(now);
            ctx.status.condition(
                Condition::IngestLoss,
                Some("the embedded broker skipped messages ingest had not read (ingest too slow for the publishers)".into()),
            );
        }
        if f.lost > 0 {
            ctx.metrics
                .ingest_rejected
                .get_or_create(&crate::metrics::ReasonLabel {
                    reason: BROKER_DROPPED,
                })
                .inc_by(f.lost);
            warn!(
                message = "Messages the embedded broker acknowledged never reached ingest.",
                lost = f.lost,
                lost_total = rec.reported()
            );
            last_loss = Some(now);
            ctx.status.condition(
                Condition::IngestLoss,
                Some(format!(
                    "{} messages acknowledged by the embedded broker never reached ingest",
                    rec.reported()
                )),
            );
        }
        if last_loss.is_some_and(|t| now.duration_since(t) >= LOSS_HOLD) {
            last_loss = None;
            ctx.status.condition(Condition::IngestLoss, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(appended: u64, received: u64, inflight: usize, jumps: u64) -> Reading {
        Reading {
            appended,
            received,
            inflight,
            jumps,
        }
    }

    #[test]
    fn a_difference_counts_only_once_traffic_is_still_and_only_once() {
        let mut rec = Reconciler::default();
        // Moving traffic: the meters lag, nothing is concluded.
        assert_eq!(rec.observe(r(100, 40, 0, 0)).lost, 0);
        assert_eq!(rec.observe(r(200, 150, 0, 0)).lost, 0);
        // Still, but ingest holds messages in flight: not yet.
        for _ in 0..5 {
            assert_eq!(rec.observe(r(200, 150, 10, 0)).lost, 0);
        }
        // Still and empty for long enough: 50 lost, counted once.
        let found: u64 = (0..STILL_TICKS + 3)
            .map(|_| rec.observe(r(200, 150, 0, 0)).lost)
            .sum();
        assert_eq!(found, 50);
        assert_eq!(rec.reported(), 50);
        // More traffic, no new loss: nothing more.
        let found: u64 = (0..STILL_TICKS + 3)
            .map(|_| rec.observe(r(300, 250, 0, 0)).lost)
            .sum();
        assert_eq!(found, 0);
        // A new loss adds only the new part.
        let found: u64 = (0..STILL_TICKS + 3)
            .map(|_| rec.observe(r(400, 330, 0, 0)).lost)
            .sum();
        assert_eq!(found, 20);
    }

    #[test]
    fn jumps_are_reported_as_they_come_and_more_received_is_no_loss() {
        let mut rec = Reconciler::default();
        assert_eq!(rec.observe(r(10, 10, 0, 0)).jumps, 0);
        assert_eq!(rec.observe(r(10, 10, 0, 2)).jumps, 2);
        assert_eq!(rec.observe(r(10, 10, 0, 2)).jumps, 0);
        // A duplicate delivery (received > appended) is never a negative loss.
        let found: u64 = (0..STILL_TICKS + 2)
            .map(|_| rec.observe(r(10, 12, 0, 2)).lost)
            .sum();
        assert_eq!(found, 0);
    }
}
