//! Safetensors weights: round trips, PyTorch exports, validation of every malformation, and the
//! frozen test data in `unet/testdata` (regenerate with
//! `cargo run -p bunet-unet --release --example gen_testdata`).

use std::collections::HashMap;

use bunet_unet::arch::{Activation, Architecture, Dims, Pooling};
use bunet_unet::quant::{Quant, QuantModel};
use bunet_unet::weights::{META_ARCHITECTURE, META_TRAINING_SEED};
use bunet_unet::{Error, Tensor, Weights, WeightsError, fixed};
use proptest::prelude::*;
use safetensors::{Dtype, SafeTensors};

fn tiny() -> Architecture {
    Architecture::small(Activation::Relu, Pooling::AvgLocal, Dims::Two, 2)
}

/// Re-serialises the tensors of `bytes`, letting `edit` change the list and the metadata.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>, &mut HashMap<String, String>),
) -> Vec<u8> {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap_or_default();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors, &mut meta);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, Some(meta)).unwrap()
}

fn weights_error(r: Result<Weights, Error>) -> WeightsError {
    match r {
        Err(Error::Weights(e)) => e,
        other => panic!("expected a weights error, got {other:?}"),
    }
}

#[test]
fn round_trip_keeps_everything() {
    let mut w = Weights::random_trained_like(&tiny(), 9).unwrap();
    w.metadata.quantization = Some(Quant::q32().to_string());
    let bytes = w.to_safetensors().unwrap();
    let back = Weights::from_safetensors(&bytes, None).unwrap();
    assert_eq!(back, w);
    let back = Weights::from_safetensors(&bytes, Some(&tiny())).unwrap();
    assert_eq!(back, w);
    // The names are PyTorch's.
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names = st.names();
    names.sort_unstable();
    for n in [
        "encoder1.enc1conv1.weight",
        "encoder1.enc1norm1.running_var",
        "bottleneck.bottleneckconv2.weight",
        "upconv2.bias",
        "decoder1.dec1norm2.bias",
        "conv.weight",
        "conv.bias",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert_eq!(st.tensor("upconv1.weight").unwrap().shape(), &[4, 2, 2, 2]);
}

#[test]
fn pytorch_export_without_metadata_loads_with_a_given_architecture() {
    let w = Weights::random_trained_like(&tiny(), 2).unwrap();
    let bytes = rewrite(&w.to_safetensors().unwrap(), |tensors, meta| {
        meta.clear();
        tensors.push((
            "encoder1.enc1norm1.num_batches_tracked".into(),
            Dtype::I64,
            vec![],
            7i64.to_le_bytes().to_vec(),
        ));
    });
    assert_eq!(
        weights_error(Weights::from_safetensors(&bytes, None)),
        WeightsError::MissingArchitecture
    );
    let back = Weights::from_safetensors(&bytes, Some(&tiny())).unwrap();
    assert_eq!(back.convs, w.convs);
    assert_eq!(back.metadata.training_seed, None);
    // F64 tensors are accepted too.
    let bytes64 = rewrite(&w.to_safetensors().unwrap(), |tensors, _| {
        for t in tensors.iter_mut() {
            t.1 = Dtype::F64;
            t.3 = t
                .3
                .chunks_exact(4)
                .flat_map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())).to_le_bytes())
                .collect();
        }
    });
    assert_eq!(
        Weights::from_safetensors(&bytes64, None).unwrap().convs,
        w.convs
    );
}

