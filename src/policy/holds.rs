//! Rules 14 and 15, holds: an operator's pause or an open maintenance window keeps every action on
//! a unit and its consumers back, while its verdict is still judged and shown.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::Window;
use crate::model::calendar::CalendarSpec;
use crate::model::holds::{Holds, OpenWindow};
use crate::model::unit_pattern;

use super::action::Action;
use super::cycle::Deploy;
use super::decision::{Decision, HeldAction};
use super::verdict::Severity;

/// `HH:MM` local time of `usec` (with the snapshot's UTC offset), with the date in front when
/// it is not within the next 20 hours of `now_usec`.
fn clock(usec: u64, now_usec: u64, utc_offset_secs: i64) -> String {
    let secs = (usec / 1_000_000) as i64 + utc_offset_secs;
    let day = secs.rem_euclid(86_400);
    let time = format!("{:02}:{:02}", day / 3600, day % 3600 / 60);
    if usec >= now_usec && usec - now_usec < 20 * 3_600_000_000 {
        return time;
    }
    format!(
        "{} {time}",
        crate::model::time::civil_date(secs.div_euclid(86_400))
    )
}

/// Why actions on `unit` are held at `now_usec`, if they are: the first pause that covers it,
/// else the first open window that matches it.
pub fn hold_of(h: &Holds, unit: &str, now_usec: u64, utc_offset_secs: i64) -> Option<String> {
    if let Some(p) = h.pauses.iter().find(|p| p.covers(unit, now_usec)) {
        let whom = if p.unit.is_none() {
            "all units paused"
        } else {
            "paused"
        };
        let until = p
            .until_usec
            .map(|t| format!(" until {}", clock(t, now_usec, utc_offset_secs)))
            .unwrap_or_default();
        let why = if p.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", p.reason)
        };
        return Some(format!("{whom} by {}{until}{why}", p.by));
    }
    h.windows
        .iter()
        .find(|w| unit_pattern::matches_any(&w.units, unit))
        .map(|w| {
            format!(
                "suppressed by window {} until {}",
                w.name,
                clock(w.until_usec, now_usec, utc_offset_secs)
            )
        })
}

/// The configured windows open at `now_usec`, with an error for each that cannot be evaluated
/// (its zone unknown to this machine). `zone` resolves a spec's zone, or local time for `None`.
pub fn open_windows(
    windows: &[Window],
    now_usec: u64,
    zone: impl Fn(Option<&str>) -> Result<TimeZone, jiff::Error>,
    errors: &mut Vec<String>,
) -> Vec<OpenWindow> {
    let Ok(now) = Timestamp::from_microsecond(now_usec.min(i64::MAX as u64) as i64) else {
        return Vec::new();
    };
    let mut open = Vec::new();
    for w in windows {
        let spec = match CalendarSpec::parse(&w.calendar) {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("window {}: {e}", w.name));
                continue;
            }
        };
        let tz = match zone(spec.zone()) {
            Ok(tz) => tz,
            Err(e) => {
                let name = spec.zone().unwrap_or("local");
                errors.push(format!("window {}: time zone {name}: {e}", w.name));
                continue;
            }
        };
        let Ok(length) = jiff::SignedDuration::try_from(w.duration.0) else {
            continue;
        };
        if let Some(until) = spec.open_window(now, length, &tz) {
            open.push(OpenWindow {
                name: w.name.clone(),
                units: w.units.clone(),
                until_usec: until.as_microsecond().max(0) as u64,
            });
        }
    }
    open
}

/// Holds the restart of every unit a deploy has in its hands ([`Deploy`]): the action
/// moves to `d.held`, and the unit's report says what holds it and until when at the latest
/// (whether or not a restart is due yet); a held restart makes it a warning at least — a hang
/// under a forgotten `daemon-reload` is never shown as fine.
pub fn apply_deploys(
    deploys: &BTreeMap<String, Deploy>,
    snap: &crate::model::Snapshot,
    d: &mut Decision,
) {
    let hold = |dep: &Deploy| {
        // Measured on the monotonic clock, shown on the wall clock.
        let until = snap.clock().wall_of(dep.until_mono_usec);
        format!(
            "a deploy under way ({}) until {} at the latest (deploy_hold)",
            dep.why,
            clock(until, snap.now_usec, snap.utc_offset_secs)
        )
    };
    for r in &mut d.units {
        if let Some(dep) = deploys.get(&r.unit) {
            r.hold.get_or_insert_with(|| hold(dep));
        }
    }
    let (held, kept) = std::mem::take(&mut d.actions)
        .into_iter()
        .partition::<Vec<_>, _>(
            |a| matches!(a, Action::Restart { unit, .. } if deploys.contains_key(unit)),
        );
    d.actions = kept;
    for a in held {
        let unit = a.unit().unwrap_or_default();
        if let Some(r) = d.units.iter_mut().find(|r| r.unit == unit) {
            r.severity = r.severity.worst(Severity::Warning);
        }
        let held_by = hold(&deploys[unit]);
        d.held.push(HeldAction { action: a, held_by });
    }
}

