//! For every backend ([`Backend::ALL`]): every call equals the fixed-point reference on edges
//! and random shares (k = 24, 32), in memory and over TCP; chunk boundaries; Bob's output shares
//! look uniform; typed errors on bad input and on a peer that disconnects mid-call.

use super::*;
use crate::channel::ChannelError;
use crate::gc::GcError;
use crate::gc::fixed_point::{Gadget, Op};
use crate::test_support::{memory_pair, tcp_pair};

/// The largest prime below 2^k and a prime near 2^(k−1), for k = 24 and 32.
fn moduli() -> [(u32, u64); 4] {
    [
        (24, 16_777_213),
        (24, 8_388_617),
        (32, 4_294_967_291),
        (32, 2_147_483_647),
    ]
}

/// Sets up both sessions over `chans` and runs `alice` and `bob` (Bob on a second thread).
fn two_party<A: Send, B: Send>(
    chans: (Channel, Channel),
    config: Config,
    seed: u8,
    alice: impl FnOnce(&mut dyn Nonlinear, &mut Channel) -> A,
    bob: impl FnOnce(&mut dyn Nonlinear, &mut Channel) -> B + Send,
) -> (A, B) {
    two_party_with(chans, config, seed, None, alice, bob)
}

/// A session for `role`: [`setup`]'s, or with `variant` an OT session on the test-only Ferret
/// set running that millionaires' variant.
fn session(
    ch: &mut Channel,
    role: Role,
    config: Config,
    prg: Prg,
    variant: Option<ot::Millionaires>,
) -> Box<dyn Nonlinear> {
    match variant {
        None => setup(ch, role, config, prg).expect("setup"),
        Some(m) => {
            ch.raise_max_frame_len(config.max_message_len());
            let params = crate::silent::Params::insecure_for_tests();
            Box::new(
                OtSession::setup_with(ch, role, config, prg, params)
                    .and_then(|s| s.with_millionaires(m))
                    .expect("OT setup"),
            )
        }
    }
}

/// [`two_party`] with the sessions of [`session`].
fn two_party_with<A: Send, B: Send>(
    chans: (Channel, Channel),
    config: Config,
    seed: u8,
    variant: Option<ot::Millionaires>,
    alice: impl FnOnce(&mut dyn Nonlinear, &mut Channel) -> A,
    bob: impl FnOnce(&mut dyn Nonlinear, &mut Channel) -> B + Send,
) -> (A, B) {
    let (ca, mut cb) = chans;
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            let prg = Prg::from_seed([seed ^ 0x55; 16]);
            let mut sb = session(&mut cb, Role::Bob, config, prg, variant);
            bob(&mut *sb, &mut cb)
        });
        // Alice's channel is dropped as soon as she returns, as Bob's is (a peer that leaves).
        let a = {
            let mut ca = ca;
            let prg = Prg::from_seed([seed; 16]);
            let mut sa = session(&mut ca, Role::Alice, config, prg, variant);
            alice(&mut *sa, &mut ca)
        };
        (a, h.join().expect("bob thread"))
    })
}

/// Values of every kind of edge: 0, 1, p−1, (p−1)/2, (p+1)/2, and values on and around the
/// rescaling boundaries (multiples of 2^shift, positive and negative) and the largest
/// magnitudes.
fn edge_values(p: u64, shift: u32) -> Vec<u64> {
    let h = (p - 1) / 2;
    let s = 1i64 << shift;
    let enc = |x: i64| x.rem_euclid(p as i64) as u64;
    let mut v = vec![0, 1, p - 1, h, h + 1, h - 1, h + 2, p - 2];
    for j in [1i64, 2, 3, 1000] {
        for d in [-1i64, 0, 1] {
            v.push(enc(j * s + d));
            v.push(enc(-j * s + d));
        }
    }
    let top = h as i64 - h as i64 % s;
    for d in [-1i64, 0, 1] {
        v.push(enc(top + d));
        v.push(enc(-top + d));
    }
    v
}

/// Shares of each value, Alice's share cycling through 0, p−1, 1, the value itself and
/// uniform draws (so that `s_A + s_B` covers `[0, 2p − 2]`).
fn share_all(prg: &mut Prg, p: u64, values: &[u64]) -> (Vec<u64>, Vec<u64>) {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let a = match i % 6 {
                0 => 0,
                1 => p - 1,
                2 => 1,
                3 => v,
                _ => prg.uniform_below(p),
            };
            (a, (v + p - a) % p)
        })
        .unzip()
}

