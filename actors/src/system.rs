//! Starting and stopping one gateway: embedded broker, model, context, root supervisor.
//!
//! Design constraints: a model that cannot be loaded never stops the gateway — it runs on the
//! fallback rule, degraded, with the reason in `/status`. Shutdown stops ingest first, lets
//! in-flight windows reach their decisions and the uplink drain (bounded by a timeout), then
//! stops everything.

use crate::config::GatewayConfig;
use crate::ctx::Ctx;
use crate::model::{self, Scorer};
use crate::status::Condition;
use crate::store::{Store, StoreSlot};
use crate::supervisor::{RootMsg, RootSupervisor, Stage};
use ractor::{Actor, ActorRef};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tracing::{error, info};

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid config: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// The embedded broker could not start.
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    /// The store is unusable (locked by another process, or not even a fresh one could be
    /// created).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The actor system could not start.
    #[error("actor system: {0}")]
    Spawn(String),
}

/// A running gateway.
pub struct Gateway {
    /// Shared context (status, metrics, config).
    pub ctx: Arc<Ctx>,
    /// Where the embedded broker listens, if it runs.
    pub broker: Option<SocketAddr>,
    root: ActorRef<RootMsg>,
    join: JoinHandle<()>,
    /// Reads the instruments once a second for the figures of `/status`.
    figures: AbortOnDrop,
    /// Reconciles the embedded broker's meters with ingest (messages it dropped).
    ingest_account: Option<AbortOnDrop>,
}

/// A task that ends with its owner (a dropped `JoinHandle` would leave it running).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Loads the configured model package, or the built-in one; on failure, the fallback rule
/// and the reason.
pub fn load_scorer(cfg: &GatewayConfig) -> (Scorer, Option<String>) {
    let path = &cfg.inference.model;
    let loaded = if path.as_os_str().is_empty() {
        model::load_builtin()
    } else {
        model::load_package(path)
    };
    match loaded {
        Ok(m) => (Scorer::Model(Arc::new(m)), None),
        Err(e) => {
            let why = format!(
                "{}: {e}",
                if path.as_os_str().is_empty() {
                    "built-in model".into()
                } else {
                    path.display().to_string()
                }
            );
            (
                Scorer::fallback(crate::sensor::baseline::feature_names(cfg.sensors.bands)),
                Some(why),
            )
        }
    }
}

/// Feeds [`Ctx::rates`] once a second, for as long as the gateway runs.
async fn record_figures(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        ctx.rates.record(&ctx.metrics);
    }
}

impl Gateway {
    /// Validates `cfg`, starts the embedded broker if configured, loads the model and starts
    /// the supervision tree.
    pub async fn start(cfg: GatewayConfig) -> Result<Gateway, StartError> {
        Self::start_traced(cfg, None).await
    }

