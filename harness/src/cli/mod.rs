//! Command-line parsing, dispatch and error-to-exit-code mapping. Each subcommand is a sibling
//! module with an `Args` struct and a `run` function.

mod generate;
mod progress;

use std::io;
use std::process::ExitCode;

use bunet_harness::{nifti, preview, synth};
use clap::{Parser, Subcommand};

/// bunet: blind UNet segmentation of CT volumes between two parties (client holds the scan,
/// server holds the weights).
#[derive(Debug, Parser)]
#[command(name = "bunet", version)]
#[command(
    after_help = "Exit codes: 0 ok, 2 usage, 65 bad input data, 66 missing input, \
                        69 peer unavailable, 70 internal, 74 I/O, 75 timeout, 76 protocol mismatch."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a synthetic chest CT with COVID-19-like lesions (ct.nii.gz, label.nii.gz, preview.png).
    Generate(generate::Args),
}

/// Documented exit codes (sysexits.h values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// Bad command line or parameters.
    Usage = 2,
    /// Input data is malformed.
    DataErr = 65,
    /// An input file is missing.
    NoInput = 66,
    /// Internal error (a bug).
    Software = 70,
    /// Reading or writing failed.
    IoErr = 74,
}

/// The exit code for an error: the first typed error in its chain decides.
pub fn classify(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<nifti::Error>() {
            return match e {
                nifti::Error::Io(io) => classify_io(io),
                nifti::Error::VoxelCount { .. } | nifti::Error::WrongType { .. } => Exit::Software,
                _ => Exit::DataErr,
            };
        }
        if cause.downcast_ref::<synth::ParamError>().is_some() {
            return Exit::Usage;
        }
        if let Some(e) = cause.downcast_ref::<preview::Error>() {
            return match e {
                preview::Error::Io(io) => classify_io(io),
                _ => Exit::Software,
            };
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return classify_io(io);
        }
    }
    Exit::Software
}

fn classify_io(e: &io::Error) -> Exit {
    if e.kind() == io::ErrorKind::NotFound {
        Exit::NoInput
    } else {
        Exit::IoErr
    }
}

/// Parses the command line, runs the subcommand and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with code 0; usage errors to stderr with code 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Generate(args) => generate::run(&args),
    };
    match result {
        Ok(()) => ExitCode::from(Exit::Ok as u8),
        Err(e) => {
            eprintln!("bunet: error: {e:#}");
            ExitCode::from(classify(&e) as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn errors_map_to_documented_codes() {
        let missing =
            anyhow::Error::from(nifti::Error::Io(io::Error::from(io::ErrorKind::NotFound)));
        assert_eq!(classify(&missing.context("reading x.nii")), Exit::NoInput);
        let denied = anyhow::Error::from(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(classify(&denied), Exit::IoErr);
        let bad = anyhow::Error::from(nifti::Error::NotNifti(7));
        assert_eq!(classify(&bad), Exit::DataErr);
        let size = anyhow::Error::from(synth::ParamError::Size { dims: [0, 1, 1] });
        assert_eq!(classify(&size), Exit::Usage);
        assert_eq!(classify(&anyhow::anyhow!("bug")), Exit::Software);
    }
}
