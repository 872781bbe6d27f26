//! How new the sensor's recent course is, against everything it did before.
//!
//! Purpose: most anomalies in real series (NAB's machine failures, outages, traffic and
//! tweet bursts, cloud metrics) are the sensor doing something it has not done before: a
//! level it has never held, a drop it never made, a ramp faster than any earlier one. The
//! pooled model judges a window's features against what normal windows look like in
//! general; this judges the sensor's last few dozen samples against its own history, which
//! is what makes a daily cycle, a spiky count or a flat line normal *for that sensor*.
//!
//! # Method
//! - The course is the mean of each [`NoveltyConfig::segment`] samples; the sensor's
//!   *context* is its last [`SEGMENTS`] segment means (32 samples at the defaults), in the
//!   sensor's own units.
//! - A recent memory holds the last [`NoveltyConfig::memory`] contexts (one per segment:
//!   1 024 samples at the defaults), each entering it only once it no longer overlaps the
//!   current one, so the context is never compared with itself. An archive keeps every
//!   [`NoveltyConfig::archive_every`]-th context leaving it, [`NoveltyConfig::archive`] of
//!   them (8 192 samples further back at the defaults): a cycle longer than the recent
//!   memory is still known, while a noise-free periodic signal keeps the dense coverage of
//!   its recent past that makes each phase an exact match.
//! - At the end of each segment the distance to the nearest remembered context (root mean
//!   square over the segments) is divided by the sensor's *span*: its range over the first
//!   [`NoveltyConfig::learn`] samples, widened afterwards by only a share
//!   ([`NoveltyConfig::range_rate`]) of each excursion beyond it. A fixed scale is what
//!   makes this work: if an outburst widened the scale, it would shrink its own distance
//!   and every later one.
//! - The distance is calibrated against the sensor's own distances with the same
//!   [`Likelihood`] the model score uses (the mean of the last two log distances against
//!   their long-run distribution, floor [`NoveltyConfig::floor`] spans,
//!   so that a flat or perfectly repeating signal, whose distances are all ~0, cannot turn
//!   a rounding wobble into a 100σ event), on its own scale ([`DECADES`]).
//! - [`Novelty::take`] hands the highest calibrated score since the previous call to the
//!   next decision (the window hop is longer than a segment).
//!
//! Design constraints: O((memory + archive) × [`SEGMENTS`]) per segment, a fixed-size
//! loop the compiler vectorises, and two adds per sample; a fixed footprint
//! (`(memory + archive) × SEGMENTS` `f32`, 16 KiB at the defaults); deterministic: a
//! function of the accepted samples alone, so `run` and `edgegw eval` agree bit for bit.

use super::likelihood::{Calibrated, Likelihood, LikelihoodConfig};

/// Decades of the tail probability that span the calibrated score: 0.5 (the default
/// `sensors.threshold`) means `q ≈ 3 %`, where the model's scale asks for `1e-5`. The
/// nearest-neighbour distance is heavy-tailed (a busy signal keeps meeting contexts a
/// little outside its memory), so its normal-tail `q` overstates how rare a distance is.
/// This scale, like the other defaults of [`NoveltyConfig`], was chosen on NAB's score
/// (docs/detection.md, "What was chosen on NAB's score").
pub const DECADES: f64 = 3.0;

/// Segments per context. Fixed, so that a context is an array and the nearest-context scan
/// compiles to straight-line vector code.
pub const SEGMENTS: usize = 8;

/// A context: [`SEGMENTS`] segment means.
type Context = [f32; SEGMENTS];

/// Tunables of a [`Novelty`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoveltyConfig {
    /// Samples per segment.
    pub segment: usize,
    /// Recent contexts remembered, every one.
    pub memory: usize,
    /// Older contexts remembered: every [`NoveltyConfig::archive_every`]-th context leaving
    /// the recent memory.
    pub archive: usize,
    /// See [`NoveltyConfig::archive`].
    pub archive_every: u64,
    /// Samples over which the span is learned in full.
    pub learn: u64,
    /// Share of an excursion beyond the span that widens it, once learned.
    pub range_rate: f64,
    /// Distance floor of the calibration, in spans.
    pub floor: f32,
    /// Calibration of the distances.
    pub likelihood: LikelihoodConfig,
}

impl Default for NoveltyConfig {
    fn default() -> Self {
        Self {
            segment: 4,
            memory: 256,
            archive: 256,
            archive_every: 8,
            learn: 200,
            range_rate: 0.01,
            floor: 0.03,
            likelihood: LikelihoodConfig {
                learn: 32,
                short: 2,
                horizon: 3000,
                min_spread: 0.3,
                floor_share: 1.0,
                decades: DECADES,
            },
        }
    }
}

