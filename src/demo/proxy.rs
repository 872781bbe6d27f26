//! The demo's uplink link: a TCP forwarder on a free loopback port between the gateway's uplink
//! and the broker, which the demo cuts for its simulated outage and then restores.
//!
//! Design constraints:
//! - `cut` closes every live connection at once and refuses new ones until `restore`: what a
//!   dead uplink looks like to the gateway (connection errors, not silence).
//! - Forwarding is byte-for-byte (`copy_bidirectional`), so the MQTT session through it is a
//!   real session. Nothing else is injected: the chaos crate's fault proxy covers the rest, and
//!   the release binary does not link it.
//! - The link state is one `watch` channel: each connection waits for the cut while it
//!   forwards, and a cut that races an accept still closes the new connection, because
//!   `wait_for` looks at the current value first. Dropping the link closes everything.

use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running link.
pub struct Link {
    /// Where the uplink connects.
    addr: SocketAddr,
    /// True while cut; every connection holds a receiver and ends when it turns true.
    cut: watch::Sender<bool>,
    /// The accept loop, stopped on drop.
    task: JoinHandle<()>,
}

impl Link {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (cut, state) = watch::channel(false);
        let task = tokio::spawn(accept(listener, upstream, state));
        Ok(Self { addr, cut, task })
    }

    /// Where the uplink connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and refuses new ones until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Live connections end when the sender goes with `self`.
        self.task.abort();
    }
}

/// Accepts connections; while cut, closes each one at once.
async fn accept(listener: TcpListener, upstream: SocketAddr, state: watch::Receiver<bool>) {
    while let Ok((client, _)) = listener.accept().await {
        if *state.borrow() {
            continue;
        }
        let mut state = state.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = forward(client, upstream) => {
                    if let Err(e) = r {
                        tracing::debug!(message = "Demo link connection ended.", error = %e);
                    }
                }
                _ = state.wait_for(|cut| *cut) => {}
            }
        });
    }
}

/// Connects to `upstream` and copies both ways until either side closes.
async fn forward(mut client: TcpStream, upstream: SocketAddr) -> io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::timeout;

    /// Generous bound for anything that must eventually happen.
    const EVENTUALLY: Duration = Duration::from_secs(10);

    /// An echo server on a free loopback port.
    async fn echo_server() -> SocketAddr {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(c: &mut TcpStream, msg: &[u8]) {
        c.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        timeout(EVENTUALLY, c.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, msg);
    }

    /// True once the peer has closed `c` (EOF or reset).
    async fn closed(c: &mut TcpStream) -> bool {
        let mut b = [0u8; 1];
        matches!(
            timeout(EVENTUALLY, c.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn cut_closes_and_refuses_until_restored() {
        let link = Link::start(echo_server().await).await.unwrap();
        let mut live = TcpStream::connect(link.addr()).await.unwrap();
        round_trip(&mut live, b"before").await;

        link.cut();
        assert!(link.is_cut());
        assert!(
            closed(&mut live).await,
            "a live connection survived the cut"
        );
        let mut refused = TcpStream::connect(link.addr()).await.unwrap();
        assert!(
            closed(&mut refused).await,
            "a new connection was forwarded while cut"
        );

        link.restore();
        assert!(!link.is_cut());
        let mut again = TcpStream::connect(link.addr()).await.unwrap();
        round_trip(&mut again, b"after").await;
    }

    #[tokio::test]
    async fn drop_closes_live_connections() {
        let link = Link::start(echo_server().await).await.unwrap();
        let mut live = TcpStream::connect(link.addr()).await.unwrap();
        round_trip(&mut live, b"hello").await;
        drop(link);
        assert!(closed(&mut live).await, "a connection outlived the link");
    }
}
