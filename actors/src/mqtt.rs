//! MQTT plumbing shared by ingest and uplink: broker URLs, client options (TLS and login from
//! a [`ClientLink`]), the event-loop task that rumqttc needs polled continuously, and
//! connection errors explained in an operator's words.
//!
//! Design constraints: rumqttc reconnects only when polled again after an error and has no
//! backoff of its own, so [`spawn_event_loop`] polls in its own task, forwards every event to
//! the owning actor as a message (the mailbox is never blocked), and sleeps an exponential,
//! jittered backoff between failed connection attempts. The task ends when the owning actor
//! drops its receiver side (the cast fails) or is aborted in `post_stop`.

pub use crate::config::url::{parse_url, BrokerUrl};
use crate::config::ClientLink;
use crate::flow::Gate;
use crate::restart::jittered;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions,
    TlsConfiguration, TlsError, Transport,
};
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

/// Options for a client named `client_id` on `link`: its TLS config and login included.
pub fn link_options(
    link: &ClientLink,
    client_id: &str,
    keep_alive: Duration,
    max_packet: usize,
) -> MqttOptions {
    let mut o = options(&link.url, client_id, keep_alive, max_packet);
    if let Some(tls) = &link.tls {
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.config.clone(),
        )));
    }
    if let Some(login) = &link.login {
        o.set_credentials(login.username.clone(), login.password());
    }
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
    link: Arc<ClientLink>,
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
                    let error = explain(&e, &link);
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

/// `e` in an operator's words: a refused login or certificate names the keys and files
/// involved and the reason; anything else is rumqttc's own message.
pub fn explain(e: &ConnectionError, link: &ClientLink) -> String {
    let section = link.section;
    if let ConnectionError::ConnectionRefused(code) = e {
        return match (code, &link.login) {
            (
                ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
                Some(l),
            ) => {
                format!(
                    "the broker refused the login of {:?} ({section}.username, \
                     {section}.password_file)",
                    l.username
                )
            }
            (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized, None) => {
                format!(
                    "the broker requires a login: set {section}.username and \
                     {section}.password_file"
                )
            }
            (other, _) => format!("the broker refused the connection: {other:?}"),
        };
    }
    match rustls_error(e) {
        Some(tls) => format!("TLS: {}", explain_tls(tls, link)),
        None => e.to_string(),
    }
}

/// The rustls error inside `e`, wherever rumqttc and tokio-rustls wrapped it.
fn rustls_error(e: &ConnectionError) -> Option<&rustls::Error> {
    let io = match e {
        ConnectionError::Tls(TlsError::TLS(t)) => return Some(t),
        ConnectionError::Tls(TlsError::Io(io)) | ConnectionError::Io(io) => io,
        _ => return None,
    };
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

fn explain_tls(e: &rustls::Error, link: &ClientLink) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    let section = link.section;
    let roots = link.tls.as_ref().map_or("", |t| t.roots.as_str());
    let cert = link.tls.as_ref().and_then(|t| t.client_cert.as_ref());
    match e {
        E::InvalidCertificate(c) => match c {
            C::UnknownIssuer | C::BadSignature => format!(
                "the broker's certificate is not signed by a CA in {roots} ({section}.ca_file)"
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                "the broker's certificate is not valid for the host name {:?} of {section}.url",
                link.url.host
            ),
            C::Expired | C::ExpiredContext { .. } => "the broker's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the broker's certificate is not valid yet (is this gateway's clock right?)".into()
            }
            C::Revoked => "the broker's certificate is revoked".into(),
            other => format!("the broker's certificate is refused: {other:?}"),
        },
        E::AlertReceived(alert) => match cert {
            None if matches!(
                alert,
                A::CertificateRequired | A::HandshakeFailure | A::BadCertificate
            ) =>
            {
                format!(
                    "the broker requires a client certificate ({alert:?}): set \
                     {section}.cert_file and {section}.key_file"
                )
            }
            None => format!("the broker ended the handshake: {alert:?}"),
            Some(c) => {
                let expired = c
                    .not_after
                    .filter(|t| *t < crate::status::now_ms() / 1000)
                    .and_then(|t| chrono::DateTime::from_timestamp(t, 0));
                match expired {
                    Some(at) => format!(
                        "the broker refused the client certificate {} ({alert:?}): it expired \
                         on {} ({section}.cert_file)",
                        c.path.display(),
                        at.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                    None => format!(
                        "the broker refused the client certificate {} ({alert:?}): is it signed \
                         by a CA the broker trusts? ({section}.cert_file)",
                        c.path.display()
                    ),
                }
            }
        },
        E::NoApplicationProtocol => {
            format!("the broker accepts none of the ALPN protocols of {section}.alpn")
        }
        other => other.to_string(),
    }
}

/// A client and its event loop for `opts`, with a request queue of `cap`.
pub fn client(opts: MqttOptions, cap: usize) -> (AsyncClient, EventLoop) {
    AsyncClient::new(opts, cap)
}

/// Polls one session of `el` after waiting `delay`: forwards events until the first error,
/// forwards that as `Down` and ends. The owner builds a fresh client and event loop for the
/// next session, so requests queued for a dead session can never leak into a new one (which
/// would break matching PUBACKs to records).
pub fn spawn_session<F>(
    mut el: EventLoop,
    link: Arc<ClientLink>,
    delay: Duration,
    forward: F,
) -> JoinHandle<()>
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
                        error: explain(&e, &link),
                        retry_in: Duration::ZERO,
                    });
                    return;
                }
            }
        }
    })
}
