//! Random COTs satisfy the correlation (across rounds, in any batch sizes, with the real
//! parameters for more than one main round); chosen 1-of-2 and 1-of-N OTs deliver exactly the
//! chosen messages; correlated OTs mod m sum to `c·x`; AND triples satisfy `c = a ∧ b` (millions
//! of each); over memory and TCP.

use super::*;
use crate::channel::Channel;
use crate::prg::Prg;
use crate::test_support::{memory_pair, tcp_pair};
use crate::triples::Role;

/// Runs the sender's and receiver's closures on two threads over `chans`.
fn cot_pair<A: Send, B: Send>(
    chans: (Channel, Channel),
    params: Params,
    s: impl FnOnce(&mut Sender, &mut Channel) -> A + Send,
    r: impl FnOnce(&mut Receiver, &mut Channel) -> B + Send,
) -> (A, B) {
    let (mut ca, mut cb) = chans;
    std::thread::scope(|sc| {
        let h = sc.spawn(move || {
            let mut rx = Receiver::setup(&mut cb, params, Prg::from_seed([2; 16])).unwrap();
            r(&mut rx, &mut cb)
        });
        let mut tx = Sender::setup(&mut ca, params, Prg::from_seed([1; 16])).unwrap();
        let a = s(&mut tx, &mut ca);
        (a, h.join().unwrap())
    })
}

fn duplex_pair<A: Send, B: Send>(
    chans: (Channel, Channel),
    params: Params,
    alice: impl FnOnce(&mut Duplex, &mut Channel) -> A + Send,
    bob: impl FnOnce(&mut Duplex, &mut Channel) -> B + Send,
) -> (A, B) {
    let (mut ca, mut cb) = chans;
    std::thread::scope(|sc| {
        let h = sc.spawn(move || {
            let mut d = Duplex::setup(&mut cb, Role::Bob, params, Prg::from_seed([4; 16])).unwrap();
            bob(&mut d, &mut cb)
        });
        let mut d = Duplex::setup(&mut ca, Role::Alice, params, Prg::from_seed([3; 16])).unwrap();
        let a = alice(&mut d, &mut ca);
        (a, h.join().unwrap())
    })
}

/// Batch sizes that straddle chunk and round boundaries.
const SIZES: [usize; 7] = [1, 0, 127, 5_000, 3, 9_999, 20_000];

fn check_correlation(delta: u128, q: &[u128], t: &[u128]) {
    assert_eq!(delta & 1, 1);
    for (i, (&q, &t)) in q.iter().zip(t).enumerate() {
        assert_eq!(q & 1, 0, "sender block {i} has lsb 1");
        let b = t & 1;
        assert_eq!(t ^ q, if b == 1 { delta } else { 0 }, "COT {i}");
    }
}

#[test]
fn cots_satisfy_the_correlation_across_chunks_and_rounds() {
    let params = Params::insecure_for_tests();
    let ((delta, qs), ts) = cot_pair(
        memory_pair(),
        params,
        |s, ch| {
            let qs: Vec<Vec<u128>> = SIZES
                .iter()
                .map(|&n| {
                    let mut q = vec![0; n];
                    s.send_cot(ch, &mut q).unwrap();
                    q
                })
                .collect();
            (s.delta(), qs)
        },
        |r, ch| {
            SIZES
                .iter()
                .map(|&n| {
                    let mut t = vec![0; n];
                    r.receive_cot(ch, &mut t).unwrap();
                    t
                })
                .collect::<Vec<_>>()
        },
    );
    let q: Vec<u128> = qs.concat();
    let t: Vec<u128> = ts.concat();
    assert!(q.len() > 10 * params.per_round());
    check_correlation(delta, &q, &t);
    // Choice bits look balanced and the outputs distinct.
    let ones = t.iter().filter(|&&x| x & 1 == 1).count();
    let n = t.len();
    assert!(ones.abs_diff(n / 2) < n / 20, "{ones} ones of {n}");
    let mut sorted = q.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), q.len());
}

