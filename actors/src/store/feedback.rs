//! The feedback stage's trees in the store (opened through [`super::Store::feedback_trees`]): seen ids (idempotency), labels (retraining),
//! threshold overrides and model announcements.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `feedback_seen` | id | order (u64 BE) |
//! | `feedback_seen_order` | order (u64 BE, increasing) | id |
//! | `feedback_labels` | order (u64 BE) | JSON label |
//! | `feedback_thresholds` | sensor or `*` | f32 LE |
//! | `feedback_models` | order (u64 BE) | JSON announcement and outcome |
//!
//! Design constraints: every tree is bounded (oldest first out); counts are kept in memory
//! (sled's `len` is a scan) and recounted once per opening of the store.

use sled::{Db, Tree};

/// Tree of labels, read by `edgegw store export --labels`.
pub const LABELS: &str = "feedback_labels";
/// Model announcements kept.
const MODELS_MAX: usize = 100;

/// The trees of one opening of the store, with their counts.
pub struct Trees {
    db: Db,
    seen: Tree,
    order: Tree,
    labels: Tree,
    thresholds: Tree,
    models: Tree,
    seen_len: u64,
    labels_len: u64,
}

impl Trees {
    /// Opens (or creates) the trees in `db`; `counts` from [`Trees::counts`] of the same
    /// opening of the store, or `None` to count (a scan).
    pub fn open(db: Db, counts: Option<(u64, u64)>) -> sled::Result<Self> {
        let seen = db.open_tree("feedback_seen")?;
        let order = db.open_tree("feedback_seen_order")?;
        let labels = db.open_tree(LABELS)?;
        let (seen_len, labels_len) =
            counts.unwrap_or_else(|| (order.len() as u64, labels.len() as u64));
        Ok(Trees {
            seen_len,
            labels_len,
            thresholds: db.open_tree("feedback_thresholds")?,
            models: db.open_tree("feedback_models")?,
            seen,
            order,
            labels,
            db,
        })
    }

    /// Remembered ids and kept labels.
    pub fn counts(&self) -> (u64, u64) {
        (self.seen_len, self.labels_len)
    }

    /// Whether `id` was applied before.
    pub fn seen(&self, id: &str) -> sled::Result<bool> {
        self.seen.contains_key(id.as_bytes())
    }

    /// Remembers `id`, forgetting the oldest beyond `max`.
    pub fn remember(&mut self, id: &str, max: u64) -> sled::Result<()> {
        let n = self.db.generate_id()?.to_be_bytes();
        self.seen.insert(id.as_bytes(), &n)?;
        self.order.insert(n, id.as_bytes())?;
        self.seen_len += 1;
        while self.seen_len > max {
            match self.order.pop_min()? {
                Some((k, old)) => {
                    // The id may have been remembered again since: forget it only if this
                    // entry is its latest.
                    if self.seen.get(&old)?.is_some_and(|v| v == k) {
                        self.seen.remove(&old)?;
                    }
                    self.seen_len -= 1;
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Keeps a label; returns how many old ones were evicted.
    pub fn keep_label(&mut self, json: &serde_json::Value, max: u64) -> sled::Result<u64> {
        let n = self.db.generate_id()?.to_be_bytes();
        self.labels.insert(n, json.to_string().into_bytes())?;
        self.labels_len += 1;
        let mut evicted = 0;
        while self.labels_len > max && self.labels.pop_min()?.is_some() {
            self.labels_len -= 1;
            evicted += 1;
        }
        Ok(evicted)
    }

    /// Persists a threshold override (`"*"` clears every per-sensor one first).
    pub fn set_threshold(&self, sensor: &str, t: f32) -> sled::Result<()> {
        if sensor == "*" {
            self.thresholds.clear()?;
        }
        self.thresholds
            .insert(sensor.as_bytes(), &t.to_le_bytes())?;
        Ok(())
    }

    /// Every persisted override (`"*"` first).
    pub fn thresholds(&self) -> sled::Result<Vec<(String, f32)>> {
        let mut v = Vec::new();
        for kv in self.thresholds.iter() {
            let (k, val) = kv?;
            let (Ok(s), Ok(b)) = (String::from_utf8(k.to_vec()), <[u8; 4]>::try_from(&*val)) else {
                continue;
            };
            let t = f32::from_le_bytes(b);
            if t.is_finite() && t > 0.0 {
                v.push((s, t));
            }
        }
        v.sort_by_key(|(s, _)| s != "*");
        Ok(v)
    }

    /// Records a model announcement and its outcome.
    pub fn keep_model(&self, json: &serde_json::Value) -> sled::Result<()> {
        let n = self.db.generate_id()?.to_be_bytes();
        self.models.insert(n, json.to_string().into_bytes())?;
        while self.models.len() > MODELS_MAX && self.models.pop_min()?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_ids_are_bounded_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        // As the store opens it: no background flusher. sled's I/O pool can still hold the
        // directory's lock for a moment after the last handle is dropped, so the reopen below
        // waits for it (a few tries), as a restarted gateway would.
        let open = || {
            let mut tries = 0;
            loop {
                match sled::Config::new()
                    .path(dir.path())
                    .flush_every_ms(None)
                    .open()
                {
                    Ok(db) => break db,
                    Err(sled::Error::Io(e))
                        if tries < 50 && e.to_string().contains("could not acquire lock") =>
                    {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(e) => panic!("reopen: {e}"),
                }
            }
        };
        {
            let db = open();
            let mut t = Trees::open(db.clone(), None).unwrap();
            for i in 0..50 {
                t.remember(&format!("id-{i}"), 20).unwrap();
            }
            assert!(!t.seen("id-0").unwrap(), "oldest forgotten");
            assert!(t.seen("id-49").unwrap());
            t.set_threshold("s1", 2.5).unwrap();
            db.flush().unwrap();
        }
        let db = open();
        let mut t = Trees::open(db, None).unwrap();
        assert!(t.seen("id-30").unwrap(), "remembered across a reopen");
        assert_eq!(t.seen_len, 20);
        assert_eq!(t.thresholds().unwrap(), vec![("s1".to_string(), 2.5)]);
        t.set_threshold("*", 3.0).unwrap();
        assert_eq!(t.thresholds().unwrap(), vec![("*".to_string(), 3.0)]);
        let j = serde_json::json!({"sensor": "s1"});
        assert_eq!(t.keep_label(&j, 2).unwrap(), 0);
        assert_eq!(t.keep_label(&j, 2).unwrap(), 0);
        assert_eq!(t.keep_label(&j, 2).unwrap(), 1, "evicted beyond the bound");
    }
}
