//! Fixed-capacity FIFO ring of samples, allocated once.
//!
//! Purpose: hold the sensor [`Window`](super::window::Window)'s raw samples in
//! arrival order, handing back the sample each push evicts so every derived
//! structure can remove it too.
//!
//! # Design constraints
//! - Storage is a `Vec` reserved to `capacity` once; it grows by `push` until
//!   full and is then overwritten in place, so the steady state never allocates.
//! - **Invariant**: `head` is the index of the oldest element; it stays 0 while
//!   filling, and `head < capacity` always. Iteration yields oldest → newest.
//! - **Per-sample cost**: `O(1)` for `push`; `O(n)` for a full iteration.
//! - Never panics: out-of-range situations are unreachable by construction and
//!   are handled without indexing.

use crate::sample::MAX_WINDOW_LEN;

/// Fixed-capacity FIFO ring (see module docs).
#[derive(Clone, Debug)]
pub struct Ring<T> {
    /// Storage; `len() <= capacity`.
    buf: Vec<T>,
    /// Index of the oldest element.
    head: usize,
    /// Maximum number of elements (at least 1).
    capacity: usize,
}

impl<T: Copy> Ring<T> {
    /// An empty ring holding at most `capacity` (at least 1) elements. Up to
    /// [`MAX_WINDOW_LEN`] slots are reserved up front.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            buf: Vec::with_capacity(capacity.min(MAX_WINDOW_LEN)),
            head: 0,
            capacity,
        }
    }

    /// Appends `x` as the newest element; returns the oldest one if it had to
    /// be evicted to make room. `O(1)`.
    pub fn push(&mut self, x: T) -> Option<T> {
        if self.buf.len() < self.capacity {
            self.buf.push(x);
            return None;
        }
        let slot = self.buf.get_mut(self.head)?;
        let old = std::mem::replace(slot, x);
        self.head = (self.head + 1) % self.capacity;
        Some(old)
    }

    /// Elements oldest → newest.
    pub fn iter(&self) -> impl Iterator<Item = &T> + Clone {
        let (newer, older) = self.buf.split_at(self.head.min(self.buf.len()));
        older.iter().chain(newer)
    }

    /// Number of elements held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no elements are held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Whether the ring holds `capacity` elements (the next push evicts).
    pub fn is_full(&self) -> bool {
        self.buf.len() == self.capacity
    }

    /// Maximum number of elements.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_with_eviction() {
        let mut r = Ring::new(3);
        assert!(r.is_empty());
        assert_eq!(r.push(1), None);
        assert_eq!(r.push(2), None);
        assert_eq!(r.push(3), None);
        assert!(r.is_full());
        for (x, evicted) in [(4, 1), (5, 2), (6, 3), (7, 4)] {
            assert_eq!(r.push(x), Some(evicted));
            assert_eq!(r.len(), 3);
        }
        assert_eq!(r.iter().copied().collect::<Vec<_>>(), vec![5, 6, 7]);
        assert_eq!(r.capacity(), 3);
        let mut z = Ring::new(0);
        assert_eq!(z.push(1), None);
        assert_eq!(z.push(2), Some(1));
    }
}
