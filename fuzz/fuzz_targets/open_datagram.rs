#![no_main]
//! The opener never panics on any datagram, and without the key nothing opens.

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use netmesh_pool::PacketOpener;

fuzz_target!(|data: &[u8]| {
    let opener = PacketOpener::new(&[0x42; 32], 0x0bad_cafe_dead_beef);
    // A random datagram carrying a valid tag would be a forgery of Poly1305.
    assert!(opener.open(Bytes::copy_from_slice(data)).is_err());
    let _ = netmesh_pool::handshake_payload(&Bytes::copy_from_slice(data));
});
