//! Options every secure command shares, and the steps they have in common.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use bunet_crypto::nonlinear::{self, Backend};
use bunet_harness::model;
use bunet_unet::secure::{LinearBackend, Preset, SessionConfig};
use bunet_unet::{Architecture, Model, QuantModel};
use clap::builder::{PossibleValuesParser, TypedValueParser};

/// The nonlinear backends this build offers, by name (`Backend::ALL`).
pub fn backend_parser() -> impl TypedValueParser<Value = Backend> {
    PossibleValuesParser::new(Backend::ALL.iter().map(|b| b.name())).map(|name| {
        Backend::from_name(&name).expect("the parser only accepts names from Backend::ALL")
    })
}

/// The fixed-point presets, by name (`Preset::ALL`).
pub fn preset_parser() -> impl TypedValueParser<Value = Preset> {
    PossibleValuesParser::new(Preset::ALL.iter().map(|p| p.name()))
        .map(|name| Preset::from_name(&name).expect("the parser only accepts preset names"))
}

/// The linear backends, by name (`LinearBackend::ALL`).
pub fn linear_parser() -> impl TypedValueParser<Value = LinearBackend> {
    PossibleValuesParser::new(LinearBackend::ALL.iter().map(|b| b.name())).map(|name| {
        LinearBackend::from_name(&name).expect("the parser only accepts linear backend names")
    })
}

/// The nonlinear backend of every secure command unless `--backend` says otherwise: `ot`, which
/// is faster than the seed's garbled circuits and sends about a sixtieth of the bytes (the two
/// give bit-identical shares). The one place that picks it.
pub const DEFAULT_BACKEND: &str = "ot";

/// The linear backend of every secure command unless `--linear` says otherwise: `coeff`, the
/// coefficient-encoded HomConv, which sends fewer bytes and takes less time than the seed's DFT
/// HomConv on every layer kind of the UNet (the two give bit-identical shares). The one place
/// that picks it (`LinearBackend::default()` agrees).
pub const DEFAULT_LINEAR: &str = "coeff";

/// `--backend`, `--linear` and `--preset`: what client and server agree on in the handshake.
#[derive(Debug, Clone, clap::Args)]
pub struct SessionArgs {
    /// Backend of the nonlinear layers (ReLU, max pool, argmax): `gc` = the seed's garbled
    /// circuits, `ot` = OT-based comparison on silent OT (where this build offers it).
    #[arg(long, default_value = DEFAULT_BACKEND, value_parser = backend_parser())]
    pub backend: Backend,
    /// Backend of the linear layers (convs, up-convs, head): `coeff` = coefficient-encoded
    /// HomConv (Cheetah's packing; the default: fewer bytes, less time; weights up to ±2^24 in
    /// the first conv, ±2^16 in the others), `dft` = the seed's DFT-slot HomConv (any weight),
    /// `coeff-ew` = the coefficient HomConv with the server's weights encrypted once per
    /// session (any weight; per run only the client's responses travel, but every layer's
    /// weight ciphertexts are sent once and kept in the client's memory: see
    /// docs/PERFORMANCE.md, "Encrypted weights").
    #[arg(long, default_value = DEFAULT_LINEAR, value_parser = linear_parser())]
    pub linear: LinearBackend,
    /// Fixed-point preset (Table 1's columns): q32 = p ≈ 2^32, 12 integer + 4 fractional bits;
    /// q24 = p ≈ 2^24, 8 integer + 4 fractional bits.
    #[arg(long, default_value = "q32", value_parser = preset_parser())]
    pub preset: Preset,
    /// Largest HomConv tile side in outputs (default: as large as a ciphertext allows).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub max_tile: Option<u16>,
    /// Nonlinear instances per chunk (client and server must agree): each chunk is one OT or
    /// garbling exchange, so a larger chunk means fewer round trips per layer (what a WAN pays
    /// for) at more memory per party.
    #[arg(long, default_value_t = nonlinear::DEFAULT_CHUNK as u64,
          value_parser = clap::value_parser!(u64).range(1..=nonlinear::MAX_CHUNK as u64))]
    pub chunk: u64,
    /// Slices per request of a 2D network (client and server must agree): a batch of B slices
    /// runs as one inference, so each round trip carries B slices' work (up to B times fewer
    /// round trips per slice, no more bytes per slice, about B times the memory per request).
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=bunet_unet::secure::MAX_BATCH as i64))]
    pub batch: u16,
}

