//! The pooled inference stage: a dispatcher that batches feature vectors opportunistically and
//! N supervised workers that run the model on blocking threads.
//!
//! Design constraints: the queue is bounded (`queue_capacity`); on overload the oldest
//! request is shed and counted, because a fresh decision is worth more than a stale one.
//! Batching never delays a request that a worker could take: while a worker is idle, a request
//! goes out at once together with whatever else is queued (up to `max_batch`); batches grow
//! only while every worker is busy, so they get larger exactly when throughput is needed.
//! `max_wait` (default `0ms`, off) optionally holds a batch back that long to fill while a
//! worker idles. Batches leave in queue order and at most `workers` run at once, so latency
//! stays bounded. A worker that panics is restarted by policy; one that hangs longer than
//! `hang_timeout` is replaced and its batch is lost (counted). Repeated model errors switch the
//! pool to the fallback rule (mode degraded) for a cool-down.
//!
//! Every request carries a [`Ticket`]: its place in its sensor's decision order. A request
//! that ends without a decision (shed, lost with a worker or with the pool itself) tells its
//! sensor so when its ticket is dropped, and the sensor's reorder buffer
//! ([`crate::sensor::order`]) stops waiting for it; decisions are applied in window order per
//! sensor even when two workers finish a sensor's batches out of order.

pub mod pool;
pub mod worker;

pub use pool::{InferencePool, PoolMsg};

pub use crate::config::InferenceConfig;
use crate::sample::{Calibrated, WindowStats};
use ractor::DerivedActorRef;
use std::sync::Arc;
use std::time::Instant;

pub use crate::telemetry::Stamps;

/// One feature vector to score, with what the decision needs when it comes back.
#[derive(Debug)]
pub struct ScoreRequest {
    /// Sensor id.
    pub sensor: Arc<str>,
    /// Normalised features, in the model's feature order.
    pub features: Vec<f32>,
    /// The window the features describe.
    pub stats: WindowStats,
    /// The sensor's clock at the window's end ([`crate::sensor::tracker::Tracker::clock`]).
    pub clock: i64,
    /// The sensor's calibrated novelty over the hop ([`crate::sensor::novelty`]).
    pub novelty: Calibrated,
    /// When ingest received the sample that completed the window, when its sensor began on
    /// it, and when the features were ready (for the decision latency and its trace).
    pub stamps: Stamps,
    /// Where the decision goes.
    pub reply: ReplyTo,
    /// The request's place in its sensor's decision order; dropped unanswered, it tells the
    /// sensor that no decision will come.
    pub ticket: Ticket,
}

/// A request's sequence number in its sensor's decision order, and the promise of an answer.
///
/// The worker that scores the request marks its ticket [answered](Ticket::answered) as it sends
/// the decision. A ticket dropped before that (the request was shed, or lost with a crashed or
/// hung worker, a failed send or a restarted pool) sends [`Reply::Unanswered`] to its
/// sensor, so every way a request can end is reported without the pool tracking them.
#[derive(Debug)]
pub struct Ticket {
    /// Sequence number, from the sensor's [`crate::sensor::order::Reorder::issue`].
    seq: u64,
    /// Whom to tell if the request ends unanswered; `None` once answered.
    notify: Option<ReplyTo>,
}

impl Ticket {
    /// A ticket for request `seq` of the sensor at `sensor`.
    pub fn new(seq: u64, sensor: ReplyTo) -> Self {
        Self {
            seq,
            notify: Some(sensor),
        }
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The decision is on its way: dropping the ticket now tells nobody.
    pub fn answered(&mut self) {
        self.notify = None;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(sensor) = self.notify.take() {
            // A sensor that is gone has nothing to wait for.
            let _ = sensor.send_message(Reply::Unanswered(self.seq));
        }
    }
}

/// Which scorer produced a decision, as carried by alerts (`model`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    /// Package name, or `"fallback"`.
    pub name: String,
    /// Package version, or the rule's.
    pub version: String,
    /// SHA-256 of the package's weights (hex), empty for the fallback rule.
    pub sha256: String,
}

impl ModelId {
    /// The identity of `scorer`.
    pub fn of(scorer: &crate::model::scorer::Scorer) -> Self {
        Self {
            name: scorer.name().to_string(),
            version: scorer.version().to_string(),
            sha256: scorer.sha256().to_string(),
        }
    }
}

/// What a sensor hears back about one of its requests.
#[derive(Debug)]
pub enum Reply {
    /// The request, scored.
    Scored(Box<Scored>),
    /// Request `seq` ended without a decision (shed, or lost with a worker or the pool).
    Unanswered(u64),
}

/// Where a request's answer goes: the sensor that asked, as seen by inference (its actor
/// turns a [`Reply`] into its own message), so inference knows no sensor type.
pub type ReplyTo = DerivedActorRef<Reply>;

/// A scored request, sent back to its sensor.
#[derive(Debug)]
pub struct Scored {
    /// The request.
    pub req: ScoreRequest,
    /// Anomaly score (higher = more anomalous).
    pub score: f32,
    /// The scorer's calibrated threshold.
    pub threshold: f32,
    /// The scorer that produced it (shared by the batch).
    pub model: Arc<ModelId>,
    /// True when the fallback rule produced the score.
    pub fallback: bool,
    /// Size of the batch it ran in.
    pub batch: usize,
    /// When that batch started and finished running through the scorer.
    pub ran: (Instant, Instant),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::duration::Dur;
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use std::time::Duration;
    use tokio::sync::mpsc;

    /// Stands in for a sensor: forwards the numbers of the requests it hears are unanswered.
    pub(crate) struct Probe;

    impl Actor for Probe {
        type Msg = Reply;
        type State = mpsc::UnboundedSender<u64>;
        type Arguments = mpsc::UnboundedSender<u64>;

        async fn pre_start(
            &self,
            _: ActorRef<Reply>,
            tx: Self::Arguments,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(tx)
        }

        async fn handle(
            &self,
            _: ActorRef<Reply>,
            msg: Reply,
            tx: &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            if let Reply::Unanswered(seq) = msg {
                let _ = tx.send(seq);
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_ticket_dropped_unanswered_tells_its_sensor_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (probe_ref, handle) = Actor::spawn(None, Probe, tx).await.unwrap();
        let probe: ReplyTo = probe_ref.get_derived();
        let mut answered = Ticket::new(1, probe.clone());
        answered.answered();
        drop(answered);
        drop(Ticket::new(2, probe.clone()));
        // A queue dropped whole, as by a pool that restarts.
        let queue: Vec<Ticket> = (3..6).map(|s| Ticket::new(s, probe.clone())).collect();
        assert_eq!(queue[1].seq(), 4);
        drop(queue);
        let mut got = Vec::new();
        for _ in 0..4 {
            let seq = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
            got.push(seq.unwrap().unwrap());
        }
        assert_eq!(got, vec![2, 3, 4, 5]);
        probe_ref.stop(None);
        handle.await.unwrap();
        // Nothing else was sent; a ticket whose sensor is gone drops quietly.
        assert_eq!(rx.try_recv().ok(), None);
        drop(Ticket::new(6, probe.clone()));
    }

    #[test]
    fn max_wait_is_bounded_and_defaults_to_none() {
        let cfg = InferenceConfig::default();
        assert!(cfg.max_wait.get().is_zero());
        assert!(cfg.validate().is_ok());
        let slow = InferenceConfig {
            max_wait: Dur::ms(1500),
            ..InferenceConfig::default()
        };
        let err = slow.validate().unwrap_err();
        assert!(format!("{err:?}").contains("inference.max_wait"), "{err:?}");
    }
}
