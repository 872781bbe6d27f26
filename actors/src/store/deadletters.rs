//! Dead letters on disk: rejected ingest input kept, bounded, for `store inspect` and
//! `/status`. Keys are an increasing id (sled's `generate_id`), so the oldest goes first.

use crate::deadletter::DeadLetter;
use std::sync::atomic::{AtomicU64, Ordering};

/// The dead-letter tree with its count.
pub struct DeadLetterTree {
    tree: sled::Tree,
    db: sled::Db,
    len: AtomicU64,
    max: u64,
}

impl DeadLetterTree {
    pub(super) fn open(db: &sled::Db, max: u64) -> sled::Result<Self> {
        let tree = db.open_tree("dead_letters")?;
        let len = tree.len() as u64;
        Ok(Self {
            tree,
            db: db.clone(),
            len: AtomicU64::new(len),
            max,
        })
    }

    /// Keeps `letter`, dropping the oldest beyond the bound. Durable with the next flush.
    pub fn push(&self, letter: &DeadLetter) -> Result<(), super::StoreError> {
        let value = serde_json::to_vec(letter)
            .map_err(|e| super::StoreError::Encode(format!("dead letter: {e}")))?;
        let id = self.db.generate_id()?;
        self.tree.insert(id.to_be_bytes(), value)?;
        if self.len.fetch_add(1, Ordering::AcqRel) + 1 > self.max && self.tree.pop_min()?.is_some()
        {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Letters held.
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest `n` letters, newest last, as stored JSON.
    pub fn recent(&self, n: usize) -> Vec<serde_json::Value> {
        let mut v: Vec<serde_json::Value> = self
            .tree
            .iter()
            .rev()
            .take(n)
            .filter_map(|kv| kv.ok())
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect();
        v.reverse();
        v
    }
}
