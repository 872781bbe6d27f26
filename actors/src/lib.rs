//! edgegw's supervised actor system: MQTT ingest → per-sensor window actors → pooled model
//! inference → decisions upstream, under a supervision tree with restart policies.
//!
//! # Layout
//!
//! - [`config`]: the whole configuration, one section per stage, validated at load time.
//! - [`system`]: starts a gateway (embedded broker, model, root supervisor) and stops it.
//! - [`supervisor`]: restart policy and the root supervisor.
//! - [`ingest`]: the MQTT subscriber and payload parsing.
//! - [`sensor`]: per-sensor actors (window, baseline, decisions, alert storm control,
//!   summaries) and their supervisor.
//! - [`inference`]: the micro-batching pool and its workers.
//! - [`model`]: the autoencoder model package, training, int8 variant and fallback rule.
//! - [`store`]: the sled store, source of truth for everything outbound; dead letters.
//! - [`feedback`]: the feedback channel from the cloud (labels, thresholds, raw requests,
//!   model announcements): limits on intake, validation, idempotency, application.
//! - [`uplink`]: commits to the store and publishes upstream, forgetting a record on its PUBACK.
//! - [`http`]: `/healthz`, `/readyz`, `/status`, `/metrics`.
//! - [`telemetry`]: decision traces, sampled at decision time, exported over OTLP/gRPC from
//!   their own thread.
//! - [`sim`]: a deterministic simulated sensor fleet (demo, training, tests).
//! - [`metrics`], [`status`], [`deadletter`], [`fault`]: shared instruments and state.

pub mod broker;
pub mod config;
pub mod ctx;
pub mod deadletter;
pub mod duration;
pub mod eval;
pub mod fault;
pub mod feedback;
pub mod flow;
pub mod http;
pub mod inference;
pub mod ingest;
pub mod learned;
pub mod metrics;
pub mod model;
pub mod mqtt;
pub mod outbound;
pub mod port;
pub mod ratelog;
pub mod restart;
pub mod sample;
pub mod sensor;
pub mod sim;
pub mod status;
pub mod store;
pub mod supervisor;
pub mod system;
pub mod telemetry;
pub mod uplink;

pub use config::{ConfigError, GatewayConfig};
pub use system::{Gateway, StartError};
