//! The embedded MQTT broker (rumqttd), for gateways whose sensors have no broker of their own.
//!
//! Design constraints: rumqttd runs its servers on threads of its own and only logs a bind
//! failure, so the address is probed first and the broker is declared up only once a TCP
//! connection to it succeeds. It lives as long as the process (rumqttd has no shutdown).
//!
//! The broker keeps one bounded in-memory log per subscription filter; a subscriber that falls
//! further behind than the log holds (the gateway's ingest, when sensors publish faster than
//! it decides) has its read cursor moved past what it never read, while every publisher got
//! its PUBACK. rumqttd reports the jump but not how much it skipped, so the broker's own
//! meters are kept here: how many messages were appended to each of the ingest filters. The
//! difference to what ingest received, once traffic is still, is the loss (see
//! [`crate::ingest::account`]).

use crate::config::BrokerConfig;
use rumqttd::{
    Broker, Config, ConnectionSettings, Meter, MetricType, RouterConfig, ServerSettings, TlsConfig,
};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::warn;

/// How often rumqttd pushes its meters and alerts, seconds.
pub const METER_PERIOD_S: u64 = 1;

/// The embedded broker's account of the ingest filters, from its meters and alerts.
#[derive(Debug, Default)]
pub struct BrokerAccount {
    appended: AtomicU64,
    cursor_jumps: AtomicU64,
}

impl BrokerAccount {
    /// Messages appended to the logs of the ingest filters (what the broker accepted for
    /// ingest), as of the last meter push.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Times a reader of an ingest filter had its cursor moved past messages it had not read.
    pub fn cursor_jumps(&self) -> u64 {
        self.cursor_jumps.load(Ordering::Relaxed)
    }
}

/// A running embedded broker.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// Where its plaintext listener listens.
    pub addr: SocketAddr,
    /// Where its TLS listener listens, when configured.
    pub tls_addr: Option<SocketAddr>,
    /// Its account of the ingest filters.
    pub account: Arc<BrokerAccount>,
}

/// Why the embedded broker did not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address is taken or not ours.
    #[error("broker.bind {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Its meters, alerts or threads could not be set up.
    #[error("embedded broker: {0}")]
    Start(String),
    /// The broker did not accept connections in time.
    #[error("embedded broker did not come up on {0}")]
    NotUp(SocketAddr),
}

/// Starts the broker on `cfg.bind` (and `cfg.tls_bind`), accounting for the subscription filters `ingest` (exactly
/// as ingest subscribes them).
pub fn start(cfg: &BrokerConfig, ingest: &[String]) -> Result<Embedded, BrokerError> {
    let logins = cfg
        .logins()
        .map_err(|e| BrokerError::Start(e.to_string()))?;
    let addr = probe(cfg.bind)?;
    if !addr.ip().is_loopback() {
        warn!(
            message = "Embedded broker: plaintext MQTT listener beyond loopback; sensor data \
                       and logins cross the network unencrypted (use broker.tls_bind).",
            addr = %addr,
            logins = logins.is_some(),
        );
    }
    let listener = |name: &str, listen: SocketAddr, tls: Option<TlsConfig>| ServerSettings {
        name: name.into(),
        listen,
        tls,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: cfg.max_payload_bytes,
            max_inflight_count: 500,
            auth: logins.clone(),
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let mut servers = HashMap::from([("v4".to_string(), listener("v4", addr, None))]);
    let tls_addr = match cfg.tls_bind {
        Some(bind) => {
            let tls_addr = probe(bind)?;
            let tls = TlsConfig::Rustls {
                capath: Some(cfg.ca_file.display().to_string()),
                certpath: cfg.cert_file.display().to_string(),
                keypath: cfg.key_file.display().to_string(),
            };
            servers.insert("v4-tls".into(), listener("v4-tls", tls_addr, Some(tls)));
            Some(tls_addr)
        }
        None => None,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: cfg.max_connections,
            max_outgoing_packet_count: 1000,
            // rumqttd keeps an in-memory log per subscription filter of
            // max_segment_size × max_segment_count bytes; its defaults (100 MiB × 10) would
            // swallow a 512 MB device. 4 MiB × 4 per filter is ample for a local hop.
            max_segment_size: 4 << 20,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(servers),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: Some(metric_periods()),
    };
    let mut broker = Broker::new(config);
    let account = Arc::new(BrokerAccount::default());
    let meters = broker.meters().map_err(not_started)?;
    let alerts = broker.alerts().map_err(not_started)?;
    let (acc, filters) = (account.clone(), ingest.to_vec());
    std::thread::Builder::new()
        .name("broker-meters".into())
        .spawn(move || watch(&meters, &alerts, &acc, &filters))
        .map_err(not_started)?;
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(message = "Embedded broker stopped.", error = %e);
            }
        })
        .map_err(|source| BrokerError::Bind { addr, source })?;
    for a in std::iter::once(addr).chain(tls_addr) {
        wait_up(a)?;
    }
    Ok(Embedded {
        addr,
        tls_addr,
        account,
    })
}

/// Binds `addr` once to learn that it is free (and the port, for port 0).
fn probe(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let probe = TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
    probe
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })
}

/// Waits until a listener of the broker accepts TCP connections on `addr`.
fn wait_up(addr: SocketAddr) -> Result<(), BrokerError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotUp(addr))
}

/// Meters and alerts every [`METER_PERIOD_S`]. `MetricSettings` has no public constructor;
/// its serde form is its documented configuration.
fn metric_periods() -> HashMap<MetricType, rumqttd::MetricSettings> {
    let every = serde_json::json!({ "push_interval": METER_PERIOD_S });
    [MetricType::Meters, MetricType::Alerts]
        .into_iter()
        .filter_map(|t| Some((t, serde_json::from_value(every.clone()).ok()?)))
        .collect()
}

fn not_started(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Start(e.to_string())
}

/// Adds up the broker's meters and alerts for the ingest filters, for as long as the broker
/// runs. rumqttd's links offer only a non-blocking receive to a plain thread; a push comes
/// once a period, so polling at a fraction of it costs nothing.
fn watch(
    meters: &rumqttd::meters::MetersLink,
    alerts: &rumqttd::alerts::AlertsLink,
    account: &BrokerAccount,
    filters: &[String],
) {
    loop {
        let mut idle = true;
        while let Ok(batch) = meters.recv() {
            idle = false;
            for m in batch {
                if let Meter::Subscription(filter, s) = m {
                    if filters.contains(&filter) {
                        account
                            .appended
                            .fetch_add(s.count as u64, Ordering::Relaxed);
                    }
                }
            }
        }
        while let Ok(batch) = alerts.recv() {
            idle = false;
            // The alert's kind is not nameable outside rumqttd; its serde form is
            // `{"CursorJump": {"filter": …, "lost": …}}`.
            for a in batch {
                let kind = serde_json::to_value(&a.kind).unwrap_or_default();
                let filter = kind["CursorJump"]["filter"].as_str();
                if filter.is_some_and(|f| filters.iter().any(|x| x == f)) {
                    account.cursor_jumps.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
