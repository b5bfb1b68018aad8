//! The three linear backends side by side, IDs `linear/<backend>/<layer>`: the seed's DFT
//! HomConv (`HomConvClient` ∥ `HomConvServer`), the coefficient-encoded one
//! (`CoeffHomConvClient` ∥ `CoeffHomConvServer`) and the same packing with the server's
//! weights encrypted once per session (`coeff-ew`: `EwHomConvClient` ∥ `EwHomConvServer`, its
//! set-up run once before the timed runs and reported apart), at the real `q32` preset, two
//! parties as two threads over `Channel::in_memory_pair` sharing the process's rayon pool.
//!
//! Layers: the ANCHORS.md case (56×56, 64 → 64, 3×3; Cheetah: 650 ms, 6.97 MB), a UNet-sized
//! layer (512×512, 16 → 16, 3×3), and the UNet's other layer kinds (IDs `kinds/…`: a 2×2
//! stride-2 up-conv, the 1×1 head, a 3×3 at 32 channels and a 3×3×3 volume layer), which decide
//! the default linear backend. Filters / kernels are prepared once ahead (timed and printed
//! apart). After each bench a line gives the bytes per direction per run, wall and process CPU
//! time per run (both parties), and the last run's output is checked bit for bit against
//! `fixed::conv`. `-- interleaved` runs the three backends on the ANCHORS layer alternately and
//! prints the minima per backend (the ratios that survive a loaded machine). Run with `cargo bench -p bunet-benches --bench linear` (`-- 56x56`,
//! `-- 512x512`, `-- kinds` for a part).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bunet_benches::{Tally, check_conv, conv_model, two_parties, uniform_share};
use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::pahe::{COEFF_WEIGHT_BITS, Params, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_unet::arch::{ConvKind, Dims};
use bunet_unet::secure::homconv::{
    CoeffHomConvClient, CoeffHomConvServer, CoeffLayout, EwHomConvClient, EwHomConvServer, LABEL,
    LinearClient, LinearServer, SETUP_LABEL,
};
use bunet_unet::secure::{HomConvClient, HomConvServer, Layout};
use bunet_unet::{Quant, QuantModel, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Both sides of conv `conv` of `qm` on input extents `dims` under `backend` (`dft`, `coeff` or
/// `coeff-ew`), every filter prepared ahead, and a line describing the packing.
fn sides<'m>(
    params: &Params,
    (qm, conv): (&'m QuantModel, usize),
    dims: [usize; 3],
    backend: &str,
) -> (LinearClient, LinearServer<'m>, String) {
    let spec = &qm.convs()[conv].spec;
    if backend == "dft" {
        let layout = Layout::new(params, spec, dims, None).expect("layout");
        let server =
            HomConvServer::with_filter_budget(params, qm, conv, layout.clone(), usize::MAX)
                .expect("server");
        let client = HomConvClient::new(params, layout.clone()).expect("client");
        let packing = format!(
            "m = {}, r = {}, tile {:?}, {} tiles, {} up / {} down ct",
            layout.dft_len(),
            layout.replicas(),
            layout.tile(),
            layout.tiles(),
            layout.upload_ciphertexts(),
            layout.return_ciphertexts()
        );
        let (client, server) = (Box::new(client), Box::new(server));
        (
            LinearClient::Dft(client),
            LinearServer::Dft(server),
            packing,
        )
    } else if backend == "coeff-ew" {
        let layout = CoeffLayout::encrypted_weights(params, spec, dims, None).expect("layout");
        // The server's key pair of the session.
        let mut prg = Prg::from_os_entropy();
        let own = SecretKey::generate(params, &mut prg);
        let own_pk = PublicKey::generate(&own, &mut prg);
        let server =
            EwHomConvServer::new(params, qm, conv, layout.clone(), Arc::new(own)).expect("server");
        let client = EwHomConvClient::new(params, layout.clone(), own_pk).expect("client");
        let (count, bytes) = layout.setup_ciphertexts(params);
        let packing = format!(
            "tile {:?}, {} tiles, G = {}, M = {}, {:?}, {} responses; set-up {count} weight ct, \
             {:.2} MB on the wire, {:.1} MB in the client's memory",
            layout.tile(),
            layout.tiles(),
            layout.channels_per_upload(),
            layout.outputs_per_product(),
            layout.plan(),
            layout.responses(),
            bytes as f64 / 1e6,
            client.weight_memory() as f64 / 1e6,
        );
        let (client, server) = (Box::new(client), Box::new(server));
        (
            LinearClient::CoeffEw(client),
            LinearServer::CoeffEw(server),
            packing,
        )
    } else {
        // Every layer here stands for an interior conv (a model's first has 1–5 input
        // channels): the bound of every conv but the first, whatever its index in `qm`.
        let bits = COEFF_WEIGHT_BITS;
        let layout = CoeffLayout::new(params, spec, dims, None, bits).expect("layout");
        let server =
            CoeffHomConvServer::with_kernel_budget(params, qm, conv, layout.clone(), usize::MAX)
                .expect("server");
        let client = CoeffHomConvClient::new(params, layout.clone()).expect("client");
        let packing = format!(
            "tile {:?}, {} tiles, G = {}, M = {}, {:?}, {} up ct / {} responses",
            layout.tile(),
            layout.tiles(),
            layout.channels_per_upload(),
            layout.outputs_per_product(),
            layout.plan(),
            layout.upload_ciphertexts(),
            layout.responses()
        );
        let (client, server) = (Box::new(client), Box::new(server));
        (
            LinearClient::Coeff(client),
            LinearServer::Coeff(server),
            packing,
        )
    }
}

/// Whether the command line's filter (criterion's positional argument, taken as a substring
/// unless it holds regex syntax) selects bench `id`: the sides of a layer are set up (filters
/// prepared) only for selected benches, so `-- 56x56` does not prepare the 512×512 layer's.
fn selected(id: &str) -> bool {
    const VALUED: [&str; 14] = [
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--profile-time",
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--output-format",
        "--plotting-backend",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if VALUED.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            let regex = arg.chars().any(|c| "^$.*+?()[]{}|\\".contains(c));
            return regex || id.contains(&arg);
        }
    }
    true
}

/// A layer run's inputs: the q32 parameters, the client's keys and both parties' uniform
/// input shares of `c_in` channels of extents `dims`, from the OS-seeded generator.
struct LayerInputs {
    params: Params,
    sk: SecretKey,
    pk: PublicKey,
    x_a: Tensor<u64>,
    x_b: Tensor<u64>,
}

fn layer_inputs(c_in: usize, dims: [usize; 3]) -> LayerInputs {
    let params = Params::q32();
    let p = params.p();
    let mut prg = Prg::from_os_entropy();
    let sk = SecretKey::generate(&params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let x_a = uniform_share(c_in, dims, p, &mut prg);
    let x_b = uniform_share(c_in, dims, p, &mut prg);
    LayerInputs {
        params,
        sk,
        pk,
        x_a,
        x_b,
    }
}

fn bench_layer(
    c: &mut Criterion,
    backend: &str,
    layer: &str,
    (qm, conv): (&QuantModel, usize),
    dims: [usize; 3],
) {
    if !selected(&format!("linear/{backend}/{layer}")) {
        return;
    }
    let spec = &qm.convs()[conv].spec;
    let LayerInputs {
        params,
        sk,
        pk,
        x_a,
        x_b,
    } = layer_inputs(spec.c_in, dims);
    let start = Instant::now();
    let (client, server, packing) = sides(&params, (qm, conv), dims, backend);
    let prepare = start.elapsed();
    let (mut s_ch, mut c_ch) = Channel::in_memory_pair(ChannelConfig::default());
    // The encrypted-weights backend's set-up travels at its first run: run it once untimed
    // by criterion, and count the timed runs' bytes from after it.
    let mut setup = Tally::default();
    if backend == "coeff-ew" {
        setup.time(|| {
            two_parties(
                (&mut s_ch, &mut c_ch),
                |ch, prg| server.run(ch, &pk, &x_b, prg).expect("server set-up run"),
                |ch, prg| client.run(ch, &sk, &x_a, prg).expect("client set-up run"),
            )
        });
    }
    let setup_bytes = c_ch.meter().get(SETUP_LABEL).bytes_received;
    let before = c_ch.meter().get(LABEL);
    let outputs = spec.c_out * y_len(spec.kind, dims);
    let mut g = c.benchmark_group("linear");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(outputs as u64));
    let mut tally = Tally::default();
    let mut last = None;
    g.bench_function(BenchmarkId::new(backend, layer), |b| {
        b.iter(|| {
            last = Some(tally.time(|| {
                two_parties(
                    (&mut s_ch, &mut c_ch),
                    |ch, prg| server.run(ch, &pk, &x_b, prg).expect("server run"),
                    |ch, prg| client.run(ch, &sk, &x_a, prg).expect("client run"),
                )
            }));
        })
    });
    g.finish();
    let Some((y_a, y_b)) = last else {
        return;
    };
    check_conv((qm, conv), (&x_a, &x_b), (&y_a, &y_b), backend);
    let t = c_ch.meter().get(LABEL);
    let (up, down) = (
        (t.bytes_sent - before.bytes_sent) as f64 / tally.runs as f64 / 1e6,
        (t.bytes_received - before.bytes_received) as f64 / tally.runs as f64 / 1e6,
    );
    if setup.runs > 0 {
        let (wall, cpu) = setup.ms_per_run();
        println!(
            "linear/{backend}/{layer}: set-up (weight ciphertexts, once per layer and session) \
             {:.2} MB server → client; its first run with the set-up {wall:.1} ms wall, \
             {cpu:.1} ms CPU (both parties), of which the run itself is about the per-run \
             figures below",
            setup_bytes as f64 / 1e6
        );
    }
    println!(
        "linear/{backend}/{layer}: {packing}; per run: client → server {up:.2} MB, server → client \
         {down:.2} MB, total {:.2} MB; {:.1} ms/run wall, {:.1} ms/run CPU (both parties, all \
         threads) over {} runs; set-up (filters/kernels) {:.0} ms; output checked against \
         fixed::conv",
        up + down,
        tally.ms_per_run().0,
        tally.ms_per_run().1,
        tally.runs,
        prepare.as_secs_f64() * 1e3,
    );
}

/// The three backends on one layer interleaved (`dft`, `coeff`, `coeff-ew`, `dft`, …,
/// `rounds` times, the `coeff-ew` set-up done before), minimum wall and CPU per run of each:
/// the ratios that survive a shared machine. ID `linear/interleaved/<layer>` for the filter.
fn interleaved(layer: &str, (qm, conv): (&QuantModel, usize), dims: [usize; 3], rounds: usize) {
    if !selected(&format!("linear/interleaved/{layer}")) {
        return;
    }
    let spec = &qm.convs()[conv].spec;
    let LayerInputs {
        params,
        sk,
        pk,
        x_a,
        x_b,
    } = layer_inputs(spec.c_in, dims);
    let sides: Vec<_> = BACKENDS
        .iter()
        .map(|&b| sides(&params, (qm, conv), dims, b))
        .collect();
    let mut chs: Vec<_> = BACKENDS
        .iter()
        .map(|_| Channel::in_memory_pair(ChannelConfig::default()))
        .collect();
    let mut best = [(f64::INFINITY, f64::INFINITY); 3];
    // Round 0 is a warm-up (and `coeff-ew`'s set-up): not counted.
    for round in 0..=rounds {
        for (k, ((client, server, _), (s_ch, c_ch))) in sides.iter().zip(&mut chs).enumerate() {
            let mut tally = Tally::default();
            let (y_a, y_b) = tally.time(|| {
                two_parties(
                    (s_ch, c_ch),
                    |ch, prg| server.run(ch, &pk, &x_b, prg).expect("server run"),
                    |ch, prg| client.run(ch, &sk, &x_a, prg).expect("client run"),
                )
            });
            if round == 0 {
                check_conv((qm, conv), (&x_a, &x_b), (&y_a, &y_b), BACKENDS[k]);
                continue;
            }
            let (wall, cpu) = tally.ms_per_run();
            best[k] = (best[k].0.min(wall), best[k].1.min(cpu));
        }
    }
    let line: Vec<String> = BACKENDS
        .iter()
        .zip(&best)
        .map(|(b, (wall, cpu))| format!("{b} {wall:.1} ms wall / {cpu:.1} ms CPU"))
        .collect();
    println!(
        "linear/interleaved/{layer}: minima over {rounds} interleaved rounds: {}; coeff-ew / \
         coeff: wall {:.2}×, CPU {:.2}×; coeff / dft: wall {:.2}×",
        line.join(", "),
        best[2].0 / best[1].0,
        best[2].1 / best[1].1,
        best[1].0 / best[0].0,
    );
}

/// The linear backends, as `--linear` names them.
const BACKENDS: [&str; 3] = ["dft", "coeff", "coeff-ew"];

/// Outputs per channel of a conv of `kind` on input extents `dims`.
fn y_len(kind: ConvKind, dims: [usize; 3]) -> usize {
    match kind {
        ConvKind::Transposed => {
            let deep = dims[0] > 1;
            dims.iter().product::<usize>() * if deep { 8 } else { 4 }
        }
        _ => dims.iter().product(),
    }
}

fn bench_linear(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    println!("cpu: {}", bunet_benches::cpu_model());
    let anchors = conv_model(Dims::Two, 64, Quant::q32());
    let unet = conv_model(Dims::Two, 16, Quant::q32());
    interleaved("56x56,c=64to64,k=3x3,q32", (&anchors, 0), [1, 56, 56], 8);
    for backend in BACKENDS {
        bench_layer(
            c,
            backend,
            "56x56,c=64to64,k=3x3,q32",
            (&anchors, 0),
            [1, 56, 56],
        );
    }
    for backend in BACKENDS {
        bench_layer(
            c,
            backend,
            "512x512,c=16to16,k=3x3,q32",
            (&unet, 0),
            [1, 512, 512],
        );
    }
    // The UNet's layer kinds (a depth-1 UNet of 32 features: convs are enc 0–1, bottleneck
    // 2–3, up-conv 4, dec 5–6, head 7; of 16 features in 3D).
    let m32 = conv_model(Dims::Two, 32, Quant::q32());
    let m3 = conv_model(Dims::Three, 16, Quant::q32());
    let kinds: [(&str, (&QuantModel, usize), [usize; 3]); 4] = [
        ("kinds/same3x3,hw=56,c=32to32,q32", (&m32, 1), [1, 56, 56]),
        ("kinds/up2x2,hw=28to56,c=64to32,q32", (&m32, 4), [1, 28, 28]),
        ("kinds/head1x1,hw=56,c=32to2,q32", (&m32, 7), [1, 56, 56]),
        (
            "kinds/same3x3x3,dhw=16,c=16to16,q32",
            (&m3, 1),
            [16, 16, 16],
        ),
    ];
    for (layer, conv, dims) in kinds {
        for backend in BACKENDS {
            bench_layer(c, backend, layer, conv, dims);
        }
    }
}

criterion_group!(benches, bench_linear);
criterion_main!(benches);
