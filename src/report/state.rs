//! What the agent reports about itself to `status`: its state file's content (`state.json` in
//! its runtime directory) — what it remembers across cycles and restarts (restart budgets,
//! earlier MainPIDs), the last action per unit, and its totals.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Mode;
use crate::model::Clock;
use crate::policy::Memory;

/// The state file's format. Version 3 keeps the memory's times on the monotonic clock;
/// a file of version 2 (realtime µs) is carried over, one of any other version is ignored.
pub const STATE_VERSION: u32 = 3;

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
    /// The same moment on the monotonic clock of its boot (0 in a version-2 file).
    #[serde(default)]
    pub updated_mono_usec: u64,
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
    /// Its instance in the fleet's heartbeats (`[fleet]`).
    #[serde(default)]
    pub fleet_instance: String,
}

impl AgentState {
    /// The state as valid in the boot `boot_id` at `clock`: one written in another boot keeps
    /// its restart history, carried onto this boot's monotonic clock by the wall clock, but
    /// forgets every PID; a version-2 file's realtime µs are carried over the same way. `None`
    /// for a file of another version.
    pub fn for_boot(mut self, boot_id: &str, clock: Clock) -> Option<AgentState> {
        if self.version != STATE_VERSION && self.version != 2 {
            return None;
        }
        // The kernel spells a boot ID with dashes, systemd's `%b` without.
        let bare = |s: &str| s.replace('-', "").to_ascii_lowercase();
        let same_boot = bare(&self.boot_id) == bare(boot_id);
        if self.version != STATE_VERSION || !same_boot {
            // Its times were `then` µs ahead of its boot's monotonic clock (a version-2 file's
            // were realtime: 0); this boot's wall clock is `now` µs ahead of its own.
            let then = match self.version {
                2 => 0,
                _ => i128::from(self.updated_usec) - i128::from(self.updated_mono_usec),
            };
            let now = i128::from(clock.now_usec) - i128::from(clock.mono_usec);
            self.memory.rebase(then - now, clock.mono_usec);
            self.updated_mono_usec = clock.mono_of(self.updated_usec);
            self.version = STATE_VERSION;
        }
        if !same_boot {
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    fn state(version: u32, boot: &str, updated: u64, updated_mono: u64, t: u64) -> AgentState {
        let mut memory = Memory::default();
        memory.note_restart("u.service", t);
        memory.unit_mut("u.service").main_pid = 42;
        AgentState {
            version,
            boot_id: boot.into(),
            pid: 1,
            unit: None,
            mode: Mode::Observe,
            updated_usec: updated,
            updated_mono_usec: updated_mono,
            interval_ms: 5000,
            cycles: 1,
            last_cycle_ms: 1.0,
            memory,
            last_actions: BTreeMap::new(),
            totals: Totals::default(),
            fleet_instance: String::new(),
        }
    }

    fn restart_at(s: &AgentState) -> (u64, u32) {
        let m = &s.memory.units["u.service"];
        (m.last_restart_usec, m.main_pid)
    }

    /// The memory's times arrive on this boot's monotonic clock: as they are in the same boot,
    /// carried by the wall clock from another boot or from a version-2 (realtime) file, never
    /// ahead of now; PIDs are forgotten only across a reboot.
    #[test]
    fn times_are_carried_onto_this_boots_monotonic_clock() {
        let wall = 1_800_000_000 * S;
        let now = Clock {
            now_usec: wall,
            mono_usec: 7200 * S,
            utc_offset_secs: 0,
        };
        // Same boot, version 3: untouched.
        let s = state(3, "b", wall - 10 * S, 7190 * S, 7000 * S)
            .for_boot("b", now)
            .unwrap();
        assert_eq!(restart_at(&s), (7000 * S, 42));
        // Version 2, same boot: a restart 60 s ago on the wall clock is 60 s ago now.
        let s = state(2, "b", wall - 10 * S, 0, wall - 60 * S)
            .for_boot("b", now)
            .unwrap();
        assert_eq!(restart_at(&s), (7140 * S, 42));
        assert_eq!(s.version, STATE_VERSION);
        assert_eq!(s.updated_mono_usec, 7190 * S);
        // Another boot: a restart 30 min before the file was written, which was 1 h ago.
        let s = state(3, "a", wall - 3600 * S, 2000 * S, 200 * S)
            .for_boot("b", now)
            .unwrap();
        assert_eq!(restart_at(&s), ((7200 - 5400) * S, 0));
        // A time before this boot began is kept as its first microsecond; none lies ahead.
        let s = state(3, "a", wall - 60 * S, 9000 * S, 10 * S)
            .for_boot(
                "b",
                Clock {
                    mono_usec: 30 * S,
                    ..now
                },
            )
            .unwrap();
        assert_eq!(restart_at(&s).0, 1);
        let s = state(3, "a", wall + 3600 * S, 10 * S, 10 * S)
            .for_boot("b", now)
            .unwrap();
        assert_eq!(restart_at(&s).0, 7200 * S, "a file from the future");
        assert!(state(1, "b", wall, 0, 1).for_boot("b", now).is_none());
    }

    /// The agent reads systemd's `%b` (no dashes); `status` as root reads the kernel's file
    /// (dashes): one boot either way, so the earlier MainPIDs are kept.
    #[test]
    fn a_boot_id_is_the_same_in_either_spelling() {
        let now = Clock {
            now_usec: 1_800_000_000 * S,
            mono_usec: 7200 * S,
            utc_offset_secs: 0,
        };
        let dashed = "6b1f39f2-0c57-4b8e-9c2e-1d1c0e5b7a3d";
        let bare = "6B1F39F20C574B8E9C2E1D1C0E5B7A3D";
        let kept = state(3, bare, now.now_usec - 10 * S, 7190 * S, 7000 * S)
            .for_boot(dashed, now)
            .unwrap();
        assert_eq!(restart_at(&kept).1, 42, "same boot: the MainPID is kept");
        let other = state(3, bare, now.now_usec - 10 * S, 7190 * S, 7000 * S)
            .for_boot("00000000-0000-0000-0000-000000000000", now)
            .unwrap();
        assert_eq!(restart_at(&other).1, 0, "another boot forgets it");
    }
}
