//! One data file's ground truth (row timestamps and labelled windows) and the mapping of
//! timestamps onto rows.
//!
//! Design constraints: rows are identified by their index in file order, because NAB's data
//! files are not strictly increasing (a few repeat an hour at a DST change or go back in
//! time); a timestamp that occurs several times is its first row, as NAB's
//! `timestamps.index(…)` does.

/// The ground truth of one data file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTruth {
    /// Every row's timestamp (ms since the epoch), in file order; the row index is the
    /// position here.
    pub timestamps: Vec<i64>,
    /// Labelled anomaly windows, `(start_ms, end_ms)`, both ends inclusive.
    pub windows: Vec<(i64, i64)>,
}

impl FileTruth {
    /// The windows as inclusive row ranges `(left, right)`: sorted by start, overlapping or
    /// touching-at-a-row windows merged, windows covering no row dropped.
    ///
    /// A start that is not a row's timestamp maps to the first row at or after it; an end
    /// that is not a row's timestamp maps to the last row before the first row after it (for
    /// increasing timestamps: the last row at or before it). A timestamp present in the rows
    /// maps to its first occurrence. NAB's own labels are always exact row timestamps and
    /// never overlap, so on NAB none of the adjustments fire.
    pub fn window_rows(&self) -> Vec<(usize, usize)> {
        let rows = RowLookup::new(&self.timestamps);
        let mut resolved: Vec<(usize, usize)> = self
            .windows
            .iter()
            .filter_map(|&(start, end)| {
                let left = rows.first_at_or_after(start)?;
                let right = rows.last_at_or_before(end)?;
                (left <= right).then_some((left, right))
            })
            .collect();
        resolved.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(resolved.len());
        for (left, right) in resolved {
            match merged.last_mut() {
                Some(last) if left <= last.1 => last.1 = last.1.max(right),
                _ => merged.push((left, right)),
            }
        }
        merged
    }

    /// The rows of detections given by timestamp: each maps to the first row at or after it
    /// (its first occurrence when it is a row's timestamp). Detections after the last row have
    /// no row and are left out; the result is sorted and free of duplicates.
    pub fn detection_rows(&self, detections: &[i64]) -> Vec<usize> {
        let rows = RowLookup::new(&self.timestamps);
        let mut out: Vec<usize> = detections
            .iter()
            .filter_map(|&t| rows.first_at_or_after(t))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Timestamp → row lookups over rows in file order, with a binary-search fast path when the
/// timestamps never decrease.
struct RowLookup<'a> {
    /// The rows' timestamps.
    ts: &'a [i64],
    /// Whether `ts` never decreases (then binary search gives the same answers as a scan).
    sorted: bool,
}

impl<'a> RowLookup<'a> {
    fn new(ts: &'a [i64]) -> Self {
        let sorted = ts.windows(2).all(|w| w[0] <= w[1]);
        Self { ts, sorted }
    }

    /// First occurrence of `t`, else the first row (in file order) later than `t`.
    fn first_at_or_after(&self, t: i64) -> Option<usize> {
        if self.sorted {
            let p = self.ts.partition_point(|&x| x < t);
            return (p < self.ts.len()).then_some(p);
        }
        let exact = self.ts.iter().position(|&x| x == t);
        exact.or_else(|| self.ts.iter().position(|&x| x > t))
    }

    /// First occurrence of `t`, else the row before the first row later than `t` (the last
    /// row when none is later).
    fn last_at_or_before(&self, t: i64) -> Option<usize> {
        if self.sorted {
            let p = self.ts.partition_point(|&x| x < t);
            if self.ts.get(p) == Some(&t) {
                return Some(p);
            }
            return p.checked_sub(1);
        }
        if let Some(exact) = self.ts.iter().position(|&x| x == t) {
            return Some(exact);
        }
        match self.ts.iter().position(|&x| x > t) {
            Some(later) => later.checked_sub(1),
            None => self.ts.len().checked_sub(1),
        }
    }
}
