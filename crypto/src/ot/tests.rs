use super::*;
use crate::channel::{Channel, ChannelConfig};
use crate::prg::Prg;
pub(crate) use crate::test_support::tcp_pair;
use crate::wire::WireError;
use proptest::prelude::*;
use std::thread;

/// An in-memory pair and a TCP pair.
pub(crate) fn pairs() -> Vec<(Channel, Channel)> {
    vec![
        Channel::in_memory_pair(ChannelConfig::default()),
        tcp_pair(),
    ]
}

/// Runs `a` and `b` as two parties on two threads.
pub(crate) fn two_party<A, B, RA, RB>(pair: (Channel, Channel), a: A, b: B) -> (RA, RB)
where
    A: FnOnce(&mut Channel) -> RA + Send + 'static,
    B: FnOnce(&mut Channel) -> RB + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    let (mut ca, mut cb) = pair;
    let hb = thread::spawn(move || b(&mut cb));
    let ra = a(&mut ca);
    (ra, hb.join().unwrap())
}

fn random_bools(prg: &mut Prg, n: usize) -> Vec<bool> {
    (0..n).map(|_| prg.next_u64() & 1 == 1).collect()
}

fn delta(prg: &mut Prg) -> u128 {
    prg.next_u128() | 1
}

#[test]
fn base_ot_receiver_gets_exactly_the_chosen_keys() {
    for pair in pairs() {
        let mut prg = Prg::from_os_entropy();
        let choices = random_bools(&mut prg, 64);
        let c = choices.clone();
        let (keys, got) = two_party(
            pair,
            |ch| base::send(ch, &mut Prg::from_os_entropy(), 64).unwrap(),
            move |ch| base::receive(ch, &mut Prg::from_os_entropy(), &c).unwrap(),
        );
        for ((k, g), &b) in keys.iter().zip(&got).zip(&choices) {
            assert_eq!(*g, k[usize::from(b)]);
            assert_ne!(*g, k[usize::from(!b)]);
        }
    }
}

#[test]
fn base_ot_rejects_points_that_do_not_decompress() {
    // A sender whose point is not a canonical ristretto255 encoding.
    let (keys, _) = two_party(
        Channel::in_memory_pair(ChannelConfig::default()),
        |ch| base::receive(ch, &mut Prg::from_os_entropy(), &[true, false]),
        |ch| {
            ch.send(kind::BASE_SENDER, &[0xff; 32]).unwrap();
            ch.recv(kind::BASE_RECEIVER, 1 << 20).map(|_| ())
        },
    );
    assert!(matches!(
        keys,
        Err(crate::Error::Wire(WireError::Invalid(_)))
    ));
    // A receiver whose second pair holds a bad point, and one that sends too few pairs.
    for (count, len) in [(2u64, 128usize), (2, 100), (3, 128)] {
        let (keys, _) = two_party(
            Channel::in_memory_pair(ChannelConfig::default()),
            |ch| base::send(ch, &mut Prg::from_os_entropy(), 2),
            move |ch| {
                let mut body = count.to_le_bytes().to_vec();
                let g = curve25519_dalek::constants::RISTRETTO_BASEPOINT_COMPRESSED;
                body.extend_from_slice(g.as_bytes());
                body.extend_from_slice(g.as_bytes());
                body.extend(std::iter::repeat_n(0xee, len - 64));
                ch.send(kind::BASE_RECEIVER, &body).unwrap();
                ch.recv(kind::BASE_SENDER, 32).map(|_| ())
            },
        );
        assert!(matches!(keys, Err(crate::Error::Wire(_))), "{keys:?}");
    }
}

/// Sets up a session on `pair`, then runs `s` on the sender and `r` on the receiver.
fn session<A, B, RA, RB>(pair: (Channel, Channel), delta: u128, s: A, r: B) -> (RA, RB)
where
    A: FnOnce(&mut Channel, &mut Sender) -> RA + Send + 'static,
    B: FnOnce(&mut Channel, &mut Receiver) -> RB + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    two_party(
        pair,
        move |ch| {
            let mut snd = Sender::setup(ch, delta, &mut Prg::from_os_entropy()).unwrap();
            s(ch, &mut snd)
        },
        move |ch| {
            let mut rcv = Receiver::setup(ch, &mut Prg::from_os_entropy()).unwrap();
            r(ch, &mut rcv)
        },
    )
}

