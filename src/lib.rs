//! quantum-watchdog: a systemd-native watchdog for Redis Streams consumer services.
//!
//! The decision lives in one pure module, [`policy`]: a [`model::Snapshot`] goes in, verdicts
//! and actions come out. The adapters do the I/O: [`systemd`] (D-Bus), [`streams`] (Redis),
//! [`notify`] (sd_notify), [`liveness`] (PID probes); [`collect`] gathers a snapshot from them
//! and [`agent`] wires everything into the daemon loop.

pub mod agent;
pub mod catalog;
pub mod collect;
pub mod config;
pub mod execute;
pub mod glob;
pub mod liveness;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod policy;
pub mod recover;
pub mod state;
pub mod status;
pub mod streams;
pub mod systemd;
pub mod template;
pub mod xinfo;
