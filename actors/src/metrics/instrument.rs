//! The two instruments of the gateway that hold more than one number: [`Labelled`], a family
//! of series by label set, and [`Hist`], a histogram. Both are encoded by `prometheus_client`
//! for `/metrics` (they implement its `EncodeMetric`, so the exposition is the crate's own)
//! and read directly ([`super::read`]) by the OTLP export and the `/status` figures.
//!
//! Design constraints: the data path pays what `prometheus_client`'s own family and
//! histogram cost. A series lookup is a read lock and a hash lookup (a write lock only the
//! first time a label set is seen); an observation is one uncontended mutex and a binary
//! search over the bounds, where the crate's histogram takes a write lock and scans them.

use super::read::{Buckets, Kind, LabelPair, Labels, Read, Series, Value};
use parking_lot::{MappedRwLockReadGuard, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

/// A family of series of `M`, one per label set `S`, each created at 0 on first use and
/// never removed (label values come from small fixed sets).
pub struct Labelled<S, M> {
    series: Arc<RwLock<HashMap<S, M>>>,
}

impl<S, M> Clone for Labelled<S, M> {
    fn clone(&self) -> Self {
        Labelled {
            series: Arc::clone(&self.series),
        }
    }
}

impl<S, M> Default for Labelled<S, M> {
    fn default() -> Self {
        Labelled {
            series: Arc::default(),
        }
    }
}

impl<S, M> fmt::Debug for Labelled<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Labelled")
            .field("series", &self.series.read().len())
            .finish()
    }
}

impl<S: Clone + Hash + Eq, M: Default> Labelled<S, M> {
    /// The series for `labels`, created at 0 if new.
    pub fn get_or_create(&self, labels: &S) -> MappedRwLockReadGuard<'_, M> {
        if let Ok(m) = RwLockReadGuard::try_map(self.series.read(), |s| s.get(labels)) {
            return m;
        }
        let mut w = self.series.write();
        w.entry(labels.clone()).or_default();
        RwLockReadGuard::map(RwLockWriteGuard::downgrade(w), |s| match s.get(labels) {
            Some(m) => m,
            None => unreachable!("inserted under this lock, and series are never removed"),
        })
    }
}

impl<S, M> EncodeMetric for Labelled<S, M>
where
    S: EncodeLabelSet + Send + Sync,
    M: EncodeMetric + TypedMetric + Send + Sync,
{
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        for (labels, m) in self.series.read().iter() {
            m.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}

impl<S, M> Read for Labelled<S, M>
where
    S: LabelPair + Send + Sync,
    M: Series + Send + Sync,
{
    fn kind(&self) -> Kind {
        M::KIND
    }

    fn read(&self) -> BTreeMap<Labels, Value> {
        self.series
            .read()
            .iter()
            .map(|(labels, m)| (vec![(S::NAME, labels.value())], m.value()))
            .collect()
    }
}

/// A histogram over fixed bucket bounds.
#[derive(Clone)]
pub struct Hist {
    /// The finite upper bounds, ascending (`+Inf` is implicit).
    bounds: Arc<[f64]>,
    state: Arc<Mutex<HistState>>,
}

struct HistState {
    sum: f64,
    count: u64,
    /// Observations per bucket (not cumulative); one more than `bounds`, for `+Inf`.
    per_bucket: Vec<u64>,
}

impl Hist {
    /// A histogram with these upper bounds (sorted ascending; `+Inf` is added).
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let mut bounds: Vec<f64> = bounds.into_iter().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let per_bucket = vec![0; bounds.len() + 1];
        Hist {
            bounds: bounds.into(),
            state: Arc::new(Mutex::new(HistState {
                sum: 0.0,
                count: 0,
                per_bucket,
            })),
        }
    }

    /// Counts `v` in the first bucket whose bound is at least `v`.
    pub fn observe(&self, v: f64) {
        let i = self.bounds.partition_point(|b| *b < v);
        let mut s = self.state.lock();
        s.sum += v;
        s.count += 1;
        s.per_bucket[i] += 1;
    }

    /// What it holds now, with cumulative counts as Prometheus shows them.
    pub fn reading(&self) -> Buckets {
        let s = self.state.lock();
        let mut total = 0;
        let cumulative = self
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(&s.per_bucket)
            .map(|(le, n)| {
                total += n;
                (le, total)
            })
            .collect();
        Buckets {
            cumulative,
            sum: s.sum,
            count: s.count,
        }
    }
}

impl fmt::Debug for Hist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hist")
            .field("buckets", &self.bounds.len())
            .finish()
    }
}

impl TypedMetric for Hist {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Hist {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), fmt::Error> {
        let (sum, count, buckets) = {
            let s = self.state.lock();
            // `prometheus_client` takes per-bucket counts, the last bound `f64::MAX` for +Inf.
            let buckets: Vec<(f64, u64)> = self
                .bounds
                .iter()
                .copied()
                .chain([f64::MAX])
                .zip(s.per_bucket.iter().copied())
                .collect();
            (s.sum, s.count, buckets)
        };
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

impl Series for Hist {
    const KIND: Kind = Kind::Histogram;
    fn value(&self) -> Value {
        Value::Histogram(self.reading())
    }
}
