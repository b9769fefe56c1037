//! The receive side: [`PacketOpener`] checks, decrypts and splits datagrams.

use std::fmt;
use std::iter::FusedIterator;

use bytes::{Buf, Bytes, BytesMut};
use netmesh_cipher::{session_prefix_from_id, PacketCipher, ReplayWindow};
use netmesh_wire::{
    aad_from_bytes, BorrowedEvents, FrameCodec, NetHeader, OwnedEvents, AAD_SIZE, HEADER_SIZE,
    TAG_SIZE,
};
use zeroize::Zeroize;

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
    prefix: [u8; netmesh_wire::NONCE_PREFIX_SIZE],
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
        crate::residue::scrub_stack();
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
    /// exactly `event_count` frames. [`open_in_place`](Self::open_in_place) makes the
    /// same checks in the same order and gives the same error for the same bytes.
    ///
    /// Nothing is changed unless the packet authenticates. The datagram is a [`Bytes`], a
    /// [`BytesMut`] or a [`SplitDatagram`] (see [`Datagram`]):
    ///
    /// - A [`BytesMut`] is the caller's alone, so it is always decrypted in place, with
    ///   no copy. Cut from a larger receive buffer with `split_to` (a receive loop), it
    ///   costs no allocation, and neither does iterating its events. One that owns a
    ///   `Vec` of its own (never split) costs one allocation, to share the `Vec`: when
    ///   [`OpenedPacket::events`] first slices it if it holds exactly the datagram (to
    ///   open it costs none), in `open` itself if it has spare capacity.
    /// - A [`Bytes`] is decrypted in place when nobody else holds its buffer, and copied
    ///   first otherwise.
    /// - A [`SplitDatagram`] (a `BytesMut` cut from a receive buffer, said so) is opened
    ///   as a `BytesMut`, and its tag cut off the end instead of the payload being moved
    ///   over it: one copy of the payload less per packet.
    ///
    /// Header byte 6 (hop_count) is not authenticated by design: forwarders change it.
    ///
    /// # Errors
    ///
    /// One [`OpenError`] variant for each check above, and [`OpenError::Handshake`] for
    /// handshake packets, which are not encrypted (see [`handshake_payload`]).
    ///
    /// # Examples
    ///
    /// A receive loop: datagrams land one after another in one buffer, and each is cut
    /// off and opened where it lies.
    ///
    /// ```
    /// use bytes::{Bytes, BytesMut};
    /// use netmesh_pool::{OpenError, PacketOpener, PacketPool};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let pool = PacketPool::new(2, &[9; 32], 77);
    /// let opener = PacketOpener::new(&[9; 32], 77);
    /// let first = pool.get().build(1, 0, &[Bytes::from_static(b"a")], PacketFlags::NONE);
    /// let second = pool.get().build(1, 1, &[Bytes::from_static(b"bc")], PacketFlags::NONE);
    ///
    /// // As a socket's recv_buf fills it:
    /// let mut received = BytesMut::with_capacity(4096);
    /// received.extend_from_slice(&first);
    /// received.extend_from_slice(&second);
    /// let mut lens = Vec::new();
    /// for len in [first.len(), second.len()] {
    ///     let opened = opener.open(received.split_to(len))?;
    ///     lens.extend(opened.events().map(|event| event.len()));
    /// }
    /// assert_eq!(lens, [1, 2]);
    /// # Ok::<(), OpenError>(())
    /// ```
    // Always inlined: called, the opened packet travels through memory twice more
    // (measured in the session's receive path).
    #[inline(always)]
    pub fn open<D: Datagram>(&self, datagram: D) -> Result<OpenedPacket, OpenError> {
        let sealed = self.check(&datagram)?;
        match datagram.into_exclusive() {
            Ok(exclusive) => self.open_exclusive(&sealed, exclusive, D::CUT_TAG),
            Err(shared) => self.open_copy(&sealed, &shared),
        }
    }

    /// Checks, authenticates and decrypts one datagram inside `datagram`, and admits its
    /// counter: for fixed receive slots (a `recvmmsg` array, a ring buffer) that the
    /// caller reuses once it is done with the packet.
    ///
    /// The same checks in the same order as [`open`](Self::open), with the same errors.
    /// The returned [`OpenedRef`] borrows `datagram`, where the plaintext now is. Nothing
    /// is allocated or copied, and iterating the events allocates nothing either.
    ///
    /// On error `datagram` holds no plaintext: it is unchanged when a check before the
    /// tag refused it; after a failed tag the payload holds zeroes (ring) or the
    /// ciphertext (RustCrypto); a payload that authenticated but was refused afterwards
    /// (a replay that raced another thread, malformed frames) is overwritten with zeroes.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::{OpenError, PacketOpener, PacketPool};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let pool = PacketPool::new(2, &[3; 32], 5);
    /// let opener = PacketOpener::new(&[3; 32], 5);
    /// let events = [Bytes::from_static(b"one"), Bytes::from_static(b"two")];
    /// let packet = pool.get().build(4, 0, &events, PacketFlags::NONE);
    ///
    /// // A receive slot, as recvmmsg fills it:
    /// let mut slot = [0u8; 2048];
    /// let len = packet.len();
    /// slot[..len].copy_from_slice(&packet);
    /// let opened = opener.open_in_place(&mut slot[..len])?;
    /// assert_eq!(opened.header().stream_id, 4);
    /// assert_eq!(opened.events().collect::<Vec<&[u8]>>(), [b"one", b"two"]);
    ///
    /// // The same bytes again are a replay, whichever entry point sees them.
    /// assert_eq!(opener.open(packet), Err(OpenError::Replayed { counter: 0 }));
    /// # Ok::<(), OpenError>(())
    /// ```
    #[inline]
    pub fn open_in_place<'a>(&self, datagram: &'a mut [u8]) -> Result<OpenedRef<'a>, OpenError> {
        let sealed = self.check(datagram)?;
        let payload = self.unseal(&sealed, datagram)?;
        Ok(OpenedRef {
            header: sealed.header,
            payload,
        })
    }

    /// The checks before the AEAD, in the documented order: all that the datagram's
    /// clear bytes and a read of the window can refuse, without any cryptography.
    // This and `unseal` are always inlined: called, their results travel through memory;
    // measured 3% of a 1 x 64 B open in place.
    #[inline(always)]
    fn check(&self, datagram: &[u8]) -> Result<Sealed, OpenError> {
        let header = NetHeader::parse(datagram)?;
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
        let prefix = header.nonce_prefix();
        if prefix != self.prefix {
            return Err(OpenError::WrongNoncePrefix {
                expected: self.prefix,
                found: prefix,
            });
        }
        let counter = header.nonce_counter();
        self.window.check(counter)?;
        let mut header_bytes = [0; HEADER_SIZE];
        header_bytes.copy_from_slice(&datagram[..HEADER_SIZE]);
        Ok(Sealed {
            header,
            counter,
            aad: aad_from_bytes(&header_bytes),
            payload_len,
        })
    }

    /// The checks from the AEAD on, for a datagram that passed [`check`](Self::check):
    /// decrypts it in place, admits its counter and validates the frames. Returns the
    /// plaintext, which is where the ciphertext was.
    #[inline(always)]
    fn unseal<'a>(&self, sealed: &Sealed, datagram: &'a mut [u8]) -> Result<&'a [u8], OpenError> {
        let (ciphertext, tag_bytes) = datagram[HEADER_SIZE..].split_at_mut(sealed.payload_len);
        let mut tag = [0; TAG_SIZE];
        tag.copy_from_slice(tag_bytes);
        self.cipher
            .open_in_place_detached(sealed.counter, &sealed.aad, ciphertext, &tag)?;
        let plaintext = ciphertext;
        let admitted = match self.window.commit(sealed.counter) {
            Ok(()) => {
                FrameCodec::validate_strict(plaintext, usize::from(sealed.header.event_count))
                    .map_err(OpenError::MalformedFrames)
            }
            Err(error) => Err(error.into()),
        };
        match admitted {
            Ok(()) => Ok(plaintext),
            Err(error) => Err(wiped(plaintext, error)),
        }
    }

    /// [`open_exclusive`](Self::open_exclusive) of a copy, for a datagram whose buffer
    /// others hold too. Made only after the checks: a datagram they refuse costs no copy.
    /// Out of line: it allocates anyway, and the in-place paths stay compact.
    #[inline(never)]
    fn open_copy(&self, sealed: &Sealed, shared: &[u8]) -> Result<OpenedPacket, OpenError> {
        self.open_exclusive(sealed, BytesMut::from(shared), false)
    }

    /// [`unseal`](Self::unseal) in a buffer of its own. Then either the tag is cut off
    /// the end (`cut_tag`: free for a buffer already shared, a [`SplitDatagram`]), or the
    /// plaintext is moved over the tag so that the payload ends where the buffer ends:
    /// cutting the front off a `Vec`-backed buffer never allocates, cutting its end does
    /// (it is promoted to a shared one when frozen).
    #[inline]
    fn open_exclusive(
        &self,
        sealed: &Sealed,
        mut buf: BytesMut,
        cut_tag: bool,
    ) -> Result<OpenedPacket, OpenError> {
        self.unseal(sealed, &mut buf)?;
        if cut_tag {
            buf.truncate(HEADER_SIZE + sealed.payload_len);
            buf.advance(HEADER_SIZE);
        } else {
            let start = HEADER_SIZE + TAG_SIZE;
            buf.copy_within(HEADER_SIZE..HEADER_SIZE + sealed.payload_len, start);
            buf.advance(start);
        }
        Ok(OpenedPacket {
            header: sealed.header,
            payload: buf.freeze(),
        })
    }
}

