//! Differential test: random packets built by netmesh and by net-mesh 0.23 must be
//! byte-identical, and netmesh must open every packet net-mesh builds.
//!
//! `cargo run --release --manifest-path tools/differential/Cargo.toml -- [CASES] [SEED]`
//!
//! Each case makes a fresh pair of pools (PacketPool or ThreadLocalPool, alternately)
//! with a random key, session and origin, and runs a random sequence of operations on
//! both: data packets (random stream, sequence, flags, channel, and events of random
//! count and sizes, caps included), subprotocol packets (ThreadLocalPool only: net-mesh's
//! PooledBuilder has no `build_subprotocol` or `set_channel_hash`), heartbeats and
//! handshakes, each through a fresh guard. Exits non-zero on the first difference.

use std::process::ExitCode;

use bytes::Bytes;
use net::adapter::net as reference;
use netmesh_pool::{OpenError, PacketOpener, PacketPool, ThreadLocalPool};
use netmesh_testkit::Rng;
use netmesh_wire::{PacketFlags, MAX_EVENTS_PER_PACKET, MAX_PAYLOAD_SIZE};

/// Events of random count and sizes whose frames fit one packet; sometimes exactly at a
/// cap (MAX_EVENTS_PER_PACKET empty events, or one event filling MAX_PAYLOAD_SIZE).
fn events(rng: &mut Rng) -> Vec<Bytes> {
    let make = |rng: &mut Rng, len: usize| {
        let fill = rng.bytes::<1>()[0];
        Bytes::from((0..len).map(|i| fill ^ (i as u8)).collect::<Vec<u8>>())
    };
    match rng.below(20) {
        0 => vec![Bytes::new(); MAX_EVENTS_PER_PACKET],
        1 => vec![make(rng, MAX_PAYLOAD_SIZE - 4)],
        2 => Vec::new(),
        _ => {
            let count = 1 + rng.index(60);
            let max = [16, 64, 300, 2000][rng.index(4)];
            let mut left = MAX_PAYLOAD_SIZE;
            let mut out = Vec::new();
            for _ in 0..count {
                let len = rng.index(max + 1);
                if len + 4 > left {
                    break;
                }
                left -= len + 4;
                out.push(make(rng, len));
            }
            out
        }
    }
}

/// One operation, applied to both implementations.
#[derive(Debug)]
enum Op {
    Data {
        stream: u64,
        sequence: u64,
        flags: u8,
        channel: Option<u16>,
        subprotocol: Option<u16>,
        events: Vec<Bytes>,
    },
    Heartbeat,
    Handshake(Vec<u8>),
}

fn op(rng: &mut Rng, thread_local: bool) -> Op {
    match rng.below(10) {
        0 => Op::Heartbeat,
        1 => {
            let len = rng.index(200);
            Op::Handshake((0..len).map(|_| rng.bytes::<1>()[0]).collect())
        }
        _ => Op::Data {
            stream: rng.next_u64() >> rng.below(64),
            sequence: rng.next_u64() >> rng.below(64),
            // Any of the six flag bits, HANDSHAKE and HEARTBEAT included: the builders
            // stamp what they are given.
            flags: rng.bytes::<1>()[0] & 0x3f,
            channel: (thread_local && rng.below(2) == 0)
                .then(|| rng.bytes::<2>())
                .map(u16::from_le_bytes),
            subprotocol: (thread_local && rng.below(2) == 0)
                .then(|| rng.bytes::<2>())
                .map(u16::from_le_bytes),
            events: events(rng),
        },
    }
}

/// The two pools of one case.
enum Pools {
    Shared(reference::PacketPool, PacketPool),
    Local(reference::ThreadLocalPool, ThreadLocalPool),
}

impl Pools {
    fn new(thread_local: bool, key: &[u8; 32], session: u64, origin: u64) -> Self {
        if thread_local {
            Self::Local(
                reference::ThreadLocalPool::with_origin(4, key, session, origin),
                ThreadLocalPool::with_origin(4, key, session, origin),
            )
        } else {
            Self::Shared(
                reference::PacketPool::with_origin(4, key, session, origin),
                PacketPool::with_origin(4, key, session, origin),
            )
        }
    }

