//! Test flow: starts a run of `deployment` with `params` through
//! `baton_sdk::run_deployment` (waiting unless `wait` is false, at most
//! `timeout_ms`), and returns the child's id, state and output. With
//! `forward`, the child gets this run's own parameters (a flow that starts
//! itself, for the depth limit). A refused call fails the run with its
//! message.

use baton_sdk::prelude::*;

#[derive(Deserialize, JsonSchema, Serialize)]
struct Params {
    deployment: String,
    #[serde(default)]
    params: baton_sdk::serde_json::Map<String, baton_sdk::serde_json::Value>,
    #[serde(default = "yes")]
    wait: bool,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    forward: bool,
}

fn yes() -> bool {
    true
}

fn subflow(params: Params) -> Result<baton_sdk::serde_json::Value> {
    let child = match (params.forward, params.timeout_ms) {
        // The plain call, as most flows make it.
        (false, None) => {
            baton_sdk::run_deployment(&params.deployment, &params.params, params.wait)?
        }
        (forward, timeout_ms) => {
            let call = baton_sdk::RunDeployment::new(&params.deployment).wait(params.wait);
            let mut call =
                if forward { call.params(&params)? } else { call.params(&params.params)? };
            if let Some(ms) = timeout_ms {
                call = call.timeout(std::time::Duration::from_millis(ms));
            }
            call.run()?
        }
    };
    info!("subflow {} ended {}", child.id(), child.state());
    let output = match child.is_completed() {
        true => child.output::<baton_sdk::serde_json::Value>()?,
        false => baton_sdk::serde_json::Value::Null,
    };
    Ok(json!({
        "id": child.id(),
        "deployment": child.deployment(),
        "state": child.state(),
        "message": child.message(),
        "output": output,
    }))
}

baton_sdk::flow!(subflow);
