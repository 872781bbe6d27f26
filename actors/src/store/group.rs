//! Group commit: several records inserted with one sled batch and one high-water write.
//!
//! Why: sled's `apply_batch` seals and writes its current I/O buffer (a `pwrite`) before it
//! reserves the batch, so it costs about the same for one record as for a thousand, and it
//! dominated a per-record commit. The uplink commits whatever waits in its mailbox as one
//! group, so a burst (every sensor closing its summary period at once) costs one batch.
//!
//! Design constraints:
//! - **Seqs in commit order, consecutive.** A group holds the store's lock from
//!   [`Store::group`] to [`Group::commit`]: no other commit interleaves, the group's records
//!   get consecutive seqs in the order they were added, and each payload is built knowing its
//!   seq (the seq is part of the message's `id`).
//! - **All or nothing.** The records and the high-water mark (the group's last seq) are one
//!   atomic sled batch: after a crash either the whole group is there or none of it. Nothing
//!   changes in the store's counters until the batch is applied; a group dropped without
//!   `commit`, or whose batch fails, gives out no seq.
//! - **Durable only after a flush**, as for a single record: the caller publishes a record
//!   only once a flush that started after [`Group::commit`] returned has completed.

use super::{codec, key, Class, State, Store, StoreError, HW_KEY};
use parking_lot::MutexGuard;

/// Records being committed together; see the module docs. Made by [`Store::group`].
pub struct Group<'a> {
    store: &'a Store,
    /// The store's state, locked for the group's whole life.
    st: MutexGuard<'a, State>,
    batch: sled::Batch,
    /// The seq the next added record gets.
    next: u64,
    /// Class and logical bytes of each record added, for the counters once applied.
    added: Vec<(Class, u64)>,
    /// The first record that could not be encoded: the group then commits nothing.
    failed: Option<StoreError>,
}

impl Store {
    /// Starts a group commit: records added to it get consecutive seqs and are inserted with
    /// one atomic batch by [`Group::commit`]. The store's lock is held until the group is
    /// committed or dropped, so build it without waiting on anything.
    pub fn group(&self) -> Group<'_> {
        let st = self.state.lock();
        let next = st.next_seq;
        Group {
            store: self,
            st,
            batch: sled::Batch::default(),
            next,
            added: Vec::new(),
            failed: None,
        }
    }
}

impl Group<'_> {
    /// Adds a record with the next seq (`build` makes its payload from that seq, as it goes
    /// into the message's `id`); returns the seq. Nothing is written until [`Group::commit`].
    pub fn add(&mut self, class: Class, topic: &str, build: impl FnOnce(u64) -> Vec<u8>) -> u64 {
        let seq = self.next;
        let payload = build(seq);
        let value = match codec::encode(topic, &payload) {
            Ok(v) => v,
            Err(e) => {
                self.failed
                    .get_or_insert(StoreError::Encode(format!("record {seq}: {e}")));
                Vec::new()
            }
        };
        let k = key(class, seq);
        self.added.push((class, (k.len() + value.len()) as u64));
        self.batch.insert(&k, value);
        self.next = seq + 1;
        seq
    }

    /// Records added so far.
    pub fn len(&self) -> usize {
        self.added.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
    }

    /// Inserts every added record and raises the high-water mark to the last one, in one
    /// atomic batch; then evicts if over budget. Durable after the next completed flush.
    /// Returns the evicted records (class, seq). An empty group writes nothing, and neither
    /// does one with a record that could not be encoded.
    pub fn commit(self) -> Result<Vec<(Class, u64)>, StoreError> {
        let Group {
            store,
            mut st,
            mut batch,
            next,
            added,
            failed,
        } = self;
        if let Some(e) = failed {
            return Err(e);
        }
        if added.is_empty() {
            return Ok(Vec::new());
        }
        let last = next - 1;
        batch.insert(HW_KEY, &last.to_be_bytes());
        store.outbox.apply_batch(batch)?;
        st.next_seq = next;
        for (class, bytes) in added {
            let s = &mut st.stats[class as usize];
            s.count += 1;
            s.bytes += bytes;
        }
        store.enforce_budget(&mut st)
    }
}
