//! Small, fully specified pseudo-random generator for the simulator.
//!
//! Design constraints: the simulator promises "same seed → same series", and
//! that promise must survive dependency upgrades. `rand`'s `StdRng`/`SmallRng`
//! explicitly reserve the right to change algorithm between releases, so the
//! simulator uses its own xoshiro256++ (seeded through SplitMix64), whose
//! output is fixed by this file alone. It still implements [`rand::RngCore`]
//! so it can feed [`super::SensorSim::random_profile`].

/// SplitMix64 finaliser: a cheap, well-mixed 64-bit hash.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Derives an independent sub-seed from a seed and two discriminators
/// (e.g. sensor index and stream purpose).
pub(crate) fn mix(seed: u64, a: u64, b: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ a.wrapping_mul(0xD6E8_FEB8_6659_FD93)) ^ b)
}

/// Maps 64 random bits to a uniform `f64` in `[0, 1)` (53-bit precision).
pub(crate) fn unit_from_bits(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// xoshiro256++ generator with a cached second Box–Muller normal.
#[derive(Clone, Debug)]
pub(crate) struct SimRng {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl SimRng {
    /// Seeds the four state words from SplitMix64 (never all zero).
    pub(crate) fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *w = splitmix64(x);
        }
        if s == [0; 4] {
            s[0] = 1;
        }
        Self {
            s,
            spare_normal: None,
        }
    }

    /// Next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        unit_from_bits(self.next())
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `[0, n)`; `n == 0` yields 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the tiny bias is irrelevant for a simulator.
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Standard normal via Box–Muller (both outputs used).
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        // 1 - unit() is in (0, 1], so ln is finite.
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }
}

impl rand::RngCore for SimRng {
    fn next_u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.next()
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
