//! One UDP socket with batched kernel I/O: GSO sends and recvmmsg/GRO receives through
//! `quinn-udp`, buffer sizes through `socket2`, waits through `poll(2)`.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn_udp::{RecvMeta, Transmit, UdpSocketState, BATCH_SIZE};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use socket2::{Domain, Protocol, Socket, Type};

/// The largest UDP payload one IPv4 datagram (and so one GSO send) can carry.
const MAX_UDP_PAYLOAD: usize = 65_507;
/// A receive slot without GRO: one netmesh packet (8192 bytes at most) and room to see
/// that a larger datagram was larger (it arrives cut to the slot, and then fails the
/// length check instead of passing as its first 8192 bytes).
const PLAIN_SLOT: usize = netmesh_wire::MAX_PACKET_SIZE + 64;
/// A receive slot with GRO: the kernel coalesces up to 64 KiB of one flow into it.
const GRO_SLOT: usize = 65_536;
/// Datagrams per sendmmsg call.
const MMSG_BATCH: usize = 64;
/// Bytes queued for one sendmmsg batch at most.
const MMSG_BYTES: usize = 512 * 1024;
/// Slots per receive call with GRO (each may hold several datagrams).
const GRO_SLOTS: usize = 8;

/// What to ask of the kernel when a [`BatchSocket`] is created.
///
/// # Examples
///
/// ```
/// let options = netmesh_udp::SocketOptions { reuse_port: true, ..Default::default() };
/// assert_eq!(options.recv_buffer, 16 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// Receive buffer to request (SO_RCVBUF), in bytes. Linux caps it at
    /// `/proc/sys/net/core/rmem_max` unless the process may force it (CAP_NET_ADMIN),
    /// which is tried when the plain request falls short.
    pub recv_buffer: usize,
    /// Send buffer to request (SO_SNDBUF), in bytes, capped likewise by `wmem_max`.
    pub send_buffer: usize,
    /// Set SO_REUSEPORT before binding, so that several sockets share one address and
    /// the kernel spreads flows over them.
    pub reuse_port: bool,
    /// Use UDP GSO for sends of several equal-size datagrams when the kernel has it.
    /// (UDP GRO is always on where the kernel has it: `quinn-udp` turns it on, and the
    /// receive buffers are sized for it.)
    pub gso: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            recv_buffer: 16 << 20,
            send_buffer: 16 << 20,
            reuse_port: false,
            gso: true,
        }
    }
}

/// What the kernel granted a [`BatchSocket`].
///
/// Linux reports (and charges) twice the size it accepted: a request of 4 MiB under an
/// `rmem_max` of 4 MiB reads back as 8 MiB; the `*_granted` fields are the values read
/// back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketInfo {
    /// The bound address (the real port when bound to port 0).
    pub local_addr: SocketAddr,
    /// SO_RCVBUF requested.
    pub recv_buffer_requested: usize,
    /// SO_RCVBUF as read back from the kernel.
    pub recv_buffer_granted: usize,
    /// Whether SO_RCVBUFFORCE was needed and allowed.
    pub recv_buffer_forced: bool,
    /// SO_SNDBUF requested.
    pub send_buffer_requested: usize,
    /// SO_SNDBUF as read back from the kernel.
    pub send_buffer_granted: usize,
    /// Whether SO_SNDBUFFORCE was needed and allowed.
    pub send_buffer_forced: bool,
    /// Datagrams one GSO send may carry (1: no GSO).
    pub gso_segments: usize,
    /// Datagrams the kernel may coalesce into one GRO receive (1: no GRO).
    pub gro_segments: usize,
}

