//! The reference implementation's packets (net-mesh 0.23), reproduced byte for byte by
//! fresh pools and opened by the opener.

// Test data: counters, indices and sizes here are small by construction.
#![allow(clippy::cast_possible_truncation)]

use bytes::Bytes;
use netmesh_pool::{handshake_payload, PacketOpener, PacketPool, ThreadLocalPool};
use netmesh_wire::PacketFlags;
use serde::Deserialize;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/reference-packets.json"
));

#[derive(Deserialize)]
struct Vectors {
    data_packets: Vec<DataPacket>,
    heartbeats: Vec<Heartbeat>,
    handshakes: Vec<Handshake>,
}

#[derive(Deserialize)]
struct DataPacket {
    channel_hash: u16,
    counter: u64,
    events: Vec<String>,
    flags: u8,
    key: String,
    origin_hash: String,
    packet: String,
    sequence: String,
    session_id: String,
    stream_id: String,
    subprotocol_id: u16,
}

#[derive(Deserialize)]
struct Heartbeat {
    counter: u64,
    key: String,
    packet: String,
    session_id: String,
}

#[derive(Deserialize)]
struct Handshake {
    packet: String,
    payload: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(VECTORS).expect("vector file parses")
}

fn u64_hex(text: &str) -> u64 {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex u64")
}

fn key(text: &str) -> [u8; 32] {
    hex::decode(text)
        .expect("hex key")
        .try_into()
        .expect("32-byte key")
}

fn bytes(text: &str) -> Bytes {
    Bytes::from(hex::decode(text).expect("hex bytes"))
}

impl DataPacket {
    fn events(&self) -> Vec<Bytes> {
        self.events.iter().map(|e| bytes(e)).collect()
    }
}

/// Runs of consecutive vectors that one fresh sender produced: same key and session,
/// counters from 0.
fn sessions<T>(
    items: &[T],
    key_of: impl Fn(&T) -> (&str, &str),
    counter_of: impl Fn(&T) -> u64,
) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=items.len() {
        if i == items.len() || key_of(&items[i]) != key_of(&items[start]) {
            runs.push(&items[start..i]);
            start = i;
        }
    }
    for run in &runs {
        for (expected, item) in run.iter().enumerate() {
            assert_eq!(
                counter_of(item),
                expected as u64,
                "vector counters run from 0"
            );
        }
    }
    runs
}

fn data_sessions(v: &Vectors) -> Vec<&[DataPacket]> {
    sessions(&v.data_packets, |p| (&p.key, &p.session_id), |p| p.counter)
}

#[test]
fn packet_pool_reproduces_every_data_packet() {
    let v = vectors();
    let mut checked = 0;
    for run in data_sessions(&v) {
        let first = &run[0];
        let pool = PacketPool::with_origin(4, &key(&first.key), u64_hex(&first.session_id), 0);
        for p in run {
            let mut builder = pool.get();
            builder.set_origin_hash(u64_hex(&p.origin_hash));
            builder.set_channel_hash(p.channel_hash);
            let packet = builder.build_subprotocol(
                u64_hex(&p.stream_id),
                u64_hex(&p.sequence),
                &p.events(),
                PacketFlags::from_bits(p.flags),
                p.subprotocol_id,
            );
            assert_eq!(
                hex::encode(&packet),
                p.packet,
                "session {} counter {}",
                p.session_id,
                p.counter
            );
            checked += 1;
        }
    }
    assert_eq!(checked, v.data_packets.len());
}

#[test]
fn thread_local_pool_reproduces_every_data_packet() {
    let v = vectors();
    let mut checked = 0;
    for run in data_sessions(&v) {
        let first = &run[0];
        let pool = ThreadLocalPool::with_origin(
            4,
            &key(&first.key),
            u64_hex(&first.session_id),
            u64_hex(&first.origin_hash),
        );
        for p in run {
            let mut builder = pool.get();
            assert_eq!(
                first.origin_hash, p.origin_hash,
                "one origin per vector session"
            );
            builder.set_channel_hash(p.channel_hash);
            let events = p.events();
            let packet = if p.subprotocol_id == 0 {
                builder.build(
                    u64_hex(&p.stream_id),
                    u64_hex(&p.sequence),
                    &events,
                    PacketFlags::from_bits(p.flags),
                )
            } else {
                builder.build_subprotocol(
                    u64_hex(&p.stream_id),
                    u64_hex(&p.sequence),
                    &events,
                    PacketFlags::from_bits(p.flags),
                    p.subprotocol_id,
                )
            };
            assert_eq!(
                hex::encode(&packet),
                p.packet,
                "session {} counter {}",
                p.session_id,
                p.counter
            );
            checked += 1;
        }
    }
    assert_eq!(checked, v.data_packets.len());
}

#[test]
fn both_pools_reproduce_every_heartbeat() {
    let v = vectors();
    for run in sessions(&v.heartbeats, |h| (&h.key, &h.session_id), |h| h.counter) {
        let k = key(&run[0].key);
        let session = u64_hex(&run[0].session_id);
        let shared = PacketPool::new(2, &k, session);
        let local = ThreadLocalPool::new(2, &k, session);
        for h in run {
            assert_eq!(hex::encode(shared.get().build_heartbeat()), h.packet);
            assert_eq!(hex::encode(local.get().build_heartbeat()), h.packet);
        }
    }
}

