//! One volume as shards: a shard is a range of core slices (for a volume UNet, run on a slab =
//! the core plus a halo that covers the network's receptive field), written to its own directory
//! as a partial mask and a [`Manifest`] saying exactly what produced it; [`merge`] checks a set
//! of shards against each other and joins them into the one mask of the volume.
//!
//! A shard directory holds [`PART_FILE`] (the core slices' mask, NIfTI with the geometry of
//! those slices in the scan), `report.json` (the client's report) and [`MANIFEST_FILE`]. Every
//! file is written under a temporary name and renamed, the manifest last, so that a directory
//! with a manifest whose part hash verifies is a finished shard, and anything else is not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bunet_unet::arch::LayerKind;
use bunet_unet::secure::SessionConfig;
use bunet_unet::secure::handshake::Hello;
use bunet_unet::{Architecture, Dims};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::breakdown::BlockRow;
use crate::nifti::{self, Header};
use crate::volume::CtVolume;

/// Version of the manifest format ([`Manifest::format`]).
pub const FORMAT: u32 = 1;
/// The manifest's file name in a shard directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The partial mask's file name in a shard directory.
pub const PART_FILE: &str = "part.nii.gz";

/// Why a shard could not be planned, written, verified or merged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A shard specification (`I/K`) or slice range does not fit the volume.
    #[error("{0}")]
    Spec(String),
    /// A shard directory is incomplete or disagrees with the others (the message names it).
    #[error("shard {}: {why}", dir.display())]
    Shard {
        /// The offending shard directory.
        dir: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Reading or writing a file failed.
    #[error("{what} {}", path.display())]
    Io {
        /// `reading`, `writing` or `renaming to`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Writing a NIfTI file failed.
    #[error("writing {}", path.display())]
    Nifti {
        /// The file.
        path: PathBuf,
        /// The codec's error.
        #[source]
        source: nifti::Error,
    },
}

/// Slices `[start, end)` of shard `i` of `k` over `nz` slices: `k` contiguous ranges whose
/// lengths differ by at most one, in order.
///
/// # Errors
/// [`Error::Spec`] unless `i < k <= nz`.
pub fn shard_range(i: usize, k: usize, nz: usize) -> Result<(usize, usize), Error> {
    if i >= k || k > nz {
        return Err(Error::Spec(format!(
            "shard {i}/{k} of {nz} slices: need 0 <= I < K <= slices"
        )));
    }
    Ok((i * nz / k, (i + 1) * nz / k))
}

/// Parses a shard specification `I/K` (0-based `I`).
///
/// # Errors
/// A message if the text is not two numbers with `I < K`.
pub fn parse_shard(text: &str) -> Result<(usize, usize), String> {
    let (i, k) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not I/K"))?;
    let num = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{s}` is not a shard number"))
    };
    let (i, k) = (num(i)?, num(k)?);
    if i >= k {
        return Err(format!("shard {i}/{k}: I must be below K (I is 0-based)"));
    }
    Ok((i, k))
}

/// Slices a volume UNet's mask depends on beyond a slice on either side: the margin by which the
/// region where a slab's result equals the whole volume's shrinks from each inner end of the
/// slab, for a slab starting on the pooling grid. 0 for a 2.5D UNet (its shards read their
/// input stacks from the whole volume and run slice by slice).
///
/// Computed by walking the layer graph with the interval of valid positions along `z` of every
/// tensor (in that tensor's own resolution): a 3-wide conv with zero padding loses one position
/// at each inner end, a 2-wide pool keeps the coarse positions whose whole window is valid, a
/// stride-2 transposed conv doubles the interval, a concatenation intersects its inputs.
pub fn halo(arch: &Architecture) -> usize {
    if arch.dims == Dims::Two {
        return 0;
    }
    let graph = arch.graph();
    let convs = arch.convs();
    // Far longer than any shrinkage, and on every level's grid, so that no interval empties.
    let len: i64 = 1 << 24;
    let mut valid = vec![(0i64, 0i64); graph.tensors.len()];
    valid[0] = (0, len);
    for layer in &graph.layers {
        let (lo, hi) = valid[layer.inputs[0].0];
        valid[layer.output.0] = match layer.kind {
            LayerKind::Conv { conv } | LayerKind::Head { conv } => {
                let r = (convs[conv].kernel[0] / 2) as i64;
                (lo + r, hi - r)
            }
            LayerKind::Pool => ((lo + 1).div_euclid(2), hi.div_euclid(2)),
            LayerKind::UpConv { .. } => (2 * lo, 2 * hi),
            LayerKind::Concat => {
                let (lo2, hi2) = valid[layer.inputs[1].0];
                (lo.max(lo2), hi.min(hi2))
            }
            LayerKind::Activation | LayerKind::Argmax => (lo, hi),
        };
    }
    let (lo, hi) = valid[graph.output.0];
    lo.max(len - hi).max(0) as usize
}

/// The slab of a shard of a volume UNet: slices `start..end` of the padded volume, run as one
/// input, of which the core slices are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slab {
    /// First slice, on the pooling grid (`2^depth`).
    pub start: usize,
    /// One past the last slice, on the pooling grid, at most the padded volume's slices.
    pub end: usize,
    /// The halo ([`halo`]) the slab covers around the core where the volume allows.
    pub halo: usize,
}

/// The slab that gives core slices `a..b` of a volume of `nz` slices exactly as the whole
/// volume does: the core widened by [`halo`] on each side, its start rounded down and its end
/// up to the pooling grid (so that every pooling window is the whole volume's), clipped at the
/// padded volume's ends (where the slab's zero padding is the whole volume's own).
pub fn slab(arch: &Architecture, (a, b): (usize, usize), nz: usize) -> Slab {
    let step = 1usize << arch.depth;
    let h = halo(arch);
    let padded = nz.next_multiple_of(step);
    Slab {
        start: a.saturating_sub(h) / step * step,
        end: (b + h).next_multiple_of(step).min(padded),
        halo: h,
    }
}

/// Lowercase hex of a SHA-256 digest of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What identifies the input volume: the hash of its voxels as read (HU after the file's
/// scaling, `f32` little-endian, `x` fastest) and its geometry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VolumeId {
    /// SHA-256 of the voxel data as read, hex.
    pub sha256: String,
    /// Extent `[nx, ny, nz]`.
    pub dims: [usize; 3],
    /// The file's NIfTI voxel type code.
    pub datatype: i16,
    /// Voxel spacing (mm), `pixdim[1..4]`.
    pub spacing: [f64; 3],
    /// The voxel-to-world affine, 3 rows of 4.
    pub affine: [[f64; 4]; 3],
}

impl VolumeId {
    /// The identity of `ct`.
    pub fn of(ct: &CtVolume) -> Self {
        let mut h = Sha256::new();
        for v in &ct.hu {
            h.update(v.to_le_bytes());
        }
        let p = ct.header.pixdim;
        Self {
            sha256: hex(&h.finalize()),
            dims: ct.dims,
            datatype: ct.header.datatype,
            spacing: [p[1], p[2], p[3]].map(f64::from),
            affine: ct.header.affine(),
        }
    }
}

/// What identifies the model, as far as the client can know it: the architecture the handshake
/// agreed on and, when the provider publishes one, a model name or digest given on the command
/// line (the handshake does not fingerprint the weights: they stay secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelId {
    /// The architecture in its `Display` form.
    pub architecture: String,
    /// [`Architecture::fingerprint`], hex.
    pub fingerprint: String,
    /// `--model-id`, if given.
    pub model_id: Option<String>,
}

impl ModelId {
    /// The identity of `arch` with an optional provider-given model id.
    pub fn new(arch: &Architecture, model_id: Option<&str>) -> Self {
        Self {
            architecture: arch.to_string(),
            fingerprint: format!("{:016x}", arch.fingerprint()),
            model_id: model_id.map(str::to_owned),
        }
    }
}

/// What identifies the protocol: every field the handshake compares except the architecture
/// (in [`ModelId`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolId {
    /// The secure protocol version.
    pub version: u16,
    /// The fixed-point preset's name.
    pub preset: String,
    /// The fixed-point configuration's fingerprint, hex.
    pub quant: String,
    /// The PAHE parameters' fingerprint, hex.
    pub pahe_params: String,
    /// The nonlinear backend's name.
    pub backend: String,
    /// The HomConv tile cap, 0 for none.
    pub max_tile: u64,
    /// Nonlinear instances per chunk.
    pub chunk: u64,
    /// The linear backend's name.
    pub linear: String,
}

impl ProtocolId {
    /// What the client proposes (and the server accepted) for `arch` under `config`.
    pub fn new(arch: &Architecture, config: &SessionConfig) -> Self {
        let h = Hello::client(arch, config);
        Self {
            version: h.version,
            preset: h.preset,
            quant: format!("{:016x}", h.quant),
            pahe_params: format!("{:016x}", h.pahe_params),
            backend: h.backend,
            max_tile: h.max_tile,
            chunk: h.chunk,
            linear: h.linear,
        }
    }
}

/// Which slices a shard produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// The core slices `[a, b)`: what the part holds.
    pub core: [usize; 2],
    /// The slab run for them (volume UNets only).
    pub slab: Option<Slab>,
}

/// Everything that must agree for a shard to be reused or merged: input, model, protocol,
/// range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The input volume.
    pub volume: VolumeId,
    /// The model.
    pub model: ModelId,
    /// The protocol.
    pub protocol: ProtocolId,
    /// The slices.
    pub range: Range,
}

/// The part file and its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// File name in the shard directory.
    pub file: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// When the shard ran (Unix time, seconds).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// When the command started.
    pub started_unix_s: f64,
    /// When the part was written.
    pub ended_unix_s: f64,
    /// The secure session's wall time.
    pub session_wall_s: f64,
}

/// A shard's `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// Input, model, protocol, slices.
    #[serde(flatten)]
    pub job: Job,
    /// The partial mask.
    pub part: Part,
    /// When it ran.
    pub timing: Timing,
    /// The client's report (the driver's JSON: time, bytes and rounds per block).
    pub report: serde_json::Value,
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The temporary name `name` is written under before it is renamed into place (the extension
/// is kept: the NIfTI writer compresses by it).
fn partial_name(name: &str) -> String {
    format!(".partial-{name}")
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
///
/// # Errors
/// [`Error::Io`].
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
    let tmp = dir.join(partial_name(name));
    std::fs::write(&tmp, bytes).map_err(io("writing", &tmp))?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(io("renaming to", &path))?;
    Ok(path)
}

/// Writes the part of core slices `a..b` of `mask_core` (`x` fastest, `nx · ny · (b − a)`
/// voxels) to `dir`: NIfTI with the scan's mask header moved to slice `a`, through a temporary
/// name. Returns its [`Part`].
///
/// # Errors
/// [`Error::Nifti`] (also if `mask_core` is not the core's size), [`Error::Io`].
pub fn write_part(
    dir: &Path,
    ct: &CtVolume,
    (a, b): (usize, usize),
    mask_core: &[u8],
) -> Result<Part, Error> {
    let header = core_header(ct, (a, b))?;
    let tmp = dir.join(partial_name(PART_FILE));
    nifti::write(&tmp, &header, mask_core).map_err(|source| Error::Nifti {
        path: tmp.clone(),
        source,
    })?;
    let bytes = std::fs::read(&tmp).map_err(io("reading", &tmp))?;
    let path = dir.join(PART_FILE);
    std::fs::rename(&tmp, &path).map_err(io("renaming to", &path))?;
    Ok(Part {
        file: PART_FILE.to_owned(),
        sha256: sha256_hex(&bytes),
    })
}

/// The header of the mask of slices `a..b`: the scan's mask header with `dim[3] = b − a` and the
/// origin moved to slice `a` (for `a = 0` every other field is the scan's, bit for bit).
fn core_header(ct: &CtVolume, (a, b): (usize, usize)) -> Result<Header, Error> {
    let [nx, ny, _] = ct.dims;
    // The crop of one slice plane moves the geometry; the extent is set afterwards.
    let one = ct
        .crop([0, 0, a], [nx, ny, 1])
        .map_err(|e| Error::Spec(e.to_string()))?;
    let mut header = one.header.for_mask();
    header.dim[3] = i16::try_from(b - a).map_err(|_| Error::Spec("too many slices".into()))?;
    header.set_description("bunet lesion mask (1 = lesion)");
    Ok(header)
}

/// Writes the manifest last (through a temporary name): from now on the shard is finished.
///
/// # Errors
/// [`Error::Io`].
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<PathBuf, Error> {
    let json = serde_json::to_string_pretty(manifest).expect("a manifest always serialises");
    write_atomic(dir, MANIFEST_FILE, json.as_bytes())
}

/// Removes a previous run's manifest before a new run writes its part, so that a run that dies
/// half-way never leaves an old manifest beside a new part.
///
/// # Errors
/// [`Error::Io`] unless the removal succeeds or there was nothing to remove.
pub fn forget(dir: &Path) -> Result<(), Error> {
    let path = dir.join(MANIFEST_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("removing", &path)(e)),
    }
}

/// Reads the manifest of shard directory `dir` and checks its part's hash.
///
/// # Errors
/// [`Error::Shard`] naming `dir` if the manifest is missing, unreadable or of another format, or
/// the part is missing or does not match its hash.
pub fn load_verified(dir: &Path) -> Result<Manifest, Error> {
    let shard = |why: String| Error::Shard {
        dir: dir.to_path_buf(),
        why,
    };
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(shard(format!(
                "no {MANIFEST_FILE}: the shard did not finish (or this is not a shard directory)"
            )));
        }
        Err(e) => return Err(shard(format!("reading {MANIFEST_FILE}: {e}"))),
    };
    let m: Manifest =
        serde_json::from_str(&text).map_err(|e| shard(format!("bad {MANIFEST_FILE}: {e}")))?;
    if m.format != FORMAT {
        return Err(shard(format!(
            "manifest format {} (this bunet reads {FORMAT})",
            m.format
        )));
    }
    if m.part.file.contains(['/', '\\']) || m.part.file.starts_with('.') {
        return Err(shard(format!("part file name {:?}", m.part.file)));
    }
    let part = dir.join(&m.part.file);
    let bytes = std::fs::read(&part).map_err(|e| shard(format!("reading {}: {e}", m.part.file)))?;
    let found = sha256_hex(&bytes);
    if found != m.part.sha256 {
        return Err(shard(format!(
            "{} has sha256 {found}, the manifest says {}",
            m.part.file, m.part.sha256
        )));
    }
    Ok(m)
}

