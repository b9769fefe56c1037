#![no_main]
//! The strict decoder never panics; what it accepts re-encodes to the same bytes, and the
//! lenient reader agrees with it.

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use netmesh_wire::FrameCodec;

fuzz_target!(|input: (u16, &[u8])| {
    let (count, data) = input;
    let payload = Bytes::copy_from_slice(data);
    let lenient = FrameCodec::read_events(payload.clone(), usize::from(count));
    if let Ok(frames) = FrameCodec::decode_strict(payload, usize::from(count)) {
        let events: Vec<Bytes> = frames.collect();
        assert_eq!(events.len(), usize::from(count));
        let mut encoded = BytesMut::new();
        FrameCodec::write_events(&events, &mut encoded);
        assert_eq!(&encoded[..], data);
        assert_eq!(lenient, events);
    }
});
