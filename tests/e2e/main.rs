//! End-to-end tests: the real `baton` binary, run as a user would.

mod cli_flow;
mod layering;
