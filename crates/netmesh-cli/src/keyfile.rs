//! Keys as hex: secret key files (mode 0600) and keys or PSKs on the command line.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Why a key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Not hexadecimal digits.
    #[error("{what} is not hex (64 hex digits expected)")]
    NotHex {
        /// Which key.
        what: String,
    },
    /// Hex, but not 32 bytes.
    #[error("{what} has {digits} hex digits, 64 expected")]
    WrongLength {
        /// Which key.
        what: String,
        /// How many digits it had.
        digits: usize,
    },
}

/// Parses 32 bytes written as 64 hex digits (surrounding whitespace ignored).
///
/// # Errors
///
/// [`KeyError::NotHex`] or [`KeyError::WrongLength`]; the message names `what`, never
/// the key itself.
///
/// # Examples
///
/// ```
/// let key = netmesh_cli::keyfile::parse_hex32(&"ab".repeat(32), "--psk").unwrap();
/// assert_eq!(*key, [0xab; 32]);
/// assert!(netmesh_cli::keyfile::parse_hex32("abc", "--psk").is_err());
/// ```
pub fn parse_hex32(text: &str, what: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let text = text.trim();
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::NotHex { what: what.into() });
    }
    let mut key = Zeroizing::new([0; 32]);
    if text.len() != 64 {
        return Err(KeyError::WrongLength {
            what: what.into(),
            digits: text.len(),
        });
    }
    hex::decode_to_slice(text, &mut key[..]).map_err(|_| KeyError::NotHex { what: what.into() })?;
    Ok(key)
}

/// Reads a secret key file: 64 hex digits.
///
/// # Errors
///
/// When the file cannot be read or does not hold one hex key.
pub fn read_secret(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let text = Zeroizing::new(fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.into(),
        source,
    })?);
    parse_hex32(&text, &format!("key file {}", path.display()))
}

/// Writes `secret` as hex to `path`, readable by its owner only (mode 0600).
///
/// The key goes to a new file beside `path` first, created with mode 0600, and is then
/// renamed over `path`: no moment where the key sits in a file others can read, and an
/// existing file at `path` is replaced whole.
///
/// # Errors
///
/// When the file cannot be created, written or renamed.
pub fn write_secret(path: &Path, secret: &[u8; 32]) -> Result<(), KeyError> {
    let io_error = |source| KeyError::Io {
        path: path.into(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let text = Zeroizing::new(format!("{}\n", hex::encode(secret)));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        // The umask may have narrowed the mode, never widened it; make it exact.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written.map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_parse_and_bad_ones_are_named_without_the_key() {
        let key = parse_hex32(&format!("  {}\n", "0F".repeat(32)), "--peer-key").unwrap();
        assert_eq!(*key, [0x0f; 32]);
        let short = parse_hex32(&"0f".repeat(31), "--psk").unwrap_err();
        assert_eq!(short.to_string(), "--psk has 62 hex digits, 64 expected");
        let secret_looking = format!("{}zz", "1".repeat(62));
        let not_hex = parse_hex32(&secret_looking, "--psk").unwrap_err();
        assert!(!not_hex.to_string().contains("111"), "{not_hex}");
    }

    #[test]
    fn secret_files_are_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("netmesh-keyfile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        fs::write(&path, "old, world-readable").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_secret(&path, &[0x42; 32]).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(*read_secret(&path).unwrap(), [0x42; 32]);
        assert!(matches!(
            read_secret(&dir.join("missing")),
            Err(KeyError::Io { .. })
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
