//! Flow control between the network and the sensor actors: a byte budget for ingest payloads
//! that have been read from the broker but not yet processed by their sensor.
//!
//! Design constraints: ractor mailboxes are unbounded, so without a bound an overload turns
//! into memory growth until the device runs out. Every payload read takes a [`Permit`] for its
//! size; the permit travels with the samples and is released when they are processed — or
//! dropped for any reason, including a crashed actor's mailbox being discarded, so the budget
//! cannot leak. While the budget is exhausted the MQTT poll task stops reading the socket, and
//! the broker sees TCP back-pressure (QoS 1 senders slow down; QoS 0 overflow is the broker's
//! to drop). The check is one atomic load per message.
//!
//! Not a semaphore: a payload already read must be accepted whatever its size, so the budget
//! may be overdrawn, which a semaphore's permits cannot express. Instead the release that
//! brings the budget back under its limit wakes the waiting reader ([`Notify`]); releases
//! that change nothing for the reader cost no wake-up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A byte budget shared by the reader and the processors.
#[derive(Debug)]
pub struct Gate {
    used: AtomicUsize,
    limit: usize,
    /// Woken when a release reopens the budget.
    reopened: Notify,
    /// Times the reader had to wait for the budget (for `/metrics`).
    pub waits: AtomicU64,
}

impl Gate {
    /// A gate admitting up to `limit` bytes in flight.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Gate {
            used: AtomicUsize::new(0),
            limit: limit.max(1),
            reopened: Notify::new(),
            waits: AtomicU64::new(0),
        })
    }

    /// Takes `bytes` from the budget (always granted: the reader already holds the payload).
    pub fn acquire(self: &Arc<Self>, bytes: usize) -> Permit {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        Permit {
            gate: Some(self.clone()),
            bytes,
        }
    }

    /// Bytes in flight now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Whether there is budget left.
    pub fn is_open(&self) -> bool {
        self.used() < self.limit
    }

    /// Waits until there is budget again, or at most `max` (so the MQTT session still gets
    /// polled often enough for its keep-alive).
    pub async fn wait_open(&self, max: Duration) {
        if self.is_open() {
            return;
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        let _ = tokio::time::timeout(max, async {
            loop {
                // Registered before the check, so a release between the two is not missed.
                let reopened = self.reopened.notified();
                if self.is_open() {
                    return;
                }
                reopened.await;
            }
        })
        .await;
    }

    fn release(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        if before >= self.limit && before - bytes < self.limit {
            self.reopened.notify_waiters();
        }
    }
}

/// A share of a [`Gate`]'s budget, released on drop.
#[derive(Debug, Default)]
pub struct Permit {
    gate: Option<Arc<Gate>>,
    bytes: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(g) = self.gate.take() {
            g.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn permits_release_on_drop_and_gate_reopens() {
        let g = Gate::new(100);
        let a = g.acquire(60);
        assert!(g.is_open());
        let b = g.acquire(60);
        assert!(!g.is_open());
        let msgs = vec![a];
        drop(msgs); // e.g. a dead actor's mailbox
        assert!(g.is_open());
        assert_eq!(g.used(), 60);
        drop(b);
        assert_eq!(g.used(), 0);
        g.wait_open(Duration::from_millis(10)).await;
        assert_eq!(g.waits.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn wait_is_bounded() {
        let g = Gate::new(10);
        let _p = g.acquire(20);
        let t = std::time::Instant::now();
        g.wait_open(Duration::from_millis(30)).await;
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert!(!g.is_open());
        assert_eq!(g.waits.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn the_release_that_reopens_the_budget_wakes_the_reader() {
        let g = Gate::new(100);
        let (a, b) = (g.acquire(80), g.acquire(80));
        let waiter = {
            let g = g.clone();
            tokio::spawn(async move { g.wait_open(Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "still over budget");
        drop(a);
        // Woken at once, long before the 30 s bound.
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken by the release")
            .expect("waiter ran");
        assert!(g.is_open());
        drop(b);
    }
}
