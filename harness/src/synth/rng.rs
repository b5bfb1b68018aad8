//! Deterministic pseudo-randomness for synthetic test data.
//!
//! # Security
//! None: this is SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
//! generators", OOPSLA 2014), chosen because it is tiny, fast and reproducible from a `u64` seed
//! on every platform. It generates phantoms, never keys, masks or shares; cryptographic
//! randomness in BUNET comes only from `crypto::prg::Prg`.

/// SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

/// The SplitMix64 output function: a bijective 64-bit mixer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator whose whole output is determined by `seed`.
    pub fn from_seed(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// Uniform in `[0, 1)` with 53 bits of precision.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `0..n` (`n > 0`; the tiny modulo bias is irrelevant for test data).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An independent generator derived from this one (for sub-structures).
    pub fn fork(&mut self) -> SplitMix64 {
        SplitMix64::from_seed(mix64(self.next_u64() ^ 0x5eed_f00d_cafe_d00d))
    }
}

/// Hash of a lattice point to a value in `[-1, 1]`.
fn lattice(seed: u64, x: i64, y: i64, z: i64) -> f32 {
    let h = mix64(
        seed ^ mix64(
            (x as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ (y as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
                ^ (z as u64).wrapping_mul(0x1656_67b1_9e37_79f9),
        ),
    );
    (h >> 40) as f32 * (2.0 / (1u64 << 24) as f32) - 1.0
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Value noise in `[-1, 1]`: hashed lattice values interpolated trilinearly with smoothstep
/// weights. Continuous, deterministic in `(seed, x, y, z)`, needs no memory.
pub fn value_noise(seed: u64, x: f32, y: f32, z: f32) -> f32 {
    let (fx, fy, fz) = (x.floor(), y.floor(), z.floor());
    let (ix, iy, iz) = (fx as i64, fy as i64, fz as i64);
    let (tx, ty, tz) = (smooth(x - fx), smooth(y - fy), smooth(z - fz));
    let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
    let plane = |dz: i64| {
        let c00 = lattice(seed, ix, iy, iz + dz);
        let c10 = lattice(seed, ix + 1, iy, iz + dz);
        let c01 = lattice(seed, ix, iy + 1, iz + dz);
        let c11 = lattice(seed, ix + 1, iy + 1, iz + dz);
        lerp(lerp(c00, c10, tx), lerp(c01, c11, tx), ty)
    };
    lerp(plane(0), plane(1), tz)
}

/// Uncorrelated noise in `[-1, 1]` for voxel `(x, y, z)`.
pub fn white_noise(seed: u64, x: i64, y: i64, z: i64) -> f32 {
    lattice(seed ^ 0x0dd_ba11, x, y, z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_known_answer() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation by Vigna).
        let mut r = SplitMix64::from_seed(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn value_noise_is_bounded_and_continuous() {
        let mut prev = value_noise(3, 0.0, 0.5, 0.25);
        for i in 1..2000 {
            let x = i as f32 * 0.01;
            let v = value_noise(3, x, 0.5, 0.25);
            assert!((-1.0..=1.0).contains(&v));
            assert!((v - prev).abs() < 0.05, "jump at {x}");
            prev = v;
        }
    }
}
