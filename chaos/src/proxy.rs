//! A TCP fault proxy: forwards connections to an upstream address until told to cut them.
//!
//! Design constraints: `cut` closes every live connection at once and refuses new ones until
//! `heal`, which is what a dead uplink looks like to the gateway (connection errors, not
//! silence). Forwarding is byte-for-byte (`copy_bidirectional`), so MQTT sessions through the
//! proxy are real sessions. The proxy stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Shared {
    cut: AtomicBool,
    connections: AtomicU64,
    epoch: watch::Sender<u64>,
}

/// A running proxy.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (epoch, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            cut: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            epoch,
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if s.cut.load(Ordering::Acquire) {
                    drop(client);
                    continue;
                }
                s.connections.fetch_add(1, Ordering::Relaxed);
                let mut stop = s.epoch.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = stop.changed() => {}
                    }
                });
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::Release);
        self.shared.epoch.send_modify(|e| *e += 1);
    }

    /// Accepts connections again.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::Release);
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Ordering::Acquire)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn forwards_cuts_and_heals() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b).await {
                        if n == 0 || s.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let p = FaultProxy::start(up).await.unwrap();
        let mut c = TcpStream::connect(p.addr()).await.unwrap();
        c.write_all(b"hi").await.unwrap();
        let mut b = [0u8; 2];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"hi");
        p.cut();
        let mut rest = Vec::new();
        let n = c.read_to_end(&mut rest).await.unwrap_or(0);
        assert_eq!(n, 0, "connection must close on cut");
        let mut c2 = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(
            c2.read(&mut b).await.unwrap_or(0),
            0,
            "new connections refused while cut"
        );
        p.heal();
        let mut c3 = TcpStream::connect(p.addr()).await.unwrap();
        c3.write_all(b"ok").await.unwrap();
        c3.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ok");
    }
}
