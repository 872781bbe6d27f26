//! Dead letters: rejected ingest messages kept for inspection, bounded.
//!
//! Design constraints: bounded by count and by payload bytes per letter (payloads are
//! truncated to [`MAX_PAYLOAD`]), so a flood of bad input costs a fixed amount of memory; the
//! oldest letter goes first. Every rejection is also counted in
//! `edgegw_ingest_rejected_total{reason}`, so nothing is lost silently even when a letter is
//! pushed out. This ring is the recent view for `/status`; the store keeps them on disk.

use parking_lot::Mutex;
use serde::Serialize;
use std::collections::VecDeque;

/// Most payload bytes kept per letter.
pub const MAX_PAYLOAD: usize = 1024;

/// One rejected message.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// When it was rejected, ms since the epoch.
    pub ts: i64,
    /// Topic it arrived on (or `sensor:<id>` for a sample rejected by its window).
    pub topic: String,
    /// Reason code, as in the metric label.
    pub reason: &'static str,
    /// Human-readable detail.
    pub detail: String,
    /// The payload (lossy UTF-8, truncated).
    pub payload: String,
    /// Original payload length in bytes.
    pub len: usize,
}

/// A bounded ring of dead letters.
pub struct DeadLetters {
    cap: usize,
    ring: Mutex<VecDeque<DeadLetter>>,
}

impl DeadLetters {
    /// A ring keeping the last `cap` letters.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            ring: Mutex::new(VecDeque::with_capacity(cap.min(1024))),
        }
    }

    /// Keeps a letter for `payload` rejected on `topic` for `reason`, and returns it.
    pub fn push(
        &self,
        topic: &str,
        reason: &'static str,
        detail: String,
        payload: &[u8],
    ) -> DeadLetter {
        let keep = &payload[..payload.len().min(MAX_PAYLOAD)];
        let letter = DeadLetter {
            ts: crate::status::now_ms(),
            topic: topic.to_string(),
            reason,
            detail,
            payload: String::from_utf8_lossy(keep).into_owned(),
            len: payload.len(),
        };
        let mut g = self.ring.lock();
        if g.len() >= self.cap {
            g.pop_front();
        }
        g.push_back(letter.clone());
        letter
    }

    /// The newest `n` letters, newest last.
    pub fn recent(&self, n: usize) -> Vec<DeadLetter> {
        let g = self.ring.lock();
        g.iter().skip(g.len().saturating_sub(n)).cloned().collect()
    }

    /// Letters held.
    pub fn len(&self) -> usize {
        self.ring.lock().len()
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_truncated() {
        let d = DeadLetters::new(3);
        for i in 0..5 {
            d.push("t", "oversize", format!("{i}"), &vec![b'x'; 5000]);
        }
        assert_eq!(d.len(), 3);
        let r = d.recent(10);
        assert_eq!(r[0].detail, "2");
        assert_eq!(r[2].payload.len(), MAX_PAYLOAD);
        assert_eq!(r[2].len, 5000);
    }
}
