//! The TLS identity the cores sharing a database present to agents: the CA
//! their tokens pin, recorded by the first core to start, its key sealed
//! with the secret key every core of the database is given. So a token
//! made through any core is good for every core, and an agent can fail over
//! from one to another.

use sqlx::Row as _;

use super::{Store, StoreError, StoreResult, now};

/// The name the CA's key is sealed under.
const SEALED_AS: &str = "core CA key";

/// A CA: its certificate and its PKCS#8 key, DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCa {
    pub certificate: Vec<u8>,
    pub key: Vec<u8>,
}

impl Store {
    /// The CA the cores of this database share: `offered` when none is
    /// recorded yet (this core is the first), else the one recorded.
    pub async fn shared_ca(&self, offered: SharedCa) -> StoreResult<SharedCa> {
        let sealed = self
            .cipher
            .seal(SEALED_AS, &hex::encode(&offered.key))
            .map_err(|e| StoreError::Secret(e.to_string()))?;
        sqlx::query(
            "INSERT INTO core_identity (id, ca, sealed_ca_key, created_at) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(offered.certificate)
        .bind(sealed)
        .bind(now().0)
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT ca, sealed_ca_key FROM core_identity WHERE id = 1")
            .fetch_one(&self.write)
            .await?;
        let sealed: Vec<u8> = row.try_get("sealed_ca_key")?;
        let unreadable = || {
            StoreError::Secret(
                "the cores' shared TLS identity was sealed with another secret key: give every \
                 core of one database the same --secret-key (BATON_SECRET_KEY)"
                    .to_owned(),
            )
        };
        let key = self.cipher.open(SEALED_AS, &sealed).map_err(|_| unreadable())?;
        let key = hex::decode(key).map_err(|_| unreadable())?;
        Ok(SharedCa { certificate: row.try_get("ca")?, key })
    }
}
