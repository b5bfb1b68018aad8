//! Command-line parsing, dispatch and error-to-exit-code mapping. Each subcommand is a sibling
//! module with an `Args` struct and a `run` function.

mod breakdown;
mod common;
mod demo;
mod generate;
mod infer;
mod merge;
mod probe;
mod progress;
mod replay;
mod segment;
mod serve;
mod table1;
mod transport;

use std::io;
use std::process::ExitCode;

use bunet_crypto::Blame;
use bunet_crypto::channel::ChannelError;
use bunet_harness::{model, nifti, output, preview, session, shard, synth, volume};
use bunet_unet::secure::SecureError;
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
    /// The model provider: load the weights and serve secure segmentation clients over TCP.
    Serve(serve::Args),
    /// The hospital: segment a NIfTI CT volume with a `bunet serve`; writes the mask and overlays.
    Segment(segment::Args),
    /// Plaintext inference (float, q32 or q24) of given weights on a NIfTI volume: mask and
    /// class probabilities on the input grid, the baseline for a secure run.
    Infer(infer::Args),
    /// Join the shards of one volume (segment --shard) into its mask and one report.
    Merge(merge::Args),
    /// The seed's Table 1: Dice of float, q32 and q24 masks and runtimes (Markdown and CSV).
    Table1(table1::Args),
    /// Both parties on this machine: segment a small synthetic CT securely; mask, overlays, report.
    Demo(demo::Args),
    /// The seed's Fig. 2: time and bytes per building block of a real secure run (JSON, SVG).
    Breakdown(breakdown::Args),
    /// The full-size (512³) segmentation: real slices between two processes, exact op counts,
    /// extrapolated time and bytes (or --all slices for real).
    Replay(replay::Args),
    /// Ask a `bunet serve` for its load (handshake-level, no session): readiness probes.
    Probe(probe::Args),
}

/// A command-line mistake found after parsing (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// Input data that is well-formed but does not fit the command (exit code 65).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadData(pub String);

/// The peer cannot be reached, found before any work (exit code 69).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

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
    /// The peer (server) is unavailable.
    Unavailable = 69,
    /// Internal error (a bug).
    Software = 70,
    /// Reading or writing failed.
    IoErr = 74,
    /// The peer did not answer in time.
    TempFail = 75,
    /// The parties disagree on the protocol, parameters or model, or the peer broke the protocol.
    Protocol = 76,
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
        if cause.downcast_ref::<Usage>().is_some() {
            return Exit::Usage;
        }
        if cause.downcast_ref::<BadData>().is_some() {
            return Exit::DataErr;
        }
        if cause.downcast_ref::<Unavailable>().is_some() {
            return Exit::Unavailable;
        }
        if cause.downcast_ref::<transport::NoTransport>().is_some() {
            return Exit::Usage;
        }
        if let Some(e) = cause.downcast_ref::<bunet_harness::tls::Error>() {
            return classify_tls(e);
        }
        if cause.downcast_ref::<probe::Full>().is_some() {
            return Exit::TempFail;
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
        if let Some(e) = cause.downcast_ref::<SecureError>() {
            return classify_secure(e);
        }
        if let Some(e) = cause.downcast_ref::<ChannelError>() {
            return classify_channel(e);
        }
        if let Some(e) = cause.downcast_ref::<session::Error>() {
            match e {
                session::Error::Net { source, .. } => return classify_net(source),
                session::Error::ServerPanicked => return Exit::Software,
                session::Error::Secure(e) => return classify_secure(e),
                session::Error::Volume(volume::Error::Slice { .. }) => return Exit::Usage,
                session::Error::Volume(_) => return Exit::DataErr,
                session::Error::Tls(e) => return classify_tls(e),
            }
        }
        if let Some(e) = cause.downcast_ref::<model::Error>() {
            return match e {
                model::Error::Io { source, .. } => classify_io(source),
                model::Error::Invalid { .. } | model::Error::Card { .. } => Exit::DataErr,
            };
        }
        if let Some(e) = cause.downcast_ref::<volume::Error>() {
            return match e {
                volume::Error::Slice { .. } => Exit::Usage,
                _ => Exit::DataErr,
            };
        }
        if let Some(e) = cause.downcast_ref::<output::Error>() {
            return match e {
                output::Error::Nifti {
                    source: nifti::Error::Io(io),
                    ..
                } => classify_io(io),
                output::Error::Png {
                    source: preview::Error::Io(io),
                    ..
                } => classify_io(io),
                output::Error::Slice { .. } => Exit::Usage,
                _ => Exit::Software,
            };
        }
        if let Some(e) = cause.downcast_ref::<shard::Error>() {
            return match e {
                shard::Error::Spec(_) => Exit::Usage,
                shard::Error::Shard { .. } => Exit::DataErr,
                shard::Error::Io { source, .. } => classify_io(source),
                shard::Error::Nifti {
                    source: nifti::Error::Io(io),
                    ..
                } => classify_io(io),
                shard::Error::Nifti { .. } => Exit::Software,
            };
        }
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return classify_io(io);
        }
    }
    Exit::Software
}

