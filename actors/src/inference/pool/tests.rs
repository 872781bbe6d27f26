//! The pool applies the `[supervisor]` strategy to its workers: a worker made to panic comes
//! back alone (`one_for_one`) or with every other worker (`one_for_all`), and the request it
//! held is answered as lost.
#![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.

use super::*;
use crate::config::Strategy;
use crate::ctx::testing::{after_restart, arm_panic, children, ctx, until};
use crate::inference::tests::Probe;
use crate::inference::{Reply, Ticket};
use crate::sample::{Calibrated, WindowStats};
use crate::telemetry::Stamps;
use ractor::ActorId;
use std::collections::HashSet;
use tokio::sync::mpsc;

fn request(asker: &ActorRef<Reply>, bands: usize, n_features: usize) -> Box<ScoreRequest> {
    let reply = asker.get_derived();
    Box::new(ScoreRequest {
        sensor: "s".into(),
        features: vec![0.0; n_features],
        stats: WindowStats {
            start_ts: 0,
            end_ts: 1,
            n: 8,
            mean: 0.0,
            std: 0.0,
            min: 0.0,
            max: 0.0,
            p05: 0.0,
            p50: 0.0,
            p95: 0.0,
            bands: vec![0.0; bands],
        },
        clock: 1,
        novelty: Calibrated::NONE,
        stamps: Stamps::at(Instant::now()),
        ticket: Ticket::new(7, reply.clone()),
        reply,
    })
}

async fn crash_one_of_three(strategy: Strategy) -> (HashSet<ActorId>, HashSet<ActorId>) {
    let ctx = ctx(strategy, |c| c.inference.workers = 3);
    let (pool, _) = Actor::spawn(None, InferencePool, ctx.clone())
        .await
        .unwrap();
    until("three workers", || children(&pool.get_cell()).len() == 3).await;
    let before = children(&pool.get_cell());
    let (tx, mut replies) = mpsc::unbounded_channel();
    let (asker, _) = Actor::spawn(None, Probe, tx).await.unwrap();
    arm_panic(&ctx, "inference_worker");
    let n_features = ctx.scorer().feature_names().len();
    let req = request(&asker, ctx.cfg.sensors.bands, n_features);
    pool.cast(PoolMsg::Score(req)).unwrap();
    let after = after_restart(&ctx, &pool.get_cell(), "inference_worker", &before).await;
    let unanswered = tokio::time::timeout(Duration::from_secs(5), replies.recv())
        .await
        .expect("an answer for the lost request")
        .unwrap();
    assert_eq!(unanswered, 7, "the lost request is answered as unanswered");
    pool.stop(None);
    asker.stop(None);
    (before, after)
}

#[tokio::test]
async fn one_for_one_restarts_the_crashed_worker_alone() {
    let (before, after) = crash_one_of_three(Strategy::OneForOne).await;
    assert_eq!(
        before.intersection(&after).count(),
        2,
        "the other two kept running"
    );
}

#[tokio::test]
async fn one_for_all_restarts_every_worker() {
    let (before, after) = crash_one_of_three(Strategy::OneForAll).await;
    assert_eq!(
        before.intersection(&after).count(),
        0,
        "all three restarted"
    );
}
