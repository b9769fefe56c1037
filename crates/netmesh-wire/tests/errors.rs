//! One test per `WireError` variant: the input that causes it, the numbers it carries
//! and its message.

use bytes::Bytes;

use netmesh_wire::{batches, FrameCodec, NackPayload, NetHeader, WireError, MAX_PAYLOAD_SIZE};

fn header_bytes() -> [u8; 68] {
    NetHeader::heartbeat(1).to_bytes()
}

#[test]
fn too_short() {
    let error = NetHeader::parse(&header_bytes()[..20]).unwrap_err();
    assert_eq!(error, WireError::TooShort { len: 20, need: 68 });
    assert_eq!(error.to_string(), "header needs 68 bytes, got 20");
}

#[test]
fn bad_magic() {
    let mut bytes = header_bytes();
    bytes[..2].copy_from_slice(&[0x4e, 0x45]);
    let error = NetHeader::parse(&bytes).unwrap_err();
    assert_eq!(error, WireError::BadMagic { found: 0x454e });
    assert_eq!(error.to_string(), "bad magic 0x454e");
}

#[test]
fn bad_version() {
    let mut bytes = header_bytes();
    bytes[2] = 2;
    let error = NetHeader::parse(&bytes).unwrap_err();
    assert_eq!(error, WireError::BadVersion { found: 2 });
    assert_eq!(error.to_string(), "unsupported version 2");
}

#[test]
fn payload_too_long() {
    let header = NetHeader {
        payload_len: 8109,
        ..NetHeader::default()
    };
    let error = NetHeader::parse(&header.to_bytes()).unwrap_err();
    assert_eq!(
        error,
        WireError::PayloadTooLong {
            len: 8109,
            max: 8108
        }
    );
    assert_eq!(
        error.to_string(),
        "payload length 8109 exceeds maximum 8108"
    );
}

#[test]
fn too_many_events() {
    let header = NetHeader {
        event_count: u16::MAX,
        ..NetHeader::default()
    };
    let error = header.validate().unwrap_err();
    assert_eq!(
        error,
        WireError::TooManyEvents {
            count: 65535,
            max: 2027
        }
    );
    assert_eq!(error.to_string(), "event count 65535 exceeds maximum 2027");
}

#[test]
fn length_prefix_truncated() {
    let error = FrameCodec::validate_strict(b"\0\0\0\0\x03\0\0", 2).unwrap_err();
    assert_eq!(
        error,
        WireError::LengthPrefixTruncated {
            index: 1,
            available: 3
        }
    );
    assert_eq!(
        error.to_string(),
        "length prefix of frame 1 truncated: 3 of 4 bytes"
    );
}

#[test]
fn frame_truncated() {
    let error = FrameCodec::decode_strict(Bytes::from_static(b"\x05\0\0\0abc"), 1).unwrap_err();
    assert_eq!(
        error,
        WireError::FrameTruncated {
            index: 0,
            len: 5,
            available: 3
        }
    );
    assert_eq!(error.to_string(), "frame 0 length 5 exceeds remaining 3");
}

#[test]
fn too_few_frames() {
    let error = FrameCodec::validate_strict(b"\x01\0\0\0a", 3).unwrap_err();
    assert_eq!(
        error,
        WireError::TooFewFrames {
            declared: 3,
            found: 1
        }
    );
    assert_eq!(
        error.to_string(),
        "payload holds 1 frames, header declares 3"
    );
}

#[test]
fn too_many_frames() {
    let error = FrameCodec::validate_strict(b"\x01\0\0\0a\x01\0\0\0b", 1).unwrap_err();
    assert_eq!(error, WireError::TooManyFrames { declared: 1 });
    assert_eq!(
        error.to_string(),
        "payload holds more than the 1 frames the header declares"
    );
}

#[test]
fn trailing_bytes() {
    let error = FrameCodec::validate_strict(b"\x01\0\0\0a\xff\xff", 1).unwrap_err();
    assert_eq!(error, WireError::TrailingBytes { count: 2 });
    assert_eq!(error.to_string(), "2 trailing bytes after the last frame");
}

#[test]
fn nack_length() {
    let error = NackPayload::parse(&[0; 17]).unwrap_err();
    assert_eq!(error, WireError::NackLength { len: 17 });
    assert_eq!(error.to_string(), "nack payload must be 16 bytes, got 17");
    assert_eq!(
        NackPayload::parse(&[]),
        Err(WireError::NackLength { len: 0 })
    );
}

#[test]
fn event_too_large() {
    let events = [Bytes::from(vec![0; MAX_PAYLOAD_SIZE])];
    let error = batches(&events).next().unwrap().unwrap_err();
    assert_eq!(
        error,
        WireError::EventTooLarge {
            index: 0,
            len: 8108,
            max: 8104
        }
    );
    assert_eq!(
        error.to_string(),
        "event 0 of 8108 bytes exceeds the largest that fits a packet, 8104"
    );
}

// A compile-time check (it cannot fail at run time, so it is no test): this file does not
// build unless WireError is a thread-safe, copyable std error.
const _: fn() = || {
    fn is_error<E: std::error::Error + Send + Sync + Copy + 'static>() {}
    is_error::<WireError>();
};
