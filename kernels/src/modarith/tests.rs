use super::*;
use crate::modarith::MulKind;
use proptest::prelude::*;

/// Every available backend with every multiplication kind it supports for `q`; unavailable
/// backends are reported as skipped.
fn backends_and_kinds(q: u64) -> Vec<(Backend, MulKind)> {
    let mut out = Vec::new();
    for b in Backend::ALL {
        if !b.is_available() {
            eprintln!("skipped: backend {b} is not available on this CPU");
            continue;
        }
        for k in MulKind::supported(q, b) {
            out.push((b, k));
        }
    }
    out
}

/// All slice operations of `m` agree with the element operations on `a, b, c`.
fn check_slices(m: &Modulus, a: &[u64], b: &[u64], c: &[u64], s: u64) {
    let what = format!(
        "q={} backend={} kind={:?} len={}",
        m.q(),
        m.backend(),
        m.kind(),
        a.len()
    );
    let mut r = a.to_vec();
    m.add_assign(&mut r, b);
    assert!(
        r.iter()
            .zip(a)
            .zip(b)
            .all(|((r, &a), &b)| *r == m.add(a, b)),
        "add {what}"
    );
    let mut r = a.to_vec();
    m.sub_assign(&mut r, b);
    assert!(
        r.iter()
            .zip(a)
            .zip(b)
            .all(|((r, &a), &b)| *r == m.sub(a, b)),
        "sub {what}"
    );
    let mut r = a.to_vec();
    m.neg_assign(&mut r);
    assert!(r.iter().zip(a).all(|(r, &a)| *r == m.neg(a)), "neg {what}");
    let mut r = a.to_vec();
    m.mul_assign(&mut r, b);
    assert!(
        r.iter()
            .zip(a)
            .zip(b)
            .all(|((r, &a), &b)| *r == m.mul(a, b)),
        "mul {what}"
    );
    let mut r = a.to_vec();
    m.mul_add_assign(&mut r, b, c);
    assert!(
        r.iter()
            .enumerate()
            .all(|(i, r)| *r == m.add(a[i], m.mul(b[i], c[i]))),
        "mul_add {what}"
    );
    let mut r = a.to_vec();
    m.scalar_mul_assign(&mut r, s);
    assert!(
        r.iter().zip(a).all(|(r, &a)| *r == m.mul(a, s)),
        "scalar_mul {what}"
    );
}

#[test]
fn slice_ops_agree_with_elements_on_edges() {
    let moduli = [
        2,
        3,
        4,
        5,
        1 << 20,
        (1 << 24) - 3,
        (1 << 30) + 3,
        (1 << 31) - 1,
        (1 << 31) + 11,
        (1 << 32) - 5,
        1 << 40,
        (1 << 49) + 9,
        (1 << 50) - 27,
        (1 << 50) + 55,
        (1 << 60) - 93,
        (1 << 62) - 57,
    ];
    for q in moduli {
        let edges = [0, 1, 2 % q, q / 2, q - 2, q - 1];
        for (backend, kind) in backends_and_kinds(q) {
            let m = Modulus::with_backend(q, backend)
                .unwrap()
                .with_kind(kind)
                .unwrap();
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 36] {
                let a: Vec<u64> = (0..len).map(|i| edges[i % edges.len()]).collect();
                let b: Vec<u64> = (0..len).map(|i| edges[(i / 6) % edges.len()]).collect();
                let c: Vec<u64> = (0..len).map(|i| edges[(i * 5 + 1) % edges.len()]).collect();
                for s in [0, 1, q - 1] {
                    check_slices(&m, &a, &b, &c, s);
                }
            }
        }
    }
}

fn moduli() -> impl Strategy<Value = u64> {
    prop_oneof![
        2u64..1 << 20,
        (1u64 << 23)..(1 << 24),
        (1u64 << 31)..(1 << 32),
        (1u64 << 49)..(1 << 50),
        (1u64 << 59)..(1 << 60),
        (1u64 << 61)..(1 << 62),
    ]
}