/// Inputs of one op: `values` per instance, edges first (windows sliding over the edge list,
/// pairs over all edge combinations), then uniform values and ties.
fn op_values(prg: &mut Prg, p: u64, shift: u32, op: Op) -> Vec<u64> {
    let e = edge_values(p, shift);
    let mut v = Vec::new();
    match op {
        Op::ReluRescaleReshare | Op::RescaleReshare => {
            v.extend(&e);
            v.extend((0..50).map(|_| prg.uniform_below(p)));
        }
        Op::Max4RescaleReshare => {
            for i in 0..e.len() {
                v.extend((0..4).map(|j| e[(i + j) % e.len()]));
                v.extend((0..4).map(|j| e[(i * 7 + j * 5) % e.len()]));
            }
            for _ in 0..20 {
                let x = prg.uniform_below(p);
                v.extend([x, prg.uniform_below(p), x, prg.uniform_below(p)]);
            }
        }
        Op::Argmax2 => {
            for &a in &e {
                for &b in &e {
                    v.extend([a, b]);
                }
            }
            for _ in 0..20 {
                v.extend([prg.uniform_below(p), prg.uniform_below(p)]);
            }
        }
    }
    v
}

/// Plain value of each instance: `Gadget::reference` with mask 0 (the reconstructed output).
fn expected(k: u32, p: u64, shift: u32, op: Op, sa: &[u64], sb: &[u64]) -> Vec<u64> {
    let g = Gadget::new(Params::new(k, p, shift).unwrap(), op);
    let vals = op.values();
    sa.chunks(vals)
        .zip(sb.chunks(vals))
        .map(|(a, b)| g.reference(a, b, 0))
        .collect()
}

/// Runs every op (shift 4 and 7 for the rescaling ones) and compares with the reference.
fn all_ops_equal_reference(pair: fn() -> (Channel, Channel), moduli: &[(u32, u64)], chunk: usize) {
    for &backend in Backend::ALL {
        all_ops_equal_reference_on(backend, None, &[0, 4, 7, 13], pair, moduli, chunk);
    }
}

fn all_ops_equal_reference_on(
    backend: Backend,
    variant: Option<ot::Millionaires>,
    shifts: &[u32],
    pair: fn() -> (Channel, Channel),
    moduli: &[(u32, u64)],
    chunk: usize,
) {
    for (i, &(k, p)) in moduli.iter().enumerate() {
        let config = Config::new(backend, k, p)
            .unwrap()
            .with_chunk(chunk)
            .unwrap();
        let mut prg = Prg::from_seed([40 + i as u8; 16]);
        let mut calls = Vec::new();
        for &shift in shifts {
            for op in [
                Op::ReluRescaleReshare,
                Op::RescaleReshare,
                Op::Max4RescaleReshare,
            ] {
                let values = op_values(&mut prg, p, shift, op);
                let (sa, sb) = share_all(&mut prg, p, &values);
                calls.push((op, shift, sa, sb));
            }
        }
        let values = op_values(&mut prg, p, 0, Op::Argmax2);
        let (sa, sb) = share_all(&mut prg, p, &values);
        calls.push((Op::Argmax2, 0, sa, sb));
        let run = |s: &mut dyn Nonlinear, ch: &mut Channel, alice: bool| -> Vec<Vec<u64>> {
            calls
                .iter()
                .map(|(op, shift, sa, sb)| {
                    let x = if alice { sa } else { sb };
                    match op {
                        Op::ReluRescaleReshare => s.relu_rescale(ch, x, *shift).unwrap(),
                        Op::RescaleReshare => s.rescale(ch, x, *shift).unwrap(),
                        Op::Max4RescaleReshare => s.max4_rescale(ch, x, *shift).unwrap(),
                        Op::Argmax2 => s
                            .argmax2(ch, x)
                            .unwrap()
                            .into_iter()
                            .map(u64::from)
                            .collect(),
                    }
                })
                .collect()
        };
        let (alice, bob) = two_party_with(
            pair(),
            config,
            i as u8,
            variant,
            |s, ch| run(s, ch, true),
            |s, ch| run(s, ch, false),
        );
        for ((op, shift, sa, sb), (a, b)) in calls.iter().zip(alice.iter().zip(&bob)) {
            let want = expected(k, p, *shift, *op, sa, sb);
            if *op == Op::Argmax2 {
                assert!(b.is_empty(), "bob learns nothing from argmax");
                assert_eq!(a, &want, "{backend:?} argmax k={k} p={p}");
            } else {
                assert_eq!(a.len(), want.len());
                let got: Vec<u64> = a.iter().zip(b).map(|(x, y)| (x + y) % p).collect();
                assert_eq!(got, want, "{backend:?} {op:?} k={k} p={p} shift={shift}");
                assert!(a.iter().chain(b).all(|&x| x < p));
            }
        }
    }
}

#[test]
fn every_op_equals_reference_on_edges_and_random_shares_in_memory() {
    all_ops_equal_reference(memory_pair, &moduli(), 64);
}