#[test]
fn malformed_files_are_typed_errors() {
    let w = Weights::random_trained_like(&tiny(), 2).unwrap();
    let good = w.to_safetensors().unwrap();
    let other = Architecture {
        base_features: 3,
        ..tiny()
    };
    assert!(matches!(
        weights_error(Weights::from_safetensors(&good, Some(&other))),
        WeightsError::ArchitectureMismatch { .. }
    ));
    type Expect = fn(&WeightsError) -> bool;
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        (
            rewrite(&good, |t, _| {
                t.retain(|x| x.0 != "decoder2.dec2norm1.running_mean")
            }),
            |e| matches!(e, WeightsError::MissingTensor(n) if n == "decoder2.dec2norm1.running_mean"),
        ),
        (
            rewrite(&good, |t, _| {
                t.push(("extra.weight".into(), Dtype::F32, vec![1], vec![0; 4]))
            }),
            |e| matches!(e, WeightsError::UnexpectedTensor(n) if n == "extra.weight"),
        ),
        (
            rewrite(&good, |t, _| {
                let x = t
                    .iter_mut()
                    .find(|x| x.0 == "encoder1.enc1conv1.weight")
                    .unwrap();
                x.2 = vec![2, 5, 3, 1];
                x.3.truncate(2 * 5 * 3 * 4);
            }),
            |e| matches!(e, WeightsError::ShapeMismatch { .. }),
        ),
        (
            rewrite(&good, |t, _| {
                let x = t.iter_mut().find(|x| x.0 == "conv.bias").unwrap();
                x.1 = Dtype::F16;
                x.3.truncate(4);
            }),
            |e| matches!(e, WeightsError::Dtype { .. }),
        ),
        (
            rewrite(&good, |t, _| {
                let x = t.iter_mut().find(|x| x.0 == "upconv1.bias").unwrap();
                x.3[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
            }),
            |e| matches!(e, WeightsError::InvalidValue { index: 1, .. }),
        ),
        (
            rewrite(&good, |t, _| {
                let x = t
                    .iter_mut()
                    .find(|x| x.0 == "encoder2.enc2norm2.running_var")
                    .unwrap();
                x.3[0..4].copy_from_slice(&(-1.0f32).to_le_bytes());
            }),
            |e| matches!(e, WeightsError::InvalidValue { index: 0, .. }),
        ),
        (
            rewrite(&good, |_, m| {
                m.insert(META_TRAINING_SEED.into(), "forty-two".into());
            }),
            |e| matches!(e, WeightsError::Metadata { .. }),
        ),
        (good[..good.len() - 1].to_vec(), |e| {
            matches!(e, WeightsError::Format(_))
        }),
        (b"\xff\xff\xff\xff\xff\xff\xff\xff{}".to_vec(), |e| {
            matches!(e, WeightsError::Format(_))
        }),
    ];
    for (i, (bytes, ok)) in cases.into_iter().enumerate() {
        let e = weights_error(Weights::from_safetensors(&bytes, None));
        assert!(ok(&e), "case {i}: unexpected error {e}");
    }
    // An invalid architecture description is an architecture error.
    let bad_arch = rewrite(&good, |_, m| {
        m.insert(META_ARCHITECTURE.into(), "unet-v1 dims=2".into());
    });
    assert!(matches!(
        Weights::from_safetensors(&bad_arch, None),
        Err(Error::Architecture(_))
    ));
}

