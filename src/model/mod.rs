//! The vocabulary every layer shares: what systemd and Redis said in one cycle (the
//! [`snapshot`]), what the policy asks to read ([`plan`]), consumer name templates
//! ([`consumer_name`]) and unit name patterns ([`unit_pattern`]). Plain data and pure
//! functions; it imports nothing of the crate.

pub mod calendar;
pub mod consumer_name;
pub mod exec_protocol;
pub mod fleet;
pub mod hash;
pub mod history;
pub mod holds;
pub mod plan;
pub mod snapshot;
pub mod time;
pub mod unit_pattern;

pub use snapshot::*;
pub use time::{Clock, civil_date, fmt_ms, render_key};
