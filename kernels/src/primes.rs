//! Prime testing and roots of unity for public moduli.
//!
//! Everything here works on public parameters and is variable time.

/// `a * b mod m` through a 128-bit product (reference arithmetic for public values).
fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    ((a as u128 * b as u128) % m as u128) as u64
}

/// `base^exp mod m` by square-and-multiply.
pub fn pow_mod(mut base: u64, mut exp: u64, m: u64) -> u64 {
    let mut result = 1 % m;
    base %= m;
    while exp > 0 {
        if exp & 1 == 1 {
            result = mul_mod(result, base, m);
        }
        base = mul_mod(base, base, m);
        exp >>= 1;
    }
    result
}

/// Inverse of `a` modulo the prime `q` (Fermat), or `None` for `a = 0 mod q`.
pub fn inv_mod_prime(a: u64, q: u64) -> Option<u64> {
    (!a.is_multiple_of(q)).then(|| pow_mod(a, q - 2, q))
}

/// Deterministic Miller–Rabin for 64-bit integers (the first 12 prime bases suffice below 2^64).
pub fn is_prime(n: u64) -> bool {
    const BASES: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    if n < 2 {
        return false;
    }
    for p in BASES {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    'witness: for a in BASES {
        let mut x = pow_mod(a, d, n);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mul_mod(x, x, n);
            if x == n - 1 {
                continue 'witness;
            }
        }
        return false;
    }
    true
}

/// A primitive `order`-th root of unity modulo the prime `q`, where `order` is a power of two
/// dividing `q - 1`; `None` otherwise. The smallest such root is returned, so the result is
/// deterministic.
pub fn primitive_root_of_unity(order: u64, q: u64) -> Option<u64> {
    if !order.is_power_of_two() || !is_prime(q) || !(q - 1).is_multiple_of(order) {
        return None;
    }
    let cofactor = (q - 1) / order;
    (2..q).find_map(|g| {
        let root = pow_mod(g, cofactor, q);
        // A power-of-two order is primitive iff root^(order/2) = -1.
        (order == 1 && root == 1 || order > 1 && pow_mod(root, order / 2, q) == q - 1)
            .then_some(root)
    })
}

/// The `count` largest primes below `2^bits` that are `1 mod modulus_step` (for NTT-friendly
/// RNS moduli take `modulus_step = 2N`), largest first.
pub fn primes_congruent_one(bits: u32, modulus_step: u64, count: usize) -> Vec<u64> {
    assert!((2..=63).contains(&bits), "prime size must be 2..=63 bits");
    let mut out = Vec::with_capacity(count);
    let top = 1u64 << bits;
    let mut candidate = top - (top - 1) % modulus_step; // the largest value < 2^bits that is 1 mod step
    while out.len() < count && candidate > modulus_step {
        if is_prime(candidate) {
            out.push(candidate);
        }
        candidate -= modulus_step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn miller_rabin_agrees_with_trial_division_below_100k() {
        let trial = |n: u64| {
            n >= 2
                && (2..)
                    .take_while(|d| d * d <= n)
                    .all(|d| !n.is_multiple_of(d))
        };
        for n in 0..100_000 {
            assert_eq!(is_prime(n), trial(n), "n = {n}");
        }
    }

    #[test]
    fn known_large_primes_and_composites() {
        assert!(is_prime(0x1fff_ffff_ffe0_0001)); // 61-bit NTT prime
        assert!(is_prime((1 << 61) - 1));
        assert!(!is_prime(3_215_031_751)); // strong pseudoprime to bases 2, 3, 5, 7
        assert!(!is_prime((1 << 62) - 1));
    }

    #[test]
    fn found_primes_are_ntt_friendly() {
        for bits in [24, 32, 50, 60, 62] {
            let ps = primes_congruent_one(bits, 2 * 8192, 3);
            assert_eq!(ps.len(), 3);
            for p in ps {
                assert!(p < 1 << bits && p % 16384 == 1 && is_prime(p));
                let w = primitive_root_of_unity(16384, p).unwrap();
                assert_eq!(pow_mod(w, 8192, p), p - 1);
            }
        }
    }
}
