#![no_main]
//! NACK payloads decode only at exactly 16 bytes and roundtrip.

use libfuzzer_sys::fuzz_target;
use netmesh_wire::NackPayload;

fuzz_target!(|data: &[u8]| {
    match NackPayload::from_bytes(data) {
        Some(nack) => {
            assert_eq!(&nack.to_bytes()[..], data);
            let missing = nack.missing_sequences().count();
            assert_eq!(missing, 1 + nack.missing_bitmap.count_ones() as usize);
        }
        None => assert_ne!(data.len(), NackPayload::SIZE),
    }
});
