//! The Baton core: the server that holds deployments, flow runs and their
//! states, schedules them and pushes them to agents.
//!
//! Not built yet: the store, REST API and run state machine arrive with
//! issue 3, the QUIC gateway and dispatcher with issue 4. Until then this
//! crate is empty on purpose, so that nothing pretends to work.