proptest! {
    #[test]
    fn element_ops_agree_with_u128(q in moduli(), a in any::<u64>(), b in any::<u64>(), x in any::<u128>()) {
        let m = Modulus::new(q).unwrap();
        let (a, b) = (a % q, b % q);
        let (qq, aa, bb) = (q as u128, a as u128, b as u128);
        prop_assert_eq!(m.add(a, b) as u128, (aa + bb) % qq);
        prop_assert_eq!(m.sub(a, b) as u128, (aa + qq - bb) % qq);
        prop_assert_eq!(m.neg(a) as u128, (qq - aa) % qq);
        prop_assert_eq!(m.mul(a, b) as u128, aa * bb % qq);
        prop_assert_eq!(m.mul_shoup(x as u64, b, m.shoup(b)) as u128, (x as u64 as u128) * bb % qq);
        prop_assert!(m.mul_shoup_lazy(x as u64, b, m.shoup(b)) < 2 * q);
        prop_assert_eq!(m.reduce_u128(x) as u128, x % qq);
    }

    #[test]
    fn slice_ops_agree_with_elements(q in moduli(), v in proptest::collection::vec(any::<(u64, u64, u64)>(), 0..70), s in any::<u64>()) {
        for (backend, kind) in backends_and_kinds(q) {
            let m = Modulus::with_backend(q, backend).unwrap().with_kind(kind).unwrap();
            let a: Vec<u64> = v.iter().map(|t| t.0 % q).collect();
            let b: Vec<u64> = v.iter().map(|t| t.1 % q).collect();
            let c: Vec<u64> = v.iter().map(|t| t.2 % q).collect();
            let s = s % q;
            let mut r = a.clone(); m.add_assign(&mut r, &b);
            prop_assert!(r.iter().zip(&a).zip(&b).all(|((r, &a), &b)| *r == m.add(a, b)));
            let mut r = a.clone(); m.sub_assign(&mut r, &b);
            prop_assert!(r.iter().zip(&a).zip(&b).all(|((r, &a), &b)| *r == m.sub(a, b)));
            let mut r = a.clone(); m.neg_assign(&mut r);
            prop_assert!(r.iter().zip(&a).all(|(r, &a)| *r == m.neg(a)));
            let mut r = a.clone(); m.mul_assign(&mut r, &b);
            prop_assert!(r.iter().zip(&a).zip(&b).all(|((r, &a), &b)| *r == m.mul(a, b)));
            let mut r = a.clone(); m.mul_add_assign(&mut r, &b, &c);
            prop_assert!(r.iter().enumerate().all(|(i, r)| *r == m.add(a[i], m.mul(b[i], c[i]))));
            let mut r = a.clone(); m.scalar_mul_assign(&mut r, s);
            prop_assert!(r.iter().zip(&a).all(|(r, &a)| *r == m.mul(a, s)));
        }
    }
}

#[test]
fn edge_values() {
    for q in [
        2,
        3,
        (1 << 24) - 3,
        (1 << 32) - 5,
        (1 << 50) - 27,
        (1 << 62) - 57,
    ] {
        let m = Modulus::new(q).unwrap();
        for a in [0, 1, q / 2, q - 2, q - 1] {
            for b in [0, 1, q / 2, q - 1] {
                let (aa, bb, qq) = (a as u128, b as u128, q as u128);
                assert_eq!(m.mul(a % q, b % q) as u128, (aa % qq) * (bb % qq) % qq);
                assert_eq!(m.add(a % q, b % q) as u128, (aa % qq + bb % qq) % qq);
            }
        }
        assert_eq!(m.reduce(u64::MAX) as u128, u64::MAX as u128 % q as u128);
    }
}

#[test]
fn out_of_range_moduli_are_refused() {
    assert!(Modulus::new(0).is_err());
    assert!(Modulus::new(1).is_err());
    assert!(Modulus::new(1 << 62).is_err());
    assert!(Modulus::new((1 << 62) - 1).is_ok());
}

/// `mul_sum_add_assign` against `mul_add_assign` term by term, on every backend (all run the
/// portable code; the check is that the lazy 128-bit sums and their reductions are exact).
fn check_mul_sum(m: &Modulus, acc: &[u64], terms: &[(Vec<u64>, Vec<u64>)]) {
    let mut want = acc.to_vec();
    for (a, b) in terms {
        m.mul_add_assign(&mut want, a, b);
    }
    let refs: Vec<(&[u64], &[u64])> = terms.iter().map(|(a, b)| (&a[..], &b[..])).collect();
    let mut got = acc.to_vec();
    m.mul_sum_add_assign(&mut got, &refs);
    assert_eq!(
        got,
        want,
        "q={} backend={} terms={} len={}",
        m.q(),
        m.backend(),
        terms.len(),
        acc.len()
    );
}

