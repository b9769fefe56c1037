//! [`PacketBuilder`]: frames, encrypts and heads one packet at a time in a reused buffer.

use std::fmt;

use bytes::Bytes;
use netmesh_cipher::{PacketCipher, TxCounter};
use netmesh_wire::{
    check_event, compose_nonce, FrameCodec, NetHeader, PacketFlags, WireError, HEADER_SIZE,
    MAX_EVENTS_PER_PACKET, MAX_PAYLOAD_SIZE, NONCE_SIZE, TAG_SIZE,
};

use crate::chunk::Chunk;
use crate::BuildError;

/// Builds encrypted packets from events.
///
/// A builder owns an 8 KiB chunk of memory. Each packet is cut off its front at exactly
/// its size and written there once — header, then the event frames, encrypted in place,
/// then the tag — and handed out as a [`Bytes`] that shares the chunk. When the caller
/// has dropped the earlier packets by the time the chunk is used up, it starts over from
/// its beginning: no heap allocation per packet in steady state. When the caller holds
/// packets (a send queue), a new chunk follows the used-up one, so held packets pin about
/// their own size, plus at most one partly used chunk.
///
/// Builders normally come from a [`PacketPool`](crate::PacketPool) or a
/// [`ThreadLocalPool`](crate::ThreadLocalPool), whose builders share one TX nonce
/// counter. A standalone builder made with [`with_origin`](Self::with_origin) owns its
/// counter: never make two standalone builders for one key and session, or their nonces
/// collide — share a counter with [`with_shared_counter`](Self::with_shared_counter).
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_pool::PacketBuilder;
/// use netmesh_wire::{NetHeader, PacketFlags};
///
/// let mut builder = PacketBuilder::with_origin(&[7; 32], 0x1234, 0xabcd);
/// let packet = builder.build(1, 0, &[Bytes::from_static(b"hello")], PacketFlags::RELIABLE);
/// let header = NetHeader::parse(&packet)?;
/// assert_eq!(header.event_count, 1);
/// assert_eq!(packet.len(), 68 + 9 + 16);
/// # Ok::<(), netmesh_wire::WireError>(())
/// ```
pub struct PacketBuilder {
    /// Boxed so that moving a builder between pools, caches and guards moves one pointer:
    /// no copies of the key schedule are left in freed memory, and no large copies stall
    /// the warm path.
    state: Box<BuilderState>,
}

struct BuilderState {
    cipher: PacketCipher,
    chunk: Chunk,
    session_id: u64,
    origin_hash: u64,
    channel_hash: u16,
    /// The pool that made this builder (0: none); a pool takes back only its own.
    pool_id: u64,
    /// The next build takes its counter alone (see [`PacketBuilder::single_counter`]).
    single: bool,
}

