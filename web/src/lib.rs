//! The Baton web UI: a Yew app (wasm32) that the core serves at `/`.
//!
//! Not built yet (issue 6); empty on purpose.
