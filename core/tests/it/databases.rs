//! Fresh databases for tests: an SQLite file in a temporary directory, and
//! a new database on the PostgreSQL server named by
//! `BATON_TEST_POSTGRES_URL` (which `cargo xtask test` starts and sets).

use baton_core::secrets::SecretCipher;
use baton_core::store::Store;
use sqlx::Connection;

/// A store and what keeps its database alive.
pub struct TestStore {
    pub store: Store,
    pub label: &'static str,
    /// The PostgreSQL database's URL (another core may connect to it).
    postgres_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&Store::sqlite_url(dir.path()), SecretCipher::ephemeral().unwrap())
        .await
        .unwrap();
    TestStore { store, label: "sqlite", postgres_url: None, _dir: Some(dir) }
}

pub async fn postgres() -> TestStore {
    let Ok(server) = std::env::var("BATON_TEST_POSTGRES_URL") else {
        panic!(
            "BATON_TEST_POSTGRES_URL is not set: run the tests with `cargo xtask test`, which starts \
             a PostgreSQL server, or point it at one (postgres://user@host:port/db)"
        );
    };
    let name = format!("baton_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base);
    let url = format!("{base}/{name}");
    let store = Store::connect(&url, SecretCipher::ephemeral().unwrap()).await.unwrap();
    TestStore { store, label: "postgres", postgres_url: Some(url), _dir: None }
}

/// Both databases, fresh.
pub async fn both() -> Vec<TestStore> {
    vec![sqlite().await, postgres().await]
}

/// A second store on the same PostgreSQL database, as a second core would
/// have; `None` for SQLite (one core per file).
pub async fn second_store(db: &TestStore) -> Option<Store> {
    let url = db.postgres_url.as_ref()?;
    Some(Store::connect(url, SecretCipher::ephemeral().unwrap()).await.unwrap())
}
