#![no_main]
//! Header parsing never panics, and what parses re-serialises to the same 68 bytes.

use libfuzzer_sys::fuzz_target;
use netmesh_wire::{NetHeader, HEADER_SIZE};

fuzz_target!(|data: &[u8]| {
    let lenient = NetHeader::from_bytes(data);
    if let Ok(header) = NetHeader::parse(data) {
        assert_eq!(&header.to_bytes()[..], &data[..HEADER_SIZE]);
        assert_eq!(lenient, Some(header));
        assert!(header.validate().is_ok());
    }
});
