//! Test flow: its `describe` never returns, written against the flow
//! interface directly (the SDK's `describe` cannot loop).

use baton_sdk::bindings::baton::flow::types::{FlowError, FlowInfo};
use baton_sdk::bindings::exports::baton::flow::flow::Guest;

struct HostileDescribeLoop;

impl Guest for HostileDescribeLoop {
    fn describe() -> FlowInfo {
        let mut spins: u64 = 0;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }

    fn run(_params: String) -> Result<String, FlowError> {
        Ok("null".into())
    }
}

baton_sdk::bindings::__export_flow_component!(HostileDescribeLoop with_types_in baton_sdk::bindings);
