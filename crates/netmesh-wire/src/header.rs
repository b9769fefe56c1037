//! The 68-byte packet header and its associated data.

use crate::reader::Reader;
use crate::{
    PacketFlags, WireError, AAD_SIZE, HEADER_SIZE, MAGIC, MAX_EVENTS_PER_PACKET, MAX_PAYLOAD_SIZE,
    NONCE_SIZE, PAYLOAD_LEN_OFFSET, VERSION,
};

/// Wire offset, in bytes, of `hop_count`: the one byte the AAD replaces with zero.
const HOP_COUNT_OFFSET: usize = 6;
/// Wire offset, in bytes, of the nonce.
const NONCE_OFFSET: usize = 12;
/// Wire offset, in bytes, of `session_id`: the AAD resumes here after the nonce.
const SESSION_ID_OFFSET: usize = NONCE_OFFSET + NONCE_SIZE;

const _: () = assert!(SESSION_ID_OFFSET == 24);
const _: () = assert!(NONCE_OFFSET + (HEADER_SIZE - SESSION_ID_OFFSET) == AAD_SIZE);

/// The header in front of every packet, decoded.
///
/// Every field of the wire table is a public field of the same name; `docs/WIRE.md`
/// gives the offsets. A header built with [`new`](Self::new), [`handshake`](Self::handshake)
/// or [`heartbeat`](Self::heartbeat) has every field it does not set at zero, which is what
/// [`Default`] gives too (with the right magic and version).
///
/// # Examples
///
/// ```
/// use netmesh_wire::{NetHeader, PacketFlags, HEADER_SIZE};
///
/// let header = NetHeader::new(0x5e55, 1, 42, [0; 12], 0, 0, PacketFlags::RELIABLE)
///     .with_priority(7)
///     .with_origin(0xfeed);
/// let bytes: [u8; HEADER_SIZE] = header.to_bytes();
/// assert_eq!(&bytes[..4], &[0x45, 0x4e, 1, 1]);
/// assert_eq!(NetHeader::parse(&bytes), Ok(header));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetHeader {
    /// Offset 0: [`MAGIC`].
    pub magic: u16,
    /// Offset 2: [`VERSION`].
    pub version: u8,
    /// Offset 3: the flags byte.
    pub flags: PacketFlags,
    /// Offset 4: priority, 0 lowest to 255 highest.
    pub priority: u8,
    /// Offset 5: hops the packet may still take.
    pub hop_ttl: u8,
    /// Offset 6: hops taken; forwarders change it, so it is not authenticated.
    pub hop_count: u8,
    /// Offset 7: fragmentation flags.
    pub frag_flags: u8,
    /// Offset 8: subprotocol the payload belongs to.
    pub subprotocol_id: u16,
    /// Offset 10: truncated hash of the channel name, for filtering without decryption.
    pub channel_hash: u16,
    /// Offset 12: AEAD nonce, `prefix (4) ‖ counter (8, LE u64)`.
    pub nonce: [u8; NONCE_SIZE],
    /// Offset 24: session the packet belongs to.
    pub session_id: u64,
    /// Offset 32: stream within the session.
    pub stream_id: u64,
    /// Offset 40: per-stream sequence number.
    pub sequence: u64,
    /// Offset 48: hash of the origin node's identity.
    pub origin_hash: u64,
    /// Offset 56: subnet, for gateway routing.
    pub subnet_id: u32,
    /// Offset 60: fragment group.
    pub fragment_id: u16,
    /// Offset 62: offset of this fragment in the original.
    pub fragment_offset: u16,
    /// Offset 64: plaintext payload length in bytes (the tag is not counted).
    pub payload_len: u16,
    /// Offset 66: number of event frames in the payload.
    pub event_count: u16,
}

impl NetHeader {
    /// Most events one packet can carry, as the header's `event_count` type.
    pub const MAX_EVENTS_PER_PACKET: u16 = 2027;

