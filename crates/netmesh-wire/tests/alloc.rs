//! Decoding, batching and writing into a buffer with room never touch the heap.

use bytes::{Bytes, BytesMut};

use netmesh_testkit::alloc::{count, CountingAllocator};
use netmesh_wire::{batches, FrameCodec, NackPayload, NetHeader, PacketFlags};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made on this thread while running `f`.
fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let (allocations, _bytes, value) = count(f);
    (allocations, value)
}

#[test]
fn hot_paths_do_not_allocate() {
    let events: Vec<Bytes> = (0..100u8).map(|i| Bytes::from(vec![i; 64])).collect();
    let mut buf = BytesMut::with_capacity(2 * FrameCodec::calculate_size(&events));

    let (count, written) = allocations(|| FrameCodec::write_events(&events, &mut buf));
    assert_eq!(
        (count, written),
        (0, 6800),
        "write_events into a buffer with room"
    );

    let payload = buf.split().freeze();
    let (count, total) = allocations(|| {
        let frames = FrameCodec::decode_strict(payload.clone(), 100).unwrap();
        frames.map(|event| event.len()).sum::<usize>()
    });
    assert_eq!((count, total), (0, 6400), "decode_strict and iterate");

    let (count, walked) = allocations(|| FrameCodec::iter(&payload).count());
    assert_eq!((count, walked), (0, 100), "BorrowedEvents");

    let lying = Bytes::from_static(b"\xff\xff\xff\xff\x01\0\0\0");
    let (count, result) = allocations(|| FrameCodec::validate_strict(&lying, usize::MAX));
    assert!(result.is_err());
    assert_eq!(count, 0, "validate_strict on a lying prefix");

    let many = vec![Bytes::from_static(&[0; 700]); 1000];
    let (count, batched) = allocations(|| batches(&many).map(Result::unwrap).count());
    assert_eq!((count, batched), (0, 91), "batches");

    let header = NetHeader::new(1, 2, 3, [4; 12], 6800, 100, PacketFlags::RELIABLE);
    let (count, parsed) = allocations(|| {
        let bytes = header.to_bytes();
        (NetHeader::parse(&bytes), header.aad())
    });
    assert_eq!(
        (count, parsed.0),
        (0, Ok(header)),
        "header encode, parse and aad"
    );

    let nack = NackPayload {
        next_expected: 9,
        missing_bitmap: u64::MAX,
    };
    let (count, missing) = allocations(|| {
        NackPayload::parse(&nack.to_bytes())
            .unwrap()
            .missing_sequences()
            .count()
    });
    assert_eq!(
        (count, missing),
        (0, 65),
        "nack parse and missing_sequences"
    );
}
