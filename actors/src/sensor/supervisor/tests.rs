//! The sensor supervisor applies the `[supervisor]` strategy to its sensors: a sensor made to
//! panic comes back alone (`one_for_one`) or with every other sensor (`one_for_all`).
#![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.

use super::*;
use crate::config::Strategy;
use crate::ctx::testing::{after_restart, arm_panic, children, ctx, until};
use crate::sample::Sample;
use std::collections::HashSet;

async fn crash_one_of_three(
    strategy: Strategy,
) -> (HashSet<ractor::ActorId>, HashSet<ractor::ActorId>) {
    let ctx = ctx(strategy, |_| {});
    let ports = SensorPorts::unconnected(&ctx.cfg);
    let (sup, _) = Actor::spawn(None, SensorSupervisor, (ctx.clone(), ports))
        .await
        .unwrap();
    let deliver = |sensor: &str| {
        let batch = SampleBatch {
            permit: ctx.ingest_gate.acquire(16),
            samples: vec![Sample {
                ts: now_ms(),
                v: 1.0,
            }],
            received: Instant::now(),
        };
        sup.cast(SensorSupMsg::Deliver {
            sensor: sensor.into(),
            batch,
        })
        .unwrap();
    };
    for s in ["a", "b", "c"] {
        deliver(s);
    }
    until("three sensors", || children(&sup.get_cell()).len() == 3).await;
    let before = children(&sup.get_cell());
    arm_panic(&ctx, "sensor");
    deliver("a");
    let after = after_restart(&ctx, &sup.get_cell(), "sensor", &before).await;
    assert_eq!(ctx.metrics.sensors_active.get(), 3);
    sup.stop(None);
    (before, after)
}

#[tokio::test]
async fn one_for_one_restarts_the_crashed_sensor_alone() {
    let (before, after) = crash_one_of_three(Strategy::OneForOne).await;
    assert_eq!(
        before.intersection(&after).count(),
        2,
        "the other two kept running"
    );
}

#[tokio::test]
async fn one_for_all_restarts_every_sensor() {
    let (before, after) = crash_one_of_three(Strategy::OneForAll).await;
    assert_eq!(
        before.intersection(&after).count(),
        0,
        "all three restarted"
    );
}
