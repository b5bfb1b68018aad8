//! Exact CRT reconstruction over the RNS basis, for noise measurement only (tests and reports):
//! fixed-width little-endian multi-word integers, variable time on public-to-the-key-holder data.

use bunet_kernels::primes::inv_mod_prime;

/// `acc += a · m` over fixed-width words (the caller sizes `acc` so nothing overflows).
fn mul_small_add(acc: &mut [u64], a: &[u64], m: u64) {
    let mut carry: u128 = 0;
    for (i, slot) in acc.iter_mut().enumerate() {
        let prod = a.get(i).map_or(0, |&w| w as u128 * m as u128);
        let sum = *slot as u128 + prod + carry;
        *slot = sum as u64;
        carry = sum >> 64;
    }
}

fn geq(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().zip(b).rev() {
        if x != y {
            return x > y;
        }
    }
    true
}

fn sub_assign(a: &mut [u64], b: &[u64]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(borrow as u64);
        *x = d2;
        borrow = b1 || b2;
    }
}

fn log2(a: &[u64]) -> f64 {
    match a.iter().rposition(|&w| w != 0) {
        None => f64::NEG_INFINITY,
        Some(top) => {
            let hi = a[top] as f64;
            let lo = if top > 0 { a[top - 1] as f64 } else { 0.0 };
            (hi + lo / 2f64.powi(64)).log2() + 64.0 * top as f64
        }
    }
}

/// CRT data for moduli `q_1 … q_ℓ`.
pub(crate) struct Crt {
    moduli: Vec<u64>,
    q: Vec<u64>,
    q_hat: Vec<Vec<u64>>,
    q_tilde: Vec<u64>,
}

impl Crt {
    pub(crate) fn new(moduli: &[u64]) -> Self {
        let words = moduli.len() + 1;
        let product = |skip: Option<usize>| {
            let mut acc = vec![0u64; words];
            acc[0] = 1;
            for (j, &m) in moduli.iter().enumerate() {
                if Some(j) != skip {
                    let mut next = vec![0u64; words];
                    mul_small_add(&mut next, &acc, m);
                    acc = next;
                }
            }
            acc
        };
        let q = product(None);
        let q_hat: Vec<Vec<u64>> = (0..moduli.len()).map(|i| product(Some(i))).collect();
        let q_tilde = moduli
            .iter()
            .enumerate()
            .map(|(i, &qi)| {
                let hat_mod = moduli
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(1u64, |acc, (_, &qj)| {
                        ((acc as u128 * (qj % qi) as u128) % qi as u128) as u64
                    });
                inv_mod_prime(hat_mod, qi).expect("distinct primes")
            })
            .collect();
        Self {
            moduli: moduli.to_vec(),
            q,
            q_hat,
            q_tilde,
        }
    }

    /// `log2 |x|` of the centred representative of the integer with these residues.
    pub(crate) fn centered_log2(&self, residues: &[u64]) -> f64 {
        let words = self.q.len();
        let mut x = vec![0u64; words];
        for (i, (&r, &qi)) in residues.iter().zip(&self.moduli).enumerate() {
            let y = ((r as u128 * self.q_tilde[i] as u128) % qi as u128) as u64;
            mul_small_add(&mut x, &self.q_hat[i], y);
        }
        while geq(&x, &self.q) {
            sub_assign(&mut x, &self.q);
        }
        let mut neg = self.q.clone();
        sub_assign(&mut neg, &x);
        if geq(&x, &neg) { log2(&neg) } else { log2(&x) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centered_log2_matches_u128_reference() {
        let moduli = [1_000_000_007u64, 998_244_353];
        let q = moduli[0] as u128 * moduli[1] as u128;
        let crt = Crt::new(&moduli);
        for x in [0u128, 1, 12345, q / 2 - 1, q / 2 + 7, q - 1, q - 99_999] {
            let res: Vec<u64> = moduli.iter().map(|&m| (x % m as u128) as u64).collect();
            let centred = if x > q / 2 { q - x } else { x };
            let want = (centred as f64).log2();
            let got = crt.centered_log2(&res);
            assert!(
                (got - want).abs() < 1e-9 || (got == f64::NEG_INFINITY && centred == 0),
                "x = {x}: got {got}, want {want}"
            );
        }
    }
}
