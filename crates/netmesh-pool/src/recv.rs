//! The receive side: [`PacketOpener`] checks, decrypts and splits datagrams.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};
use netmesh_cipher::{session_prefix_from_id, PacketCipher, ReplayWindow};
use netmesh_wire::{aad_from_bytes, EventFrame, EventFrames, NetHeader, HEADER_SIZE, TAG_SIZE};

use crate::OpenError;

/// Opens the packets of one session direction: the receiving half of a
/// [`PacketPool`](crate::PacketPool) or [`ThreadLocalPool`](crate::ThreadLocalPool).
///
/// `Send + Sync`: receiving threads may share one opener; its replay window admits each
/// counter once in total.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_pool::{OpenError, PacketOpener, PacketPool};
/// use netmesh_wire::PacketFlags;
///
/// let key = [42; 32];
/// let pool = PacketPool::new(2, &key, 0xfeed);
/// let opener = PacketOpener::new(&key, 0xfeed);
///
/// let events = [Bytes::from_static(b"one"), Bytes::from_static(b"two")];
/// let packet = pool.get().build(1, 0, &events, PacketFlags::RELIABLE);
///
/// let opened = opener.open(packet.clone())?;
/// assert_eq!(opened.header().stream_id, 1);
/// assert_eq!(opened.events().collect::<Vec<_>>(), events);
///
/// // The same packet again is a replay.
/// assert!(matches!(opener.open(packet), Err(OpenError::Replayed { counter: 0 })));
/// # Ok::<(), OpenError>(())
/// ```
pub struct PacketOpener {
    /// Boxed so that moving the opener (into a map, a growing vector) never leaves a copy
    /// of the key schedule in freed memory.
    cipher: Box<PacketCipher>,
    window: ReplayWindow,
    session_id: u64,
    prefix: [u8; 4],
}

impl PacketOpener {
    /// An opener for packets sealed under `key` for `session_id`, with an empty replay
    /// window.
    #[must_use]
    pub fn new(key: &[u8; 32], session_id: u64) -> Self {
        let opener = Self {
            cipher: Box::new(PacketCipher::new(key, session_id)),
            window: ReplayWindow::new(),
            session_id,
            prefix: session_prefix_from_id(session_id),
        };
        crate::hygiene::scrub_stack();
        opener
    }

    /// The session id this opener accepts.
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The highest counter accepted so far, if any.
    #[must_use]
    pub fn highest_counter(&self) -> Option<u64> {
        self.window.highest()
    }

    /// Checks, authenticates and decrypts one datagram, and admits its counter.
    ///
    /// In order: the header parses and is valid; the datagram is exactly
    /// `68 + payload_len + 16` bytes; the session id and nonce prefix are this opener's;
    /// the counter is not an obvious replay (a read-only check that saves the AEAD work);
    /// the tag verifies; the counter is admitted to the replay window (atomically, so of
    /// two threads racing with one packet exactly one wins); the payload splits into
    /// exactly `event_count` frames.
    ///
    /// Nothing is changed unless the packet authenticates. When nobody else holds the
    /// datagram's buffer it is decrypted in place with no allocation; otherwise the
    /// ciphertext is copied first.
    ///
    /// Header byte 6 (hop_count) is not authenticated by design: forwarders change it.
    ///
    /// # Errors
    ///
    /// One [`OpenError`] variant for each check above, and [`OpenError::Handshake`] for
    /// handshake packets, which are not encrypted (see [`handshake_payload`]).
    pub fn open(&self, datagram: Bytes) -> Result<OpenedPacket, OpenError> {
        let header = NetHeader::parse(&datagram)?;
        if header.flags.is_handshake() {
            return Err(OpenError::Handshake);
        }
        let payload_len = usize::from(header.payload_len);
        let expected = HEADER_SIZE + payload_len + TAG_SIZE;
        if datagram.len() != expected {
            return Err(OpenError::WrongLength {
                expected,
                actual: datagram.len(),
            });
        }
        if header.session_id != self.session_id {
            return Err(OpenError::WrongSession {
                expected: self.session_id,
                found: header.session_id,
            });
        }
        let prefix = &header.nonce[..4];
        if prefix != self.prefix {
            return Err(OpenError::WrongNoncePrefix {
                expected: self.prefix,
                found: [prefix[0], prefix[1], prefix[2], prefix[3]],
            });
        }
        let counter = header.nonce_counter();
        self.window.check(counter)?;

        let mut header_bytes = [0; HEADER_SIZE];
        header_bytes.copy_from_slice(&datagram[..HEADER_SIZE]);
        let aad = aad_from_bytes(&header_bytes);

        let payload = match datagram.try_into_mut() {
            Ok(buf) => self.decrypt_unshared(buf, counter, &aad, payload_len)?,
            Err(shared) => self.decrypt_shared(&shared, counter, &aad, payload_len)?,
        };
        self.window.commit(counter)?;
        EventFrame::validate_strict(&payload, usize::from(header.event_count))
            .map_err(OpenError::MalformedFrames)?;
        Ok(OpenedPacket { header, payload })
    }