impl PacketBuilder {
    /// A builder with its own TX counter starting at 0 and no origin; for tests and the
    /// pools of this crate, which pass their own key.
    // Kept for the SPEC's crate-private `new`; only tests call it today.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn new(key: &[u8; 32], session_id: u64) -> Self {
        Self::with_origin(key, session_id, 0)
    }

    /// A builder with its own TX counter, starting at 0, stamping `origin_hash` on every
    /// data packet.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = netmesh_pool::PacketBuilder::with_origin(&[1; 32], 42, 0xfeed);
    /// assert_eq!(builder.session_id(), 42);
    /// ```
    #[must_use]
    pub fn with_origin(key: &[u8; 32], session_id: u64, origin_hash: u64) -> Self {
        Self::with_shared_counter(key, session_id, origin_hash, TxCounter::new())
    }

    /// A builder that takes its nonces from `counter`, shared with every other builder
    /// of the same key (this is how the pools' builders never reuse a nonce).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_cipher::TxCounter;
    /// use netmesh_pool::PacketBuilder;
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let counter = TxCounter::new();
    /// let mut a = PacketBuilder::with_shared_counter(&[1; 32], 9, 0, counter.clone());
    /// let mut b = PacketBuilder::with_shared_counter(&[1; 32], 9, 0, counter);
    /// let first = NetHeader::parse(&a.build(0, 0, &[], PacketFlags::NONE))?;
    /// let second = NetHeader::parse(&b.build(0, 1, &[], PacketFlags::NONE))?;
    /// assert_ne!(first.nonce, second.nonce);
    /// # Ok::<(), netmesh_wire::WireError>(())
    /// ```
    #[must_use]
    pub fn with_shared_counter(
        key: &[u8; 32],
        session_id: u64,
        origin_hash: u64,
        counter: TxCounter,
    ) -> Self {
        Self::pooled(key, session_id, origin_hash, counter, 0)
    }

    pub(crate) fn pooled(
        key: &[u8; 32],
        session_id: u64,
        origin_hash: u64,
        counter: TxCounter,
        pool_id: u64,
    ) -> Self {
        let builder = Self {
            state: Box::new(BuilderState {
                cipher: PacketCipher::with_counter(key, session_id, counter),
                chunk: Chunk::new(),
                session_id,
                origin_hash,
                channel_hash: 0,
                pool_id,
                single: false,
            }),
        };
        crate::residue::scrub_stack();
        builder
    }

    #[inline]
    pub(crate) fn pool_id(&self) -> u64 {
        self.state.pool_id
    }

    /// Puts the per-use settings back to the pool's, so the next user starts clean.
    #[inline]
    pub(crate) fn reset(&mut self, origin_hash: u64) {
        // Write only what changed: the builder is copied right after, and a copy that reads
        // a just-written narrow field stalls on store forwarding (measured: +10 ns).
        if self.state.origin_hash != origin_hash {
            self.state.origin_hash = origin_hash;
        }
        if self.state.channel_hash != 0 {
            self.state.channel_hash = 0;
        }
    }

    /// Sets the origin hash stamped on the following data packets.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::PacketBuilder;
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let mut builder = PacketBuilder::with_origin(&[1; 32], 7, 0);
    /// builder.set_origin_hash(0xfeed);
    /// let packet = builder.build(0, 0, &[], PacketFlags::NONE);
    /// assert_eq!(NetHeader::parse(&packet)?.origin_hash, 0xfeed);
    /// # Ok::<(), netmesh_wire::WireError>(())
    /// ```
    pub fn set_origin_hash(&mut self, origin_hash: u64) {
        self.state.origin_hash = origin_hash;
    }

    /// Sets the channel hash stamped on the following data packets.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::PacketBuilder;
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let mut builder = PacketBuilder::with_origin(&[1; 32], 7, 0);
    /// builder.set_channel_hash(0x0102);
    /// let packet = builder.build(0, 0, &[], PacketFlags::NONE);
    /// assert_eq!(NetHeader::parse(&packet)?.channel_hash, 0x0102);
    /// # Ok::<(), netmesh_wire::WireError>(())
    /// ```
    pub fn set_channel_hash(&mut self, channel_hash: u16) {
        self.state.channel_hash = channel_hash;
    }

    /// The session id stamped on every packet.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = netmesh_pool::PacketBuilder::with_origin(&[1; 32], 0x5e55, 0);
    /// assert_eq!(builder.session_id(), 0x5e55);
    /// ```
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.state.session_id
    }

    /// How many events of `avg_event_size` bytes fit one packet.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = netmesh_pool::PacketBuilder::with_origin(&[0; 32], 1, 0);
    /// assert_eq!(builder.max_events_for_size(64), 8108 / 68);
    /// assert_eq!(builder.max_events_for_size(0), 2027);
    /// ```
    #[must_use]
    pub fn max_events_for_size(&self, avg_event_size: usize) -> usize {
        FrameCodec::frames_per_packet(avg_event_size)
    }

    /// Makes the next build (any kind) take its nonce counter alone, straight from the
    /// shared counter, instead of from this thread's lease of 16: for packets a thread
    /// sends rarely (a timer's heartbeat, a control message), whose lease would sit
    /// mostly unused and leave the receiver a gap of counters it waits on. Returns the
    /// builder, for chaining.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::PacketPool;
    ///
    /// let pool = PacketPool::new(2, &[6; 32], 4);
    /// let mut data = pool.get();
    /// let _first = data.build_heartbeat(); // counter 0: this thread leases 0..16
    /// let other = std::thread::scope(|s| {
    ///     s.spawn(|| pool.get().single_counter().build_heartbeat()).join().unwrap()
    /// });
    /// // Counter 16, and the other thread holds no lease of 17..32.
    /// assert_eq!(netmesh_wire::nonce_counter(&other[12..24].try_into().unwrap()), 16);
    /// ```
    pub fn single_counter(&mut self) -> &mut Self {
        self.state.single = true;
        self
    }

    /// Whether `events` fit one packet (payload size and event count).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// let builder = netmesh_pool::PacketBuilder::with_origin(&[0; 32], 1, 0);
    /// assert!(builder.would_fit(&[Bytes::from(vec![0; 8104])]));
    /// assert!(!builder.would_fit(&[Bytes::from(vec![0; 8105])]));
    /// ```
    #[must_use]
    pub fn would_fit(&self, events: &[Bytes]) -> bool {
        events.len() <= MAX_EVENTS_PER_PACKET
            && FrameCodec::calculate_size(events) <= MAX_PAYLOAD_SIZE
    }

    /// Checks that every event fits a packet alone (at most `MAX_EVENT_SIZE` bytes, the
    /// check of `netmesh_wire::check_event`), as [`build_batch`](Self::build_batch) does
    /// before it builds anything.
    ///
    /// # Errors
    ///
    /// [`BuildError::EventTooLarge`] naming the first event that does not.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::{BuildError, PacketBuilder};
    ///
    /// assert_eq!(PacketBuilder::check_events(&[&[0u8; 8104][..]]), Ok(()));
    /// assert_eq!(
    ///     PacketBuilder::check_events(&[&[0u8; 1][..], &[0; 8105]]),
    ///     Err(BuildError::EventTooLarge { index: 1, len: 8105, max: 8104 })
    /// );
    /// ```
    pub fn check_events<E: AsRef<[u8]>>(events: &[E]) -> Result<(), BuildError> {
        for (index, event) in events.iter().enumerate() {
            if let Err(WireError::EventTooLarge { index, len, max }) =
                check_event(index, event.as_ref())
            {
                return Err(BuildError::EventTooLarge { index, len, max });
            }
        }
        Ok(())
    }

    /// Builds one encrypted data packet.
    ///
    /// # Panics
    ///
    /// Panics, naming the cap, where [`try_build`](Self::try_build) returns an error:
    /// more than `MAX_EVENTS_PER_PACKET` events, a payload over `MAX_PAYLOAD_SIZE`, or an
    /// exhausted TX counter. The message is `cannot build packet: ` and the
    /// [`BuildError`], not net-mesh 0.23's wording (README, compatibility).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::{PacketBuilder, PacketOpener};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 11, 0);
    /// let events = [Bytes::from_static(b"a"), Bytes::from_static(b"bc")];
    /// let packet = builder.build(3, 0, &events, PacketFlags::RELIABLE);
    /// let opened = PacketOpener::new(&[4; 32], 11).open(packet)?;
    /// assert_eq!(opened.events().collect::<Vec<_>>(), events);
    /// # Ok::<(), netmesh_pool::OpenError>(())
    /// ```
    #[must_use = "the packet is the result; building it used a nonce"]
    // Always inlined, down to `seal`, so the packet is made in the caller's own frame. Out
    // of line it came back through memory, where the caller's copy of it stalled (perf),
    // and the user's get + build + drop cost 0.025 more of a seal (docs/BENCHMARKS.md).
    #[inline(always)]
    pub fn build(
        &mut self,
        stream_id: u64,
        sequence: u64,
        events: &[Bytes],
        flags: PacketFlags,
    ) -> Bytes {
        unwrap_build(self.try_build(stream_id, sequence, events, flags))
    }

    /// Builds one encrypted data packet with a subprotocol id (authenticated, in the AAD).
    ///
    /// # Panics
    ///
    /// As [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::PacketBuilder;
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 11, 0);
    /// let packet = builder.build_subprotocol(3, 0, &[Bytes::from_static(b"x")], PacketFlags::NONE, 9);
    /// assert_eq!(NetHeader::parse(&packet)?.subprotocol_id, 9);
    /// # Ok::<(), netmesh_wire::WireError>(())
    /// ```
    #[must_use = "the packet is the result; building it used a nonce"]
    pub fn build_subprotocol(
        &mut self,
        stream_id: u64,
        sequence: u64,
        events: &[Bytes],
        flags: PacketFlags,
        subprotocol_id: u16,
    ) -> Bytes {
        unwrap_build(self.try_build_subprotocol(stream_id, sequence, events, flags, subprotocol_id))
    }

    /// Builds one encrypted data packet, or says which cap stood in the way.
    ///
    /// # Errors
    ///
    /// [`BuildError::TooManyEvents`] over `MAX_EVENTS_PER_PACKET` events,
    /// [`BuildError::PayloadTooLarge`] when the frames exceed `MAX_PAYLOAD_SIZE`,
    /// [`BuildError::CounterExhausted`] when the session has used its last nonce.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::{BuildError, PacketBuilder};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let mut builder = PacketBuilder::with_origin(&[3; 32], 5, 0);
    /// let ok = builder.try_build(1, 1, &[Bytes::from_static(b"event")], PacketFlags::NONE);
    /// assert!(ok.is_ok());
    ///
    /// let too_big = [Bytes::from(vec![0; 8105])];
    /// assert_eq!(
    ///     builder.try_build(1, 2, &too_big, PacketFlags::NONE),
    ///     Err(BuildError::PayloadTooLarge { len: 8109, max: 8108 })
    /// );
    /// ```
    #[inline(always)]
    pub fn try_build(
        &mut self,
        stream_id: u64,
        sequence: u64,
        events: &[Bytes],
        flags: PacketFlags,
    ) -> Result<Bytes, BuildError> {
        self.try_build_subprotocol(stream_id, sequence, events, flags, 0)
    }

    /// [`try_build`](Self::try_build) with a subprotocol id.
    ///
    /// # Errors
    ///
    /// As [`try_build`](Self::try_build).
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::{BuildError, PacketBuilder};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 11, 0);
    /// let too_many = vec![Bytes::new(); 2028];
    /// assert_eq!(
    ///     builder.try_build_subprotocol(3, 0, &too_many, PacketFlags::NONE, 9),
    ///     Err(BuildError::TooManyEvents { count: 2028, max: 2027 })
    /// );
    /// ```
    #[inline]
    pub fn try_build_subprotocol(
        &mut self,
        stream_id: u64,
        sequence: u64,
        events: &[Bytes],
        flags: PacketFlags,
        subprotocol_id: u16,
    ) -> Result<Bytes, BuildError> {
        self.try_build_events(stream_id, sequence, events, flags, subprotocol_id)
    }

    /// [`try_build_subprotocol`](Self::try_build_subprotocol) for events of any byte
    /// container: slices of the caller's own buffer cost no reference count per event.
    ///
    /// # Errors
    ///
    /// As [`try_build`](Self::try_build).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::{PacketBuilder, PacketOpener};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 11, 0);
    /// let buffer = *b"onetwo";
    /// let packet = builder.try_build_events(3, 0, &[&buffer[..3], &buffer[3..]], PacketFlags::NONE, 0)?;
    /// let opened = PacketOpener::new(&[4; 32], 11).open(packet)?;
    /// assert_eq!(opened.event_slices().collect::<Vec<_>>(), [&b"one"[..], &b"two"[..]]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn try_build_events<E: AsRef<[u8]>>(
        &mut self,
        stream_id: u64,
        sequence: u64,
        events: &[E],
        flags: PacketFlags,
        subprotocol_id: u16,
    ) -> Result<Bytes, BuildError> {
        let header = self.data_header(
            (stream_id, sequence),
            (events.len(), || FrameCodec::frames_size(events)),
            flags,
            subprotocol_id,
        )?;
        self.seal(&header, |buf| FrameCodec::write_frames_into(events, buf))
    }

    /// Builds one encrypted data packet of `count` events of `event_len` bytes each,
    /// written in place by `fill(index, event)`: no copy of the events, and no pass over
    /// their lengths. For a sender that makes its events as it sends them.
    ///
    /// `fill` runs before the nonce is taken; if sealing then fails, what it wrote is
    /// discarded.
    ///
    /// # Errors
    ///
    /// [`BuildError::TooManyEvents`] and [`BuildError::PayloadTooLarge`] (the frames,
    /// `count * (4 + event_len)` bytes, do not fit one packet), before `fill` runs and
    /// with no nonce used; the errors of [`try_build`](Self::try_build).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::{PacketBuilder, PacketOpener};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 11, 0);
    /// let packet = builder.try_build_with(3, 0, 2, 4, PacketFlags::NONE, 0, |i, event| {
    ///     event.copy_from_slice(&(i as u32 * 10).to_le_bytes());
    /// })?;
    /// let opened = PacketOpener::new(&[4; 32], 11).open(packet)?;
    /// let events: Vec<&[u8]> = opened.event_slices().collect();
    /// assert_eq!(events, [&[0, 0, 0, 0][..], &[10, 0, 0, 0][..]]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::too_many_arguments)] // try_build_events' six, and the event shape
    pub fn try_build_with(
        &mut self,
        stream_id: u64,
        sequence: u64,
        count: usize,
        event_len: usize,
        flags: PacketFlags,
        subprotocol_id: u16,
        fill: impl FnMut(usize, &mut [u8]),
    ) -> Result<Bytes, BuildError> {
        let header = self.data_header(
            (stream_id, sequence),
            // Too many bytes to count is too many for a packet.
            (count, || {
                FrameCodec::uniform_frames_size(count, event_len).unwrap_or(usize::MAX)
            }),
            flags,
            subprotocol_id,
        )?;
        self.seal(&header, |buf| {
            FrameCodec::write_frames_with(buf, event_len, fill);
        })
    }

    /// Builds one encrypted data packet whose payload is `frames`, events already framed
    /// (`len (u32 LE) ‖ bytes` each, as [`FrameCodec::write_frames_into`] writes them):
    /// one copy of the whole payload instead of one per event. For a sender that keeps
    /// its events framed anyway, e.g. a reliable stream's retransmit buffer.
    ///
    /// # Errors
    ///
    /// [`BuildError::MalformedFrames`] when `frames` is not exactly `event_count` whole
    /// frames (checked as a receiver would, before any nonce is used), and the errors of
    /// [`try_build`](Self::try_build).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::{BuildError, PacketBuilder, PacketOpener};
    /// use netmesh_wire::PacketFlags;
    ///
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 11, 0);
    /// let frames = b"\x03\0\0\0one\x03\0\0\0two";
    /// let packet = builder.try_build_framed(3, 0, frames, 2, PacketFlags::NONE, 0)?;
    /// let opened = PacketOpener::new(&[4; 32], 11).open(packet)?;
    /// assert_eq!(opened.event_slices().collect::<Vec<_>>(), [&b"one"[..], &b"two"[..]]);
    /// assert!(matches!(
    ///     builder.try_build_framed(3, 1, frames, 3, PacketFlags::NONE, 0),
    ///     Err(BuildError::MalformedFrames(_))
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_build_framed(
        &mut self,
        stream_id: u64,
        sequence: u64,
        frames: &[u8],
        event_count: usize,
        flags: PacketFlags,
        subprotocol_id: u16,
    ) -> Result<Bytes, BuildError> {
        let header = self.data_header(
            (stream_id, sequence),
            (event_count, || frames.len()),
            flags,
            subprotocol_id,
        )?;
        FrameCodec::validate_strict(frames, event_count).map_err(BuildError::MalformedFrames)?;
        self.seal(&header, |buf| buf.copy_from_slice(frames))
    }

    /// The header of a data packet of this builder (its nonce written at sealing) for
    /// `count` events whose frames take `frames_len()` bytes, if one packet can declare
    /// them.
    #[inline(always)]
    fn data_header(
        &self,
        (stream_id, sequence): (u64, u64),
        (count, frames_len): (usize, impl FnOnce() -> usize),
        flags: PacketFlags,
        subprotocol_id: u16,
    ) -> Result<NetHeader, BuildError> {
        let event_count = event_count_field(count)?;
        let payload_len = payload_len_field(frames_len())?;
        Ok(NetHeader::new(
            self.state.session_id,
            stream_id,
            sequence,
            [0; NONCE_SIZE],
            payload_len,
            event_count,
            flags,
        )
        .with_origin(self.state.origin_hash)
        .with_channel_hash(self.state.channel_hash)
        .with_subprotocol(subprotocol_id))
    }

    /// Builds an authenticated heartbeat: a bare header and the tag of an empty payload.
    /// It takes the next nonce like any packet.
    ///
    /// # Panics
    ///
    /// Panics if the TX counter is exhausted; see
    /// [`try_build_heartbeat`](Self::try_build_heartbeat).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::{PacketBuilder, PacketOpener};
    ///
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 11, 0);
    /// let heartbeat = builder.build_heartbeat();
    /// assert_eq!(heartbeat.len(), 68 + 16);
    /// let opened = PacketOpener::new(&[4; 32], 11).open(heartbeat)?;
    /// assert_eq!(opened.events().count(), 0);
    /// # Ok::<(), netmesh_pool::OpenError>(())
    /// ```
    #[must_use = "the packet is the result; building it used a nonce"]
    pub fn build_heartbeat(&mut self) -> Bytes {
        unwrap_build(self.try_build_heartbeat())
    }

    /// Builds an authenticated heartbeat.
    ///
    /// # Errors
    ///
    /// [`BuildError::CounterExhausted`] when the session has used its last nonce.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_cipher::{TxCounter, MAX_COUNTER};
    /// use netmesh_pool::{BuildError, PacketBuilder};
    ///
    /// let counter = TxCounter::starting_at(MAX_COUNTER);
    /// let mut builder = PacketBuilder::with_shared_counter(&[4; 32], 11, 0, counter);
    /// assert!(builder.try_build_heartbeat().is_ok());
    /// assert_eq!(builder.try_build_heartbeat(), Err(BuildError::CounterExhausted));
    /// ```
    pub fn try_build_heartbeat(&mut self) -> Result<Bytes, BuildError> {
        self.seal(&NetHeader::heartbeat(self.state.session_id), |_| {})
    }

    /// Builds a handshake packet: the header and `payload` in the clear. It uses no nonce.
    ///
    /// # Panics
    ///
    /// Panics if `payload` is longer than `MAX_PAYLOAD_SIZE`; see
    /// [`try_build_handshake`](Self::try_build_handshake).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::{handshake_payload, PacketBuilder};
    ///
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 0, 0);
    /// let packet = builder.build_handshake(b"noise message");
    /// assert_eq!(handshake_payload(&packet)?, &b"noise message"[..]);
    /// # Ok::<(), netmesh_pool::OpenError>(())
    /// ```
    #[must_use]
    pub fn build_handshake(&mut self, payload: &[u8]) -> Bytes {
        unwrap_build(self.try_build_handshake(payload))
    }

    /// Builds a handshake packet.
    ///
    /// # Errors
    ///
    /// [`BuildError::PayloadTooLarge`] when `payload` is longer than `MAX_PAYLOAD_SIZE`
    /// (a receiver would refuse the header).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_pool::{BuildError, PacketBuilder};
    ///
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 0, 0);
    /// assert!(builder.try_build_handshake(&[0; 8108]).is_ok());
    /// assert_eq!(
    ///     builder.try_build_handshake(&[0; 8109]),
    ///     Err(BuildError::PayloadTooLarge { len: 8109, max: 8108 })
    /// );
    /// ```
    pub fn try_build_handshake(&mut self, payload: &[u8]) -> Result<Bytes, BuildError> {
        let len = payload.len();
        let payload_len = payload_len_field(len)?;
        let total = HEADER_SIZE + len;
        let (head, rest) = split_header(self.state.chunk.space(total));
        NetHeader::handshake(payload_len).write_to(head);
        rest.copy_from_slice(payload);
        Ok(self.state.chunk.cut(total).freeze())
    }

    /// Splits `events` into as many packets as needed and builds them lazily, with
    /// sequence numbers `first_sequence`, `first_sequence + 1`, ... (wrapping).
    ///
    /// Every event is checked before anything is built, so an error means no packet
    /// was made and no nonce used.
    ///
    /// # Errors
    ///
    /// [`BuildError::EventTooLarge`] when an event cannot fit a packet even alone
    /// (more than `MAX_EVENT_SIZE` bytes; the check is `netmesh_wire::check_event`). The iterator's items fail only with
    /// [`BuildError::CounterExhausted`].
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::PacketBuilder;
    /// use netmesh_wire::{NetHeader, PacketFlags};
    ///
    /// let events = vec![Bytes::from(vec![1u8; 1000]); 20];
    /// let mut builder = PacketBuilder::with_origin(&[2; 32], 7, 0);
    /// let packets: Vec<Bytes> = builder
    ///     .build_batch(3, 100, &events, PacketFlags::NONE)?
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(packets.len(), 3); // 8 + 8 + 4 events of 1004 framed bytes
    /// let last = NetHeader::parse(&packets[2])?;
    /// assert_eq!((last.sequence, last.event_count), (102, 4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build_batch<'a>(
        &'a mut self,
        stream_id: u64,
        first_sequence: u64,
        events: &'a [Bytes],
        flags: PacketFlags,
    ) -> Result<BatchPackets<'a>, BuildError> {
        Self::check_events(events)?;
        Ok(BatchPackets {
            builder: self,
            batches: netmesh_wire::batches(events),
            stream_id,
            sequence: first_sequence,
            flags,
        })
    }

    /// Writes `header` and the payload into a packet buffer of exactly their size plus
    /// the tag's, encrypts the payload in place and writes the tag and the nonce.
    /// `write_payload` must write every byte of the slice it is given.
    #[inline(always)]
    fn seal(
        &mut self,
        header: &NetHeader,
        write_payload: impl FnOnce(&mut [u8]),
    ) -> Result<Bytes, BuildError> {
        let payload_len = usize::from(header.payload_len);
        let state = &mut *self.state;
        let total = HEADER_SIZE + payload_len + TAG_SIZE;
        let (head, rest) = split_header(state.chunk.space(total));
        let (payload, tag_out) = rest.split_at_mut(payload_len);
        header.write_to(head);
        let aad = header.aad();
        write_payload(payload);
        let cipher = &state.cipher;
        // On error nothing is cut: the bytes written stay the chunk's.
        // Read, and written only when set: no store to the builder's state per packet.
        let (counter, tag) = if state.single {
            state.single = false;
            cipher.seal_in_place_detached_single(&aad, payload)?
        } else {
            cipher.seal_in_place_detached(&aad, payload)?
        };
        tag_out.copy_from_slice(&tag);
        NetHeader::write_nonce_to(head, &compose_nonce(cipher.session_prefix(), counter));
        Ok(state.chunk.cut(total).freeze())
    }
}