/// Marks every held unit's report, and moves every restart of a held unit and every consumer
/// action in a group a held unit reads from `d.actions` to `d.held`.
pub fn apply(
    h: &Holds,
    now_usec: u64,
    off: i64,
    group_units: impl Fn(&str, &str) -> Vec<String>,
    d: &mut Decision,
) {
    for u in &mut d.units {
        u.hold = hold_of(h, &u.unit, now_usec, off);
    }
    let actions = std::mem::take(&mut d.actions);
    for a in actions {
        // A restart concerns its unit; a consumer action every unit that reads the group (a
        // handoff gives entries to one of them, a delete may touch any one's consumer).
        let mut units: Vec<String> = a.unit().map(str::to_string).into_iter().collect();
        if !matches!(a, Action::Restart { .. }) {
            let (stream, group, _) = a.target();
            units.extend(group_units(stream, group));
        }
        match units.iter().find_map(|u| hold_of(h, u, now_usec, off)) {
            Some(why) => d.held.push(HeldAction {
                action: a,
                held_by: why,
            }),
            None => d.actions.push(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HumanDuration;
    use crate::model::holds::Pause;
    use std::time::Duration;

    const MIN: u64 = 60_000_000;

    fn pause(unit: Option<&str>, until: Option<u64>) -> Pause {
        Pause {
            unit: unit.map(str::to_string),
            by: "root".into(),
            reason: "deploy".into(),
            since_usec: 0,
            until_usec: until,
        }
    }

    #[test]
    fn pauses_then_windows() {
        let now = 14 * 60 * MIN;
        let h = Holds {
            pauses: vec![
                pause(Some("quantum-a.service"), Some(now + 30 * MIN)),
                pause(Some("quantum-old.service"), Some(now - MIN)),
            ],
            windows: vec![OpenWindow {
                name: "nightly".into(),
                units: vec!["quantum-*.service".into()],
                until_usec: now + 60 * MIN,
            }],
            ..Default::default()
        };
        for (unit, want) in [
            (
                "quantum-a.service",
                Some("paused by root until 14:30: deploy"),
            ),
            (
                "quantum-old.service",
                Some("suppressed by window nightly until 15:00"),
            ),
            ("other.service", None),
        ] {
            assert_eq!(hold_of(&h, unit, now, 0).as_deref(), want, "{unit}");
        }
        let all = Holds {
            pauses: vec![pause(None, None)],
            ..Default::default()
        };
        assert_eq!(
            hold_of(&all, "x.service", now, 3600).as_deref(),
            Some("all units paused by root: deploy")
        );
    }

    fn window(calendar: &str, minutes: u64) -> Window {
        Window {
            name: "nightly".into(),
            units: vec!["quantum-*.service".into()],
            calendar: calendar.into(),
            duration: HumanDuration(Duration::from_secs(minutes * 60)),
        }
    }

    /// `2026-12-05` is a Saturday.
    fn at(s: &str) -> u64 {
        s.parse::<Timestamp>().unwrap().as_microsecond() as u64
    }

    #[test]
    fn windows_open_from_their_elapse_for_their_duration() {
        let local = |z: Option<&str>| match z {
            None => Ok(TimeZone::UTC),
            Some(n) => jiff::tz::db().get(n),
        };
        for (calendar, minutes, now, open_until) in [
            ("Sat 02:00", 120, "2026-12-05T01:59:59Z", None),
            (
                "Sat 02:00",
                120,
                "2026-12-05T02:00:00Z",
                Some("2026-12-05T04:00:00Z"),
            ),
            (
                "Sat 02:00",
                120,
                "2026-12-05T03:59:59Z",
                Some("2026-12-05T04:00:00Z"),
            ),
            ("Sat 02:00", 120, "2026-12-05T04:00:00Z", None),
            ("Sat 02:00", 120, "2026-12-06T03:00:00Z", None),
            // Opened yesterday, still open across midnight.
            (
                "*-*-* 23:00",
                180,
                "2026-12-06T01:00:00Z",
                Some("2026-12-06T02:00:00Z"),
            ),
            // 02:00 in Berlin is 01:00 UTC in winter.
            (
                "Sat 02:00 Europe/Berlin",
                60,
                "2026-12-05T01:30:00Z",
                Some("2026-12-05T02:00:00Z"),
            ),
            ("Sat 02:00 Europe/Berlin", 60, "2026-12-05T02:30:00Z", None),
        ] {
            let mut errors = Vec::new();
            let open = open_windows(&[window(calendar, minutes)], at(now), local, &mut errors);
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(
                open.first().map(|w| w.until_usec),
                open_until.map(at),
                "{calendar} for {minutes} min at {now}"
            );
        }
        let mut errors = Vec::new();
        let unknown = |_: Option<&str>| jiff::tz::db().get("Mars/Olympus");
        assert!(
            open_windows(
                &[window("Sat 02:00", 60)],
                at("2026-12-05T02:00:00Z"),
                unknown,
                &mut errors
            )
            .is_empty()
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("window nightly: time zone local: ")
                && errors[0].contains("Mars/Olympus"),
            "{errors:?}"
        );
    }
}