    /// A header with magic, version and the given fields; every other field zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let header = NetHeader::new(1, 2, 3, [0; 12], 10, 1, PacketFlags::NONE);
    /// assert_eq!((header.session_id, header.stream_id, header.sequence), (1, 2, 3));
    /// assert_eq!(header.hop_ttl, 0);
    /// assert!(header.validate().is_ok());
    /// ```
    #[inline]
    #[must_use]
    pub const fn new(
        session_id: u64,
        stream_id: u64,
        sequence: u64,
        nonce: [u8; NONCE_SIZE],
        payload_len: u16,
        event_count: u16,
        flags: PacketFlags,
    ) -> Self {
        Self {
            magic: MAGIC,
            version: VERSION,
            flags,
            priority: 0,
            hop_ttl: 0,
            hop_count: 0,
            frag_flags: 0,
            subprotocol_id: 0,
            channel_hash: 0,
            nonce,
            session_id,
            stream_id,
            sequence,
            origin_hash: 0,
            subnet_id: 0,
            fragment_id: 0,
            fragment_offset: 0,
            payload_len,
            event_count,
        }
    }

    /// The header of a handshake packet: flags [`HANDSHAKE`](PacketFlags::HANDSHAKE),
    /// `payload_len`, everything else zero (session and nonce included).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// let header = NetHeader::handshake(32);
    /// assert!(header.flags.is_handshake());
    /// assert_eq!((header.payload_len, header.session_id), (32, 0));
    /// ```
    #[inline]
    #[must_use]
    pub const fn handshake(payload_len: u16) -> Self {
        Self::new(
            0,
            0,
            0,
            [0; NONCE_SIZE],
            payload_len,
            0,
            PacketFlags::HANDSHAKE,
        )
    }

    /// The header of a heartbeat: flags [`HEARTBEAT`](PacketFlags::HEARTBEAT), the
    /// session, everything else zero. The sender sets the nonce before sealing.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// let header = NetHeader::heartbeat(9);
    /// assert!(header.flags.is_heartbeat());
    /// assert_eq!((header.session_id, header.payload_len, header.event_count), (9, 0, 0));
    /// ```
    #[inline]
    #[must_use]
    pub const fn heartbeat(session_id: u64) -> Self {
        Self::new(
            session_id,
            0,
            0,
            [0; NONCE_SIZE],
            0,
            0,
            PacketFlags::HEARTBEAT,
        )
    }

    /// Sets the priority.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// assert_eq!(NetHeader::heartbeat(1).with_priority(200).priority, 200);
    /// ```
    #[inline]
    #[must_use]
    pub const fn with_priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the hop TTL and resets the hop count to zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// let mut header = NetHeader::heartbeat(1);
    /// header.hop_count = 3;
    /// let header = header.with_hops(16);
    /// assert_eq!((header.hop_ttl, header.hop_count), (16, 0));
    /// ```
    #[inline]
    #[must_use]
    pub const fn with_hops(mut self, ttl: u8) -> Self {
        self.hop_ttl = ttl;
        self.hop_count = 0;
        self
    }

    /// Sets the subprotocol id.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// assert_eq!(NetHeader::heartbeat(1).with_subprotocol(0x0400).subprotocol_id, 0x0400);
    /// ```
    #[inline]
    #[must_use]
    pub const fn with_subprotocol(mut self, id: u16) -> Self {
        self.subprotocol_id = id;
        self
    }

    /// Sets the channel hash.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// assert_eq!(NetHeader::heartbeat(1).with_channel_hash(0xbeef).channel_hash, 0xbeef);
    /// ```
    #[inline]
    #[must_use]
    pub const fn with_channel_hash(mut self, hash: u16) -> Self {
        self.channel_hash = hash;
        self
    }

    /// Sets the subnet id.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// assert_eq!(NetHeader::heartbeat(1).with_subnet(77).subnet_id, 77);
    /// ```
    #[inline]
    #[must_use]
    pub const fn with_subnet(mut self, subnet_id: u32) -> Self {
        self.subnet_id = subnet_id;
        self
    }

    /// Sets the origin hash.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// assert_eq!(NetHeader::heartbeat(1).with_origin(u64::MAX).origin_hash, u64::MAX);
    /// ```
    #[inline]
    #[must_use]
    pub const fn with_origin(mut self, origin_hash: u64) -> Self {
        self.origin_hash = origin_hash;
        self
    }

