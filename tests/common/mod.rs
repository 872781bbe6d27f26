//! The black-box harness of the root package's tests: the chaos crate's harness
//! (`edgegw_chaos::harness`), aimed at this package's own `edgegw` binary.
//!
//! Design constraints: the root tests must never start a nested cargo build, so every way to
//! start a gateway here first points the harness at `CARGO_BIN_EXE_edgegw` (which cargo built
//! for this very test run, with this run's features).

#![allow(dead_code, unused_imports)] // each test binary uses a different part of the harness

pub use edgegw_chaos::harness::{
    feeder, free_port, json_lines, poll_until, publish_once, wait_until, write, Mosquitto, Pub, Sub,
};
use std::path::{Path, PathBuf};

/// This package's `edgegw` binary (and the harness's, from now on).
pub fn bin() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_edgegw"));
    edgegw_chaos::harness::set_gateway_bin(&p);
    p
}

/// A command running [`bin`] without the harness's own `EDGEGW_*` variables (the gateway
/// would read them as config overrides).
pub fn bin_command() -> std::process::Command {
    edgegw_chaos::harness::gateway_command(&bin())
}

/// The harness's gateway, started from [`bin`].
pub struct Gw(edgegw_chaos::harness::Gw);

impl Gw {
    /// See `edgegw_chaos::harness::Gw::start`.
    pub fn start(toml: &str) -> Self {
        bin();
        Gw(edgegw_chaos::harness::Gw::start(toml))
    }

    /// See `edgegw_chaos::harness::Gw::start_with_args_in`.
    pub fn start_with_args_in(dir: &Path, toml: &str, args: &[&str]) -> Self {
        bin();
        Gw(edgegw_chaos::harness::Gw::start_with_args_in(
            dir, toml, args,
        ))
    }

    /// See `edgegw_chaos::harness::Gw::start_in`.
    pub fn start_in(dir: &Path, toml: &str) -> Self {
        bin();
        Gw(edgegw_chaos::harness::Gw::start_in(dir, toml))
    }

    /// SIGKILL.
    pub fn kill9(self) {
        self.0.kill9();
    }

    /// SIGTERM and wait; the exit code.
    pub fn stop(self) -> Option<i32> {
        self.0.stop()
    }
}

impl std::ops::Deref for Gw {
    type Target = edgegw_chaos::harness::Gw;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// The metric families `SPEC.md` names, as OpenMetrics and OTLP name them (counters without
/// `_total`).
pub const SPEC_FAMILIES: [&str; 18] = [
    "edgegw_samples_ingested",
    "edgegw_ingest_rejected",
    "edgegw_ingest_bytes",
    "edgegw_inferences",
    "edgegw_inference_batch_size",
    "edgegw_inference_seconds",
    "edgegw_decision_latency_seconds",
    "edgegw_alerts",
    "edgegw_alerts_suppressed",
    "edgegw_uplink_messages",
    "edgegw_uplink_bytes",
    "edgegw_store_backlog",
    "edgegw_store_bytes",
    "edgegw_store_evicted",
    "edgegw_actor_restarts",
    "edgegw_feedback",
    "edgegw_feedback_dropped",
    "edgegw_sensors_active",
];
