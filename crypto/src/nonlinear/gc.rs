//! The garbled-circuit backend: Alice garbles, Bob evaluates, Bob's labels by IKNP correlated
//! OT under the garbler's Δ.

use zeroize::Zeroizing;

use super::{Backend, Block, Config, Nonlinear, NonlinearError, Role, SETUP_LABEL};
use crate::Error;
use crate::channel::Channel;
use crate::gc::fixed_point::{Gadget, Op};
use crate::gc::{Delta, Evaluator, Garbler, GcError};
use crate::ot::{Receiver, Sender};
use crate::prg::Prg;

/// One party's state.
#[allow(clippy::large_enum_variant)] // one per session, never moved in a hot loop
enum Side {
    Alice {
        garbler: Garbler,
        ot: Sender,
        prg: Prg,
    },
    Bob {
        evaluator: Evaluator,
        ot: Receiver,
    },
}

/// A session of the [`Backend::Gc`] backend: Alice holds the garbler and the IKNP sender under
/// one Δ (lsb 1, drawn once from her [`Prg`]); Bob holds the evaluator and the IKNP receiver.
///
/// Per chunk of a call: Bob's input bits ([`Gadget::evaluator_bits`]) go through correlated OT
/// (Bob → Alice: the IKNP columns), Alice's zero-messages `q_i` become the zero labels of Bob's
/// input wires, Alice draws fresh masks `r` and streams the garbled chunk (Alice → Bob), Bob
/// evaluates; for argmax Bob returns the output colour bits. Two flights per chunk (three for
/// argmax).
///
/// # Security
/// See [the module documentation](super). Δ, labels and masks are erased on drop; `Debug`
/// prints only the role and configuration.
pub struct GcSession {
    config: Config,
    side: Side,
    /// Compiled circuits by (op, shift), built on first use.
    gadgets: Vec<Gadget>,
}