    /// Sets the fragment id, fragment offset and fragmentation flags.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// let header = NetHeader::heartbeat(1).with_fragment(5, 1200, 0x01);
    /// assert_eq!((header.fragment_id, header.fragment_offset, header.frag_flags), (5, 1200, 1));
    /// ```
    #[inline]
    #[must_use]
    pub const fn with_fragment(mut self, id: u16, offset: u16, flags: u8) -> Self {
        self.fragment_id = id;
        self.fragment_offset = offset;
        self.frag_flags = flags;
        self
    }

    /// The nonce counter: the last 8 bytes of the nonce, little-endian (header bytes
    /// 16..24). The first 4 nonce bytes are the session prefix.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let mut nonce = [0xee; 12];
    /// nonce[4..].copy_from_slice(&513u64.to_le_bytes());
    /// let header = NetHeader::new(1, 0, 0, nonce, 0, 0, PacketFlags::NONE);
    /// assert_eq!(header.nonce_counter(), 513);
    /// ```
    #[inline]
    #[must_use]
    pub const fn nonce_counter(&self) -> u64 {
        crate::nonce_counter(&self.nonce)
    }

    /// The session id of a datagram's header (bytes 24..32), read without parsing or
    /// checking the rest: to pick the keys a datagram is to be opened with. `None` when
    /// the datagram is shorter.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// let bytes = NetHeader::heartbeat(0x0102_0304).to_bytes();
    /// assert_eq!(NetHeader::peek_session_id(&bytes), Some(0x0102_0304));
    /// assert_eq!(NetHeader::peek_session_id(&bytes[..31]), None);
    /// ```
    #[inline]
    #[must_use]
    pub fn peek_session_id(datagram: &[u8]) -> Option<u64> {
        datagram
            .get(SESSION_ID_OFFSET..SESSION_ID_OFFSET + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    }

    /// The nonce counter of a datagram's header (bytes 16..24), read without parsing or
    /// checking the rest. `None` when the datagram is shorter.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{compose_nonce, NetHeader, PacketFlags};
    ///
    /// let header = NetHeader::new(1, 0, 0, compose_nonce([9; 4], 77), 0, 0, PacketFlags::NONE);
    /// assert_eq!(NetHeader::peek_nonce_counter(&header.to_bytes()), Some(77));
    /// assert_eq!(NetHeader::peek_nonce_counter(&[0; 23]), None);
    /// ```
    #[inline]
    #[must_use]
    pub fn peek_nonce_counter(datagram: &[u8]) -> Option<u64> {
        datagram
            .get(NONCE_OFFSET..SESSION_ID_OFFSET)
            .and_then(|b| <[u8; NONCE_SIZE]>::try_from(b).ok())
            .map(|nonce| crate::nonce_counter(&nonce))
    }

    /// The nonce's session prefix (header bytes 12..16).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{compose_nonce, NetHeader, PacketFlags};
    ///
    /// let header = NetHeader::new(1, 0, 0, compose_nonce([9, 8, 7, 6], 5), 0, 0, PacketFlags::NONE);
    /// assert_eq!(header.nonce_prefix(), [9, 8, 7, 6]);
    /// ```
    #[inline]
    #[must_use]
    pub const fn nonce_prefix(&self) -> [u8; crate::NONCE_PREFIX_SIZE] {
        crate::nonce_prefix(&self.nonce)
    }

    /// Writes `nonce` into the nonce field (bytes 12..24) of the header bytes `out`, for
    /// a sealer that learns the nonce only after writing the rest of the header.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{compose_nonce, NetHeader};
    ///
    /// let mut bytes = NetHeader::heartbeat(3).to_bytes();
    /// NetHeader::write_nonce_to(&mut bytes, &compose_nonce([1, 0, 0, 0], 2));
    /// assert_eq!(NetHeader::parse(&bytes)?.nonce_counter(), 2);
    /// # Ok::<(), netmesh_wire::WireError>(())
    /// ```
    #[inline]
    pub fn write_nonce_to(out: &mut [u8; HEADER_SIZE], nonce: &[u8; NONCE_SIZE]) {
        out[NONCE_OFFSET..SESSION_ID_OFFSET].copy_from_slice(nonce);
    }

    /// The AEAD associated data: the wire header without the nonce and with hop_count
    /// zeroed, so forwarders may count hops without breaking the tag.
    ///
    /// Always equal to [`aad_from_bytes`]`(&self.to_bytes())`.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{aad_from_bytes, NetHeader};
    ///
    /// let mut header = NetHeader::heartbeat(5);
    /// let aad = header.aad();
    /// assert_eq!(aad, aad_from_bytes(&header.to_bytes()));
    /// header.hop_count = 9;
    /// assert_eq!(header.aad(), aad);
    /// ```
    #[inline]
    #[must_use]
    pub fn aad(&self) -> [u8; AAD_SIZE] {
        let w = self.words();
        // Wire bytes 0..12 without hop_count, then 24..68, packed into aligned words.
        let aad_words = [
            w[0] & !(0xff << (8 * HOP_COUNT_OFFSET)),
            (w[1] & 0xffff_ffff) | w[3] << 32,
            w[3] >> 32 | w[4] << 32,
            w[4] >> 32 | w[5] << 32,
            w[5] >> 32 | w[6] << 32,
            w[6] >> 32 | w[7] << 32,
            w[7] >> 32 | w[8] << 32,
        ];
        let mut aad = [0; AAD_SIZE];
        for (out, word) in aad.chunks_exact_mut(8).zip(aad_words) {
            out.copy_from_slice(&word.to_le_bytes());
        }
        aad
    }

    /// The wire bytes as little-endian words: word `k` holds bytes `8k..8k + 8`, the last
    /// holds bytes 64..68 in its low half.
    ///
    /// Assembled in registers so that [`write_to`](Self::write_to) and [`aad`](Self::aad)
    /// each store whole words and nothing reads the header back: reading just-written
    /// header bytes back stalls the build on store forwarding.
    #[inline]
    fn words(&self) -> [u64; 9] {
        fn wide(value: impl Into<u64>) -> u64 {
            value.into()
        }
        let prefix = u32::from_le_bytes(self.nonce_prefix());
        [
            wide(self.magic)
                | wide(self.version) << 16
                | wide(self.flags.bits()) << 24
                | wide(self.priority) << 32
                | wide(self.hop_ttl) << 40
                | wide(self.hop_count) << 48
                | wide(self.frag_flags) << 56,
            wide(self.subprotocol_id) | wide(self.channel_hash) << 16 | u64::from(prefix) << 32,
            self.nonce_counter(),
            self.session_id,
            self.stream_id,
            self.sequence,
            self.origin_hash,
            u64::from(self.subnet_id)
                | wide(self.fragment_id) << 32
                | wide(self.fragment_offset) << 48,
            wide(self.payload_len) | wide(self.event_count) << 16,
        ]
    }

    /// The header's 68 wire bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let bytes = NetHeader::new(0, 0, 0, [0; 12], 0x0102, 3, PacketFlags::NONE).to_bytes();
    /// assert_eq!(&bytes[64..], &[0x02, 0x01, 3, 0]);
    /// ```
    #[inline]
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut out = [0; HEADER_SIZE];
        self.write_to(&mut out);
        out
    }