    /// Like [`Gateway::start`], emitting decision traces through `traces` (see
    /// [`crate::telemetry`]).
    pub async fn start_traced(
        mut cfg: GatewayConfig,
        traces: Option<crate::telemetry::Traces>,
    ) -> Result<Gateway, StartError> {
        cfg.validate()?;
        let broker = if cfg.broker.embedded {
            let (c, topics) = (cfg.broker.clone(), cfg.ingest.topics.clone());
            let embedded = tokio::task::spawn_blocking(move || crate::broker::start(&c, &topics))
                .await
                .map_err(|e| StartError::Spawn(e.to_string()))??;
            cfg.broker.bind = embedded.addr;
            info!(message = "Embedded broker listening.", addr = %embedded.addr, tls = ?embedded.tls_addr, logins = cfg.broker.requires_login());
            Some(embedded)
        } else {
            None
        };
        let (mut scorer, mut refused) = load_scorer(&cfg);
        let names = crate::sensor::baseline::feature_names(cfg.sensors.bands);
        if scorer.feature_names() != names.as_slice() {
            refused = Some(format!(
                "model features {:?} do not match the features of sensors.bands = {} ({names:?})",
                scorer.feature_names(),
                cfg.sensors.bands
            ));
            scorer = Scorer::fallback(names);
        }
        let store_cfg = cfg.store.clone();
        let opened = tokio::task::spawn_blocking(move || Store::open(&store_cfg))
            .await
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        let (slot, recovered) = match opened {
            Ok(o) => {
                info!(message = "Store open.", path = %o.store.path().display(), next_seq = o.store.next_seq(), epoch = o.store.epoch());
                (StoreSlot::open(o.store), o.recovered)
            }
            // Disk full, read-only, permissions: decide without a store (outbound messages
            // are counted as dropped) and let the uplink reopen it when it can.
            Err(e) if e.is_environmental() => {
                error!(message = "Store unavailable; running without it and retrying.", error = %e);
                (StoreSlot::closed(format!("open: {e}")), None)
            }
            Err(e) => return Err(e.into()),
        };
        let ctx = Ctx::traced(cfg, scorer, slot, traces);
        if let Some(why) = recovered {
            crate::uplink::store_replaced(&ctx, &why);
        }
        if let Some(why) = refused {
            error!(message = "Model refused; running on the fallback rule.", reason = %why);
            ctx.status.condition(Condition::ModelRefused, Some(why));
        } else {
            let s = ctx.scorer();
            info!(
                message = "Model loaded.",
                name = s.name(),
                version = s.version(),
                threshold = s.threshold()
            );
        }
        Self::spawn(ctx, broker).await
    }

    async fn spawn(
        ctx: Arc<Ctx>,
        broker: Option<crate::broker::Embedded>,
    ) -> Result<Gateway, StartError> {
        let (root, join) = Actor::spawn(None, RootSupervisor, ctx.clone())
            .await
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        let figures = AbortOnDrop(tokio::spawn(record_figures(ctx.clone())));
        let ingest_account = broker.as_ref().map(|b| {
            AbortOnDrop(tokio::spawn(crate::ingest::account::run(
                ctx.clone(),
                b.account.clone(),
            )))
        });
        Ok(Gateway {
            ctx,
            broker: broker.map(|b| b.addr),
            root,
            join,
            figures,
            ingest_account,
        })
    }

    /// Stops ingest, waits up to `drain` for in-flight decisions and the uplink backlog, then
    /// stops the tree.
    pub async fn shutdown(self, drain: Duration) {
        let _ = ractor::call_t!(self.root, RootMsg::StopStage, 6000, Stage::Ingest);
        let deadline = Instant::now() + drain;
        let m = &self.ctx.metrics;
        let mut last = u64::MAX;
        // In-flight windows settle when decisions stop changing; the uplink when its backlog is
        // empty (or the link is down, in which case waiting does not help).
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let decisions = m.decisions.get();
            let backlog: i64 = ["alert", "summary", "raw"]
                .iter()
                .map(|c| {
                    m.store_backlog
                        .get_or_create(&crate::metrics::ClassLabel { class: c })
                        .get()
                })
                .sum();
            let linked = m.uplink_connected.get() == 1;
            if decisions == last && (backlog == 0 || !linked) {
                break;
            }
            last = decisions;
        }
        for s in [
            Stage::Http,
            Stage::Sensors,
            Stage::Inference,
            Stage::Feedback,
            Stage::Uplink,
        ] {
            let _ = ractor::call_t!(self.root, RootMsg::StopStage, 6000, s);
        }
        drop(self.figures);
        drop(self.ingest_account);
        self.root.stop(Some("shutdown".into()));
        let _ = tokio::time::timeout(Duration::from_secs(5), self.join).await;
        let Some(store) = self.ctx.store.get() else {
            return;
        };
        match tokio::time::timeout(Duration::from_secs(10), store.flush_async()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => error!(message = "Final store flush failed.", error = %e),
            Err(_) => error!(message = "Final store flush timed out."),
        }
    }
}
