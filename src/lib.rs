//! quantum-watchdog: a systemd-native watchdog for Redis Streams consumer services.
//!
//! The layers, top to bottom; each uses only those below it:
//!
//! - `cli` (in the binary): one file per command, parsing and exit codes;
//! - [`daemon`]: the agent's loop — [`daemon::gather`] one snapshot from the adapters,
//!   decide, [`daemon::act`] on the actions — and the one-shot [`daemon::sweep`];
//! - [`report`]: what the agent shows — `status`, metrics, the journal, the STATUS= line;
//! - [`adapters`]: I/O with systemd, Redis, processes, sd_notify, the clock and files;
//!   they decide nothing;
//! - [`policy`]: the pure decisions — what to read, and from what was read, verdicts and
//!   actions; no I/O, no clock;
//! - [`config`]: the configuration, from TOML fragments to a typed [`config::Config`];
//! - [`model`]: the vocabulary they share — the snapshot, the fetch plan, consumer name
//!   templates, unit name patterns.
//!
//! `docs/architecture.md` walks through one cycle and one restart across the files.

#![warn(missing_docs)]

pub mod adapters;
pub mod config;
pub mod daemon;
pub mod model;
pub mod policy;
pub mod report;
