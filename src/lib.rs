//! quantum-watchdog: a systemd-native watchdog for Redis Streams consumer services.
//!
//! The decision lives in one pure module, [`policy`]; the adapters ([`systemd`],
//! [`streams`], [`notify`], [`liveness`]) do the I/O; [`agent`] wires them into the daemon loop.

pub mod config;
pub mod glob;
pub mod model;
pub mod policy;
pub mod template;
