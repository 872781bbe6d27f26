//! A sensor's summary over one `summary.period`: count, mean, std, min, max, p50, p95, alerts.
//!
//! Design constraints: O(1) per sample and bounded memory whatever the sample rate: moments
//! by Welford, extremes directly, percentiles from a uniform reservoir of [`RESERVOIR`]
//! samples (Vitter's algorithm R, seeded per sensor). Percentiles are therefore exact up to
//! `RESERVOIR` samples per period and an unbiased estimate beyond (standard rank error
//! sqrt(p(1-p)/RESERVOIR): ≈ 3 % for p50, ≈ 1.4 % for p95), which is what a summary needs;
//! alerts use the exact window. 256 × 8 bytes per sensor keeps 10 000 sensors at 20 MiB.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Samples kept per period for the percentiles.
pub const RESERVOIR: usize = 256;

/// One period's running summary.
pub struct PeriodSummary {
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
    reservoir: Vec<f64>,
    rng: SmallRng,
    /// Alerts raised in the period.
    pub alerts: u64,
}

/// The finished numbers of a period.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryStats {
    /// Samples accepted.
    pub count: u64,
    /// Mean value.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Median (from the reservoir).
    pub p50: f64,
    /// 95th percentile (from the reservoir).
    pub p95: f64,
    /// Alerts raised.
    pub alerts: u64,
}

impl PeriodSummary {
    /// An empty summary; `seed` makes the reservoir reproducible.
    pub fn new(seed: u64) -> Self {
        Self {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            reservoir: Vec::new(),
            rng: SmallRng::seed_from_u64(seed),
            alerts: 0,
        }
    }

    /// Adds one accepted sample value.
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        let d = v - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (v - self.mean);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.reservoir.len() < RESERVOIR {
            self.reservoir.push(v);
        } else {
            let j = self.rng.random_range(0..self.count);
            if (j as usize) < RESERVOIR {
                self.reservoir[j as usize] = v;
            }
        }
    }

    /// Samples in the period so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Finishes the period: returns its numbers (None if no sample arrived) and resets.
    pub fn take(&mut self) -> Option<SummaryStats> {
        if self.count == 0 {
            self.alerts = 0;
            return None;
        }
        let mut r = std::mem::take(&mut self.reservoir);
        r.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = p * (r.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            r[lo] + (r[hi] - r[lo]) * (pos - lo as f64)
        };
        let s = SummaryStats {
            count: self.count,
            mean: self.mean,
            std: (self.m2 / self.count as f64).max(0.0).sqrt(),
            min: self.min,
            max: self.max,
            p50: q(0.5),
            p95: q(0.95),
            alerts: self.alerts,
        };
        r.clear();
        self.reservoir = r;
        self.count = 0;
        self.mean = 0.0;
        self.m2 = 0.0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
        self.alerts = 0;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_reservoir_size() {
        let mut s = PeriodSummary::new(1);
        for i in 1..=101 {
            s.add(i as f64);
        }
        s.alerts = 2;
        let t = s.take().unwrap();
        assert_eq!(t.count, 101);
        assert!((t.mean - 51.0).abs() < 1e-12);
        assert_eq!((t.min, t.max, t.p50, t.p95), (1.0, 101.0, 51.0, 96.0));
        assert_eq!(t.alerts, 2);
        assert!(s.take().is_none());
    }

    #[test]
    fn reservoir_estimates_large_periods() {
        let mut s = PeriodSummary::new(7);
        for i in 0..100_000 {
            s.add((i % 1000) as f64);
        }
        let t = s.take().unwrap();
        assert!((t.p50 - 500.0).abs() < 100.0, "p50 {}", t.p50);
        assert!((t.p95 - 950.0).abs() < 50.0, "p95 {}", t.p95);
        assert!((t.std - 288.67).abs() < 0.1);
    }
}
