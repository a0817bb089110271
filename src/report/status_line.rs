//! `STATUS=` for `systemctl status`: one line per cycle.

use std::time::Duration;

use crate::config::Mode;
use crate::policy::{Decision, Verdict};

use super::state::Totals;

/// `enforce: 3 unit(s), 0 hung, 0 gave up, 0 failed; restarted 1, claimed 1775, deleted 2; cycle 3ms`.
pub fn status_line(d: &Decision, mode: Mode, t: &Totals, took: Duration) -> String {
    let count = |v: Verdict| d.units.iter().filter(|u| u.verdict == v).count();
    let mut s = format!(
        "{mode}: {} unit(s), {} hung, {} gave up, {} failed; restarted {}, claimed {}, deleted {}; cycle {}ms",
        d.units.len(),
        count(Verdict::Hung),
        count(Verdict::GaveUp),
        count(Verdict::Failed) + count(Verdict::StartLimitHit),
        t.restarts,
        t.claimed + t.requeued,
        t.deleted,
        took.as_millis()
    );
    let lagging = count(Verdict::Lagging);
    if lagging > 0 {
        s.push_str(&format!("; {lagging} lagging"));
    }
    let held = d.units.iter().filter(|u| u.hold.is_some()).count();
    if held > 0 {
        s.push_str(&format!("; {held} paused or in a window"));
    }
    if d.redis_error.is_some() {
        s.push_str("; redis unreachable");
    }
    if d.systemd_error.is_some() {
        s.push_str("; D-Bus unreachable");
    }
    s
}
