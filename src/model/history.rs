//! A unit's story as the journal kept it: what the agent saw and did about it, and what
//! systemd did to it. `quantum-watchdog history UNIT` reads it.

/// Who wrote a journal entry about the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// The agent (`quantum-watchdog.service`).
    Agent,
    /// A recovery sweep (`quantum-watchdog recover`, the timer's oneshot or a drop-in).
    Recover,
    /// The wrapper of `quantum-watchdog exec` in the unit itself.
    Exec,
    /// systemd itself (PID 1 or the user manager): starts, stops, failures.
    Systemd,
}

/// One journal entry about the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Realtime µs.
    pub usec: u64,
    /// Who wrote it.
    pub writer: Writer,
    /// The agent's ACTION= (verdict, restart, claim, delete, …), if any.
    pub action: Option<String>,
    /// MESSAGE=.
    pub message: String,
}