/// Every millionaires' variant of the OT backend (digits of 1 to 4 bits, trimmed, with and
/// without fused carries, and issue #9's wire format at 4 and 3 bits) equals the reference for
/// every op on edges and random shares, k = 24 and 32, at shifts that split digits every way
/// (0, 1, 4, 7, 12, 13), with chunks of 64 (partial top digits: 24 and 32 are not multiples of
/// 3). The moduli include the presets' (`p ≡ 1 mod 2^14`: fused carries at every shift) and
/// ones with `p ≡ 1` only mod 2 or 4 (fused at shift 1 or 2, two carries above).
#[test]
fn every_millionaires_variant_equals_reference() {
    let trimmed = |digit_bits| ot::Millionaires::DEFAULT.with_digits(digit_bits);
    let variants = [
        ot::Millionaires::ISSUE_9,
        ot::Millionaires::ISSUE_9.with_digits(3),
        trimmed(1),
        trimmed(2),
        trimmed(3),
        trimmed(4),
        ot::Millionaires::TRIMMED,
        ot::Millionaires::FUSED,
        ot::Millionaires::DEFAULT,
    ];
    let moduli = [moduli()[0], moduli()[3], PRESET_Q24, PRESET_Q32];
    for variant in variants {
        all_ops_equal_reference_on(
            Backend::Ot,
            Some(variant),
            &[0, 1, 4, 7, 12, 13],
            memory_pair,
            &moduli,
            64,
        );
    }
}

/// The trimmed 4-bit digits send exactly what issue #9's format sent less the unused bits: per
/// ReLU at shift 12 (k = 32), 8 bytes of digit-0 `eq` messages (4 comparisons, 16 messages)
/// and 2.5 bytes of `eq`-lane openings (10 tree nodes whose `eq` is dropped, one bit from
/// each party); the COTs drawn, and so the Ferret traffic, are the same.
#[test]
fn trimming_saves_exactly_the_unused_bits() {
    let (k, p) = (32, 4_294_967_291);
    let n = 1024;
    let config = Config::new(Backend::Ot, k, p).unwrap();
    let mut prg = Prg::from_seed([9; 16]);
    let values: Vec<u64> = (0..n).map(|_| prg.uniform_below(p)).collect();
    let (sa, sb) = share_all(&mut prg, p, &values);
    let bytes = |variant| {
        let (total, out) = two_party_with(
            memory_pair(),
            config,
            3,
            Some(variant),
            |s, ch| {
                let out = s.relu_rescale(ch, &sa, 12).unwrap();
                let t = traffic(ch.meter(), Block::Relu);
                (t.bytes_sent + t.bytes_received, out)
            },
            |s, ch| s.relu_rescale(ch, &sb, 12).unwrap(),
        )
        .0;
        (total, out)
    };
    let (old, _) = bytes(ot::Millionaires::ISSUE_9);
    let (new, _) = bytes(ot::Millionaires::TRIMMED);
    assert_eq!(old - new, (n as u64) * 21 / 2, "old {old} B, new {new} B");
    // This `p` is 3 mod 4: the default's carries cannot fuse, so at TRIMMED's digit size it
    // sends what TRIMMED sends.
    let (default, _) = bytes(ot::Millionaires::DEFAULT.with_digits(4));
    assert_eq!(default, new);
}

/// The presets' plaintext moduli (`p ≡ 1 mod 2^14`, the largest such primes below `2^24` and
/// `2^32`), where a rescaling by up to `2^14` fuses its carries.
const PRESET_Q24: (u32, u64) = (24, 16_760_833);
const PRESET_Q32: (u32, u64) = (32, 4_294_475_777);

