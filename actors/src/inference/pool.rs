//! The inference dispatcher: bounded queue, opportunistic batching, worker supervision,
//! fallback. See the module documentation of [`super`] for the policy.

use super::worker::{InferenceWorker, WorkerArgs, WorkerMsg};
use super::ScoreRequest;
use crate::ctx::Ctx;
use crate::metrics::ReasonLabel;
use crate::model::Scorer;
use crate::restart::{ChildKey, Children};
use crate::status::Condition;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

/// Messages of the pool.
#[derive(Debug)]
pub enum PoolMsg {
    /// A feature vector to score.
    Score(Box<ScoreRequest>),
    /// The oldest queued request may have waited `max_wait`: dispatch again.
    Flush,
    /// A worker finished its batch (`error` if the model failed and the rule stood in).
    Done {
        /// Worker index.
        worker: usize,
        /// The model error, if any.
        error: Option<String>,
    },
    /// Restart worker `i` after its backoff.
    RestartWorker(usize),
    /// Look for hung workers.
    HangCheck,
}

/// The pool actor.
pub struct InferencePool;

/// A worker as a supervised child: its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct WorkerKey(usize);

impl std::fmt::Display for WorkerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "worker {}", self.0)
    }
}

impl ChildKey for WorkerKey {
    fn kind(&self) -> &'static str {
        "inference_worker"
    }

    fn stage(&self) -> Option<&'static str> {
        Some("inference_worker")
    }

    fn escalation(&self) -> Option<Condition> {
        None
    }
}

/// Set while a worker runs a batch: when it started and how many requests it holds.
type Busy = Option<(Instant, usize)>;

/// State built in `pre_start`.
pub struct PoolState {
    ctx: Arc<Ctx>,
    queue: VecDeque<(Box<ScoreRequest>, Instant)>,
    workers: Children<WorkerKey, ActorRef<WorkerMsg>, Busy>,
    /// How many workers there are (keys `0..n`).
    n_workers: usize,
    flush_pending: bool,
    failures: u32,
    fallback_until: Option<Instant>,
    fallback: Arc<Scorer>,
}

impl Actor for InferencePool {
    type Msg = PoolMsg;
    type State = PoolState;
    type Arguments = Arc<Ctx>;

    async fn pre_start(
        &self,
        myself: ActorRef<PoolMsg>,
        ctx: Arc<Ctx>,
    ) -> Result<PoolState, ActorProcessingErr> {
        if ctx.faults.start_fails("inference") {
            return Err("injected fault: inference cannot start".into());
        }
        if !crate::model::kernel_threads_pinned() {
            warn!(
                message = "candle kernel threads not pinned; every batch pays a CPU-count lookup (see model::pin_kernel_threads).",
                var = crate::model::KERNEL_THREADS_VAR
            );
        }
        let cfg = &ctx.cfg.inference;
        let fallback = Arc::new(Scorer::fallback(ctx.scorer().feature_names().to_vec()));
        let mut workers = Children::new(
            ctx.cfg.supervisor.clone(),
            ctx.status.clone(),
            ctx.metrics.clone(),
        );
        for i in 0..cfg.workers {
            workers.insert(WorkerKey(i), None);
        }
        let mut st = PoolState {
            queue: VecDeque::with_capacity(cfg.queue_capacity.min(65_536)),
            workers,
            n_workers: cfg.workers,
            flush_pending: false,
            failures: 0,
            fallback_until: None,
            fallback,
            ctx,
        };
        for i in 0..st.n_workers {
            spawn_worker(&myself, &mut st, i).await?;
        }
        let every = (st.ctx.cfg.inference.hang_timeout.get() / 4).max(Duration::from_millis(50));
        myself.send_interval(every, || PoolMsg::HangCheck);
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<PoolMsg>,
        msg: PoolMsg,
        st: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PoolMsg::Score(req) => {
                st.ctx.faults.check("inference").await;
                if st.queue.len() >= st.ctx.cfg.inference.queue_capacity {
                    st.queue.pop_front();
                    st.ctx.metrics.inference_shed.inc();
                }
                st.queue.push_back((req, Instant::now()));
                dispatch(&myself, st);
            }
            PoolMsg::Flush => {
                st.flush_pending = false;
                dispatch(&myself, st);
            }
            PoolMsg::Done { worker, error } => {
                if let Some(w) = st.workers.get_mut(&WorkerKey(worker)) {
                    w.data = None;
                }
                on_outcome(st, error);
                dispatch(&myself, st);
            }
            PoolMsg::RestartWorker(i) => {
                if st.workers.is_down(&WorkerKey(i)) {
                    if let Err(e) = spawn_worker(&myself, st, i).await {
                        worker_failed(&myself, st, i, &e.to_string());
                    }
                }
                dispatch(&myself, st);
            }
            PoolMsg::HangCheck => hang_check(&myself, st),
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<PoolMsg>,
        evt: SupervisionEvent,
        st: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((WorkerKey(i), why)) = st.workers.exit(evt) {
            worker_failed(&myself, st, i, &why);
        }
        Ok(())
    }
}