#[test]
fn mul_sum_add_agrees_with_mul_add_on_edges() {
    // Term counts around the groups of four and around `lazy_terms` (15 at q ≈ 2^62, where
    // every product of `q − 1`s pushes the 128-bit sum to its limit).
    for q in [
        2,
        3,
        (1 << 32) - 5,
        (1 << 41) + 75,
        (1 << 50) - 27,
        (1 << 62) - 57,
    ] {
        let edges = [0, 1, q / 2, q - 2, q - 1];
        for backend in Backend::available() {
            let m = Modulus::with_backend(q, backend).unwrap();
            assert!(m.lazy_terms() >= 15, "q={q}");
            for len in [0, 1, 5, 255, 256, 257, 600] {
                for count in [0, 1, 3, 4, 5, 8, 14, 15, 16, 17, 31, 33] {
                    let acc: Vec<u64> = (0..len).map(|i| edges[(i + count) % 5]).collect();
                    // Mostly q − 1 (the largest products), with the other edges mixed in.
                    let pick = |i: usize, k: usize| {
                        if (i + 3 * k).is_multiple_of(7) {
                            edges[(i + k) % 5]
                        } else {
                            q - 1
                        }
                    };
                    let terms: Vec<(Vec<u64>, Vec<u64>)> = (0..count)
                        .map(|k| {
                            (
                                (0..len).map(|i| pick(i, k)).collect(),
                                (0..len).map(|i| pick(i + 1, k)).collect(),
                            )
                        })
                        .collect();
                    check_mul_sum(&m, &acc, &terms);
                }
            }
        }
    }
}

#[test]
fn reduce_wide_edges() {
    for q in [
        2,
        3,
        (1 << 32) - 5,
        (1 << 50) - 27,
        (1 << 61) + 1,
        (1 << 62) - 57,
    ] {
        let m = Modulus::new(q).unwrap();
        let qq = q as u128;
        for x in [
            0,
            1,
            qq - 1,
            qq,
            qq * qq - 1,
            u64::MAX as u128,
            1u128 << 64,
            (1u128 << 127) - 1,
            u128::MAX,
            u128::MAX - qq,
        ] {
            assert_eq!(m.reduce_wide(x) as u128, x % qq, "q={q} x={x}");
        }
    }
}

proptest! {
    #[test]
    fn reduce_wide_agrees_with_u128(q in moduli(), x in any::<u128>()) {
        let m = Modulus::new(q).unwrap();
        prop_assert_eq!(m.reduce_wide(x) as u128, x % q as u128);
    }

    #[test]
    fn mul_sum_add_agrees_with_mul_add(
        q in moduli(),
        len in 0usize..300,
        count in 0usize..20,
        seed in any::<u64>(),
    ) {
        // A small xorshift stream: proptest shrinks `len`, `count` and `seed`.
        let mut st = seed | 1;
        let mut next = move || {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            st % q
        };
        let acc: Vec<u64> = (0..len).map(|_| next()).collect();
        let terms: Vec<(Vec<u64>, Vec<u64>)> = (0..count)
            .map(|_| ((0..len).map(|_| next()).collect(), (0..len).map(|_| next()).collect()))
            .collect();
        for backend in Backend::available() {
            check_mul_sum(&Modulus::with_backend(q, backend).unwrap(), &acc, &terms);
        }
    }
}