/// The joined result of [`merge`].
#[derive(Debug)]
pub struct Merged {
    /// The mask's header: the scan's mask header ([`Header::for_mask`]), as `segment` writes it.
    pub header: Header,
    /// The mask of the whole scan, `x` fastest.
    pub mask: Vec<u8>,
    /// The shards in slice order, with their manifests.
    pub shards: Vec<(PathBuf, Manifest)>,
}

/// Checks shards against each other and joins their parts: same volume, model and protocol as
/// the first, core ranges that cover every slice exactly once, slabs as [`slab`] computes them,
/// parts that match their hashes and their ranges.
///
/// # Errors
/// [`Error::Shard`] naming the first offending directory; [`Error::Spec`] for no shards.
pub fn merge(dirs: &[PathBuf]) -> Result<Merged, Error> {
    let Some(first_dir) = dirs.first() else {
        return Err(Error::Spec("no shard directories given".into()));
    };
    let mut shards = Vec::with_capacity(dirs.len());
    for dir in dirs {
        shards.push((dir.clone(), load_verified(dir)?));
    }
    check_same_job(first_dir, &shards)?;
    let first = &shards[0].1.job;
    let [nx, ny, nz] = first.volume.dims;
    let arch: Architecture = first.model.architecture.parse().map_err(|e| Error::Shard {
        dir: first_dir.clone(),
        why: format!("bad architecture in the manifest: {e}"),
    })?;
    shards.sort_by_key(|(_, m)| m.job.range.core);
    check_coverage(first_dir, &shards, &arch, nz)?;
    let (header, mask) = join_parts(&shards, [nx, ny, nz])?;
    Ok(Merged {
        header,
        mask,
        shards,
    })
}