/// Buffering ahead ([`Sender::buffer_ahead`] and [`Receiver::buffer_ahead`] at matching
/// points, by less than, exactly and more than is buffered, across chunks and rounds) hands out
/// the same COTs, in the same order, as drawing without it.
#[test]
fn buffering_ahead_hands_out_the_same_cots() {
    let params = Params::insecure_for_tests();
    let ahead = [0usize, 7_000, 1, 30_000, 12_000, 0, 40_000];
    let run = |with_ahead: bool| {
        cot_pair(
            memory_pair(),
            params,
            |s, ch| {
                let mut qs = Vec::new();
                for (&n, &k) in SIZES.iter().zip(&ahead) {
                    if with_ahead {
                        s.buffer_ahead(ch, k).unwrap();
                    }
                    let mut q = vec![0; n];
                    s.send_cot(ch, &mut q).unwrap();
                    qs.extend(q);
                }
                (s.delta(), qs)
            },
            |r, ch| {
                let mut ts = Vec::new();
                for (&n, &k) in SIZES.iter().zip(&ahead) {
                    if with_ahead {
                        r.buffer_ahead(ch, k).unwrap();
                    }
                    let mut t = vec![0; n];
                    r.receive_cot(ch, &mut t).unwrap();
                    ts.extend(t);
                }
                ts
            },
        )
    };
    let ((delta, q), t) = run(false);
    let ((delta_ahead, q_ahead), t_ahead) = run(true);
    assert!(q.len() > 5 * params.per_round());
    assert_eq!(delta, delta_ahead);
    check_correlation(delta, &q_ahead, &t_ahead);
    assert!(q == q_ahead, "the sender's COTs differ");
    assert!(t == t_ahead, "the receiver's COTs differ");
}

#[test]
fn cots_over_tcp() {
    let params = Params::insecure_for_tests();
    let ((delta, q), t) = cot_pair(
        tcp_pair(),
        params,
        |s, ch| {
            let mut q = vec![0; 30_000];
            s.send_cot(ch, &mut q).unwrap();
            (s.delta(), q)
        },
        |r, ch| {
            let mut t = vec![0; 30_000];
            r.receive_cot(ch, &mut t).unwrap();
            t
        },
    );
    check_correlation(delta, &q, &t);
}

/// More than one main round of the 128-bit parameters (≈ 12 M COTs), checked batch by batch.
#[test]
fn ferret_parameters_give_correct_cots_beyond_one_main_round() {
    let params = Params::FERRET;
    let batches = 12;
    let batch = 1 << 20;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u128>>(2);
    let ((), bad) = cot_pair(
        memory_pair(),
        params,
        move |s, ch| {
            tx.send(vec![s.delta()]).unwrap();
            for _ in 0..batches {
                let mut q = vec![0; batch];
                s.send_cot(ch, &mut q).unwrap();
                tx.send(q).unwrap();
            }
        },
        move |r, ch| {
            let delta = rx.recv().unwrap()[0];
            let mut bad = 0usize;
            let mut ones = 0usize;
            for _ in 0..batches {
                let mut t = vec![0; batch];
                r.receive_cot(ch, &mut t).unwrap();
                let q = rx.recv().unwrap();
                for (&q, &t) in q.iter().zip(&t) {
                    ones += (t & 1) as usize;
                    bad += usize::from(t ^ q != if t & 1 == 1 { delta } else { 0 } || q & 1 != 0);
                }
            }
            assert!(ones.abs_diff(batches * batch / 2) < batches * batch / 100);
            bad
        },
    );
    assert!(batches * batch > params.per_round());
    assert_eq!(bad, 0);
}

/// The emp-ot parameter sets give correct COTs through their bootstrap round and into the
/// first main round (the main rounds are the same code as `FERRET`'s, tested above).
#[test]
fn emp_ot_parameter_sets_give_correct_cots() {
    for params in [Params::FERRET_B11, Params::FERRET_B13] {
        let n = params.pre.n() + (1 << 16);
        let ((delta, q), t) = cot_pair(
            memory_pair(),
            params,
            |s, ch| {
                let mut q = vec![0; n];
                s.send_cot(ch, &mut q).unwrap();
                (s.delta(), q)
            },
            |r, ch| {
                let mut t = vec![0; n];
                r.receive_cot(ch, &mut t).unwrap();
                t
            },
        );
        check_correlation(delta, &q, &t);
    }
}

#[test]
fn chosen_ot_delivers_exactly_the_chosen_messages() {
    let n = 100_000;
    let mut prg = Prg::from_seed([9; 16]);
    let msgs: Vec<[u128; 2]> = (0..n).map(|_| [prg.next_u128(), prg.next_u128()]).collect();
    let choices: Vec<bool> = (0..n).map(|_| prg.next_u64() & 1 == 1).collect();
    let ((), got) = cot_pair(
        memory_pair(),
        Params::insecure_for_tests(),
        |s, ch| s.send_chosen(ch, &msgs).unwrap(),
        |r, ch| r.receive_chosen(ch, &choices).unwrap(),
    );
    for i in 0..n {
        assert_eq!(got[i], msgs[i][usize::from(choices[i])], "OT {i}");
    }
}

