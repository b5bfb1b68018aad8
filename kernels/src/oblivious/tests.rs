//! Differential tests: every available backend against the definition.

use proptest::prelude::*;

use super::*;

proptest! {
    #[test]
    fn xor_at_flips_exactly_the_indexed_block(
        blocks in proptest::collection::vec(any::<u128>(), 0..40),
        index in 0usize..48,
        value in any::<u128>(),
    ) {
        let mut want = blocks.clone();
        if let Some(b) = want.get_mut(index) {
            *b ^= value;
        }
        for b in Backend::available() {
            let mut got = blocks.clone();
            xor_at_with(b, &mut got, index, value);
            prop_assert_eq!(&got, &want, "{:?}", b);
        }
    }
}

/// Every position of lengths around the vector widths, with a value whose two halves differ
/// (a swapped half or a lane off by one would show), and indices far out of range.
#[test]
fn xor_at_every_position_and_far_indices() {
    let value = (0x0123_4567_89ab_cdefu128 << 64) | 0xfedc_ba98_7654_3210;
    for len in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17] {
        let blocks: Vec<u128> = (0..len as u128).map(|i| i * 0x1_0000_0001).collect();
        for index in (0..len + 2).chain([usize::MAX, 1 << 40]) {
            let mut want = blocks.clone();
            if index < len {
                want[index] ^= value;
            }
            for b in Backend::available() {
                let mut got = blocks.clone();
                xor_at_with(b, &mut got, index, value);
                assert_eq!(got, want, "{b:?} len {len} index {index}");
            }
        }
    }
}