    /// Writes the header's 68 wire bytes into `out`, for callers that keep the header
    /// space at the front of their packet buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{NetHeader, HEADER_SIZE};
    ///
    /// let mut packet = [0xff; HEADER_SIZE + 4];
    /// let header = NetHeader::heartbeat(1);
    /// let (front, _) = packet.split_first_chunk_mut::<HEADER_SIZE>().unwrap();
    /// header.write_to(front);
    /// assert_eq!(NetHeader::parse(&packet), Ok(header));
    /// ```
    #[inline]
    pub fn write_to(&self, out: &mut [u8; HEADER_SIZE]) {
        let words = self.words();
        let (head, tail) = out.split_at_mut(PAYLOAD_LEN_OFFSET);
        for (out, word) in head.chunks_exact_mut(8).zip(words) {
            out.copy_from_slice(&word.to_le_bytes());
        }
        tail.copy_from_slice(&words[8].to_le_bytes()[..4]);
    }

    /// Decodes the first 68 bytes of `data` the way net-mesh 0.23 does: `None` when
    /// `data` is shorter than a header or the magic is wrong, and no other check
    /// (version, payload length and event count are taken as they are).
    ///
    /// Kept for code moving over from net-mesh; a receiver should use
    /// [`parse`](Self::parse), which says why and checks every bound.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::NetHeader;
    ///
    /// let mut bytes = NetHeader::heartbeat(1).to_bytes();
    /// bytes[2] = 9; // a version parse would refuse
    /// assert_eq!(NetHeader::from_bytes(&bytes).map(|h| h.version), Some(9));
    /// assert_eq!(NetHeader::from_bytes(&bytes[..67]), None);
    /// ```
    #[inline]
    #[must_use]
    pub fn from_bytes(data: &[u8]) -> Option<Self> {
        Self::decode(data).filter(|header| header.magic == MAGIC)
    }