/// The header space at the front of a packet buffer, and the rest.
#[inline]
fn split_header(packet: &mut [u8]) -> (&mut [u8; HEADER_SIZE], &mut [u8]) {
    packet
        .split_first_chunk_mut()
        .expect("a packet buffer has room for the header")
}

/// `value` as a header field, if it is within `cap` (every cap fits a `u16`).
#[inline]
fn capped_u16(value: usize, cap: usize) -> Option<u16> {
    u16::try_from(value).ok().filter(|_| value <= cap)
}

/// An event count as the header's `event_count`, if one packet may declare it.
#[inline]
fn event_count_field(count: usize) -> Result<u16, BuildError> {
    capped_u16(count, MAX_EVENTS_PER_PACKET).ok_or(BuildError::TooManyEvents {
        count,
        max: MAX_EVENTS_PER_PACKET,
    })
}

/// A payload length as the header's `payload_len`, if it fits one packet.
#[inline]
fn payload_len_field(len: usize) -> Result<u16, BuildError> {
    capped_u16(len, MAX_PAYLOAD_SIZE).ok_or(BuildError::PayloadTooLarge {
        len,
        max: MAX_PAYLOAD_SIZE,
    })
}

#[inline]
fn unwrap_build(result: Result<Bytes, BuildError>) -> Bytes {
    match result {
        Ok(packet) => packet,
        Err(error) => panic!("cannot build packet: {error}"),
    }
}

