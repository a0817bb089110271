//! What the agent shows: `status` ([`status`], built from a snapshot and rendered purely),
//! Prometheus metrics ([`metrics`]), the journal ([`journal`]), the STATUS= line
//! ([`status_line`]) and its state file's content ([`state`]).

pub mod history;
pub mod journal;
pub mod metrics;
pub mod printable;
pub mod state;
pub mod status;
pub mod status_line;
pub mod terminal;
