//! The `netmesh` tool's library: the events it sends and checks, its reports, key files,
//! an impairment relay, and the commands themselves ([`main`]).

#![forbid(unsafe_code)]

mod args;
pub mod events;
pub mod keyfile;
mod link;
pub mod relay;
pub mod report;
mod run;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use args::{Cli, Command, RelayArgs};
use netmesh_session::{Psk, PublicKey, StaticKeypair};

/// Exit status when the run finished but its checks failed (loss, duplicates, ...).
pub const EXIT_CHECKS_FAILED: u8 = 1;
/// Exit status for a bad command line (clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the run could not be carried out (socket, key file, handshake).
pub const EXIT_ERROR: u8 = 3;

/// Why a command stopped before it could judge its run.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A value the command line accepted but which is unusable (a bad key, say).
    Usage(String),
    /// The run could not be carried out.
    Error(String),
    /// Stdout was closed by its reader: stop without a word.
    StdoutClosed,
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::Error(error.to_string())
    }
}

/// Runs the tool on `std::env::args` and returns its exit status.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let outcome = match cli.command {
        Command::Keygen { out } => keygen(&out),
        Command::Pubkey { key } => load_keypair(&key).and_then(|keypair| {
            say(&keypair.public_key().to_string())?;
            Ok(true)
        }),
        Command::Listen(listen) => run::listen(&listen),
        Command::Send(send) => run::send(&send),
        Command::Bench(bench) => run::bench(&bench),
        Command::Relay(relay) => run_relay(&relay),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_CHECKS_FAILED),
        Err(Failure::Usage(message)) => {
            eprintln!("netmesh: error: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::StdoutClosed) => ExitCode::from(EXIT_ERROR),
        Err(Failure::Error(message)) => {
            eprintln!("netmesh: error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// clap's message cut to its first line (help and version print whole, exit 0).
fn usage_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(EXIT_USAGE)
        } else {
            ExitCode::SUCCESS
        };
    }
    // clap's message is its lines up to the first blank one (a list of missing flags
    // continues on indented lines); the usage and tips after it are left to --help.
    let rendered = error.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    eprintln!("netmesh: error: {message} (see 'netmesh --help')");
    ExitCode::from(EXIT_USAGE)
}

/// Prints a line on stdout and flushes it: scripts wait for lines like `listening on`.
pub(crate) fn say(line: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|error| match error.kind() {
            // Whoever reads stdout has gone (`netmesh bench | head -1`): nothing to say.
            std::io::ErrorKind::BrokenPipe => Failure::StdoutClosed,
            _ => Failure::Error(format!("writing to stdout: {error}")),
        })
}

fn run_relay(args: &RelayArgs) -> Result<bool, Failure> {
    let impairment = relay::Impairment {
        drop: args.drop,
        duplicate: args.dup,
        reorder: args.reorder,
        seed: args.seed,
    };
    let relay = relay::Relay::start(args.listen, args.to, impairment).map_err(|error| {
        Failure::Error(format!("relay {} -> {}: {error}", args.listen, args.to))
    })?;
    say(&format!("relaying on {}", relay.local_addr()))?;
    match args.duration {
        Some(secs) => std::thread::sleep(Duration::from_secs_f64(secs)),
        None => loop {
            std::thread::park();
        },
    }
    let counts = relay.counts();
    say(&serde_json::to_string(&counts)?)?;
    Ok(true)
}

fn keygen(out: &Path) -> Result<bool, Failure> {
    let keypair = StaticKeypair::generate()
        .map_err(|error| Failure::Error(format!("cannot generate a key: {error}")))?;
    keyfile::write_secret(out, keypair.secret_bytes())?;
    say(&keypair.public_key().to_string())?;
    Ok(true)
}

/// The keypair of a secret key file.
pub(crate) fn load_keypair(path: &Path) -> Result<StaticKeypair, Failure> {
    let secret = keyfile::read_secret(path)?;
    Ok(StaticKeypair::from_secret(&secret))
}

/// `--psk`: 64 hex digits; a bad one is a usage error naming the flag, not the value.
pub(crate) fn parse_psk(text: &str) -> Result<Psk, Failure> {
    let bytes =
        keyfile::parse_hex32(text, "--psk").map_err(|error| Failure::Usage(error.to_string()))?;
    Ok(Psk::new(*bytes))
}

/// `--peer-key`: 64 hex digits of an X25519 public key.
pub(crate) fn parse_public_key(text: &str) -> Result<PublicKey, Failure> {
    PublicKey::from_hex(text).map_err(|error| Failure::Usage(format!("--peer-key: {error}")))
}
