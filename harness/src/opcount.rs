//! Exact operation counts of a secure segmentation, from the quantisation plan the secure driver
//! walks and the HomConv packing both parties derive: multiply-accumulates, nonlinear
//! instances per building block, ciphertexts each way and their bytes. Secure computation does
//! the same work for every input of one shape, so one slice's count times the number of slices
//! is the exact count of a volume; `bunet replay` extrapolates measured time and bytes with it.

use std::collections::BTreeMap;

use bunet_crypto::pahe::Params;
use bunet_unet::secure::homconv::{CoeffLayout, coeff_weight_bits};
use bunet_unet::secure::{HomConvError, Layout, LinearBackend};
use bunet_unet::{ConvKind, Op, QuantPlan};
use serde::Serialize;

/// The building block a plan step is: the secure drivers' own mapping, so that the counted
/// rows and the measured ones of the Fig. 2 breakdown join on the same names.
pub use bunet_unet::secure::block_name;

/// Counts of one building block (or of a sum of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    /// Plan steps.
    pub steps: u64,
    /// Output elements (for a nonlinear block: instances of the secure comparison).
    pub elements: u64,
    /// Multiply-accumulates of convolutions (as [`bunet_unet::Architecture::macs`] counts them).
    pub macs: u64,
    /// Ciphertexts the client uploads (HomConv).
    pub upload_ciphertexts: u64,
    /// Ciphertexts the server returns (HomConv).
    pub return_ciphertexts: u64,
    /// Ciphertext–plaintext products the server computes (HomConv).
    pub ct_pt_products: u64,
    /// Filter plaintexts the server prepares (NTT form, all RNS limbs) and keeps for the
    /// session: one per (output-channel group, input channel) of every HomConv.
    pub prepared_plaintexts: u64,
    /// Encoded ciphertext bytes uploaded (frame headers excluded).
    pub upload_bytes: u64,
    /// Encoded ciphertext bytes returned (frame headers excluded).
    pub return_bytes: u64,
}

impl Count {
    /// Adds another count.
    pub fn add(&mut self, o: &Count) {
        self.steps += o.steps;
        self.elements += o.elements;
        self.macs += o.macs;
        self.upload_ciphertexts += o.upload_ciphertexts;
        self.return_ciphertexts += o.return_ciphertexts;
        self.ct_pt_products += o.ct_pt_products;
        self.prepared_plaintexts += o.prepared_plaintexts;
        self.upload_bytes += o.upload_bytes;
        self.return_bytes += o.return_bytes;
    }

    /// This count `k` times (saturating); prepared filters are made once, so they stay.
    pub fn times(&self, k: u64) -> Count {
        Count {
            steps: self.steps.saturating_mul(k),
            elements: self.elements.saturating_mul(k),
            macs: self.macs.saturating_mul(k),
            upload_ciphertexts: self.upload_ciphertexts.saturating_mul(k),
            return_ciphertexts: self.return_ciphertexts.saturating_mul(k),
            ct_pt_products: self.ct_pt_products.saturating_mul(k),
            prepared_plaintexts: self.prepared_plaintexts,
            upload_bytes: self.upload_bytes.saturating_mul(k),
            return_bytes: self.return_bytes.saturating_mul(k),
        }
    }
}

/// The count of one step of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepCount {
    /// The building block ([`block_name`]).
    pub block: &'static str,
    /// Index of the graph layer.
    pub layer: usize,
    /// Output channels.
    pub channels: usize,
    /// Output extents `[depth, height, width]`.
    pub dims: [usize; 3],
    /// What it costs.
    pub count: Count,
}

/// Exact counts of one secure inference (one slice stack of the given extents).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SliceCount {
    /// Input extents `[1, height, width]`.
    pub dims: [usize; 3],
    /// Every step, in plan order.
    pub steps: Vec<StepCount>,
}

