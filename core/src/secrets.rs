//! Secrets at rest: sealed with XChaCha20-Poly1305 under a key that never
//! enters the database, bound to the secret's name so a sealed value cannot
//! be moved to another name. The same key derives each execution's key
//! (HMAC-SHA256, domain-separated), which every core sharing the database
//! can check without storing it.

use std::io::Write;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const NONCE_BYTES: usize = 24;

/// Why a key could not be read or a secret could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret key must be 64 hexadecimal digits")]
    BadKey,
    #[error("reading or writing the secret key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
    #[error("the system's random source failed: {0}")]
    Random(String),
    #[error("secret `{0}` cannot be opened with this key (was the key changed?)")]
    Unreadable(String),
}

/// Seals and opens secret values.
#[derive(Clone)]
pub struct SecretCipher {
    key: Key,
}

impl SecretCipher {
    /// A cipher from a hex-encoded 32-byte key (`BATON_SECRET_KEY`), which
    /// every core sharing a database must be given.
    pub fn from_hex(hex_key: &str) -> Result<Self, SecretError> {
        let mut key = [0_u8; 32];
        hex::decode_to_slice(hex_key.trim(), &mut key).map_err(|_| SecretError::BadKey)?;
        Ok(Self { key: key.into() })
    }

    /// The key in `path`, created (readable by its owner only) if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let io_error = |source| SecretError::KeyFile { path: path.display().to_string(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0_u8; 32];
                getrandom::fill(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io_error)?;
                file.write_all(hex::encode(key).as_bytes()).map_err(io_error)?;
                Ok(Self { key: key.into() })
            }
            Err(e) => Err(io_error(e)),
        }
    }

    /// A cipher with a random key, for tests.
    pub fn ephemeral() -> Result<Self, SecretError> {
        let mut key = [0_u8; 32];
        getrandom::fill(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(Self { key: key.into() })
    }

    /// Nonce followed by ciphertext.
    pub fn seal(&self, name: &str, value: &str) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0_u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Random(e.to_string()))?;
        let cipher = XChaCha20Poly1305::new(&self.key);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload { msg: value.as_bytes(), aad: name.as_bytes() },
            )
            .map_err(|_| SecretError::Unreadable(name.to_owned()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<String, SecretError> {
        let unreadable = || SecretError::Unreadable(name.to_owned());
        let (nonce, ciphertext) = (
            sealed.get(..NONCE_BYTES).ok_or_else(unreadable)?,
            sealed.get(NONCE_BYTES..).ok_or_else(unreadable)?,
        );
        let cipher = XChaCha20Poly1305::new(&self.key);
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: name.as_bytes() })
            .map_err(|_| unreadable())?;
        String::from_utf8(plain).map_err(|_| unreadable())
    }

    /// The key of attempt `attempt` of run `run_id`: what a runner with no
    /// link to its agent (a pod) shows the API to act for that execution,
    /// and nothing else. Hex.
    pub fn execution_key(&self, run_id: &str, attempt: u32) -> String {
        hex::encode(self.execution_mac(run_id, attempt).finalize().into_bytes())
    }

    /// Whether `presented` is the key of that execution (in constant time).
    pub fn is_execution_key(&self, run_id: &str, attempt: u32, presented: &str) -> bool {
        let Ok(bytes) = hex::decode(presented.trim()) else { return false };
        self.execution_mac(run_id, attempt).verify_slice(&bytes).is_ok()
    }

    fn execution_mac(&self, run_id: &str, attempt: u32) -> Hmac<Sha256> {
        // HMAC pads a short key with zeros to its block: the same MAC as
        // keying it with the 32 bytes, without a fallible constructor.
        let mut block = hmac::digest::generic_array::GenericArray::default();
        if let Some(start) = block.get_mut(..self.key.len()) {
            start.copy_from_slice(self.key.as_slice());
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new(&block);
        mac.update(b"baton execution key v1\0");
        mac.update(run_id.as_bytes());
        mac.update(b"\0");
        mac.update(&attempt.to_be_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_key_proves_that_execution_only() {
        let cipher = SecretCipher::ephemeral().unwrap();
        let key = cipher.execution_key("run-1", 2);
        assert_eq!(key.len(), 64);
        assert!(cipher.is_execution_key("run-1", 2, &key));
        assert!(!cipher.is_execution_key("run-1", 3, &key));
        assert!(!cipher.is_execution_key("run-2", 2, &key));
        assert!(!cipher.is_execution_key("run-1", 2, "not hex"));
        let other = SecretCipher::ephemeral().unwrap();
        assert!(!other.is_execution_key("run-1", 2, &key), "another core's key was taken");
    }

    #[test]
    fn sealed_values_open_only_under_their_name_and_key() {
        let cipher = SecretCipher::ephemeral().unwrap();
        let sealed = cipher.seal("token", "hunter22").unwrap();
        assert!(!sealed.windows(8).any(|w| w == b"hunter22"), "plaintext must not appear");
        assert_eq!(cipher.open("token", &sealed).unwrap(), "hunter22");
        assert!(cipher.open("other", &sealed).is_err());
        assert!(SecretCipher::ephemeral().unwrap().open("token", &sealed).is_err());
        assert!(cipher.open("token", &sealed[..10]).is_err());
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let first = SecretCipher::load_or_create(&path).unwrap();
        let sealed = first.seal("a", "b").unwrap();
        let second = SecretCipher::load_or_create(&path).unwrap();
        assert_eq!(second.open("a", &sealed).unwrap(), "b");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
