//! Static X25519 keypairs, pre-shared keys, prologues and the session keys a handshake
//! produces.
//!
//! Every secret here lives in a [`Zeroizing`] buffer, so it is wiped when dropped, and
//! every `Debug` impl of a secret-bearing type prints no secret byte.

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::montgomery::MontgomeryPoint;
use zeroize::{Zeroize, Zeroizing};

/// Bytes of an X25519 key, a PSK or a session key.
pub const KEY_LEN: usize = 32;

/// The label the mesh prologue starts with.
pub const MESH_PROLOGUE_LABEL: &[u8; 16] = b"net-handshake-v1";

/// Why bytes or text are not a usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The hex text (surrounding whitespace removed) is not 64 bytes long.
    #[error("a key is 64 hex digits, got {found} bytes")]
    WrongHexLength {
        /// Bytes of text after trimming whitespace.
        found: usize,
    },
    /// A byte that is not a hex digit. Only its position is reported: the text may be a
    /// secret.
    #[error("byte {index} is not a hex digit")]
    InvalidHexDigit {
        /// Zero-based byte index in the trimmed text.
        index: usize,
    },
    /// The public key is one of the X25519 points of small order: every Diffie-Hellman
    /// result with it is zero, so it would authenticate nobody.
    #[error("public key has small order (every DH result with it is zero)")]
    LowOrderPublicKey,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    RandomUnavailable,
}

/// Fills a fresh zeroizing buffer with random bytes.
pub(crate) fn random_secret() -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(&mut secret[..]).map_err(|_| KeyError::RandomUnavailable)?;
    Ok(secret)
}

/// X25519 with the base point: the public key of `secret` (clamped, as X25519 does).
pub(crate) fn x25519_base(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    // The secret is passed by value: wipe our copy once the point is computed.
    let mut scalar = *secret;
    let public = MontgomeryPoint::mul_base_clamped(scalar).to_bytes();
    scalar.zeroize();
    public
}

/// Whether `point` has small order: X25519 of it with any clamped scalar is zero.
/// Clamped scalars are multiples of the cofactor 8, which wipes out every point of order
/// dividing 8 on the curve (and 4 on its twist), so one multiplication by any clamped
/// scalar decides it.
pub(crate) fn is_low_order(point: &[u8; KEY_LEN]) -> bool {
    MontgomeryPoint(*point)
        .mul_clamped([0x5a; KEY_LEN])
        .to_bytes()
        == [0; KEY_LEN]
}

/// Parses exactly 64 hex digits (surrounding ASCII whitespace ignored) into a zeroizing
/// buffer, so a secret never sits in an unwiped temporary.
fn parse_hex32(text: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let digits = text.trim_ascii().as_bytes();
    if digits.len() != 2 * KEY_LEN {
        return Err(KeyError::WrongHexLength {
            found: digits.len(),
        });
    }
    let nibble = |index: usize| -> Result<u8, KeyError> {
        let value = match digits[index] {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'f' => c - b'a' + 10,
            c @ b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(KeyError::InvalidHexDigit { index }),
        };
        Ok(value)
    };
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = (nibble(2 * i)? << 4) | nibble(2 * i + 1)?;
    }
    Ok(out)
}

/// Lower-case hex of 32 bytes, in a buffer wiped on drop.
fn hex32(bytes: &[u8; KEY_LEN]) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Zeroizing::new(String::with_capacity(2 * KEY_LEN));
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// An X25519 public key (32 bytes). Public, so `Debug` and `Display` print it as hex.
///
/// # Examples
///
/// ```
/// use netmesh_session::{PublicKey, StaticKeypair};
///
/// let keypair = StaticKeypair::generate()?;
/// let text = keypair.public_key().to_string();
/// assert_eq!(PublicKey::from_hex(&text)?, keypair.public_key());
/// # Ok::<(), netmesh_session::KeyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    /// Parses 64 hex digits (either case, surrounding whitespace ignored) and refuses a
    /// point of small order.
    ///
    /// # Errors
    ///
    /// [`KeyError::WrongHexLength`], [`KeyError::InvalidHexDigit`] or
    /// [`KeyError::LowOrderPublicKey`].
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        Self::from_bytes(*parse_hex32(text)?)
    }

    /// Wraps 32 bytes, refusing a point of small order.
    ///
    /// # Errors
    ///
    /// [`KeyError::LowOrderPublicKey`].
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::{KeyError, PublicKey};
    ///
    /// assert_eq!(PublicKey::from_bytes([0; 32]), Err(KeyError::LowOrderPublicKey));
    /// ```
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Result<Self, KeyError> {
        if is_low_order(&bytes) {
            return Err(KeyError::LowOrderPublicKey);
        }
        Ok(Self(bytes))
    }

    /// The 32 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::from_hex(text)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex32(&self.0))
    }
}

