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
