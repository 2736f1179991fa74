//! The Baton agent: runs the flows it is given.
//!
//! Today that is the WebAssembly sandbox ([`sandbox`], the `baton-sandbox`
//! crate, kept separate because it is the only crate that links wasmtime and
//! is slow to build). The QUIC link to the core and the process, container
//! and Kubernetes infrastructure backends arrive with issue 4.

pub use baton_sandbox as sandbox;
