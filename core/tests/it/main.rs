//! The store and its rules against real databases: every test runs on a
//! fresh SQLite file and on a fresh PostgreSQL database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod api;
mod automations;
mod databases;
mod parameters;
mod scheduler;
mod store;
