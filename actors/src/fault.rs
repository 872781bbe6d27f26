//! Test-only fault hook: makes a stage panic or hang on command, for the tests and the chaos
//! suite.
//!
//! Design constraints: compiled in always so call sites need no `cfg`, but inert unless the
//! `fault-injection` feature is on — then `check` costs one relaxed atomic load per message
//! while nothing is armed. Faults are armed per stage through `POST /faults` (feature builds
//! only) and consumed by the next message that stage handles.

use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Stages that accept faults.
pub const STAGES: &[&str] = &[
    "ingest",
    "sensor",
    "inference",
    "inference_worker",
    "uplink",
    "feedback",
];

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Panic inside the next message handler.
    Panic,
    /// Await for this long inside the handler (the mailbox stalls, the thread does not).
    HangAsync {
        /// How long to hang, ms.
        ms: u64,
    },
    /// Spin on the CPU for this long inside the handler (a worker thread is lost meanwhile;
    /// for `inference_worker`, the blocking thread candle runs on).
    HangCpu {
        /// How long to spin, ms.
        ms: u64,
    },
    /// Fail every `pre_start` of the stage until cleared.
    FailStart,
}

/// An armed fault as posted to `/faults`.
#[derive(Debug, Clone, Deserialize)]
pub struct FaultRequest {
    /// Target stage, one of [`STAGES`].
    pub stage: String,
    /// What to do.
    #[serde(flatten)]
    pub fault: Fault,
    /// How many messages it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
}

const fn one() -> u32 {
    1
}

/// Armed faults per stage.
#[derive(Default)]
pub struct Faults {
    armed_any: AtomicBool,
    armed: Mutex<HashMap<&'static str, (Fault, u32)>>,
    fail_start: Mutex<HashMap<&'static str, bool>>,
}

/// Why a fault request was refused.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The stage name is not one of [`STAGES`].
    #[error("unknown stage {0:?}; known: {STAGES:?}")]
    UnknownStage(String),
    /// The gateway was built without the `fault-injection` feature.
    #[error("fault injection is not compiled in (build with --features fault-injection)")]
    Disabled,
}

impl Faults {
    /// Whether this build honours faults.
    pub const fn enabled() -> bool {
        cfg!(feature = "fault-injection")
    }

    /// Arms `req`; `FailStart` with count 0 clears a permanent start failure.
    pub fn arm(&self, req: &FaultRequest) -> Result<(), FaultError> {
        if !Self::enabled() {
            return Err(FaultError::Disabled);
        }
        let stage = STAGES
            .iter()
            .copied()
            .find(|s| *s == req.stage)
            .ok_or_else(|| FaultError::UnknownStage(req.stage.clone()))?;
        if req.fault == Fault::FailStart {
            self.fail_start.lock().insert(stage, req.count > 0);
        } else {
            self.armed
                .lock()
                .insert(stage, (req.fault, req.count.max(1)));
        }
        self.armed_any.store(true, Ordering::Release);
        Ok(())
    }

    fn take(&self, stage: &str) -> Option<Fault> {
        if !Self::enabled() || !self.armed_any.load(Ordering::Relaxed) {
            return None;
        }
        let mut g = self.armed.lock();
        let (fault, left) = g.get_mut(stage)?;
        let f = *fault;
        *left -= 1;
        if *left == 0 {
            g.remove(stage);
        }
        Some(f)
    }

    /// Applies an armed fault for `stage`, if any, inside a message handler.
    pub async fn check(&self, stage: &str) {
        match self.take(stage) {
            None | Some(Fault::FailStart) => {}
            Some(Fault::Panic) => panic!("injected fault: panic in stage {stage}"),
            // Boxed: this future is part of every handler that checks for faults (one per
            // sensor actor), and a timer inline would make each of them larger.
            Some(Fault::HangAsync { ms }) => {
                Box::pin(tokio::time::sleep(Duration::from_millis(ms))).await
            }
            Some(Fault::HangCpu { ms }) => {
                let until = std::time::Instant::now() + Duration::from_millis(ms);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// The same as [`Faults::check`] for code running on a blocking thread.
    pub fn check_blocking(&self, stage: &str) {
        match self.take(stage) {
            None | Some(Fault::FailStart) => {}
            Some(Fault::Panic) => panic!("injected fault: panic in stage {stage}"),
            Some(Fault::HangAsync { ms }) => std::thread::sleep(Duration::from_millis(ms)),
            Some(Fault::HangCpu { ms }) => {
                let until = std::time::Instant::now() + Duration::from_millis(ms);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// Whether `pre_start` of `stage` must fail now.
    pub fn start_fails(&self, stage: &str) -> bool {
        Self::enabled()
            && self.armed_any.load(Ordering::Relaxed)
            && self.fail_start.lock().get(stage).copied().unwrap_or(false)
    }
}
