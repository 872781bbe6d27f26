//! The replay's MQTT connection: connect within a deadline, publish, and at the end make sure
//! the broker has everything before the process exits.
//!
//! Design constraints:
//! - rumqttc's `publish()` returning `Ok` only means "queued in this process". The event loop
//!   is polled continuously in its own task, which counts every PUBACK; [`Link::finish`] waits
//!   until the PUBACKs equal the publishes (QoS 1), then sends DISCONNECT and waits until the
//!   broker has closed the connection, so every queued QoS 0 publish was written before it.
//! - Before the first CONNACK, failed attempts are retried until the connect deadline (a
//!   broker that is still starting is fine); after it, a dropped connection ends the replay
//!   (exit 1): resending without duplicates would need a persistent session, and a replay is
//!   cheap to run again.

use edgegw_actors::mqtt::{self, BrokerUrl};
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Largest MQTT packet sent (the gateway's own payload limit is lower; see `--batch`).
const MAX_PACKET: usize = 16 << 20;

/// What went wrong with the broker.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No CONNACK within the connect timeout.
    #[error("cannot reach the broker at {url} within {timeout:?}: {error}")]
    Unreachable {
        /// `--broker`.
        url: String,
        /// `--connect-timeout`.
        timeout: Duration,
        /// The last connection error.
        error: String,
    },
    /// The connection dropped after it was up.
    #[error("connection to {url} lost: {error}")]
    Lost {
        /// `--broker`.
        url: String,
        /// The connection error.
        error: String,
    },
    /// The broker stopped acknowledging.
    #[error("the broker at {url} acknowledged {acked} of {published} messages within {timeout:?}")]
    Unacked {
        /// `--broker`.
        url: String,
        /// PUBACKs received.
        acked: u64,
        /// Messages published.
        published: u64,
        /// How long we waited.
        timeout: Duration,
    },
}

/// What the event-loop task has seen.
#[derive(Debug, Clone, Default)]
struct State {
    connected: bool,
    acked: u64,
    disconnect_sent: bool,
    last_error: Option<String>,
    /// The task ended (after a connection error, or the broker closing after DISCONNECT).
    ended: bool,
}

/// A connected client.
pub struct Link {
    client: AsyncClient,
    state: watch::Receiver<State>,
    task: JoinHandle<()>,
    qos: QoS,
    url: String,
}

impl Link {
    /// Connects to `broker` (`url` as the user wrote it, for messages), retrying until
    /// `timeout` has passed.
    pub async fn connect(
        broker: &BrokerUrl,
        url: &str,
        qos: QoS,
        timeout: Duration,
    ) -> Result<Link, LinkError> {
        let id = format!("edgegw-replay-{}", std::process::id());
        let opts = mqtt::options(broker, &id, Duration::from_secs(30), MAX_PACKET);
        let (client, el) = mqtt::client(opts, 256);
        let (tx, state) = watch::channel(State::default());
        let task = tokio::spawn(drive(el, tx));
        let mut link = Link {
            client,
            state,
            task,
            qos,
            url: url.into(),
        };
        if link.wait(timeout, |s| s.connected || s.ended).await && link.state.borrow().connected {
            return Ok(link);
        }
        link.task.abort();
        let error = link.last_error().unwrap_or_else(|| "no answer".into());
        Err(LinkError::Unreachable {
            url: url.into(),
            timeout,
            error,
        })
    }

    /// Queues one message on `topic` (waits while rumqttc's queue is full).
    pub async fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), LinkError> {
        if self.state.borrow().ended {
            return Err(self.lost());
        }
        self.client
            .publish(topic, self.qos, false, payload)
            .await
            .map_err(|_| self.lost())
    }

    /// Waits until the broker has acknowledged `published` messages (QoS 1), disconnects and
    /// waits for the connection to close; `timeout` bounds each of the two waits.
    pub async fn finish(mut self, published: u64, timeout: Duration) -> Result<(), LinkError> {
        if self.qos != QoS::AtMostOnce {
            let settled = self
                .wait(timeout, |s| s.acked >= published || s.ended)
                .await;
            let acked = self.state.borrow().acked;
            if acked < published {
                self.task.abort();
                return Err(if settled {
                    self.lost()
                } else {
                    LinkError::Unacked {
                        url: self.url.clone(),
                        acked,
                        published,
                        timeout,
                    }
                });
            }
        }
        if self.client.disconnect().await.is_err() {
            return Err(self.lost());
        }
        // The broker closes the connection on DISCONNECT; one that keeps it open past the
        // timeout has still been sent everything (the DISCONNECT went out after it).
        self.wait(timeout, |s| s.ended).await;
        let sent = self.state.borrow().disconnect_sent;
        self.task.abort();
        if sent {
            Ok(())
        } else {
            Err(self.lost())
        }
    }

    /// Waits up to `timeout` for `done`; false on timeout (or when the task is gone).
    async fn wait(&mut self, timeout: Duration, done: impl FnMut(&State) -> bool) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.state.wait_for(done))
                .await
                .map(|r| r.is_ok()),
            Ok(true)
        )
    }

    fn last_error(&self) -> Option<String> {
        self.state.borrow().last_error.clone()
    }

    fn lost(&self) -> LinkError {
        LinkError::Lost {
            url: self.url.clone(),
            error: self
                .last_error()
                .unwrap_or_else(|| "event loop ended".into()),
        }
    }
}

/// Polls `el` until the connection ends, reporting into `tx`.
async fn drive(mut el: EventLoop, tx: watch::Sender<State>) {
    loop {
        match el.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => tx.send_modify(|s| s.connected = true),
            Ok(Event::Incoming(Packet::PubAck(_))) => tx.send_modify(|s| s.acked += 1),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                tx.send_modify(|s| s.disconnect_sent = true);
            }
            Ok(_) => {}
            Err(e) => {
                let was_up = tx.borrow().connected;
                tx.send_modify(|s| s.last_error = Some(e.to_string()));
                if was_up {
                    tx.send_modify(|s| s.ended = true);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}
