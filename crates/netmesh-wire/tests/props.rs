//! Property tests: encodings roundtrip, the AAD is the documented byte selection,
//! batches partition their input, and no decoder panics on any bytes or count.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use netmesh_wire::{
    aad_from_bytes, batches, FrameCodec, NackPayload, NetHeader, PacketFlags, WireError,
    HEADER_SIZE, MAGIC, MAX_EVENTS_PER_PACKET, MAX_PAYLOAD_SIZE, VERSION,
};

/// MAX_PAYLOAD_SIZE as the header's `payload_len` type.
const MAX_PAYLOAD_LEN: u16 = 8108;
const _: () = assert!(MAX_PAYLOAD_LEN as usize == MAX_PAYLOAD_SIZE);

prop_compose! {
    /// Any field values at all, valid or not.
    fn any_header()(
        magic in prop_oneof![Just(MAGIC), any::<u16>()],
        version in prop_oneof![Just(VERSION), any::<u8>()],
        small in any::<[u8; 5]>(),
        subprotocol_id in any::<u16>(),
        channel_hash in any::<u16>(),
        nonce in any::<[u8; 12]>(),
        ids in any::<[u64; 4]>(),
        subnet_id in any::<u32>(),
        fragment in any::<[u16; 2]>(),
        payload_len in prop_oneof![0..=MAX_PAYLOAD_LEN, any::<u16>()],
        event_count in prop_oneof![0..=NetHeader::MAX_EVENTS_PER_PACKET, any::<u16>()],
    ) -> NetHeader {
        let [flags, priority, hop_ttl, hop_count, frag_flags] = small;
        let [session_id, stream_id, sequence, origin_hash] = ids;
        NetHeader {
            magic,
            version,
            flags: PacketFlags::from_bits(flags),
            priority,
            hop_ttl,
            hop_count,
            frag_flags,
            subprotocol_id,
            channel_hash,
            nonce,
            session_id,
            stream_id,
            sequence,
            origin_hash,
            subnet_id,
            fragment_id: fragment[0],
            fragment_offset: fragment[1],
            payload_len,
            event_count,
        }
    }
}

/// Events small enough to keep cases fast, including empty ones.
fn events(max_len: usize, max_count: usize) -> impl Strategy<Value = Vec<Bytes>> {
    prop::collection::vec(
        prop::collection::vec(any::<u8>(), 0..=max_len),
        0..=max_count,
    )
    .prop_map(|events| events.into_iter().map(Bytes::from).collect())
}

/// Lengths only: the contents do not matter to batching, so share one zero buffer.
fn event_lens() -> impl Strategy<Value = Vec<Bytes>> {
    let lens = prop_oneof![
        4 => 0..64usize,
        2 => 0..=MAX_PAYLOAD_SIZE - 4,
        1 => Just(MAX_PAYLOAD_SIZE - 4),
    ];
    prop::collection::vec(lens, 0..300).prop_map(|lens| {
        let zeros = Bytes::from(vec![0; MAX_PAYLOAD_SIZE]);
        lens.into_iter().map(|len| zeros.slice(..len)).collect()
    })
}

/// A count as a decoder may be handed: small, near the bytes, or absurd.
fn any_count() -> impl Strategy<Value = usize> {
    prop_oneof![
        0..16usize,
        0..=MAX_EVENTS_PER_PACKET,
        Just(usize::MAX),
        any::<usize>()
    ]
}