impl SliceCount {
    /// Counts every step of `plan` on an input of extents `dims`, with HomConv packed for
    /// `params` by `linear`'s layout (the one both parties derive) and tiles of at most
    /// `max_tile` outputs per side.
    ///
    /// # Errors
    /// [`HomConvError`] if a conv cannot be packed (3D, or the extents are unsupported).
    pub fn new(
        plan: &QuantPlan,
        params: &Params,
        dims: [usize; 3],
        max_tile: Option<usize>,
        linear: LinearBackend,
    ) -> Result<Self, HomConvError> {
        let arch = plan.arch();
        let convs = arch.convs();
        let up_len = params.seeded_ciphertext_len() as u64;
        let down_len = params.ciphertext_len(params.return_level()) as u64;
        let mut steps = Vec::with_capacity(plan.steps().len());
        for step in plan.steps() {
            let out = plan.tensors()[step.output.0];
            let out_dims = plan.tensor_dims(step.output, dims);
            let elements = (out.channels * out_dims.iter().product::<usize>()) as u64;
            let mut count = Count {
                steps: 1,
                elements,
                ..Count::default()
            };
            if let Op::Conv { conv } = step.op {
                let spec = &convs[conv];
                let in_dims = plan.tensor_dims(step.inputs[0], dims);
                let taps = match spec.kind {
                    ConvKind::Transposed => 1,
                    _ => spec.taps(),
                } as u64;
                count.macs = elements * spec.c_in as u64 * taps;
                match linear {
                    LinearBackend::Dft => {
                        let layout = Layout::new(params, spec, in_dims, max_tile)?;
                        count.upload_ciphertexts = layout.upload_ciphertexts() as u64;
                        count.return_ciphertexts = layout.return_ciphertexts() as u64;
                        count.ct_pt_products =
                            (layout.groups() * spec.c_in * layout.tiles()) as u64;
                        count.prepared_plaintexts = (layout.groups() * spec.c_in) as u64;
                        count.upload_bytes = count.upload_ciphertexts * up_len;
                        count.return_bytes = count.return_ciphertexts * down_len;
                    }
                    LinearBackend::Coeff => {
                        let bits = coeff_weight_bits(conv);
                        let layout = CoeffLayout::new(params, spec, in_dims, max_tile, bits)?;
                        let tiles = layout.tiles() as u64;
                        let (uploads, responses) = (
                            layout.upload_ciphertexts() as u64,
                            layout.responses() as u64,
                        );
                        count.upload_ciphertexts = uploads;
                        count.return_ciphertexts = responses;
                        // Every response sums one product per upload of its tile.
                        count.ct_pt_products = uploads / tiles * responses;
                        count.prepared_plaintexts = uploads / tiles * (responses / tiles);
                        (count.upload_bytes, count.return_bytes) = layout.wire_bytes(params);
                    }
                    LinearBackend::CoeffEw => {
                        // Per run the client multiplies the cached weight ciphertexts by its
                        // share's polynomials and sends the responses; nothing is uploaded
                        // (the set-up, once per layer and session, is not a per-slice count):
                        // the responses travel client → server, and the server prepares no
                        // filters.
                        let layout =
                            CoeffLayout::encrypted_weights(params, spec, in_dims, max_tile)?;
                        let responses = layout.responses() as u64;
                        let shares = layout.upload_ciphertexts() as u64;
                        count.upload_ciphertexts = responses;
                        count.ct_pt_products = shares / layout.tiles() as u64 * responses;
                        (count.upload_bytes, count.return_bytes) = layout.wire_bytes(params);
                    }
                }
            }
            steps.push(StepCount {
                block: block_name(arch, &step.op),
                layer: step.layer,
                channels: out.channels,
                dims: out_dims,
                count,
            });
        }
        Ok(Self { dims, steps })
    }

