//! Band-averaged FFT magnitudes of a window's contents.
//!
//! Purpose: give the anomaly model a coarse, scale-comparable picture of a
//! sensor's *texture* (how its energy is spread over frequency), computed only
//! when the [`Window`](super::window::Window) emits, never per sample.
//!
//! # Design constraints
//! - **Memory**: nothing per window is proportional to `len`. The FFT plan and
//!   the Hann window of each length are built once per process and shared by
//!   every window of that length; the complex work and FFT scratch buffers are
//!   per thread (an emission never yields, so one buffer per runtime thread
//!   serves every sensor it runs), grown to the largest length seen and reused.
//!   [`Spectrum::bands`] then allocates nothing but the returned `Vec`.
//! - **Recipe**: subtract the window mean (DC excluded), multiply by a periodic
//!   Hann window `w[i] = ½(1 − cos(2πi/n))`, FFT, take `|X[k]|` for
//!   `k ∈ 1..=len/2`, divide by `n`, split those `len/2` bins into `bands`
//!   contiguous groups (band `b` covers bins `1 + ⌊b·B/bands⌋ .. 1 + ⌊(b+1)·B/bands⌋`
//!   with `B = len/2`, sizes differ by at most one), band value = mean magnitude
//!   of its bins. Bands run from low to high frequency.
//! - Frequencies are in cycles **per sample** (bin `k` ↔ `k/len`), because the
//!   window is count-based and sampling may be irregular.
//! - A partially filled window (`n < len`, on-demand stats only) uses a Hann
//!   window of length `n`, zero-padded to `len`, normalised by `n`: band `b`
//!   still means the same per-sample frequency range as for a full window.
//! - **Overflow safety**: inputs are centred as `x/2 − mean/2` and rescaled by
//!   their largest magnitude before the FFT, and the scale is re-applied to the
//!   band means at the end, so finite inputs give finite or `+inf` magnitudes,
//!   never NaN. A constant window gives exact zeros.
//! - **Cost**: `O(len log len)` per emission (every `hop` samples), i.e.
//!   `O(len log len / hop)` amortised per sample.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::{Mutex, OnceLock};

use crate::sample::MAX_WINDOW_LEN;

/// Band-magnitude calculator for windows of a fixed length (see module docs).
#[derive(Clone)]
pub struct Spectrum {
    /// Number of output bands, `1..=len/2` (guaranteed by the window config).
    bands: usize,
    /// The FFT and Hann window of this length, shared by every window of it.
    plan: Arc<Plan>,
}

/// What every window of one length shares.
struct Plan {
    /// FFT length: the window capacity.
    len: usize,
    /// Forward FFT of size `len`.
    fft: Arc<dyn Fft<f64>>,
    /// Periodic Hann window of length `len`, for full windows.
    hann: Box<[f64]>,
}

impl fmt::Debug for Spectrum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spectrum")
            .field("len", &self.plan.len)
            .field("bands", &self.bands)
            .finish_non_exhaustive()
    }
}

/// One plan per window length for the whole process: every sensor with the same window shares
/// its twiddle tables and Hann window instead of building its own (10 000 sensors, one plan).
fn shared_plan(len: usize) -> Arc<Plan> {
    struct Plans {
        planner: FftPlanner<f64>,
        by_len: HashMap<usize, Arc<Plan>>,
    }
    static PLANS: OnceLock<Mutex<Plans>> = OnceLock::new();
    let plans = PLANS.get_or_init(|| {
        Mutex::new(Plans {
            planner: FftPlanner::new(),
            by_len: HashMap::new(),
        })
    });
    // A poisoned lock only means another thread panicked while planning, which leaves the
    // cache usable.
    let mut p = plans.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(plan) = p.by_len.get(&len) {
        return plan.clone();
    }
    let plan = Arc::new(Plan {
        len,
        fft: p.planner.plan_fft_forward(len),
        hann: hann(len).into_boxed_slice(),
    });
    p.by_len.insert(len, plan.clone());
    plan
}

/// The complex work and FFT scratch buffers of one thread (see module docs).
#[derive(Default)]
struct Work {
    buf: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
}

thread_local! {
    static WORK: Cell<Work> = Cell::new(Work::default());
}

impl Spectrum {
    /// Looks up (or builds, once per length) the shared plan. `len` is clamped to
    /// `2..=MAX_WINDOW_LEN` and `bands` to `1..=len/2` so this never panics; the window
    /// validates both earlier.
    pub fn new(len: usize, bands: usize) -> Self {
        let len = len.clamp(2, MAX_WINDOW_LEN);
        Self {
            bands: bands.clamp(1, len / 2),
            plan: shared_plan(len),
        }
    }

    /// Number of bands produced.
    pub fn band_count(&self) -> usize {
        self.bands
    }

    /// Band magnitudes of `values` (oldest→newest, at most `len` of them; extra
    /// values are ignored) around `mean`, using this thread's work buffers.
    pub fn bands<I: Iterator<Item = f64>>(&mut self, values: I, mean: f64) -> Vec<f64> {
        self.bands_alloc(values, mean)
    }

    /// Same as [`bands`](Self::bands), for shared references (on-demand stats).
    pub fn bands_alloc<I: Iterator<Item = f64>>(&self, values: I, mean: f64) -> Vec<f64> {
        let plan = self.plan.as_ref();
        // The buffers are taken out of the thread's cell for the computation and put back
        // after it: nothing can observe them borrowed, and at thread exit temporaries do.
        let mut w = WORK.try_with(Cell::take).unwrap_or_default();
        w.buf.clear();
        w.buf.resize(plan.len, Complex::new(0.0, 0.0));
        let need = plan.fft.get_inplace_scratch_len();
        if w.scratch.len() < need {
            w.scratch.resize(need, Complex::new(0.0, 0.0));
        }
        let scratch = w.scratch.get_mut(..need).unwrap_or_default();
        let out = compute(plan, self.bands, &mut w.buf, scratch, values, mean);
        let _ = WORK.try_with(|c| c.set(w));
        out
    }
}

