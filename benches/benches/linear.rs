//! The two linear backends side by side, IDs `linear/<backend>/<layer>`: the seed's DFT HomConv
//! (`HomConvClient` ∥ `HomConvServer`) and the coefficient-encoded one (`CoeffHomConvClient` ∥
//! `CoeffHomConvServer`), at the real `q32` preset, two parties as two threads over
//! `Channel::in_memory_pair` sharing the process's rayon pool.
//!
//! Layers: the ANCHORS.md case (56×56, 64 → 64, 3×3; Cheetah: 650 ms, 6.97 MB) and a UNet-sized
//! layer (512×512, 16 → 16, 3×3). Filters / kernels are prepared once ahead (timed and printed
//! apart). After each bench a line gives the bytes per direction per run, wall and process CPU
//! time per run (both parties), and the last run's output is checked bit for bit against
//! `fixed::conv`. Run with `cargo bench -p bunet-benches --bench linear`.

use std::time::{Duration, Instant};

use bunet_benches::{Tally, check_conv0, conv_model, two_parties, uniform_share};
use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::pahe::{Params, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_unet::arch::Dims;
use bunet_unet::secure::homconv::{
    CoeffHomConvClient, CoeffHomConvServer, CoeffLayout, LABEL, LinearClient, LinearServer,
};
use bunet_unet::secure::{HomConvClient, HomConvServer, Layout};
use bunet_unet::{Quant, QuantModel};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Both sides of conv 0 of `qm` on extents `dims` under `backend` (`dft` or `coeff`), every
/// filter prepared ahead, and a line describing the packing.
fn sides<'m>(
    params: &Params,
    qm: &'m QuantModel,
    dims: [usize; 3],
    backend: &str,
) -> (LinearClient, LinearServer<'m>, String) {
    let spec = &qm.convs()[0].spec;
    if backend == "dft" {
        let layout = Layout::new(params, spec, dims, None).expect("layout");
        let server = HomConvServer::with_filter_budget(params, qm, 0, layout.clone(), usize::MAX)
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
    } else {
        let layout = CoeffLayout::new(params, spec, dims, None).expect("layout");
        let server =
            CoeffHomConvServer::with_kernel_budget(params, qm, 0, layout.clone(), usize::MAX)
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

fn bench_layer(c: &mut Criterion, backend: &str, layer: &str, qm: &QuantModel, dims: [usize; 3]) {
    let params = Params::q32();
    let p = params.p();
    let spec = &qm.convs()[0].spec;
    let mut prg = Prg::from_os_entropy();
    let sk = SecretKey::generate(&params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let x_a = uniform_share(spec.c_in, dims, p, &mut prg);
    let x_b = uniform_share(spec.c_in, dims, p, &mut prg);
    let start = Instant::now();
    let (client, server, packing) = sides(&params, qm, dims, backend);
    let prepare = start.elapsed();
    let (mut s_ch, mut c_ch) = Channel::in_memory_pair(ChannelConfig::default());
    let outputs = spec.c_out * dims.iter().product::<usize>();
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
    check_conv0(qm, (&x_a, &x_b), (&y_a, &y_b), backend);
    let t = c_ch.meter().get(LABEL);
    let (up, down) = (
        t.bytes_sent as f64 / tally.runs as f64 / 1e6,
        t.bytes_received as f64 / tally.runs as f64 / 1e6,
    );
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

fn bench_linear(c: &mut Criterion) {
    println!("{}", bunet_benches::backend_banner());
    println!("cpu: {}", bunet_benches::cpu_model());
    let anchors = conv_model(Dims::Two, 64, Quant::q32());
    let unet = conv_model(Dims::Two, 16, Quant::q32());
    for backend in ["dft", "coeff"] {
        bench_layer(
            c,
            backend,
            "56x56,c=64to64,k=3x3,q32",
            &anchors,
            [1, 56, 56],
        );
    }
    for backend in ["dft", "coeff"] {
        bench_layer(
            c,
            backend,
            "512x512,c=16to16,k=3x3,q32",
            &unet,
            [1, 512, 512],
        );
    }
}

criterion_group!(benches, bench_linear);
criterion_main!(benches);
