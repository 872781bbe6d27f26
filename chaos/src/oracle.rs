//! The oracle and the judge of the chaos suite (after Jepsen's set test): record everything
//! the gateway delivers upstream, then check the delivery promise against what the gateway
//! says it committed.
//!
//! Design constraints: the judge is a pure function of the recorded messages and the
//! gateway's own figures (`store.next_seq`, eviction counts, the store epoch), so a failing
//! scenario can be re-judged offline. Properties:
//! 1. every committed seq (`1..=hw`) arrived, except at most as many as were evicted (and
//!    reported) — no silent loss;
//! 2. nothing arrived that was not produced (seq above `hw`, another epoch, or unparsable);
//! 3. no seq was reused (one seq, two different payloads);
//! 4. duplicates stay within a bound (the in-flight window per reconnect).

use std::collections::{BTreeMap, BTreeSet};

/// One message seen upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// MQTT topic.
    pub topic: String,
    /// The raw payload.
    pub payload: Vec<u8>,
}

/// What the judge found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Distinct committed messages delivered.
    pub delivered: usize,
    /// Committed seqs that never arrived.
    pub missing: Vec<u64>,
    /// Messages that were not produced by this store (by seq or epoch), or unparsable.
    pub unexpected: Vec<String>,
    /// Seqs that arrived with two different payloads.
    pub reused: Vec<u64>,
    /// Extra copies of messages already delivered.
    pub duplicates: usize,
    /// Evictions the gateway reported (they may explain missing seqs).
    pub evicted: u64,
    /// The duplicate bound used.
    pub max_duplicates: usize,
}

impl Verdict {
    /// `Ok` when every property holds, else every violation in words.
    pub fn holds(&self) -> Result<(), String> {
        let mut v = Vec::new();
        if self.missing.len() as u64 > self.evicted {
            v.push(format!(
                "{} committed seqs missing (only {} evicted): first {:?}",
                self.missing.len(),
                self.evicted,
                &self.missing[..self.missing.len().min(10)]
            ));
        }
        if !self.unexpected.is_empty() {
            v.push(format!(
                "{} unexpected messages: {:?}",
                self.unexpected.len(),
                &self.unexpected[..self.unexpected.len().min(5)]
            ));
        }
        if !self.reused.is_empty() {
            v.push(format!(
                "seqs reused with different payloads: {:?}",
                self.reused
            ));
        }
        if self.duplicates > self.max_duplicates {
            v.push(format!(
                "{} duplicates, bound {}",
                self.duplicates, self.max_duplicates
            ));
        }
        if v.is_empty() {
            Ok(())
        } else {
            Err(v.join("; "))
        }
    }
}

/// Judges `received` (status messages are ignored) against a store with `epoch` whose highest
/// committed seq is `hw`, which reported `evicted` evictions; at most `max_duplicates` extra
/// copies are tolerated.
pub fn judge(
    received: &[Received],
    gateway: &str,
    epoch: i64,
    hw: u64,
    evicted: u64,
    max_duplicates: usize,
) -> Verdict {
    let mut by_seq: BTreeMap<u64, &[u8]> = BTreeMap::new();
    let mut verdict = Verdict {
        evicted,
        max_duplicates,
        ..Verdict::default()
    };
    let mut reused = BTreeSet::new();
    let prefix = format!("{gateway}:{epoch}:");
    for r in received.iter().filter(|r| !r.topic.ends_with("/status")) {
        let parsed: Option<(String, u64)> = serde_json::from_slice::<serde_json::Value>(&r.payload)
            .ok()
            .and_then(|v| Some((v.get("id")?.as_str()?.to_string(), v.get("seq")?.as_u64()?)));
        let Some((id, seq)) = parsed else {
            verdict
                .unexpected
                .push(format!("unparsable on {}", r.topic));
            continue;
        };
        if id != format!("{prefix}{seq}") || seq == 0 || seq > hw {
            verdict.unexpected.push(id);
            continue;
        }
        match by_seq.get(&seq) {
            None => {
                by_seq.insert(seq, &r.payload);
            }
            Some(p) if *p == r.payload.as_slice() => verdict.duplicates += 1,
            Some(_) => {
                reused.insert(seq);
            }
        }
    }
    verdict.delivered = by_seq.len();
    verdict.missing = (1..=hw).filter(|s| !by_seq.contains_key(s)).collect();
    verdict.reused = reused.into_iter().collect();
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64, body: &str) -> Received {
        Received {
            topic: "edgegw/gw/summaries/s1".into(),
            payload: format!("{{\"id\":\"gw:7:{seq}\",\"seq\":{seq},\"b\":\"{body}\"}}")
                .into_bytes(),
        }
    }

    #[test]
    fn all_delivered_with_bounded_duplicates_holds() {
        let r = vec![msg(1, "a"), msg(2, "b"), msg(2, "b"), msg(3, "c")];
        let v = judge(&r, "gw", 7, 3, 0, 1);
        assert_eq!((v.delivered, v.duplicates), (3, 1));
        assert!(v.holds().is_ok());
        assert!(
            judge(&r, "gw", 7, 3, 0, 0).holds().is_err(),
            "duplicate bound enforced"
        );
    }

    #[test]
    fn loss_reuse_and_strangers_are_caught() {
        let v = judge(&[msg(1, "a"), msg(3, "c")], "gw", 7, 3, 0, 10);
        assert_eq!(v.missing, vec![2]);
        assert!(v.holds().unwrap_err().contains("missing"));
        assert!(
            judge(&[msg(1, "a"), msg(3, "c")], "gw", 7, 3, 1, 10)
                .holds()
                .is_ok(),
            "an eviction explains one gap"
        );
        let v = judge(&[msg(1, "a"), msg(1, "x")], "gw", 7, 1, 0, 10);
        assert_eq!(v.reused, vec![1]);
        let v = judge(&[msg(1, "a"), msg(9, "z")], "gw", 7, 1, 0, 10);
        assert_eq!(v.unexpected, vec!["gw:7:9".to_string()]);
        let other_epoch = Received {
            topic: "t".into(),
            payload: b"{\"id\":\"gw:8:1\",\"seq\":1}".to_vec(),
        };
        assert_eq!(judge(&[other_epoch], "gw", 7, 1, 0, 10).unexpected.len(), 1);
        let status = Received {
            topic: "edgegw/gw/status".into(),
            payload: b"{}".to_vec(),
        };
        assert!(judge(&[status, msg(1, "a")], "gw", 7, 1, 0, 0)
            .holds()
            .is_ok());
    }
}
