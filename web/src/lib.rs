//! The Baton web UI.
//!
//! Built for `wasm32-unknown-unknown` this crate is the app: a Yew single-page
//! app that talks to the core only through its REST API and event stream
//! (`cargo xtask ui` builds it into `web/dist` with wasm-bindgen). Built for
//! the host it is that bundle as bytes ([`asset`]), which the core serves at
//! `/`; the app's dependencies never reach the host build.

#[cfg(target_arch = "wasm32")]
mod app;

#[cfg(not(target_arch = "wasm32"))]
mod bundle;
#[cfg(not(target_arch = "wasm32"))]
pub use bundle::{Asset, asset, index};
