//! Test flow: its `describe` returns a parameter schema of 20 MiB, written
//! against the flow interface directly (the SDK would derive a small one).

use baton_sdk::bindings::baton::flow::types::{FlowError, FlowInfo};
use baton_sdk::bindings::exports::baton::flow::flow::Guest;

struct HostileDescribe;

impl Guest for HostileDescribe {
    fn describe() -> FlowInfo {
        let padding = "x".repeat(20 << 20);
        FlowInfo {
            name: "hostile-describe".into(),
            version: "0.1.0".into(),
            description: "a schema of 20 MiB".into(),
            parameters: format!(r#"{{"type": "object", "description": "{padding}"}}"#),
        }
    }

    fn run(_params: String) -> Result<String, FlowError> {
        Ok("null".into())
    }
}

baton_sdk::bindings::__export_flow_component!(HostileDescribe with_types_in baton_sdk::bindings);
