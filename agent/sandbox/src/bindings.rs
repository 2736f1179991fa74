//! Host bindings generated from `wit/flow.wit`.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "flow-component",
    exports: { default: async },
    // An event over its size limit stops the flow (see `host::LimitExceeded`).
    imports: {
        "baton:flow/host.emit-event": trappable,
        // A command runs for as long as it runs, without blocking a thread.
        "baton:flow/commands.run": async,
        // A parent waits for its child without blocking a thread.
        "baton:flow/subflows.run-deployment": async,
        // The task cache may be the core's, over the network.
        "baton:flow/host.start-task": async,
        "baton:flow/task-cache.start-uncached": async,
        "baton:flow/host.finish-task": async,
    },
});

pub use baton::flow::artifacts::ArtifactKind;
pub use baton::flow::commands::{Command, CommandError, CommandOutput};
pub use baton::flow::host::{AccessError, TaskSpec, TaskStart};
pub use baton::flow::subflows::ChildRun as FlowChildRun;
pub use baton::flow::types::{FlowError, FlowInfo, Level};