#[test]
fn one_of_n_ot_delivers_exactly_the_chosen_messages() {
    for (log_n, bits, n) in [
        (4u32, 4u32, 50_000usize),
        (4, 8, 5_000),
        (2, 8, 5_000),
        (7, 1, 3_000),
        (1, 1, 777),
    ] {
        let big_n = 1usize << log_n;
        let mut prg = Prg::from_seed([log_n as u8; 16]);
        let msgs: Vec<u8> = (0..n * big_n)
            .map(|_| prg.uniform_below(1 << bits) as u8)
            .collect();
        let choices: Vec<u8> = (0..n)
            .map(|_| prg.uniform_below(big_n as u64) as u8)
            .collect();
        let ((), got) = cot_pair(
            memory_pair(),
            Params::insecure_for_tests(),
            |s, ch| s.send_one_of_n(ch, log_n, bits, &msgs).unwrap(),
            |r, ch| r.receive_one_of_n(ch, log_n, bits, &choices).unwrap(),
        );
        for i in 0..n {
            assert_eq!(
                got[i],
                msgs[i * big_n + choices[i] as usize],
                "N=2^{log_n} OT {i}"
            );
        }
    }
}

/// OTs of different sizes (`N = 2..16`, as the millionaires' digits of 1 to 4 bits and their
/// partial top digits use them) and widths in one exchange, over more than one pad block and
/// parallel piece: every receiver gets its chosen message; a choice beyond its OT's size is
/// refused.
#[test]
fn one_of_n_ots_of_mixed_sizes_in_one_exchange_deliver_the_chosen_messages() {
    let n = 20_000usize;
    let mut prg = Prg::from_seed([12; 16]);
    let log_n: Vec<u32> = (0..n).map(|i| [4, 3, 1, 2, 4, 2, 3, 1, 4][i % 9]).collect();
    let bits: Vec<u32> = (0..n).map(|i| [8, 4, 2, 6, 3, 1, 7, 5][i % 8]).collect();
    let msgs: Vec<Vec<u8>> = log_n
        .iter()
        .zip(&bits)
        .map(|(&ln, &b)| {
            (0..1 << ln)
                .map(|_| prg.uniform_below(1 << b) as u8)
                .collect()
        })
        .collect();
    let words = pack_messages(&msgs, &bits);
    let choices: Vec<u8> = log_n
        .iter()
        .map(|&ln| prg.uniform_below(1 << ln) as u8)
        .collect();
    let ((), got) = cot_pair(
        memory_pair(),
        Params::insecure_for_tests(),
        |s, ch| s.send_one_of_n_mixed(ch, &log_n, &bits, &words).unwrap(),
        |r, ch| {
            r.receive_one_of_n_mixed(ch, &log_n, &bits, &choices)
                .unwrap()
        },
    );
    for i in 0..n {
        assert_eq!(
            got[i], msgs[i][choices[i] as usize],
            "OT {i}, N = 2^{}, {} bits",
            log_n[i], bits[i]
        );
    }
    // A choice beyond its OT's size is refused before any traffic.
    let ((), refused) = cot_pair(
        memory_pair(),
        Params::insecure_for_tests(),
        |_, _| (),
        |r, ch| {
            r.receive_one_of_n_mixed(ch, &[2, 1], &[1, 1], &[3, 2])
                .is_err()
        },
    );
    assert!(refused, "choice 2 of a 1-of-2 OT accepted");
}

#[test]
fn one_of_n_ots_of_mixed_widths_in_one_exchange_deliver_the_chosen_messages() {
    // Widths as the grouped millionaires' uses them (2, 4, 6, 8 bits), plus odd ones that leave
    // the ciphertext stream unaligned.
    let (log_n, n) = (4u32, 20_000usize);
    let mut prg = Prg::from_seed([11; 16]);
    let bits: Vec<u32> = (0..n).map(|i| [8, 4, 2, 6, 3, 1, 7, 5][i % 8]).collect();
    let msgs: Vec<[u8; 16]> = bits
        .iter()
        .map(|&b| std::array::from_fn(|_| prg.uniform_below(1 << b) as u8))
        .collect();
    let words = pack_messages(&msgs, &bits);
    let choices: Vec<u8> = (0..n).map(|_| prg.uniform_below(16) as u8).collect();
    let ((), got) = cot_pair(
        tcp_pair(),
        Params::insecure_for_tests(),
        |s, ch| s.send_one_of_n_packed(ch, log_n, &bits, &words).unwrap(),
        |r, ch| {
            r.receive_one_of_n_fields(ch, log_n, &bits, &choices)
                .unwrap()
        },
    );
    for i in 0..n {
        assert_eq!(
            got[i], msgs[i][choices[i] as usize],
            "OT {i}, {} bits",
            bits[i]
        );
    }
}

