//! `quantum-watchdog history UNIT`: what the journal holds about one unit, as a story.

use std::time::Duration;

use quantum_watchdog::adapters::journal_read;
use quantum_watchdog::config::Config;
use quantum_watchdog::report::history;

use super::{Failure, out};

/// Prints the unit's story; exit 0, or 1 if the journal could not be read.
pub async fn run(cfg: &Config, user: bool, unit: &str, since: &str) -> Result<u8, Failure> {
    let unit = super::pause::unit_name(unit)?;
    let timeout = Duration::from_secs(30).max(cfg.dbus_timeout.0);
    // Entries are ours if this very program wrote them (journald's _EXE).
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/usr/bin/quantum-watchdog".into());
    // journald records the resolved path (`/usr/libexec/…`, not `/usr/bin/../libexec/…`).
    let wrapper = super::exec_wrapper::program()
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.display().to_string());
    let events = journal_read::unit_events(&unit, &exe, wrapper.as_deref(), user, since, timeout)
        .await
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    let tz = jiff::tz::TimeZone::system();
    out(&history::render(&unit, since, &events, &tz))?;
    Ok(0)
}