impl std::fmt::Debug for GcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcSession")
            .field("role", &self.role())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GcSession {
    /// Sets up the session: Δ and 128 base OTs for the IKNP session (Alice is the OT sender).
    /// The peer calls this with the other role and the same `config`. Traffic is counted under
    /// [`SETUP_LABEL`].
    ///
    /// # Errors
    /// Channel and wire errors of the base OTs.
    pub fn setup(
        ch: &mut Channel,
        role: Role,
        config: Config,
        mut prg: Prg,
    ) -> Result<Self, Error> {
        let previous = ch.set_label(SETUP_LABEL);
        let side = match role {
            Role::Alice => {
                let delta = Delta::random(&mut prg);
                let ot = Sender::setup(ch, delta.expose(), &mut prg);
                let garbler = Garbler::with_prg(delta, Prg::from_seed(prg.next_seed()));
                ot.map(|ot| Side::Alice { garbler, ot, prg })
            }
            Role::Bob => Receiver::setup(ch, &mut prg).map(|ot| Side::Bob {
                evaluator: Evaluator::new(),
                ot,
            }),
        };
        ch.set_label(previous);
        Ok(Self {
            config,
            side: side?,
            gadgets: Vec::new(),
        })
    }

    /// The circuit of `op` at `shift`, compiled once per session.
    fn gadget(
        gadgets: &mut Vec<Gadget>,
        config: &Config,
        op: Op,
        shift: u32,
    ) -> Result<usize, Error> {
        let params = config.params(shift)?;
        if let Some(i) = gadgets
            .iter()
            .position(|g| g.op() == op && *g.params() == params)
        {
            return Ok(i);
        }
        gadgets.push(Gadget::new(params, op));
        Ok(gadgets.len() - 1)
    }

    /// Runs `op` on `inputs` (`op.values()` shares per instance) chunk by chunk; returns Alice's
    /// masks (or argmax bits) and Bob's output shares (or nothing for argmax).
    fn run(
        &mut self,
        ch: &mut Channel,
        block: Block,
        op: Op,
        shift: u32,
        inputs: &[u64],
    ) -> Result<Vec<u64>, Error> {
        let values = op.values();
        if !inputs.len().is_multiple_of(values) {
            return Err(NonlinearError::InputLength {
                what: block.name(),
                values,
                found: inputs.len(),
            }
            .into());
        }
        let p = self.config.p;
        // Checked before any traffic, so that a bad input never leaves the peer mid-call.
        if let Some(&value) = inputs.iter().find(|&&x| x >= p) {
            return Err(GcError::ValueOutOfRange { value, p }.into());
        }
        let g = Self::gadget(&mut self.gadgets, &self.config, op, shift)?;
        let gadget = &self.gadgets[g];
        let previous = ch.label();
        let mut out = Vec::with_capacity(inputs.len() / values);
        let mut result = Ok(());
        for chunk in inputs.chunks(self.config.chunk * values) {
            result = run_chunk(&mut self.side, ch, block, gadget, chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        ch.set_label(previous);
        result.map(|()| out)
    }
}

/// One chunk of `m = chunk.len() / values` instances; appends this party's outputs to `out`.
fn run_chunk(
    side: &mut Side,
    ch: &mut Channel,
    block: Block,
    gadget: &Gadget,
    chunk: &[u64],
    out: &mut Vec<u64>,
) -> Result<(), Error> {
    let op = gadget.op();
    let p = gadget.params().p;
    let m = chunk.len() / op.values();
    let circuit = gadget.circuit();
    match side {
        Side::Alice { garbler, ot, prg } => {
            let mut zero = Zeroizing::new(vec![0u128; m * circuit.n_evaluator_inputs()]);
            ch.set_label(block.ot_label());
            ot.send_correlated(ch, &mut zero)?;
            let mut r = Zeroizing::new(vec![0u64; if op.reshares() { m } else { 0 }]);
            prg.fill_uniform_below(&mut r[..], p);
            let bits = Zeroizing::new(gadget.garbler_bits(m, chunk, &r)?);
            ch.set_label(block.gc_label());
            let decoded = garbler.garble(ch, circuit, m, &bits, &zero)?;
            if op.reshares() {
                out.extend_from_slice(&r);
            } else {
                out.extend(gadget.decode(&decoded));
            }
        }
        Side::Bob { evaluator, ot } => {
            let bits = Zeroizing::new(gadget.evaluator_bits(m, chunk)?);
            let mut labels = Zeroizing::new(vec![0u128; bits.len()]);
            ch.set_label(block.ot_label());
            ot.receive_correlated(ch, &bits, &mut labels)?;
            ch.set_label(block.gc_label());
            let decoded = evaluator.evaluate(ch, circuit, m, &labels)?;
            let words = gadget.decode(&decoded);
            if let Some(&value) = words.iter().find(|&&y| y >= p) {
                return Err(NonlinearError::OutputOutOfRange { value, p }.into());
            }
            out.extend(words);
        }
    }
    Ok(())
}

impl Nonlinear for GcSession {
    fn backend(&self) -> Backend {
        Backend::Gc
    }

    fn role(&self) -> Role {
        match self.side {
            Side::Alice { .. } => Role::Alice,
            Side::Bob { .. } => Role::Bob,
        }
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn relu_rescale(
        &mut self,
        ch: &mut Channel,
        shares: &[u64],
        shift: u32,
    ) -> Result<Vec<u64>, Error> {
        self.run(ch, Block::Relu, Op::ReluRescaleReshare, shift, shares)
    }

    fn rescale(&mut self, ch: &mut Channel, shares: &[u64], shift: u32) -> Result<Vec<u64>, Error> {
        self.run(ch, Block::Rescale, Op::RescaleReshare, shift, shares)
    }

    fn max4_rescale(
        &mut self,
        ch: &mut Channel,
        windows: &[u64],
        shift: u32,
    ) -> Result<Vec<u64>, Error> {
        self.run(ch, Block::MaxPool, Op::Max4RescaleReshare, shift, windows)
    }

    fn argmax2(&mut self, ch: &mut Channel, pairs: &[u64]) -> Result<Vec<bool>, Error> {
        // The comparison needs no rescaling; shift 0 is valid for every k.
        let bits = self.run(ch, Block::Argmax, Op::Argmax2, 0, pairs)?;
        Ok(bits.into_iter().map(|b| b == 1).collect())
    }
}
