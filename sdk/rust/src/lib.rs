//! Write Baton flows in Rust.
//!
//! A flow is a function from a typed parameter struct to a typed output,
//! exported with [`flow!`] and built with `baton flow build` (plain
//! `cargo build --release --target wasm32-wasip2` underneath):
//!
//! ```no_run
//! use baton_sdk::prelude::*;
//!
//! /// Adds two integers.
//! #[derive(Deserialize, JsonSchema)]
//! struct Params {
//!     a: i64,
//!     b: i64,
//! }
//!
//! fn hello(params: Params) -> Result<i64> {
//!     info!("adding {} and {}", params.a, params.b);
//!     let sum = task("add").retries(2).run(|| Ok(params.a + params.b))?;
//!     Ok(sum)
//! }
//!
//! baton_sdk::flow!(hello, description = "Adds two integers");
//! ```
//!
//! The parameter schema is derived from `Params` (via `schemars`), so the
//! core refuses bad parameters before a run starts. Everything else a flow
//! can do (log, run tasks, read granted variables and secrets, emit events,
//! report progress, send HTTP requests with [`http`], run the native
//! programs its deployment grants with [`command`], leave reports with
//! [`markdown_artifact`] and friends, start runs of other deployments and
//! wait for them with [`run_deployment`]) goes through the host functions
//! wrapped here.

mod artifact;
pub mod command;
mod host;
pub mod http;
mod subflow;
mod task;

#[doc(hidden)]
pub mod bindings {
    //! Generated from `wit/flow.wit`.
    wit_bindgen::generate!({
        path: "../../wit",
        world: "flow-component",
        pub_export_macro: true,
        export_macro_name: "__export_flow_component",
        default_bindings_module: "baton_sdk::bindings",
    });
}

pub use anyhow::{Context, Error, Result, anyhow, bail, ensure};
pub use artifact::{
    ArtifactKind, create_artifact, link_artifact, markdown_artifact, progress_artifact,
    table_artifact,
};
pub use command::{Output, command};
pub use host::{AccessError, Level, emit_event, log, progress, scratch_dir, secret, variable};
pub use schemars::{self, JsonSchema};
pub use serde::{self, Deserialize, Serialize};
pub use serde_json::{self, json};
pub use subflow::{ChildRun, RunDeployment, run_deployment};
pub use task::{Task, task};

/// Everything a flow usually needs, in one `use`.
pub mod prelude {
    pub use crate::{
        Context, Deserialize, JsonSchema, Result, Serialize, anyhow, bail, debug, emit_event,
        ensure, error, info, json, progress, secret, task, trace, variable, warn,
    };
}

/// What [`flow!`] says about the flow; defaults come from the crate's
/// `Cargo.toml` (package name, version, description).
#[doc(hidden)]
pub struct FlowMeta {
    pub name: &'static str,
    pub version: &'static str,
    pub description: &'static str,
}

/// Exports a function `fn(Params) -> Result<Output>` as this component's flow.
///
/// `Params` must implement `Deserialize` and `JsonSchema`; `Output` must
/// implement `Serialize`. Name, version and description default to the
/// crate's; override any of them: `flow!(etl, name = "nightly-etl")`.
#[macro_export]
macro_rules! flow {
    ($run:path $(, $key:ident = $value:expr)* $(,)?) => {
        struct __BatonFlow;

        impl $crate::bindings::exports::baton::flow::flow::Guest for __BatonFlow {
            fn describe() -> $crate::bindings::baton::flow::types::FlowInfo {
                #[allow(unused_mut, reason = "fields are overridden only when given")]
                let mut meta = $crate::FlowMeta {
                    name: env!("CARGO_PKG_NAME"),
                    version: env!("CARGO_PKG_VERSION"),
                    description: env!("CARGO_PKG_DESCRIPTION"),
                };
                $( meta.$key = $value; )*
                $crate::__private::describe(&$run, meta)
            }

            fn run(
                params: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::baton::flow::types::FlowError,
            > {
                $crate::__private::run(&$run, &params)
            }
        }

        $crate::bindings::__export_flow_component!(__BatonFlow with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    //! What [`flow!`](crate::flow) expands to calls into here, so the macro
    //! stays small and the logic is type-checked once.

    use crate::FlowMeta;
    use crate::bindings::baton::flow::types::{FlowError, FlowInfo};

    pub fn describe<P, O, F>(_run: &F, meta: FlowMeta) -> FlowInfo
    where
        P: serde::de::DeserializeOwned + schemars::JsonSchema,
        F: Fn(P) -> anyhow::Result<O>,
    {
        let schema = schemars::schema_for!(P);
        FlowInfo {
            name: meta.name.to_owned(),
            version: meta.version.to_owned(),
            description: meta.description.to_owned(),
            parameters: serde_json::to_string(&schema).unwrap_or_else(|_| "{}".to_owned()),
        }
    }

    pub fn run<P, O, F>(run: &F, params: &str) -> Result<String, FlowError>
    where
        P: serde::de::DeserializeOwned,
        O: serde::Serialize,
        F: Fn(P) -> anyhow::Result<O>,
    {
        let params: P = serde_json::from_str(params).map_err(|e| FlowError {
            message: format!("invalid parameters: {e}"),
            details: None,
        })?;
        let output =
            run(params).map_err(|e| FlowError { message: format!("{e:#}"), details: None })?;
        serde_json::to_string(&output).map_err(|e| FlowError {
            message: format!("the flow's output cannot be written as JSON: {e}"),
            details: None,
        })
    }
}