/// Refused after it authenticated: leaves no plaintext in the caller's buffer. Out of
/// line and cold, so the success path stays compact.
#[cold]
#[inline(never)]
fn wiped(plaintext: &mut [u8], error: OpenError) -> OpenError {
    plaintext.zeroize();
    error
}

/// What [`PacketOpener::check`] found: all that decrypting needs.
struct Sealed {
    header: NetHeader,
    counter: u64,
    aad: [u8; AAD_SIZE],
    payload_len: usize,
}

/// A received datagram that [`PacketOpener::open`] takes: [`Bytes`], [`BytesMut`] or
/// [`SplitDatagram`].
///
/// Sealed: it only tells `open` whether it may decrypt in the datagram's own buffer.
///
/// # Examples
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netmesh_pool::{Datagram, OpenError, OpenedPacket, PacketOpener};
///
/// fn open_any(opener: &PacketOpener, datagram: impl Datagram) -> Result<OpenedPacket, OpenError> {
///     opener.open(datagram)
/// }
///
/// let opener = PacketOpener::new(&[0; 32], 1);
/// assert!(open_any(&opener, Bytes::from_static(b"not a packet")).is_err());
/// assert!(open_any(&opener, BytesMut::from(&b"not a packet"[..])).is_err());
/// ```
pub trait Datagram: sealed::Exclusive {}

