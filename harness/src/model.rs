//! The model provider's side of the data: the default weights built into `bunet`, loading other
//! safetensors files, and the CT intensity normalisation the weights were trained with.

use std::path::Path;

use bunet_unet::{Architecture, Model, Weights, WeightsError};

/// The default weights (`weights/unet.safetensors`, trained by `tools/train.py` on synthetic
/// chest CT; held-out float Dice 0.86), built into the binary so that `bunet demo` needs no file.
pub const DEFAULT_WEIGHTS: &[u8] = include_bytes!("../../weights/unet.safetensors");

/// Lower end of the Hounsfield window the weights were trained with.
pub const HU_LO: f32 = -1000.0;
/// Upper end of the Hounsfield window.
pub const HU_HI: f32 = 400.0;

/// The network input of a Hounsfield value, as `tools/train.py` computes it:
/// `(clip(hu, −1000, 400) + 300) / 700`, in `[−1, 1]`. Slices outside the volume are 0 after
/// normalisation (see [`bunet_unet::tensor::stack_slices`]).
pub fn normalise(hu: f32) -> f32 {
    (hu.clamp(HU_LO, HU_HI) + 300.0) / 700.0
}

/// Why weights could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("reading weights {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not weights of a valid UNet.
    #[error("weights {what}: {source}")]
    Invalid {
        /// Which weights (a path or "built-in").
        what: String,
        /// The model crate's error.
        #[source]
        source: bunet_unet::Error,
    },
}

/// Parses safetensors bytes: the architecture comes from the file's `bunet.architecture`
/// metadata, or is the seed's (a plain PyTorch export, as `tools/train.py` writes).
///
/// # Errors
/// [`bunet_unet::Error`] if the bytes are not weights of a valid UNet.
pub fn parse_weights(bytes: &[u8]) -> Result<Weights, bunet_unet::Error> {
    match Weights::from_safetensors(bytes, None) {
        Err(bunet_unet::Error::Weights(WeightsError::MissingArchitecture)) => {
            Weights::from_safetensors(bytes, Some(&Architecture::seed()))
        }
        other => other,
    }
}

/// Loads weights from `path`, or the built-in [`DEFAULT_WEIGHTS`] if `path` is `None`, and
/// folds every BatchNorm.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read, [`Error::Invalid`] if it is not valid weights.
pub fn load(path: Option<&Path>) -> Result<Model, Error> {
    let (bytes, what) = match path {
        Some(p) => (
            std::fs::read(p).map_err(|source| Error::Io {
                path: p.display().to_string(),
                source,
            })?,
            p.display().to_string(),
        ),
        None => (DEFAULT_WEIGHTS.to_vec(), "built-in".to_string()),
    };
    let weights = parse_weights(&bytes).map_err(|source| Error::Invalid { what, source })?;
    Ok(weights.fold())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_maps_the_window_to_minus_one_one() {
        assert_eq!(normalise(-1000.0), -1.0);
        assert_eq!(normalise(-3000.0), -1.0);
        assert_eq!(normalise(400.0), 1.0);
        assert_eq!(normalise(-300.0), 0.0);
    }

    #[test]
    fn default_weights_are_the_seed_architecture() {
        let m = load(None).expect("built-in weights load");
        assert_eq!(*m.arch(), Architecture::seed());
    }

    /// The default weights in fixed point, on the 4 slices with the most lesion of a 64×64
    /// window of held-out volume 9000: the masks agree with float (with the former 8 / 6 weight
    /// fractional bits the whole-volume Dice against float was 0.64 / 0.35), and every tensor
    /// of the plan keeps at least 3 bits of headroom below p/2 (no wrap-around).
    #[test]
    fn default_weights_fixed_point_agrees_with_float() {
        use crate::metrics::Overlap;
        use crate::reference::Reference;
        use crate::synth::{Params, Phantom};
        use crate::volume::{self, CtVolume};
        use bunet_unet::{Op, Quant, QuantModel, fixed};

        let model = load(None).expect("built-in weights load");
        let ph = Phantom::new(Params {
            dims: [128, 128, 48],
            seed: 9000,
        })
        .expect("phantom");
        let (scan, label) = CtVolume::from_phantom(&ph).expect("render");
        let n = 64;
        let (x0, y0) = volume::busiest_window(&label, scan.dims, n, n);
        let nz = scan.dims[2];
        let ct = scan.crop([x0, y0, 0], [n, n, nz]).expect("crop");
        let label = volume::crop_mask(&label, scan.dims, [x0, y0, 0], [n, n, nz]).expect("crop");
        let mut by_lesion: Vec<usize> = (0..nz).collect();
        by_lesion.sort_by_key(|&z| {
            std::cmp::Reverse(
                label[z * n * n..(z + 1) * n * n]
                    .iter()
                    .filter(|&&v| v != 0)
                    .count(),
            )
        });
        let vol = ct.prepare(model.arch()).expect("prepare");
        for (quant, min_dice) in [(Quant::q32(), 0.99), (Quant::q24(), 0.98)] {
            let qm = QuantModel::new(&model, quant).expect("quantise");
            let half = (quant.p - 1) / 2;
            let (mut overlap, mut peak) = (Overlap::default(), 0u64);
            for &z in &by_lesion[..4] {
                let float = Reference::Float(&model).segment_slice(&vol, z).unwrap();
                let stack = vol.stack(z).unwrap();
                let mask = fixed::run(&qm, quant.encode_tensor(&stack), |step, t| {
                    if step.op != Op::Argmax2 {
                        let m = t.data().iter().map(|&v| v.min(quant.p - v)).max();
                        peak = peak.max(m.unwrap_or(0));
                    }
                })
                .unwrap();
                let mask: Vec<u8> = mask.data().iter().map(|&v| v as u8).collect();
                overlap.add(&Overlap::of(&vol.crop(&mask), &vol.crop(&float)));
            }
            assert!(overlap.both > 500, "{quant}: the slices hold lesion");
            assert!(
                overlap.dice() >= min_dice,
                "{quant}: Dice against float {} < {min_dice}",
                overlap.dice()
            );
            assert!(
                peak < half >> 3,
                "{quant}: a tensor reaches {peak}, less than 3 bits below p/2 = {half}"
            );
        }
    }

    #[test]
    fn weights_with_metadata_keep_their_architecture() {
        let arch = Architecture {
            base_features: 4,
            depth: 2,
            ..Architecture::seed()
        };
        let bytes = Weights::random_trained_like(&arch, 3)
            .expect("valid arch")
            .to_safetensors()
            .expect("serialise");
        assert_eq!(parse_weights(&bytes).expect("parse").arch, arch);
        assert!(parse_weights(b"not safetensors").is_err());
    }
}