/// Every shard is of the first one's volume, model and protocol.
fn check_same_job(first_dir: &Path, shards: &[(PathBuf, Manifest)]) -> Result<(), Error> {
    let first = &shards[0].1.job;
    for (dir, m) in &shards[1..] {
        let differs = |what: &str, ours: String, theirs: String| Error::Shard {
            dir: dir.clone(),
            why: format!(
                "another {what}: {ours}, where {} has {theirs}",
                first_dir.display()
            ),
        };
        let j = &m.job;
        if j.volume != first.volume {
            return Err(differs(
                "volume",
                format!("{:?} sha256 {}", j.volume.dims, j.volume.sha256),
                format!("{:?} sha256 {}", first.volume.dims, first.volume.sha256),
            ));
        }
        if j.model != first.model {
            return Err(differs(
                "model",
                format!("{:?}", j.model),
                format!("{:?}", first.model),
            ));
        }
        if j.protocol != first.protocol {
            return Err(differs(
                "protocol",
                format!("{:?}", j.protocol),
                format!("{:?}", first.protocol),
            ));
        }
    }
    Ok(())
}

/// The shards' core ranges, in slice order, cover every slice once, each with the slab the
/// architecture needs.
fn check_coverage(
    first_dir: &Path,
    shards: &[(PathBuf, Manifest)],
    arch: &Architecture,
    nz: usize,
) -> Result<(), Error> {
    let mut next = 0usize;
    let mut previous: Option<&Path> = None;
    for (dir, m) in shards {
        let shard = |why: String| Error::Shard {
            dir: dir.clone(),
            why,
        };
        let [a, b] = m.job.range.core;
        if a >= b || b > nz {
            return Err(shard(format!(
                "empty or outside range {a}..{b} of {nz} slices"
            )));
        }
        if a < next {
            return Err(shard(format!(
                "slices {a}..{b} overlap slices {a}..{} of {}",
                next.min(b),
                previous.map_or_else(String::new, |p| p.display().to_string())
            )));
        }
        if a > next {
            return Err(shard(format!(
                "slices {next}..{a} are missing before this shard's {a}..{b}{}",
                previous.map_or_else(String::new, |p| format!(" (after {})", p.display()))
            )));
        }
        let want = (arch.dims == Dims::Three).then(|| slab(arch, (a, b), nz));
        if m.job.range.slab != want {
            return Err(shard(format!(
                "slab {:?}, where the architecture needs {want:?} for slices {a}..{b}",
                m.job.range.slab
            )));
        }
        next = b;
        previous = Some(dir);
    }
    if next < nz {
        let last = shards.last().map(|(d, _)| d.display().to_string());
        return Err(Error::Shard {
            dir: shards
                .last()
                .map_or_else(|| first_dir.to_path_buf(), |(d, _)| d.clone()),
            why: format!(
                "slices {next}..{nz} are missing after the last shard{}",
                last.map_or_else(String::new, |l| format!(" ({l})"))
            ),
        });
    }
    Ok(())
}