/// A secure session's failure, by whose fault it is ([`SecureError::blame`], decided where
/// each error is defined): the peer's (76), the link's (69 lost, 75 timed out, 74 other i/o),
/// or this side's (70); the server's two typed answers have codes of their own.
fn classify_secure(e: &SecureError) -> Exit {
    match e {
        // No slot or memory now: retry later.
        SecureError::Busy { .. } => return Exit::TempFail,
        // A request the server never takes, or a model or input that does not fit.
        SecureError::Refused(_) | SecureError::Model(_) => return Exit::DataErr,
        _ => {}
    }
    match e.blame() {
        Blame::Peer => Exit::Protocol,
        Blame::Link => e
            .channel_error()
            .map_or(Exit::Unavailable, classify_channel),
        Blame::Local => Exit::Software,
    }
}

fn classify_tls(e: &bunet_harness::tls::Error) -> Exit {
    use bunet_harness::tls::Error as E;
    match e {
        E::Pem { .. } | E::Config(_) => Exit::DataErr,
        E::ServerName(_) => Exit::Usage,
        E::Handshake(_) => Exit::Protocol,
        E::Io(io) => classify_net(io),
        _ => Exit::Software,
    }
}

fn classify_channel(e: &ChannelError) -> Exit {
    match e.blame() {
        Blame::Peer => Exit::Protocol,
        Blame::Local => Exit::Software,
        Blame::Link => match e {
            ChannelError::Io(io) => classify_net(io),
            ChannelError::Timeout(_) | ChannelError::TooSlow { .. } | ChannelError::Deadline(_) => {
                Exit::TempFail
            }
            _ => Exit::Unavailable,
        },
    }
}

fn classify_net(e: &io::Error) -> Exit {
    use io::ErrorKind as K;
    // rustls reports a refused certificate or a peer that does not speak TLS inside an i/o
    // error: the parties' credentials or transports do not match.
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        return Exit::Protocol;
    }
    match e.kind() {
        K::ConnectionRefused
        | K::ConnectionReset
        | K::ConnectionAborted
        | K::HostUnreachable
        | K::NetworkUnreachable
        | K::AddrNotAvailable
        | K::NotConnected => Exit::Unavailable,
        K::TimedOut | K::WouldBlock => Exit::TempFail,
        K::AddrInUse | K::PermissionDenied => Exit::IoErr,
        _ => classify_io(e),
    }
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
        Command::Serve(args) => serve::run(&args),
        Command::Segment(args) => segment::run(&args),
        Command::Infer(args) => infer::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Table1(args) => table1::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Breakdown(args) => breakdown::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Probe(args) => probe::run(&args),
    };
    match result {
        Ok(()) => ExitCode::from(Exit::Ok as u8),
        Err(e) => {
            // The chain may hold what a peer sent (names, refusal reasons): escaped.
            eprintln!(
                "bunet: error: {}",
                bunet_harness::escape_controls(&format!("{e:#}"))
            );
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
        let refused = session::Error::Net {
            what: "connecting to",
            addr: "x".into(),
            source: io::Error::from(io::ErrorKind::ConnectionRefused),
        };
        assert_eq!(classify(&anyhow::Error::from(refused)), Exit::Unavailable);
        let mismatch = SecureError::Protocol("bad".into());
        assert_eq!(
            classify(&anyhow::Error::from(session::Error::Secure(mismatch)).context("segment")),
            Exit::Protocol
        );
        let timeout = SecureError::Channel(ChannelError::Timeout(std::time::Duration::ZERO));
        assert_eq!(classify(&anyhow::Error::from(timeout)), Exit::TempFail);
        let closed = session::Error::Secure(SecureError::Channel(ChannelError::Closed));
        assert_eq!(classify(&anyhow::Error::from(closed)), Exit::Unavailable);
        // A short garbled-circuit frame is the peer's fault, not a bug of ours.
        let short = bunet_crypto::wire::WireError::LengthMismatch {
            what: "frame body",
            expected: 64,
            found: 33,
        };
        let gc = SecureError::Crypto(bunet_crypto::gc::GcError::Malformed(short).into());
        assert_eq!(classify(&anyhow::Error::from(gc)), Exit::Protocol);
        let slow = SecureError::Channel(ChannelError::TooSlow {
            min_rate: 1,
            grace: std::time::Duration::ZERO,
        });
        assert_eq!(classify(&anyhow::Error::from(slow)), Exit::TempFail);
        let usage = anyhow::Error::from(transport::NoTransport);
        assert_eq!(classify(&usage), Exit::Usage);
    }
}
