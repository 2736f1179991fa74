//! End-to-end tests: the real `baton` binary, run as a user would.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod agents;
mod api_fuzz;
mod automations;
mod cli_flow;
mod cli_golden;
mod commands;
mod core;
mod deploy;
mod events;
mod faults;
mod hostile_flows;
mod hostile_link;
mod http;
mod infrastructure;
mod layering;
mod newcomer;
mod python;
mod run_logs;
mod schedules;
mod subflows;
mod task_cache;
mod team;
mod ui;
mod ui_automations;
mod ui_pages;
