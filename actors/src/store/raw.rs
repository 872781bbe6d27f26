//! Raw troubleshooting windows kept for `store.raw_retention`, for `raw-request`s: the samples
//! around each alert, by sensor and time.
//!
//! Design constraints: keyed `sensor 0x00 end_ts(BE)`, so one sensor's windows are one range
//! scan; bounded by count (`raw_windows_max`, oldest by end time dropped first) and by age
//! (expired on the uplink's periodic check). Windows are few (one per alert), so the sweeps
//! scan the whole tree.

use std::sync::atomic::{AtomicU64, Ordering};

/// The raw-window tree.
pub struct RawTree {
    tree: sled::Tree,
    len: AtomicU64,
    max: u64,
}

fn key(sensor: &str, end: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(sensor.len() + 9);
    k.extend_from_slice(sensor.as_bytes());
    k.push(0);
    k.extend_from_slice(&end.to_be_bytes());
    k
}

fn end_of(k: &[u8]) -> Option<i64> {
    let b: [u8; 8] = k.get(k.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(i64::from_be_bytes(b))
}

fn decode(v: &[u8]) -> Option<Vec<(i64, f64)>> {
    super::codec::decode_samples(v)
}

impl RawTree {
    pub(super) fn open(db: &sled::Db, max: u64) -> sled::Result<Self> {
        let tree = db.open_tree("raw_windows")?;
        let len = tree.len() as u64;
        Ok(Self {
            tree,
            len: AtomicU64::new(len),
            max,
        })
    }

    /// Keeps one window (`samples` oldest first) of `sensor`.
    pub fn keep(&self, sensor: &str, samples: &[(i64, f64)]) -> Result<(), super::StoreError> {
        let Some(&(end, _)) = samples.last() else {
            return Ok(());
        };
        let v = super::codec::encode_samples(samples)
            .map_err(|e| super::StoreError::Encode(format!("raw window of {sensor}: {e}")))?;
        if self.tree.insert(key(sensor, end), v)?.is_none()
            && self.len.fetch_add(1, Ordering::AcqRel) + 1 > self.max
        {
            self.drop_oldest()?;
        }
        Ok(())
    }

    fn drop_oldest(&self) -> sled::Result<()> {
        let mut oldest: Option<(sled::IVec, i64)> = None;
        for kv in self.tree.iter() {
            let (k, _) = kv?;
            if let Some(end) = end_of(&k) {
                if oldest.as_ref().is_none_or(|o| end < o.1) {
                    oldest = Some((k, end));
                }
            }
        }
        if let Some((k, _)) = oldest {
            if self.tree.remove(k)?.is_some() {
                self.len.fetch_sub(1, Ordering::AcqRel);
            }
        }
        Ok(())
    }

    /// The samples of `sensor` with `from <= ts <= to`, from every kept window, in time order
    /// and without repeats.
    pub fn between(&self, sensor: &str, from: i64, to: i64) -> sled::Result<Vec<(i64, f64)>> {
        let mut out = Vec::new();
        // A window ending at or after `from` may hold samples of the span.
        for kv in self.tree.range(key(sensor, from)..=key(sensor, i64::MAX)) {
            let (_, v) = kv?;
            if let Some(samples) = decode(&v) {
                out.extend(samples.into_iter().filter(|(t, _)| (from..=to).contains(t)));
            }
        }
        out.sort_by_key(|s| s.0);
        out.dedup_by_key(|s| s.0);
        Ok(out)
    }

    /// Drops windows that ended before `cutoff` (ms); returns how many.
    pub fn expire(&self, cutoff: i64) -> sled::Result<u64> {
        let mut n = 0;
        for kv in self.tree.iter() {
            let (k, _) = kv?;
            if end_of(&k).is_some_and(|e| e < cutoff) && self.tree.remove(&k)?.is_some() {
                self.len.fetch_sub(1, Ordering::AcqRel);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Windows kept.
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_finds_expires_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let r = RawTree::open(&db, 3).unwrap();
        r.keep("s1", &[(100, 1.0), (200, 2.0), (300, 3.0)]).unwrap();
        r.keep("s1", &[(250, 2.5), (300, 3.0), (400, 4.0)]).unwrap();
        r.keep("s10", &[(150, 9.0)]).unwrap();
        assert_eq!(
            r.between("s1", 200, 300).unwrap(),
            vec![(200, 2.0), (250, 2.5), (300, 3.0)]
        );
        assert_eq!(r.between("s10", 0, 1000).unwrap(), vec![(150, 9.0)]);
        assert!(r.between("s2", 0, 1000).unwrap().is_empty());
        r.keep("s2", &[(500, 5.0)]).unwrap();
        assert_eq!(
            r.len(),
            3,
            "bounded: the window ending first (s10 at 150) went"
        );
        assert!(r.between("s10", 0, 1000).unwrap().is_empty());
        assert_eq!(r.expire(350).unwrap(), 1);
        assert_eq!(
            r.between("s1", 0, 1000).unwrap(),
            vec![(250, 2.5), (300, 3.0), (400, 4.0)]
        );
    }
}
