//! The header's flags byte.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// The flags byte of a header (offset 3): a set of single-bit flags.
///
/// Bits 6 and 7 have no meaning yet; they are carried as they are, never rejected, so
/// that a packet from a newer peer still parses.
///
/// # Examples
///
/// ```
/// use netmesh_wire::PacketFlags;
///
/// let flags = PacketFlags::RELIABLE | PacketFlags::FIN;
/// assert_eq!(flags.bits(), 0b1001);
/// assert!(flags.is_reliable());
/// assert!(flags.contains(PacketFlags::FIN));
/// assert_eq!(flags.without(PacketFlags::FIN), PacketFlags::RELIABLE);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct PacketFlags(pub u8);

impl PacketFlags {
    /// No flag set.
    pub const NONE: Self = Self(0);
    /// Bit 0: the stream is reliable (the receiver NACKs gaps).
    pub const RELIABLE: Self = Self(1 << 0);
    /// Bit 1: the payload is a [`NackPayload`](crate::NackPayload).
    pub const NACK: Self = Self(1 << 1);
    /// Bit 2: route ahead of ordinary traffic.
    pub const PRIORITY: Self = Self(1 << 2);
    /// Bit 3: last packet of the stream.
    pub const FIN: Self = Self(1 << 3);
    /// Bit 4: a handshake packet, payload in the clear.
    pub const HANDSHAKE: Self = Self(1 << 4);
    /// Bit 5: a heartbeat, empty authenticated payload.
    pub const HEARTBEAT: Self = Self(1 << 5);

    /// Names of the defined bits, for `Debug`.
    const NAMES: [(Self, &'static str); 6] = [
        (Self::RELIABLE, "RELIABLE"),
        (Self::NACK, "NACK"),
        (Self::PRIORITY, "PRIORITY"),
        (Self::FIN, "FIN"),
        (Self::HANDSHAKE, "HANDSHAKE"),
        (Self::HEARTBEAT, "HEARTBEAT"),
    ];

    /// Wraps a raw flags byte, keeping every bit.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::PacketFlags;
    ///
    /// assert_eq!(PacketFlags::from_bits(0x20), PacketFlags::HEARTBEAT);
    /// ```
    #[inline]
    #[must_use]
    pub const fn from_bits(bits: u8) -> Self {
        Self(bits)
    }

    /// The raw flags byte.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::PacketFlags;
    ///
    /// assert_eq!(PacketFlags::HANDSHAKE.bits(), 0x10);
    /// ```
    #[inline]
    #[must_use]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set in `self` (so `contains(NONE)` is always true).
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::PacketFlags;
    ///
    /// let flags = PacketFlags::RELIABLE.with(PacketFlags::PRIORITY);
    /// assert!(flags.contains(PacketFlags::PRIORITY));
    /// assert!(!flags.contains(PacketFlags::PRIORITY.with(PacketFlags::FIN)));
    /// ```
    #[inline]
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with every bit of `other` set.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::PacketFlags;
    ///
    /// assert_eq!(PacketFlags::NONE.with(PacketFlags::NACK).bits(), 2);
    /// ```
    #[inline]
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// `self` with every bit of `other` cleared.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::PacketFlags;
    ///
    /// let flags = PacketFlags::RELIABLE | PacketFlags::NACK;
    /// assert_eq!(flags.without(PacketFlags::RELIABLE), PacketFlags::NACK);
    /// ```
    #[inline]
    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Whether [`HANDSHAKE`](Self::HANDSHAKE) is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::PacketFlags;
    ///
    /// assert!(PacketFlags::HANDSHAKE.is_handshake());
    /// ```
    #[inline]
    #[must_use]
    pub const fn is_handshake(self) -> bool {
        self.contains(Self::HANDSHAKE)
    }

    /// Whether [`HEARTBEAT`](Self::HEARTBEAT) is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::PacketFlags;
    ///
    /// assert!(PacketFlags::HEARTBEAT.is_heartbeat());
    /// ```
    #[inline]
    #[must_use]
    pub const fn is_heartbeat(self) -> bool {
        self.contains(Self::HEARTBEAT)
    }

    /// Whether [`RELIABLE`](Self::RELIABLE) is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::PacketFlags;
    ///
    /// assert!(!PacketFlags::NONE.is_reliable());
    /// ```
    #[inline]
    #[must_use]
    pub const fn is_reliable(self) -> bool {
        self.contains(Self::RELIABLE)
    }

    /// Whether [`NACK`](Self::NACK) is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_wire::PacketFlags;
    ///
    /// assert!(PacketFlags::NACK.is_nack());
    /// ```
    #[inline]
    #[must_use]
    pub const fn is_nack(self) -> bool {
        self.contains(Self::NACK)
    }
}

impl BitOr for PacketFlags {
    type Output = Self;

