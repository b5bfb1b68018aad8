//! Bit-matrix transposition for OT extension.
//!
//! Portable code: a 128×128 bit block is held as 128 rows of two `u64` halves and transposed by
//! the recursive block-swap method (Hacker's Delight §7-3) — one stage swapping the 64-bit
//! halves, then six masked shift/xor stages that work on both halves at once, which the compiler
//! turns into 128-bit vector operations on the baseline target. No SIMD intrinsics: those belong
//! in the kernels crate.

const MASKS: [u64; 6] = [
    0x0000_0000_ffff_ffff,
    0x0000_ffff_0000_ffff,
    0x00ff_00ff_00ff_00ff,
    0x0f0f_0f0f_0f0f_0f0f,
    0x3333_3333_3333_3333,
    0x5555_5555_5555_5555,
];

/// Transposes a 128×128 bit matrix in place: afterwards bit `c` of `rows[r]` is what bit `r` of
/// `rows[c]` was (bit `c` of a `u128` is `(x >> c) & 1`).
pub fn transpose_128(rows: &mut [u128; 128]) {
    let mut m = [0u64; 256];
    load(&mut m, |r| rows[r]);
    transpose_halves(&mut m);
    store(&m, |r, x| rows[r] = x);
}

/// Loads 128 rows into the half-word layout (`m[2r]` low and `m[2r + 1]` high half of row `r`)
/// with the stage swapping 64-bit halves already applied.
#[inline(always)]
pub(crate) fn load(m: &mut [u64; 256], row: impl Fn(usize) -> u128) {
    for r in 0..64 {
        let (a, b) = (row(r), row(r + 64));
        m[2 * r] = a as u64;
        m[2 * r + 1] = b as u64;
        m[2 * (r + 64)] = (a >> 64) as u64;
        m[2 * (r + 64) + 1] = (b >> 64) as u64;
    }
}

/// Stores the half-word layout back as 128 rows.
#[inline(always)]
pub(crate) fn store(m: &[u64; 256], mut put: impl FnMut(usize, u128)) {
    for r in 0..128 {
        put(r, u128::from(m[2 * r]) | (u128::from(m[2 * r + 1]) << 64));
    }
}

/// The six masked stages (block sizes 32 down to 1) on the half-word layout.
#[inline(always)]
pub(crate) fn transpose_halves(m: &mut [u64; 256]) {
    swap_stage::<32>(m, MASKS[0]);
    swap_stage::<16>(m, MASKS[1]);
    swap_stage::<8>(m, MASKS[2]);
    swap_stage::<4>(m, MASKS[3]);
    swap_stage::<2>(m, MASKS[4]);
    swap_stage::<1>(m, MASKS[5]);
}

/// One stage: for every pair of rows `(r, r + S)` with `r & S == 0`, exchanges the bits at
/// columns with bit `S` set in row `r` with those with bit `S` clear in row `r + S`. Both halves
/// of a row move together, so each run of `2S` words is one contiguous vectorizable loop.
#[inline(always)]
fn swap_stage<const S: usize>(m: &mut [u64; 256], mask: u64) {
    for block in m.chunks_exact_mut(4 * S) {
        let (a, b) = block.split_at_mut(2 * S);
        for (x, y) in a.iter_mut().zip(b.iter_mut()) {
            let t = ((*x >> S) ^ *y) & mask;
            *y ^= t;
            *x ^= t << S;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(rows: &[u128; 128]) -> [u128; 128] {
        let mut out = [0u128; 128];
        for (r, row) in rows.iter().enumerate() {
            for (c, o) in out.iter_mut().enumerate() {
                *o |= ((row >> c) & 1) << r;
            }
        }
        out
    }

    proptest! {
        #[test]
        fn transpose_matches_naive_and_is_an_involution(seed in any::<[u8; 16]>()) {
            let mut prg = crate::prg::Prg::from_seed(seed);
            let mut rows = [0u128; 128];
            rows.iter_mut().for_each(|r| *r = prg.next_u128());
            let orig = rows;
            transpose_128(&mut rows);
            prop_assert_eq!(rows, naive(&orig));
            transpose_128(&mut rows);
            prop_assert_eq!(rows, orig);
        }
    }

    #[test]
    fn transpose_of_identity_and_single_bits() {
        let mut rows = [0u128; 128];
        rows.iter_mut().enumerate().for_each(|(r, x)| *x = 1 << r);
        let id = rows;
        transpose_128(&mut rows);
        assert_eq!(rows, id);
        let mut rows = [0u128; 128];
        rows[3] = 1 << 100;
        transpose_128(&mut rows);
        let mut want = [0u128; 128];
        want[100] = 1 << 3;
        assert_eq!(rows, want);
    }
}
