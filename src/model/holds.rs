//! What holds the agent's hand: operators' pauses (`quantum-watchdog pause`), maintenance
//! windows open now, and restart budgets reset by hand. Plain data; the policy reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A pause an operator set. Units under it are judged and shown; nothing is done to them or
/// their consumers until it is resumed or expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// The unit, or `None` for every unit (`pause --all`).
    pub unit: Option<String>,
    /// Who paused it (the user name of the file's owner).
    pub by: String,
    /// Why, as they said.
    pub reason: String,
    /// When (realtime µs).
    pub since_usec: u64,
    /// Until when (realtime µs); `None`: until resumed.
    pub until_usec: Option<u64>,
}

impl Pause {
    /// It covers `unit` at `now_usec`.
    pub fn covers(&self, unit: &str, now_usec: u64) -> bool {
        self.unit.as_deref().is_none_or(|u| u == unit)
            && self.until_usec.is_none_or(|t| now_usec < t)
    }
}

/// A maintenance window open at the look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWindow {
    /// Its `name`.
    pub name: String,
    /// The unit patterns it applies to.
    pub units: Vec<String>,
    /// When it closes (realtime µs).
    pub until_usec: u64,
}

/// Everything that holds actions back this cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Holds {
    /// Pauses (expired ones too: the policy compares with the clock).
    pub pauses: Vec<Pause>,
    /// Windows open now.
    pub windows: Vec<OpenWindow>,
    /// Per unit: restarts up to this time (realtime µs) no longer count against its budget.
    pub budget_resets: BTreeMap<String, u64>,
    /// Notes that could not be read or were refused (a foreign owner), for the log and status.
    pub errors: Vec<String>,
}
