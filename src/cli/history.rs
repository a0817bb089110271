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
    let events = journal_read::unit_events(&unit, user, since, timeout)
        .await
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    let tz = jiff::tz::TimeZone::system();
    out(&history::render(&unit, since, &events, &tz))?;
    Ok(0)
}
