//! The crate against the packets and encodings net-mesh 0.23 produced
//! (`vectors/reference-packets.json` at the workspace root): every encoding must be
//! reproduced byte for byte and every packet's header must parse to its fields.

use bytes::{Bytes, BytesMut};
use netmesh_testkit::vectors::{bytes_hex, events_hex, reference, u64_hex, HeaderFields, Vectors};

use netmesh_wire::{
    FrameCodec, NackPayload, NetHeader, PacketFlags, AAD_SIZE, EVENT_LEN_PREFIX, HEADER_SIZE,
    MAGIC, MAX_EVENTS_PER_PACKET, MAX_PACKET_SIZE, MAX_PAYLOAD_SIZE, NACK_SIZE, NONCE_SIZE,
    PAYLOAD_LEN_OFFSET, TAG_SIZE, VERSION,
};

fn vectors() -> Vectors {
    reference()
}

/// The nonce prefix of WIRE.md: LE bytes of the XOR of the session id's two halves.
fn nonce(session_id: u64, counter: u64) -> [u8; NONCE_SIZE] {
    let [low, high] = [session_id & 0xffff_ffff, session_id >> 32]
        .map(|half| u32::try_from(half).expect("a 32-bit half"));
    let mut nonce = [0; NONCE_SIZE];
    nonce[..4].copy_from_slice(&(low ^ high).to_le_bytes());
    nonce[4..].copy_from_slice(&counter.to_le_bytes());
    nonce
}

/// The header the vector's fields describe.
fn to_header(fields: &HeaderFields) -> NetHeader {
    NetHeader {
        magic: fields.magic,
        version: fields.version,
        flags: PacketFlags::from_bits(fields.flags),
        priority: fields.priority,
        hop_ttl: fields.hop_ttl,
        hop_count: fields.hop_count,
        frag_flags: fields.frag_flags,
        subprotocol_id: fields.subprotocol_id,
        channel_hash: fields.channel_hash,
        nonce: bytes_hex(&fields.nonce).try_into().expect("12-byte nonce"),
        session_id: u64_hex(&fields.session_id),
        stream_id: u64_hex(&fields.stream_id),
        sequence: u64_hex(&fields.sequence),
        origin_hash: u64_hex(&fields.origin_hash),
        subnet_id: fields.subnet_id,
        fragment_id: fields.fragment_id,
        fragment_offset: fields.fragment_offset,
        payload_len: fields.payload_len,
        event_count: fields.event_count,
    }
}

#[test]
fn constants_match_the_reference() {
    let c = vectors().constants;
    assert_eq!(c.EVENT_LEN_PREFIX, EVENT_LEN_PREFIX);
    assert_eq!(c.EVENT_LEN_PREFIX, FrameCodec::LEN_SIZE);
    assert_eq!(c.HEADER_SIZE, HEADER_SIZE);
    assert_eq!(c.MAGIC, MAGIC);
    assert_eq!(c.MAX_EVENTS_PER_PACKET, MAX_EVENTS_PER_PACKET);
    assert_eq!(
        c.MAX_EVENTS_PER_PACKET,
        usize::from(NetHeader::MAX_EVENTS_PER_PACKET)
    );
    assert_eq!(c.MAX_PACKET_SIZE, MAX_PACKET_SIZE);
    assert_eq!(c.MAX_PAYLOAD_SIZE, MAX_PAYLOAD_SIZE);
    assert_eq!(c.NACK_SIZE, NACK_SIZE);
    assert_eq!(c.NACK_SIZE, NackPayload::SIZE);
    assert_eq!(c.NONCE_SIZE, NONCE_SIZE);
    assert_eq!(c.PAYLOAD_LEN_OFFSET, PAYLOAD_LEN_OFFSET);
    assert_eq!(c.TAG_SIZE, TAG_SIZE);
    assert_eq!(c.VERSION, VERSION);
}