    /// The counts summed per building block.
    pub fn by_block(&self) -> BTreeMap<&'static str, Count> {
        let mut m: BTreeMap<&'static str, Count> = BTreeMap::new();
        for s in &self.steps {
            m.entry(s.block).or_default().add(&s.count);
        }
        m
    }

    /// The sum over all steps.
    pub fn total(&self) -> Count {
        let mut t = Count::default();
        for s in &self.steps {
            t.add(&s.count);
        }
        t
    }

    /// Bytes of the filter plaintexts the server keeps for a session with these extents
    /// (`N · limbs` words each: exact for the DFT HomConv, an upper bound for the coefficient
    /// one, whose kernels live at the upload level only).
    pub fn server_filter_bytes(&self, params: &Params) -> u64 {
        self.total().prepared_plaintexts * (params.n() * params.max_level() * 8) as u64
    }

    /// The largest HomConv tile cap from `caps` (in order; `None` = uncapped) whose prepared
    /// filters fit in `budget` bytes at input extents `dims`: smaller tiles need fewer
    /// output-channel groups, hence fewer filter plaintexts, at the price of more ciphertexts.
    /// `None` if none fits.
    ///
    /// # Errors
    /// As [`SliceCount::new`].
    pub fn tile_cap_within(
        plan: &QuantPlan,
        params: &Params,
        dims: [usize; 3],
        caps: &[Option<usize>],
        (budget, linear): (u64, LinearBackend),
    ) -> Result<Option<Option<usize>>, HomConvError> {
        for &cap in caps {
            if Self::new(plan, params, dims, cap, linear)?.server_filter_bytes(params) <= budget {
                return Ok(Some(cap));
            }
        }
        Ok(None)
    }

    /// Instances of the secure comparison (ReLU, rescale, max pool, argmax) per slice.
    pub fn nonlinear_elements(&self) -> u64 {
        self.steps
            .iter()
            .filter(|s| matches!(s.block, "relu" | "rescale" | "maxpool" | "argmax"))
            .map(|s| s.count.elements)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bunet_unet::{Architecture, Quant};

    #[test]
    fn seed_slice_counts_agree_with_the_plan_and_architecture() {
        let arch = Architecture::seed();
        let plan = QuantPlan::new(&arch, Quant::q32()).unwrap();
        let params = Params::q32();
        for side in [32usize, 128, 512] {
            let dims = [1, side, side];
            let c = SliceCount::new(&plan, &params, dims, None, LinearBackend::Dft).unwrap();
            let t = c.total();
            assert_eq!(t.macs, arch.macs(dims), "side {side}");
            assert_eq!(c.nonlinear_elements(), plan.nonlinear_elements(dims));
            let blocks = c.by_block();
            // 18 same convs, 4 up-convs, one head; 18 ReLUs; 4 pools; one argmax.
            assert_eq!(blocks["homconv"].steps, 18);
            assert_eq!(blocks["upsample"].steps, 4);
            assert_eq!(blocks["head"].steps, 1);
            assert_eq!(blocks["relu"].steps, 18);
            assert_eq!(blocks["avgpool"].steps, 4);
            assert_eq!(blocks["argmax"].elements, (side * side) as u64);
            // DESIGN.md: 122 activation channels at full resolution equivalent.
            assert_eq!(blocks["relu"].elements, 122 * (side * side) as u64);
            assert!(t.upload_ciphertexts > 0 && t.return_ciphertexts > 0);
            assert!(t.ct_pt_products >= t.return_ciphertexts);
        }
        let small = SliceCount::new(&plan, &params, [1, 64, 64], None, LinearBackend::Dft).unwrap();
        let big = SliceCount::new(&plan, &params, [1, 512, 512], None, LinearBackend::Dft).unwrap();
        // Ciphertexts grow with the image: the first conv (5 input channels) needs one tile of at
        // most 8192 slots per ~90×90 outputs.
        assert_eq!(small.steps[0].count.upload_ciphertexts, 5);
        assert!(big.steps[0].count.upload_ciphertexts >= 5 * (512 * 512 / 8192) as u64);
        assert!(big.total().upload_bytes > small.total().upload_bytes);
        assert_eq!(small.total().times(3).macs, 3 * small.total().macs);
        // Prepared filters: at 512×512 the uncapped layout needs tens of GB on the server;
        // tiles of 30 cut that by more than 4×.
        let gb = |c: &SliceCount| c.server_filter_bytes(&params) as f64 / 1e9;
        let capped =
            SliceCount::new(&plan, &params, [1, 512, 512], Some(30), LinearBackend::Dft).unwrap();
        assert!(
            gb(&big) > 30.0 && gb(&capped) < gb(&big) / 4.0,
            "{} {}",
            gb(&big),
            gb(&capped)
        );
        let caps = [None, Some(62), Some(30), Some(14)];
        let pick = |budget: f64| {
            SliceCount::tile_cap_within(
                &plan,
                &params,
                [1, 512, 512],
                &caps,
                ((budget * 1e9) as u64, LinearBackend::Dft),
            )
            .unwrap()
        };
        assert_eq!(pick(1e3), Some(None));
        assert_eq!(pick(gb(&capped) + 0.1), Some(Some(30)));
        assert_eq!(pick(0.001), None);
    }

    /// The coefficient HomConv's counts are its own layout's, not the DFT one's: fewer bytes
    /// both ways at every size, the first conv's uploads at its 24-bit bound, and every
    /// response's `b` covering exactly the conv's outputs once.
    #[test]
    fn coefficient_counts_follow_the_coefficient_layouts() {
        let arch = Architecture::seed();
        let plan = QuantPlan::new(&arch, Quant::q32()).unwrap();
        let params = Params::q32();
        for side in [64usize, 512] {
            let dims = [1, side, side];
            let dft = SliceCount::new(&plan, &params, dims, None, LinearBackend::Dft).unwrap();
            let coeff = SliceCount::new(&plan, &params, dims, None, LinearBackend::Coeff).unwrap();
            assert_eq!(coeff.total().macs, dft.total().macs);
            assert_eq!(coeff.nonlinear_elements(), dft.nonlinear_elements());
            for block in ["homconv", "upsample", "head"] {
                let (d, c) = (dft.by_block()[block], coeff.by_block()[block]);
                assert!(c.upload_bytes < d.upload_bytes, "{block} at {side}");
                assert!(c.upload_bytes + c.return_bytes < d.upload_bytes + d.return_bytes);
                assert!(c.ct_pt_products >= c.return_ciphertexts);
            }
            let first = &coeff.steps[0];
            let Op::Conv { conv: 0 } = plan.steps()[0].op else {
                panic!("the plan starts with conv 0")
            };
            let spec = &arch.convs()[0];
            let layout = CoeffLayout::new(&params, spec, dims, None, coeff_weight_bits(0)).unwrap();
            assert_eq!(layout.weight_bits(), 24);
            assert_eq!(
                first.count.upload_bytes,
                (layout.upload_ciphertexts() * params.coeff_upload_len(layout.plan().upload_level))
                    as u64
            );
            // `b`: one coefficient per output; the rest of a response is its `a`, the same
            // length in every response of the layer.
            let plan_c = layout.plan();
            let a_len = params.coeff_response_len(
                plan_c.return_level,
                0,
                plan_c.drop_bits,
                plan_c.a_drop_bits,
            ) as u64;
            let b_bits = first.count.return_bytes - a_len * first.count.return_ciphertexts;
            let outputs = first.count.elements;
            assert!(
                b_bits > 0 && b_bits <= outputs * 8,
                "{b_bits} bytes for {outputs} outputs"
            );
        }
    }
}
