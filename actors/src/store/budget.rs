//! The store's byte budget: the logical size it holds, the disk size it estimates from the
//! measured amplification, and class-based eviction (raw windows first, then summaries, alerts
//! last) when the estimate passes 90 % of `store.max_bytes`, down to 80 %, every eviction
//! counted durably with its removal.

use super::{codec, key, parse_key, Class, State, Store, StoreError, CLASSES, EVICTED_KEY};

impl Store {
    pub(super) fn logical(st: &State) -> u64 {
        st.stats.iter().map(|s| s.bytes).sum()
    }

    pub(super) fn estimated_disk(st: &State) -> u64 {
        (Self::logical(st) as f64 * st.amplification) as u64
    }

    pub(super) fn enforce_budget(&self, st: &mut State) -> Result<Vec<(Class, u64)>, StoreError> {
        let high = self.cfg.max_bytes as f64 * 0.9;
        if (Self::estimated_disk(st) as f64) <= high {
            return Ok(Vec::new());
        }
        let target = (self.cfg.max_bytes as f64 * 0.8) as u64;
        let mut out = Vec::new();
        while Self::estimated_disk(st) > target {
            let Some((class, seq, len)) = self.oldest_evictable()? else {
                break;
            };
            let mut counts = st.evicted;
            counts[class as usize] += 1;
            // The removal and its count land together or not at all.
            let mut batch = sled::Batch::default();
            batch.remove(&key(class, seq));
            let counted = codec::encode_counts(&counts)
                .map_err(|e| StoreError::Encode(format!("eviction counts: {e}")))?;
            batch.insert(EVICTED_KEY, counted);
            self.outbox.apply_batch(batch)?;
            st.evicted = counts;
            let s = &mut st.stats[class as usize];
            s.count = s.count.saturating_sub(1);
            s.bytes = s.bytes.saturating_sub(len);
            out.push((class, seq));
        }
        Ok(out)
    }

    /// The record to evict next: the oldest raw window, else the oldest summary, else the
    /// oldest alert; with its logical size.
    fn oldest_evictable(&self) -> Result<Option<(Class, u64, u64)>, StoreError> {
        for class in CLASSES.iter().rev() {
            if let Some((k, v)) = self.outbox.scan_prefix([*class as u8]).next().transpose()? {
                if let Some((c, seq)) = parse_key(&k) {
                    return Ok(Some((c, seq, (k.len() + v.len()) as u64)));
                }
            }
        }
        Ok(None)
    }

    /// Re-measures the disk size and the amplification; evicts if the real size passed the
    /// budget. Call periodically (it stats files).
    pub fn refresh(&self) -> Result<Vec<(Class, u64)>, StoreError> {
        let disk = self.db.size_on_disk()?;
        let mut st = self.state.lock();
        st.disk_bytes = disk;
        let logical = Self::logical(&st);
        // Only measure on a meaningful amount of data; sled's fixed overhead dominates below.
        if logical >= 1 << 20 {
            let measured = (disk as f64 / logical as f64).clamp(1.0, 20.0);
            st.amplification = 0.8 * st.amplification + 0.2 * measured;
        }
        self.enforce_budget(&mut st)
    }

    /// Evictions per class since the store was created.
    pub fn evicted(&self) -> [u64; 3] {
        self.state.lock().evicted
    }

    /// The periodic upkeep: drops raw windows that ended before `raw_cutoff` (ms), re-measures
    /// the size on disk and evicts if over budget. It reads directories and walks a tree, so
    /// callers run it on a blocking thread ([`tokio::task::spawn_blocking`]), not on a mailbox.
    pub fn housekeep(&self, raw_cutoff: i64) -> Housekeeping {
        let mut errors = Vec::new();
        if let Err(e) = self.raw.expire(raw_cutoff) {
            errors.push(format!("raw expiry: {e}"));
        }
        let evicted = self.refresh().unwrap_or_else(|e| {
            errors.push(format!("size check: {e}"));
            Vec::new()
        });
        Housekeeping {
            evicted,
            fill: self.fill(),
            errors,
        }
    }

    /// Estimated share of the budget in use, 0..1+.
    pub fn fill(&self) -> f64 {
        let st = self.state.lock();
        Self::estimated_disk(&st) as f64 / self.cfg.max_bytes.max(1) as f64
    }
}

/// What [`Store::housekeep`] did.
#[derive(Debug, Default)]
pub struct Housekeeping {
    /// Records evicted to keep the budget: (class, seq).
    pub evicted: Vec<(Class, u64)>,
    /// The share of the budget in use afterwards.
    pub fill: f64,
    /// What failed, as text for the `store_error` condition.
    pub errors: Vec<String>,
}