/// The shards' mask parts joined into the volume's mask, with the first part's header grown to
/// every slice.
fn join_parts(
    shards: &[(PathBuf, Manifest)],
    [nx, ny, nz]: [usize; 3],
) -> Result<(nifti::Header, Vec<u8>), Error> {
    let plane = nx * ny;
    let mut mask = vec![0u8; plane * nz];
    let mut header = None;
    for (dir, m) in shards {
        let shard = |why: String| Error::Shard {
            dir: dir.clone(),
            why,
        };
        let [a, b] = m.job.range.core;
        let image = nifti::read(&dir.join(&m.part.file))
            .map_err(|e| shard(format!("reading {}: {e}", m.part.file)))?;
        if image.dims != [nx, ny, b - a] {
            return Err(shard(format!(
                "{} holds {:?} voxels, the range {a}..{b} needs {:?}",
                m.part.file,
                image.dims,
                [nx, ny, b - a]
            )));
        }
        for (dst, &v) in mask[a * plane..b * plane].iter_mut().zip(&image.data) {
            *dst = match v {
                0.0 => 0,
                1.0 => 1,
                _ => return Err(shard(format!("{} holds the value {v}", m.part.file))),
            };
        }
        if a == 0 {
            let mut h = image.header;
            h.dim[3] = i16::try_from(nz).map_err(|_| shard("too many slices".into()))?;
            header = Some(h);
        }
    }
    let header = header.expect("the coverage check found a shard starting at slice 0");
    Ok((header, mask))
}