/// Fused carries at every carry boundary: Alice's shares with `ρ_0 = 0, 1, 2, 2^s − 1` and
/// random (each below and above `p − h`, where `a − h` wraps), Bob's with `b_lo` at `τ − 1`,
/// `τ`, `τ + 1` (`τ = −ρ_0 mod 2^s`, where the carries change), 0 and `2^s − 1`, and `b` near
/// 0 and near `p`; ReLU, rescale and max pool against the reference at the presets' moduli and
/// shifts 1, 12, 14, with the default (3-bit digits) and, at 4-bit digits, shared low digits,
/// fused carries only and [`ot::Millionaires::TRIMMED`]: fused sends fewer bytes wherever the
/// carries span more than one digit, shared fewer still at a digit boundary (12).
#[test]
fn fused_carries_equal_reference_at_every_carry_boundary() {
    for (k, p) in [PRESET_Q24, PRESET_Q32] {
        let h = (p - 1) / 2;
        for shift in [1, 12, 14] {
            let low = (1u64 << shift) - 1;
            let mut prg = Prg::from_seed([shift as u8; 16]);
            let mut sa = Vec::new();
            let mut sb = Vec::new();
            for rho in [0, 1, 2, low, prg.next_u64() & low] {
                // `a − h = s_A` below `p − h`, `s_A − p` above (then `ρ_0 = (s_A − 1) mod 2^s`).
                for wraps in [false, true] {
                    let base = if wraps {
                        p - h + 5
                    } else {
                        prg.uniform_below(p - h)
                    };
                    let target = if wraps { (rho + 1) & low } else { rho };
                    let s_a = (base & !low) | target;
                    let s_a = if s_a >= p { s_a - (low + 1) } else { s_a };
                    let tau = rho.wrapping_neg() & low;
                    for b_lo in [tau.wrapping_sub(1) & low, tau, (tau + 1) & low, 0, low] {
                        for b_hi in [0, (p >> shift) - 1, prg.uniform_below(p >> shift)] {
                            let b = (b_hi << shift) | b_lo;
                            if b < p {
                                sa.push(s_a);
                                sb.push(b);
                            }
                        }
                    }
                }
            }
            let keep = sa.len() / 4 * 4;
            sa.truncate(keep);
            sb.truncate(keep);
            let config = Config::new(Backend::Ot, k, p).unwrap();
            let run = |s: &mut dyn Nonlinear, ch: &mut Channel, x: &[u64]| {
                let ops = [
                    Op::ReluRescaleReshare,
                    Op::RescaleReshare,
                    Op::Max4RescaleReshare,
                ];
                let out: Vec<Vec<u64>> = ops
                    .iter()
                    .map(|op| match op {
                        Op::ReluRescaleReshare => s.relu_rescale(ch, x, shift).unwrap(),
                        Op::RescaleReshare => s.rescale(ch, x, shift).unwrap(),
                        _ => s.max4_rescale(ch, x, shift).unwrap(),
                    })
                    .collect();
                let t = traffic(ch.meter(), Block::Relu);
                (out, t.bytes_sent + t.bytes_received)
            };
            let mut relu_bytes = Vec::new();
            let variants = [
                ot::Millionaires::DEFAULT.with_digits(4),
                ot::Millionaires::FUSED,
                ot::Millionaires::TRIMMED,
                ot::Millionaires::DEFAULT,
            ];
            for variant in variants {
                let ((a, bytes), (b, _)) = two_party_with(
                    memory_pair(),
                    config,
                    7,
                    Some(variant),
                    |s, ch| run(s, ch, &sa),
                    |s, ch| run(s, ch, &sb),
                );
                relu_bytes.push(bytes);
                let ops = [
                    Op::ReluRescaleReshare,
                    Op::RescaleReshare,
                    Op::Max4RescaleReshare,
                ];
                for ((op, a), b) in ops.iter().zip(&a).zip(&b) {
                    let want = expected(k, p, shift, *op, &sa, &sb);
                    let got: Vec<u64> = a.iter().zip(b).map(|(x, y)| (x + y) % p).collect();
                    assert_eq!(got, want, "{variant:?} {op:?} k={k} p={p} shift={shift}");
                }
            }
            // One digit of carries (shift ≤ 4) sends 2 bits either way; above, fused saves;
            // shared low digits save more where the shift is a digit boundary (12).
            let [shared, fused, two, _] = relu_bytes[..] else {
                unreachable!("four variants")
            };
            assert!(
                fused < two || (shift <= 4 && fused == two),
                "fused {fused} B, two carries {two} B at p={p} shift={shift}"
            );
            if shift == 12 {
                assert!(
                    shared < fused,
                    "shared {shared} B, fused {fused} B at p={p}"
                );
            } else {
                assert_eq!(shared, fused, "no digit boundary at shift {shift}");
            }
        }
    }
}

#[test]
fn every_op_equals_reference_over_tcp() {
    all_ops_equal_reference(tcp_pair, &[moduli()[0], moduli()[2]], DEFAULT_CHUNK);
}

#[test]
fn chunk_boundaries_give_the_same_results_and_one_ot_flight_per_chunk() {
    for &backend in Backend::ALL {
        chunk_boundaries_on(backend);
    }
}

