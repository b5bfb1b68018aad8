//! Set-up shared by the secure-UNet integration tests (each test file includes this module and
//! uses what it needs).
#![allow(dead_code)]

use std::thread;

use bunet_crypto::channel::{Channel, ChannelConfig};
use bunet_crypto::prg::Prg;
use bunet_unet::Weights;
use bunet_unet::arch::Architecture;
use bunet_unet::quant::QuantModel;
use bunet_unet::secure::{Client, Preset, Report, SecureError, Server, SessionConfig};

/// Two ends of a loopback TCP connection.
pub fn tcp_pair() -> (Channel, Channel) {
    Channel::loopback_pair(ChannelConfig::default()).unwrap()
}

/// Random trained-like weights for `arch` (from `seed`), folded and quantised for `preset`.
pub fn model(arch: &Architecture, preset: Preset, seed: u64) -> QuantModel {
    let folded = Weights::random_trained_like(arch, seed).unwrap().fold();
    QuantModel::new(&folded, preset.quant()).unwrap()
}

/// Runs `client_side` with a client connected to a server of `qm` that serves on its own
/// thread over `channels` (client end first); `client_side` owns the client's channel, so a
/// test can make the client vanish by dropping it. Returns what `client_side` returned and how
/// the server's session ended.
pub fn against_server<T>(
    (mut cch, mut sch): (Channel, Channel),
    qm: &QuantModel,
    config: SessionConfig,
    client_side: impl FnOnce(Client, Channel) -> T,
) -> (T, Result<Report, SecureError>) {
    let arch = *qm.plan().arch();
    thread::scope(|s| {
        let server = s.spawn(|| {
            Server::accept(&mut sch, qm, config, Prg::from_os_entropy())
                .unwrap()
                .serve(&mut sch)
        });
        let client = Client::connect(&mut cch, &arch, config, Prg::from_os_entropy()).unwrap();
        let out = client_side(client, cch);
        (out, server.join().unwrap())
    })
}
