//! An inference worker: runs one batch at a time through the scorer on a blocking thread and
//! sends every decision straight back to its sensor.
//!
//! Design constraints: candle never runs on an async worker thread (it would stall the
//! runtime); the actor awaits `spawn_blocking`, so its mailbox holds at most the next batch,
//! which the pool never sends before `Done`. A model error is not a crash: the batch is scored
//! by the fallback rule and the pool is told. A panic in the model is a crash: the worker
//! fails and its supervisor (the pool) restarts it. Each request's ticket is marked answered
//! as its decision is sent; the requests of a batch that dies with its worker are dropped
//! unanswered, which tells their sensors.

use super::pool::PoolMsg;
use super::{ScoreRequest, Scored};
use crate::ctx::Ctx;
use crate::model::Scorer;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::sync::Arc;
use std::time::Instant;

/// Messages of a worker.
#[derive(Debug)]
pub enum WorkerMsg {
    /// Score this batch with `scorer`; `fallback` covers a model error.
    Batch {
        /// The requests.
        reqs: Vec<ScoreRequest>,
        /// The scorer chosen by the pool.
        scorer: Arc<Scorer>,
        /// The rule used if `scorer` errors.
        fallback: Arc<Scorer>,
    },
}

/// A worker; `index` is its place in the pool.
pub struct InferenceWorker;

/// Spawn arguments.
pub struct WorkerArgs {
    /// Place in the pool, echoed in `Done`.
    pub index: usize,
    /// The pool.
    pub pool: ActorRef<PoolMsg>,
    /// Shared context.
    pub ctx: Arc<Ctx>,
}

impl Actor for InferenceWorker {
    type Msg = WorkerMsg;
    type State = WorkerArgs;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _: ActorRef<WorkerMsg>,
        args: WorkerArgs,
    ) -> Result<WorkerArgs, ActorProcessingErr> {
        if args.ctx.faults.start_fails("inference_worker") {
            return Err("injected fault: inference worker cannot start".into());
        }
        Ok(args)
    }

    async fn handle(
        &self,
        _: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        st: &mut WorkerArgs,
    ) -> Result<(), ActorProcessingErr> {
        let WorkerMsg::Batch {
            mut reqs,
            scorer,
            fallback,
        } = msg;
        // The worker's faults apply on the blocking thread, where candle runs (below): a hang
        // there is what a stuck model looks like. Spinning in this async handler instead would
        // hold a runtime thread, and with it possibly the pool task that must detect the hang.
        let started = Instant::now();
        let feats: Vec<Vec<f32>> = reqs
            .iter_mut()
            .map(|r| std::mem::take(&mut r.features))
            .collect();
        let faults = st.ctx.faults.clone();
        let run = scorer.clone();
        let (feats, result) = tokio::task::spawn_blocking(move || {
            faults.check_blocking("inference_worker");
            let r = run.score_batch(&feats);
            (feats, r)
        })
        .await
        .map_err(|e| format!("inference worker panicked: {e}"))?;
        let ran = (started, Instant::now());
        let m = &st.ctx.metrics;
        let n = reqs.len();
        m.inferences.inc_by(n as u64);
        m.inference_batch_size.observe(n as f64);
        m.inference_seconds.observe((ran.1 - ran.0).as_secs_f64());
        let (scores, used, error) = match result {
            Ok(s) if s.len() == n => (s, scorer, None),
            Ok(s) => {
                let e = format!("scorer returned {} scores for {n} vectors", s.len());
                (
                    fallback
                        .score_batch(&feats)
                        .unwrap_or_else(|_| vec![0.0; n]),
                    fallback,
                    Some(e),
                )
            }
            Err(e) => (
                fallback
                    .score_batch(&feats)
                    .unwrap_or_else(|_| vec![0.0; n]),
                fallback,
                Some(e.to_string()),
            ),
        };
        if error.is_some() {
            m.inference_fallback_batches.inc();
        }
        let is_fallback = used.is_fallback();
        let model = Arc::new(super::ModelId::of(&used));
        for ((mut req, f), score) in reqs.into_iter().zip(feats).zip(scores) {
            req.features = f;
            req.ticket.answered();
            let reply = req.reply.clone();
            let _ = reply.send_message(super::Reply::Scored(Box::new(Scored {
                req,
                score,
                threshold: used.threshold(),
                model: model.clone(),
                fallback: is_fallback,
                batch: n,
                ran,
            })));
        }
        let _ = st.pool.cast(PoolMsg::Done {
            worker: st.index,
            error,
        });
        Ok(())
    }
}