fn chunk_boundaries_on(backend: Backend) {
    let (k, p) = (32, 4_294_967_291);
    let chunk = 32;
    let config = Config::new(backend, k, p)
        .unwrap()
        .with_chunk(chunk)
        .unwrap();
    let mut prg = Prg::from_seed([9; 16]);
    let sizes = [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk];
    let inputs: Vec<(Vec<u64>, Vec<u64>)> = sizes
        .iter()
        .map(|&n| {
            let v: Vec<u64> = (0..n).map(|_| prg.uniform_below(p)).collect();
            share_all(&mut prg, p, &v)
        })
        .collect();
    let ((alice, meters), bob) = two_party(
        memory_pair(),
        config,
        3,
        |s, ch| {
            let mut meters = Vec::new();
            let out: Vec<Vec<u64>> = inputs
                .iter()
                .map(|(sa, _)| {
                    let before = ch.meter().get("relu/ot").messages_received;
                    let o = s.relu_rescale(ch, sa, 4).unwrap();
                    meters.push(ch.meter().get("relu/ot").messages_received - before);
                    o
                })
                .collect();
            (out, meters)
        },
        |s, ch| {
            inputs
                .iter()
                .map(|(_, sb)| s.relu_rescale(ch, sb, 4).unwrap())
                .collect::<Vec<_>>()
        },
    );
    for (((n, (sa, sb)), (a, b)), flights) in sizes
        .iter()
        .zip(&inputs)
        .zip(alice.iter().zip(&bob))
        .zip(meters)
    {
        let want = expected(k, p, 4, Op::ReluRescaleReshare, sa, sb);
        let got: Vec<u64> = a.iter().zip(b).map(|(x, y)| (x + y) % p).collect();
        assert_eq!(got, want, "{backend:?} n = {n}");
        if backend == Backend::Gc {
            assert_eq!(flights as usize, n.div_ceil(chunk), "n = {n}");
        }
    }
}

/// Chi-square statistic of `xs` in 16 equal bins of `[0, p)`.
fn chi_square_16(xs: &[u64], p: u64) -> f64 {
    let mut bins = [0f64; 16];
    for &x in xs {
        bins[(u128::from(x) * 16 / u128::from(p)) as usize] += 1.0;
    }
    let e = xs.len() as f64 / 16.0;
    bins.iter().map(|&o| (o - e) * (o - e) / e).sum()
}

#[test]
fn output_shares_of_each_party_look_uniform_for_a_constant_input() {
    for &backend in Backend::ALL {
        uniform_on(backend);
    }
}

fn uniform_on(backend: Backend) {
    let (k, p) = (24, 16_777_213);
    let n = 4096;
    let config = Config::new(backend, k, p).unwrap();
    let mut prg = Prg::from_seed([5; 16]);
    // The same value (3.5 in 4 fractional bits, times 2^4) everywhere.
    let v = vec![56 << 4; n];
    let (sa, sb) = share_all(&mut prg, p, &v);
    let (alice, bob) = two_party(
        memory_pair(),
        config,
        7,
        |s, ch| s.relu_rescale(ch, &sa, 4).unwrap(),
        |s, ch| s.relu_rescale(ch, &sb, 4).unwrap(),
    );
    assert!(alice.iter().zip(&bob).all(|(a, b)| (a + b) % p == 56));
    // 15 degrees of freedom: P[χ² > 50] ≈ 1e-5.
    let limit = 50.0;
    let chi_bob = chi_square_16(&bob, p);
    let chi_alice = chi_square_16(&alice, p);
    assert!(chi_bob < limit, "bob's shares: chi-square {chi_bob}");
    assert!(chi_alice < limit, "alice's shares: chi-square {chi_alice}");
    // Power: with Alice's mask zero, Bob's shares would be the constant result.
    let g = Gadget::new(Params::new(k, p, 4).unwrap(), Op::ReluRescaleReshare);
    let unmasked: Vec<u64> = sa
        .iter()
        .zip(&sb)
        .map(|(&a, &b)| g.reference(&[a], &[b], 0))
        .collect();
    assert!(chi_square_16(&unmasked, p) > 1000.0 * limit);
}

#[test]
fn bad_inputs_are_typed_errors_before_any_traffic_and_the_session_stays_usable() {
    for &backend in Backend::ALL {
        bad_inputs_on(backend);
    }
}

