//! The command line, as SESSION.md gives it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::events::{MAX_EVENT_SIZE, MIN_EVENT_SIZE};

/// Encrypted events over UDP, speaking net-mesh 0.23's protocol.
#[derive(Debug, Parser)]
#[command(name = "netmesh", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a new X25519 secret key (hex, file mode 0600) and print its public key.
    Keygen {
        /// The file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the public key of a secret key file.
    Pubkey {
        /// The secret key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Accept handshakes, receive events and check every one (a responder).
    Listen(ListenArgs),
    /// Handshake with a listener and send events to it (an initiator).
    Send(SendArgs),
    /// Both ends in one process over 127.0.0.1: real sockets, real handshake.
    Bench(BenchArgs),
    /// Forward UDP between a client and a server, dropping, duplicating and reordering
    /// datagrams at seeded random (for testing).
    Relay(RelayArgs),
}

/// `--node-id` and `--peer-id`: the mesh prologue when both are given.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct MeshIds {
    /// This side's id in the mesh prologue (a MeshNode's wire id); needs --peer-id.
    #[arg(long, value_name = "N", requires = "peer_id")]
    pub(crate) node_id: Option<u64>,
    /// The other side's id in the mesh prologue; needs --node-id.
    #[arg(long, value_name = "N", requires = "node_id")]
    pub(crate) peer_id: Option<u64>,
}

/// What a sender sends: shared by `send`, `listen --reply` and `bench`.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Shape {
    /// Bytes per event (16 ..= 8104).
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = event_size)]
    pub(crate) size: usize,
    /// Streams: event i travels on stream i mod K.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub(crate) streams: u64,
    /// Reliable streams: retransmitted until delivered, in order (netmesh peers).
    #[arg(long)]
    pub(crate) reliable: bool,
    /// Towards a net-mesh node that grants no flow control (a NetAdapter): at most this
    /// many MB of events a second, in small bursts, so its socket buffer keeps up
    /// (0: as fast as possible).
    #[arg(long, value_name = "MB_PER_S", default_value_t = 32.0, value_parser = rate)]
    pub(crate) pace: f64,
}

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// Address to bind (port 0: any free port, printed on the first line).
    #[arg(long, value_name = "ADDR")]
    pub(crate) bind: SocketAddr,
    /// This side's secret key file (from `netmesh keygen`).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// The pre-shared key, 64 hex digits.
    #[arg(long, value_name = "HEX")]
    pub(crate) psk: String,
    #[command(flatten)]
    pub(crate) mesh: MeshIds,
    /// Exit once N events arrived, over all peers.
    #[arg(long, value_name = "N")]
    pub(crate) expect: Option<u64>,
    /// Send N events back to each peer once its handshake completes.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) reply: u64,
    /// Give up after this many seconds without a delivered event (default: 10 with
    /// --expect, never without).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub(crate) timeout: Option<f64>,
    /// The shape of --reply events.
    #[command(flatten)]
    pub(crate) shape: Shape,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The listener's address.
    #[arg(long, value_name = "ADDR")]
    pub(crate) to: SocketAddr,
    /// The listener's public key, 64 hex digits (`netmesh pubkey`).
    #[arg(long, value_name = "HEX")]
    pub(crate) peer_key: String,
    /// The pre-shared key, 64 hex digits.
    #[arg(long, value_name = "HEX")]
    pub(crate) psk: String,
    #[command(flatten)]
    pub(crate) mesh: MeshIds,
    /// Events to send.
    #[arg(long, value_name = "N")]
    pub(crate) events: u64,
    #[command(flatten)]
    pub(crate) shape: Shape,
    /// Give up after this many seconds without progress (handshake, sending, delivery).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = seconds)]
    pub(crate) timeout: f64,
    /// Local address to bind (default: any port on the unspecified address of --to's family).
    #[arg(long, value_name = "ADDR")]
    pub(crate) bind: Option<SocketAddr>,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Events to send.
    #[arg(long, value_name = "N", default_value_t = 10_000_000)]
    pub(crate) events: u64,
    /// Bytes per event (16 ..= 8104).
    #[arg(long, value_name = "BYTES", default_value_t = 64, value_parser = event_size)]
    pub(crate) size: usize,
    /// Sender threads, a stream each.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub(crate) senders: u64,
    /// Reliable streams.
    #[arg(long)]
    pub(crate) reliable: bool,
    /// Give up after this many seconds without progress.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = seconds)]
    pub(crate) timeout: f64,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// Address clients send to (port 0: any free port, printed on the first line).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: SocketAddr,
    /// The server's address.
    #[arg(long, value_name = "ADDR")]
    pub(crate) to: SocketAddr,
    /// Probability that a datagram is dropped.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub(crate) drop: f64,
    /// Probability that a datagram is sent twice.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub(crate) dup: f64,
    /// Probability that a datagram is held back and sent after the next one.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = probability)]
    pub(crate) reorder: f64,
    /// Seed of the random choices.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,
    /// Stop after this many seconds and print what was done (default: run until killed).
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub(crate) duration: Option<f64>,
}

fn event_size(text: &str) -> Result<usize, String> {
    let size: usize = text
        .parse()
        .map_err(|_| format!("'{text}' is not a whole number"))?;
    if (MIN_EVENT_SIZE..=MAX_EVENT_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(format!(
            "{size} is outside {MIN_EVENT_SIZE}..={MAX_EVENT_SIZE}"
        ))
    }
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Ok(secs),
        _ => Err(format!("'{text}' is not a positive number of seconds")),
    }
}

fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err(format!("'{text}' is not a rate in MB/s (0 or more)")),
    }
}

fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("'{text}' is not a probability between 0 and 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("netmesh").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn send_takes_the_flags_of_session_md() {
        let psk = "11".repeat(32);
        let cli = parse(&[
            "send",
            "--to",
            "127.0.0.1:9",
            "--peer-key",
            &psk,
            "--psk",
            &psk,
            "--node-id",
            "1",
            "--peer-id",
            "2",
            "--events",
            "5",
            "--size",
            "100",
            "--streams",
            "3",
            "--reliable",
            "--json",
        ])
        .unwrap();
        let Command::Send(send) = cli.command else {
            panic!("not send")
        };
        assert_eq!(
            (send.events, send.shape.size, send.shape.streams),
            (5, 100, 3)
        );
        assert!(send.shape.reliable && send.json);
        assert_eq!((send.mesh.node_id, send.mesh.peer_id), (Some(1), Some(2)));
    }

    #[test]
    fn bad_values_are_refused() {
        let psk = "11".repeat(32);
        for args in [
            &["bench", "--size", "15"][..],
            &["bench", "--size", "8105"],
            &["bench", "--senders", "0"],
            &["listen", "--bind", "nowhere", "--key", "k", "--psk", &psk],
            &[
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--key",
                "k",
                "--psk",
                &psk,
                "--node-id",
                "1",
            ],
            &[
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--key",
                "k",
                "--psk",
                &psk,
                "--timeout",
                "-1",
            ],
            &[
                "send",
                "--to",
                "127.0.0.1:9",
                "--peer-key",
                &psk,
                "--psk",
                &psk,
            ],
            &[
                "relay",
                "--listen",
                "127.0.0.1:0",
                "--to",
                "127.0.0.1:9",
                "--drop",
                "2",
            ],
            &["frobnicate"],
        ] {
            assert!(parse(args).is_err(), "{args:?} accepted");
        }
    }
}