#[test]
fn no_truncation_or_bit_flip_panics() {
    let good = Weights::random_trained_like(&tiny(), 2)
        .unwrap()
        .to_safetensors()
        .unwrap();
    for len in (0..good.len()).step_by(7) {
        assert!(Weights::from_safetensors(&good[..len], Some(&tiny())).is_err());
    }
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut seed = 0x1234_5678u64;
    for _ in 0..2000 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pos = (seed >> 33) as usize % header_end.min(good.len());
        let bit = (seed >> 20) % 8;
        let mut b = good.clone();
        b[pos] ^= 1 << bit;
        // Either a typed error or a file that still validates; never a panic.
        let _ = Weights::from_safetensors(&b, Some(&tiny()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn decode_of_encode_is_identity(
        in_channels in 1usize..6,
        base in 1usize..4,
        depth in 1usize..4,
        square in any::<bool>(),
        pool in 0u8..3,
        three in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let arch = Architecture {
            in_channels,
            base_features: base,
            depth,
            activation: if square { Activation::Square } else { Activation::Relu },
            pooling: [Pooling::AvgByRotation, Pooling::AvgLocal, Pooling::Max][pool as usize],
            dims: if three { Dims::Three } else { Dims::Two },
            classes: 2,
        };
        let w = Weights::random_trained_like(&arch, seed).unwrap();
        let back = Weights::from_safetensors(&w.to_safetensors().unwrap(), None).unwrap();
        prop_assert_eq!(back, w);
    }
}

fn testdata(name: &str) -> Vec<u8> {
    let path = format!("{}/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Frozen known answers of the fixed-point semantics: the committed model and input must give
/// the committed q32 mask and every step's output must hash to the committed value. A change
/// here changes what the secure protocol has to reproduce.
#[test]
fn frozen_testdata_reproduces() {
    let weights = Weights::from_safetensors(&testdata("tiny_relu_avg.safetensors"), None).unwrap();
    assert_eq!(weights.arch, tiny());
    assert_eq!(weights.metadata.training_seed, Some(42));
    // The generator still produces the committed weights (up to libm's last bits).
    let regen = Weights::random_trained_like(&tiny(), 42).unwrap();
    for (a, b) in weights.convs.iter().zip(&regen.convs) {
        for (x, y) in a.weight.iter().zip(&b.weight) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + x.abs()), "{}", a.spec.name);
        }
    }
    let case = testdata("tiny_case.safetensors");
    let st = SafeTensors::deserialize(&case).unwrap();
    let read_f32 = |name: &str| -> Vec<f32> {
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let input = Tensor::from_vec(5, [1, 16, 16], read_f32("input")).unwrap();
    let want_mask = st.tensor("mask_q32").unwrap().data().to_vec();
    let (_, header) = SafeTensors::read_metadata(&case).unwrap();
    let want_hash: u64 = header.metadata().as_ref().unwrap()["steps_fnv1a64_q32"]
        .parse()
        .unwrap();
    // The answers were frozen with the q32 modulus and 8 weight fractional bits (the q32 preset
    // until its weights got 12); they pin the semantics, so the configuration stays frozen too.
    let frozen = Quant {
        weight_frac_bits: 8,
        ..Quant::q32()
    };
    let qm = QuantModel::new(&weights.fold(), frozen).unwrap();
    let mut bytes = Vec::new();
    let mask = fixed::run(&qm, frozen.encode_tensor(&input), |_, t| {
        for v in t.data() {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    })
    .unwrap();
    let mask: Vec<u8> = mask.data().iter().map(|&v| v as u8).collect();
    assert_eq!(mask, want_mask);
    assert_eq!(bunet_unet::arch::fnv1a64(&bytes), want_hash);
}

#[test]
fn hand_built_inconsistent_weights_do_not_serialise() {
    let mut w = Weights::random_trained_like(&tiny(), 2).unwrap();
    w.convs[3].weight.pop();
    assert!(matches!(
        w.to_safetensors(),
        Err(WeightsError::ShapeMismatch { .. })
    ));
    let mut w = Weights::random_trained_like(&tiny(), 2).unwrap();
    w.convs[0].norm = None;
    assert!(matches!(
        w.to_safetensors(),
        Err(WeightsError::MissingTensor(_))
    ));
    let mut w = Weights::random_trained_like(&tiny(), 2).unwrap();
    w.convs.pop();
    assert!(w.check().is_err());
}

#[test]
fn metadata_describes_the_model_and_survives_a_round_trip() {
    use bunet_unet::weights::{Head, InputNorm, META_HEAD, META_INPUT, META_SPACING};
    let mut w = Weights::random_trained_like(&tiny(), 4).unwrap();
    // Written by default: the seed's normalisation, two named classes, the softmax head.
    let bytes = w.to_safetensors().unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!(
        meta[META_INPUT],
        "hu-window lo=-1000 hi=400 centre=-300 scale=700"
    );
    assert_eq!(meta[META_HEAD], "softmax2");
    w.metadata.input = InputNorm {
        lo: -1200.0,
        hi: 600.0,
        centre: -300.0,
        scale: 4.0,
    };
    w.metadata.spacing = Some([0.75, 0.75, 1.5]);
    w.metadata.head = Head::Sigmoid1;
    w.metadata.classes = vec!["background".into(), "tumour".into()];
    let back = Weights::from_safetensors(&w.to_safetensors().unwrap(), None).unwrap();
    assert_eq!(back.metadata, w.metadata);
    assert_eq!(back.fold().metadata(), &w.metadata);
    // A value that does not parse is refused, naming its key.
    for (key, value) in [
        (META_INPUT, "hu-window lo=400 hi=-1000 centre=0 scale=1"),
        (META_INPUT, "window lo=-1 hi=1 centre=0 scale=1"),
        (META_SPACING, "1,1"),
        (META_SPACING, "1,-1,1"),
        (META_HEAD, "softmax3"),
    ] {
        let bad = rewrite(&bytes, |_, meta| {
            meta.insert(key.into(), value.into());
        });
        assert!(
            matches!(
                weights_error(Weights::from_safetensors(&bad, None)),
                WeightsError::Metadata { key: k, .. } if k == key
            ),
            "{key} = {value}"
        );
    }
}

/// Max-pool weights are never run as an average-pool UNet: not when the file says so in the
/// `bunet.architecture` key, nor when only the legacy `pool` key of older tools/train.py files
/// says so and `--arch` claims average pooling.
#[test]
fn wrong_pooling_is_refused_by_the_loader() {
    let max = Architecture {
        pooling: Pooling::Max,
        ..tiny()
    };
    let bytes = Weights::random_trained_like(&max, 6)
        .unwrap()
        .to_safetensors()
        .unwrap();
    assert!(matches!(
        weights_error(Weights::from_safetensors(&bytes, Some(&tiny()))),
        WeightsError::ArchitectureMismatch { .. }
    ));
    let legacy = rewrite(&bytes, |_, meta| {
        meta.clear();
        meta.insert("pool".into(), "max".into());
        meta.insert("architecture".into(), "unet2d-mateuszbuda-2.5d".into());
    });
    assert_eq!(
        weights_error(Weights::from_safetensors(&legacy, None)),
        WeightsError::MissingArchitecture
    );
    assert!(matches!(
        weights_error(Weights::from_safetensors(&legacy, Some(&tiny()))),
        WeightsError::ArchitectureMismatch { .. }
    ));
    assert!(Weights::from_safetensors(&legacy, Some(&max)).is_ok());
    // The legacy feature count is checked too.
    let legacy_base = rewrite(&legacy, |_, meta| {
        meta.insert("init_features".into(), "16".into());
    });
    assert!(Weights::from_safetensors(&legacy_base, Some(&max)).is_err());
}
