//! Version 1 of Baton's wire types.

mod flow;
#[cfg(feature = "validate")]
mod params;
mod run;

pub use flow::FlowInfo;
#[cfg(feature = "validate")]
pub use params::{ParamError, ParamErrors, validate_params};
pub use run::{LogLevel, ReportBody, RunOutcome, RunReport, TaskOutcome, Timestamp};
