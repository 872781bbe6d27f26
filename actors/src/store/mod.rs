//! The durable store: the source of truth for everything that goes upstream.
//!
//! Design constraints:
//! - **Commit before produce.** A record gets its `seq` when it is inserted and counts as
//!   produced only once a flush covering it has completed (group commit: one `flush_async` at
//!   a time covers every record inserted before it started — never an fsync per message).
//! - **seq is never reused.** Records live in one tree keyed `[class][seq BE]`; the same atomic
//!   batch that inserts a group of records ([`Group`]; a single commit is a group of one)
//!   raises the high-water mark (`HW_KEY`) to the group's last seq, so after a crash the
//!   next seq is above every seq ever durable, even when all of them were acknowledged and
//!   deleted. One batch per group rather than per record: sled writes out its I/O buffer at
//!   every batch, which cost more than the inserts themselves. The store's `epoch` (its creation time) goes into every id, so a store that had
//!   to be replaced still produces unique ids.
//! - **Leave only on PUBACK.** `ack` deletes a record; nothing else does, except eviction.
//! - **Budget.** `store.max_bytes` bounds the real on-disk size: the store tracks the logical
//!   bytes it holds and the amplification sled adds (measured from `size_on_disk`), and evicts
//!   when the estimate passes 90 % of the budget — raw windows first, then the oldest
//!   summaries, alerts last. Evictions are counted per class and persisted in the same atomic
//!   batch as each removal, so they are reported upstream even after a crash.
//! - **Corruption is survivable.** A store that cannot be opened (corrupt, unreadable) is moved
//!   aside to `<path>.corrupt-<ms>` and a fresh one is created; the reason is returned so the
//!   gateway can raise it. A store locked by another process is refused, never moved; one
//!   that fails for environmental reasons (disk full, read-only) is not moved either: the
//!   gateway runs without it and reopens it later ([`StoreSlot`]).

mod budget;
pub use budget::Housekeeping;
pub mod codec;
pub mod deadletters;
pub mod feedback;
mod group;
pub mod raw;
mod slot;

pub use crate::config::StoreConfig;
pub use group::Group;
pub use slot::{Closed, StoreSlot};

use crate::outbound::Class;
use parking_lot::Mutex;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Key of the high-water mark (highest seq ever assigned) in the outbox tree; sorts after
/// every record key because no class byte is 0xFF.
const HW_KEY: &[u8] = b"\xffhw";
/// How long a locked store is retried before it is refused.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Meta key of the store's creation time.
const EPOCH_KEY: &[u8] = b"epoch";
/// Key of the per-class eviction counts in the outbox tree, so a removal and its count are
/// one atomic batch.
const EVICTED_KEY: &[u8] = b"\xffev";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the store (another gateway on the same `store.path`).
    #[error("store {0} is in use by another process")]
    Locked(PathBuf),
    /// sled failed (I/O, disk full, corruption).
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// A value could not be encoded for storage (nothing was written).
    #[error("store: value not encodable: {0}")]
    Encode(String),
    /// A stored value could not be decoded.
    #[error("store: undecodable record: {0}")]
    Decode(String),
    /// The store could not be moved aside or recreated.
    #[error("store {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// One outbound record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Per-gateway sequence number.
    pub seq: u64,
    /// Class (eviction order, topic).
    pub class: Class,
    /// Full MQTT topic.
    pub topic: String,
    /// The JSON payload.
    pub payload: Vec<u8>,
}

/// Per-class counts and bytes held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClassStats {
    /// Records held.
    pub count: u64,
    /// Logical bytes (key + value) held.
    pub bytes: u64,
}

