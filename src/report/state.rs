//! What the agent reports about itself to `status`: its state file's content (`state.json` in
//! its runtime directory) — what it remembers across cycles and restarts (restart budgets,
//! earlier MainPIDs), the last action per unit, and its totals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Mode;
use crate::policy::Memory;

/// The state file's format; a file of another version is ignored.
pub const STATE_VERSION: u32 = 2;

/// Counts of what the agent did, for the status line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Entries claimed (handoff, park).
    pub claimed: u64,
    /// Entries requeued.
    pub requeued: u64,
    /// Consumers deleted.
    pub deleted: u64,
    /// Entries moved to a dead-letter stream.
    #[serde(default)]
    pub dead_lettered: u64,
    /// Restarts issued.
    pub restarts: u64,
    /// Actions that failed.
    pub errors: u64,
}

/// One action the agent took, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAction {
    /// Its kind (`restart`, `handoff`, …).
    pub action: String,
    /// How it ended, one phrase.
    pub outcome: String,
    /// When (realtime µs).
    pub at_usec: u64,
}

/// The state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The boot the state was written in (`/proc/sys/kernel/random/boot_id`): after a reboot
    /// the PIDs it remembers name other processes.
    #[serde(default)]
    pub boot_id: String,
    /// The agent's PID.
    pub pid: u32,
    /// The agent's own unit (never judged, by the agent or by `status`).
    pub unit: Option<String>,
    /// Its mode.
    pub mode: Mode,
    /// When it was written (realtime µs).
    pub updated_usec: u64,
    /// The agent's interval.
    pub interval_ms: u64,
    /// Cycles completed.
    pub cycles: u64,
    /// The last cycle's duration.
    pub last_cycle_ms: f64,
    /// The policy's memory.
    pub memory: Memory,
    /// Per unit (or `stream group` for consumer actions without a unit), the last action of
    /// each kind (`restart`, `handoff`, `park`, `requeue`, `delete`).
    pub last_actions: BTreeMap<String, BTreeMap<String, LastAction>>,
    /// Its totals.
    pub totals: Totals,
}

impl AgentState {
    /// The state as valid in the boot `boot_id`: one written in another boot keeps its
    /// restart history but forgets every PID. `None` for a file of another version.
    pub fn for_boot(mut self, boot_id: &str) -> Option<AgentState> {
        if self.version != STATE_VERSION {
            return None;
        }
        if self.boot_id != boot_id {
            self.memory.forget_pids();
            self.boot_id = boot_id.to_string();
        }
        Some(self)
    }
}

/// The most recent of a unit's last actions.
pub fn latest(actions: &BTreeMap<String, LastAction>) -> Option<&LastAction> {
    actions.values().max_by_key(|a| a.at_usec)
}
