//! Reads what the journal holds about one unit, with `journalctl -o json` (the journal's own
//! reader, with its access rules: root, or the groups `systemd-journal` and `adm`).

use std::time::Duration;

use crate::model::history::{Event, Writer};

/// The entries naming `unit` (`UNIT=`) that `exe` (this program: the agent and its sweeps)
/// or `wrapper` (`exec`'s small program) wrote, and the manager's own about it, since `since` (journalctl's syntax: `-1d`,
/// `2026-12-07 09:00`), oldest first. Only trusted fields (`_EXE`, `_PID`, which journald
/// sets) say who wrote an entry: a unit that logs `UNIT=` and `ACTION=` itself is not shown.
pub async fn unit_events(
    unit: &str,
    exe: &str,
    wrapper: Option<&str>,
    user: bool,
    since: &str,
    timeout: Duration,
) -> Result<Vec<Event>, String> {
    let mut cmd = tokio::process::Command::new("journalctl");
    // Not --quiet: journalctl's hint that this user sees only part of the journal is how a
    // caller without the right learns why the story is empty.
    // --all: a field over 4 KiB is otherwise written as null.
    cmd.args(["-o", "json", "--all", "--no-pager"])
        .arg(format!("--since={since}"));
    if user {
        cmd.arg("--user");
    }
    cmd.args(matches(unit, exe, wrapper, user))
        .kill_on_drop(true);
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
        .filter_map(|l| parse_line(l, exe, wrapper))
        .collect();
    if events.is_empty() && partial {
        return Err(format!(
            "this user may not read the system journal: run as root, or in the group systemd-journal ({})",
            err.lines().next().unwrap_or_default()
        ));
    }
    Ok(events)
}

/// journalctl's matches: same-field terms are alternatives, `+` separates conjunctions. Ours:
/// written by this program (the agent, the timer's sweeps, a drop-in's
/// `ExecStartPre=quantum-watchdog recover --unit %n`) and naming the unit; the manager's.
fn matches(unit: &str, exe: &str, wrapper: Option<&str>, user: bool) -> Vec<String> {
    let mut m = vec![format!("_EXE={exe}")];
    m.extend(wrapper.map(|w| format!("_EXE={w}")));
    m.extend([format!("UNIT={unit}"), "+".into()]);
    if user {
        m.push(format!("USER_UNIT={unit}"));
        m.push("_SYSTEMD_USER_UNIT=init.scope".into());
    } else {
        m.push(format!("UNIT={unit}"));
        m.push("_PID=1".into());
    }
    m
}

/// One line of `journalctl -o json`, if it is an entry with a time. `exe`: this program,
/// whose entries are the agent's (`quantum-watchdog agent`) or a sweep's; any other writer
/// the query let through is the manager. A message journald kept as bytes is shown lossily.
pub fn parse_line(line: &str, exe: &str, wrapper: Option<&str>) -> Option<Event> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let field = |k: &str| v.get(k).and_then(|x| x.as_str());
    let usec = field("__REALTIME_TIMESTAMP")?.parse().ok()?;
    let message = match v.get("MESSAGE")? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(bytes) => {
            let b: Vec<u8> = bytes
                .iter()
                .filter_map(|x| x.as_u64())
                .map(|x| x as u8)
                .collect();
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => "(no message)".into(),
    };
    let agent = field("_CMDLINE").is_some_and(|c| c.split(' ').any(|w| w == "agent"));
    let writer = match field("_EXE") {
        Some(e) if e == exe && agent => Writer::Agent,
        Some(e) if e == exe => Writer::Recover,
        Some(e) if Some(e) == wrapper => Writer::Exec,
        _ => Writer::Systemd,
    };
    let action = (writer != Writer::Systemd)
        .then(|| field("ACTION").map(str::to_string))
        .flatten();
    Some(Event {
        usec,
        writer,
        action,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/bin/quantum-watchdog";

    /// Who wrote an entry comes from journald's own fields, never from the entry's: a unit
    /// that logs UNIT= and ACTION= itself is the manager's side at most, without an action.
    #[test]
    fn entries_are_read_by_their_writer() {
        let agent = r#"{"__REALTIME_TIMESTAMP":"1800000000000000","_EXE":"/usr/bin/quantum-watchdog","_CMDLINE":"/usr/bin/quantum-watchdog agent","UNIT":"quantum-router.service","ACTION":"restart","MESSAGE":"restarting quantum-router.service"}"#;
        let sweep = r#"{"__REALTIME_TIMESTAMP":"1","_EXE":"/usr/bin/quantum-watchdog","_CMDLINE":"/usr/bin/quantum-watchdog recover --unit quantum-router.service","UNIT":"quantum-router.service","ACTION":"handoff","MESSAGE":"m"}"#;
        let pid1 = r#"{"__REALTIME_TIMESTAMP":"1800000001000000","_PID":"1","_EXE":"/usr/lib/systemd/systemd","UNIT":"quantum-router.service","MESSAGE":"Started quantum-router.service."}"#;
        let forged = r#"{"__REALTIME_TIMESTAMP":"2","_EXE":"/opt/app","UNIT":"quantum-router.service","ACTION":"restart","MESSAGE":"restarting"}"#;
        let bytes = r#"{"__REALTIME_TIMESTAMP":"1","_PID":"1","MESSAGE":[104,105,255]}"#;
        let e = parse_line(agent, EXE, None).unwrap();
        assert_eq!(e.writer, Writer::Agent);
        assert_eq!(e.action.as_deref(), Some("restart"));
        assert_eq!(e.usec, 1_800_000_000_000_000);
        let e = parse_line(sweep, EXE, None).unwrap();
        assert_eq!(
            (e.writer, e.action.as_deref()),
            (Writer::Recover, Some("handoff"))
        );
        let e = parse_line(pid1, EXE, None).unwrap();
        assert_eq!((e.writer, e.action), (Writer::Systemd, None));
        let e = parse_line(forged, EXE, None).unwrap();
        assert_eq!((e.writer, e.action), (Writer::Systemd, None), "not ours");
        assert_eq!(parse_line(bytes, EXE, None).unwrap().message, "hi\u{fffd}");
        assert_eq!(parse_line("not json", EXE, None), None);
    }

    #[test]
    fn the_matches_name_the_unit_in_each_conjunction() {
        let w = "/usr/libexec/quantum-watchdog/quantum-watchdog-exec";
        let m = matches("quantum-router.service", EXE, Some(w), false).join(" ");
        assert_eq!(
            m,
            "_EXE=/usr/bin/quantum-watchdog _EXE=/usr/libexec/quantum-watchdog/quantum-watchdog-exec \
             UNIT=quantum-router.service + UNIT=quantum-router.service _PID=1"
        );
        let wrapped = r#"{"__REALTIME_TIMESTAMP":"3","_EXE":"/usr/libexec/quantum-watchdog/quantum-watchdog-exec","UNIT":"quantum-router.service","ACTION":"quarantine","MESSAGE":"m"}"#;
        let e = parse_line(wrapped, EXE, Some(w)).unwrap();
        assert_eq!(
            (e.writer, e.action.as_deref()),
            (Writer::Exec, Some("quarantine"))
        );
    }
}
