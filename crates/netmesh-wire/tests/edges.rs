//! The limits of the format, exactly at and just past each bound.

use bytes::{Bytes, BytesMut};

use netmesh_wire::{
    batches, FrameCodec, NetHeader, PacketFlags, WireError, HEADER_SIZE, MAX_EVENTS_PER_PACKET,
    MAX_PACKET_SIZE, MAX_PAYLOAD_SIZE, TAG_SIZE,
};

/// The longest event that fits a packet alone.
const MAX_EVENT: usize = MAX_PAYLOAD_SIZE - 4;

fn framed(events: &[Bytes]) -> Bytes {
    let mut buf = BytesMut::new();
    FrameCodec::write_events(events, &mut buf);
    buf.freeze()
}

#[test]
fn payload_of_exactly_max_payload_size_is_one_packet() {
    let events = [
        Bytes::from(vec![0x11; 1000]),
        Bytes::from(vec![0x22; MAX_PAYLOAD_SIZE - 1008]),
    ];
    assert_eq!(FrameCodec::calculate_size(&events), MAX_PAYLOAD_SIZE);
    assert_eq!(batches(&events).collect::<Vec<_>>(), [Ok(&events[..])]);
    let payload = framed(&events);
    assert_eq!(payload.len(), MAX_PAYLOAD_SIZE);
    assert!(FrameCodec::decode_strict(payload, 2)
        .unwrap()
        .eq(events.iter().cloned()));

    let header = NetHeader::new(1, 2, 3, [0; 12], 8108, 2, PacketFlags::NONE);
    assert_eq!(NetHeader::parse(&header.to_bytes()), Ok(header));
    assert_eq!(HEADER_SIZE + MAX_PAYLOAD_SIZE + TAG_SIZE, MAX_PACKET_SIZE);
}

#[test]
fn payload_one_past_max_is_refused_by_header_and_split_by_batches() {
    let header = NetHeader::new(1, 2, 3, [0; 12], 8109, 2, PacketFlags::NONE);
    assert_eq!(
        NetHeader::parse(&header.to_bytes()),
        Err(WireError::PayloadTooLong {
            len: 8109,
            max: 8108
        })
    );
    let events = [
        Bytes::from(vec![0; 1000]),
        Bytes::from(vec![0; MAX_PAYLOAD_SIZE - 1007]),
    ];
    let sizes: Vec<usize> = batches(&events).map(|batch| batch.unwrap().len()).collect();
    assert_eq!(sizes, [1, 1]);
}

#[test]
fn exactly_max_events_per_packet_fit_one_packet() {
    let events = vec![Bytes::new(); MAX_EVENTS_PER_PACKET];
    assert_eq!(FrameCodec::calculate_size(&events), MAX_PAYLOAD_SIZE);
    assert_eq!(batches(&events).count(), 1);
    let payload = framed(&events);
    let frames = FrameCodec::decode_strict(payload.clone(), MAX_EVENTS_PER_PACKET).unwrap();
    assert_eq!(frames.len(), MAX_EVENTS_PER_PACKET);
    assert!(frames.into_iter().all(|event| event.is_empty()));

    let header = NetHeader::new(1, 2, 3, [0; 12], 8108, 2027, PacketFlags::NONE);
    assert_eq!(NetHeader::parse(&header.to_bytes()), Ok(header));
    let over = NetHeader {
        event_count: 2028,
        ..header
    };
    assert_eq!(
        over.validate(),
        Err(WireError::TooManyEvents {
            count: 2028,
            max: 2027
        })
    );
}

#[test]
fn one_event_past_the_cap_starts_a_new_batch() {
    let events = vec![Bytes::from_static(b"e"); MAX_EVENTS_PER_PACKET + 1];
    let sizes: Vec<usize> = batches(&events).map(|batch| batch.unwrap().len()).collect();
    // 1621 frames of 5 bytes fill 8105 of 8108 bytes before the count cap matters.
    assert_eq!(sizes, [1621, MAX_EVENTS_PER_PACKET + 1 - 1621]);
}

#[test]
fn largest_event_goes_alone_in_a_batch() {
    let big = Bytes::from(vec![0xee; MAX_EVENT]);
    let events = [
        Bytes::from_static(b"a"),
        big.clone(),
        Bytes::from_static(b"b"),
    ];
    let split: Vec<&[Bytes]> = batches(&events).map(Result::unwrap).collect();
    assert_eq!(split, [&events[..1], &events[1..2], &events[2..]]);
    let payload = framed(&events[1..2]);
    assert_eq!(payload.len(), MAX_PAYLOAD_SIZE);
    assert_eq!(
        FrameCodec::decode_strict(payload, 1).unwrap().next(),
        Some(big)
    );
}

#[test]
fn event_one_byte_too_large_is_an_error_not_a_drop() {
    let events = [Bytes::from(vec![0; MAX_EVENT + 1])];
    let mut split = batches(&events);
    assert_eq!(
        split.next(),
        Some(Err(WireError::EventTooLarge {
            index: 0,
            len: MAX_PAYLOAD_SIZE - 3,
            max: MAX_EVENT
        }))
    );
    assert_eq!(split.next(), None);
}

#[test]
fn lying_length_prefix_is_an_error_without_allocation() {
    let mut data = vec![0xff, 0xff, 0xff, 0xff];
    data.extend_from_slice(b"tiny");
    let payload = Bytes::from(data);
    let expected = WireError::FrameTruncated {
        index: 0,
        len: 0xffff_ffff,
        available: 4,
    };
    assert_eq!(FrameCodec::validate_strict(&payload, 1), Err(expected));
    assert_eq!(
        FrameCodec::decode_strict(payload.clone(), 1).unwrap_err(),
        expected
    );
    assert_eq!(FrameCodec::iter(&payload).next(), Some(Err(expected)));

    let lenient = FrameCodec::read_events(payload.clone(), usize::MAX);
    assert!(lenient.is_empty());
    // Sized by what 8 bytes could hold (two prefixes), not by the declared count.
    assert!(lenient.capacity() <= 2);
}

#[test]
fn huge_declared_count_ends_at_the_end_of_the_bytes() {
    let payload = framed(&[Bytes::from_static(b"x"), Bytes::new()]);
    assert_eq!(
        FrameCodec::validate_strict(&payload, usize::MAX),
        Err(WireError::TooFewFrames {
            declared: usize::MAX,
            found: 2
        })
    );
    assert_eq!(FrameCodec::read_events(payload, usize::MAX).len(), 2);
}

#[test]
fn header_one_byte_short_is_too_short() {
    let bytes = NetHeader::default().to_bytes();
    assert_eq!(
        NetHeader::parse(&bytes[..HEADER_SIZE - 1]),
        Err(WireError::TooShort { len: 67, need: 68 })
    );
    assert_eq!(NetHeader::from_bytes(&bytes[..HEADER_SIZE - 1]), None);
}

#[test]
fn extreme_field_values_roundtrip() {
    let header = NetHeader {
        flags: PacketFlags::from_bits(u8::MAX),
        priority: u8::MAX,
        hop_count: u8::MAX,
        session_id: u64::MAX,
        stream_id: u64::MAX,
        sequence: u64::MAX,
        origin_hash: u64::MAX,
        subnet_id: u32::MAX,
        nonce: [0xff; 12],
        ..NetHeader::default()
    }
    .with_fragment(u16::MAX, u16::MAX, u8::MAX);
    assert_eq!(NetHeader::parse(&header.to_bytes()), Ok(header));
}
