//! The chaos scenarios: the real gateway, real mosquitto brokers, a TCP fault proxy on the
//! uplink and the test-only fault hook, each scenario checked by the oracle after its faults
//! stop (see `edgegw_chaos::scenario` for the properties and the report).
//!
//! Run: `cargo test -p edgegw-chaos --release` (set `EDGEGW_BIN` to a gateway built with
//! `--features fault-injection` to skip the build the harness would otherwise start).
//! Replay: `EDGEGW_CHAOS_SEED=<seed printed by the run>`. Soak: `EDGEGW_CHAOS_SOAK=1` scales
//! every scenario up (a 10-minute outage, 30 minutes of flapping, 50 kill -9s, 10× the
//! faults and the flood); run it with `--test-threads 1`. Reports: one JSON line per scenario
//! in `$EDGEGW_CHAOS_REPORT` (default `target/chaos-report.jsonl`).

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure here should stop the run loudly.

mod disk;
mod ingest;
mod network;
mod process;
mod stages;
mod telemetry;