#[test]
fn headers_encode_parse_and_authenticate_like_the_reference() {
    let headers = vectors().headers;
    assert!(!headers.is_empty());
    for (i, vector) in headers.iter().enumerate() {
        let header = to_header(&vector.header);
        let bytes = bytes_hex(&vector.bytes);
        let aad = bytes_hex(&vector.aad);
        assert_eq!(header.to_bytes().as_slice(), bytes, "headers[{i}] bytes");
        assert_eq!(aad.len(), AAD_SIZE, "headers[{i}] aad length");
        assert_eq!(header.aad().as_slice(), aad, "headers[{i}] aad");
        let raw: [u8; HEADER_SIZE] = bytes.clone().try_into().expect("68 bytes");
        assert_eq!(
            netmesh_wire::aad_from_bytes(&raw).as_slice(),
            aad,
            "headers[{i}] raw aad"
        );
        assert_eq!(
            NetHeader::from_bytes(&bytes),
            Some(header),
            "headers[{i}] from_bytes"
        );
        // `valid` is the reference's own validate(): the same checks parse makes.
        assert_eq!(
            header.validate().is_ok(),
            vector.valid,
            "headers[{i}] validate"
        );
        match NetHeader::parse(&bytes) {
            Ok(parsed) => {
                assert!(
                    vector.valid,
                    "headers[{i}] parsed but the reference calls it invalid"
                );
                assert_eq!(parsed, header, "headers[{i}] parse");
            }
            Err(error) => {
                assert!(!vector.valid, "headers[{i}] refused: {error}");
                assert_eq!(header.validate(), Err(error), "headers[{i}] same error");
            }
        }
    }
}

#[test]
fn event_frames_encode_and_decode_like_the_reference() {
    let frames = vectors().event_frames;
    assert!(!frames.is_empty());
    for (i, vector) in frames.iter().enumerate() {
        let events = events_hex(&vector.events);
        let bytes = bytes_hex(&vector.bytes);
        let mut buf = BytesMut::new();
        let written = FrameCodec::write_events(&events, &mut buf);
        assert_eq!(&buf[..], bytes, "event_frames[{i}] bytes");
        assert_eq!(written, bytes.len(), "event_frames[{i}] written");
        assert_eq!(
            FrameCodec::calculate_size(&events),
            bytes.len(),
            "event_frames[{i}] size"
        );

        let payload = Bytes::from(bytes);
        let strict: Vec<Bytes> = FrameCodec::decode_strict(payload.clone(), events.len())
            .expect("strict")
            .collect();
        assert_eq!(strict, events, "event_frames[{i}] decode_strict");
        let lenient = FrameCodec::read_events(payload.clone(), events.len());
        assert_eq!(lenient, events, "event_frames[{i}] read_events");
        let borrowed: Vec<&[u8]> = FrameCodec::iter(&payload)
            .collect::<Result<_, _>>()
            .expect("iter");
        assert!(borrowed
            .into_iter()
            .eq(events.iter().map(|event| &event[..])));
    }
}

#[test]
fn nacks_encode_decode_and_list_missing_like_the_reference() {
    let nacks = vectors().nacks;
    assert!(!nacks.is_empty());
    for (i, vector) in nacks.iter().enumerate() {
        let nack = NackPayload {
            next_expected: u64_hex(&vector.next_expected),
            missing_bitmap: u64_hex(&vector.missing_bitmap),
        };
        let bytes = bytes_hex(&vector.bytes);
        assert_eq!(nack.to_bytes().as_slice(), bytes, "nacks[{i}] bytes");
        assert_eq!(
            NackPayload::from_bytes(&bytes),
            Some(nack),
            "nacks[{i}] from_bytes"
        );
        assert_eq!(NackPayload::parse(&bytes), Ok(nack), "nacks[{i}] parse");
        let missing: Vec<u64> = vector.missing.iter().map(|seq| u64_hex(seq)).collect();
        assert_eq!(
            nack.missing_sequences().collect::<Vec<_>>(),
            missing,
            "nacks[{i}] missing"
        );
    }
}

