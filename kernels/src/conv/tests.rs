use super::*;

/// Deterministic test data (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn signed(&mut self, max: i64) -> i64 {
        (self.below(2 * max as u64 + 1)) as i64 - max
    }
}

/// Shapes covering every kind, odd and tiny extents, widths around the tile widths (tails),
/// and channel counts that are not multiples of the tile.
fn cases() -> Vec<(Geometry, [usize; 3])> {
    let mut v = Vec::new();
    let g = |kind, c_in, c_out, kernel| Geometry {
        kind,
        c_in,
        c_out,
        kernel,
    };
    for (c_in, c_out) in [(1, 1), (3, 5), (5, 9), (2, 17)] {
        for dims in [
            [1, 1, 1],
            [1, 5, 7],
            [1, 3, 16],
            [1, 2, 33],
            [1, 4, 49],
            [1, 1, 100],
        ] {
            v.push((g(Kind::Same, c_in, c_out, [1, 3, 3]), dims));
            v.push((g(Kind::Pointwise, c_in, c_out, [1, 1, 1]), dims));
            v.push((g(Kind::Transposed, c_in, c_out, [1, 2, 2]), dims));
        }
        for dims in [[1, 1, 1], [3, 4, 5], [2, 3, 17], [4, 2, 26]] {
            v.push((g(Kind::Same, c_in, c_out, [3, 3, 3]), dims));
            v.push((g(Kind::Transposed, c_in, c_out, [2, 2, 2]), dims));
        }
    }
    v.push((g(Kind::Same, 7, 3, [1, 5, 5]), [1, 9, 11]));
    v.push((g(Kind::Same, 3, 2, [1, 3, 1]), [1, 4, 3]));
    v
}

fn skipped(b: Backend) {
    eprintln!("backend {b} is not available on this CPU: skipped");
}

#[test]
fn float_conv_matches_its_definition_on_every_backend() {
    let mut rng = Rng(1);
    for (g, dims) in cases() {
        let plane: usize = dims.iter().product();
        let weight: Vec<f32> = (0..g.c_out * g.c_in * g.taps())
            .map(|_| rng.f32())
            .collect();
        let bias: Vec<f32> = (0..g.c_out).map(|_| rng.f32()).collect();
        let x: Vec<f32> = (0..g.c_in * plane).map(|_| rng.f32()).collect();
        let exact = by_definition(
            &g,
            dims,
            |co| f64::from(bias[co]),
            |s, wi, xi| s + f64::from(weight[wi]) * f64::from(x[xi]),
        );
        // Σ|terms|: the rounding error of any summation order is below n·ε of it.
        let magnitude = by_definition(
            &g,
            dims,
            |co| f64::from(bias[co].abs()),
            |s, wi, xi| s + f64::from(weight[wi].abs()) * f64::from(x[xi].abs()),
        );
        let scalar = Plan::with_backend(g, &weight, &bias, Backend::Scalar)
            .unwrap()
            .run(&x, dims)
            .unwrap();
        for backend in Backend::ALL {
            if !supports(backend) {
                skipped(backend);
                continue;
            }
            let plan = Plan::with_backend(g, &weight, &bias, backend).unwrap();
            let got = plan.run(&x, dims).unwrap();
            // The parallel bands of `run` and the whole blocks of `run_block` agree exactly.
            let padded = plan.pad(&x, dims).unwrap();
            let out_plane: usize = g.out_dims(dims).iter().product();
            let mut by_block = vec![0.0f32; got.len()];
            for (i, o) in by_block
                .chunks_mut((plan.block_len() * out_plane).max(1))
                .enumerate()
            {
                plan.run_block(&padded, i, o).unwrap();
            }
            assert_eq!(by_block, got, "{backend} {g:?} {dims:?}");
            assert_eq!(got.len(), exact.len(), "{g:?} {dims:?}");
            // Backends sum in another order, and FMA rounds `acc + w·x` once where the scalar
            // code rounds the product and then the sum: results differ in the last bits only.
            let n = (g.c_in * g.taps() + 1) as f64;
            for (i, ((&a, &e), &m)) in got.iter().zip(&exact).zip(&magnitude).enumerate() {
                let tol = 2.0 * n * f64::from(f32::EPSILON) * m + 1e-30;
                assert!(
                    (f64::from(a) - e).abs() <= tol,
                    "{backend} {g:?} {dims:?} at {i}: {a} vs {e}"
                );
                assert!(
                    (f64::from(a) - f64::from(scalar[i])).abs() <= 2.0 * tol,
                    "{backend} {g:?} {dims:?} at {i}: {a} vs scalar {}",
                    scalar[i]
                );
            }
        }
    }
}

