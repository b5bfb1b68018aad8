//! From a measured run of a few slices to a whole volume. Secure inference does the same
//! operations for every slice of one shape (the protocol is input-independent by design), so
//! the volume's exact operation count is the slice's count times the slices ([`SliceCount`]),
//! and its cost is the measured per-slice cost scaled by that count; session set-up (handshake,
//! keys, base OTs) happens once. Every figure says whether it was measured or extrapolated.

use serde::Serialize;

use crate::breakdown::Breakdown;
use crate::opcount::{Count, SliceCount};

/// Blocks paid once per session, not per slice: the handshake, the public and Galois keys, the
/// nonlinear set-up (base OTs), the HomConv layouts of the first request (the driver reuses
/// them for every slice of the same extents) and, with `--linear coeff-ew`, the weight
/// ciphertexts sent with them ([`bunet_unet::secure::WEIGHTS_BLOCK`]).
pub const SESSION_BLOCKS: &[&str] = &[
    "handshake",
    "keys",
    "setup",
    "prepare",
    bunet_unet::secure::WEIGHTS_BLOCK,
];

/// One block, measured and extrapolated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// The building block.
    pub block: String,
    /// Whether it is paid once per session (else per slice).
    pub per_session: bool,
    /// Measured wall seconds (both phases, the slower party).
    pub measured_s: f64,
    /// Measured bytes, both directions.
    pub measured_bytes: u64,
    /// Extrapolated wall seconds for the volume.
    pub volume_s: f64,
    /// Extrapolated bytes for the volume.
    pub volume_bytes: u64,
    /// The block's exact operation count for the whole volume, if the plan names it.
    pub volume_count: Option<Count>,
}

/// A volume's cost extrapolated from a measured run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Extrapolation {
    /// Slices run for real.
    pub measured_slices: usize,
    /// Slices of the volume.
    pub volume_slices: usize,
    /// Measured wall seconds of the whole run (session set-up included).
    pub measured_wall_s: f64,
    /// Measured wall seconds of session set-up (handshake, keys, OT set-up): run time minus the
    /// slices' inference time.
    pub measured_setup_s: f64,
    /// Measured bytes of the whole run, both directions.
    pub measured_bytes: u64,
    /// Measured wall seconds per slice, session blocks excluded.
    pub per_slice_s: f64,
    /// Extrapolated wall seconds of the volume (one session, slices one after another): the
    /// measured run plus the remaining slices at the measured per-slice time (session blocks
    /// excluded).
    pub volume_wall_s: f64,
    /// Extrapolated bytes of the volume.
    pub volume_bytes: u64,
    /// Exact operation count of the volume.
    pub volume_count: Count,
    /// Per block.
    pub rows: Vec<Row>,
}

impl Extrapolation {
    /// Extrapolates `run` (which inferred `run.slices` slices taking `slice_walls` seconds of
    /// client wall time in total) to `volume_slices` slices of the same extents.
    pub fn new(
        run: &Breakdown,
        slice_walls: f64,
        count: &SliceCount,
        volume_slices: usize,
    ) -> Self {
        let m = run.slices.max(1) as f64;
        let ratio = volume_slices as f64 / m;
        let by_block = count.by_block();
        let mut rows = Vec::new();
        let (mut per_session_bytes, mut per_slice_bytes) = (0u64, 0u64);
        let mut session_s = 0.0;
        for (block, t) in run.totals() {
            let per_session = SESSION_BLOCKS.contains(&block.as_str());
            let k = if per_session { 1.0 } else { ratio };
            if per_session {
                session_s += t.seconds();
                per_session_bytes += t.bytes();
            } else {
                per_slice_bytes += t.bytes();
            }
            rows.push(Row {
                volume_count: by_block
                    .get(block.as_str())
                    .map(|c| c.times(volume_slices as u64)),
                block,
                per_session,
                measured_s: t.seconds(),
                measured_bytes: t.bytes(),
                volume_s: t.seconds() * k,
                volume_bytes: (t.bytes() as f64 * k).round() as u64,
            });
        }
        // Set-up outside the slices (handshake, keys, OT set-up) is the run time the slices do
        // not account for; session blocks the first slice ran (its layouts, Galois keys) are
        // inside its wall time and must not scale.
        let setup = (run.total_wall_s - slice_walls).max(0.0);
        let inside = (session_s - setup).clamp(0.0, slice_walls);
        let per_slice = (slice_walls - inside) / m;
        Self {
            measured_slices: run.slices,
            volume_slices,
            measured_wall_s: run.total_wall_s,
            measured_setup_s: setup,
            per_slice_s: per_slice,
            measured_bytes: per_session_bytes + per_slice_bytes,
            volume_wall_s: run.total_wall_s + per_slice * (volume_slices as f64 - m),
            volume_bytes: per_session_bytes + (per_slice_bytes as f64 * ratio).round() as u64,
            volume_count: count.total().times(volume_slices as u64),
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breakdown::BlockRow;
    use bunet_crypto::pahe::Params;
    use bunet_unet::secure::LinearBackend;
    use bunet_unet::{Architecture, Quant, QuantPlan};

    #[test]
    fn per_slice_blocks_scale_and_session_blocks_do_not() {
        let row = |block: &str, phase: &str, wall: f64, bytes: u64| BlockRow {
            party: "client".into(),
            block: block.into(),
            phase: phase.into(),
            calls: 1,
            elements: 1,
            wall_s: wall,
            cpu_s: wall,
            bytes_sent: bytes,
            bytes_received: 0,
            rounds: 1,
        };
        let run = Breakdown {
            backend: "gc".into(),
            preset: "q32".into(),
            architecture: String::new(),
            input_dims: [1, 32, 32],
            slices: 2,
            total_wall_s: 10.0,
            machine: String::new(),
            rows: vec![
                row("keys", "offline", 1.0, 1000),
                row("relu", "online", 6.0, 5000),
                row("homconv", "online", 2.0, 3000),
            ],
        };
        let plan = QuantPlan::new(&Architecture::seed(), Quant::q32()).unwrap();
        let count =
            SliceCount::new(&plan, &Params::q32(), [1, 32, 32], None, LinearBackend::Dft).unwrap();
        let e = Extrapolation::new(&run, 8.5, &count, 512);
        assert_eq!(e.measured_setup_s, 1.5);
        // Session blocks took 1.0 s, all before the slices: 8.5 s for 2 slices, 510 to go.
        assert_eq!(e.volume_wall_s, 10.0 + 4.25 * 510.0);
        // Session blocks of 3 s, 1.5 s of them inside the slices (the first request's layouts):
        // those 1.5 s do not scale.
        let mut late = run.clone();
        late.rows.push(row("prepare", "offline", 2.0, 0));
        let e2 = Extrapolation::new(&late, 8.5, &count, 512);
        assert_eq!(e2.volume_wall_s, 10.0 + (8.5 - 1.5) / 2.0 * 510.0);
        assert_eq!(e2.per_slice_s, 3.5);
        assert_eq!(e.volume_bytes, 1000 + 8000 * 256);
        let relu = e.rows.iter().find(|r| r.block == "relu").unwrap();
        assert_eq!(relu.volume_s, 6.0 * 256.0);
        assert_eq!(relu.volume_count.unwrap().elements, 122 * 32 * 32 * 512);
        let keys = e.rows.iter().find(|r| r.block == "keys").unwrap();
        assert!(keys.per_session && keys.volume_bytes == 1000 && keys.volume_count.is_none());
        assert_eq!(
            e.volume_count.macs,
            Architecture::seed().macs([1, 32, 32]) * 512
        );
    }
}
