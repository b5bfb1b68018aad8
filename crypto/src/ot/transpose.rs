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
    let mut m = [[0u64; 2]; 128];
    for (dst, &src) in m.iter_mut().zip(rows.iter()) {
        *dst = [src as u64, (src >> 64) as u64];
    }
    // Stage s = 64: swap the high half of row r with the low half of row r + 64.
    for r in 0..64 {
        let hi = m[r][1];
        m[r][1] = m[r + 64][0];
        m[r + 64][0] = hi;
    }
    for (stage, &mask) in MASKS.iter().enumerate() {
        let s = 32 >> stage;
        swap_stage(&mut m, s, mask);
    }
    for (dst, src) in rows.iter_mut().zip(m.iter()) {
        *dst = u128::from(src[0]) | (u128::from(src[1]) << 64);
    }
}

/// One stage: for every pair of rows `(r, r + s)` with `r & s == 0`, exchanges the bits at
/// columns with bit `s` set in row `r` with those with bit `s` clear in row `r + s`.
#[inline(always)]
fn swap_stage(m: &mut [[u64; 2]; 128], s: usize, mask: u64) {
    for base in (0..128).step_by(2 * s) {
        let (lo, hi) = m[base..base + 2 * s].split_at_mut(s);
        for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
            for h in 0..2 {
                let t = ((a[h] >> s) ^ b[h]) & mask;
                b[h] ^= t;
                a[h] ^= t << s;
            }
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