    /// Decodes and checks the header at the front of `data`.
    ///
    /// Bytes after the first 68 are ignored: the caller checks that the datagram is
    /// exactly `HEADER_SIZE + payload_len + TAG_SIZE` long.
    ///
    /// # Errors
    ///
    /// In the order checked: [`WireError::TooShort`] when `data` is shorter than
    /// [`HEADER_SIZE`], [`WireError::BadMagic`], [`WireError::BadVersion`],
    /// [`WireError::PayloadTooLong`] when `payload_len` exceeds [`MAX_PAYLOAD_SIZE`],
    /// [`WireError::TooManyEvents`] when `event_count` exceeds [`MAX_EVENTS_PER_PACKET`].
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{NetHeader, WireError};
    ///
    /// let mut bytes = NetHeader::heartbeat(1).to_bytes();
    /// assert!(NetHeader::parse(&bytes).is_ok());
    ///
    /// bytes[64..66].copy_from_slice(&9000u16.to_le_bytes());
    /// assert_eq!(
    ///     NetHeader::parse(&bytes),
    ///     Err(WireError::PayloadTooLong { len: 9000, max: 8108 })
    /// );
    /// ```
    #[inline]
    pub fn parse(data: &[u8]) -> Result<Self, WireError> {
        let too_short = WireError::TooShort {
            len: data.len(),
            need: HEADER_SIZE,
        };
        let header = Self::decode(data).ok_or(too_short)?;
        header.validate()?;
        Ok(header)
    }

    /// Checks the fields a receiver must check: magic, version, payload length and
    /// event count.
    ///
    /// # Errors
    ///
    /// [`WireError::BadMagic`], [`WireError::BadVersion`], [`WireError::PayloadTooLong`]
    /// or [`WireError::TooManyEvents`], the first that applies in that order.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::{NetHeader, WireError};
    ///
    /// let mut header = NetHeader::heartbeat(1);
    /// assert_eq!(header.validate(), Ok(()));
    /// header.event_count = 2028;
    /// assert_eq!(header.validate(), Err(WireError::TooManyEvents { count: 2028, max: 2027 }));
    /// ```
    #[inline]
    pub const fn validate(&self) -> Result<(), WireError> {
        if self.magic != MAGIC {
            return Err(WireError::BadMagic { found: self.magic });
        }
        if self.version != VERSION {
            return Err(WireError::BadVersion {
                found: self.version,
            });
        }
        // u16 to usize widens on every target Rust supports that has u16 lengths.
        let len = self.payload_len as usize;
        if len > MAX_PAYLOAD_SIZE {
            return Err(WireError::PayloadTooLong {
                len,
                max: MAX_PAYLOAD_SIZE,
            });
        }
        if self.event_count > Self::MAX_EVENTS_PER_PACKET {
            return Err(WireError::TooManyEvents {
                count: self.event_count as usize,
                max: MAX_EVENTS_PER_PACKET,
            });
        }
        Ok(())
    }

