//! Logs go to journald when systemd connected our stdout/stderr to it (`JOURNAL_STREAM`),
//! with structured fields (`UNIT=`, `STREAM=`, `GROUP=`, `CONSUMER=`, `ACTION=`, `REASON=`);
//! otherwise to stderr. One layer, never both.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// Sets up logging: to the journal when systemd connected stdout/stderr to it, else stderr;
/// `QUANTUM_WATCHDOG_LOG` (an `EnvFilter`) or `-v` set the level.
pub fn init(verbose: bool) {
    let filter = EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| EnvFilter::new(if verbose { "debug" } else { "info" }));
    init_with(filter);
}

/// As [`init`] with a level only (`QUANTUM_WATCHDOG_LOG=debug`, else `-v`, else info):
/// `quantum-watchdog-exec` has no use for per-target filters and does without their regular
/// expressions (a wrapper beside every consumer maps less).
pub fn init_level(verbose: bool) {
    let level = std::env::var(LOG_ENV)
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(if verbose {
            LevelFilter::DEBUG
        } else {
            LevelFilter::INFO
        });
    init_with(level);
}

/// The variable that sets what is logged.
pub const LOG_ENV: &str = "QUANTUM_WATCHDOG_LOG";

fn init_with<F>(filter: F)
where
    F: tracing_subscriber::layer::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    if std::env::var_os("JOURNAL_STREAM").is_some()
        && let Ok(j) = tracing_journald::layer()
    {
        let j = j
            .with_field_prefix(None)
            .with_syslog_identifier("quantum-watchdog".into());
        tracing_subscriber::registry().with(filter).with(j).init();
        return;
    }
    // Colour only for a terminal (and never with NO_COLOR): a log file gets plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    tracing_subscriber::registry().with(filter).with(fmt).init();
}