impl SessionArgs {
    /// The session configuration.
    pub fn config(&self) -> SessionConfig {
        self.config_for(self.preset)
    }

    /// The configuration with another preset (Table 1 runs both).
    pub fn config_for(&self, preset: Preset) -> SessionConfig {
        SessionConfig {
            preset,
            nonlinear: self.backend,
            linear: self.linear,
            max_tile: self.max_tile.map(usize::from),
            chunk: usize::try_from(self.chunk).expect("the parser bounds --chunk by MAX_CHUNK"),
            batch: usize::from(self.batch),
        }
    }
}

/// `--weights` and `--arch`: the model provider's weights.
#[derive(Debug, Clone, clap::Args)]
pub struct WeightsArgs {
    /// UNet weights (safetensors, PyTorch names; see tools/README.md). Default: the built-in
    /// weights trained on synthetic chest CT (weights/unet.safetensors).
    #[arg(long, value_name = "PATH")]
    pub weights: Option<PathBuf>,
    /// The architecture of the weights, e.g. "unet-v1 dims=2 in=5 base=16 depth=4 act=relu
    /// pool=avg-rotation classes=2": required for files without `bunet.architecture` metadata
    /// (a plain PyTorch export), checked against the file's otherwise.
    #[arg(long, value_name = "ARCH", value_parser = parse_arch)]
    pub arch: Option<Architecture>,
}

impl WeightsArgs {
    /// Loads and folds the weights, checked against `--arch`.
    pub fn load(&self) -> Result<Model> {
        match model::load(self.weights.as_deref(), self.arch.as_ref()) {
            Ok(m) => Ok(m),
            Err(e) if e.is_missing_architecture() => Err(anyhow::Error::from(e).context(
                "the weights do not say which UNet they are: give --arch (see tools/README.md)",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// A label for reports: the path or `built-in`.
    pub fn label(&self) -> String {
        self.weights.as_ref().map_or_else(
            || "built-in (weights/unet.safetensors)".into(),
            |p| p.display().to_string(),
        )
    }
}

/// Quantises `model` for `preset` (shared between threads serving clients).
pub fn quantise(model: &Model, preset: Preset) -> Result<Arc<QuantModel>> {
    Ok(Arc::new(
        model::quantise(model, preset.quant())
            .with_context(|| format!("quantising the weights for {}", preset.name()))?,
    ))
}

/// Parses an architecture in its `Display` form.
pub fn parse_arch(text: &str) -> Result<Architecture, String> {
    text.parse::<Architecture>().map_err(|e| e.to_string())
}

/// The `--out` directory: created if missing, and removed again if the run fails before
/// anything was written into it (no empty directory left behind). Dropped without
/// [`OutDir::keep`] (an error returned early) counts as a failure.
pub struct OutDir {
    path: std::path::PathBuf,
    created: bool,
    kept: bool,
}

impl OutDir {
    /// Creates `path` (and its parents) if missing.
    pub fn create(path: &std::path::Path) -> Result<Self> {
        let created = !path.exists();
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            created,
            kept: false,
        })
    }

    /// The run succeeded: the directory stays.
    pub fn keep(mut self) {
        self.kept = true;
    }

    /// After the run: kept if `ok`, else removed if this run created it and it is empty.
    pub fn finish(self, ok: bool) {
        if ok {
            self.keep();
        }
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        if !self.kept && self.created {
            // remove_dir refuses a non-empty directory: partial outputs stay for inspection.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OutDir;

    #[test]
    fn out_dir_is_removed_only_when_this_failed_run_created_it_and_left_it_empty() {
        let root = tempfile::tempdir().expect("temp dir");
        // Created here, run failed (dropped early, as by `?`): removed.
        let fresh = root.path().join("a/b");
        drop(OutDir::create(&fresh).expect("create"));
        assert!(!fresh.exists());
        // Created here, run succeeded: kept.
        OutDir::create(&fresh).expect("create").keep();
        assert!(fresh.is_dir());
        // Existing before the run: kept even though the run failed.
        OutDir::create(&fresh).expect("create").finish(false);
        assert!(fresh.is_dir());
        // Created here, failed after writing: the partial outputs stay.
        let partial = root.path().join("c");
        let out = OutDir::create(&partial).expect("create");
        std::fs::write(partial.join("report.json"), "{}").expect("write");
        drop(out);
        assert!(partial.join("report.json").exists());
    }
}