fn check_exact(g: Geometry, dims: [usize; 3], weight: &[i32], bias: &[i64], x: &[u64], p: u64) {
    let expected: Vec<u64> = by_definition(
        &g,
        dims,
        |co| i128::from(bias[co]),
        |s, wi, xi| {
            let v = x[xi] as i128;
            let v = if v <= (p as i128 - 1) / 2 {
                v
            } else {
                v - p as i128
            };
            s + i128::from(weight[wi]) * v
        },
    )
    .into_iter()
    .map(|s| s.rem_euclid(i128::from(p)) as u64)
    .collect();
    for backend in Backend::ALL {
        if !supports(backend) {
            skipped(backend);
            continue;
        }
        let plan = ExactPlan::with_backend(g, weight, bias, p, backend).unwrap();
        let got = plan.run(x, dims).unwrap();
        assert!(
            got == expected,
            "{backend} {g:?} {dims:?} p = {p} split = {}",
            plan.is_split()
        );
    }
}

#[test]
fn exact_conv_is_bit_identical_to_its_definition_on_every_backend() {
    let mut rng = Rng(2);
    let p: u64 = 4_294_967_291; // the largest prime below 2^32
    for (i, (g, dims)) in cases().into_iter().enumerate() {
        let plane: usize = dims.iter().product();
        // Small weights (one pass, rare reductions), weights forcing a reduction every channel
        // or two, and weights only a split can serve.
        let max_w = [255i64, 1 << 16, (1 << 31) - 1][i % 3];
        let weight: Vec<i32> = (0..g.c_out * g.c_in * g.taps())
            .map(|_| rng.signed(max_w) as i32)
            .collect();
        let bias: Vec<i64> = (0..g.c_out).map(|_| rng.signed(1 << 40)).collect();
        // Residues over the whole of Z_p, with the extremes.
        let x: Vec<u64> = (0..g.c_in * plane)
            .map(|_| match rng.below(8) {
                0 => 0,
                1 => p - 1,
                2 => (p - 1) / 2,
                3 => p.div_ceil(2),
                _ => rng.below(p),
            })
            .collect();
        check_exact(g, dims, &weight, &bias, &x, p);
    }
}

#[test]
fn exact_conv_reduces_often_enough_at_the_bound() {
    // Extreme weights and inputs on many channels: the f64 sums would pass 2^53 without the
    // reductions, and lose exactness.
    let p = 4_294_967_291u64;
    let g = Geometry {
        kind: Kind::Same,
        c_in: 40,
        c_out: 9,
        kernel: [1, 3, 3],
    };
    let dims = [1, 3, 19];
    let max_w = (1 << 21) / 9 - 1;
    let mut rng = Rng(3);
    let weight: Vec<i32> = (0..g.c_out * g.c_in * 9)
        .map(|i| {
            if i % 2 == 0 {
                max_w
            } else {
                -max_w + (rng.below(2) as i32)
            }
        })
        .collect();
    let bias = vec![(p - 1) as i64; g.c_out];
    let x: Vec<u64> = (0..g.c_in * 57)
        .map(|_| {
            if rng.below(2) == 0 {
                (p - 1) / 2
            } else {
                p.div_ceil(2)
            }
        })
        .collect();
    let plan = ExactPlan::new(g, &weight, &bias, p).unwrap();
    assert!(!plan.is_split());
    check_exact(g, dims, &weight, &bias, &x, p);
    // Smaller moduli serve too (q24-like).
    let p24 = 16_777_213;
    let x24: Vec<u64> = x.iter().map(|v| v % p24).collect();
    check_exact(g, dims, &weight, &bias, &x24, p24);
}