fn bad_inputs_on(backend: Backend) {
    assert!(matches!(
        Config::new(backend, 24, 16_777_216),
        Err(Error::Gc(GcError::InvalidParams(_)))
    ));
    let config = Config::new(backend, 24, 16_777_213).unwrap();
    for chunk in [0, MAX_CHUNK + 1] {
        assert!(matches!(
            config.with_chunk(chunk),
            Err(Error::Nonlinear(NonlinearError::InvalidChunk { .. }))
        ));
    }
    let p = config.p;
    let probe = |s: &mut dyn Nonlinear, ch: &mut Channel| {
        let before = ch.meter().total();
        let e1 = s.max4_rescale(ch, &[1, 2, 3, 4, 5], 4).unwrap_err();
        assert!(matches!(
            e1,
            Error::Nonlinear(NonlinearError::InputLength {
                values: 4,
                found: 5,
                ..
            })
        ));
        assert!(matches!(
            s.argmax2(ch, &[1, 2, 3]).unwrap_err(),
            Error::Nonlinear(NonlinearError::InputLength { values: 2, .. })
        ));
        assert!(matches!(
            s.relu_rescale(ch, &[0, p], 4).unwrap_err(),
            Error::Gc(GcError::ValueOutOfRange { value, .. }) if value == p
        ));
        assert!(matches!(
            s.rescale(ch, &[0], 23).unwrap_err(),
            Error::Gc(GcError::InvalidParams(_))
        ));
        assert_eq!(ch.meter().total(), before, "no traffic for refused calls");
        assert!(!format!("{s:?}").contains("delta"));
        s.relu_rescale(ch, &[5, 7], 2).unwrap()
    };
    let (a, b) = two_party(memory_pair(), config, 11, probe, probe);
    let want = expected(24, p, 2, Op::ReluRescaleReshare, &[5, 7], &[5, 7]);
    assert_eq!(vec![(a[0] + b[0]) % p, (a[1] + b[1]) % p], want);
}

fn assert_closed(e: Error) {
    assert!(
        matches!(e, Error::Channel(ChannelError::Closed)),
        "expected a closed channel, found {e:?}"
    );
}

/// The peer runs one chunk of a three-chunk call and hangs up: a typed error, not a hang.
fn disconnect_mid_call(pair: fn() -> (Channel, Channel), alice_leaves: bool) {
    for &backend in Backend::ALL {
        disconnect_mid_call_on(backend, pair, alice_leaves);
    }
}