async fn spawn_worker(
    myself: &ActorRef<PoolMsg>,
    st: &mut PoolState,
    i: usize,
) -> Result<(), ActorProcessingErr> {
    let args = WorkerArgs {
        index: i,
        pool: myself.clone(),
        ctx: st.ctx.clone(),
    };
    let (actor, _) = Actor::spawn_linked(None, InferenceWorker, args, myself.get_cell()).await?;
    let key = WorkerKey(i);
    st.workers.started(&key, actor);
    if let Some(w) = st.workers.get_mut(&key) {
        w.data = None;
    }
    Ok(())
}

/// Reports the failure of worker `i` and schedules its restart (and, under `one_for_all`,
/// every other worker's). The batches of the workers now down are lost and counted.
fn worker_failed(myself: &ActorRef<PoolMsg>, st: &mut PoolState, i: usize, why: &str) {
    for r in st.workers.failed(&WorkerKey(i), why) {
        let WorkerKey(w) = r.key;
        let lost = st.workers.get_mut(&r.key).and_then(|c| c.data.take());
        if let Some((_, n)) = lost {
            st.ctx
                .metrics
                .samples_dropped
                .get_or_create(&ReasonLabel {
                    reason: "inference_worker_failed",
                })
                .inc_by(n as u64);
        }
        myself.send_after(r.delay, move || PoolMsg::RestartWorker(w));
    }
}

fn hang_check(myself: &ActorRef<PoolMsg>, st: &mut PoolState) {
    let limit = st.ctx.cfg.inference.hang_timeout.get();
    let hung: Vec<usize> = (0..st.n_workers)
        .filter(|i| {
            st.workers
                .get(&WorkerKey(*i))
                .is_some_and(|w| w.data.is_some_and(|(t, _)| t.elapsed() > limit))
        })
        .collect();
    for i in hung {
        if let Some(a) = st.workers.stop(&WorkerKey(i)) {
            // The blocking thread cannot be interrupted; the actor is killed and replaced so
            // new batches go elsewhere, and its results, if they ever come, are dropped.
            a.kill();
        }
        worker_failed(myself, st, i, &format!("hung for more than {limit:?}"));
    }
}

fn on_outcome(st: &mut PoolState, error: Option<String>) {
    let now = Instant::now();
    match error {
        None => {
            st.failures = 0;
            if st.fallback_until.is_some_and(|t| now >= t) {
                st.fallback_until = None;
                st.ctx.status.condition(Condition::InferenceFallback, None);
            }
        }
        Some(e) => {
            st.failures += 1;
            if st.failures >= st.ctx.cfg.inference.fallback_after && st.fallback_until.is_none() {
                st.fallback_until = Some(now + st.ctx.cfg.inference.fallback_cooldown.get());
                st.ctx
                    .status
                    .condition(Condition::InferenceFallback, Some(e.clone()));
                warn!(message = "Model failing; fallback rule in use.", error = %e);
            }
        }
    }
}

/// Sends queued requests, oldest first and up to `max_batch` at a time, to idle workers. A
/// request never waits for a batch to fill while a worker idles, unless `max_wait` is set:
/// then a partial batch waits until its oldest request has waited that long (a `Flush` is
/// scheduled for that moment). While every worker is busy the queue simply grows, and the
/// next worker to finish takes all of it (up to `max_batch`).
fn dispatch(myself: &ActorRef<PoolMsg>, st: &mut PoolState) {
    let cfg = &st.ctx.cfg.inference;
    let (max_batch, max_wait) = (cfg.max_batch, cfg.max_wait.get());
    while let Some((_, oldest)) = st.queue.front() {
        let Some(key) = (0..st.n_workers).map(WorkerKey).find(|k| {
            st.workers
                .get(k)
                .is_some_and(|w| w.handle().is_some() && w.data.is_none())
        }) else {
            break;
        };
        let waited = oldest.elapsed();
        if st.queue.len() < max_batch && waited < max_wait {
            if !st.flush_pending {
                st.flush_pending = true;
                myself.send_after(max_wait - waited, || PoolMsg::Flush);
            }
            break;
        }
        let n = st.queue.len().min(max_batch);
        let reqs: Vec<ScoreRequest> = st.queue.drain(..n).map(|(r, _)| *r).collect();
        let in_fallback = st.fallback_until.is_some_and(|t| Instant::now() < t);
        let scorer = if in_fallback {
            st.fallback.clone()
        } else {
            st.ctx.scorer()
        };
        let fallback = st.fallback.clone();
        let Some(w) = st.workers.get_mut(&key) else {
            break;
        };
        let sent = w.handle().is_some_and(|a| {
            a.cast(WorkerMsg::Batch {
                reqs,
                scorer,
                fallback,
            })
            .is_ok()
        });
        if !sent {
            // The worker is gone and its supervision event is on the way (it restarts the
            // worker and dispatches again). The batch is lost; its tickets tell the sensors.
            break;
        }
        w.data = Some((Instant::now(), n));
    }
}

#[cfg(all(test, feature = "fault-injection"))]
mod tests;
