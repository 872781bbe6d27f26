//! MQTT plumbing shared by ingest and uplink: broker URLs, client options, and the event-loop
//! task that rumqttc needs polled continuously.
//!
//! Design constraints: rumqttc reconnects only when polled again after an error and has no
//! backoff of its own, so [`spawn_event_loop`] polls in its own task, forwards every event to
//! the owning actor as a message (the mailbox is never blocked), and sleeps an exponential,
//! jittered backoff between failed connection attempts. The task ends when the owning actor
//! drops its receiver side (the cast fails) or is aborted in `post_stop`.

pub use crate::config::url::{parse_url, BrokerUrl};
use crate::flow::Gate;
use crate::restart::jittered;
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Options for a client named `client_id` connecting to `url`.
pub fn options(
    url: &BrokerUrl,
    client_id: &str,
    keep_alive: Duration,
    max_packet: usize,
) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, url.host.clone(), url.port);
    o.set_keep_alive(keep_alive.max(Duration::from_secs(1)));
    o.set_max_packet_size(max_packet, max_packet);
    o.set_clean_session(true);
    o
}

/// What the event-loop task tells its actor.
#[derive(Debug)]
pub enum LinkEvent {
    /// An MQTT packet went in or out.
    Event(Event),
    /// The connection failed or dropped; the task will retry after `retry_in`.
    Down {
        /// The error as text.
        error: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
}

/// Backoff between failed connection attempts.
#[derive(Debug, Clone, Copy)]
pub struct ReconnectBackoff {
    /// First delay.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Relative spread, 0..1.
    pub jitter: f64,
}

impl Default for ReconnectBackoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
            jitter: 0.25,
        }
    }
}

/// Polls `el` forever in its own task, calling `forward` with every event; `forward` returns
/// false once the owner is gone, which ends the task. With a `gate`, reading pauses while the
/// gate's budget is spent.
pub fn spawn_event_loop<F>(
    mut el: EventLoop,
    backoff: ReconnectBackoff,
    gate: Option<Arc<Gate>>,
    forward: F,
) -> JoinHandle<()>
where
    F: Fn(LinkEvent) -> bool + Send + 'static,
{
    tokio::spawn(async move {
        let mut delay = backoff.initial;
        loop {
            if let Some(g) = &gate {
                // Stop reading while the budget is spent (bounded, so keep-alives still go).
                g.wait_open(Duration::from_millis(500)).await;
            }
            match el.poll().await {
                Ok(ev) => {
                    if matches!(ev, Event::Incoming(rumqttc::Packet::ConnAck(_))) {
                        delay = backoff.initial;
                    }
                    if !forward(LinkEvent::Event(ev)) {
                        return;
                    }
                }
                Err(e) => {
                    let retry_in = jittered(delay, backoff.jitter, &mut rand::rng());
                    let error = describe(&e);
                    if !forward(LinkEvent::Down { error, retry_in }) {
                        return;
                    }
                    tokio::time::sleep(retry_in).await;
                    delay = (delay * 2).min(backoff.max);
                }
            }
        }
    })
}

fn describe(e: &ConnectionError) -> String {
    e.to_string()
}

/// A client and its event loop for `opts`, with a request queue of `cap`.
pub fn client(opts: MqttOptions, cap: usize) -> (AsyncClient, EventLoop) {
    AsyncClient::new(opts, cap)
}

/// Polls one session of `el` after waiting `delay`: forwards events until the first error,
/// forwards that as `Down` and ends. The owner builds a fresh client and event loop for the
/// next session, so requests queued for a dead session can never leak into a new one (which
/// would break matching PUBACKs to records).
pub fn spawn_session<F>(mut el: EventLoop, delay: Duration, forward: F) -> JoinHandle<()>
where
    F: Fn(LinkEvent) -> bool + Send + 'static,
{
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        loop {
            match el.poll().await {
                Ok(ev) => {
                    if !forward(LinkEvent::Event(ev)) {
                        return;
                    }
                }
                Err(e) => {
                    forward(LinkEvent::Down {
                        error: describe(&e),
                        retry_in: Duration::ZERO,
                    });
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1884").unwrap(),
            BrokerUrl {
                host: "127.0.0.1".into(),
                port: 1884
            }
        );
        assert_eq!(parse_url("tcp://broker.local").unwrap().port, 1883);
        assert_eq!(parse_url("mqtt://[::1]:1885").unwrap().host, "::1");
        assert!(parse_url("http://x:1").is_err());
        assert!(parse_url("mqtts://x:8883").unwrap_err().contains("TLS"));
        assert!(parse_url("mqtt://x:port").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
    }
}