#[test]
fn correlated_ot_mod_m_sums_to_the_chosen_multiple() {
    let moduli = [4_294_967_291u64, 1 << 33, 16_777_213];
    let n = 20_000;
    let mut prg = Prg::from_seed([7; 16]);
    let corr: Vec<u64> = (0..n * 3)
        .map(|i| prg.uniform_below(moduli[i % 3]))
        .collect();
    let choices: Vec<bool> = (0..n).map(|_| prg.next_u64() & 1 == 1).collect();
    let (s, r) = cot_pair(
        tcp_pair(),
        Params::insecure_for_tests(),
        |s, ch| s.send_correlated_mod(ch, &moduli, &corr).unwrap(),
        |r, ch| r.receive_correlated_mod(ch, &moduli, &choices).unwrap(),
    );
    for i in 0..n * 3 {
        let m = moduli[i % 3];
        let want = if choices[i / 3] { corr[i] } else { 0 };
        assert_eq!((s[i] + r[i]) % m, want, "value {i}");
        assert!(s[i] < m && r[i] < m);
    }
}

#[test]
fn correlated_ots_both_ways_at_once_sum_to_the_chosen_multiples() {
    let moduli = [4_294_967_291u64, 1 << 33];
    // Different counts per direction would be a protocol error; sizes straddle chunks.
    for n in [1usize, 9_001, 40_000] {
        let mut prg = Prg::from_seed([n as u8; 16]);
        let draw = |prg: &mut Prg| -> (Vec<u64>, Vec<bool>) {
            let corr = (0..2 * n)
                .map(|i| prg.uniform_below(moduli[i % 2]))
                .collect();
            (corr, (0..n).map(|_| prg.next_u64() & 1 == 1).collect())
        };
        let ((ca, ga), (cb, gb)) = (draw(&mut prg), draw(&mut prg));
        let ((sa, ra), (sb, rb)) = duplex_pair(
            tcp_pair(),
            Params::insecure_for_tests(),
            |d, ch| d.correlated_both(ch, &moduli, &ca, &ga).unwrap(),
            |d, ch| d.correlated_both(ch, &moduli, &cb, &gb).unwrap(),
        );
        for i in 0..2 * n {
            let m = moduli[i % 2];
            // Alice's correlations, Bob's choices; and the reverse.
            let want_ab = if gb[i / 2] { ca[i] } else { 0 };
            let want_ba = if ga[i / 2] { cb[i] } else { 0 };
            assert_eq!((sa[i] + rb[i]) % m, want_ab, "n {n}, Alice→Bob value {i}");
            assert_eq!((sb[i] + ra[i]) % m, want_ba, "n {n}, Bob→Alice value {i}");
        }
    }
}

#[test]
fn and_triples_satisfy_c_equals_a_and_b_and_beaver_and_is_and() {
    let n = 2_000_000 + 17;
    let (ta, tb) = duplex_pair(
        memory_pair(),
        Params::insecure_for_tests(),
        |d, ch| d.and_triples(ch, n).unwrap(),
        |d, ch| d.and_triples(ch, n).unwrap(),
    );
    let words = n.div_ceil(64);
    assert_eq!(ta.a.len(), words);
    let mut ones = 0u32;
    for i in 0..words {
        let (a, b, c) = (ta.a[i] ^ tb.a[i], ta.b[i] ^ tb.b[i], ta.c[i] ^ tb.c[i]);
        assert_eq!(c, a & b, "word {i}");
        ones += a.count_ones();
    }
    assert!((ones as usize).abs_diff(n / 2) < n / 100);

    let m: usize = 100_003;
    let mut prg = Prg::from_seed([8; 16]);
    let w = m.div_ceil(64);
    let tail = (1u64 << (m % 64)) - 1;
    let rand = |prg: &mut Prg| -> Vec<u64> {
        let mut v: Vec<u64> = (0..w).map(|_| prg.next_u64()).collect();
        v[w - 1] &= tail;
        v
    };
    let (xa, ya, xb, yb) = (
        rand(&mut prg),
        rand(&mut prg),
        rand(&mut prg),
        rand(&mut prg),
    );
    let (za, zb) = duplex_pair(
        tcp_pair(),
        Params::insecure_for_tests(),
        |d, ch| d.and(ch, &xa, &ya, m).unwrap(),
        |d, ch| d.and(ch, &xb, &yb, m).unwrap(),
    );
    for i in 0..w {
        assert_eq!(za[i] ^ zb[i], (xa[i] ^ xb[i]) & (ya[i] ^ yb[i]));
    }
}