/// The merged report of [`merge`]'s shards: time and bytes per block summed over the shards,
/// every shard's range and times, the slowest shard, and the wall time from the first start to
/// the last end.
#[derive(Debug, Serialize)]
pub struct MergedReport {
    /// Input, model and protocol (the same for every shard).
    pub volume: VolumeId,
    /// The model.
    pub model: ModelId,
    /// The protocol.
    pub protocol: ProtocolId,
    /// One entry per shard, in slice order.
    pub shards: Vec<ShardSummary>,
    /// The shard with the longest session.
    pub slowest_shard: String,
    /// From the first shard's start to the last shard's end (seconds).
    pub wall_s: f64,
    /// Sum of the shards' session wall times (seconds): the machine time one pair would need.
    pub sum_of_sessions_s: f64,
    /// Per block and phase, the client's rows summed over the shards.
    pub blocks: Vec<BlockRow>,
}

/// One shard in a [`MergedReport`].
#[derive(Debug, Serialize)]
pub struct ShardSummary {
    /// Its directory.
    pub dir: String,
    /// Its core slices.
    pub core: [usize; 2],
    /// Its slab (volume UNets).
    pub slab: Option<Slab>,
    /// Its start, end and session time.
    pub timing: Timing,
}

impl MergedReport {
    /// Sums the reports of `merged`'s shards.
    ///
    /// # Errors
    /// [`Error::Shard`] if a shard's report is not the driver's JSON.
    pub fn new(merged: &Merged) -> Result<Self, Error> {
        let first = &merged.shards[0].1.job;
        let mut blocks: BTreeMap<(String, String), BlockRow> = BTreeMap::new();
        let mut order = Vec::new();
        for (dir, m) in &merged.shards {
            let rows = crate::session::rows_from_json(&m.report.to_string()).map_err(|e| {
                Error::Shard {
                    dir: dir.clone(),
                    why: format!("bad report in the manifest: {e}"),
                }
            })?;
            for r in rows {
                let key = (r.block.clone(), r.phase.clone());
                match blocks.get_mut(&key) {
                    Some(sum) => sum.add(&r),
                    None => {
                        order.push(key.clone());
                        blocks.insert(key, r);
                    }
                }
            }
        }
        let shards: Vec<ShardSummary> = merged
            .shards
            .iter()
            .map(|(dir, m)| ShardSummary {
                dir: dir.display().to_string(),
                core: m.job.range.core,
                slab: m.job.range.slab,
                timing: m.timing,
            })
            .collect();
        let slowest = shards
            .iter()
            .max_by(|x, y| x.timing.session_wall_s.total_cmp(&y.timing.session_wall_s))
            .map_or_else(String::new, |s| s.dir.clone());
        let start = shards
            .iter()
            .map(|s| s.timing.started_unix_s)
            .fold(f64::INFINITY, f64::min);
        let end = shards
            .iter()
            .map(|s| s.timing.ended_unix_s)
            .fold(f64::NEG_INFINITY, f64::max);
        Ok(Self {
            volume: first.volume.clone(),
            model: first.model.clone(),
            protocol: first.protocol.clone(),
            sum_of_sessions_s: shards.iter().map(|s| s.timing.session_wall_s).sum(),
            shards,
            slowest_shard: slowest,
            wall_s: (end - start).max(0.0),
            blocks: order
                .into_iter()
                .filter_map(|k| blocks.remove(&k))
                .collect(),
        })
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// The report as Markdown: the shards, then the blocks.
    pub fn to_markdown(&self) -> String {
        use crate::report::{Table, bytes, seconds};
        let mut out = format!(
            "# Merged segmentation\n\nVolume {:?} (sha256 {}), {}, preset {}, backend {}.\n\n\
             Wall time (first start to last end): {}; sum of the shards' sessions: {}; slowest \
             shard: {}.\n\n## Shards\n\n",
            self.volume.dims,
            self.volume.sha256,
            self.model.architecture,
            self.protocol.preset,
            self.protocol.backend,
            seconds(self.wall_s),
            seconds(self.sum_of_sessions_s),
            self.slowest_shard
        );
        let mut t = Table::new(["shard", "core slices", "slab", "session"]);
        for s in &self.shards {
            t.push([
                s.dir.clone(),
                format!("{}..{}", s.core[0], s.core[1]),
                s.slab
                    .map_or_else(|| "-".into(), |s| format!("{}..{}", s.start, s.end)),
                seconds(s.timing.session_wall_s),
            ]);
        }
        out += &t.to_markdown();
        out += "\n## Blocks (client side, summed over the shards)\n\n";
        let mut t = Table::new([
            "block", "phase", "calls", "wall", "cpu", "sent", "received", "rounds",
        ]);
        for b in &self.blocks {
            t.push([
                b.block.clone(),
                b.phase.clone(),
                b.calls.to_string(),
                seconds(b.wall_s),
                seconds(b.cpu_s),
                bytes(b.bytes_sent),
                bytes(b.bytes_received),
                b.rounds.to_string(),
            ]);
        }
        out += &t.to_markdown();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bunet_unet::arch::{Activation, Pooling};

    fn three_d(depth: usize) -> Architecture {
        Architecture {
            in_channels: 1,
            base_features: 2,
            depth,
            activation: Activation::Relu,
            pooling: Pooling::AvgLocal,
            dims: Dims::Three,
            classes: 2,
        }
    }

    #[test]
    fn shards_cover_the_volume_in_near_equal_ranges() {
        for nz in 1..40 {
            for k in 1..=nz.min(9) {
                let ranges: Vec<_> = (0..k).map(|i| shard_range(i, k, nz).unwrap()).collect();
                assert_eq!(ranges[0].0, 0);
                assert_eq!(ranges[k - 1].1, nz);
                for w in ranges.windows(2) {
                    assert_eq!(w[0].1, w[1].0);
                }
                let lens: Vec<_> = ranges.iter().map(|(a, b)| b - a).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
                assert!(lens.iter().all(|&l| l > 0));
            }
            assert!(shard_range(0, nz + 1, nz).is_err());
        }
        assert_eq!(parse_shard("1/4"), Ok((1, 4)));
        assert!(parse_shard("4/4").is_err() && parse_shard("1").is_err());
    }

    #[test]
    fn halo_follows_the_graph() {
        // Depth 1: two convs (1 each), pool (1 → 1 coarse... 2 fine), two convs at level 1
        // (2 coarse), up (6 fine), two convs (8).
        assert_eq!(halo(&three_d(1)), 8);
        // Depth 2, by hand: 2, pool 1, 3, pool 2, 4, up 8, 10, up 20, 22.
        assert_eq!(halo(&three_d(2)), 22);
        assert_eq!(halo(&Architecture::seed()), 0);
    }

    #[test]
    fn slabs_start_on_the_grid_and_cover_the_halo() {
        let arch = three_d(1);
        assert_eq!(
            slab(&arch, (0, 6), 24),
            Slab {
                start: 0,
                end: 14,
                halo: 8
            }
        );
        assert_eq!(slab(&arch, (12, 18), 24).start, 4);
        assert_eq!(slab(&arch, (18, 24), 24).end, 24);
        // A volume of odd length is padded to the grid; the slab may reach the padding.
        assert_eq!(slab(&arch, (18, 23), 23).end, 24);
    }
}