/// One sensor's novelty (see module docs).
#[derive(Debug, Clone)]
pub struct Novelty {
    cfg: NoveltyConfig,
    /// Samples seen.
    n: u64,
    lo: f64,
    hi: f64,
    /// The first value: contexts are stored relative to it, so `f32` keeps the detail of a
    /// signal far from zero (a pressure of 101 325 Pa varying by 0.01, a counter).
    origin: f64,
    /// The open segment.
    seg_sum: f64,
    seg_n: usize,
    /// The last `2 × SEGMENTS` segment means, a ring: the newest `SEGMENTS` are the
    /// context, the older ones the context that enters the memory next.
    course: [f64; 2 * SEGMENTS],
    course_head: usize,
    course_len: usize,
    /// Recent contexts.
    memory: Ring,
    /// Older contexts.
    archive: Ring,
    /// Contexts that left the recent memory.
    evicted: u64,
    likelihood: Likelihood,
    /// The highest calibration since the last [`Novelty::take`].
    pending: Calibrated,
}

impl Novelty {
    /// A novelty with nothing learned.
    pub fn new(cfg: NoveltyConfig) -> Self {
        let cfg = NoveltyConfig {
            segment: cfg.segment.max(1),
            memory: cfg.memory.max(1),
            archive_every: cfg.archive_every.max(1),
            ..cfg
        };
        Self {
            n: 0,
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            origin: 0.0,
            seg_sum: 0.0,
            seg_n: 0,
            course: [0.0; 2 * SEGMENTS],
            course_head: 0,
            course_len: 0,
            memory: Ring::new(cfg.memory),
            archive: Ring::new(cfg.archive),
            evicted: 0,
            likelihood: Likelihood::new(cfg.likelihood),
            pending: Calibrated::NONE,
            cfg,
        }
    }

    /// Takes the next accepted sample.
    pub fn observe(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.widen(v);
        self.n = self.n.saturating_add(1);
        self.seg_sum += v;
        self.seg_n += 1;
        if self.seg_n < self.cfg.segment {
            return;
        }
        let mean = self.seg_sum / self.seg_n as f64;
        self.seg_sum = 0.0;
        self.seg_n = 0;
        self.course[self.course_head] = mean;
        self.course_head = (self.course_head + 1) % (2 * SEGMENTS);
        self.course_len = (self.course_len + 1).min(2 * SEGMENTS);
        if self.course_len < SEGMENTS {
            return;
        }
        let d = self.nearest();
        let c = self.likelihood.update(d, self.cfg.floor);
        if self.n >= self.cfg.learn && c.score > self.pending.score {
            self.pending = c;
        }
        if self.course_len == 2 * SEGMENTS {
            self.remember();
        }
    }

    /// The highest calibration since the previous call ([`Calibrated::NONE`] if none).
    pub fn take(&mut self) -> Calibrated {
        std::mem::replace(&mut self.pending, Calibrated::NONE)
    }

    /// The span the distances are measured in.
    pub fn span(&self) -> f64 {
        (self.hi - self.lo).max(0.0)
    }

    fn widen(&mut self, v: f64) {
        let rate = if self.n < self.cfg.learn {
            1.0
        } else {
            self.cfg.range_rate
        };
        if !self.lo.is_finite() {
            (self.lo, self.hi, self.origin) = (v, v, v);
        } else if v < self.lo {
            self.lo += rate * (v - self.lo);
        } else if v > self.hi {
            self.hi += rate * (v - self.hi);
        }
    }

    /// The segment mean `back` segments before the newest (0 = the newest).
    fn course_at(&self, back: usize) -> f64 {
        let len = self.course.len();
        self.course[(self.course_head + len - 1 - back) % len]
    }

    /// Distance from the context to the nearest remembered one, in spans.
    fn nearest(&self) -> f32 {
        if self.memory.len() == 0 {
            return 0.0;
        }
        let context = self.context(0);
        let best = self
            .memory
            .nearest(&context)
            .min(self.archive.nearest(&context));
        let span = self.span().max(1e-9);
        ((f64::from(best) / SEGMENTS as f64).sqrt() / span) as f32
    }

    /// The context ending `back` segments before the newest, oldest segment first, relative
    /// to the origin.
    fn context(&self, back: usize) -> Context {
        std::array::from_fn(|i| (self.course_at(back + SEGMENTS - 1 - i) - self.origin) as f32)
    }

    /// Moves the context before the current one into the memory.
    fn remember(&mut self) {
        if let Some(old) = self.memory.push(self.context(SEGMENTS)) {
            self.evicted += 1;
            if self.evicted % self.cfg.archive_every == 0 {
                self.archive.push(old);
            }
        }
    }
}

/// A fixed ring of contexts.
#[derive(Debug, Clone)]
struct Ring {
    data: Vec<Context>,
    cap: usize,
    head: usize,
}