impl Datagram for Bytes {}
impl Datagram for BytesMut {}
impl Datagram for SplitDatagram {}

/// A datagram cut off a larger receive buffer with `BytesMut::split_to` or `split_off`,
/// as a receive loop cuts them: [`PacketOpener::open`] decrypts it in place like any
/// [`BytesMut`], and then cuts the tag off its end instead of moving the payload over
/// the tag. That saves a copy of the payload per packet, and is free because such a
/// buffer is shared already; a `BytesMut` that owns a `Vec` of its own (never split)
/// still opens correctly as a `SplitDatagram`, at the cost of one small allocation.
///
/// # Examples
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use netmesh_pool::{PacketOpener, PacketPool, SplitDatagram};
/// use netmesh_wire::PacketFlags;
///
/// let pool = PacketPool::new(1, &[9; 32], 77);
/// let opener = PacketOpener::new(&[9; 32], 77);
/// let packet = pool.get().build(1, 0, &[Bytes::from_static(b"event")], PacketFlags::NONE);
/// let mut received = BytesMut::with_capacity(65536);
/// received.extend_from_slice(&packet);
/// let datagram = SplitDatagram::new(received.split_to(packet.len()));
/// assert_eq!(datagram.len(), packet.len());
/// let opened = opener.open(datagram)?;
/// assert_eq!(opened.event_slices().collect::<Vec<_>>(), [&b"event"[..]]);
/// # Ok::<(), netmesh_pool::OpenError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitDatagram(BytesMut);

