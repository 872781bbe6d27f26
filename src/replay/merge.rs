//! K-way merge of the [`Source`]s: rows of every file in one global timestamp order.
//!
//! Design constraints: streaming — each file contributes only its current row, the heap holds
//! one entry per file that still has rows. Rows with equal timestamps come in the order the
//! files were given (then file order). Each file is expected in timestamp order; a row that
//! goes back in time is still published where it comes (counted in `Skips::backwards`).

use super::csv::{ReadError, Skips, Source};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The merged stream.
pub struct Merge {
    sources: Vec<Source>,
    /// `(timestamp of its current row, source index)` of every source with a current row.
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    /// The source whose row was handed out last; it advances on the next call.
    lent: Option<usize>,
}

/// One merged row: its timestamp and `(sensor index, value)` pairs.
pub struct Row<'a> {
    /// Event time, ms since the epoch.
    pub ts: i64,
    /// The row's present, finite values.
    pub values: &'a [(usize, f64)],
}

impl Merge {
    /// Reads the first row of every source.
    pub fn new(mut sources: Vec<Source>, skips: &mut Skips) -> Result<Merge, ReadError> {
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, s) in sources.iter_mut().enumerate() {
            if s.advance(skips)? {
                heap.push(Reverse((s.ts, i)));
            }
        }
        Ok(Merge {
            sources,
            heap,
            lent: None,
        })
    }

    /// The timestamp of the next row, if any (the first call tells the replay's `t0`).
    pub fn peek_ts(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((ts, _))| *ts)
    }

    /// The next row in global timestamp order; `None` once every file is done.
    pub fn next_row(&mut self, skips: &mut Skips) -> Result<Option<Row<'_>>, ReadError> {
        if let Some(i) = self.lent.take() {
            let s = &mut self.sources[i];
            if s.advance(skips)? {
                self.heap.push(Reverse((s.ts, i)));
            }
        }
        let Some(Reverse((ts, i))) = self.heap.pop() else {
            return Ok(None);
        };
        self.lent = Some(i);
        Ok(Some(Row {
            ts,
            values: &self.sources[i].values,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path, name: &str, text: &str, first: usize) -> Source {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let mut s = Source::open(&p, "").unwrap();
        let n = s.layout.values.len();
        s.set_sensors((first..first + n).collect());
        s
    }

    #[test]
    fn files_interleave_by_timestamp_ties_in_file_order() {
        let d = tempfile::tempdir().unwrap();
        let a = open(d.path(), "a.csv", "ts,v\n1,10\n3,30\n5,50\n", 0);
        let b = open(d.path(), "b.csv", "ts,v\n2,20\n3,31\n6,60\n7,70\n", 1);
        let c = open(d.path(), "c.csv", "ts,v\n", 2);
        let mut skips = Skips::default();
        let mut m = Merge::new(vec![a, b, c], &mut skips).unwrap();
        assert_eq!(m.peek_ts(), Some(1000));
        let mut got = Vec::new();
        while let Some(r) = m.next_row(&mut skips).unwrap() {
            got.push((r.ts / 1000, r.values.to_vec()));
        }
        let want: Vec<(i64, Vec<(usize, f64)>)> = vec![
            (1, vec![(0, 10.0)]),
            (2, vec![(1, 20.0)]),
            (3, vec![(0, 30.0)]),
            (3, vec![(1, 31.0)]),
            (5, vec![(0, 50.0)]),
            (6, vec![(1, 60.0)]),
            (7, vec![(1, 70.0)]),
        ];
        assert_eq!(got, want);
        assert!(m.next_row(&mut skips).unwrap().is_none());
    }
}
