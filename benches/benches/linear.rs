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

use bunet_benches::process_cpu;
use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::pahe::{Params, PublicKey, SecretKey};
use bunet_crypto::prg::Prg;
use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::secure::homconv::{CoeffHomConvClient, CoeffHomConvServer, CoeffLayout, LABEL};
use bunet_unet::secure::{HomConvClient, HomConvServer, Layout};
use bunet_unet::{Quant, QuantModel, Tensor, Weights};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// A model whose first conv is a 3×3 `c → c` conv with trained-like weights.
fn model(c: usize, quant: Quant) -> QuantModel {
    let arch = Architecture {
        in_channels: c,
        base_features: c,
        depth: 1,
        activation: Activation::Relu,
        pooling: Pooling::Max,
        dims: Dims::Two,
        classes: 2,
    };
    let folded = Weights::random_trained_like(&arch, 1)
        .expect("valid architecture")
        .fold();
    QuantModel::new(&folded, quant).expect("quantizes")
}

fn uniform(channels: usize, dims: [usize; 3], p: u64, prg: &mut Prg) -> Tensor<u64> {
    let len = channels * dims.iter().product::<usize>();
    let data = (0..len).map(|_| prg.uniform_below(p)).collect();
    Tensor::from_vec(channels, dims, data).expect("shape")
}

fn add_mod(a: &Tensor<u64>, b: &Tensor<u64>, p: u64) -> Vec<u64> {
    a.data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| (x + y) % p)
        .collect()
}

/// One backend's two sides, behind closures so that both backends share the bench loop.
type Run<'a> = Box<
    dyn Fn(&mut Channel, &mut Channel, &Tensor<u64>, &Tensor<u64>) -> (Tensor<u64>, Tensor<u64>)
        + 'a,
>;

fn bench_layer(c: &mut Criterion, backend: &str, layer: &str, qm: &QuantModel, dims: [usize; 3]) {
    let params = Params::q32();
    let p = params.p();
    let spec = &qm.convs()[0].spec;
    let mut prg = Prg::from_os_entropy();
    let sk = SecretKey::generate(&params, &mut prg);
    let pk = PublicKey::generate(&sk, &mut prg);
    let x_a = uniform(spec.c_in, dims, p, &mut prg);
    let x_b = uniform(spec.c_in, dims, p, &mut prg);
    let start = Instant::now();
    let (run, packing): (Run, String) = if backend == "dft" {
        let layout = Layout::new(&params, spec, dims, None).expect("layout");
        let server = HomConvServer::with_filter_budget(&params, qm, 0, layout.clone(), usize::MAX)
            .expect("server");
        let client = HomConvClient::new(&params, layout.clone()).expect("client");
        let packing = format!(
            "m = {}, r = {}, tile {:?}, {} tiles, {} up / {} down ct",
            layout.dft_len(),
            layout.replicas(),
            layout.tile(),
            layout.tiles(),
            layout.upload_ciphertexts(),
            layout.return_ciphertexts()
        );
        let (sk, pk) = (sk.clone(), pk.clone());
        let run: Run = Box::new(move |s_ch, c_ch, x_a, x_b| {
            std::thread::scope(|s| {
                let bob = s.spawn(|| {
                    server
                        .run(s_ch, &pk, x_b, &mut Prg::from_os_entropy())
                        .expect("server run")
                });
                let y_a = client
                    .run(c_ch, &sk, x_a, &mut Prg::from_os_entropy())
                    .expect("client run");
                (y_a, bob.join().expect("server thread"))
            })
        });
        (run, packing)
    } else {
        let layout = CoeffLayout::new(&params, spec, dims, None).expect("layout");
        let server =
            CoeffHomConvServer::with_kernel_budget(&params, qm, 0, layout.clone(), usize::MAX)
                .expect("server");
        let client = CoeffHomConvClient::new(&params, layout.clone()).expect("client");
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
        let (sk, pk) = (sk.clone(), pk.clone());
        let run: Run = Box::new(move |s_ch, c_ch, x_a, x_b| {
            std::thread::scope(|s| {
                let bob = s.spawn(|| {
                    server
                        .run(s_ch, &pk, x_b, &mut Prg::from_os_entropy())
                        .expect("server run")
                });
                let y_a = client
                    .run(c_ch, &sk, x_a, &mut Prg::from_os_entropy())
                    .expect("client run");
                (y_a, bob.join().expect("server thread"))
            })
        });
        (run, packing)
    };
    let prepare = start.elapsed();
    let (mut s_ch, mut c_ch) = Channel::in_memory_pair(ChannelConfig::default());
    let outputs = spec.c_out * dims.iter().product::<usize>();
    let mut g = c.benchmark_group("linear");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(outputs as u64));
    let (mut runs, mut wall, mut cpu) = (0u64, Duration::ZERO, Duration::ZERO);
    let mut last = None;
    g.bench_function(BenchmarkId::new(backend, layer), |b| {
        b.iter(|| {
            let (start, cpu_start) = (Instant::now(), process_cpu());
            let shares = run(&mut s_ch, &mut c_ch, &x_a, &x_b);
            wall += start.elapsed();
            cpu += process_cpu() - cpu_start;
            runs += 1;
            last = Some(shares);
        })
    });
    g.finish();
    let Some((y_a, y_b)) = last else {
        return;
    };
    let x = Tensor::from_vec(spec.c_in, dims, add_mod(&x_a, &x_b, p)).expect("shape");
    assert_eq!(
        add_mod(&y_a, &y_b, p),
        bunet_unet::fixed::conv(qm, 0, &x).data(),
        "{backend} HomConv output differs from the fixed-point reference"
    );
    let t = c_ch.meter().get(LABEL);
    let (up, down) = (
        t.bytes_sent as f64 / runs as f64 / 1e6,
        t.bytes_received as f64 / runs as f64 / 1e6,
    );
    println!(
        "linear/{backend}/{layer}: {packing}; per run: client → server {up:.2} MB, server → client \
         {down:.2} MB, total {:.2} MB; {:.1} ms/run wall, {:.1} ms/run CPU (both parties, all \
         threads) over {runs} runs; set-up (filters/kernels) {:.0} ms; output checked against \
         fixed::conv",
        up + down,
        wall.as_secs_f64() * 1e3 / runs as f64,
        cpu.as_secs_f64() * 1e3 / runs as f64,
        prepare.as_secs_f64() * 1e3,
    );
}

fn bench_linear(c: &mut Criterion) {
    println!("{}", bunet_benches::backend_banner());
    println!("cpu: {}", bunet_benches::cpu_model());
    let anchors = model(64, Quant::q32());
    let unet = model(16, Quant::q32());
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