#[test]
fn shared_triples_satisfy_every_lane_and_shared_and_is_and() {
    let (n, lanes) = (300_000 + 5, 3);
    let (ta, tb) = duplex_pair(
        memory_pair(),
        Params::insecure_for_tests(),
        |d, ch| d.shared_triples(ch, n, lanes).unwrap(),
        |d, ch| d.shared_triples(ch, n, lanes).unwrap(),
    );
    let words = n.div_ceil(64);
    assert_eq!((ta.a.len(), ta.b.len(), ta.c.len()), (words, lanes, lanes));
    for l in 0..lanes {
        let mut ones = 0u32;
        for i in 0..words {
            let a = ta.a[i] ^ tb.a[i];
            let (b, c) = (ta.b[l][i] ^ tb.b[l][i], ta.c[l][i] ^ tb.c[l][i]);
            assert_eq!(c, a & b, "lane {l}, word {i}");
            ones += b.count_ones();
        }
        // The lanes' second operands are independent uniform bits.
        assert!((ones as usize).abs_diff(n / 2) < n / 100, "lane {l}");
    }
    let lane_01: u32 = (0..words)
        .map(|i| ((ta.b[0][i] ^ tb.b[0][i]) ^ (ta.b[1][i] ^ tb.b[1][i])).count_ones())
        .sum();
    assert!((lane_01 as usize).abs_diff(n / 2) < n / 100);

    let m: usize = 70_001;
    let mut prg = Prg::from_seed([9; 16]);
    let w = m.div_ceil(64);
    let tail = (1u64 << (m % 64)) - 1;
    let mut rand = || -> Vec<u64> {
        let mut v: Vec<u64> = (0..w).map(|_| prg.next_u64()).collect();
        v[w - 1] &= tail;
        v
    };
    let (xa, xb) = (rand(), rand());
    let (ya, yb): (Vec<Vec<u64>>, Vec<Vec<u64>>) = (0..2).map(|_| (rand(), rand())).unzip();
    let (za, zb) = duplex_pair(
        tcp_pair(),
        Params::insecure_for_tests(),
        |d, ch| d.and_shared(ch, &xa, &[&ya[0], &ya[1]], m).unwrap(),
        |d, ch| d.and_shared(ch, &xb, &[&yb[0], &yb[1]], m).unwrap(),
    );
    for l in 0..2 {
        for i in 0..w {
            let want = (xa[i] ^ xb[i]) & (ya[l][i] ^ yb[l][i]);
            assert_eq!(za[l][i] ^ zb[l][i], want, "lane {l}, word {i}");
        }
    }

    // A shorter second lane (the millionaires' tree's trimmed `eq` lane): it ANDs the first
    // words of `x` only, and its result is as long as it.
    let short = w / 3;
    let (za, zb) = duplex_pair(
        memory_pair(),
        Params::insecure_for_tests(),
        |d, ch| {
            d.and_shared(ch, &xa, &[&ya[0], &ya[1][..short]], m)
                .unwrap()
        },
        |d, ch| {
            d.and_shared(ch, &xb, &[&yb[0], &yb[1][..short]], m)
                .unwrap()
        },
    );
    assert_eq!((za[0].len(), za[1].len()), (w, short));
    for (l, len) in [(0, w), (1, short)] {
        for i in 0..len {
            let want = (xa[i] ^ xb[i]) & (ya[l][i] ^ yb[l][i]);
            assert_eq!(za[l][i] ^ zb[l][i], want, "short lanes: lane {l}, word {i}");
        }
    }
}

