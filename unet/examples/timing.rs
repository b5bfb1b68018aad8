//! Quick timing of the references at the seed architecture:
//! `cargo run -p bunet-unet --release --example timing -- 128`.
use std::time::Instant;

use bunet_unet::quant::{Quant, QuantModel};
use bunet_unet::synthetic::smooth_image;
use bunet_unet::{Architecture, Weights, fixed, float};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let side: usize = std::env::args().nth(1).map_or(Ok(128), |s| s.parse())?;
    let arch = Architecture::seed();
    let model = Weights::random_trained_like(&arch, 1)?.fold();
    let qm = QuantModel::new(&model, Quant::q32())?;
    let input = smooth_image(5, [1, side, side], 2);
    let gmac = arch.macs([1, side, side]) as f64 / 1e9;
    for _ in 0..2 {
        let t = Instant::now();
        float::segment(&model, input.clone())?;
        let f = t.elapsed().as_secs_f64();
        let t = Instant::now();
        fixed::segment(&qm, &input)?;
        let q = t.elapsed().as_secs_f64();
        println!(
            "{side}x{side}: float {f:.3} s ({:.1} GMAC/s), fixed {q:.3} s ({:.1} GMAC/s)",
            gmac / f,
            gmac / q
        );
    }
    Ok(())
}
