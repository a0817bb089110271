//! The adapters: I/O with the world, deciding nothing. systemd over D-Bus ([`systemd`]),
//! Redis ([`redis`]), PID probes ([`liveness`]), sd_notify ([`notify`]), the clock and the
//! host ([`clock`]), files the agent keeps ([`state_file`]), logging ([`logging`]) and the
//! heap ([`heap`]). Each call has a timeout; an unreachable side becomes an error in the
//! snapshot, never a reason to act.

pub mod cgroup;
pub mod clock;
pub mod heap;
pub mod journal_read;
pub mod liveness;
pub mod logging;
pub mod notify;
pub mod pause_store;
pub mod redis;
pub mod state_file;
pub mod systemd;
