//! Differential tests: every available backend against the scalar reference.

use proptest::prelude::*;

use super::*;

fn backends() -> Vec<Backend> {
    Backend::available()
}

/// A permutation of `0..n` from a seed (Fisher–Yates on a xorshift stream).
fn shuffled(n: usize, mut seed: u64) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        p.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    p
}

proptest! {
    #[test]
    fn permute_matches_scalar(
        log_n in 0u32..8,
        limbs in 1usize..4,
        seed in 1u64..,
        data in proptest::collection::vec(any::<u64>(), 1024),
    ) {
        let n = 1usize << log_n;
        // Odd lengths exercise the tails too.
        let n = if n > 2 { n - 1 } else { n };
        let perm = shuffled(n, seed);
        let src = &data[..n * limbs];
        let mut want = vec![0u64; src.len()];
        scalar_permute_limbs(&mut want, src, &perm);
        for l in 0..limbs {
            for i in 0..n {
                prop_assert_eq!(want[l * n + i], src[l * n + perm[i] as usize]);
            }
        }
        for b in backends() {
            let mut got = vec![0u64; src.len()];
            permute_limbs_with(b, &mut got, src, &perm);
            prop_assert_eq!(&got, &want, "{:?}", b);
        }
    }

    #[test]
    fn lift_matches_scalar_and_is_centred(
        from in 3u64..(1 << 50),
        extra in 0u64..(1 << 50),
        len in 0usize..70,
        seed in any::<u64>(),
    ) {
        let to = from / 2 + 1 + extra;
        let src: Vec<u64> = (0..len as u64)
            .map(|i| (seed ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % from)
            .collect();
        let mut want = vec![0u64; len];
        scalar_lift_centered(&src, from, to, &mut want);
        for (&x, &y) in src.iter().zip(&want) {
            // Naive reference: the centred integer, reduced mod `to`.
            let c = if x > from / 2 { x as i128 - from as i128 } else { x as i128 };
            prop_assert_eq!(y as i128, c.rem_euclid(to as i128));
        }
        for b in backends() {
            let mut got = vec![0u64; len];
            lift_centered_with(b, &src, from, to, &mut got);
            prop_assert_eq!(&got, &want, "{:?}", b);
        }
    }
}

#[test]
#[should_panic(expected = "permutation index out of range")]
fn permute_rejects_out_of_range_indices() {
    let mut dst = [0u64; 4];
    permute_limbs(&mut dst, &[1, 2, 3, 4], &[0, 1, 2, 4]);
}
