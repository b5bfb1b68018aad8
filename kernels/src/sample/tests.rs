//! Differential tests: every available backend against the scalar reference, and the
//! reference against its definition.

use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn cbd_matches_scalar(
        eta in 1u32..=32,
        words in proptest::collection::vec(any::<u64>(), 0..70),
    ) {
        let mut want = vec![0i64; words.len()];
        cbd_with(Backend::Scalar, &words, eta, &mut want);
        for (&w, &x) in want.iter().zip(&words) {
            let bits = |v: u64| (0..eta).filter(|&b| v >> b & 1 == 1).count() as i64;
            prop_assert_eq!(w, bits(x) - bits(x >> eta));
        }
        for b in Backend::available() {
            let mut got = vec![i64::MAX; words.len()];
            cbd_with(b, &words, eta, &mut got);
            prop_assert_eq!(&got, &want, "{:?}", b);
        }
    }

    #[test]
    fn accept_below_matches_scalar(
        q in 1u64..(1 << 62),
        room in 0usize..60,
        words in proptest::collection::vec(any::<u64>(), 0..90),
    ) {
        let mask = u64::MAX >> (q - 1).leading_zeros().min(63);
        let mut want = vec![0u64; room];
        let n = accept_below_with(Backend::Scalar, &words, mask, q, &mut want);
        let expected: Vec<u64> = words
            .iter()
            .map(|&w| w & mask)
            .filter(|&x| x < q)
            .take(room)
            .collect();
        prop_assert_eq!(&want[..n], &expected[..]);
        for b in Backend::available() {
            let mut got = vec![u64::MAX; room];
            let m = accept_below_with(b, &words, mask, q, &mut got);
            prop_assert_eq!(m, n, "{:?}", b);
            prop_assert_eq!(&got[..m], &want[..n], "{:?}", b);
        }
    }

    #[test]
    fn scale_u32_matches_scalar(
        k in any::<u32>(),
        words in proptest::collection::vec(any::<u32>(), 0..70),
    ) {
        let mut want = vec![0u32; words.len()];
        scale_u32_with(Backend::Scalar, &words, k, &mut want);
        for (&w, &x) in want.iter().zip(&words) {
            prop_assert_eq!(u128::from(w), (u128::from(x) * u128::from(k)) >> 32);
        }
        for b in Backend::available() {
            let mut got = vec![u32::MAX; words.len()];
            scale_u32_with(b, &words, k, &mut got);
            prop_assert_eq!(&got, &want, "{:?}", b);
        }
    }
}

/// The largest words and factors, where a lane mix-up or a lost carry would show.
#[test]
fn scale_u32_edges() {
    let words: Vec<u32> = (0..40).map(|i| u32::MAX - i).chain(0..40).collect();
    for k in [0, 1, 44_000, 589_824, u32::MAX - 1, u32::MAX] {
        let mut want = vec![0u32; words.len()];
        scale_u32_with(Backend::Scalar, &words, k, &mut want);
        for b in Backend::available() {
            let mut got = vec![0u32; words.len()];
            scale_u32_with(b, &words, k, &mut got);
            assert_eq!(got, want, "{b:?} k = {k}");
        }
    }
}
