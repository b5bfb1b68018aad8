//! Deterministic synthetic data for tests, benches and weight calibration: smooth CT-like images
//! and a small seeded generator. Not for secrets (use `bunet_crypto::prg::Prg` for those).

use crate::tensor::Tensor;

/// SplitMix64 (Steele, Lea, Flood 2014): a fast deterministic generator for test data.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed` (named so: the output is predictable by design).
    pub fn from_seed_for_tests(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A smooth CT-like volume of one channel and extents `dims`: a soft-edged ellipsoidal body
/// (intensity ≈ 0.5) on a background of −1, with a few brighter and darker Gaussian blobs
/// ("lesions", up to ≈ 2.5) and a low-frequency texture. Values stay within about [−1.5, 3].
pub fn smooth_volume(dims: [usize; 3], seed: u64) -> Tensor<f32> {
    let mut rng = SplitMix64::from_seed_for_tests(seed);
    let [d, h, w] = dims;
    let blobs: Vec<[f64; 5]> = (0..5)
        .map(|_| {
            [
                rng.range(0.25, 0.75),
                rng.range(0.25, 0.75),
                rng.range(0.25, 0.75),
                rng.range(0.05, 0.18),
                rng.range(-1.0, 2.0),
            ]
        })
        .collect();
    let (fx, fy, phase) = (
        rng.range(2.0, 5.0),
        rng.range(2.0, 5.0),
        rng.range(0.0, 6.3),
    );
    let mut data = Vec::with_capacity(d * h * w);
    let centre = |i: usize, n: usize| (i as f64 + 0.5) / n as f64;
    for z in 0..d {
        let zc = centre(z, d);
        for y in 0..h {
            let yc = centre(y, h);
            for x in 0..w {
                let xc = centre(x, w);
                let r2 = ((xc - 0.5) / 0.42).powi(2)
                    + ((yc - 0.5) / 0.36).powi(2)
                    + if d > 1 {
                        ((zc - 0.5) / 0.45).powi(2)
                    } else {
                        0.0
                    };
                let body = 1.0 / (1.0 + ((r2 - 1.0) * 12.0).exp());
                let mut v = -1.0 + 1.5 * body;
                v += 0.15 * body * (fx * xc * 6.3 + phase).sin() * (fy * yc * 6.3).cos();
                for b in &blobs {
                    let dz = if d > 1 { zc - b[2] } else { 0.0 };
                    let q = ((xc - b[0]).powi(2) + (yc - b[1]).powi(2) + dz * dz) / (b[3] * b[3]);
                    v += body * b[4] * (-q).exp();
                }
                data.push(v as f32);
            }
        }
    }
    Tensor::from_vec(1, dims, data).expect("length is d·h·w by construction")
}

/// A smooth image of `channels` channels (each channel a slightly shifted version of one smooth
/// volume, as neighbouring CT slices are) and extents `dims`.
pub fn smooth_image(channels: usize, dims: [usize; 3], seed: u64) -> Tensor<f32> {
    let [d, h, w] = dims;
    let vol = smooth_volume([d + channels - 1, h, w], seed);
    let plane = d * h * w;
    let data = (0..channels)
        .flat_map(|c| vol.data()[c * h * w..c * h * w + plane].iter().copied())
        .collect();
    Tensor::from_vec(channels, dims, data).expect("length is channels·d·h·w by construction")
}