/// A UDP socket that sends runs of datagrams with one GSO `sendmsg` each and receives
/// up to 32 buffers (each one datagram, or several with GRO) per `recvmmsg`.
///
/// Blocking calls take a timeout; the socket itself is non-blocking, so that one call
/// never waits for a full batch. `Send + Sync`: any number of threads may send while
/// one receives.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use netmesh_udp::{BatchSocket, RecvBatch, SocketOptions};
///
/// let a = BatchSocket::bind("127.0.0.1:0".parse()?, SocketOptions::default())?;
/// let b = BatchSocket::bind("127.0.0.1:0".parse()?, SocketOptions::default())?;
/// let packets = vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")];
/// let mut scratch = Vec::new();
/// a.send(b.local_addr(), &packets, &mut scratch, Duration::from_secs(1))?;
///
/// let mut batch = RecvBatch::new(&b);
/// let mut got = Vec::new();
/// while got.len() < 2 {
///     b.recv(&mut batch, Some(Duration::from_secs(1)))?;
///     while let Some((from, datagram)) = batch.next_datagram() {
///         assert_eq!(from, a.local_addr());
///         got.push(datagram.freeze());
///     }
/// }
/// assert_eq!(got, packets);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BatchSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    info: SocketInfo,
    gso: bool,
    gro: bool,
    /// Segments at least this long are sent without GSO: a GSO send of them was refused
    /// (each segment must fit the path MTU: 8 KiB segments fail over a 1500-byte link
    /// with EMSGSIZE, where single datagrams are fragmented by IP).
    gso_refused_from: AtomicUsize,
}

