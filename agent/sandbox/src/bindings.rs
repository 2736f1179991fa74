//! Host bindings generated from `wit/flow.wit`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "flow-component",
    exports: { default: async },
});

pub use baton::flow::host::{AccessError, TaskSpec, TaskStart};
pub use baton::flow::types::{FlowError, FlowInfo, Level};
