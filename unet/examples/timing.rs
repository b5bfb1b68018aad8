//! Quick timing of the references at the seed architecture, and the Dice of the q32 / q24 masks
//! against the float mask (as the seed's Table 1 reports them):
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
    let fmask = float::segment(&model, input.clone())?;
    for (name, quant) in [("q32", Quant::q32()), ("q24", Quant::q24())] {
        let qmask = fixed::segment(&QuantModel::new(&model, quant)?, &input)?;
        let (mut both, mut total) = (0usize, 0usize);
        for (&a, &b) in fmask.data().iter().zip(qmask.data()) {
            both += usize::from(a == 1 && b == 1);
            total += usize::from(a == 1) + usize::from(b == 1);
        }
        let same = fmask
            .data()
            .iter()
            .zip(qmask.data())
            .filter(|(a, b)| a == b)
            .count();
        println!(
            "{name}: Dice against float {:.4}, pixel agreement {:.4}",
            2.0 * both as f64 / total.max(1) as f64,
            same as f64 / fmask.data().len() as f64
        );
    }
    Ok(())
}