#[test]
fn data_packet_headers_carry_the_builder_inputs() {
    let packets = vectors().data_packets;
    assert!(!packets.is_empty());
    for (i, vector) in packets.iter().enumerate() {
        assert_eq!(vector.kind, "data", "data_packets[{i}] kind");
        let packet = bytes_hex(&vector.packet);
        let events = events_hex(&vector.events);
        let header = NetHeader::parse(&packet).expect("data packet header parses");
        let session_id = u64_hex(&vector.session_id);
        assert_eq!(header.session_id, session_id, "data_packets[{i}] session");
        assert_eq!(
            header.stream_id,
            u64_hex(&vector.stream_id),
            "data_packets[{i}] stream"
        );
        assert_eq!(
            header.sequence,
            u64_hex(&vector.sequence),
            "data_packets[{i}] sequence"
        );
        assert_eq!(header.flags.bits(), vector.flags, "data_packets[{i}] flags");
        assert_eq!(
            header.origin_hash,
            u64_hex(&vector.origin_hash),
            "data_packets[{i}] origin"
        );
        assert_eq!(
            header.channel_hash, vector.channel_hash,
            "data_packets[{i}] channel"
        );
        assert_eq!(
            header.subprotocol_id, vector.subprotocol_id,
            "data_packets[{i}] subprotocol"
        );
        assert_eq!(
            usize::from(header.event_count),
            events.len(),
            "data_packets[{i}] count"
        );
        let payload_len = FrameCodec::calculate_size(&events);
        assert_eq!(
            usize::from(header.payload_len),
            payload_len,
            "data_packets[{i}] payload"
        );
        assert_eq!(
            packet.len(),
            HEADER_SIZE + payload_len + TAG_SIZE,
            "data_packets[{i}] len"
        );

        // The whole header is what NetHeader::new and the builders give.
        let built = NetHeader::new(
            session_id,
            header.stream_id,
            header.sequence,
            nonce(session_id, vector.counter),
            header.payload_len,
            header.event_count,
            PacketFlags::from_bits(vector.flags),
        )
        .with_origin(header.origin_hash)
        .with_channel_hash(vector.channel_hash)
        .with_subprotocol(vector.subprotocol_id);
        assert_eq!(header, built, "data_packets[{i}] header");
        assert_eq!(built.to_bytes().as_slice(), &packet[..HEADER_SIZE]);
    }
}

#[test]
fn heartbeat_headers_are_heartbeat_with_the_nonce() {
    let heartbeats = vectors().heartbeats;
    assert!(!heartbeats.is_empty());
    for (i, vector) in heartbeats.iter().enumerate() {
        let packet = bytes_hex(&vector.packet);
        assert_eq!(
            packet.len(),
            HEADER_SIZE + TAG_SIZE,
            "heartbeats[{i}] length"
        );
        let session_id = u64_hex(&vector.session_id);
        let header = NetHeader::parse(&packet).expect("heartbeat header parses");
        let mut expected = NetHeader::heartbeat(session_id);
        expected.nonce = nonce(session_id, vector.counter);
        assert_eq!(header, expected, "heartbeats[{i}]");
        assert!(header.flags.is_heartbeat());
        assert_eq!((header.payload_len, header.event_count), (0, 0));
    }
}

#[test]
fn handshake_packets_are_header_and_cleartext() {
    let handshakes = vectors().handshakes;
    assert!(!handshakes.is_empty());
    for (i, vector) in handshakes.iter().enumerate() {
        let packet = bytes_hex(&vector.packet);
        let payload = bytes_hex(&vector.payload);
        let len = u16::try_from(payload.len()).expect("handshake payload fits u16");
        let header = NetHeader::parse(&packet).expect("handshake header parses");
        assert_eq!(header, NetHeader::handshake(len), "handshakes[{i}] header");
        assert_eq!(
            NetHeader::handshake(len).to_bytes().as_slice(),
            &packet[..HEADER_SIZE]
        );
        assert_eq!(&packet[HEADER_SIZE..], payload, "handshakes[{i}] payload");
    }
}