    #[inline]
    fn bitor(self, rhs: Self) -> Self {
        self.with(rhs)
    }
}

impl BitOrAssign for PacketFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.with(rhs);
    }
}

impl From<u8> for PacketFlags {
    #[inline]
    fn from(bits: u8) -> Self {
        Self(bits)
    }
}

impl From<PacketFlags> for u8 {
    #[inline]
    fn from(flags: PacketFlags) -> Self {
        flags.0
    }
}

/// Shows the raw byte and the names of the set bits: `PacketFlags(0x09: RELIABLE | FIN)`.
impl fmt::Debug for PacketFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PacketFlags({:#04x}", self.0)?;
        let mut sep = ": ";
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = " | ";
            }
        }
        let unknown = self.0 & !Self::NAMES.iter().fold(0, |all, (flag, _)| all | flag.0);
        if unknown != 0 {
            write!(f, "{sep}{unknown:#04x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::PacketFlags;

    #[test]
    fn bits_match_the_wire_table() {
        let expected = [
            (PacketFlags::NONE, 0),
            (PacketFlags::RELIABLE, 1),
            (PacketFlags::NACK, 2),
            (PacketFlags::PRIORITY, 4),
            (PacketFlags::FIN, 8),
            (PacketFlags::HANDSHAKE, 16),
            (PacketFlags::HEARTBEAT, 32),
        ];
        for (flag, bits) in expected {
            assert_eq!(flag.bits(), bits);
            assert_eq!(PacketFlags::from_bits(bits), flag);
        }
    }

    #[test]
    fn predicates_see_only_their_bit() {
        let all = PacketFlags::from_bits(0xff);
        assert!(all.is_handshake() && all.is_heartbeat() && all.is_reliable() && all.is_nack());
        let none = PacketFlags::NONE;
        assert!(!none.is_handshake() && !none.is_heartbeat());
        assert!(!none.is_reliable() && !none.is_nack());
        assert!(none.contains(PacketFlags::NONE));
    }

    #[test]
    fn with_without_and_bitor_agree() {
        let mut flags = PacketFlags::NONE;
        flags |= PacketFlags::RELIABLE;
        assert_eq!(flags, PacketFlags::NONE.with(PacketFlags::RELIABLE));
        assert_eq!(flags | PacketFlags::FIN, flags.with(PacketFlags::FIN));
        assert_eq!((flags | PacketFlags::FIN).without(PacketFlags::FIN), flags);
        assert_eq!(u8::from(PacketFlags::from(0x2a)), 0x2a);
    }

    #[test]
    fn debug_names_bits_and_unknown_bits() {
        assert_eq!(format!("{:?}", PacketFlags::NONE), "PacketFlags(0x00)");
        assert_eq!(
            format!("{:?}", PacketFlags::RELIABLE | PacketFlags::FIN),
            "PacketFlags(0x09: RELIABLE | FIN)"
        );
        assert_eq!(
            format!("{:?}", PacketFlags(0xc0)),
            "PacketFlags(0xc0: 0xc0)"
        );
    }
}
