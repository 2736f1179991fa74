//! TLS for the link to the core. The agent trusts exactly one CA: the one
//! whose SHA-256 fingerprint its token carries. The core presents the chain
//! [server certificate, CA certificate]; the agent accepts it only if the CA
//! it presents has the pinned fingerprint and the server certificate is
//! issued by that CA for [`SERVER_NAME`], so a token copied from one core
//! cannot be used to talk to another, and no public CA is trusted.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use baton_proto::v1::link::{ALPN, SERVER_NAME};
use quinn::crypto::rustls::{NoInitialCipherSuite, QuicClientConfig};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use sha2::{Digest as _, Sha256};

/// How often the agent sends a QUIC keep-alive, so that NAT mappings and
/// firewalls between agent and core keep the connection open.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(2);

/// How long without a packet from the core before the connection counts as
/// lost (and the agent reconnects).
pub const IDLE_TIMEOUT_MS: u32 = 10_000;

/// The TLS or QUIC client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("configuring TLS 1.3: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("configuring QUIC: {0}")]
    Quic(#[from] NoInitialCipherSuite),
}

/// The core presented no CA certificate with the token's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the core's certificate does not match the token's fingerprint: the token pins CA {expected}, the core presented {}; is the token from this core?",
    presented_list(presented)
)]
pub struct FingerprintMismatch {
    /// The token's fingerprint.
    pub expected: String,
    /// Fingerprints of the CA certificates the core presented.
    pub presented: Vec<String>,
}

fn presented_list(presented: &[String]) -> String {
    if presented.is_empty() { "no CA certificate".to_owned() } else { presented.join(", ") }
}

/// Lower-case hex SHA-256 of a certificate's DER bytes, as tokens carry it.
pub fn fingerprint(certificate: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(certificate.as_ref()))
}

/// Verifies the core's certificate chain against the CA pinned by the
/// token's fingerprint (see the module documentation). Remembers the last
/// fingerprint mismatch, so that a failed handshake can be explained.
#[derive(Debug)]
pub struct PinnedCaVerifier {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
    last_mismatch: Mutex<Option<FingerprintMismatch>>,
}

impl PinnedCaVerifier {
    /// A verifier that trusts the CA with this fingerprint (hex, any case),
    /// with ring's algorithms.
    pub fn new(fingerprint: &str) -> Self {
        Self {
            fingerprint: fingerprint.to_ascii_lowercase(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            last_mismatch: Mutex::new(None),
        }
    }

    /// The fingerprint mismatch of the last failed verification, if that is
    /// why it failed; cleared by reading it.
    pub fn take_mismatch(&self) -> Option<FingerprintMismatch> {
        self.last_mismatch.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl ServerCertVerifier for PinnedCaVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = intermediates.iter().find(|c| fingerprint(c) == self.fingerprint) else {
            let mismatch = FingerprintMismatch {
                expected: self.fingerprint.clone(),
                presented: intermediates.iter().map(fingerprint).collect(),
            };
            *self.last_mismatch.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(mismatch.clone());
            return Err(rustls::Error::Other(OtherError(Arc::new(mismatch))));
        };
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let others: Vec<CertificateDer<'_>> =
            intermediates.iter().filter(|c| *c != ca).cloned().collect();
        let webpki = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&self.provider),
        )
        .build()
        .map_err(|e| rustls::Error::General(format!("pinning the core's CA: {e}")))?;
        // The certificate must be for the name every core's certificate is
        // issued for, whatever name the caller dialled.
        let name = ServerName::try_from(SERVER_NAME)
            .map_err(|e| rustls::Error::General(format!("the core's server name: {e}")))?;
        webpki.verify_server_cert(end_entity, &others, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls client configuration of the link: TLS 1.3 only, ALPN
/// `baton/1`, no client certificate (the agent proves itself with its
/// token), and the core verified by `verifier`.
pub fn rustls_client_config(
    verifier: Arc<PinnedCaVerifier>,
) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&verifier.provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The QUIC client configuration of the link: [`rustls_client_config`],
/// keep-alives every [`KEEP_ALIVE_INTERVAL`] and an idle timeout of
/// [`IDLE_TIMEOUT_MS`].
pub fn quic_client_config(
    verifier: Arc<PinnedCaVerifier>,
) -> Result<quinn::ClientConfig, TlsError> {
    let tls = rustls_client_config(verifier)?;
    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(KEEP_ALIVE_INTERVAL))
        .max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(IDLE_TIMEOUT_MS))));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };

    use super::*;

    struct Ca {
        der: CertificateDer<'static>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn new_ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca { der, issuer: Issuer::new(params, key) }
    }

    fn server_cert(ca: &Ca, name: &str) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        params.signed_by(&key, &ca.issuer).unwrap().der().clone()
    }

    fn verify(
        verifier: &PinnedCaVerifier,
        chain: &[CertificateDer<'static>],
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
    }

    #[test]
    fn accepts_a_server_certificate_of_the_pinned_ca() {
        let ca = new_ca("core CA");
        let verifier = PinnedCaVerifier::new(&fingerprint(&ca.der).to_ascii_uppercase());
        let chain = [server_cert(&ca, SERVER_NAME), ca.der.clone()];
        assert!(verify(&verifier, &chain).is_ok());
        assert_eq!(verifier.take_mismatch(), None);
    }

    #[test]
    fn refuses_another_ca_and_says_it_is_the_fingerprint() {
        let ca = new_ca("core CA");
        let other = new_ca("another CA");
        let verifier = PinnedCaVerifier::new(&fingerprint(&other.der));
        let chain = [server_cert(&ca, SERVER_NAME), ca.der.clone()];
        let error = verify(&verifier, &chain).unwrap_err().to_string();
        assert!(error.contains("does not match the token's fingerprint"), "{error}");
        let mismatch = verifier.take_mismatch().unwrap();
        assert_eq!(mismatch.presented, vec![fingerprint(&ca.der)]);
        assert_eq!(verifier.take_mismatch(), None, "reading clears it");
    }

    #[test]
    fn refuses_a_certificate_not_issued_by_the_pinned_ca() {
        // The pinned CA is presented, but the server certificate was issued
        // by someone else.
        let pinned = new_ca("core CA");
        let impostor = new_ca("impostor CA");
        let verifier = PinnedCaVerifier::new(&fingerprint(&pinned.der));
        let chain = [server_cert(&impostor, SERVER_NAME), pinned.der.clone()];
        assert!(verify(&verifier, &chain).is_err());
        assert_eq!(verifier.take_mismatch(), None);
    }

    #[test]
    fn refuses_a_certificate_for_another_name() {
        let ca = new_ca("core CA");
        let verifier = PinnedCaVerifier::new(&fingerprint(&ca.der));
        let chain = [server_cert(&ca, "example.com"), ca.der.clone()];
        assert!(verify(&verifier, &chain).is_err());
    }

    #[test]
    fn refuses_a_chain_without_a_ca() {
        let ca = new_ca("core CA");
        let verifier = PinnedCaVerifier::new(&fingerprint(&ca.der));
        let error = verify(&verifier, &[server_cert(&ca, SERVER_NAME)]).unwrap_err().to_string();
        assert!(error.contains("no CA certificate"), "{error}");
    }

    #[test]
    fn builds_quic_configuration() {
        assert!(quic_client_config(Arc::new(PinnedCaVerifier::new(&"0".repeat(64)))).is_ok());
    }
}