impl fmt::Debug for PacketBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBuilder")
            .field(
                "session_id",
                &format_args!("{:#018x}", self.state.session_id),
            )
            .field(
                "origin_hash",
                &format_args!("{:#018x}", self.state.origin_hash),
            )
            .field("channel_hash", &self.state.channel_hash)
            .field("buffer_capacity", &self.state.chunk.capacity())
            .finish_non_exhaustive()
    }
}

/// The sealed packets of one [`PacketBuilder::build_batch`] call, each built (and given
/// its nonce) only as it is pulled: one per run of events that
/// [`netmesh_wire::EventBatches`] splits off.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use netmesh_pool::{BatchPackets, PacketBuilder};
/// use netmesh_wire::PacketFlags;
///
/// let events = vec![Bytes::from(vec![0; 3000]); 5];
/// let mut builder = PacketBuilder::with_origin(&[4; 32], 11, 0);
/// let batch: BatchPackets<'_> = builder.build_batch(1, 0, &events, PacketFlags::NONE)?;
/// assert_eq!(batch.count(), 3); // two events of 3004 framed bytes per packet
/// # Ok::<(), netmesh_pool::BuildError>(())
/// ```
#[must_use = "packets are built only as the iterator is consumed"]
pub struct BatchPackets<'a> {
    builder: &'a mut PacketBuilder,
    batches: netmesh_wire::EventBatches<'a>,
    stream_id: u64,
    sequence: u64,
    flags: PacketFlags,
}