#[test]
fn blocks_cover_the_output_channels() {
    for kind in [Kind::Same, Kind::Pointwise, Kind::Transposed] {
        for c_out in [1, 3, 8, 9, 33] {
            for backend in Backend::available() {
                let kernel = match kind {
                    Kind::Same => [1, 3, 3],
                    Kind::Pointwise => [1, 1, 1],
                    Kind::Transposed => [2, 2, 2],
                };
                let g = Geometry {
                    kind,
                    c_in: 2,
                    c_out,
                    kernel,
                };
                let n = c_out * 2 * g.taps();
                let plan = Plan::with_backend(g, &vec![0.5f32; n], &vec![0.0; c_out], backend);
                let plan = match plan {
                    Ok(p) => p,
                    Err(Error::BackendUnavailable(_)) => continue,
                    Err(e) => panic!("{e}"),
                };
                let covered: Vec<usize> = (0..plan.blocks())
                    .flat_map(|i| plan.block_channels(i))
                    .collect();
                assert_eq!(covered, (0..c_out).collect::<Vec<_>>());
            }
        }
    }
}

#[test]
fn bad_inputs_are_rejected() {
    let g = Geometry {
        kind: Kind::Same,
        c_in: 2,
        c_out: 3,
        kernel: [1, 3, 3],
    };
    let w = vec![1.0f32; 54];
    assert!(matches!(
        Plan::new(g, &w[..53], &[0.0; 3]),
        Err(Error::Length { what: "weight", .. })
    ));
    assert!(matches!(
        Plan::new(g, &w, &[0.0; 2]),
        Err(Error::Length { what: "bias", .. })
    ));
    let even = Geometry {
        kernel: [1, 2, 3],
        ..g
    };
    assert!(matches!(
        Plan::new(even, &[0.0; 36], &[0.0; 3]),
        Err(Error::Geometry(_))
    ));
    let plan = Plan::new(g, &w, &[0.0; 3]).unwrap();
    assert!(matches!(
        plan.run(&[0.0; 7], [1, 2, 2]),
        Err(Error::Length { what: "input", .. })
    ));
    let x = plan.pad(&[0.0; 8], [1, 2, 2]).unwrap();
    let mut out = vec![0.0; 4 * plan.block_len()];
    assert!(matches!(
        plan.run_block(&x, 5, &mut out),
        Err(Error::Block { .. })
    ));
    let mut short = vec![0.0; 3];
    assert!(matches!(
        plan.run_block(&x, 0, &mut short),
        Err(Error::Length { what: "output", .. })
    ));
    let other = Plan::new(Geometry { c_out: 4, ..g }, &[0.0; 72], &[0.0; 4]).unwrap();
    let mut out4 = vec![0.0; 4 * other.block_len().min(4)];
    assert!(matches!(
        other.run_block(&x, 0, &mut out4),
        Err(Error::Padded)
    ));
    let ex = ExactPlan::new(g, &[1; 54], &[0; 3], 97).unwrap();
    assert!(matches!(
        ex.run(&[0, 1, 2, 97, 0, 0, 0, 0], [1, 2, 2]),
        Err(Error::Unreduced { index: 3, .. })
    ));
    assert!(matches!(
        ExactPlan::new(g, &[1; 54], &[0; 3], 1 << 32),
        Err(Error::Modulus(_))
    ));
}