impl SplitDatagram {
    /// Wraps a datagram cut off a larger receive buffer.
    #[must_use]
    pub fn new(datagram: BytesMut) -> Self {
        Self(datagram)
    }

    /// The datagram's buffer.
    #[must_use]
    pub fn into_inner(self) -> BytesMut {
        self.0
    }
}

impl std::ops::Deref for SplitDatagram {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

mod sealed {
    use bytes::{Bytes, BytesMut};

    /// The conversion behind [`Datagram`](super::Datagram), kept out of the public API.
    #[allow(unreachable_pub)] // Public in a private module: the sealed-trait pattern.
    pub trait Exclusive: std::ops::Deref<Target = [u8]> {
        /// Whether the opened payload is cut from the end of the buffer (one already
        /// shared) rather than moved to it.
        const CUT_TAG: bool = false;

        /// The datagram as a buffer only the caller holds, or as shared bytes that must
        /// not be written.
        fn into_exclusive(self) -> Result<BytesMut, Bytes>;
    }

    impl Exclusive for Bytes {
        #[inline]
        fn into_exclusive(self) -> Result<BytesMut, Bytes> {
            self.try_into_mut()
        }
    }

    impl Exclusive for BytesMut {
        #[inline]
        fn into_exclusive(self) -> Result<BytesMut, Bytes> {
            Ok(self)
        }
    }

    impl Exclusive for super::SplitDatagram {
        const CUT_TAG: bool = true;

        #[inline]
        fn into_exclusive(self) -> Result<BytesMut, Bytes> {
            Ok(self.0)
        }
    }
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
///
/// The payload is a `Bytes` over the datagram's own buffer (decrypted in place when it
/// could be), so holding the packet holds that buffer and handing out events copies
/// nothing.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_pool::{OpenedPacket, PacketOpener, PacketPool};
/// use netmesh_wire::PacketFlags;
///
/// let pool = PacketPool::new(1, &[3; 32], 5);
/// let packet = pool.get().build(7, 41, &[Bytes::from_static(b"tick")], PacketFlags::NONE);
/// let opened: OpenedPacket = PacketOpener::new(&[3; 32], 5).open(packet)?;
/// assert_eq!((opened.header().stream_id, opened.header().sequence), (7, 41));
/// assert_eq!(opened.event_count(), 1);
/// let (header, payload) = opened.into_parts();
/// assert_eq!(usize::from(header.payload_len), payload.len());
/// # Ok::<(), netmesh_pool::OpenError>(())
/// ```
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
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::{PacketOpener, PacketPool};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let pool = PacketPool::new(1, &[3; 32], 5);
    /// let events = [Bytes::from_static(b"a"), Bytes::from_static(b"bc")];
    /// let packet = pool.get().build(1, 0, &events, PacketFlags::NONE);
    /// let opened = PacketOpener::new(&[3; 32], 5).open(packet)?;
    /// let lengths: Vec<usize> = opened.events().map(|event| event.len()).collect();
    /// assert_eq!(lengths, [1, 2]);
    /// # Ok::<(), netmesh_pool::OpenError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Never in practice: [`PacketOpener::open`] validated the frames.
    pub fn events(&self) -> OwnedEvents {
        FrameCodec::decode_strict(self.payload.clone(), self.event_count())
            .expect("frames were validated when the packet was opened")
    }

