//! API tokens: what each may do (its scope). Only a hash of a token's
//! secret is kept; the token itself is shown once, when it is made.

use baton_proto::v1::{API_TOKEN_PREFIX, ApiScope, ApiTokenInfo, Timestamp};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    Store, StoreError, StoreResult, deployments::check_name, now, parsed_column, random_hex,
    secret_matches, sha256_hex,
};

fn token_info(row: &AnyRow) -> StoreResult<ApiTokenInfo> {
    Ok(ApiTokenInfo {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scope: parsed_column(row, "scope")?,
        created_at: Timestamp(row.try_get("created_at")?),
    })
}

impl Store {
    /// Makes an API token with `scope`; returns it as listed and the token
    /// to give out (`baton-api.<id>.<secret>`).
    pub async fn create_api_token(
        &self,
        scope: ApiScope,
        name: Option<&str>,
    ) -> StoreResult<(ApiTokenInfo, String)> {
        if let Some(name) = name {
            check_name("API token", name)?;
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let secret = random_hex(32)?;
        let info = ApiTokenInfo { id, name: name.map(str::to_owned), scope, created_at: now() };
        sqlx::query(
            "INSERT INTO api_tokens (id, name, scope, secret_sha256, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&info.id)
        .bind(&info.name)
        .bind(scope.as_str())
        .bind(sha256_hex(&secret))
        .bind(info.created_at.0)
        .execute(&self.write)
        .await?;
        let token = format!("{API_TOKEN_PREFIX}{}.{secret}", info.id);
        Ok((info, token))
    }

    /// Every API token, oldest first.
    pub async fn api_tokens(&self) -> StoreResult<Vec<ApiTokenInfo>> {
        sqlx::query("SELECT id, name, scope, created_at FROM api_tokens ORDER BY id")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(token_info)
            .collect()
    }

    /// Revokes (deletes) the API token `id`.
    pub async fn revoke_api_token(&self, id: &str) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::not_found(format!("API token {id}")));
        }
        Ok(())
    }

    /// The scope of the API token `id` if `secret` is its secret.
    pub async fn api_token_scope(&self, id: &str, secret: &str) -> StoreResult<Option<ApiScope>> {
        let row = sqlx::query("SELECT scope, secret_sha256 FROM api_tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let matches = secret_matches(&row.try_get::<String, _>("secret_sha256")?, secret);
        matches.then(|| parsed_column(&row, "scope")).transpose()
    }
}
