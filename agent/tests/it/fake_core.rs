//! A tiny core for the agent to talk to: a real quinn server on loopback
//! with a CA and a server certificate made for the test, speaking the link
//! protocol one message at a time as each test dictates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use baton_agent::AgentConfig;
use baton_proto::v1::link::io::{read_frame, write_frame};
use baton_proto::v1::link::{
    ALPN, AgentEvent, AgentEventBody, AgentMessage, AgentToken, Assignment, CoreMessage, Fetch,
    FetchAnswer, Hello, MAX_FRAME_BYTES, SERVER_NAME,
};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Connection, Endpoint, RecvStream, SendStream};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest as _, Sha256};

/// How long a test waits for anything the agent should do.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct FakeCore {
    pub endpoint: Endpoint,
    pub address: SocketAddr,
    /// Of its CA certificate, as a token carries it.
    pub fingerprint: String,
}

impl FakeCore {
    /// A core on `127.0.0.1:0` presenting [server certificate, CA].
    pub fn start() -> Self {
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Baton test CA");
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server_params = CertificateParams::new(vec![SERVER_NAME.to_owned()]).unwrap();
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        let chain: Vec<CertificateDer<'static>> =
            vec![server_cert.der().clone(), ca_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let config =
            quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).unwrap()));
        let endpoint = Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let address = endpoint.local_addr().unwrap();
        let fingerprint = hex::encode(Sha256::digest(ca_cert.der()));
        Self { endpoint, address, fingerprint }
    }

    /// A token that trusts this core.
    pub fn token(&self) -> AgentToken {
        AgentToken {
            id: "a".repeat(32),
            secret: "b".repeat(64),
            fingerprint: self.fingerprint.clone(),
        }
    }

    /// An agent configuration for this core.
    pub fn agent_config(&self, token: AgentToken, data_dir: &Path, slots: u32) -> AgentConfig {
        AgentConfig {
            cores: self.address.into(),
            token,
            pool: "default".to_owned(),
            queues: vec!["fast".to_owned()],
            slots,
            data_dir: data_dir.to_owned(),
            cache_max_bytes: baton_agent::DEFAULT_CACHE_MAX_BYTES,
            name: "test-agent".to_owned(),
            backends: baton_agent::BackendConfig::default(),
            metrics: None,
            otlp_endpoint: None,
        }
    }

    /// Accepts the next agent connection and reads its `Hello`.
    pub async fn accept(&self) -> Session {
        tokio::time::timeout(PATIENCE, async {
            let incoming = self.endpoint.accept().await.expect("the endpoint is open");
            let connection = incoming.await.unwrap();
            let (send, mut recv) = connection.accept_bi().await.unwrap();
            let hello: Hello = read_frame(&mut recv, MAX_FRAME_BYTES).await.unwrap().unwrap();
            Session { connection, send, recv, hello }
        })
        .await
        .expect("no agent connected")
    }

    /// Accepts the next agent and welcomes it.
    pub async fn accept_and_welcome(&self, acked_seq: u64) -> Session {
        let mut session = self.accept().await;
        session.send(&CoreMessage::Welcome { acked_seq, heartbeat_ms: 200, lease_ms: 0 }).await;
        session
    }
}

/// One agent connection, seen from the core.
pub struct Session {
    pub connection: Connection,
    send: SendStream,
    recv: RecvStream,
    pub hello: Hello,
}

impl Session {
    pub async fn send(&mut self, message: &CoreMessage) {
        write_frame(&mut self.send, message).await.unwrap();
    }

    /// The agent's next message.
    pub async fn next_message(&mut self) -> AgentMessage {
        tokio::time::timeout(PATIENCE, read_frame(&mut self.recv, MAX_FRAME_BYTES))
            .await
            .expect("the agent said nothing")
            .unwrap()
            .expect("the agent closed the control stream")
    }

    /// The agent's next event, skipping heartbeats.
    pub async fn next_event(&mut self) -> AgentEvent {
        loop {
            if let AgentMessage::Event(event) = self.next_message().await {
                return event;
            }
        }
    }

    /// Events up to and including `run_id`'s `Finished`.
    pub async fn events_until_finished(&mut self, run_id: &str) -> Vec<AgentEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.next_event().await;
            let finished =
                event.run_id == run_id && matches!(event.body, AgentEventBody::Finished { .. });
            events.push(event);
            if finished {
                return events;
            }
        }
    }

    /// Answers the agent's fetches from `components` (digest to bytes)
    /// until the connection closes.
    pub fn serve_fetches(&self, components: BTreeMap<String, Vec<u8>>) {
        let connection = self.connection.clone();
        tokio::spawn(async move {
            while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                let fetch: Fetch = read_frame(&mut recv, MAX_FRAME_BYTES).await.unwrap().unwrap();
                match components.get(&fetch.digest) {
                    Some(bytes) => {
                        let size = bytes.len() as u64;
                        write_frame(&mut send, &FetchAnswer::Found { size }).await.unwrap();
                        send.write_all(bytes).await.unwrap();
                    }
                    None => {
                        let reason = format!("no artifact {}", fetch.digest);
                        write_frame(&mut send, &FetchAnswer::Missing { reason }).await.unwrap();
                    }
                }
                send.finish().unwrap();
            }
        });
    }
}

/// The `sha256:` digest of `bytes`, as assignments name artifacts.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An assignment of the component `artifact` with these parameters.
pub fn assignment(run_id: &str, artifact: &str, parameters: serde_json::Value) -> CoreMessage {
    let serde_json::Value::Object(parameters) = parameters else { panic!("parameters") };
    CoreMessage::Assign(Box::new(Assignment {
        run_id: run_id.to_owned(),
        attempt: 1,
        flow: "test".to_owned(),
        deployment: "test/default".to_owned(),
        artifact: artifact.to_owned(),
        parameters,
        memory_bytes: None,
        timeout_ms: None,
        variables: BTreeMap::new(),
        secrets: BTreeMap::new(),
        outgoing_hosts: Vec::new(),
        commands: Vec::new(),
        execution_key: None,
        pool_kind: baton_proto::v1::PoolKind::Wasm,
        job_variables: serde_json::Map::new(),
    }))
}
