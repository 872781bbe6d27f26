//! Per-sensor calibration of model scores into an anomaly likelihood.
//!
//! Purpose: one model serves every sensor, but what is a normal reconstruction error differs
//! from one sensor to the next (a noise-free periodic signal, a spiky traffic count, a
//! flat line). So, like the anomaly likelihood of Numenta's HTM detector, the decision is
//! not taken on the model's raw score but on how unusual that score is *for this sensor*:
//! each sensor learns the distribution of its own (log) scores and a decision is anomalous
//! when the recent scores sit far in its upper tail.
//!
//! # Method
//! - `x = ln(raw + floor)`, `floor` a small share of the model's own threshold, so that
//!   the noise among near-zero scores of a very regular signal is not mistaken for change.
//! - The short-term score is the mean of the last [`LikelihoodConfig::short`] `x`.
//! - The long-term distribution is the mean `m` and variance `v` of the short-term score,
//!   a running mean for the first [`LikelihoodConfig::horizon`] decisions and an EMA of that
//!   horizon afterwards; the update is bounded at `m + 6σ` so one burst cannot hide the
//!   next for long, and `σ` is floored at [`LikelihoodConfig::min_spread`] (a flat or
//!   perfectly regular signal has a near-constant score and would otherwise make any
//!   wobble a 100σ event).
//! - `z = (short − m)/σ`, tail `q = Q(z)` (the standard normal upper tail, in log space so
//!   it never underflows); `likelihood = 1 − q`; the calibrated score is
//!   `min(1, −log10(q)/d)` with `d` = [`LikelihoodConfig::decades`]; at the model's 10,
//!   HTM's log-likelihood scale, 0.5 means `q = 1e-5`.
//! - The first [`LikelihoodConfig::learn`] decisions only learn: score 0.
//!
//! Design constraints: O(1) per decision, a few dozen bytes per sensor, no allocation;
//! deterministic: it depends only on the sequence of raw scores, which the sensor applies
//! in window order.

pub use crate::sample::Calibrated;

/// Most decisions the short-term mean may cover.
pub const MAX_SHORT: usize = 16;

/// Tunables of a [`Likelihood`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LikelihoodConfig {
    /// Decisions spent learning the distribution before any can score above 0.
    pub learn: u32,
    /// Decisions in the short-term mean (1 ..= [`MAX_SHORT`]).
    pub short: usize,
    /// Decisions of the long-term distribution's horizon.
    pub horizon: u32,
    /// Smallest standard deviation of the distribution, in e-folds of the raw score.
    pub min_spread: f64,
    /// The share of the model's threshold added to raw scores before the logarithm.
    pub floor_share: f64,
    /// Decades of `q` that span the calibrated score from 0 to 1.
    pub decades: f64,
}

impl Default for LikelihoodConfig {
    fn default() -> Self {
        Self {
            learn: 16,
            short: 2,
            horizon: 1000,
            min_spread: 0.3,
            floor_share: 0.1,
            decades: 10.0,
        }
    }
}

/// One sensor's score distribution (see module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Likelihood {
    cfg: LikelihoodConfig,
    /// Decisions seen.
    n: u64,
    mean: f64,
    var: f64,
    recent: [f64; MAX_SHORT],
    /// Next slot of `recent`, and how many are filled.
    head: usize,
    filled: usize,
}

impl Likelihood {
    /// An empty distribution.
    pub fn new(cfg: LikelihoodConfig) -> Self {
        let short = cfg.short.clamp(1, MAX_SHORT);
        Self {
            cfg: LikelihoodConfig { short, ..cfg },
            n: 0,
            mean: 0.0,
            var: 0.0,
            recent: [0.0; MAX_SHORT],
            head: 0,
            filled: 0,
        }
    }

