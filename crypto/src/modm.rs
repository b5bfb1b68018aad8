//! Arithmetic modulo a public modulus `m < 2^62` shared by the OT-based protocols (IKNP's mod-p
//! OTs, the silent-OT derivations, the OT nonlinear layers): the one copy of these helpers, so a
//! fix to one (e.g. keeping it branch-free) reaches every protocol.
//!
//! The operands are secret shares or pads, so `add_mod` and `sub_mod` select with a mask taken
//! from the borrow bit, never with a branch.

use crate::ot::OtError;

/// Largest modulus (exclusive) the OT protocols accept: sums of two residues stay below 2^63,
/// which the borrow-bit masks of [`add_mod`] / [`sub_mod`] need.
pub(crate) const MODULUS_BOUND: u64 = 1 << 62;

/// Checks `2 <= m < 2^62`.
pub(crate) fn check_modulus(m: u64) -> Result<(), OtError> {
    if !(2..MODULUS_BOUND).contains(&m) {
        return Err(OtError::ModulusOutOfRange { p: m });
    }
    Ok(())
}

/// All ones if the top bit of `x` is set, else zero.
#[inline]
fn top_bit_mask(x: u64) -> u64 {
    0u64.wrapping_sub(x >> 63)
}

/// `(x + y) mod m` for `x, y < m < 2^63`, without a division or a secret-dependent branch.
#[inline]
pub(crate) fn add_mod(x: u64, y: u64, m: u64) -> u64 {
    // `x + y − m` wraps above 2^63 exactly when `x + y < m` (as `x + y − m > −2^63`).
    let d = (x + y).wrapping_sub(m);
    d.wrapping_add(m & top_bit_mask(d))
}

/// `(x − y) mod m` for `x, y < m < 2^63`, without a secret-dependent branch.
#[inline]
pub(crate) fn sub_mod(x: u64, y: u64, m: u64) -> u64 {
    let d = x.wrapping_sub(y);
    d.wrapping_add(m & top_bit_mask(d))
}

/// Maps a uniform 128-bit block (a hash output, an OT pad) to `[0, m)` as `⌊x·m / 2^128⌋`
/// (multiply-shift: two multiplications, no division); the result is within statistical
/// distance `m / 2^128` of uniform.
#[inline]
pub(crate) fn reduce_block(x: u128, m: u64) -> u64 {
    let m = u128::from(m);
    let lo = (x as u64 as u128 * m) >> 64;
    let hi = (x >> 64) * m;
    ((hi + lo) >> 64) as u64
}

/// Bytes per value modulo `m` on the wire: `⌈⌈log2 m⌉ / 8⌉`, at least 1.
pub(crate) fn bytes_per_value(m: u64) -> usize {
    (64 - (m.max(2) - 1).leading_zeros() as usize)
        .div_ceil(8)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn add_and_sub_agree_with_wide_arithmetic(m in 2u64..MODULUS_BOUND, x in any::<u64>(), y in any::<u64>()) {
            let (x, y) = (x % m, y % m);
            let wide = |v: u128| (v % u128::from(m)) as u64;
            prop_assert_eq!(add_mod(x, y, m), wide(u128::from(x) + u128::from(y)));
            prop_assert_eq!(sub_mod(x, y, m), wide(u128::from(x) + u128::from(m) - u128::from(y)));
        }

        #[test]
        fn reduced_blocks_are_residues(m in 2u64..MODULUS_BOUND, x in any::<u128>()) {
            prop_assert!(reduce_block(x, m) < m);
        }
    }

    #[test]
    fn edges() {
        let m = MODULUS_BOUND - 1;
        assert_eq!(add_mod(m - 1, m - 1, m), m - 2);
        assert_eq!(add_mod(0, 0, m), 0);
        assert_eq!(sub_mod(0, m - 1, m), 1);
        assert_eq!(sub_mod(0, 0, 2), 0);
        assert_eq!(bytes_per_value(2), 1);
        assert_eq!(bytes_per_value(257), 2);
        assert_eq!(bytes_per_value(1 << 16), 2);
        assert_eq!(bytes_per_value((1 << 16) + 1), 3);
    }
}