    /// The packet each implementation builds for `op`, each through a fresh guard.
    fn build(&self, op: &Op) -> (Bytes, Bytes) {
        match (self, op) {
            (Self::Shared(theirs, ours), Op::Heartbeat) => {
                (theirs.get().build_heartbeat(), ours.get().build_heartbeat())
            }
            (Self::Local(theirs, ours), Op::Heartbeat) => {
                (theirs.get().build_heartbeat(), ours.get().build_heartbeat())
            }
            (Self::Shared(theirs, ours), Op::Handshake(payload)) => (
                theirs.get().build_handshake(payload),
                ours.get().build_handshake(payload),
            ),
            (Self::Local(theirs, ours), Op::Handshake(payload)) => (
                theirs.get().build_handshake(payload),
                ours.get().build_handshake(payload),
            ),
            (
                Self::Shared(theirs, ours),
                Op::Data {
                    stream,
                    sequence,
                    flags,
                    events,
                    ..
                },
            ) => (
                theirs.get().build(
                    *stream,
                    *sequence,
                    events,
                    reference::PacketFlags::from_bits(*flags),
                ),
                ours.get()
                    .build(*stream, *sequence, events, PacketFlags::from_bits(*flags)),
            ),
            (
                Self::Local(theirs, ours),
                Op::Data {
                    stream,
                    sequence,
                    flags,
                    channel,
                    subprotocol,
                    events,
                },
            ) => {
                let mut theirs = theirs.get();
                let mut ours = ours.get();
                // net-mesh keeps a builder's channel hash when it goes back to the pool;
                // netmesh clears it. Set it on every guard, as a caller of either must.
                theirs.set_channel_hash(channel.unwrap_or(0));
                ours.set_channel_hash(channel.unwrap_or(0));
                let (their_flags, our_flags) = (
                    reference::PacketFlags::from_bits(*flags),
                    PacketFlags::from_bits(*flags),
                );
                match subprotocol {
                    Some(id) => (
                        theirs.build_subprotocol(*stream, *sequence, events, their_flags, *id),
                        ours.build_subprotocol(*stream, *sequence, events, our_flags, *id),
                    ),
                    None => (
                        theirs.build(*stream, *sequence, events, their_flags),
                        ours.build(*stream, *sequence, events, our_flags),
                    ),
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let cases: u64 = args
        .next()
        .map_or(2_000, |a| a.parse().expect("CASES is a number"));
    let seed: u64 = args.next().map_or(0x006e_6574_6d65_7368, |a| {
        a.parse().expect("SEED is a number")
    });
    let mut rng = Rng::new(seed);
    let (mut packets, mut bytes, mut events_opened) = (0u64, 0u64, 0u64);
    for case in 0..cases {
        let key = rng.bytes::<32>();
        let session = rng.next_u64();
        let origin = if rng.below(4) == 0 { 0 } else { rng.next_u64() };
        let thread_local = case % 2 == 1;
        let pools = Pools::new(thread_local, &key, session, origin);
        let opener = PacketOpener::new(&key, session);
        for step in 0..1 + rng.below(12) {
            let op = op(&mut rng, thread_local);
            let (theirs, ours) = pools.build(&op);
            if theirs != ours {
                eprintln!(
                    "DIFFERENT: seed {seed}, case {case}, step {step}, thread_local {thread_local}\n\
                     op: {op:?}\nnet-mesh: {theirs:02x?}\nnetmesh:  {ours:02x?}"
                );
                return ExitCode::FAILURE;
            }
            packets += 1;
            bytes += ours.len() as u64;
            if let Op::Data { events, flags, .. } = &op {
                let handshake = PacketFlags::from_bits(*flags).contains(PacketFlags::HANDSHAKE);
                match opener.open(theirs) {
                    Ok(opened) if !handshake && opened.events().eq(events.iter().cloned()) => {
                        events_opened += events.len() as u64;
                    }
                    // A receiver takes the HANDSHAKE flag at its word and refuses to open.
                    Err(OpenError::Handshake) if handshake => {}
                    other => {
                        eprintln!("NOT OPENED: seed {seed}, case {case}, step {step}: {other:?}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    println!(
        "identical: {packets} packets ({bytes} bytes) in {cases} cases, seed {seed}; \
         netmesh opened all net-mesh data packets ({events_opened} events)"
    );
    ExitCode::SUCCESS
}
