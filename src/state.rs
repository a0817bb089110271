//! The agent's state file (`state.json` in its runtime directory): what it remembers across
//! cycles and restarts (restart budget, earlier MainPIDs), and the last action per unit, for
//! `quantum-watchdog status`. Written atomically each cycle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, Mode};
use crate::execute::Totals;
use crate::policy::Memory;

/// The state file's format; a file of another version is ignored.
pub const STATE_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAction {
    pub action: String,
    pub outcome: String,
    pub at_usec: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentState {
    pub version: u32,
    /// The boot the state was written in (`/proc/sys/kernel/random/boot_id`): after a reboot
    /// the PIDs it remembers name other processes.
    #[serde(default)]
    pub boot_id: String,
    pub pid: u32,
    /// The agent's own unit (never judged, by the agent or by `status`).
    pub unit: Option<String>,
    pub mode: Mode,
    pub updated_usec: u64,
    pub interval_ms: u64,
    pub cycles: u64,
    pub last_cycle_ms: f64,
    pub memory: Memory,
    /// Per unit (or `stream group` for consumer actions without a unit), the last action of
    /// each kind (`restart`, `handoff`, `park`, `requeue`, `delete`).
    pub last_actions: BTreeMap<String, BTreeMap<String, LastAction>>,
    pub totals: Totals,
}

pub fn state_dir(cfg: &Config, user: bool) -> PathBuf {
    if let Some(d) = &cfg.state_dir {
        return d.clone();
    }
    if let Some(d) = std::env::var_os("RUNTIME_DIRECTORY") {
        // systemd may pass several, colon-separated; ours is the first.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        return PathBuf::from(first);
    }
    if user && let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        return Path::new(&x).join("quantum-watchdog");
    }
    PathBuf::from("/run/quantum-watchdog")
}

/// Where the agent serves metrics: `metrics.listen`, except that the built-in default follows
/// the state directory (so `--user` agents each get their own socket).
pub fn metrics_listen(cfg: &Config, user: bool) -> String {
    let default = crate::config::MetricsConfig::default().listen;
    if cfg.metrics.listen == default {
        format!(
            "unix:{}",
            state_dir(cfg, user).join("metrics.sock").display()
        )
    } else {
        cfg.metrics.listen.clone()
    }
}

pub fn state_file(cfg: &Config, user: bool) -> PathBuf {
    state_dir(cfg, user).join("state.json")
}

/// This boot's ID, or empty if the kernel does not say.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Reads the state file. State written in an earlier boot keeps its restart history but
/// forgets every PID.
pub fn load(path: &Path) -> Option<AgentState> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut st = serde_json::from_str::<AgentState>(&text)
        .ok()
        .filter(|s| s.version == STATE_VERSION)?;
    let now = boot_id();
    if st.boot_id != now {
        st.memory.forget_pids();
        st.boot_id = now;
    }
    Some(st)
}

pub fn save(path: &Path, st: &AgentState) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(st).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

/// The most recent of a unit's last actions.
pub fn latest(actions: &BTreeMap<String, LastAction>) -> Option<&LastAction> {
    actions.values().max_by_key(|a| a.at_usec)
}
