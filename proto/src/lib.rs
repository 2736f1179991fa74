//! Wire types shared by every Baton process: what crosses a process boundary
//! (REST bodies, agent frames, run reports) lives here and nowhere else.
//!
//! Types are grouped by protocol version; `v1` is the current one. This crate
//! depends on serde only (plus `jsonschema` behind the `validate` feature) so
//! that it builds for `wasm32-unknown-unknown` and the web UI shares it.

pub mod v1;
