//! The `baton:flow/subflows` interface: a flow starting runs of other
//! deployments and waiting for them. The sandbox only numbers the calls
//! and shapes the answers; the embedder's [`Subflows`] asks the core.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use baton_proto::v1::limits::{MAX_PARAMETERS_BYTES, over_limit};
use baton_proto::v1::{ChildOp, ChildRun, ChildStart, LogLevel};

use crate::bindings::{self, FlowChildRun};
use crate::host::FlowHost;

/// What a [`Subflows`] answers with.
pub type ChildAnswerFuture = Pin<Box<dyn Future<Output = Result<ChildRun, String>> + Send>>;

/// The embedder's way to the core for a run's children: the agent asks
/// over its link, a runner through its agent. Answers are the core's
/// (created, ended, refused and why); an error reaching the core is
/// retried by the implementation for as long as the run lasts.
pub trait Subflows: Send + Sync {
    fn ask(&self, op: ChildOp) -> ChildAnswerFuture;
}

/// Refuses every call, saying why (no core to ask: a local run).
#[derive(Debug, Clone)]
pub struct NoSubflows(pub String);

impl Default for NoSubflows {
    fn default() -> Self {
        Self("subflows need a core to start runs on: deploy this flow and run it there".to_owned())
    }
}

impl Subflows for NoSubflows {
    fn ask(&self, _op: ChildOp) -> ChildAnswerFuture {
        let why = self.0.clone();
        Box::pin(async move { Err(why) })
    }
}

impl bindings::baton::flow::subflows::Host for FlowHost {
    async fn run_deployment(
        &mut self,
        deployment: String,
        params: String,
        wait: bool,
        timeout_ms: Option<u64>,
    ) -> Result<FlowChildRun, String> {
        // The limit of any run's parameters, checked before parsing.
        if params.len() > MAX_PARAMETERS_BYTES {
            return Err(over_limit("a subflow's parameters", params.len(), MAX_PARAMETERS_BYTES));
        }
        let parameters = match serde_json::from_str(&params) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(_) => return Err("a subflow's parameters must be a JSON object".to_owned()),
            Err(e) => return Err(format!("a subflow's parameters are not JSON: {e}")),
        };
        let call = self.next_child_call();
        let subflows = self.subflows();
        let start = ChildStart { call, deployment: deployment.clone(), parameters, wait };
        let log = Arc::clone(self.log());
        let child = subflows.ask(ChildOp::Start(start)).await.inspect_err(|why| {
            log.log(LogLevel::Warn, &format!("subflow of {deployment} refused: {why}"));
        })?;
        log.log(LogLevel::Info, &format!("started subflow {} of {}", child.id, child.deployment));
        let child = if wait && !child.state.is_terminal() {
            subflows.ask(ChildOp::Wait { child_id: child.id.clone(), timeout_ms }).await?
        } else {
            child
        };
        Ok(FlowChildRun {
            id: child.id,
            deployment: child.deployment,
            state: child.state.as_str().to_owned(),
            message: child.state_message,
            output: child.output.map(|output| output.to_string()),
        })
    }
}