#[test]
fn both_pools_reproduce_every_handshake() {
    let v = vectors();
    let shared = PacketPool::new(1, &[0; 32], 0);
    let local = ThreadLocalPool::new(1, &[0; 32], 0);
    for h in &v.handshakes {
        let payload = hex::decode(&h.payload).unwrap();
        assert_eq!(
            hex::encode(shared.get().build_handshake(&payload)),
            h.packet
        );
        assert_eq!(hex::encode(local.get().build_handshake(&payload)), h.packet);
        assert_eq!(handshake_payload(&bytes(&h.packet)).unwrap(), payload);
    }
}

#[test]
fn opener_opens_every_data_packet_with_the_vector_events() {
    let v = vectors();
    for run in data_sessions(&v) {
        let opener = PacketOpener::new(&key(&run[0].key), u64_hex(&run[0].session_id));
        for p in run {
            let opened = opener
                .open(bytes(&p.packet))
                .expect("reference packet opens");
            assert_eq!(opened.events().collect::<Vec<_>>(), p.events());
            let header = opened.header();
            assert_eq!(header.stream_id, u64_hex(&p.stream_id));
            assert_eq!(header.sequence, u64_hex(&p.sequence));
            assert_eq!(header.flags.bits(), p.flags);
            assert_eq!(header.channel_hash, p.channel_hash);
            assert_eq!(header.subprotocol_id, p.subprotocol_id);
            assert_eq!(header.origin_hash, u64_hex(&p.origin_hash));
        }
        assert_eq!(opener.highest_counter(), Some(run.len() as u64 - 1));
    }
}

#[test]
fn opener_opens_every_heartbeat_with_no_events() {
    let v = vectors();
    for h in &v.heartbeats {
        let opener = PacketOpener::new(&key(&h.key), u64_hex(&h.session_id));
        let opened = opener
            .open(bytes(&h.packet))
            .expect("reference heartbeat opens");
        assert!(opened.header().flags.is_heartbeat());
        assert_eq!(opened.events().count(), 0);
        assert!(opened.payload().is_empty());
    }
}

#[test]
fn opener_refuses_handshakes() {
    let v = vectors();
    let opener = PacketOpener::new(&[0; 32], 0);
    for h in &v.handshakes {
        assert_eq!(
            opener.open(bytes(&h.packet)).unwrap_err(),
            netmesh_pool::OpenError::Handshake
        );
    }
}

#[test]
fn every_entry_point_opens_every_vector_alike() {
    use bytes::BytesMut;
    use netmesh_pool::OpenError;
    let v = vectors();
    let mut opened = 0;
    for run in data_sessions(&v) {
        let (k, session) = (key(&run[0].key), u64_hex(&run[0].session_id));
        let [in_place, unique, exclusive, shared] =
            std::array::from_fn(|_| PacketOpener::new(&k, session));
        for p in run {
            let packet = bytes(&p.packet);
            let mut slot = packet.to_vec();
            let a = in_place.open_in_place(&mut slot).expect("opens in place");
            let events: Vec<&[u8]> = a.events().collect();
            assert_eq!(events, p.events());
            let b = unique
                .open(bytes(&p.packet))
                .expect("opens as unique Bytes");
            let c = exclusive
                .open(BytesMut::from(&packet[..]))
                .expect("opens as BytesMut");
            let d = shared.open(packet.clone()).expect("opens as shared Bytes");
            for other in [&b, &c, &d] {
                assert_eq!(other.header(), a.header());
                assert_eq!(other.payload(), a.payload());
                assert_eq!(other.events().collect::<Vec<_>>(), p.events());
            }
            opened += 1;
        }
    }
    assert_eq!(opened, v.data_packets.len());
    for h in &v.heartbeats {
        let (k, session) = (key(&h.key), u64_hex(&h.session_id));
        let opener = PacketOpener::new(&k, session);
        let mut slot = bytes(&h.packet).to_vec();
        let a = opener
            .open_in_place(&mut slot)
            .expect("heartbeat opens in place");
        assert!(a.header().flags.is_heartbeat());
        assert_eq!(a.events().count(), 0);
        let b = PacketOpener::new(&k, session)
            .open(BytesMut::from(&bytes(&h.packet)[..]))
            .expect("heartbeat opens as BytesMut");
        assert_eq!(b.header(), a.header());
        assert!(b.payload().is_empty());
    }
    for h in &v.handshakes {
        let opener = PacketOpener::new(&[0; 32], 0);
        let mut slot = bytes(&h.packet).to_vec();
        assert_eq!(
            opener.open_in_place(&mut slot).unwrap_err(),
            OpenError::Handshake
        );
        assert_eq!(
            opener.open(BytesMut::from(&slot[..])).unwrap_err(),
            OpenError::Handshake
        );
    }
}
