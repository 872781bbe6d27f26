//! What the supervisors' own tests share: a context whose restarts are fast and whose
//! strategy is chosen, and a look at a supervisor's children from outside.

use crate::config::{GatewayConfig, RestartPolicy, Strategy};
use crate::ctx::Ctx;
use crate::duration::Dur;
use crate::fault::{Fault, FaultRequest};
use crate::model::Scorer;
use crate::store::StoreSlot;
use ractor::{ActorCell, ActorId};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A context with `strategy`, 10 ms restarts without jitter, the fallback rule over eight
/// features (names it ignores, so it scores 0) and no store;
/// `tune` adjusts the rest of the configuration first.
pub fn ctx(strategy: Strategy, tune: impl FnOnce(&mut GatewayConfig)) -> Arc<Ctx> {
    let mut cfg = GatewayConfig::default();
    tune(&mut cfg);
    cfg.supervisor = RestartPolicy {
        strategy,
        backoff_initial: Dur::ms(10),
        backoff_max: Dur::ms(50),
        jitter: 0.0,
        ..RestartPolicy::default()
    };
    let scorer = Scorer::fallback((0..8).map(|i| format!("feature_{i}")).collect());
    Ctx::new(cfg, scorer, StoreSlot::closed("test".into()))
}

/// Makes the next message `stage` handles panic.
pub fn arm_panic(ctx: &Ctx, stage: &str) {
    ctx.faults
        .arm(&FaultRequest {
            stage: stage.into(),
            fault: Fault::Panic,
            count: 1,
        })
        .expect("fault-injection is compiled in");
}

/// The actor ids of `sup`'s children.
pub fn children(sup: &ActorCell) -> HashSet<ActorId> {
    sup.get_children().iter().map(|c| c.get_id()).collect()
}

/// Waits up to 10 s for `done`, panicking with `what` if it never holds.
pub async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `sup` has `n` children again after one of `before` failed and `restarts` of
/// `kind` were counted, then a little longer (so late restarts would show), and returns them.
pub async fn after_restart(
    ctx: &Ctx,
    sup: &ActorCell,
    kind: &'static str,
    before: &HashSet<ActorId>,
) -> HashSet<ActorId> {
    let n = before.len();
    until("the restart", || {
        let now = children(sup);
        ctx.metrics.restarts(kind) == 1 && now.len() == n && now != *before
    })
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let now = children(sup);
    assert_eq!(now.len(), n, "every child back");
    assert_eq!(ctx.metrics.restarts(kind), 1, "one failure counted");
    now
}
