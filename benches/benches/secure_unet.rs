//! One whole secure inference of a small UNet (5 input channels, 4 base features, depth 2,
//! 32×32), client and server as two threads over the in-memory channel, one session serving
//! every iteration (the session's set-up is not timed; each request's offline phase is).
//!
//! Before each benchmark one separate session runs a single inference and prints both
//! parties' per-block reports (wall, CPU, bytes, rounds; CPU is the whole process's, i.e. both
//! parties').

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::prg::Prg;
use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::quant::QuantModel;
use bunet_unet::secure::{Client, Preset, Server, SessionConfig};
use bunet_unet::synthetic::smooth_image;
use bunet_unet::{Tensor, Weights};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::time::Duration;

const SIDE: usize = 32;

fn arch(activation: Activation, pooling: Pooling) -> Architecture {
    Architecture::small(activation, pooling, Dims::Two, 4)
}

/// Runs `client_work` against a server serving `qm` until the client closes.
fn with_session<R: Send>(
    qm: &QuantModel,
    config: SessionConfig,
    client_work: impl FnOnce(&mut Client, &mut Channel) -> R,
) -> (R, String) {
    let (mut cch, mut sch) = Channel::in_memory_pair(ChannelConfig::default());
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            Server::accept(&mut sch, qm, config, Prg::from_os_entropy())
                .expect("accept")
                .serve(&mut sch)
                .expect("serve")
        });
        let mut client =
            Client::connect(&mut cch, qm.plan().arch(), config, Prg::from_os_entropy())
                .expect("connect");
        let r = client_work(&mut client, &mut cch);
        let creport = client.close(&mut cch).expect("close");
        let sreport = server.join().expect("server thread");
        (r, format!("{creport}{sreport}"))
    })
}

fn bench(c: &mut Criterion) {
    println!("{}", bunet_benches::bench_start());
    let mut g = c.benchmark_group("secure_unet");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    for (name, activation, pooling, preset) in [
        (
            "relu-avgrot",
            Activation::Relu,
            Pooling::AvgByRotation,
            Preset::Q32,
        ),
        ("relu-max", Activation::Relu, Pooling::Max, Preset::Q32),
        (
            "square-avglocal",
            Activation::Square,
            Pooling::AvgLocal,
            Preset::Q24,
        ),
    ] {
        let arch = arch(activation, pooling);
        let model = Weights::random_trained_like(&arch, 7)
            .expect("weights")
            .fold();
        let qm = QuantModel::new(&model, preset.quant()).expect("quantize");
        let q = preset.quant();
        let input: Tensor<u64> = q.encode_tensor(&smooth_image(5, [1, SIDE, SIDE], 99));
        let config = SessionConfig::new(preset);
        let (_, reports) = with_session(&qm, config, |client, ch| {
            client.infer(ch, &input).expect("infer")
        });
        println!("secure_unet/{name},preset={preset},hw={SIDE}: one inference\n{reports}");
        g.throughput(Throughput::Elements((SIDE * SIDE) as u64));
        let id = BenchmarkId::new("infer", format!("arch={name},preset={preset},hw={SIDE}"));
        with_session(&qm, config, |client, ch| {
            g.bench_function(id, |b| b.iter(|| client.infer(ch, &input).expect("infer")));
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