    /// Decrypts in the datagram's own buffer, then moves the plaintext over the tag so the
    /// payload ends where the buffer ends: cutting the front off a `Bytes` never allocates,
    /// cutting its end can.
    fn decrypt_unshared(
        &self,
        mut buf: BytesMut,
        counter: u64,
        aad: &[u8],
        payload_len: usize,
    ) -> Result<Bytes, OpenError> {
        let (ciphertext, tag) = split_sealed(&mut buf[HEADER_SIZE..], payload_len);
        self.cipher
            .open_in_place_detached(counter, aad, ciphertext, &tag)
            .map_err(|_| OpenError::AuthFailed)?;
        let start = HEADER_SIZE + TAG_SIZE;
        buf.copy_within(HEADER_SIZE..HEADER_SIZE + payload_len, start);
        buf.advance(start);
        Ok(buf.freeze())
    }

    fn decrypt_shared(
        &self,
        datagram: &[u8],
        counter: u64,
        aad: &[u8],
        payload_len: usize,
    ) -> Result<Bytes, OpenError> {
        let mut sealed = datagram[HEADER_SIZE..].to_vec();
        let (ciphertext, tag) = split_sealed(&mut sealed, payload_len);
        self.cipher
            .open_in_place_detached(counter, aad, ciphertext, &tag)
            .map_err(|_| OpenError::AuthFailed)?;
        sealed.truncate(payload_len);
        Ok(Bytes::from(sealed))
    }
}

/// Splits `ciphertext ‖ tag`, whose length the caller has checked.
fn split_sealed(sealed: &mut [u8], payload_len: usize) -> (&mut [u8], [u8; TAG_SIZE]) {
    let (ciphertext, tag_bytes) = sealed.split_at_mut(payload_len);
    let mut tag = [0; TAG_SIZE];
    tag.copy_from_slice(tag_bytes);
    (ciphertext, tag)
}

impl fmt::Debug for PacketOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketOpener")
            .field("session_id", &format_args!("{:#018x}", self.session_id))
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// A packet that authenticated: its header and plaintext event frames.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedPacket {
    header: NetHeader,
    payload: Bytes,
}

impl OpenedPacket {
    /// The packet's header.
    #[must_use]
    pub fn header(&self) -> &NetHeader {
        &self.header
    }

    /// The decrypted payload: `event_count` frames of `len (u32 LE) ‖ bytes`.
    #[must_use]
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// How many events the packet carries.
    #[must_use]
    pub fn event_count(&self) -> usize {
        usize::from(self.header.event_count)
    }

    /// The events, each a zero-copy slice of the payload.
    ///
    /// # Panics
    ///
    /// Never in practice: [`PacketOpener::open`] validated the frames.
    pub fn events(&self) -> EventFrames {
        EventFrame::decode_strict(self.payload.clone(), self.event_count())
            .expect("frames were validated when the packet was opened")
    }

    /// Takes the header and payload apart.
    #[must_use]
    pub fn into_parts(self) -> (NetHeader, Bytes) {
        (self.header, self.payload)
    }
}

impl fmt::Debug for OpenedPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedPacket")
            .field("header", &self.header)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Returns the cleartext payload of a handshake packet after checking its header (valid,
/// HANDSHAKE flag) and length (exactly `68 + payload_len`). Handshakes are not encrypted
/// or authenticated by this layer: the handshake protocol above authenticates itself.
///
/// # Errors
///
/// [`OpenError::MalformedHeader`], [`OpenError::NotHandshake`] or
/// [`OpenError::WrongLength`].
///
/// # Examples
///
/// ```
/// use netmesh_pool::{handshake_payload, OpenError, PacketPool};
///
/// let pool = PacketPool::new(1, &[0; 32], 1);
/// let packet = pool.get().build_handshake(b"hello");
/// assert_eq!(handshake_payload(&packet)?, &b"hello"[..]);
/// assert!(matches!(
///     handshake_payload(&packet.slice(..70)),
///     Err(OpenError::WrongLength { expected: 73, actual: 70 })
/// ));
/// # Ok::<(), OpenError>(())
/// ```
pub fn handshake_payload(datagram: &Bytes) -> Result<Bytes, OpenError> {
    let header = NetHeader::parse(datagram)?;
    if !header.flags.is_handshake() {
        return Err(OpenError::NotHandshake {
            flags: header.flags.bits(),
        });
    }
    let expected = HEADER_SIZE + usize::from(header.payload_len);
    if datagram.len() != expected {
        return Err(OpenError::WrongLength {
            expected,
            actual: datagram.len(),
        });
    }
    Ok(datagram.slice(HEADER_SIZE..))
}