impl BatchPackets<'_> {
    /// The sequence number the next packet will carry.
    ///
    /// # Examples
    ///
    /// ```
    /// use bytes::Bytes;
    /// use netmesh_pool::PacketBuilder;
    /// use netmesh_wire::PacketFlags;
    ///
    /// let events = vec![Bytes::from(vec![0; 5000]); 2];
    /// let mut builder = PacketBuilder::with_origin(&[4; 32], 11, 0);
    /// let mut batch = builder.build_batch(1, 40, &events, PacketFlags::NONE)?;
    /// assert_eq!(batch.next_sequence(), 40);
    /// batch.next().transpose()?;
    /// assert_eq!(batch.next_sequence(), 41);
    /// # Ok::<(), netmesh_pool::BuildError>(())
    /// ```
    #[must_use]
    pub fn next_sequence(&self) -> u64 {
        self.sequence
    }
}

impl Iterator for BatchPackets<'_> {
    type Item = Result<Bytes, BuildError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Events were checked in build_batch, so the splitter cannot fail here.
        let batch = self.batches.next()?.ok()?;
        let packet = self
            .builder
            .try_build(self.stream_id, self.sequence, batch, self.flags);
        if packet.is_ok() {
            self.sequence = self.sequence.wrapping_add(1);
        }
        Some(packet)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.batches.size_hint()
    }
}

