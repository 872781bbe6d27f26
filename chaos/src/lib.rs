//! Fault injection for edgegw: the pieces the chaos scenarios and the root package's black-box
//! tests use to break things on purpose, and the harness that runs the real gateway against real
//! brokers. Only tests and benches depend on it; the release binary does not link it.
//!
//! # Layout
//!
//! - [`proxy`]: a TCP fault proxy between the gateway and a broker.
//! - [`oracle`]: records what arrived upstream and judges it against what was committed.
//! - [`harness`]: real mosquitto brokers and clients, the gateway binary, polling helpers.
//! - [`scenario`]: the shared flow of a chaos scenario (rig, fault phase, drain, judge).
//! - [`report`]: the per-scenario report (JSON lines).
pub mod harness;
pub mod oracle;
pub mod proxy;
pub mod report;
pub mod scenario;
