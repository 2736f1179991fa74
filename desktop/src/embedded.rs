//! The core and agent this app runs itself when no remote core is chosen:
//! SQLite in the data directory, loopback ports, one agent of pool
//! `default`, and the example flows deployed on the first start.

use std::path::Path;

use anyhow::Context as _;
use baton_agent::{Agent, AgentConfig};
use baton_core::server::{Server, ServerConfig};
use baton_proto::v1::link::AgentToken;
use baton_proto::v1::{AgentTokenCreated, Artifact, CreateAgentToken, DeploymentSpec};
use serde_json::json;

mod flows {
    include!(concat!(env!("OUT_DIR"), "/flows.rs"));
}

/// A running embedded system; dropping it leaves both to end with the
/// process.
pub struct EmbeddedSystem {
    pub url: String,
    _server: Server,
    _agent: Agent,
}

pub async fn start(data: &Path) -> anyhow::Result<EmbeddedSystem> {
    let loopback = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut config = ServerConfig::new(data.join("core"), loopback(0));
    config.quic = Some(loopback(0));
    let server = Server::start(config).await.context("starting the embedded core")?;
    let url = format!("http://{}", server.address);
    let api = Api { http: reqwest::Client::new(), url: url.clone() };

    let created: AgentTokenCreated = api
        .send(
            reqwest::Method::POST,
            "/api/agent-tokens",
            json!(CreateAgentToken { pool: "default".into() }),
        )
        .await?;
    let token: AgentToken = created.token.parse().map_err(anyhow::Error::msg)?;
    let agent = Agent::start(AgentConfig {
        cores: created
            .quic_address
            .parse::<std::net::SocketAddr>()
            .context("the embedded core's QUIC address")?
            .into(),
        token,
        pool: "default".into(),
        queues: Vec::new(),
        slots: 4,
        data_dir: data.join("agent"),
        cache_max_bytes: baton_agent::DEFAULT_CACHE_MAX_BYTES,
        name: "desktop".into(),
        backends: baton_agent::BackendConfig::default(),
        metrics: None,
        otlp_endpoint: None,
    })
    .await
    .context("starting the embedded agent")?;
    if let Err(error) = deploy_examples(&api).await {
        // The system works without them; say why they are missing.
        tracing::warn!("deploying the example flows failed: {error:#}");
    }
    Ok(EmbeddedSystem { url, _server: server, _agent: agent })
}

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<T> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("calling the embedded core: {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "{path}: {status}: {text}");
        serde_json::from_str(&text).with_context(|| format!("{path}: the answer does not read"))
    }

    async fn exists(&self, path: &str) -> anyhow::Result<bool> {
        let response = self.http.get(format!("{}{path}", self.url)).send().await?;
        Ok(response.status().is_success())
    }
}

/// The examples of `examples/*.baton.yaml`, deployed once: a deployment the
/// user changed or deleted is left as it is on later starts.
async fn deploy_examples(api: &Api) -> anyhow::Result<()> {
    let marker = "/api/variables/desktop.examples-deployed";
    if api.exists(marker).await? {
        return Ok(());
    }
    for (flow, bytes) in flows::FLOWS {
        let response =
            api.http.post(format!("{}/api/artifacts", api.url)).body(bytes.to_vec()).send().await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "uploading {flow}: {status}: {text}");
        let artifact: Artifact = serde_json::from_str(&text)?;
        let (name, spec) = example(flow, artifact.digest)?;
        let _: serde_json::Value = api
            .send(reqwest::Method::PUT, &format!("/api/deployments/{flow}/{name}"), json!(spec))
            .await?;
        tracing::info!("deployed the example {flow}/{name}");
    }
    let _: serde_json::Value =
        api.send(reqwest::Method::PUT, marker, json!({"value": "yes"})).await?;
    Ok(())
}

/// The deployment `examples/FLOW.baton.yaml` describes.
fn example(flow: &str, artifact: String) -> anyhow::Result<(&'static str, DeploymentSpec)> {
    let (name, spec) = match flow {
        "hello" => (
            "default",
            json!({
                "description": "Adds two integers; `a` defaults to 1",
                "tags": ["example"],
                "parameters": {"a": 1},
            }),
        ),
        _ => (
            "nightly",
            json!({
                "description": "Extracts, transforms and loads readings, every night at 02:00 UTC",
                "tags": ["example", "etl"],
                "parameters": {"count": 6},
                "schedules": [{"cron": "0 2 * * *", "timezone": "UTC"}],
                "concurrency_limit": 1,
                "retries": 1,
                "retry_delay_seconds": 10,
            }),
        ),
    };
    let mut spec: DeploymentSpec = serde_json::from_value(spec)?;
    spec.artifact = artifact;
    Ok((name, spec))
}