    /// The events, each a slice borrowed from the payload: no reference count touched
    /// per event (which [`events`](Self::events) does), for a reader done with each
    /// event before the packet is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::{PacketOpener, PacketPool};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let pool = PacketPool::new(1, &[3; 32], 5);
    /// let events = [Bytes::from_static(b"a"), Bytes::from_static(b"bc")];
    /// let packet = pool.get().build(1, 0, &events, PacketFlags::NONE);
    /// let opened = PacketOpener::new(&[3; 32], 5).open(packet)?;
    /// assert_eq!(opened.event_slices().collect::<Vec<_>>(), [&b"a"[..], &b"bc"[..]]);
    /// # Ok::<(), netmesh_pool::OpenError>(())
    /// ```
    pub fn event_slices(&self) -> EventSlices<'_> {
        EventSlices {
            frames: FrameCodec::iter(&self.payload),
            remaining: self.event_count(),
        }
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

/// A packet that authenticated, opened inside the caller's buffer by
/// [`PacketOpener::open_in_place`]: its header and a borrowed view of the plaintext.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_pool::{OpenError, PacketOpener, PacketPool};
/// use netmesh_wire::PacketFlags;
///
/// let pool = PacketPool::new(1, &[8; 32], 3);
/// let packet = pool.get().build(2, 9, &[Bytes::from_static(b"event")], PacketFlags::NONE);
/// let mut slot = packet.to_vec();
/// let opened = PacketOpener::new(&[8; 32], 3).open_in_place(&mut slot)?;
/// assert_eq!(opened.header().sequence, 9);
/// assert_eq!(opened.event_count(), 1);
/// assert_eq!(opened.payload(), b"\x05\0\0\0event");
/// assert_eq!(opened.events().next(), Some(&b"event"[..]));
/// # Ok::<(), OpenError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OpenedRef<'a> {
    header: NetHeader,
    payload: &'a [u8],
}

impl<'a> OpenedRef<'a> {
    /// The packet's header.
    #[must_use]
    pub fn header(&self) -> &NetHeader {
        &self.header
    }

    /// The decrypted payload, inside the caller's buffer: `event_count` frames of
    /// `len (u32 LE) ‖ bytes`.
    #[must_use]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// How many events the packet carries.
    #[must_use]
    pub fn event_count(&self) -> usize {
        usize::from(self.header.event_count)
    }

    /// The events, each a slice of the caller's buffer.
    pub fn events(&self) -> EventSlices<'a> {
        EventSlices {
            frames: FrameCodec::iter(self.payload),
            remaining: self.event_count(),
        }
    }
}

impl fmt::Debug for OpenedRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedRef")
            .field("header", &self.header)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The events of an [`OpenedRef`] or an [`OpenedPacket`], each a slice of the buffer
/// they were opened in.
///
/// Its length is known up front ([`ExactSizeIterator`]).
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_pool::{OpenError, PacketOpener, PacketPool};
/// use netmesh_wire::PacketFlags;
///
/// let pool = PacketPool::new(1, &[8; 32], 3);
/// let events = [Bytes::from_static(b"ab"), Bytes::new(), Bytes::from_static(b"c")];
/// let mut slot = pool.get().build(2, 9, &events, PacketFlags::NONE).to_vec();
/// let opened = PacketOpener::new(&[8; 32], 3).open_in_place(&mut slot)?;
/// let slices = opened.events();
/// assert_eq!(slices.len(), 3);
/// assert_eq!(slices.map(<[u8]>::len).collect::<Vec<_>>(), [2, 0, 1]);
/// # Ok::<(), OpenError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "iterators do nothing unless consumed"]
pub struct EventSlices<'a> {
    frames: BorrowedEvents<'a>,
    remaining: usize,
}

impl<'a> Iterator for EventSlices<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        // The frames were validated when the packet was opened, so this cannot fail; if
        // it ever did, end rather than lie.
        if let Some(Ok(event)) = self.frames.next() {
            self.remaining -= 1;
            Some(event)
        } else {
            self.remaining = 0;
            None
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for EventSlices<'_> {}

impl FusedIterator for EventSlices<'_> {}

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
