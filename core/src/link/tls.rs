//! The core's TLS identity: a CA and a server certificate it signs, made on
//! first start and kept in the data directory. Agents pin the CA by its
//! SHA-256 fingerprint (carried in their token), so the server certificate
//! can be renewed without touching them. The cores sharing a database share
//! the CA (the first to start records it there), so an agent's token is good
//! for each of them; every core signs its own server certificate with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_proto::v1::link::{ALPN, SERVER_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest as _, Sha256};

use crate::store::{SharedCa, Store};

/// Why the identity could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("making a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("QUIC configuration: {0}")]
    Quic(String),
    #[error("the cores' shared CA: {0}")]
    Shared(#[from] crate::store::StoreError),
}

/// The CA and the server certificate and key.
pub struct CoreIdentity {
    ca: CertificateDer<'static>,
    /// The CA's key (PKCS#8, DER), offered to the cores sharing a database.
    ca_key: Vec<u8>,
    server: CertificateDer<'static>,
    server_key: Vec<u8>,
    /// Signs QUIC stateless resets (and keys connection ids). Kept across
    /// restarts, so that a core started again answers packets of its
    /// previous life's connections with a reset the agents believe, and
    /// they reconnect at once instead of waiting out an idle timeout.
    reset_key: Vec<u8>,
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Baton core CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, TlsError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::File { path: path.to_owned(), source }),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    let fail = |source| TlsError::File { path: path.to_owned(), source };
    #[cfg(unix)]
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        file.write_all(bytes).map_err(fail)
    }
    #[cfg(not(unix))]
    std::fs::write(path, bytes).map_err(fail)
}

impl CoreIdentity {
    /// Loads the identity from `data_dir/tls`, making what is missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, TlsError> {
        let dir = data_dir.join("tls");
        std::fs::create_dir_all(&dir)
            .map_err(|source| TlsError::File { path: dir.clone(), source })?;
        let paths = ["ca.der", "ca.key.der", "server.der", "server.key.der"].map(|f| dir.join(f));
        let [ca_path, ca_key_path, server_path, server_key_path] = &paths;

        let (ca, ca_key) = match (read(ca_path)?, read(ca_key_path)?) {
            (Some(ca), Some(key)) => (ca, KeyPair::try_from(key.as_slice())?),
            _ => {
                let key = KeyPair::generate()?;
                let ca = ca_params()?.self_signed(&key)?;
                write_private(ca_key_path, &key.serialize_der())?;
                write_private(ca_path, ca.der())?;
                // A new CA invalidates any server certificate of an old one.
                let _ = std::fs::remove_file(server_path);
                (ca.der().to_vec(), key)
            }
        };
        let (server, server_key) = match (read(server_path)?, read(server_key_path)?) {
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(vec![SERVER_NAME.to_owned()])?;
                params.distinguished_name.push(DnType::CommonName, SERVER_NAME);
                let issuer = Issuer::new(ca_params()?, &ca_key);
                let cert = params.signed_by(&key, &issuer)?;
                write_private(server_key_path, &key.serialize_der())?;
                write_private(server_path, cert.der())?;
                (cert.der().to_vec(), key.serialize_der())
            }
        };
        let reset_path = dir.join("reset.key");
        let reset_key = match read(&reset_path)? {
            Some(key) if key.len() == 32 => key,
            _ => {
                let mut key = vec![0_u8; 32];
                getrandom::fill(&mut key)
                    .map_err(|e| TlsError::Quic(format!("no randomness: {e}")))?;
                write_private(&reset_path, &key)?;
                key
            }
        };
        Ok(Self {
            ca: CertificateDer::from(ca),
            ca_key: ca_key.serialize_der(),
            server: CertificateDer::from(server),
            server_key,
            reset_key,
        })
    }

    /// Loads the identity from `data_dir/tls` with the CA the cores of
    /// `store`'s database share: this core's own if it is the first, else
    /// the recorded one replaces it (and a server certificate it did not
    /// sign).
    pub async fn load_shared(data_dir: &Path, store: &Store) -> Result<Self, TlsError> {
        let own = Self::load_or_create(data_dir)?;
        let offered = SharedCa { certificate: own.ca.to_vec(), key: own.ca_key.clone() };
        let shared = store.shared_ca(offered.clone()).await?;
        if shared == offered {
            return Ok(own);
        }
        tracing::info!("taking the CA the cores of this database share");
        let dir = data_dir.join("tls");
        write_private(&dir.join("ca.key.der"), &shared.key)?;
        write_private(&dir.join("ca.der"), &shared.certificate)?;
        let _ = std::fs::remove_file(dir.join("server.der"));
        Self::load_or_create(data_dir)
    }

    /// The CA's SHA-256 fingerprint, lower-case hex: what agents pin.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.ca.as_ref()))
    }

    /// The endpoint configuration, with the kept stateless-reset key and
    /// connection ids whose check survives a restart too (a packet with an
    /// id the core cannot check gets no reset).
    pub fn endpoint_config(&self) -> quinn::EndpointConfig {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.reset_key);
        let mut config = quinn::EndpointConfig::new(Arc::new(key));
        let mut cid_key = [0_u8; 8];
        cid_key.iter_mut().zip(&self.reset_key).for_each(|(k, r)| *k = *r);
        let cid_key = u64::from_le_bytes(cid_key);
        config.cid_generator(move || {
            Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
        });
        config
    }

    /// The QUIC server configuration: TLS 1.3, ALPN `baton/1`, the chain
    /// [server, CA].
    pub fn quic_server_config(
        &self,
        transport: quinn::TransportConfig,
    ) -> Result<quinn::ServerConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![self.server.clone(), self.ca.clone()], key)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| TlsError::Quic(e.to_string()))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(Arc::new(transport));
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = CoreIdentity::load_or_create(dir.path()).unwrap();
        let again = CoreIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert_eq!(first.fingerprint().len(), 64);
        assert_eq!(first.server, again.server);
        // A lost server certificate is re-issued by the same CA.
        std::fs::remove_file(dir.path().join("tls/server.der")).unwrap();
        let renewed = CoreIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(renewed.fingerprint(), first.fingerprint());
        assert_ne!(renewed.server, first.server);
    }
}