fn disconnect_mid_call_on(backend: Backend, pair: fn() -> (Channel, Channel), alice_leaves: bool) {
    let chunk = 16;
    let config = Config::new(backend, 32, 4_294_967_291)
        .unwrap()
        .with_chunk(chunk)
        .unwrap();
    let full = vec![3u64; 3 * chunk];
    let one = &full[..chunk];
    let start = std::time::Instant::now();
    let (a, b) = two_party(
        pair(),
        config,
        13,
        |s, ch| {
            if alice_leaves {
                s.relu_rescale(ch, one, 4).map(|_| ())
            } else {
                s.relu_rescale(ch, &full, 4).map(|_| ())
            }
        },
        |s, ch| {
            if alice_leaves {
                s.relu_rescale(ch, &full, 4).map(|_| ())
            } else {
                s.relu_rescale(ch, one, 4).map(|_| ())
            }
        },
    );
    // `two_party` drops each channel when its party returns; the one that stayed got an error.
    let (left, stayed) = if alice_leaves { (a, b) } else { (b, a) };
    left.unwrap();
    assert_closed(stayed.unwrap_err());
    assert!(start.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn peer_disconnecting_mid_call_is_a_typed_error_in_memory() {
    disconnect_mid_call(memory_pair, true);
    disconnect_mid_call(memory_pair, false);
}

#[test]
fn peer_disconnecting_mid_call_is_a_typed_error_over_tcp() {
    disconnect_mid_call(tcp_pair, true);
    disconnect_mid_call(tcp_pair, false);
}

#[test]
fn backend_names_round_trip_and_unknown_names_are_refused() {
    for &backend in Backend::ALL {
        assert_eq!(Backend::from_name(backend.name()), Some(backend));
    }
    assert_eq!(Backend::from_name("ot"), Some(Backend::Ot));
    assert_eq!(Backend::Gc.name(), "gc");
    assert_eq!(Backend::from_name("GC"), None);
    assert_eq!(Backend::from_name(""), None);
}

/// Inputs of the precompute tests: ReLU (shift 4), max pool (7), rescale (4), argmax, with the
/// matching call list.
type OpInputs = Vec<(Op, u32, Vec<u64>, Vec<u64>)>;

fn precompute_inputs(p: u64) -> (Vec<Call>, OpInputs) {
    let mut prg = Prg::from_seed([77; 16]);
    let mut calls = Vec::new();
    let mut inputs = Vec::new();
    for (block, op, shift) in [
        (Block::Relu, Op::ReluRescaleReshare, 4),
        (Block::MaxPool, Op::Max4RescaleReshare, 7),
        (Block::Rescale, Op::RescaleReshare, 4),
        (Block::Argmax, Op::Argmax2, 0),
    ] {
        let values = op_values(&mut prg, p, shift, op);
        let (sa, sb) = share_all(&mut prg, p, &values);
        calls.push(Call {
            block,
            instances: sa.len() / op.values(),
            shift,
        });
        inputs.push((op, shift, sa, sb));
    }
    (calls, inputs)
}

/// Runs one op as one party.
fn call_op(s: &mut dyn Nonlinear, ch: &mut Channel, op: Op, shift: u32, x: &[u64]) -> Vec<u64> {
    match op {
        Op::ReluRescaleReshare => s.relu_rescale(ch, x, shift).unwrap(),
        Op::RescaleReshare => s.rescale(ch, x, shift).unwrap(),
        Op::Max4RescaleReshare => s.max4_rescale(ch, x, shift).unwrap(),
        Op::Argmax2 => s
            .argmax2(ch, x)
            .unwrap()
            .into_iter()
            .map(u64::from)
            .collect(),
    }
}

/// Precomputes with `budget` (a function of the total state of all calls), runs the calls and
/// checks them against the reference; returns Alice's meter.
fn precomputed_equal_reference(
    pair: fn() -> (Channel, Channel),
    chunk: usize,
    budget: impl Fn(usize) -> usize,
) -> crate::channel::Meter {
    let (k, p) = (32, 4_294_967_291);
    let config = Config::new(Backend::Gc, k, p)
        .unwrap()
        .with_chunk(chunk)
        .unwrap();
    let (calls, inputs) = precompute_inputs(p);
    let total: usize = calls
        .iter()
        .zip(&inputs)
        .map(|(c, (op, shift, _, _))| {
            let g = Gadget::new(Params::new(k, p, *shift).unwrap(), *op);
            let full = c.instances / chunk;
            let rest = c.instances % chunk;
            full * gc::chunk_state_bytes(g.circuit(), chunk)
                + if rest > 0 {
                    gc::chunk_state_bytes(g.circuit(), rest)
                } else {
                    0
                }
        })
        .sum();
    let budget = budget(total);
    let run = |s: &mut dyn Nonlinear, ch: &mut Channel, alice: bool| {
        s.precompute(ch, &calls, budget).unwrap();
        let outs: Vec<Vec<u64>> = inputs
            .iter()
            .map(|(op, shift, sa, sb)| call_op(s, ch, *op, *shift, if alice { sa } else { sb }))
            .collect();
        (outs, ch.meter().clone())
    };
    let ((alice, meter), (bob, _)) = two_party(
        pair(),
        config,
        21,
        |s, ch| run(s, ch, true),
        |s, ch| run(s, ch, false),
    );
    for ((op, shift, sa, sb), (a, b)) in inputs.iter().zip(alice.iter().zip(&bob)) {
        let want = expected(k, p, *shift, *op, sa, sb);
        if *op == Op::Argmax2 {
            assert!(b.is_empty());
            assert_eq!(a, &want, "argmax");
        } else {
            let got: Vec<u64> = a.iter().zip(b).map(|(x, y)| (x + y) % p).collect();
            assert_eq!(got, want, "{op:?} shift={shift}");
        }
    }
    meter
}

#[test]
fn precomputed_calls_equal_reference_and_move_the_tables_offline() {
    for pair in [memory_pair as fn() -> (Channel, Channel), tcp_pair] {
        let meter = precomputed_equal_reference(pair, 16, |total| total);
        for block in Block::ALL {
            let online = traffic(&meter, block);
            let offline = meter.get(block.offline_label());
            let on = online.bytes_sent + online.bytes_received;
            let off = offline.bytes_sent + offline.bytes_received;
            // Everything fit: no streaming OT, and the tables went offline.
            assert_eq!(meter.get(block.ot_label()).bytes_sent, 0, "{block:?}");
            assert!(on * 3 < off, "{block:?}: online {on} offline {off}");
        }
    }
}

#[test]
fn a_budget_for_half_the_calls_precomputes_a_prefix_and_streams_the_rest() {
    let meter = precomputed_equal_reference(tcp_pair, 16, |total| total / 2);
    // The first call was precomputed, the last (argmax, the largest) at most in part and it
    // streams the rest.
    assert!(meter.get(Block::Relu.offline_label()).bytes_received > 0);
    assert_eq!(meter.get(Block::Relu.ot_label()).bytes_received, 0);
    assert!(meter.get(Block::Argmax.ot_label()).bytes_received > 0);
    // A zero budget precomputes nothing and still gives the reference.
    let meter = precomputed_equal_reference(memory_pair, 16, |_| 0);
    assert!(meter.get(Block::Relu.ot_label()).bytes_received > 0);
}

#[test]
fn calls_that_differ_from_the_precomputed_list_are_typed_errors_over_tcp() {
    let (k, p) = (24, 16_777_213);
    let config = Config::new(Backend::Gc, k, p).unwrap();
    let calls = [
        Call {
            block: Block::Relu,
            instances: 0,
            shift: 4,
        },
        Call {
            block: Block::Relu,
            instances: 3,
            shift: 4,
        },
    ];
    let run = |s: &mut dyn Nonlinear, ch: &mut Channel| {
        s.precompute(ch, &calls, DEFAULT_PRECOMPUTE_BUDGET).unwrap();
        // An empty call in the list is one call too.
        assert!(s.relu_rescale(ch, &[], 4).unwrap().is_empty());
        let wrong_op = s.rescale(ch, &[1, 2, 3], 4).unwrap_err();
        let wrong_len = s.relu_rescale(ch, &[1, 2], 4).unwrap_err();
        let wrong_shift = s.relu_rescale(ch, &[1, 2, 3], 5).unwrap_err();
        // Refused before any traffic: the right call still runs.
        let ok = s.relu_rescale(ch, &[1, 2, 3], 4).unwrap();
        (wrong_op, wrong_len, wrong_shift, ok)
    };
    let (a, b) = two_party(tcp_pair(), config, 5, run, run);
    for (e, found) in [
        (&a.0, (Block::Rescale, 3, 4)),
        (&a.1, (Block::Relu, 2, 4)),
        (&a.2, (Block::Relu, 3, 5)),
        (&b.0, (Block::Rescale, 3, 4)),
        (&b.1, (Block::Relu, 2, 4)),
        (&b.2, (Block::Relu, 3, 5)),
    ] {
        let want = Call {
            block: found.0,
            instances: found.1,
            shift: found.2,
        };
        assert!(
            matches!(e, Error::Nonlinear(NonlinearError::PrecomputeMismatch { expected, found })
                if *expected == calls[1] && *found == want),
            "{e:?}"
        );
    }
    let sa = [1u64, 2, 3];
    let want = expected(k, p, 4, Op::ReluRescaleReshare, &sa, &sa);
    let got: Vec<u64> = a.3.iter().zip(&b.3).map(|(x, y)| (x + y) % p).collect();
    assert_eq!(got, want);
}

#[test]
fn bob_refuses_more_precomputed_chunks_than_his_budget() {
    let config = Config::new(Backend::Gc, 24, 16_777_213)
        .unwrap()
        .with_chunk(4)
        .unwrap();
    let calls = [Call {
        block: Block::Relu,
        instances: 40,
        shift: 4,
    }];
    let (_, bob) = two_party(
        tcp_pair(),
        config,
        6,
        |s, ch| s.precompute(ch, &calls, DEFAULT_PRECOMPUTE_BUDGET).err(),
        |s, ch| s.precompute(ch, &calls, 1).unwrap_err(),
    );
    assert!(
        matches!(
            bob,
            Error::Nonlinear(NonlinearError::PrecomputeRefused {
                announced: 10,
                allowed: 0
            })
        ),
        "{bob:?}"
    );
}

/// The OT backend splits large chunks into parallel tasks on the caller's rayon pool: on
/// 20,000 instances (above its threshold for every op) each call equals the reference, and a
/// pool of one thread and one of three give both parties the same output bits.
#[test]
fn ot_backend_large_chunks_equal_reference_whatever_the_thread_count() {
    let (k, p) = (32, 4_294_967_291);
    let n = 20_000;
    let config = Config::new(Backend::Ot, k, p).unwrap();
    let mut prg = Prg::from_seed([77; 16]);
    let mut values = edge_values(p, 4);
    values.extend((values.len()..n).map(|_| prg.uniform_below(p)));
    let (sa, sb) = share_all(&mut prg, p, &values);
    let ops = [
        (Op::ReluRescaleReshare, 4),
        (Op::RescaleReshare, 7),
        (Op::Max4RescaleReshare, 4),
        (Op::Argmax2, 0),
    ];
    let run = |threads: usize| {
        let pool = || crate::test_support::pool(threads);
        let (pa, pb) = (pool(), pool());
        let calls = |s: &mut dyn Nonlinear, ch: &mut Channel, x: &[u64]| -> Vec<Vec<u64>> {
            ops.iter()
                .map(|&(op, shift)| call_op(s, ch, op, shift, x))
                .collect()
        };
        two_party(
            memory_pair(),
            config,
            5,
            |s, ch| pa.install(|| calls(s, ch, &sa)),
            |s, ch| pb.install(|| calls(s, ch, &sb)),
        )
    };
    let (a1, b1) = run(1);
    let (a3, b3) = run(3);
    assert_eq!(a1, a3, "Alice's outputs depend on the thread count");
    assert_eq!(b1, b3, "Bob's outputs depend on the thread count");
    for ((&(op, shift), a), b) in ops.iter().zip(&a1).zip(&b1) {
        let want = expected(k, p, shift, op, &sa, &sb);
        if op == Op::Argmax2 {
            assert_eq!(a, &want, "argmax");
        } else {
            let got: Vec<u64> = a.iter().zip(b).map(|(x, y)| (x + y) % p).collect();
            assert_eq!(got, want, "{op:?} shift={shift}");
        }
    }
}