    /// Calibrates the next raw score (`threshold` is the model's own, for the floor) and
    /// learns from it.
    pub fn update(&mut self, raw: f32, threshold: f32) -> Calibrated {
        let floor = (f64::from(threshold).abs() * self.cfg.floor_share).max(1e-6);
        let raw = f64::from(raw);
        let x = if raw.is_nan() {
            f64::MAX.ln()
        } else {
            (raw.clamp(0.0, f64::MAX / 2.0) + floor).ln()
        };
        self.recent[self.head] = x;
        self.head = (self.head + 1) % self.cfg.short;
        self.filled = (self.filled + 1).min(self.cfg.short);
        let short = self.recent[..self.filled].iter().sum::<f64>() / self.filled as f64;
        let sd = self.var.max(0.0).sqrt().max(self.cfg.min_spread);
        let out = if self.n >= u64::from(self.cfg.learn) {
            let z = (short - self.mean) / sd;
            let ln_q = ln_upper_tail(z);
            let score =
                (-ln_q / std::f64::consts::LN_10 / self.cfg.decades.max(1e-3)).clamp(0.0, 1.0);
            Calibrated {
                likelihood: 1.0 - ln_q.exp(),
                score: score as f32,
            }
        } else {
            Calibrated::NONE
        };
        self.n = self.n.saturating_add(1);
        let bounded = if self.n > 1 {
            short.min(self.mean + 6.0 * sd)
        } else {
            short
        };
        let r = 1.0 / (self.n.min(u64::from(self.cfg.horizon.max(1)))) as f64;
        let d = bounded - self.mean;
        self.mean += r * d;
        self.var = (1.0 - r) * (self.var + r * d * d);
        out
    }

    /// Decisions seen so far.
    pub fn decisions(&self) -> u64 {
        self.n
    }
}

/// `ln Q(z)`, the log of the standard normal upper tail, accurate to ~1e-7 relative on `Q`
/// (Numerical Recipes' Chebyshev fit of `erfc`, evaluated in log space so very large `z`
/// give large negative values instead of `ln 0`).
pub fn ln_upper_tail(z: f64) -> f64 {
    if z.is_nan() {
        return 0.0;
    }
    let x = z / std::f64::consts::SQRT_2;
    let ax = x.abs();
    let t = 1.0 / (1.0 + 0.5 * ax);
    let poly = -ax * ax - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    // erfc(ax) = t·e^poly; Q(z) = erfc(x)/2, and erfc(−a) = 2 − erfc(a).
    let ln_erfc_ax = t.ln() + poly;
    if x >= 0.0 {
        ln_erfc_ax - std::f64::consts::LN_2
    } else {
        (1.0 - 0.5 * ln_erfc_ax.exp()).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_matches_known_values() {
        for (z, q) in [
            (0.0, 0.5),
            (1.0, 0.158_655_25),
            (3.0, 1.349_898e-3),
            (-2.0, 0.977_249_87),
        ] {
            let got = ln_upper_tail(z).exp();
            assert!((got - q).abs() / q < 1e-5, "Q({z}) = {got}, want {q}");
        }
        // Far in the tail it stays finite and keeps falling.
        assert!(ln_upper_tail(40.0) < ln_upper_tail(20.0));
        assert!(ln_upper_tail(40.0).is_finite());
    }

    #[test]
    fn steady_scores_are_unremarkable_and_a_jump_is_not() {
        let mut l = Likelihood::new(LikelihoodConfig::default());
        let mut last = None;
        for i in 0..200 {
            let raw = 0.2 + 0.05 * ((i as f32) * 0.7).sin();
            last = Some(l.update(raw, 1.8));
        }
        let steady = last.unwrap();
        assert!(steady.score < 0.2, "{steady:?}");
        let jump = l.update(5.0, 1.8);
        let jump = l.update(5.0, 1.8).score.max(jump.score);
        assert!(jump >= 0.5, "{jump}");
    }

    #[test]
    fn learns_before_it_judges_and_a_constant_score_never_alerts() {
        let cfg = LikelihoodConfig::default();
        let mut l = Likelihood::new(cfg);
        for _ in 0..cfg.learn {
            assert_eq!(l.update(100.0, 1.8).score, 0.0);
        }
        for _ in 0..1000 {
            assert!(l.update(0.37, 1.8).score < 0.05);
        }
    }
}