/// What `/status` and `store inspect` show.
#[derive(Debug, Clone, Serialize)]
pub struct StoreReport {
    /// Store directory.
    pub path: String,
    /// Creation time of this store, ms (part of every message id).
    pub epoch: i64,
    /// The seq the next record gets.
    pub next_seq: u64,
    /// Held records per class: alert, summary, raw.
    pub backlog: [(&'static str, ClassStats); 3],
    /// Logical bytes held.
    pub logical_bytes: u64,
    /// Bytes on disk (sled's own figure).
    pub disk_bytes: u64,
    /// Measured disk / logical ratio used for the budget.
    pub amplification: f64,
    /// The budget.
    pub max_bytes: u64,
    /// Records evicted to keep the budget, per class, since the store was created.
    pub evicted: [(&'static str, u64); 3],
    /// Dead letters held.
    pub dead_letters: u64,
    /// Raw windows kept for requests.
    pub raw_windows: u64,
}

struct State {
    next_seq: u64,
    stats: [ClassStats; 3],
    evicted: [u64; 3],
    amplification: f64,
    disk_bytes: u64,
}

/// The open store. Thread-safe; the uplink is its only committer.
pub struct Store {
    path: PathBuf,
    cfg: StoreConfig,
    db: sled::Db,
    outbox: sled::Tree,
    /// Dead letters (bounded), written by ingest and sensors.
    pub dead: deadletters::DeadLetterTree,
    /// Raw troubleshooting windows kept for `raw-request`s (bounded, expiring).
    pub raw: raw::RawTree,
    epoch: i64,
    state: Mutex<State>,
}

/// Result of opening: the store, and why it had to be recreated, if it had to.
pub struct Opened {
    /// The store.
    pub store: Store,
    /// Set when the old store was unreadable and moved aside.
    pub recovered: Option<String>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

const CLASSES: [Class; 3] = [Class::Alert, Class::Summary, Class::Raw];

fn key(class: Class, seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = class as u8;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn parse_key(k: &[u8]) -> Option<(Class, u64)> {
    let class = match k.first()? {
        0 => Class::Alert,
        1 => Class::Summary,
        2 => Class::Raw,
        _ => return None,
    };
    let seq = u64::from_be_bytes(k.get(1..9)?.try_into().ok()?);
    Some((class, seq))
}

impl Store {
    /// Opens (or creates) the store at `cfg.path`; an unreadable store is moved aside and
    /// replaced, a locked one refused.
    pub fn open(cfg: &StoreConfig) -> Result<Opened, StoreError> {
        match Self::open_waiting(cfg) {
            Ok(store) => Ok(Opened {
                store,
                recovered: None,
            }),
            Err(StoreError::Locked(p)) => Err(StoreError::Locked(p)),
            // Disk full, read-only, permissions: the content is not at fault; moving it aside
            // would orphan the backlog. The caller runs without a store and retries.
            Err(e) if e.is_environmental() => Err(e),
            Err(e) => {
                let reason = e.to_string();
                let aside = PathBuf::from(format!("{}.corrupt-{}", cfg.path.display(), now_ms()));
                std::fs::rename(&cfg.path, &aside).map_err(|source| StoreError::Io {
                    path: cfg.path.clone(),
                    source,
                })?;
                tracing::error!(message = "Store unreadable; moved aside and recreated.", reason = %reason, moved_to = %aside.display());
                let store = Self::try_open(cfg)?;
                Ok(Opened {
                    store,
                    recovered: Some(format!("{reason}; old store moved to {}", aside.display())),
                })
            }
        }
    }

    /// Opens an existing store for offline inspection: never creates, never moves anything
    /// aside; an unreadable store is an error.
    pub fn open_existing(cfg: &StoreConfig) -> Result<Store, StoreError> {
        if !cfg.path.join("db").exists() {
            return Err(StoreError::Io {
                path: cfg.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no store here"),
            });
        }
        Self::open_waiting(cfg)
    }

    /// `try_open`, retrying a locked store for up to [`LOCK_WAIT`]: the lock of a process that
    /// is still exiting (a quick restart), or of a handle this process just dropped (sled
    /// releases it from a background thread), goes away by itself; a second live gateway's
    /// does not, and is refused.
    fn open_waiting(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        loop {
            match Self::try_open(cfg) {
                Err(StoreError::Locked(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => return r,
            }
        }
    }

    fn try_open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        let path = cfg.path.clone();
        let sled_cfg = sled::Config::new()
            .path(&path)
            .cache_capacity(cfg.cache_bytes)
            .flush_every_ms(None)
            .mode(sled::Mode::LowSpace);
        // sled can panic on some corrupt files instead of returning an error.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sled_cfg.open()))
            .map_err(|_| {
                StoreError::Decode("sled panicked while opening (corrupt store)".into())
            })?;
        let db = match opened {
            Ok(db) => db,
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                return Err(StoreError::Locked(path))
            }
            Err(e) => return Err(e.into()),
        };
        let outbox = db.open_tree("outbox")?;
        let meta = db.open_tree("meta")?;
        let dead = deadletters::DeadLetterTree::open(&db, cfg.dead_letters_max)?;
        let raw = raw::RawTree::open(&db, cfg.raw_windows_max)?;
        let epoch = match meta.get(EPOCH_KEY)? {
            Some(v) => i64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Decode("epoch".into()))?,
            ),
            None => {
                let e = now_ms();
                meta.insert(EPOCH_KEY, &e.to_be_bytes())?;
                db.flush()?;
                e
            }
        };
        let evicted = match outbox.get(EVICTED_KEY)? {
            Some(v) => {
                codec::decode_counts(&v).ok_or_else(|| StoreError::Decode("evicted".into()))?
            }
            None => [0; 3],
        };
        // Scan once: per-class counts and bytes, highest seq, and decodability of every record.
        let mut stats = [ClassStats::default(); 3];
        let mut max_seq = 0u64;
        for kv in outbox.iter() {
            let (k, v) = kv?;
            if k.as_ref() == EVICTED_KEY {
                continue;
            }
            if k.as_ref() == HW_KEY {
                let hw = u64::from_be_bytes(
                    v.as_ref()
                        .try_into()
                        .map_err(|_| StoreError::Decode("high-water mark".into()))?,
                );
                max_seq = max_seq.max(hw);
                continue;
            }
            let (class, seq) =
                parse_key(&k).ok_or_else(|| StoreError::Decode("record key".into()))?;
            codec::decode(&v).ok_or_else(|| StoreError::Decode(format!("record {seq}")))?;
            let s = &mut stats[class as usize];
            s.count += 1;
            s.bytes += (k.len() + v.len()) as u64;
            max_seq = max_seq.max(seq);
        }
        let disk_bytes = db.size_on_disk().unwrap_or(0);
        Ok(Store {
            path,
            cfg: cfg.clone(),
            db,
            outbox,
            dead,
            raw,
            epoch,
            state: Mutex::new(State {
                next_seq: max_seq + 1,
                stats,
                evicted,
                amplification: cfg.initial_amplification,
                disk_bytes,
            }),
        })
    }

    /// Creation time of this store (ms), part of every message id.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The seq the next commit gets.
    pub fn next_seq(&self) -> u64 {
        self.state.lock().next_seq
    }

    /// Makes everything written so far durable, on the caller's thread (blocks on the disk).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// [`Store::flush`] as a future that does not borrow the store, to run off the caller's
    /// thread (the uplink's group commit: one at a time, covering every write before it).
    pub fn flush_async(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + Send {
        let db = self.db.clone();
        async move {
            db.flush_async().await?;
            Ok(())
        }
    }

    /// Bytes the store occupies on disk now (it stats files).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// The feedback stage's trees, opened for one use (a kept handle would hold a closed
    /// store open); `counts` as [`feedback::Trees::open`] takes them.
    pub fn feedback_trees(&self, counts: Option<(u64, u64)>) -> sled::Result<feedback::Trees> {
        feedback::Trees::open(self.db.clone(), counts)
    }

    /// The feedback stage's labels, oldest first, for `edgegw store export --labels`.
    pub(crate) fn feedback_labels(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(feedback::LABELS)?)
    }

    /// Inserts a record with the next seq (`build` makes its payload from the seq) and raises
    /// the high-water mark in the same atomic batch; then evicts if over budget. Durable after
    /// the next completed flush. Returns the seq and the evicted records' classes. A group of
    /// one: committing many at once ([`Store::group`]) costs one batch for all of them.
    pub fn commit(
        &self,
        class: Class,
        topic: &str,
        build: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<(u64, Vec<(Class, u64)>), StoreError> {
        let mut g = self.group();
        let seq = g.add(class, topic, build);
        Ok((seq, g.commit()?))
    }

    /// The record with the smallest seq in `[from, below)`, across classes.
    pub fn next_in(&self, from: u64, below: u64) -> Result<Option<Record>, StoreError> {
        let mut best: Option<(u64, Class, sled::IVec)> = None;
        for class in CLASSES {
            if let Some((k, v)) = self
                .outbox
                .range(key(class, from)..key(class, below))
                .next()
                .transpose()?
            {
                if let Some((c, seq)) = parse_key(&k) {
                    if best.as_ref().is_none_or(|b| seq < b.0) {
                        best = Some((seq, c, v));
                    }
                }
            }
        }
        let Some((seq, class, v)) = best else {
            return Ok(None);
        };
        let (topic, payload) =
            codec::decode(&v).ok_or_else(|| StoreError::Decode(format!("record {seq}")))?;
        Ok(Some(Record {
            seq,
            class,
            topic,
            payload,
        }))
    }

    /// The broker acknowledged `seq`: forget it. False if it was not held (already acked or
    /// evicted).
    pub fn ack(&self, class: Class, seq: u64) -> Result<bool, StoreError> {
        let k = key(class, seq);
        let Some(v) = self.outbox.remove(k)? else {
            return Ok(false);
        };
        let mut st = self.state.lock();
        let s = &mut st.stats[class as usize];
        s.count = s.count.saturating_sub(1);
        s.bytes = s.bytes.saturating_sub((k.len() + v.len()) as u64);
        Ok(true)
    }

    /// Per-class counts and bytes.
    pub fn stats(&self) -> [(Class, ClassStats); 3] {
        let st = self.state.lock();
        [
            (Class::Alert, st.stats[0]),
            (Class::Summary, st.stats[1]),
            (Class::Raw, st.stats[2]),
        ]
    }

    /// The report for `/status` and `store inspect`.
    pub fn report(&self) -> StoreReport {
        let st = self.state.lock();
        StoreReport {
            path: self.path.display().to_string(),
            epoch: self.epoch,
            next_seq: st.next_seq,
            backlog: [
                ("alert", st.stats[0]),
                ("summary", st.stats[1]),
                ("raw", st.stats[2]),
            ],
            logical_bytes: Self::logical(&st),
            disk_bytes: st.disk_bytes,
            amplification: st.amplification,
            max_bytes: self.cfg.max_bytes,
            evicted: [
                ("alert", st.evicted[0]),
                ("summary", st.evicted[1]),
                ("raw", st.evicted[2]),
            ],
            dead_letters: self.dead.len(),
            raw_windows: self.raw.len(),
        }
    }

    /// Every held record in seq order (for `store export`).
    pub fn records(&self) -> Result<Vec<Record>, StoreError> {
        let mut all = Vec::new();
        for kv in self.outbox.iter() {
            let (k, v) = kv?;
            let Some((class, seq)) = parse_key(&k) else {
                continue;
            };
            let (topic, payload) =
                codec::decode(&v).ok_or_else(|| StoreError::Decode(format!("record {seq}")))?;
            all.push(Record {
                seq,
                class,
                topic,
                payload,
            });
        }
        all.sort_by_key(|r| r.seq);
        Ok(all)
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod model_check;
#[cfg(test)]
mod tests;