impl fmt::Debug for BatchPackets<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchPackets")
            .field("stream_id", &self.stream_id)
            .field("next_sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_packets_reuse_one_chunk_when_dropped() {
        let mut builder = PacketBuilder::new(&[1; 32], 1);
        let first = builder.build(0, 0, &[Bytes::from_static(b"x")], PacketFlags::NONE);
        let first_ptr = first.as_ptr();
        drop(first);
        for sequence in 1..200 {
            let packet =
                builder.build(0, sequence, &[Bytes::from(vec![0; 500])], PacketFlags::NONE);
            drop(packet);
        }
        let again = builder.build(0, 999, &[Bytes::from(vec![0; 8000])], PacketFlags::NONE);
        assert_eq!(again.as_ptr(), first_ptr, "the chunk was not reclaimed");
    }

    #[test]
    fn held_packets_share_chunks() {
        let mut builder = PacketBuilder::new(&[1; 32], 1);
        let held: Vec<Bytes> = (0..100)
            .map(|s| builder.build(0, s, &[Bytes::from(vec![0; 60])], PacketFlags::NONE))
            .collect();
        // A new chunk starts wherever a packet does not directly follow the previous one.
        let chunk_starts = held
            .windows(2)
            .filter(|w| w[0].as_ptr() as usize + w[0].len() != w[1].as_ptr() as usize)
            .count();
        // 100 packets of 148 bytes fill two 8 KiB chunks.
        assert!(
            chunk_starts <= 2,
            "{chunk_starts} chunk changes for 100 small packets"
        );
    }

    #[test]
    fn a_packet_in_a_reused_chunk_equals_one_from_a_fresh_builder() {
        let events = [Bytes::from_static(b"small"), Bytes::from_static(b"")];
        let mut used = PacketBuilder::new(&[5; 32], 9);
        for (sequence, fill) in [(0, 0xff), (1, 0x00), (2, 0x5a)] {
            let big = vec![Bytes::from(vec![fill; 2000]); 4];
            drop(used.build(1, sequence, &big, PacketFlags::RELIABLE));
        }
        drop(used.build_handshake(&[0xcc; 3000]));
        let packet = used.build(7, 3, &events, PacketFlags::NONE);

        let counter = TxCounter::starting_at(3);
        let mut fresh = PacketBuilder::with_shared_counter(&[5; 32], 9, 0, counter);
        assert_eq!(packet, fresh.build(7, 3, &events, PacketFlags::NONE));
    }

    #[test]
    fn debug_shows_no_key() {
        let builder = PacketBuilder::new(&[0xab; 32], 0x77);
        let text = format!("{builder:?}");
        assert!(text.contains("0x0000000000000077"));
        assert!(!text.to_lowercase().contains("abab"));
    }
}
