//! sd_notify: readiness, watchdog pings and a one-line status for `systemctl status`.
//! Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(states)
    {
        tracing::warn!("sd_notify failed: {e}");
    }
}

/// `READY=1`.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// `WATCHDOG=1`.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// `WATCHDOG=trigger`: systemd acts as on a missed ping (`Result=watchdog`,
/// `WatchdogSignal=`, `Restart=`).
pub fn watchdog_trigger() {
    send(&[NotifyState::WatchdogTrigger]);
}

/// `STATUS=line`.
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// `RELOADING=1`.
pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// `WatchdogSec=` of our unit, if systemd expects pings.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}