/// Periodic Hann window of length `n`.
fn hann(n: usize) -> Vec<f64> {
    (0..n).map(|i| hann_at(i, n)).collect()
}

/// Periodic Hann coefficient `i` of a window of length `n`.
fn hann_at(i: usize, n: usize) -> f64 {
    0.5 * (1.0 - (std::f64::consts::TAU * i as f64 / n as f64).cos())
}

/// The shared recipe (see module docs). `buf.len()` is the FFT length.
fn compute<I: Iterator<Item = f64>>(
    plan: &Plan,
    bands: usize,
    buf: &mut [Complex<f64>],
    scratch: &mut [Complex<f64>],
    values: I,
    mean: f64,
) -> Vec<f64> {
    let (fft, hann_full) = (plan.fft.as_ref(), &plan.hann);
    let len = buf.len();
    let half_mean = mean * 0.5;
    // Pass 1: centred half-values (never overflow) and their largest magnitude.
    let mut n = 0usize;
    let mut max_abs = 0.0f64;
    for (slot, x) in buf.iter_mut().zip(values) {
        let a = x * 0.5 - half_mean;
        max_abs = max_abs.max(a.abs());
        *slot = Complex::new(a, 0.0);
        n += 1;
    }
    if n < 2 || !(max_abs.is_finite() && max_abs > 0.0) {
        return vec![0.0; bands];
    }
    let inv = 1.0 / max_abs;
    for (i, slot) in buf.iter_mut().enumerate() {
        *slot = if i < n {
            let w = if n == len {
                hann_full.get(i).copied().unwrap_or(0.0)
            } else {
                hann_at(i, n)
            };
            Complex::new(slot.re * inv * w, 0.0)
        } else {
            Complex::new(0.0, 0.0)
        };
    }
    fft.process_with_scratch(buf, scratch);
    // Undo the centring halving and the rescale; normalise by n.
    let rescale = 2.0 * max_abs;
    let half = len / 2;
    let norm = 1.0 / n as f64;
    (0..bands)
        .map(|b| {
            let lo = 1 + b * half / bands;
            let hi = 1 + (b + 1) * half / bands;
            let bins = buf.get(lo..hi).unwrap_or(&[]);
            if bins.is_empty() {
                return 0.0;
            }
            let mean_mag = bins.iter().map(|c| c.norm()).sum::<f64>() / bins.len() as f64;
            mean_mag * norm * rescale
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(len: usize, bin: f64, amp: f64, offset: f64) -> Vec<f64> {
        (0..len)
            .map(|i| offset + amp * (std::f64::consts::TAU * bin * i as f64 / len as f64).sin())
            .collect()
    }

    fn argmax(v: &[f64]) -> usize {
        let mut best = 0;
        for (i, x) in v.iter().enumerate() {
            if *x > v[best] {
                best = i;
            }
        }
        best
    }

    #[test]
    fn hostile_constructor_arguments_are_clamped() {
        assert_eq!(Spectrum::new(0, 0).band_count(), 1);
        assert_eq!(
            Spectrum::new(usize::MAX, usize::MAX).band_count(),
            MAX_WINDOW_LEN / 2
        );
    }

    #[test]
    fn band_layout_covers_all_bins() {
        for len in [4usize, 7, 64, 100] {
            for bands in 1..=len / 2 {
                let half = len / 2;
                let mut next = 1;
                for b in 0..bands {
                    let (lo, hi) = (1 + b * half / bands, 1 + (b + 1) * half / bands);
                    assert_eq!(lo, next);
                    assert!(hi > lo, "empty band");
                    next = hi;
                }
                assert_eq!(next, half + 1);
            }
        }
    }

    #[test]
    fn sine_lands_in_its_band_and_amplitude_is_sane() {
        let len = 128;
        let bands = 4; // 64 bins, 16 per band
        let mut s = Spectrum::new(len, bands);
        for b in 0..bands {
            let bin = (1 + b * 16 + 8) as f64;
            let v = sine(len, bin, 3.0, 500.0);
            let mean = v.iter().sum::<f64>() / len as f64;
            let out = s.bands(v.iter().copied(), mean);
            assert_eq!(argmax(&out), b, "{out:?}");
            // Periodic Hann on an exact-bin sine of amplitude A: |X|/n is A/4 at
            // the bin and A/8 at each neighbour, 0 elsewhere; band = mean of 16 bins.
            assert!((out[b] - 3.0 * 0.5 / 16.0).abs() < 1e-9, "{out:?}");
            let alloc = s.bands_alloc(v.iter().copied(), mean);
            assert_eq!(out, alloc);
        }
    }

    #[test]
    fn constant_is_zero_and_huge_is_not_nan() {
        let mut s = Spectrum::new(16, 3);
        assert_eq!(s.bands(std::iter::repeat_n(7.0, 16), 7.0), vec![0.0; 3]);
        let huge: Vec<f64> = (0..16)
            .map(|i| if i % 2 == 0 { f64::MAX } else { -f64::MAX })
            .collect();
        let out = s.bands(huge.iter().copied(), 0.0);
        assert!(out.iter().all(|x| !x.is_nan() && *x >= 0.0));
        // Partial window still works and is finite.
        let out = s.bands([1.0, 2.0, 5.0].into_iter(), 8.0 / 3.0);
        assert!(out.iter().all(|x| x.is_finite()));
    }
}
