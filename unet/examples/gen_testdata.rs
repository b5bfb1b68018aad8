//! Regenerates `unet/testdata/`:
//!
//! ```text
//! cargo run -p bunet-unet --release --example gen_testdata
//! ```
//!
//! - `tiny_relu_avg.safetensors`: trained-like weights (seed 42) of a tiny UNet (5 input
//!   channels, base 2, depth 2, ReLU, local average pool, 2D), with the q32 description as
//!   quantization metadata;
//! - `tiny_case.safetensors`: a 16×16 smooth input (`input`, F32 [5, 1, 16, 16]), its q32
//!   fixed-point mask (`mask_q32`, U8 [1, 16, 16]) and, as metadata `steps_fnv1a64_q32`, the
//!   FNV-1a-64 of every plan step's output (u64 little-endian, in step order).

use std::collections::HashMap;

use bunet_unet::arch::{Activation, Architecture, Dims, Pooling, fnv1a64};
use bunet_unet::quant::{Quant, QuantModel};
use bunet_unet::synthetic::smooth_image;
use bunet_unet::{Weights, fixed};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
    std::fs::create_dir_all(dir)?;
    let arch = Architecture::small(Activation::Relu, Pooling::AvgLocal, Dims::Two, 2);
    let mut weights = Weights::random_trained_like(&arch, 42)?;
    weights.metadata.quantization = Some(Quant::q32().to_string());
    std::fs::write(
        format!("{dir}/tiny_relu_avg.safetensors"),
        weights.to_safetensors()?,
    )?;

    let input = smooth_image(5, [1, 16, 16], 2024);
    let qm = QuantModel::new(&weights.fold(), Quant::q32())?;
    let mut bytes = Vec::new();
    let mask = fixed::run(&qm, Quant::q32().encode_tensor(&input), |_, t| {
        for v in t.data() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    })?;
    let input_bytes: Vec<u8> = input.data().iter().flat_map(|v| v.to_le_bytes()).collect();
    let mask_bytes: Vec<u8> = mask.data().iter().map(|&v| v as u8).collect();
    let mut meta = HashMap::new();
    meta.insert("steps_fnv1a64_q32".to_string(), fnv1a64(&bytes).to_string());
    meta.insert("architecture".to_string(), arch.to_string());
    let tensors = vec![
        (
            "input".to_string(),
            TensorView::new(Dtype::F32, vec![5, 1, 16, 16], &input_bytes)?,
        ),
        (
            "mask_q32".to_string(),
            TensorView::new(Dtype::U8, vec![1, 16, 16], &mask_bytes)?,
        ),
    ];
    std::fs::write(
        format!("{dir}/tiny_case.safetensors"),
        safetensors::serialize(tensors, Some(meta))?,
    )?;
    println!("wrote {dir}/tiny_relu_avg.safetensors and {dir}/tiny_case.safetensors");
    Ok(())
}