impl Ring {
    fn new(cap: usize) -> Self {
        Self {
            data: Vec::with_capacity(cap),
            cap,
            head: 0,
        }
    }

    fn len(&self) -> usize {
        self.data.len()
    }

    /// Stores `context`; returns the one it replaced, if the ring was full.
    fn push(&mut self, context: Context) -> Option<Context> {
        if self.cap == 0 {
            return None;
        }
        if self.data.len() < self.cap {
            self.data.push(context);
            return None;
        }
        let old = std::mem::replace(&mut self.data[self.head], context);
        self.head = (self.head + 1) % self.cap;
        Some(old)
    }

    /// Smallest squared distance from `context` to a stored one (`∞` when empty).
    fn nearest(&self, context: &Context) -> f32 {
        self.data
            .iter()
            .map(|m| {
                let mut d = 0.0;
                for i in 0..SEGMENTS {
                    let e = m[i] - context[i];
                    d += e * e;
                }
                d
            })
            .fold(f32::INFINITY, f32::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(values: impl IntoIterator<Item = f64>) -> Vec<f32> {
        let mut n = Novelty::new(NoveltyConfig::default());
        values
            .into_iter()
            .map(|v| {
                n.observe(v);
                n.take().score
            })
            .collect()
    }

    #[test]
    fn a_flat_or_repeating_signal_is_never_new() {
        // A constant sits at the median of its own distances: q = 0.5.
        let flat = run((0..5000).map(|_| 3.0));
        let worst = flat.iter().copied().fold(0.0, f32::max);
        assert!(worst <= 0.11, "{worst}");
        let daily = run((0..10_000).map(|i| 10.0 + 5.0 * (i as f64 * 0.05).sin()));
        let worst = daily[1000..].iter().copied().fold(0.0, f32::max);
        assert!(worst < 0.3, "{worst}");
    }

    /// The highest score before and during a jump of `jump` held for samples 3000..3100 of
    /// a signal at `base` with a small deterministic texture of `texture` steps.
    fn jump_scores(base: f64, texture: f64, jump: f64) -> (f32, f32) {
        let series = (0..4000).map(|i| {
            let v = base + ((i * 7919) % 13) as f64 * texture;
            if (3000..3100).contains(&i) {
                v + jump
            } else {
                v
            }
        });
        let s = run(series);
        let max = |r: std::ops::Range<usize>| s[r].iter().copied().fold(0.0, f32::max);
        (max(1000..3000), max(3000..3040))
    }

    #[test]
    fn a_level_never_held_before_is_new() {
        let (before, during) = jump_scores(10.0, 0.1, 4.0);
        assert!(before < 0.3, "{before}");
        assert!(during > 0.8, "{during}");
    }

    #[test]
    fn a_signal_far_from_zero_keeps_its_detail() {
        // f32 steps by 8 at 1e8: stored as they are, these contexts would all look the same.
        let (before, during) = jump_scores(1e8, 0.01, 0.4);
        assert!(before < 0.3, "{before}");
        assert!(during > 0.8, "{during}");
    }

    /// The context of the consecutive values ending at `end`, relative to the first value (1).
    fn ctx(end: u8) -> Context {
        std::array::from_fn(|i| f32::from(end) - (SEGMENTS - 1 - i) as f32 - 1.0)
    }

    #[test]
    fn the_context_is_the_newest_segments_and_memory_the_older_ones() {
        let cfg = NoveltyConfig {
            segment: 1,
            memory: 3,
            ..NoveltyConfig::default()
        };
        let mut n = Novelty::new(cfg);
        for v in 1..=19u8 {
            n.observe(f64::from(v));
        }
        // The context ends at the newest value; the contexts ending 8 … 11 entered the
        // memory as each stopped overlapping the current one, and 11 took the oldest's place.
        assert_eq!(n.context(0), ctx(19));
        assert_eq!(n.memory.data, vec![ctx(11), ctx(9), ctx(10)]);
        assert_eq!(n.archive.len(), 0);
    }

    #[test]
    fn every_nth_context_leaving_the_memory_is_archived() {
        let cfg = NoveltyConfig {
            segment: 1,
            memory: 2,
            archive: 2,
            archive_every: 2,
            ..NoveltyConfig::default()
        };
        let mut n = Novelty::new(cfg);
        for v in 1..=21u8 {
            n.observe(f64::from(v));
        }
        // Remembered the contexts ending 8 … 13; 8 … 11 left the memory, and the 2nd and
        // 4th of those (9, 11) went to the archive.
        assert_eq!(n.memory.data, vec![ctx(12), ctx(13)]);
        assert_eq!(n.archive.data, vec![ctx(9), ctx(11)]);
        // A context met long ago is still known: the archive answers for it.
        assert_eq!(n.archive.nearest(&ctx(9)), 0.0);
        assert_eq!(n.memory.nearest(&ctx(9)), 72.0);
    }
}
