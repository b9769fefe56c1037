#![no_main]
//! NACK payloads decode only at exactly 16 bytes and roundtrip.

use libfuzzer_sys::fuzz_target;
use netmesh_wire::NackPayload;

fuzz_target!(|data: &[u8]| {
    match NackPayload::from_bytes(data) {
        Some(nack) => {
            assert_eq!(&nack.to_bytes()[..], data);
            // next_expected, then next_expected + 1 + i per set bit i; sequences that would
            // pass u64::MAX are skipped, never wrapped.
            let expected: Vec<u64> = std::iter::once(nack.next_expected)
                .chain((0..64).filter(|i| nack.missing_bitmap & (1 << i) != 0).filter_map(|i| {
                    nack.next_expected.checked_add(1 + i)
                }))
                .collect();
            assert_eq!(nack.missing_sequences().collect::<Vec<_>>(), expected);
        }
        None => assert_ne!(data.len(), NackPayload::SIZE),
    }
});
