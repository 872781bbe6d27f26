//! The outbox: messages committed for the uplink, held until the broker acknowledges them.
//!
//! Design constraints: this is the seam where the durable store slots in. Today records live
//! in memory, bounded by `uplink.memory_backlog`: they survive disconnects (and are resent in
//! seq order after a reconnect) but not a restart of the process — nothing here claims more.
//! When full, records are evicted by class — raw windows first, then the oldest summaries,
//! alerts last — and every eviction is counted by class.

use super::Class;
use bytes::Bytes;
use std::collections::BTreeMap;

/// One committed message.
#[derive(Debug, Clone)]
pub struct Record {
    /// Per-gateway sequence number, assigned at commit.
    pub seq: u64,
    /// Message class (eviction order, metrics).
    pub class: Class,
    /// Full MQTT topic.
    pub topic: String,
    /// Serialized JSON payload.
    pub payload: Bytes,
}

/// Records awaiting acknowledgement, in seq order, with a send cursor.
pub struct MemoryOutbox {
    cap: usize,
    records: BTreeMap<u64, Record>,
    /// Lowest seq not yet handed to the current session.
    cursor: u64,
    next_seq: u64,
    bytes: usize,
    /// Records held per class, indexed by `Class as usize`.
    counts: [usize; 3],
}

impl MemoryOutbox {
    /// An outbox holding at most `cap` records; seqs start at 1.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            records: BTreeMap::new(),
            cursor: 0,
            next_seq: 1,
            bytes: 0,
            counts: [0; 3],
        }
    }

    /// Assigns the next seq, lets `build` make the payload with it, keeps the record.
    /// Returns the seq and the records evicted to make room.
    pub fn commit(
        &mut self,
        class: Class,
        topic: String,
        build: impl FnOnce(u64) -> Vec<u8>,
    ) -> (u64, Vec<Record>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut evicted = Vec::new();
        while self.records.len() >= self.cap {
            match self.evict_one() {
                Some(r) => evicted.push(r),
                None => break,
            }
        }
        let payload = Bytes::from(build(seq));
        self.bytes += payload.len();
        self.counts[class as usize] += 1;
        self.records.insert(
            seq,
            Record {
                seq,
                class,
                topic,
                payload,
            },
        );
        (seq, evicted)
    }

    fn evict_one(&mut self) -> Option<Record> {
        let victim = [Class::Raw, Class::Summary, Class::Alert]
            .into_iter()
            .find_map(|c| self.records.values().find(|r| r.class == c).map(|r| r.seq))?;
        let r = self.records.remove(&victim)?;
        self.bytes -= r.payload.len();
        self.counts[r.class as usize] -= 1;
        Some(r)
    }

    /// The oldest record not yet handed to the current session, marked as sent.
    pub fn next_unsent(&mut self) -> Option<Record> {
        let r = self
            .records
            .range(self.cursor..)
            .next()
            .map(|(_, r)| r.clone())?;
        self.cursor = r.seq + 1;
        Some(r)
    }

    /// The broker acknowledged `seq`: forget it.
    pub fn ack(&mut self, seq: u64) -> bool {
        match self.records.remove(&seq) {
            Some(r) => {
                self.bytes -= r.payload.len();
                self.counts[r.class as usize] -= 1;
                true
            }
            None => false,
        }
    }

    /// A session ended: every unacknowledged record must be sent again, in seq order.
    pub fn rewind(&mut self) {
        self.cursor = 0;
    }

    /// Records held, per class.
    pub fn backlog(&self) -> [(Class, usize); 3] {
        let n = self.counts;
        [
            (Class::Alert, n[0]),
            (Class::Summary, n[1]),
            (Class::Raw, n[2]),
        ]
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The seq the next commit will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(o: &mut MemoryOutbox, c: Class) -> (u64, Vec<Record>) {
        o.commit(c, "t".into(), |s| s.to_string().into_bytes())
    }

    #[test]
    fn resend_after_rewind_in_seq_order() {
        let mut o = MemoryOutbox::new(10);
        for _ in 0..3 {
            commit(&mut o, Class::Summary);
        }
        assert_eq!(o.next_unsent().unwrap().seq, 1);
        assert_eq!(o.next_unsent().unwrap().seq, 2);
        assert!(o.ack(1));
        o.rewind();
        let again: Vec<u64> = std::iter::from_fn(|| o.next_unsent().map(|r| r.seq)).collect();
        assert_eq!(again, vec![2, 3]);
        assert!(!o.ack(1));
    }

    #[test]
    fn evicts_raw_then_oldest_summary_then_alert() {
        let mut o = MemoryOutbox::new(3);
        commit(&mut o, Class::Alert);
        commit(&mut o, Class::Summary);
        commit(&mut o, Class::Raw);
        let (_, ev) = commit(&mut o, Class::Summary);
        assert_eq!(ev[0].class, Class::Raw);
        let (_, ev) = commit(&mut o, Class::Alert);
        assert_eq!((ev[0].class, ev[0].seq), (Class::Summary, 2));
        let (_, ev) = commit(&mut o, Class::Alert);
        assert_eq!((ev[0].class, ev[0].seq), (Class::Summary, 4));
        let (_, ev) = commit(&mut o, Class::Alert);
        assert_eq!((ev[0].class, ev[0].seq), (Class::Alert, 1));
        assert_eq!(o.len(), 3);
    }
}
