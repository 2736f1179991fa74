//! The Baton desktop app: a Tauri 2 window around the web UI that can start
//! an embedded core and agent.
//!
//! Not built yet (issue 6); empty on purpose.
