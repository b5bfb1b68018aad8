use super::*;
use crate::channel::ChannelConfig;
use crate::ot::tests::{pairs, two_party};
use crate::wire::{Reader, WireError};
use proptest::prelude::*;

/// A prime just below 2^24 and one just below 2^32.
const P24: u64 = 16_777_213;
const P32: u64 = 4_294_967_291;

fn sessions<A, B, RA, RB>(pair: (Channel, Channel), p: u64, alice: A, bob: B) -> (RA, RB)
where
    A: FnOnce(&mut Channel, &mut Session) -> RA + Send + 'static,
    B: FnOnce(&mut Channel, &mut Session) -> RB + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    two_party(
        pair,
        move |ch| {
            let mut s = Session::setup(ch, Role::Alice, p, Prg::from_os_entropy()).unwrap();
            alice(ch, &mut s)
        },
        move |ch| {
            let mut s = Session::setup(ch, Role::Bob, p, Prg::from_os_entropy()).unwrap();
            bob(ch, &mut s)
        },
    )
}

fn rec(x: u64, y: u64, p: u64) -> u64 {
    ((u128::from(x) + u128::from(y)) % u128::from(p)) as u64
}

fn mul(x: u64, y: u64, p: u64) -> u64 {
    (u128::from(x) * u128::from(y) % u128::from(p)) as u64
}

fn split(values: &[u64], p: u64, prg: &mut Prg) -> (Vec<u64>, Vec<u64>) {
    let a: Vec<u64> = values.iter().map(|_| prg.uniform_below(p)).collect();
    let b = values
        .iter()
        .zip(&a)
        .map(|(&v, &a)| (v + p - a) % p)
        .collect();
    (a, b)
}

