//! Test flow: a component of the first contract, `baton:flow@0.1.0`, built
//! from a frozen copy of its WIT (`wit/flow.wit` here, never edited), so
//! that a host of a later `0.1.x` is tested against what users already
//! deployed. It logs, runs a task and echoes its parameters.

#![allow(unsafe_code, reason = "the exports wit-bindgen generates")]

wit_bindgen::generate!({ path: "wit", world: "flow-component" });

use baton::flow::host::{self, TaskSpec, TaskStart};
use baton::flow::types::{FlowError, FlowInfo, Level};

struct Contract;

impl exports::baton::flow::flow::Guest for Contract {
    fn describe() -> FlowInfo {
        FlowInfo {
            name: "contract-0-1-0".into(),
            version: "0.1.0".into(),
            description: "A flow of the first contract".into(),
            parameters: r#"{"type": "object"}"#.into(),
        }
    }

    fn run(params: String) -> Result<String, FlowError> {
        host::log(Level::Info, "a 0.1.0 flow runs");
        let spec = TaskSpec { name: "echo".into(), attempt: 1, max_attempts: 1, cache_key: None };
        if let TaskStart::Run(id) = host::start_task(&spec) {
            host::finish_task(id, Ok(&params));
        }
        Ok(format!(r#"{{"contract": "0.1.0", "params": {params}}}"#))
    }
}

export!(Contract);