/// The `Fma50` lane primitives against exact integer arithmetic at the edges of the ranges
/// their exactness proofs (`modarith/avx2/fma50.rs`) assume: congruence and the stated bounds.
#[cfg(target_arch = "x86_64")]
#[test]
fn fma50_primitives_meet_their_bounds() {
    if !Backend::has_fma() {
        eprintln!("skipped: this CPU lacks AVX2 with FMA");
        return;
    }
    // SAFETY: AVX2 and FMA are present (checked above).
    unsafe { fma50_checks() }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma50_checks() {
    use crate::modarith::avx2::fma50::{
        consts, make_nonnegative, mul, mul_shoup, reduce_balanced, reduce_full, to_f64, to_u64,
    };
    use core::arch::x86_64::*;

    let lanes = |v: __m256d| {
        let mut out = [0f64; 4];
        // SAFETY: `out` holds four doubles.
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), v) };
        out
    };
    let splat = |x: f64| _mm256_set1_pd(x);
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut rand = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    let u = 2f64.powi(-53);
    // 49, 103 and 197 are moduli whose `q · fl(1/q)` rounds below 1 (a plain `floor(x / q)`
    // would fail at multiples of them); the random ones spread the rounding of `fl(1/q)`.
    let mut moduli = vec![
        crate::primes::primes_congruent_one(50, 1 << 17, 1)[0],
        (1 << 50) - 27,
        crate::primes::primes_congruent_one(41, 1 << 14, 1)[0],
        65537,
        197,
        103,
        49,
        17,
        3,
        2,
    ];
    moduli.extend((0..24).map(|i| 2 + rand((1 << (26 + i)) - 2)));
    for q in moduli {
        let c = consts(q);
        let (qi, qf) = (i128::from(q), q as f64);
        let congruent = |r: f64, want: i128| (r as i128 - want).rem_euclid(qi) == 0;
        // Twiddle products: |y| ≤ 4q, balanced operands.
        let mut ws = vec![1, q / 2, q - 1, (q / 2 + 1) % q];
        ws.extend((0..8).map(|_| rand(q)));
        let mut ys: Vec<i128> = vec![0, 1, -1, 2 * qi, -2 * qi, 4 * qi, -4 * qi, 4 * qi - 1];
        ys.extend((0..16).map(|_| i128::from(rand(8 * q)) - 4 * qi));
        for &w in &ws {
            let (wb, wq) = super::fma50_operand(w, q);
            let (wb, wq) = (f64::from_bits(wb), f64::from_bits(wq));
            assert!(wb.abs() <= qf / 2.0 && congruent(wb, i128::from(w)));
            for &y in &ys {
                let r = lanes(mul_shoup(c, splat(y as f64), splat(wb), splat(wq)))[0];
                let bound = qf / 2.0 + (y.abs() as f64) * qf * u / 2.0 + 1.0;
                assert!(
                    congruent(r, y * i128::from(w)) && r.abs() <= bound,
                    "mul_shoup q={q} y={y} w={w} r={r}"
                );
                assert!(r.abs() <= 0.75 * qf + 1.0);
            }
        }
        // Products of reduced values.
        let mut xs = vec![0, 1, q - 1, q / 2];
        xs.extend((0..8).map(|_| rand(q)));
        for &a in &xs {
            for &b in &xs {
                let r = lanes(mul(c, splat(a as f64), splat(b as f64)))[0];
                assert!(congruent(r, i128::from(a) * i128::from(b)) && r.abs() < 0.75 * qf);
                let n = lanes(make_nonnegative(c, splat(r)))[0];
                assert_eq!(n as u128, u128::from(a) * u128::from(b) % u128::from(q));
            }
        }
        // Balanced reduction of |x| ≤ 4q; full reduction of |x| < 2^51 − 1.
        let mut xs: Vec<i128> = (-4..=4)
            .flat_map(|m| [m * qi - 1, m * qi, m * qi + 1])
            .filter(|x| x.abs() <= 4 * qi)
            .collect();
        xs.extend((0..16).map(|_| i128::from(rand(8 * q)) - 4 * qi));
        for &x in &xs {
            let r = lanes(reduce_balanced(c, splat(x as f64)))[0];
            assert!(
                congruent(r, x) && r.abs() < qf / 2.0 + 0.5 + 1e-9,
                "q={q} x={x}"
            );
        }
        let top = (1i128 << 51) - 2;
        let far = top / qi;
        xs.extend([top, -top, far * qi, -far * qi, far * qi - 1, 1 - far * qi]);
        xs.extend((0..16).map(|_| i128::from(rand((1 << 52) - 4)) - (1 << 51) + 2));
        for &x in &xs {
            let r = lanes(reduce_full(c, splat(x as f64)))[0];
            assert_eq!(r as i128, x.rem_euclid(qi), "reduce_full q={q} x={x}");
        }
    }
    // Conversions below 2^52.
    let c = consts(3);
    for x in [0u64, 1, 2, (1 << 52) - 1, 1 << 51, 0x000f_ffff_ffff_fffe] {
        let v = to_f64(c, _mm256_set1_epi64x(x as i64));
        assert_eq!(lanes(v)[0], x as f64);
        let back = to_u64(c, v);
        let mut out = [0u64; 4];
        // SAFETY: `out` holds four u64.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), back) };
        assert_eq!(out, [x; 4]);
    }
}