#[test]
fn correlated_ot_has_the_senders_delta_across_batches_and_extensions() {
    for pair in pairs() {
        let mut prg = Prg::from_os_entropy();
        let d = delta(&mut prg);
        // Spans several batches, ends mid-block, then extends again.
        let sizes = [BATCH * 2 + 1000, 77];
        let choices: Vec<Vec<bool>> = sizes.iter().map(|&n| random_bools(&mut prg, n)).collect();
        let c = choices.clone();
        let (qs, ts) = session(
            pair,
            d,
            move |ch, s| {
                assert_eq!(s.delta(), d);
                sizes
                    .iter()
                    .map(|&n| {
                        let mut q = vec![0; n];
                        s.send_correlated(ch, &mut q).unwrap();
                        q
                    })
                    .collect::<Vec<_>>()
            },
            move |ch, r| {
                c.iter()
                    .map(|c| {
                        let mut t = vec![0; c.len()];
                        r.receive_correlated(ch, c, &mut t).unwrap();
                        t
                    })
                    .collect::<Vec<_>>()
            },
        );
        for ((q, t), c) in qs.iter().zip(&ts).zip(&choices) {
            for ((&q, &t), &b) in q.iter().zip(t).zip(c) {
                assert_eq!(t, q ^ if b { d } else { 0 });
            }
        }
        // Fresh pads: no zero-message repeats within or across extensions.
        let mut all: Vec<u128> = qs.concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), sizes.iter().sum::<usize>());
    }
}

