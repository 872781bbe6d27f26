//! The embedded MQTT broker (rumqttd), for gateways whose sensors have no broker of their own.
//!
//! Design constraints: rumqttd runs its servers on threads of its own and only logs a bind
//! failure, so the address is probed first and the broker is declared up only once a TCP
//! connection to it succeeds. It lives as long as the process (rumqttd has no shutdown).

use crate::config::BrokerConfig;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

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
    /// The broker did not accept connections in time.
    #[error("embedded broker did not come up on {0}")]
    NotUp(SocketAddr),
}

/// Starts the broker on `cfg.bind`; returns the address it listens on.
pub fn start(cfg: &BrokerConfig) -> Result<SocketAddr, BrokerError> {
    let addr = cfg.bind;
    let probe = TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
    let addr = probe
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })?;
    drop(probe);
    let server = ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: cfg.max_payload_bytes,
            max_inflight_count: 500,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
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
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(message = "Embedded broker stopped.", error = %e);
            }
        })
        .map_err(|source| BrokerError::Bind { addr, source })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotUp(addr))
}