#[test]
fn malformed_peer_data_is_a_typed_error() {
    // A correction message with nonzero padding bits.
    let (mut ca, mut cb) = memory_pair();
    let h = std::thread::spawn(move || {
        let mut r = Receiver::setup(
            &mut cb,
            Params::insecure_for_tests(),
            Prg::from_seed([2; 16]),
        )
        .unwrap();
        let mut t = vec![0u128; 3];
        r.receive_cot(&mut cb, &mut t).unwrap();
        cb.send(kind::FIX, &[0xff]).unwrap();
        cb.flush().unwrap();
        cb
    });
    let mut s = Sender::setup(
        &mut ca,
        Params::insecure_for_tests(),
        Prg::from_seed([1; 16]),
    )
    .unwrap();
    let e = s
        .send_chosen(&mut ca, &[[1, 2], [3, 4], [5, 6]])
        .unwrap_err();
    assert!(matches!(e, crate::Error::Wire(_)), "{e:?}");
    drop(h.join().unwrap());
    assert_eq!(format!("{s:?}"), "Sender { .. }");
}

/// The derivations hash their pads in parallel pieces on the caller's rayon pool: with one
/// thread and with three, both parties' outputs (triples, 1-of-N messages, correlated shares)
/// are the same bits, for sizes below, at and well above the parallel threshold.
#[test]
fn derivations_do_not_depend_on_the_thread_count() {
    type Out = (SharedTriples, Vec<u64>, Vec<u8>, (Vec<u64>, Vec<u64>));
    let run = |threads: usize, n: usize| -> (Out, Out) {
        let pool = || crate::test_support::pool(threads);
        let (pa, pb) = (pool(), pool());
        let moduli = [4_294_967_291u64, 1 << 33];
        let mut prg = Prg::from_seed([n as u8; 16]);
        let corr: Vec<u64> = (0..2 * n)
            .map(|i| prg.uniform_below(moduli[i % 2]))
            .collect();
        let choices: Vec<bool> = (0..n).map(|_| prg.next_u64() & 1 == 1).collect();
        let msgs: Vec<u8> = (0..16 * n).map(|_| prg.uniform_below(16) as u8).collect();
        let digits: Vec<u8> = (0..n).map(|_| prg.uniform_below(16) as u8).collect();
        // Bits beyond n zero, as `and` takes them.
        let x: Vec<u64> = (0..n)
            .step_by(64)
            .map(|i| prg.next_u64() & (u64::MAX >> (64 - (n - i).min(64))))
            .collect();
        let x = &x;
        duplex_pair(
            memory_pair(),
            Params::insecure_for_tests(),
            |d, ch| {
                pa.install(|| {
                    let t = d.shared_triples(ch, n, 3).unwrap();
                    let and = d.and(ch, x, x, n).unwrap();
                    d.sender().send_one_of_n(ch, 4, 4, &msgs).unwrap();
                    let c = d.correlated_both(ch, &moduli, &corr, &choices).unwrap();
                    (t, and, Vec::new(), c)
                })
            },
            |d, ch| {
                pb.install(|| {
                    let t = d.shared_triples(ch, n, 3).unwrap();
                    let and = d.and(ch, x, x, n).unwrap();
                    let got = d.receiver().receive_one_of_n(ch, 4, 4, &digits).unwrap();
                    let c = d.correlated_both(ch, &moduli, &corr, &choices).unwrap();
                    (t, and, got, c)
                })
            },
        )
    };
    for n in [100usize, 8_192, 50_001] {
        let (a1, b1) = run(1, n);
        let (a3, b3) = run(3, n);
        for (one, three, who) in [(&a1, &a3, "Alice"), (&b1, &b3, "Bob")] {
            assert_eq!(one.0.a, three.0.a, "{who}, n {n}: triples a");
            assert_eq!(one.0.b, three.0.b, "{who}, n {n}: triples b");
            assert_eq!(one.0.c, three.0.c, "{who}, n {n}: triples c");
            assert_eq!(one.1, three.1, "{who}, n {n}: AND");
            assert_eq!(one.2, three.2, "{who}, n {n}: 1-of-N");
            assert_eq!(one.3, three.3, "{who}, n {n}: correlated");
        }
    }
}

/// The 1-of-N sender's words: message `x` of OT `i` at bits `x·bits[i]..`.
fn pack_messages<M: AsRef<[u8]>>(msgs: &[M], bits: &[u32]) -> Vec<u128> {
    msgs.iter()
        .zip(bits)
        .map(|(m, &b)| {
            m.as_ref()
                .iter()
                .enumerate()
                .fold(0u128, |w, (x, &v)| w | (u128::from(v) << (x as u32 * b)))
        })
        .collect()
}
