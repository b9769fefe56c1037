#![no_main]
//! `PacketOpener::open_in_place` never panics, opens nothing that was not sealed with the
//! key, and agrees with `open` of a `Bytes` and of a `BytesMut` on every datagram: the
//! same header and events, or the same error.
//!
//! The first input byte picks the datagram: the rest of the input as it is, or a packet
//! sealed with the key (its events taken from the input) with the input XORed over it,
//! so that the fuzzer reaches the tag, the replay window and the frame checks.

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use netmesh_cipher::TxCounter;
use netmesh_pool::{OpenError, PacketBuilder, PacketOpener};
use netmesh_wire::{NetHeader, PacketFlags};

const KEY: [u8; 32] = [0x42; 32];
const SESSION: u64 = 0x0bad_cafe_dead_beef;

type Outcome = Result<(NetHeader, Vec<Vec<u8>>), OpenError>;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (datagram, sealed) = if mode % 2 == 0 {
        (rest.to_vec(), None)
    } else {
        // Events: the input cut into pieces of at most 16 bytes.
        let events: Vec<Bytes> = rest.chunks(16).take(40).map(Bytes::copy_from_slice).collect();
        let counter = u64::from(mode >> 1);
        let mut builder = PacketBuilder::with_shared_counter(
            &KEY,
            SESSION,
            1,
            TxCounter::starting_at(counter),
        );
        let packet = builder.build(2, counter, &events, PacketFlags::from_bits(mode & 0xe0));
        let mut datagram = packet.to_vec();
        for (byte, mask) in datagram.iter_mut().zip(rest.iter().rev()) {
            *byte ^= mask;
        }
        (datagram, Some(packet))
    };

    let fresh = || PacketOpener::new(&KEY, SESSION);
    let (in_place, whole, exclusive) = (fresh(), fresh(), fresh());
    let mut slot = datagram.clone();
    let a: Outcome = in_place
        .open_in_place(&mut slot)
        .map(|o| (*o.header(), o.events().map(<[u8]>::to_vec).collect()));
    let b: Outcome = whole
        .open(Bytes::from(datagram.clone()))
        .map(|o| (*o.header(), o.events().map(|e| e.to_vec()).collect()));
    let c: Outcome = exclusive
        .open(BytesMut::from(&datagram[..]))
        .map(|o| (*o.header(), o.events().map(|e| e.to_vec()).collect()));
    assert_eq!(a, b);
    assert_eq!(a, c);

    if a.is_ok() {
        // Only a sealed packet opens, changed at most in hop_count (byte 6, not
        // authenticated by design); anything else would be a forgery.
        let packet = sealed.expect("an unsealed datagram opened");
        assert_eq!(packet.len(), datagram.len());
        for (i, (x, y)) in packet.iter().zip(&datagram).enumerate() {
            assert!(i == 6 || x == y, "byte {i} changed and the packet opened");
        }
        // Each opener admitted it once: it is a replay through every entry point now.
        let mut again = datagram.clone();
        let replay = Err(OpenError::Replayed {
            counter: NetHeader::parse(&datagram).expect("it opened").nonce_counter(),
        });
        assert_eq!(whole.open_in_place(&mut again).map(|_| ()), replay);
        assert_eq!(exclusive.open(Bytes::from(datagram.clone())).map(|_| ()), replay);
        assert_eq!(in_place.open(BytesMut::from(&datagram[..])).map(|_| ()), replay);
    } else if slot != datagram {
        // A refused datagram changed in the slot only where the payload was, and holds
        // no plaintext there: zeroes, or (RustCrypto) the ciphertext left as it was.
        assert!(slot.len() == datagram.len() && slot[..68] == datagram[..68]);
        assert!(slot[68..slot.len() - 16].iter().all(|&b| b == 0));
    }
});