impl BatchSocket {
    /// Binds a UDP socket to `addr` (port 0 picks a free port) with `options`.
    ///
    /// # Errors
    ///
    /// The socket could not be created, configured or bound.
    pub fn bind(addr: SocketAddr, options: SocketOptions) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        if options.reuse_port {
            socket.set_reuse_port(true)?;
        }
        let (recv_granted, recv_forced) = request_buffer(
            &socket,
            options.recv_buffer,
            Socket::set_recv_buffer_size,
            Socket::recv_buffer_size,
            os::force_recv_buffer,
        );
        let (send_granted, send_forced) = request_buffer(
            &socket,
            options.send_buffer,
            Socket::set_send_buffer_size,
            Socket::send_buffer_size,
            os::force_send_buffer,
        );
        socket.bind(&addr.into())?;
        let socket: UdpSocket = socket.into();
        let state = UdpSocketState::new((&socket).into())?;
        // quinn-udp forbids fragmentation (it probes the path MTU); netmesh packets are
        // up to 8 KiB, as net-mesh's, and rely on IP fragmentation beyond the link MTU.
        os::allow_fragmentation(&socket, addr.is_ipv4())?;
        let gso = options.gso && state.max_gso_segments() > 1;
        let gro = state.gro_segments() > 1;
        let info = SocketInfo {
            local_addr: socket.local_addr()?,
            recv_buffer_requested: options.recv_buffer,
            recv_buffer_granted: recv_granted,
            recv_buffer_forced: recv_forced,
            send_buffer_requested: options.send_buffer,
            send_buffer_granted: send_granted,
            send_buffer_forced: send_forced,
            gso_segments: if gso { state.max_gso_segments() } else { 1 },
            gro_segments: if gro { state.gro_segments() } else { 1 },
        };
        Ok(Self {
            socket,
            state,
            info,
            gso,
            gro,
            gso_refused_from: AtomicUsize::new(usize::MAX),
        })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.info.local_addr
    }

    /// Buffer sizes granted and offloads in use.
    #[must_use]
    pub fn info(&self) -> SocketInfo {
        let mut info = self.info;
        // quinn-udp turns GSO off for good when the kernel or the device refuses it.
        if self.gso {
            info.gso_segments = self.state.max_gso_segments();
        }
        info
    }

    /// Datagrams of `segment` bytes one send may carry now (1: no GSO).
    pub(crate) fn gso_segments(&self, segment: usize) -> usize {
        if self.gso && segment < self.gso_refused_from.load(Ordering::Relaxed) {
            self.state.max_gso_segments()
        } else {
            1
        }
    }

    /// Waits until the send buffer has room; `TimedOut` at `deadline`.
    fn wait_writable(&self, deadline: Instant) -> io::Result<()> {
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "UDP send buffer stayed full",
            ));
        }
        wait(&self.socket, PollFlags::OUT, Some(deadline - now)).map(drop)
    }

    /// Sends `datagrams` with as few sendmmsg calls as the kernel takes (one datagram per
    /// call where there is no sendmmsg). Returns the number of calls.
    fn send_many(
        &self,
        dest: SocketAddr,
        datagrams: &[&[u8]],
        deadline: Instant,
    ) -> io::Result<usize> {
        let mut calls = 0;
        let mut done = 0;
        while done < datagrams.len() {
            match os::send_many(&self.socket, dest, &datagrams[done..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(sent) => {
                    calls += 1;
                    done += sent;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_writable(deadline)?;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(calls)
    }

    /// Sends `contents`, `count` datagrams of `segment` bytes (the last may be shorter),
    /// with one GSO call, or one call per datagram if GSO is refused (then segments this
    /// long are not tried with GSO again). Returns the number of calls.
    fn send_run(
        &self,
        dest: SocketAddr,
        contents: &[u8],
        segment: usize,
        count: usize,
        deadline: Instant,
    ) -> io::Result<usize> {
        if count <= 1 {
            self.send_transmit(dest, contents, None, deadline)?;
            return Ok(1);
        }
        match self.send_transmit(dest, contents, Some(segment), deadline) {
            Ok(()) => Ok(1),
            Err(error) if is_gso_refusal(&error) => {
                self.gso_refused_from.fetch_min(segment, Ordering::Relaxed);
                for datagram in contents.chunks(segment) {
                    self.send_transmit(dest, datagram, None, deadline)?;
                }
                Ok(count)
            }
            Err(error) => Err(error),
        }
    }

    /// Whether receives may carry several datagrams per buffer.
    pub(crate) fn gro(&self) -> bool {
        self.gro
    }

    /// Sends `packets` to `dest`, each as one datagram, in as few system calls as the
    /// kernel allows: a run of equal-size packets (the last may be shorter) goes out as
    /// one GSO `sendmsg`, copied into `scratch` (kept by the caller so that steady-state
    /// sends allocate nothing); packets GSO cannot take (no GSO, or longer than the path
    /// MTU lets a segment be) go out up to 64 per `sendmmsg`, from their own buffers. Waits up to `timeout` in total for room in the send
    /// buffer. Returns the number of system calls made.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] when the send buffer stayed full; any other error of
    /// `sendmsg` (for example `EMSGSIZE`). Packets before the failing one were sent.
    pub fn send(
        &self,
        dest: SocketAddr,
        packets: &[Bytes],
        scratch: &mut Vec<u8>,
        timeout: Duration,
    ) -> io::Result<usize> {
        let deadline = Instant::now() + timeout;
        let mut calls = 0;
        let mut start = 0;
        while start < packets.len() {
            let max_segments = self.gso_segments(packets[start].len());
            if max_segments <= 1 {
                // Packets that do not go by GSO: sendmmsg straight from their buffers.
                let mut datagrams: [&[u8]; MMSG_BATCH] = [&[]; MMSG_BATCH];
                let mut count = 0;
                while count < MMSG_BATCH
                    && start + count < packets.len()
                    && self.gso_segments(packets[start + count].len()) <= 1
                {
                    datagrams[count] = &packets[start + count];
                    count += 1;
                }
                calls += self.send_many(dest, &datagrams[..count], deadline)?;
                start += count;
                continue;
            }
            let end = gso_run(&packets[start..], max_segments) + start;
            let run = &packets[start..end];
            calls += if run.len() == 1 {
                self.send_run(dest, &run[0], run[0].len(), 1, deadline)?
            } else {
                scratch.clear();
                for packet in run {
                    scratch.extend_from_slice(packet);
                }
                self.send_run(dest, scratch, run[0].len(), run.len(), deadline)?
            };
            start = end;
        }
        Ok(calls)
    }

    fn send_transmit(
        &self,
        dest: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
        deadline: Instant,
    ) -> io::Result<()> {
        let transmit = Transmit {
            destination: dest,
            ecn: None,
            contents,
            segment_size,
            src_ip: None,
        };
        loop {
            match self.state.try_send((&self.socket).into(), &transmit) {
                Ok(()) => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_writable(deadline)?;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Receives into `batch`: whatever is queued (up to the batch's slots) at once, or
    /// waits up to `timeout` (`None`: for ever) for the first datagram. Returns the number
    /// of buffers filled (0 on timeout); take the datagrams out with
    /// [`RecvBatch::next_datagram`]. Datagrams of the previous call not taken yet are
    /// dropped.
    ///
    /// # Errors
    ///
    /// Any error of `poll` or `recvmmsg` but `EAGAIN` and `EINTR`.
    pub fn recv(&self, batch: &mut RecvBatch, timeout: Option<Duration>) -> io::Result<usize> {
        batch.prepare();
        let mut waited = false;
        loop {
            let received = {
                let slots = batch.slots;
                let (mut slices, meta) = batch.slices();
                self.state.recv(
                    (&self.socket).into(),
                    &mut slices[..slots],
                    &mut meta[..slots],
                )
            };
            match received {
                Ok(count) => {
                    batch.filled(count);
                    return Ok(count);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if waited {
                        return Ok(0);
                    }
                    if !wait(&self.socket, PollFlags::IN, timeout)? {
                        return Ok(0);
                    }
                    waited = true;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Datagrams for one destination, copied into one buffer as they are made and sent with
/// as few calls as the kernel allows: GSO runs (equal sizes, the last of a call possibly
/// shorter, at most the kernel's segment count and 64 KiB per call), and where GSO does
/// not apply (no GSO, or segments longer than the path MTU) up to 64 datagrams per
/// sendmmsg. Copying each packet at once lets its builder reuse the packet's memory for
/// the next one.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    buf: Vec<u8>,
    segment: usize,
    count: usize,
    /// Lengths of the datagrams queued for sendmmsg (then `count` is 0).
    singles: Vec<usize>,
    /// A shorter datagram ended the run: the next one starts a new call.
    closed: bool,
    /// sendmsg calls made and datagrams and bytes sent, since the last `take_counts`.
    pub(crate) calls: usize,
    pub(crate) datagrams: usize,
    pub(crate) bytes: usize,
}

impl SendQueue {
    /// Queues `datagram` for `dest` on `socket`, sending what is queued first when it
    /// cannot join the current run.
    pub(crate) fn push(
        &mut self,
        socket: &BatchSocket,
        dest: SocketAddr,
        datagram: &[u8],
        deadline: Instant,
    ) -> io::Result<()> {
        let max_segments = socket.gso_segments(datagram.len());
        if max_segments <= 1 || datagram.is_empty() {
            if self.count > 0
                || self.singles.len() == MMSG_BATCH
                || self.buf.len() + datagram.len() > MMSG_BYTES
            {
                self.flush(socket, dest, deadline)?;
            }
            self.buf.extend_from_slice(datagram);
            self.singles.push(datagram.len());
            return Ok(());
        }
        if !self.singles.is_empty() {
            self.flush(socket, dest, deadline)?;
        }
        if self.count > 0
            && (self.closed
                || datagram.len() > self.segment
                || self.count == max_segments
                || self.buf.len() + datagram.len() > MAX_UDP_PAYLOAD)
        {
            self.flush(socket, dest, deadline)?;
        }
        if self.count == 0 {
            self.segment = datagram.len();
        }
        self.buf.extend_from_slice(datagram);
        self.count += 1;
        self.closed = datagram.len() < self.segment;
        Ok(())
    }

    /// Sends what is queued.
    pub(crate) fn flush(
        &mut self,
        socket: &BatchSocket,
        dest: SocketAddr,
        deadline: Instant,
    ) -> io::Result<()> {
        if !self.singles.is_empty() {
            let mut rest = &self.buf[..];
            let datagrams: [&[u8]; MMSG_BATCH] = std::array::from_fn(|i| {
                let (datagram, after) = rest.split_at(self.singles.get(i).copied().unwrap_or(0));
                rest = after;
                datagram
            });
            let result = socket.send_many(dest, &datagrams[..self.singles.len()], deadline);
            if let Ok(calls) = result {
                self.count_sent(calls, self.buf.len(), self.singles.len());
            }
            self.singles.clear();
            self.buf.clear();
            return result.map(drop);
        }
        if self.count == 0 {
            return Ok(());
        }
        let (count, segment) = (self.count, self.segment);
        self.count = 0;
        self.closed = false;
        let result = socket.send_run(dest, &self.buf, segment, count, deadline);
        if let Ok(calls) = result {
            self.count_sent(calls, self.buf.len(), count);
        }
        self.buf.clear();
        result.map(drop)
    }

    fn count_sent(&mut self, calls: usize, bytes: usize, datagrams: usize) {
        self.calls += calls;
        self.bytes += bytes;
        self.datagrams += datagrams;
    }

    /// Takes the counts (calls, datagrams, bytes) since the last call.
    pub(crate) fn take_counts(&mut self) -> (usize, usize, usize) {
        let counts = (self.calls, self.datagrams, self.bytes);
        (self.calls, self.datagrams, self.bytes) = (0, 0, 0);
        counts
    }
}

/// Asks for `requested` bytes, then forces it when the plain request was capped and the
/// process is allowed to; returns the size read back and whether forcing worked.
fn request_buffer(
    socket: &Socket,
    requested: usize,
    set: fn(&Socket, usize) -> io::Result<()>,
    get: fn(&Socket) -> io::Result<usize>,
    force: fn(&Socket, usize) -> io::Result<()>,
) -> (usize, bool) {
    // A refused request leaves the default: not fatal, the granted size is reported.
    let _ = set(socket, requested);
    let granted = get(socket).unwrap_or(0);
    // Linux reads back twice what it accepted.
    if granted / 2 >= requested {
        return (granted, false);
    }
    if force(socket, requested).is_ok() {
        let forced = get(socket).unwrap_or(granted);
        return (forced, forced > granted);
    }
    (granted, false)
}

/// What only some systems have.
#[cfg(target_os = "linux")]
mod os {
    use std::io::{self, IoSlice};
    use std::net::{SocketAddr, UdpSocket};

    use rustix::net::sockopt;
    use socket2::Socket;

    /// SO_RCVBUFFORCE: beyond `rmem_max`, with CAP_NET_ADMIN.
    pub(super) fn force_recv_buffer(socket: &Socket, size: usize) -> io::Result<()> {
        Ok(sockopt::set_socket_recv_buffer_size_force(socket, size)?)
    }

    /// SO_SNDBUFFORCE: beyond `wmem_max`, with CAP_NET_ADMIN.
    pub(super) fn force_send_buffer(socket: &Socket, size: usize) -> io::Result<()> {
        Ok(sockopt::set_socket_send_buffer_size_force(socket, size)?)
    }

    /// Sends `datagrams` (at most [`MMSG_BATCH`](super::MMSG_BATCH)) with one
    /// sendmmsg; returns how many went.
    pub(super) fn send_many(
        socket: &UdpSocket,
        dest: SocketAddr,
        datagrams: &[&[u8]],
    ) -> io::Result<usize> {
        use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};

        let addr = SocketAddrAny::from(dest);
        let iovs: [[IoSlice<'_>; 1]; super::MMSG_BATCH] =
            std::array::from_fn(|i| [IoSlice::new(datagrams.get(i).copied().unwrap_or(&[]))]);
        let mut controls: [SendAncillaryBuffer<'_, '_, '_>; super::MMSG_BATCH] =
            std::array::from_fn(|_| SendAncillaryBuffer::default());
        let mut parts = iovs.iter().zip(controls.iter_mut());
        let mut messages: [MMsgHdr<'_>; super::MMSG_BATCH] = std::array::from_fn(|_| {
            let (iov, control) = parts.next().expect("one iovec and control per message");
            MMsgHdr::new_with_addr(&addr, iov, control)
        });
        let count = datagrams.len().min(super::MMSG_BATCH);
        loop {
            match sendmmsg(socket, &mut messages[..count], SendFlags::empty()) {
                Err(rustix::io::Errno::INTR) => {}
                result => return Ok(result?),
            }
        }
    }

    /// quinn-udp forbids fragmentation (it probes the path MTU); netmesh packets are up
    /// to 8 KiB, as net-mesh's, and rely on IP fragmentation beyond the link MTU.
    pub(super) fn allow_fragmentation(socket: &UdpSocket, ipv4: bool) -> io::Result<()> {
        if ipv4 {
            sockopt::set_ip_mtu_discover(socket, sockopt::Ipv4PathMtuDiscovery::DONT)?;
        } else {
            sockopt::set_ipv6_mtu_discover(socket, sockopt::Ipv6PathMtuDiscovery::DONT)?;
        }
        Ok(())
    }
}

/// What only some systems have: elsewhere the plain buffer request stands and the
/// system's fragmentation default applies.
#[cfg(not(target_os = "linux"))]
mod os {
    use std::io;
    use std::net::{SocketAddr, UdpSocket};

    use socket2::Socket;

    /// One datagram per call: the first of `datagrams`.
    pub(super) fn send_many(
        socket: &UdpSocket,
        dest: SocketAddr,
        datagrams: &[&[u8]],
    ) -> io::Result<usize> {
        let Some(datagram) = datagrams.first() else {
            return Ok(0);
        };
        socket.send_to(datagram, dest)?;
        Ok(1)
    }

    pub(super) fn force_recv_buffer(_: &Socket, _: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn force_send_buffer(_: &Socket, _: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn allow_fragmentation(_: &UdpSocket, _: bool) -> io::Result<()> {
        Ok(())
    }
}

/// How many of `packets` (at least one) one GSO send can carry: equal sizes, the last
/// possibly shorter, at most `max_segments` and 64 KiB in all.
fn gso_run(packets: &[Bytes], max_segments: usize) -> usize {
    let Some(first) = packets.first() else {
        return 0;
    };
    let size = first.len();
    if max_segments <= 1 || size == 0 {
        return 1;
    }
    let mut total = size;
    let mut count = 1;
    for packet in &packets[1..] {
        let len = packet.len();
        if count == max_segments || len > size || len == 0 || total + len > MAX_UDP_PAYLOAD {
            break;
        }
        total += len;
        count += 1;
        if len < size {
            break;
        }
    }
    count
}

/// Errors with which the kernel refuses a GSO send it would take as single datagrams:
/// `EMSGSIZE` (a segment longer than the path MTU allows), `EINVAL` and `EIO` (the
/// device cannot segment; quinn-udp then turns GSO off for the socket).
fn is_gso_refusal(error: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        error.raw_os_error(),
        Some(code) if [Errno::MSGSIZE, Errno::INVAL, Errno::IO]
            .iter()
            .any(|errno| errno.raw_os_error() == code)
    )
}

/// Waits until the socket is ready for `flags` or `timeout` passes; `true` when ready.
fn wait(socket: &UdpSocket, flags: PollFlags, timeout: Option<Duration>) -> io::Result<bool> {
    let timeout = timeout.map(|t| Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    let fd = socket.as_fd();
    let mut fds = [PollFd::new(&fd, flags)];
    match poll(&mut fds, timeout.as_ref()) {
        Ok(ready) => Ok(ready > 0),
        Err(rustix::io::Errno::INTR) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

/// Sets `buf`'s length to `total` (at most its capacity) without writing the bytes.
///
/// Zeroing them with `resize` instead cost 3.4% of all CPU samples of a 64-byte-event
/// run of `endpoint_bench` (8% of the receive thread, as much as the kernel's copy into
/// the buffer), for bytes the kernel overwrites next.
///
/// Invariant, kept by [`RecvBatch`]: every byte of the allocation behind `buf` is
/// initialised. Allocations are made only by `BytesMut::zeroed`; `try_reclaim` and
/// `split_to` never swap the allocation behind a handle for another (`try_reclaim`
/// never allocates: it moves the handle's window within its allocation, copying
/// initialised bytes at most); nothing else touches `buf`.
#[allow(unsafe_code)]
fn lengthen_initialized(buf: &mut BytesMut, total: usize) {
    assert!(
        total <= buf.capacity(),
        "receive buffer shorter than one batch"
    );
    // SAFETY: `total` is within the capacity (checked above), and every byte of the
    // allocation behind the handle is initialised by the invariant above.
    unsafe { buf.set_len(total) };
}

/// Receive buffers for [`BatchSocket::recv`]: one `BytesMut` cut into slots, datagrams
/// handed out as `BytesMut` slices of it (zero copy, exclusive by type, so they can be
/// decrypted in place).
///
/// Each call hands out the slots it filled; the next call zeroes as many fresh bytes
/// (the allocation holds two batches, so this slides forward without copying) and reuses
/// the allocation once every datagram cut from it has been dropped. While some are still
/// held, the next refill takes a new allocation: one per call, never one per datagram.
#[derive(Debug)]
pub struct RecvBatch {
    buf: BytesMut,
    pending: BytesMut,
    current: BytesMut,
    current_from: SocketAddr,
    current_stride: usize,
    meta: [RecvMeta; BATCH_SIZE],
    slot_size: usize,
    slots: usize,
    filled: usize,
    next_slot: usize,
    buffers_allocated: u64,
}

impl RecvBatch {
    /// Buffers sized for `socket`: 32 slots of one datagram, or 8 slots of 64 KiB with GRO.
    #[must_use]
    pub fn new(socket: &BatchSocket) -> Self {
        if socket.gro() {
            Self::with_slots(GRO_SLOTS, GRO_SLOT)
        } else {
            Self::with_slots(BATCH_SIZE, PLAIN_SLOT)
        }
    }

    /// `slots` buffers (at most 32) of `slot_size` bytes. A slot must hold the largest
    /// datagram expected, and with GRO (see [`SocketInfo::gro_segments`]) the largest
    /// train of coalesced datagrams (64 KiB): what does not fit is cut off and lost.
    #[must_use]
    pub fn with_slots(slots: usize, slot_size: usize) -> Self {
        let slots = slots.clamp(1, BATCH_SIZE);
        Self {
            buf: BytesMut::new(),
            pending: BytesMut::new(),
            current: BytesMut::new(),
            current_from: SocketAddr::from(([0, 0, 0, 0], 0)),
            current_stride: 0,
            meta: [RecvMeta::default(); BATCH_SIZE],
            slot_size: slot_size.max(1),
            slots,
            filled: 0,
            next_slot: 0,
            buffers_allocated: 0,
        }
    }

    /// How many times the receive buffer had to be allocated afresh (because datagrams of
    /// the previous call were still held, or for the first call).
    #[must_use]
    pub fn buffers_allocated(&self) -> u64 {
        self.buffers_allocated
    }

    fn prepare(&mut self) {
        self.pending = BytesMut::new();
        self.current = BytesMut::new();
        self.filled = 0;
        self.next_slot = 0;
        let total = self.slots * self.slot_size;
        let missing = total - self.buf.len().min(total);
        if missing == 0 {
            return;
        }
        // The slots the last call did not use are still here; the allocation holds two
        // batches, so the window slides forward without copying until it reaches the
        // end, then moves back to the front, as long as nobody holds datagrams of it any
        // more. Nothing is zeroed again: see `lengthen_initialized`.
        if self.buf.capacity() < total && !self.buf.try_reclaim(missing) {
            let mut fresh = BytesMut::zeroed(2 * total);
            fresh.clear();
            self.buf = fresh;
            self.buffers_allocated += 1;
        }
        lengthen_initialized(&mut self.buf, total);
    }

    fn slices(&mut self) -> ([IoSliceMut<'_>; BATCH_SIZE], &mut [RecvMeta; BATCH_SIZE]) {
        let mut chunks = self.buf.chunks_mut(self.slot_size);
        let slices = std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or(&mut [])));
        (slices, &mut self.meta)
    }

    fn filled(&mut self, count: usize) {
        self.filled = count.min(self.slots);
        self.pending = self.buf.split_to(self.filled * self.slot_size);
    }

    /// The next datagram of the last receive and its source, or `None` when all were
    /// taken.
    pub fn next_datagram(&mut self) -> Option<(SocketAddr, BytesMut)> {
        loop {
            if !self.current.is_empty() {
                let len = self.current_stride.min(self.current.len());
                return Some((self.current_from, self.current.split_to(len)));
            }
            if self.next_slot >= self.filled {
                return None;
            }
            let meta = self.meta[self.next_slot];
            self.next_slot += 1;
            let mut slot = self
                .pending
                .split_to(self.slot_size.min(self.pending.len()));
            slot.truncate(meta.len);
            self.current_from = meta.addr;
            self.current_stride = if meta.stride == 0 {
                meta.len
            } else {
                meta.stride
            };
            if self.current_stride == 0 {
                // An empty datagram: nothing to hand out, but it was a datagram.
                return Some((meta.addr, slot));
            }
            self.current = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(sizes: &[usize]) -> Vec<Bytes> {
        sizes.iter().map(|&n| Bytes::from(vec![0; n])).collect()
    }

    #[test]
    fn gso_runs_are_equal_sizes_with_a_shorter_tail() {
        assert_eq!(gso_run(&sizes(&[100, 100, 100]), 64), 3);
        assert_eq!(gso_run(&sizes(&[100, 100, 50, 100]), 64), 3);
        assert_eq!(gso_run(&sizes(&[100, 200]), 64), 1);
        assert_eq!(gso_run(&sizes(&[100, 100, 100]), 2), 2);
        assert_eq!(gso_run(&sizes(&[100, 100]), 1), 1);
        assert_eq!(gso_run(&sizes(&[8192; 10]), 64), 7);
        assert_eq!(gso_run(&sizes(&[0, 0]), 64), 1);
        assert_eq!(gso_run(&sizes(&[]), 64), 0);
    }
}