#[test]
fn every_triple_and_square_pair_reconstructs_over_memory_and_tcp() {
    for (pair, p) in pairs().into_iter().zip([P24, P32]) {
        // More than one chunk, ending mid-chunk.
        let n = CHUNK + 123;
        let ((ta, sa), (tb, sb)) = sessions(
            pair,
            p,
            move |ch, s| (s.triples(ch, n).unwrap(), s.square_pairs(ch, n).unwrap()),
            move |ch, s| (s.triples(ch, n).unwrap(), s.square_pairs(ch, n).unwrap()),
        );
        for i in 0..n {
            let (a, b, c) = (
                rec(ta.a[i], tb.a[i], p),
                rec(ta.b[i], tb.b[i], p),
                rec(ta.c[i], tb.c[i], p),
            );
            assert_eq!(c, mul(a, b, p), "triple {i}");
            let a = rec(sa.a[i], sb.a[i], p);
            assert_eq!(rec(sa.c[i], sb.c[i], p), mul(a, a, p), "square pair {i}");
        }
        assert!(ta.a.iter().chain(&ta.c).chain(&sb.c).all(|&x| x < p));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn triples_satisfy_c_equals_ab(
        p in prop_oneof![Just(2u64), Just(3), Just(P24), Just(P32), 2u64..1 << 40],
        n in 0usize..300,
    ) {
        let (ta, tb) = sessions(
            Channel::in_memory_pair(ChannelConfig::default()),
            p,
            move |ch, s| s.triples(ch, n).unwrap(),
            move |ch, s| s.triples(ch, n).unwrap(),
        );
        for i in 0..n {
            let (a, b) = (rec(ta.a[i], tb.a[i], p), rec(ta.b[i], tb.b[i], p));
            prop_assert_eq!(rec(ta.c[i], tb.c[i], p), mul(a, b, p));
        }
    }

    #[test]
    fn beaver_multiplication_reconstructs_the_product(
        xs in proptest::collection::vec(any::<u64>(), 0..200),
        seed in any::<[u8; 16]>(),
    ) {
        let p = P32;
        let mut prg = Prg::from_seed(seed);
        let x: Vec<u64> = xs.iter().map(|v| v % p).collect();
        let y: Vec<u64> = xs.iter().map(|v| (v >> 20) % p).collect();
        let (xa, xb) = split(&x, p, &mut prg);
        let (ya, yb) = split(&y, p, &mut prg);
        let n = x.len();
        let (za, zb) = sessions(
            Channel::in_memory_pair(ChannelConfig::default()),
            p,
            move |ch, s| { let t = s.triples(ch, n).unwrap(); s.multiply(ch, &xa, &ya, t).unwrap() },
            move |ch, s| { let t = s.triples(ch, n).unwrap(); s.multiply(ch, &xb, &yb, t).unwrap() },
        );
        for i in 0..n {
            prop_assert_eq!(rec(za[i], zb[i], p), mul(x[i], y[i], p));
        }
    }
}

#[test]
fn square_reconstructs_v_squared_on_random_and_edge_values() {
    for (pair, p) in pairs().into_iter().zip([P24, P32]) {
        let mut prg = Prg::from_os_entropy();
        let mut v = vec![0, 1, p - 1, (p - 1) / 2, p.div_ceil(2), 2, p - 2];
        v.extend((0..OPEN_BATCH + 100).map(|_| prg.uniform_below(p)));
        let (va, vb) = split(&v, p, &mut prg);
        let n = v.len();
        let (ra, rb) = sessions(
            pair,
            p,
            move |ch, s| {
                let pairs = s.square_pairs(ch, n).unwrap();
                s.square(ch, &va, pairs).unwrap()
            },
            move |ch, s| {
                let pairs = s.square_pairs(ch, n).unwrap();
                s.square(ch, &vb, pairs).unwrap()
            },
        );
        for i in 0..n {
            assert_eq!(rec(ra[i], rb[i], p), mul(v[i], v[i], p), "v = {}", v[i]);
        }
    }
}

/// Pearson's chi-square statistic of `counts` against a uniform expectation.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

#[test]
fn opened_values_are_uniformly_masked() {
    // Alice squares the constant 0 many times; Bob's side reads her opened shares off the wire.
    // They must look uniform (they would be constant if `a` were zero or reused).
    let p = P24;
    let n = 8192;
    let (_, seen) = sessions(
        Channel::in_memory_pair(ChannelConfig::default()),
        p,
        move |ch, s| {
            let pairs = s.square_pairs(ch, n).unwrap();
            s.square(ch, &vec![0; n], pairs).unwrap()
        },
        move |ch, s| {
            let pairs = s.square_pairs(ch, n).unwrap();
            let width = s.width;
            let mut seen = Vec::new();
            for batch in pairs.a.chunks(OPEN_BATCH) {
                let body = ch.recv(kind::OPEN_SQUARE, 8 + width * batch.len()).unwrap();
                let mut r = Reader::new(&body);
                assert_eq!(r.u64().unwrap(), batch.len() as u64);
                r.words_below("e", batch.len(), width, p, &mut seen)
                    .unwrap();
                let mut reply = (batch.len() as u64).to_le_bytes().to_vec();
                put_words(&mut reply, &vec![0; batch.len()], width);
                ch.send(kind::OPEN_SQUARE, &reply).unwrap();
            }
            ch.flush().unwrap();
            seen
        },
    );
    assert_eq!(seen.len(), n);
    let mut high = [0u64; 16];
    let mut low = [0u64; 16];
    for &e in &seen {
        high[(e * 16 / p) as usize] += 1;
        low[(e % 16) as usize] += 1;
    }
    // 15 degrees of freedom: P(chi² > 60) < 1e-6.
    assert!(chi_square(&high) < 60.0, "high buckets {high:?}");
    assert!(chi_square(&low) < 60.0, "low buckets {low:?}");
    let mut distinct = seen.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // 8192 draws from 2^24 values: about 2 collisions expected.
    assert!(distinct.len() > n - 20, "{} distinct", distinct.len());
}

#[test]
fn malformed_inputs_and_openings_are_typed_errors() {
    let p = P24;
    let (ra, rb) = sessions(
        Channel::in_memory_pair(ChannelConfig::default()),
        p,
        move |ch, s| {
            let pairs = s.square_pairs(ch, 2).unwrap();
            let e1 = s.square(ch, &[1], pairs.clone()).unwrap_err();
            let e2 = s.square(ch, &[1, p], pairs.clone()).unwrap_err();
            let e3 = s.square(ch, &[1, 2], pairs).unwrap_err();
            (e1, e2, e3)
        },
        move |ch, s| {
            let _ = s.square_pairs(ch, 2).unwrap();
            // An opening with a share that is not below p.
            let mut body = 2u64.to_le_bytes().to_vec();
            put_words(&mut body, &[1, p], 3);
            ch.send(kind::OPEN_SQUARE, &body).unwrap();
            ch.flush().unwrap();
            let _ = ch.recv(kind::OPEN_SQUARE, 1 << 10);
        },
    );
    let () = rb;
    assert!(matches!(ra.0, Error::Ot(OtError::LengthMismatch { .. })));
    assert!(matches!(ra.1, Error::Ot(OtError::NotReduced { .. })));
    assert!(matches!(ra.2, Error::Wire(WireError::OutOfRange { .. })));
    let bad = two_party(
        Channel::in_memory_pair(ChannelConfig::default()),
        |ch| Session::setup(ch, Role::Alice, 1, Prg::from_os_entropy()).map(|_| ()),
        |_| (),
    );
    assert!(matches!(
        bad.0,
        Err(Error::Ot(OtError::ModulusOutOfRange { p: 1 }))
    ));
}
