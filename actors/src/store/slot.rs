//! The gateway's handle on its store, which may be closed for a while.
//!
//! Design constraints:
//! - **An environment failure closes the store; it never ends the gateway.** sled refuses
//!   every write after its first I/O error (disk full, read-only filesystem, a failing card)
//!   until it is reopened, so the uplink closes the store on such an error and reopens it with
//!   backoff (see `uplink::recovery`). Meanwhile ingest and decisions go on; outbound messages
//!   that cannot be committed are counted as dropped, never acknowledged.
//! - **One owner of the reopen.** Only the uplink closes and reopens; every other user takes a
//!   short-lived `Arc<Store>` with [`StoreSlot::get`] and treats `None` as "not now".
//! - The slot remembers the store's identity (epoch, next seq) while closed, so `/status`
//!   keeps describing it.

use super::{Store, StoreError};
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;

/// Why and since when the store is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// When it was closed (ms).
    pub since: i64,
    /// What failed.
    pub reason: String,
}

/// The open store, or why there is none right now.
pub struct StoreSlot {
    cur: RwLock<Option<Arc<Store>>>,
    closed: Mutex<Option<Closed>>,
    /// (epoch, next_seq) of the store last seen open.
    last: Mutex<Option<(i64, u64)>>,
}

impl StoreSlot {
    /// A slot holding `store`.
    pub fn open(store: Store) -> Self {
        let slot = Self::closed(String::new());
        slot.put(store);
        slot
    }

    /// A slot without a store (it could not be opened): `reason` says why.
    pub fn closed(reason: String) -> Self {
        StoreSlot {
            cur: RwLock::new(None),
            closed: Mutex::new(Some(Closed {
                since: crate::status::now_ms(),
                reason,
            })),
            last: Mutex::new(None),
        }
    }

    /// The store, if it is open.
    pub fn get(&self) -> Option<Arc<Store>> {
        self.cur.read().clone()
    }

    /// Closes the store after `reason`; its files are released once the last user drops its
    /// handle.
    pub fn close(&self, reason: String) {
        if let Some(s) = self.cur.write().take() {
            *self.last.lock() = Some((s.epoch(), s.next_seq()));
        }
        *self.closed.lock() = Some(Closed {
            since: crate::status::now_ms(),
            reason,
        });
    }

    /// Installs a (re)opened store.
    pub fn put(&self, store: Store) {
        *self.last.lock() = Some((store.epoch(), store.next_seq()));
        *self.cur.write() = Some(Arc::new(store));
        *self.closed.lock() = None;
    }

    /// Why the store is closed, if it is.
    pub fn closed_reason(&self) -> Option<Closed> {
        self.closed.lock().clone()
    }

    /// The epoch of the store (the last one seen open, while closed).
    pub fn epoch(&self) -> Option<i64> {
        match self.get() {
            Some(s) => Some(s.epoch()),
            None => self.last.lock().map(|(e, _)| e),
        }
    }

    /// The seq the next commit gets (as last seen, while closed).
    pub fn next_seq(&self) -> Option<u64> {
        match self.get() {
            Some(s) => Some(s.next_seq()),
            None => self.last.lock().map(|(_, n)| n),
        }
    }
}

impl StoreError {
    /// True when the failure comes from the environment (disk full, read-only filesystem,
    /// permissions, an I/O error of the device), not from the store's content: such a store
    /// is closed and reopened later, never moved aside as corrupt.
    pub fn is_environmental(&self) -> bool {
        let io = match self {
            StoreError::Sled(sled::Error::Io(e)) => e,
            StoreError::Io { source, .. } => source,
            _ => return false,
        };
        use std::io::ErrorKind as K;
        matches!(
            io.kind(),
            K::StorageFull
                | K::ReadOnlyFilesystem
                | K::PermissionDenied
                | K::QuotaExceeded
                | K::FileTooLarge
        ) || io.raw_os_error() == Some(EIO)
    }
}

/// Linux `EIO`: the device failed the operation.
const EIO: i32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn environment_failures_are_told_from_content_failures() {
        let io = |e: Error| StoreError::Sled(sled::Error::Io(e));
        assert!(
            io(Error::from_raw_os_error(28)).is_environmental(),
            "ENOSPC"
        );
        assert!(io(Error::from_raw_os_error(30)).is_environmental(), "EROFS");
        assert!(io(Error::from_raw_os_error(5)).is_environmental(), "EIO");
        assert!(io(Error::from(ErrorKind::PermissionDenied)).is_environmental());
        assert!(!io(Error::from(ErrorKind::UnexpectedEof)).is_environmental());
        assert!(!StoreError::Decode("record 1".into()).is_environmental());
        assert!(!StoreError::Sled(sled::Error::Corruption { at: None, bt: () }).is_environmental());
    }

    #[test]
    fn a_closed_slot_remembers_the_store_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::store::StoreConfig {
            path: dir.path().join("data"),
            ..Default::default()
        };
        let slot = StoreSlot::open(Store::open(&cfg).unwrap().store);
        let epoch = slot.epoch();
        assert!(slot.get().is_some() && slot.closed_reason().is_none());
        slot.close("flush: disk full".into());
        assert!(slot.get().is_none());
        assert_eq!(slot.epoch(), epoch);
        assert_eq!(slot.next_seq(), Some(1));
        assert_eq!(slot.closed_reason().unwrap().reason, "flush: disk full");
        slot.put(Store::open(&cfg).unwrap().store);
        assert_eq!(slot.epoch(), epoch, "reopened, same store");
        assert!(slot.closed_reason().is_none());
    }
}
