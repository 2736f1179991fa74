//! Agents and the tokens that admit them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_proto::v1::link::AgentToken;
use baton_proto::v1::{AgentInfo, AgentTokenCreated, CreateAgentToken};

use super::JsonBody;
use crate::api::{ApiFailure, ApiResult, AppState};

pub async fn list_agents(State(state): State<AppState>) -> ApiResult<Json<Vec<AgentInfo>>> {
    let mut agents = state.store.agents().await?;
    for agent in agents.iter_mut().filter(|a| a.connected) {
        agent.cached = state.dispatcher.cached(&agent.id);
    }
    Ok(Json(agents))
}

/// Makes a token for agents of a pool (creating the pool if it is new).
pub async fn create_agent_token(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<CreateAgentToken>,
) -> ApiResult<(StatusCode, Json<AgentTokenCreated>)> {
    let Some(link) = &state.link else {
        return Err(ApiFailure::bad_request(
            "this core does not listen for agents (start it with --quic)",
        ));
    };
    state.store.ensure_pool(&request.pool).await?;
    let (id, secret) = state.store.create_agent_token(&request.pool).await?;
    let token = AgentToken { id, secret, fingerprint: link.fingerprint.clone() };
    Ok((
        StatusCode::CREATED,
        Json(AgentTokenCreated {
            pool: request.pool,
            token: token.to_string(),
            quic_address: link.address.to_string(),
        }),
    ))
}
