//! Signatures of incoming webhook calls: `sha256=<hex>` of the body's
//! HMAC-SHA256 under the webhook's secret, compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The HMAC of `body` under `secret` (HMAC takes keys of any length, so
/// this is always `Some`).
fn mac(secret: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    Some(mac)
}

/// Whether `header` is the signature of `body` under `secret`.
pub fn signature_matches(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digest) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else { return false };
    mac(secret, body).is_some_and(|m| m.verify_slice(&digest).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header value a caller signing `body` with `secret` sends.
    fn signature(secret: &str, body: &[u8]) -> String {
        let digest = mac(secret, body).map(|m| hex::encode(m.finalize().into_bytes()));
        format!("sha256={}", digest.unwrap_or_default())
    }

    #[test]
    fn a_signature_matches_its_body_and_secret_only() {
        let signed = signature("s3cret", b"{\"a\":1}");
        assert!(signature_matches("s3cret", b"{\"a\":1}", Some(&signed)));
        assert!(!signature_matches("s3cret", b"{\"a\":2}", Some(&signed)));
        assert!(!signature_matches("other", b"{\"a\":1}", Some(&signed)));
        assert!(!signature_matches("s3cret", b"{\"a\":1}", None));
        assert!(!signature_matches("s3cret", b"{\"a\":1}", Some("sha256=zz")));
        assert!(!signature_matches(
            "s3cret",
            b"{\"a\":1}",
            Some(signed.trim_start_matches("sha256="))
        ));
    }
}
