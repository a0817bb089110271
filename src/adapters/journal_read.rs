//! Reads what the journal holds about one unit, with `journalctl -o json` (the journal's own
//! reader, with its access rules: root, or the groups `systemd-journal` and `adm`).

use std::time::Duration;

use crate::model::history::{Event, Writer};

/// The agent's and the sweeps' entries naming `unit` (`UNIT=`), and the manager's own about
/// it, since `since` (journalctl's syntax: `-1d`, `2026-12-07 09:00`), oldest first.
pub async fn unit_events(
    unit: &str,
    user: bool,
    since: &str,
    timeout: Duration,
) -> Result<Vec<Event>, String> {
    let mut cmd = tokio::process::Command::new("journalctl");
    // Not --quiet: journalctl's hint that this user sees only part of the journal is how a
    // caller without the right learns why the story is empty.
    cmd.args(["-o", "json", "--no-pager"])
        .arg(format!("--since={since}"));
    if user {
        cmd.arg("--user");
    }
    cmd.args(matches(unit, user)).kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output())
        .await
        .map_err(|_| format!("journalctl did not answer within {timeout:?}"))?
        .map_err(|e| format!("cannot run journalctl: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let partial = err.contains("insufficient permissions") || err.contains("not seeing messages");
    if !out.status.success() && !partial {
        return Err(format!("journalctl failed: {err}"));
    }
    let events: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_line)
        .collect();
    if events.is_empty() && partial {
        return Err(format!(
            "this user may not read the system journal: run as root, or in the group systemd-journal ({})",
            err.lines().next().unwrap_or_default()
        ));
    }
    Ok(events)
}

/// journalctl's matches: same-field terms are alternatives, `+` separates conjunctions.
fn matches(unit: &str, user: bool) -> Vec<String> {
    let (own, mgr) = if user {
        ("_SYSTEMD_USER_UNIT", format!("USER_UNIT={unit}"))
    } else {
        ("_SYSTEMD_UNIT", format!("UNIT={unit}"))
    };
    let mut m = Vec::new();
    // The agent, the timer's sweeps, and a sweep the unit runs itself (a drop-in's
    // `ExecStartPre=quantum-watchdog recover --unit %n`).
    for writer in [
        "quantum-watchdog.service",
        "quantum-stream-recover.service",
        unit,
    ] {
        m.extend([
            format!("{own}={writer}"),
            format!("UNIT={unit}"),
            "+".into(),
        ]);
    }
    m.push(mgr);
    if !user {
        m.push("_PID=1".into());
    }
    m
}

/// One line of `journalctl -o json`, if it is an entry with a time and a text message.
pub fn parse_line(line: &str) -> Option<Event> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str());
    let usec = field("__REALTIME_TIMESTAMP")?.parse().ok()?;
    let message = field("MESSAGE")?.to_string();
    let by = field("_SYSTEMD_UNIT").or(field("_SYSTEMD_USER_UNIT"));
    let writer = match by {
        Some("quantum-watchdog.service") => Writer::Agent,
        Some("quantum-stream-recover.service") => Writer::Recover,
        _ if field("UNIT").is_some() && field("ACTION").is_some() => Writer::Recover,
        _ => Writer::Systemd,
    };
    Some(Event {
        usec,
        writer,
        action: field("ACTION").map(str::to_string),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_by_their_writer() {
        let agent = r#"{"__REALTIME_TIMESTAMP":"1800000000000000","_SYSTEMD_UNIT":"quantum-watchdog.service","UNIT":"quantum-router.service","ACTION":"restart","MESSAGE":"restarting quantum-router.service"}"#;
        let pid1 = r#"{"__REALTIME_TIMESTAMP":"1800000001000000","_PID":"1","UNIT":"quantum-router.service","MESSAGE":"Started quantum-router.service."}"#;
        let binary = r#"{"__REALTIME_TIMESTAMP":"1","MESSAGE":[104,105]}"#;
        let e = parse_line(agent).unwrap();
        assert_eq!(e.writer, Writer::Agent);
        assert_eq!(e.action.as_deref(), Some("restart"));
        assert_eq!(e.usec, 1_800_000_000_000_000);
        let e = parse_line(pid1).unwrap();
        assert_eq!((e.writer, e.action), (Writer::Systemd, None));
        assert_eq!(parse_line(binary), None, "a binary MESSAGE is left out");
        assert_eq!(parse_line("not json"), None);
    }

    #[test]
    fn the_matches_name_the_unit_in_each_conjunction() {
        let m = matches("quantum-router.service", false).join(" ");
        assert_eq!(
            m,
            "_SYSTEMD_UNIT=quantum-watchdog.service UNIT=quantum-router.service + \
             _SYSTEMD_UNIT=quantum-stream-recover.service UNIT=quantum-router.service + \
             _SYSTEMD_UNIT=quantum-router.service UNIT=quantum-router.service + \
             UNIT=quantum-router.service _PID=1"
        );
    }
}