/// A static X25519 keypair. The secret half is wiped on drop and never printed.
///
/// # Examples
///
/// ```
/// use netmesh_session::StaticKeypair;
///
/// let keypair = StaticKeypair::generate()?;
/// let again = StaticKeypair::from_secret(keypair.secret_bytes());
/// assert_eq!(again.public_key(), keypair.public_key());
/// assert!(!format!("{keypair:?}").contains(&*keypair.secret_hex()));
/// # Ok::<(), netmesh_session::KeyError>(())
/// ```
#[derive(Clone)]
pub struct StaticKeypair {
    secret: Zeroizing<[u8; KEY_LEN]>,
    public: PublicKey,
}

impl StaticKeypair {
    /// A new keypair from the operating system's random number generator.
    ///
    /// # Errors
    ///
    /// [`KeyError::RandomUnavailable`] if the generator fails.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self::from_zeroizing(random_secret()?))
    }

    /// The keypair of a 32-byte X25519 secret. The secret is kept as given; X25519
    /// clamps it whenever it is used, so any 32 bytes are a valid secret.
    #[must_use]
    pub fn from_secret(secret: &[u8; KEY_LEN]) -> Self {
        Self::from_zeroizing(Zeroizing::new(*secret))
    }

    /// Parses a secret written as 64 hex digits (either case, surrounding whitespace
    /// ignored, so a key file's trailing newline is fine).
    ///
    /// # Errors
    ///
    /// [`KeyError::WrongHexLength`] or [`KeyError::InvalidHexDigit`].
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        Ok(Self::from_zeroizing(parse_hex32(text)?))
    }

    fn from_zeroizing(secret: Zeroizing<[u8; KEY_LEN]>) -> Self {
        let public = PublicKey(x25519_base(&secret));
        Self { secret, public }
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The secret, for writing it to a key file and nothing else. Do not copy it into a
    /// buffer that is not wiped, and never log it.
    #[must_use]
    pub fn secret_bytes(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    /// The secret as 64 lower-case hex digits (the key-file format
    /// [`from_hex`](Self::from_hex) reads), in a buffer wiped on drop.
    #[must_use]
    pub fn secret_hex(&self) -> Zeroizing<String> {
        hex32(&self.secret)
    }
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A 32-byte pre-shared key (Noise `psk0`). Wiped on drop, never printed.
///
/// # Examples
///
/// ```
/// use netmesh_session::Psk;
///
/// let psk = Psk::from_hex(&"42".repeat(32))?;
/// assert_eq!(format!("{psk:?}"), "Psk(..)");
/// # Ok::<(), netmesh_session::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Psk(Zeroizing<[u8; KEY_LEN]>);

impl Psk {
    /// Wraps 32 bytes; the caller should wipe its own copy.
    #[must_use]
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Parses 64 hex digits (either case, surrounding whitespace ignored).
    ///
    /// # Errors
    ///
    /// [`KeyError::WrongHexLength`] or [`KeyError::InvalidHexDigit`].
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        Ok(Self(parse_hex32(text)?))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl FromStr for Psk {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::from_hex(text)
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(..)")
    }
}

/// The Noise prologue both sides bind into the handshake. Both must use the same one,
/// or msg1 fails to authenticate at the responder.
///
/// # Examples
///
/// ```
/// use netmesh_session::Prologue;
///
/// assert!(Prologue::Empty.bytes().is_empty());
/// let mesh = Prologue::Mesh { initiator_id: 1, responder_id: 2 }.bytes();
/// assert_eq!(&mesh[..16], b"net-handshake-v1");
/// assert_eq!(&mesh[16..], &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prologue {
    /// No prologue: net-mesh's point-to-point `NetAdapter`.
    Empty,
    /// net-mesh's `MeshNode`: `"net-handshake-v1" ‖ le64(initiator_id) ‖ le64(responder_id)`.
    /// A MeshNode's id on the wire is its node id truncated to u32, widened to u64.
    Mesh {
        /// The initiator's id as written into the prologue.
        initiator_id: u64,
        /// The responder's id as written into the prologue.
        responder_id: u64,
    },
}

impl Prologue {
    /// The bytes mixed into the handshake hash: empty, or the 32-byte mesh prologue.
    #[must_use]
    pub fn bytes(&self) -> Vec<u8> {
        match *self {
            Self::Empty => Vec::new(),
            Self::Mesh {
                initiator_id,
                responder_id,
            } => {
                let mut out = Vec::with_capacity(32);
                out.extend_from_slice(MESH_PROLOGUE_LABEL);
                out.extend_from_slice(&initiator_id.to_le_bytes());
                out.extend_from_slice(&responder_id.to_le_bytes());
                out
            }
        }
    }
}

/// What a finished handshake yields: the session id and one key per direction.
/// Wiped on drop; `Debug` prints the session id only.
pub struct SessionKeys {
    session_id: u64,
    tx: Zeroizing<[u8; KEY_LEN]>,
    rx: Zeroizing<[u8; KEY_LEN]>,
}

impl SessionKeys {
    /// Keys from known parts, for tests and for keys agreed some other way. A session
    /// built on keys that were ever used before reuses nonces: only a fresh handshake
    /// gives fresh keys.
    ///
    /// # Examples
    ///
    /// ```
    /// use netmesh_session::SessionKeys;
    ///
    /// let keys = SessionKeys::from_parts(7, [1; 32], [2; 32]);
    /// assert_eq!((keys.session_id(), keys.tx_key()[0], keys.rx_key()[0]), (7, 1, 2));
    /// ```
    #[must_use]
    pub fn from_parts(session_id: u64, tx: [u8; KEY_LEN], rx: [u8; KEY_LEN]) -> Self {
        Self {
            session_id,
            tx: Zeroizing::new(tx),
            rx: Zeroizing::new(rx),
        }
    }

    pub(crate) fn from_zeroizing(
        session_id: u64,
        tx: Zeroizing<[u8; KEY_LEN]>,
        rx: Zeroizing<[u8; KEY_LEN]>,
    ) -> Self {
        Self { session_id, tx, rx }
    }

    /// The session id both sides derived (`le64(h[0..8])`).
    #[must_use]
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The key this side seals with.
    #[must_use]
    pub fn tx_key(&self) -> &[u8; KEY_LEN] {
        &self.tx
    }

    /// The key this side opens with.
    #[must_use]
    pub fn rx_key(&self) -> &[u8; KEY_LEN] {
        &self.rx
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("session_id", &format_args!("{:#018x}", self.session_id))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7748 section 6.1: Alice's secret and public key.
    const ALICE_SECRET: &str = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const ALICE_PUBLIC: &str = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

    #[test]
    fn public_key_matches_rfc7748() {
        let keypair = StaticKeypair::from_hex(ALICE_SECRET).unwrap();
        assert_eq!(keypair.public_key().to_string(), ALICE_PUBLIC);
        assert_eq!(&*keypair.secret_hex(), ALICE_SECRET);
    }

    #[test]
    fn clamping_bits_do_not_change_the_public_key() {
        let mut secret = *StaticKeypair::from_hex(ALICE_SECRET)
            .unwrap()
            .secret_bytes();
        let public = StaticKeypair::from_secret(&secret).public_key();
        // X25519 clears bits 0..3 and 255 and sets bit 254 of the scalar.
        secret[0] ^= 0x07;
        secret[31] ^= 0x80;
        secret[31] |= 0x40;
        assert_eq!(StaticKeypair::from_secret(&secret).public_key(), public);
    }

    #[test]
    fn generated_keys_differ_and_roundtrip() {
        let a = StaticKeypair::generate().unwrap();
        let b = StaticKeypair::generate().unwrap();
        assert_ne!(a.secret_bytes(), b.secret_bytes());
        assert_ne!(a.public_key(), b.public_key());
        let again = StaticKeypair::from_hex(&a.secret_hex()).unwrap();
        assert_eq!(again.public_key(), a.public_key());
    }

    #[test]
    fn hex_accepts_both_cases_and_surrounding_whitespace() {
        let upper = format!("  {}\n", ALICE_PUBLIC.to_uppercase());
        assert_eq!(
            PublicKey::from_hex(&upper).unwrap().to_string(),
            ALICE_PUBLIC
        );
        assert_eq!(
            ALICE_PUBLIC.parse::<PublicKey>().unwrap().to_string(),
            ALICE_PUBLIC
        );
        let psk: Psk = format!("{}\r\n", "0f".repeat(32)).parse().unwrap();
        assert_eq!(psk.bytes(), &[0x0f; 32]);
    }

    #[test]
    fn wrong_hex_length_is_refused() {
        for text in ["", "ab", &ALICE_PUBLIC[..62], &format!("{ALICE_PUBLIC}00")] {
            let found = text.len();
            assert_eq!(
                PublicKey::from_hex(text),
                Err(KeyError::WrongHexLength { found })
            );
            assert_eq!(
                Psk::from_hex(text).map(|_| ()),
                Err(KeyError::WrongHexLength { found })
            );
            assert_eq!(
                StaticKeypair::from_hex(text).map(|_| ()),
                Err(KeyError::WrongHexLength { found })
            );
        }
        // Lengths and positions count bytes: 32 two-byte characters are 64 bytes, and
        // the first is no hex digit.
        assert_eq!(
            Psk::from_hex(&"é".repeat(32)).map(|_| ()),
            Err(KeyError::InvalidHexDigit { index: 0 })
        );
    }

    #[test]
    fn invalid_hex_digit_is_refused_with_its_position() {
        for index in [0, 1, 31, 63] {
            let mut text = ALICE_SECRET.as_bytes().to_vec();
            text[index] = b'g';
            let text = String::from_utf8(text).unwrap();
            assert_eq!(
                StaticKeypair::from_hex(&text).map(|_| ()),
                Err(KeyError::InvalidHexDigit { index })
            );
            assert_eq!(
                Psk::from_hex(&text).map(|_| ()),
                Err(KeyError::InvalidHexDigit { index })
            );
            assert_eq!(
                PublicKey::from_hex(&text),
                Err(KeyError::InvalidHexDigit { index })
            );
        }
        let inner_space = format!("{} {}", &ALICE_SECRET[..31], &ALICE_SECRET[32..]);
        assert_eq!(
            Psk::from_hex(&inner_space).map(|_| ()),
            Err(KeyError::InvalidHexDigit { index: 31 })
        );
    }

    #[test]
    fn low_order_public_keys_are_refused() {
        // The small-order u-coordinates of Curve25519 and its twist (0, 1, the order-8
        // points, p - 1, p, p + 1), the last three also with the top bit set.
        let low_order: [&str; 7] = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ];
        for text in low_order {
            assert_eq!(PublicKey::from_hex(text), Err(KeyError::LowOrderPublicKey));
            let mut high = *parse_hex32(text).unwrap();
            high[31] |= 0x80;
            assert_eq!(
                PublicKey::from_bytes(high),
                Err(KeyError::LowOrderPublicKey)
            );
        }
        assert!(PublicKey::from_hex(ALICE_PUBLIC).is_ok());
    }

    #[test]
    fn random_unavailable_has_its_own_message() {
        // The OS generator cannot be made to fail from a test; the variant is reached
        // only through `random_secret`, whose success path the tests above exercise.
        assert_eq!(
            KeyError::RandomUnavailable.to_string(),
            "the system random number generator failed"
        );
    }

    #[test]
    fn debug_prints_no_secret_byte() {
        let keypair = StaticKeypair::from_secret(&[0xa7; 32]);
        let psk = Psk::new([0xc3; 32]);
        let keys = SessionKeys::from_parts(0x1122_3344_5566_7788, [0xd5; 32], [0xe9; 32]);
        let printed = format!("{keypair:?} {keypair:#?} {psk:?} {psk:#?} {keys:?} {keys:#?}");
        for secret in [0xa7u8, 0xc3, 0xd5, 0xe9] {
            assert!(!printed.contains(&format!("{secret:02x}{secret:02x}")));
            assert!(!printed.contains(&format!("{secret:02X}{secret:02X}")));
            assert!(!printed.contains(&format!("{secret}, {secret}")));
        }
        assert!(printed.contains("0x1122334455667788"));
        assert!(printed.contains(&keypair.public_key().to_string()));
    }
}