proptest! {
    #[test]
    fn header_roundtrips(header in any_header()) {
        let bytes = header.to_bytes();
        let mut written = [0xa5; HEADER_SIZE];
        header.write_to(&mut written);
        prop_assert_eq!(written, bytes);

        match NetHeader::parse(&bytes) {
            Ok(parsed) => prop_assert_eq!(parsed, header),
            Err(error) => prop_assert_eq!(header.validate(), Err(error)),
        }
        prop_assert_eq!(NetHeader::parse(&bytes).is_ok(), header.validate().is_ok());
        let expected = (header.magic == MAGIC).then_some(header);
        prop_assert_eq!(NetHeader::from_bytes(&bytes), expected);
    }

    #[test]
    fn from_bytes_then_to_bytes_gives_the_bytes_back(tail in any::<[u8; HEADER_SIZE - 2]>()) {
        let mut bytes = [0; HEADER_SIZE];
        bytes[..2].copy_from_slice(&MAGIC.to_le_bytes());
        bytes[2..].copy_from_slice(&tail);
        let header = NetHeader::from_bytes(&bytes).expect("right magic, 68 bytes");
        prop_assert_eq!(header.to_bytes(), bytes);
    }

    #[test]
    fn aad_is_the_documented_byte_selection(header in any_header()) {
        let bytes = header.to_bytes();
        let mut expected = bytes[..12].to_vec();
        expected[6] = 0;
        expected.extend_from_slice(&bytes[24..]);
        prop_assert_eq!(header.aad().to_vec(), expected);
        prop_assert_eq!(aad_from_bytes(&bytes), header.aad());
        let forwarded = NetHeader { hop_count: header.hop_count.wrapping_add(1), ..header };
        prop_assert_eq!(forwarded.aad(), header.aad());
    }

    #[test]
    fn frames_roundtrip(events in events(100, 40), prefix in any::<Vec<u8>>()) {
        let mut buf = BytesMut::from(&prefix[..]);
        let written = FrameCodec::write_events(&events, &mut buf);
        prop_assert_eq!(written, FrameCodec::calculate_size(&events));
        prop_assert_eq!(buf.len(), prefix.len() + written);
        let payload = buf.freeze().slice(prefix.len()..);

        let strict = FrameCodec::decode_strict(payload.clone(), events.len()).unwrap();
        prop_assert_eq!(strict.len(), events.len());
        prop_assert_eq!(strict.collect::<Vec<_>>(), events.clone());
        prop_assert_eq!(FrameCodec::read_events(payload.clone(), events.len()), events.clone());
        let borrowed: Vec<&[u8]> = FrameCodec::iter(&payload).collect::<Result<_, _>>().unwrap();
        prop_assert!(borrowed.into_iter().eq(events.iter().map(|event| &event[..])));

        // Any other count is an error, never a silent success.
        prop_assert!(FrameCodec::validate_strict(&payload, events.len() + 1).is_err());
        if let Some(fewer) = events.len().checked_sub(1) {
            prop_assert!(FrameCodec::validate_strict(&payload, fewer).is_err());
        }
    }

    #[test]
    fn batches_partition_the_input_into_packets(events in event_lens()) {
        let mut rejoined = Vec::new();
        for batch in batches(&events) {
            let batch = batch.unwrap();
            prop_assert!(!batch.is_empty());
            prop_assert!(batch.len() <= MAX_EVENTS_PER_PACKET);
            prop_assert!(FrameCodec::calculate_size(batch) <= MAX_PAYLOAD_SIZE);
            rejoined.extend_from_slice(batch);
        }
        prop_assert_eq!(rejoined, events);
    }

    #[test]
    fn batches_are_greedy(events in event_lens()) {
        let all: Vec<&[Bytes]> = batches(&events).map(Result::unwrap).collect();
        let mut start = 0;
        for pair in all.windows(2) {
            start += pair[0].len();
            // The next event did not fit in the batch before it.
            let grown = &events[start - pair[0].len()..=start];
            prop_assert!(
                grown.len() > MAX_EVENTS_PER_PACKET
                    || FrameCodec::calculate_size(grown) > MAX_PAYLOAD_SIZE
            );
        }
    }

    #[test]
    fn batches_stop_at_the_first_oversized_event(
        mut events in event_lens(),
        at in any::<prop::sample::Index>(),
        extra in 1..10_000usize,
    ) {
        let index = at.index(events.len() + 1);
        events.insert(index, Bytes::from(vec![0; MAX_PAYLOAD_SIZE - 4 + extra]));
        let results: Vec<_> = batches(&events).collect();
        let (last, ok) = results.split_last().unwrap();
        prop_assert_eq!(
            *last,
            Err(WireError::EventTooLarge { index, len: MAX_PAYLOAD_SIZE - 4 + extra, max: 8104 })
        );
        let before: usize = ok.iter().map(|batch| batch.unwrap().len()).sum();
        prop_assert_eq!(before, index);
    }

    #[test]
    fn nack_roundtrips(next_expected in any::<u64>(), missing_bitmap in any::<u64>()) {
        let nack = NackPayload { next_expected, missing_bitmap };
        prop_assert_eq!(NackPayload::from_bytes(&nack.to_bytes()), Some(nack));
        let missing: Vec<u64> = nack.missing_sequences().collect();
        prop_assert_eq!(missing[0], next_expected);
        prop_assert!(missing.windows(2).all(|pair| pair[0] < pair[1]));
        let expected_bits = (0..64u64)
            .filter(|bit| missing_bitmap >> bit & 1 == 1)
            .filter(|bit| next_expected.checked_add(1 + bit).is_some())
            .count();
        prop_assert_eq!(missing.len(), 1 + expected_bits);
    }

    #[test]
    fn decoders_never_panic_on_any_bytes(data in any::<Vec<u8>>(), count in any_count()) {
        let _ = NetHeader::parse(&data);
        let _ = NetHeader::from_bytes(&data);
        let _ = NackPayload::from_bytes(&data);
        let _ = NackPayload::parse(&data);
        let payload = Bytes::from(data);
        let lenient = FrameCodec::read_events(payload.clone(), count);
        prop_assert!(lenient.len() <= count);
        prop_assert!(lenient.capacity() <= payload.len() / 4);
        let walked = FrameCodec::iter(&payload).count();
        prop_assert!(walked <= payload.len() / 4 + 1);
        if let Ok(frames) = FrameCodec::decode_strict(payload.clone(), count) {
            prop_assert_eq!(frames.len(), count);
            prop_assert_eq!(frames.count(), count);
        }
    }

    #[test]
    fn decoders_never_panic_on_framed_looking_bytes(
        lens in prop::collection::vec(prop_oneof![0..8u32, Just(u32::MAX), any::<u32>()], 0..8),
        filler in 0..64usize,
        count in any_count(),
    ) {
        // Plausible prefixes with short bodies reach the deeper error paths.
        let mut data = Vec::new();
        for len in lens {
            data.extend_from_slice(&len.to_le_bytes());
            data.extend(std::iter::repeat_n(0x5a, usize::try_from(len).unwrap().min(filler)));
        }
        let payload = Bytes::from(data);
        let _ = FrameCodec::validate_strict(&payload, count);
        let _ = FrameCodec::decode_strict(payload.clone(), count).map(Iterator::count);
        let _ = FrameCodec::read_events(payload.clone(), count);
        let _ = FrameCodec::iter(&payload).count();
    }
}
