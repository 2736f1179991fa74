//! Test flow: its `describe` allocates memory until it is stopped, written
//! against the flow interface directly.

use baton_sdk::bindings::baton::flow::types::{FlowError, FlowInfo};
use baton_sdk::bindings::exports::baton::flow::flow::Guest;

struct HostileDescribeHog;

impl Guest for HostileDescribeHog {
    fn describe() -> FlowInfo {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1; 1 << 20]));
        }
    }

    fn run(_params: String) -> Result<String, FlowError> {
        Ok("null".into())
    }
}

baton_sdk::bindings::__export_flow_component!(HostileDescribeHog with_types_in baton_sdk::bindings);