#[test]
fn random_and_chosen_ot_are_consistent_over_memory_and_tcp() {
    for pair in pairs() {
        let mut prg = Prg::from_os_entropy();
        let choices = random_bools(&mut prg, 5000);
        let c = choices.clone();
        let msgs: Vec<[u128; 2]> = (0..5000)
            .map(|_| [prg.next_u128(), prg.next_u128()])
            .collect();
        let m = msgs.clone();
        let (pairs, (got, chosen)) = session(
            pair,
            delta(&mut prg),
            move |ch, s| {
                let pairs = s.send_random(ch, 5000).unwrap();
                s.send_chosen(ch, &m).unwrap();
                pairs
            },
            move |ch, r| {
                (
                    r.receive_random(ch, &c).unwrap(),
                    r.receive_chosen(ch, &c).unwrap(),
                )
            },
        );
        for ((m, g), &b) in msgs.iter().zip(&chosen).zip(&choices) {
            assert_eq!(*g, m[usize::from(b)]);
        }
        let d0 = pairs[0][0] ^ pairs[0][1];
        assert!(pairs.iter().skip(1).all(|p| p[0] ^ p[1] != d0));
        for ((p, &g), &b) in pairs.iter().zip(&got).zip(&choices) {
            assert_eq!(g, p[usize::from(b)]);
            assert_ne!(g, p[usize::from(!b)]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn chosen_ot_receiver_gets_exactly_the_chosen_messages(
        msgs in proptest::collection::vec(any::<[u128; 2]>(), 0..700),
        seed in any::<[u8; 16]>(),
    ) {
        let mut prg = Prg::from_seed(seed);
        let choices = random_bools(&mut prg, msgs.len());
        let (m, c) = (msgs.clone(), choices.clone());
        let (_, got) = session(
            Channel::in_memory_pair(ChannelConfig::default()),
            delta(&mut prg),
            move |ch, s| s.send_chosen(ch, &m).unwrap(),
            move |ch, r| r.receive_chosen(ch, &c).unwrap(),
        );
        for ((m, g), &b) in msgs.iter().zip(&got).zip(&choices) {
            prop_assert_eq!(*g, m[usize::from(b)]);
        }
    }

    #[test]
    fn mod_p_ots_deliver_the_chosen_value_and_the_correlation(
        p in prop_oneof![Just(2u64), Just(3), Just(16_777_213), Just(4_294_967_291), 2u64..1 << 62],
        n in 0usize..400,
        seed in any::<[u8; 16]>(),
    ) {
        let mut prg = Prg::from_seed(seed);
        let choices = random_bools(&mut prg, n);
        let msgs: Vec<[u64; 2]> = (0..n).map(|_| [prg.uniform_below(p), prg.uniform_below(p)]).collect();
        let x: Vec<u64> = (0..n).map(|_| prg.uniform_below(p)).collect();
        let (m, c, xx) = (msgs.clone(), choices.clone(), x.clone());
        let (s, (chosen, corr)) = session(
            Channel::in_memory_pair(ChannelConfig::default()),
            delta(&mut prg),
            move |ch, s| {
                s.send_chosen_mod(ch, &m, p).unwrap();
                s.send_correlated_mod(ch, &xx, p).unwrap()
            },
            move |ch, r| {
                (r.receive_chosen_mod(ch, &c, p).unwrap(), r.receive_correlated_mod(ch, &c, p).unwrap())
            },
        );
        for i in 0..n {
            let b = usize::from(choices[i]);
            prop_assert_eq!(chosen[i], msgs[i][b]);
            let want = (u128::from(s[i]) + b as u128 * u128::from(x[i])) % u128::from(p);
            prop_assert_eq!(u128::from(corr[i]), want);
            prop_assert!(s[i] < p && corr[i] < p);
        }
    }
}

#[test]
fn inputs_of_the_wrong_shape_are_refused_with_typed_errors() {
    let (res, _) = session(
        Channel::in_memory_pair(ChannelConfig::default()),
        3,
        |ch, s| {
            let e1 = s.send_correlated_mod(ch, &[5], 5).unwrap_err();
            let e2 = s.send_chosen_mod(ch, &[[0, 1]], 1).unwrap_err();
            (e1, e2)
        },
        |ch, r| {
            let mut out = [0u128; 3];
            r.receive_correlated(ch, &[true], &mut out).unwrap_err()
        },
    );
    assert!(matches!(
        res.0,
        crate::Error::Ot(OtError::NotReduced { found: 5, .. })
    ));
    assert!(matches!(
        res.1,
        crate::Error::Ot(OtError::ModulusOutOfRange { p: 1 })
    ));
}

#[test]
fn tampered_or_truncated_extension_messages_are_typed_errors() {
    // Sender side: a short batch, a wrong count, trailing bytes.
    let m = |n: usize| 8 + 128 * n.div_ceil(128) * 16;
    let cases: Vec<(u64, usize)> = vec![(200, m(200) - 1), (199, m(200)), (200, m(200) + 1)];
    for (count, len) in cases {
        let (res, _) = session(
            Channel::in_memory_pair(ChannelConfig::default()),
            1,
            |ch, s| {
                let mut q = vec![0u128; 200];
                s.send_correlated(ch, &mut q)
            },
            move |ch, _| {
                let mut body = count.to_le_bytes().to_vec();
                body.resize(len, 7);
                ch.send(kind::EXTEND, &body).unwrap();
                ch.flush().unwrap();
            },
        );
        let err = res.unwrap_err();
        assert!(
            matches!(
                err,
                crate::Error::Wire(_)
                    | crate::Error::Channel(crate::channel::ChannelError::FrameTooLarge { .. })
            ),
            "{err:?}"
        );
    }
    // Receiver side: truncated chosen ciphertexts, and a mod-p value that is not reduced.
    let (_, res) = session(
        Channel::in_memory_pair(ChannelConfig::default()),
        1,
        |ch, _| {
            let _ = ch.recv(kind::EXTEND, 1 << 20).unwrap();
            let mut body = 10u64.to_le_bytes().to_vec();
            body.resize(8 + 32 * 10 - 5, 0);
            ch.send(kind::CHOSEN, &body).unwrap();
            ch.flush().unwrap();
        },
        |ch, r| r.receive_chosen(ch, &[true; 10]),
    );
    assert!(matches!(
        res,
        Err(crate::Error::Wire(WireError::Truncated { .. }))
    ));
    let (_, res) = session(
        Channel::in_memory_pair(ChannelConfig::default()),
        1,
        |ch, _| {
            let _ = ch.recv(kind::EXTEND, 1 << 20).unwrap();
            let mut body = 1u64.to_le_bytes().to_vec();
            body.extend_from_slice(&[0xff, 0xff, 0xff]);
            ch.send(kind::MOD_P, &body).unwrap();
            ch.flush().unwrap();
        },
        |ch, r| r.receive_correlated_mod(ch, &[true], 16_777_213),
    );
    assert!(matches!(
        res,
        Err(crate::Error::Wire(WireError::OutOfRange { .. }))
    ));
}
