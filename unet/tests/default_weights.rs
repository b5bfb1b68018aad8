//! The default weights shipped in `weights/unet.safetensors` (trained by `python3 tools/train.py`,
//! see tools/README.md) load into the seed architecture, fold, and segment: a lesion-free input
//! gives an almost empty mask and a bright blob in dark "lung" gives a non-empty one.

use bunet_unet::arch::Architecture;
use bunet_unet::{Tensor, Weights, float};

const WEIGHTS: &[u8] = include_bytes!("../../weights/unet.safetensors");

/// Normalised intensity of a Hounsfield value, as the shipped file's `bunet.input` says.
fn normalise(hu: f32) -> f32 {
    Weights::from_safetensors(WEIGHTS, None)
        .expect("shipped weights load")
        .metadata
        .input
        .apply(hu)
}

fn lesion_pixels(mask: &Tensor<u8>) -> usize {
    mask.data().iter().filter(|&&v| v == 1).count()
}

#[test]
fn default_weights_load_into_the_seed_architecture_and_segment() {
    let arch = Architecture::seed();
    let weights = Weights::from_safetensors(WEIGHTS, Some(&arch)).expect("shipped weights load");
    let model = weights.fold();
    let side = 64;
    // Lung parenchyma (-850 HU) everywhere, in all five slices of the 2.5D input.
    let lung = vec![normalise(-850.0); 5 * side * side];
    let clear = Tensor::from_vec(5, [1, side, side], lung.clone()).unwrap();
    let clear_mask = float::segment(&model, clear).unwrap();
    // The same with a ground-glass blob (-600 HU, radius 8) in the middle of every slice.
    let mut blob = lung;
    for c in 0..5 {
        for y in 0..side {
            for x in 0..side {
                let (dy, dx) = (y as f32 - 32.0, x as f32 - 32.0);
                if dy * dy + dx * dx <= 64.0 {
                    blob[(c * side + y) * side + x] = normalise(-600.0);
                }
            }
        }
    }
    let blob_mask =
        float::segment(&model, Tensor::from_vec(5, [1, side, side], blob).unwrap()).unwrap();
    eprintln!(
        "lesion pixels: clear {}, blob {}",
        lesion_pixels(&clear_mask),
        lesion_pixels(&blob_mask)
    );
    assert!(
        lesion_pixels(&clear_mask) < side * side / 50,
        "clear lung segmented as lesion"
    );
    assert!(
        lesion_pixels(&blob_mask) > lesion_pixels(&clear_mask),
        "the blob is not segmented"
    );
}