    /// Reads the fields in wire order; `None` only when `data` is too short.
    #[inline]
    fn decode(data: &[u8]) -> Option<Self> {
        let mut r = Reader::new(data);
        Some(Self {
            magic: r.u16_le()?,
            version: r.u8()?,
            flags: PacketFlags::from_bits(r.u8()?),
            priority: r.u8()?,
            hop_ttl: r.u8()?,
            hop_count: r.u8()?,
            frag_flags: r.u8()?,
            subprotocol_id: r.u16_le()?,
            channel_hash: r.u16_le()?,
            nonce: r.array()?,
            session_id: r.u64_le()?,
            stream_id: r.u64_le()?,
            sequence: r.u64_le()?,
            origin_hash: r.u64_le()?,
            subnet_id: r.u32_le()?,
            fragment_id: r.u16_le()?,
            fragment_offset: r.u16_le()?,
            payload_len: r.u16_le()?,
            event_count: r.u16_le()?,
        })
    }
}

const _: () = assert!(NetHeader::MAX_EVENTS_PER_PACKET as usize == MAX_EVENTS_PER_PACKET);

/// A header for sending with nothing set: right magic and version, every other field
/// zero. It passes [`NetHeader::validate`].
impl Default for NetHeader {
    #[inline]
    fn default() -> Self {
        Self::new(0, 0, 0, [0; NONCE_SIZE], 0, 0, PacketFlags::NONE)
    }
}

