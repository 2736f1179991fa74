//! Variables (plain) and secrets (sealed at rest, never listed in plain
//! text).

use baton_proto::v1::{SecretInfo, Timestamp, Variable};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::deployments::check_name;
use super::{Store, StoreError, StoreResult, found, now};

fn variable(row: &AnyRow) -> StoreResult<Variable> {
    Ok(Variable {
        name: row.try_get("name")?,
        value: row.try_get("value")?,
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

impl Store {
    pub async fn set_variable(&self, name: &str, value: &str) -> StoreResult<Variable> {
        check_name("variable", name)?;
        sqlx::query(
            "INSERT INTO variables (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = $2, updated_at = $3",
        )
        .bind(name)
        .bind(value)
        .bind(now().0)
        .execute(&self.write)
        .await?;
        self.variable(name).await
    }

    pub async fn variable(&self, name: &str) -> StoreResult<Variable> {
        let row = sqlx::query("SELECT name, value, updated_at FROM variables WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("variable {name}")))?;
        variable(&row)
    }

    pub async fn variables(&self) -> StoreResult<Vec<Variable>> {
        sqlx::query("SELECT name, value, updated_at FROM variables ORDER BY name")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(variable)
            .collect()
    }

    pub async fn delete_variable(&self, name: &str) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM variables WHERE name = $1")
            .bind(name)
            .execute(&self.write)
            .await?
            .rows_affected();
        found(deleted, || format!("variable {name}"))?;
        Ok(())
    }

    pub async fn set_secret(&self, name: &str, value: &str) -> StoreResult<SecretInfo> {
        check_name("secret", name)?;
        let sealed =
            self.cipher.seal(name, value).map_err(|e| StoreError::Secret(e.to_string()))?;
        let at = now();
        sqlx::query(
            "INSERT INTO secrets (name, sealed, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET sealed = $2, updated_at = $3",
        )
        .bind(name)
        .bind(sealed)
        .bind(at.0)
        .execute(&self.write)
        .await?;
        Ok(SecretInfo { name: name.to_owned(), updated_at: at })
    }

    /// A secret's value, unsealed.
    pub async fn secret(&self, name: &str) -> StoreResult<String> {
        let row = sqlx::query("SELECT sealed FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("secret {name}")))?;
        let sealed: Vec<u8> = row.try_get("sealed")?;
        self.cipher.open(name, &sealed).map_err(|e| StoreError::Secret(e.to_string()))
    }

    /// Names of secrets, never their values.
    pub async fn secrets(&self) -> StoreResult<Vec<SecretInfo>> {
        sqlx::query("SELECT name, updated_at FROM secrets ORDER BY name")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|row| {
                Ok(SecretInfo {
                    name: row.try_get("name")?,
                    updated_at: Timestamp(row.try_get("updated_at")?),
                })
            })
            .collect()
    }

    pub async fn delete_secret(&self, name: &str) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM secrets WHERE name = $1")
            .bind(name)
            .execute(&self.write)
            .await?
            .rows_affected();
        found(deleted, || format!("secret {name}"))?;
        Ok(())
    }
}