/// The AEAD associated data of raw header bytes, as a receiver computes it from the
/// datagram it got: `header[0..6] ‖ 0 ‖ header[7..12] ‖ header[24..68]`.
///
/// Byte 6 (hop_count) is zeroed because forwarders change it; bytes 12..24 (the nonce)
/// are left out because the AEAD takes the nonce on its own.
///
/// # Examples
///
/// ```
/// use netmesh_wire::{aad_from_bytes, HEADER_SIZE};
///
/// let header: [u8; HEADER_SIZE] = std::array::from_fn(|i| i as u8);
/// let aad = aad_from_bytes(&header);
/// assert_eq!(&aad[..8], &[0, 1, 2, 3, 4, 5, 0, 7]);
/// assert_eq!(&aad[12..14], &[24, 25]);
/// assert_eq!(aad[55], 67);
/// ```
#[inline]
#[must_use]
pub fn aad_from_bytes(header: &[u8; HEADER_SIZE]) -> [u8; AAD_SIZE] {
    let mut aad = [0; AAD_SIZE];
    aad[..NONCE_OFFSET].copy_from_slice(&header[..NONCE_OFFSET]);
    aad[NONCE_OFFSET..].copy_from_slice(&header[SESSION_ID_OFFSET..]);
    // Clear hop_count with a word-wide mask: a lone byte store followed by the wide
    // loads that copy the result out stalls store forwarding (measured 4x slower).
    let mut word = [0; 8];
    word.copy_from_slice(&aad[..8]);
    let word = u64::from_le_bytes(word) & !(0xff << (8 * HOP_COUNT_OFFSET));
    aad[..8].copy_from_slice(&word.to_le_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::{aad_from_bytes, NetHeader};
    use crate::{PacketFlags, WireError, HEADER_SIZE};

    /// Encodes `header`, compares with the golden bytes, decodes and compares back.
    fn check_roundtrip(header: NetHeader, golden: &[u8; HEADER_SIZE]) {
        assert_eq!(&header.to_bytes(), golden);
        assert_eq!(NetHeader::parse(golden), Ok(header));
        assert_eq!(NetHeader::from_bytes(golden), Some(header));
    }

    #[test]
    fn every_field_lands_at_its_offset() {
        let header = NetHeader {
            magic: 0x4e45,
            version: 1,
            flags: PacketFlags::from_bits(0x21),
            priority: 0x02,
            hop_ttl: 0x03,
            hop_count: 0x04,
            frag_flags: 0x05,
            subprotocol_id: 0x0706,
            channel_hash: 0x0908,
            nonce: hex!("101112131415161718191a1b"),
            session_id: 0x2726_2524_2322_2120,
            stream_id: 0x3736_3534_3332_3130,
            sequence: 0x4746_4544_4342_4140,
            origin_hash: 0x5756_5554_5352_5150,
            subnet_id: 0x6362_6160,
            fragment_id: 0x6564,
            fragment_offset: 0x6766,
            payload_len: 0x0102,
            event_count: 0x0304,
        };
        check_roundtrip(
            header,
            &hex!(
                "454e 01 21 02 03 04 05 0607 0809"
                "101112131415161718191a1b"
                "2021222324252627 3031323334353637 4041424344454647"
                "5051525354555657 60616263 6465 6667"
                "0201 0403"
            ),
        );
    }

    #[test]
    fn zeroed_headers_roundtrip() {
        check_roundtrip(
            NetHeader::default(),
            &hex!("454e0100" "00000000" "00000000" "000000000000000000000000" "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"),
        );
        let heartbeat = NetHeader::heartbeat(0x0102);
        let mut golden = NetHeader::default().to_bytes();
        golden[3] = 0x20;
        golden[24..26].copy_from_slice(&[0x02, 0x01]);
        check_roundtrip(heartbeat, &golden);
    }

    #[test]
    fn aad_skips_nonce_and_zeroes_hop_count() {
        let bytes: [u8; HEADER_SIZE] = std::array::from_fn(|i| u8::try_from(i).unwrap() + 1);
        let aad = aad_from_bytes(&bytes);
        assert_eq!(&aad[..12], &[1, 2, 3, 4, 5, 6, 0, 8, 9, 10, 11, 12]);
        assert_eq!(&aad[12..], &bytes[24..]);
        let header = NetHeader::from_bytes(
            &[0x45, 0x4e]
                .iter()
                .chain(&bytes[2..])
                .copied()
                .collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(header.aad(), aad_from_bytes(&header.to_bytes()));
    }

    #[test]
    fn from_bytes_rejects_only_length_and_magic() {
        let mut bytes = NetHeader::default().to_bytes();
        bytes[2] = 2;
        bytes[64..68].copy_from_slice(&[0xff; 4]);
        assert!(NetHeader::from_bytes(&bytes).is_some());
        bytes[0] = 0;
        assert_eq!(NetHeader::from_bytes(&bytes), None);
        assert_eq!(NetHeader::from_bytes(&[]), None);
    }

    #[test]
    fn parse_ignores_bytes_after_the_header() {
        let mut long = NetHeader::heartbeat(3).to_bytes().to_vec();
        long.extend_from_slice(&[0xaa; 20]);
        assert_eq!(NetHeader::parse(&long), Ok(NetHeader::heartbeat(3)));
    }

    #[test]
    fn parse_checks_in_wire_order() {
        let mut bytes = [0xff; HEADER_SIZE];
        assert_eq!(
            NetHeader::parse(&bytes),
            Err(WireError::BadMagic { found: 0xffff })
        );
        bytes[..2].copy_from_slice(&[0x45, 0x4e]);
        assert_eq!(
            NetHeader::parse(&bytes),
            Err(WireError::BadVersion { found: 0xff })
        );
        bytes[2] = 1;
        assert_eq!(
            NetHeader::parse(&bytes),
            Err(WireError::PayloadTooLong {
                len: 0xffff,
                max: 8108
            })
        );
        bytes[64..66].copy_from_slice(&8108u16.to_le_bytes());
        assert_eq!(
            NetHeader::parse(&bytes),
            Err(WireError::TooManyEvents {
                count: 0xffff,
                max: 2027
            })
        );
        bytes[66..68].copy_from_slice(&2027u16.to_le_bytes());
        assert!(NetHeader::parse(&bytes).is_ok());
    }

    #[test]
    fn builders_set_only_their_fields() {
        let base = NetHeader::new(1, 2, 3, [4; 12], 5, 6, PacketFlags::FIN);
        let built = base
            .with_priority(7)
            .with_hops(8)
            .with_subprotocol(9)
            .with_channel_hash(10)
            .with_subnet(11)
            .with_origin(12)
            .with_fragment(13, 14, 15);
        let expected = NetHeader {
            priority: 7,
            hop_ttl: 8,
            subprotocol_id: 9,
            channel_hash: 10,
            subnet_id: 11,
            origin_hash: 12,
            fragment_id: 13,
            fragment_offset: 14,
            frag_flags: 15,
            ..base
        };
        assert_eq!(built, expected);
    }
}
