//! `quantum-watchdog history UNIT`: the unit's story, one line per event, oldest first.

use crate::model::history::{Event, Writer};

/// The story of `unit`: a header, then per event its time in `tz`, who wrote it and what.
pub fn render(unit: &str, since: &str, events: &[Event], tz: &jiff::tz::TimeZone) -> String {
    let mut s = format!(
        "{unit}: {} event(s) since {since} (the agent, recovery sweeps, systemd)\n",
        events.len()
    );
    if events.is_empty() {
        s.push_str("  nothing: no verdict other than healthy, no restart, no recovery\n");
    }
    for e in events {
        let who = match e.writer {
            Writer::Agent => "agent",
            Writer::Recover => "recover",
            Writer::Exec => "exec",
            Writer::Systemd => "systemd",
        };
        let what = e.action.as_deref().unwrap_or("-");
        s.push_str(&format!(
            "{}  {who:<7}  {what:<10}  {}\n",
            local_time(e.usec, tz),
            crate::report::printable::printable(&e.message)
        ));
    }
    s
}

/// `YYYY-MM-DD HH:MM:SS` of realtime µs in `tz` (its offset at that moment).
fn local_time(usec: u64, tz: &jiff::tz::TimeZone) -> String {
    let secs = i64::try_from(usec / 1_000_000).unwrap_or(i64::MAX);
    jiff::Timestamp::from_second(secs)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| format!("@{secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_tells_its_story() {
        let at = |s: u64| 1_800_000_000_000_000 + s * 1_000_000;
        let ev = |s, writer, action: Option<&str>, m: &str| Event {
            usec: at(s),
            writer,
            action: action.map(str::to_string),
            message: m.into(),
        };
        let events = [
            ev(
                0,
                Writer::Agent,
                Some("verdict"),
                "quantum-router.service: healthy -> lagging: no progress from consumer r-1 while work waits 2m30s, hung at 5m00s (lag 3)",
            ),
            ev(
                150,
                Writer::Agent,
                Some("restart"),
                "restarting quantum-router.service: consumer r-1 idle 5m00s while work waits (lag 3)",
            ),
            ev(
                151,
                Writer::Systemd,
                None,
                "Started quantum-router.service - router.",
            ),
        ];
        let cet = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
        let text = render("quantum-router.service", "-1d", &events, &cet);
        assert_eq!(
            text,
            "quantum-router.service: 3 event(s) since -1d (the agent, recovery sweeps, systemd)\n\
             2027-01-15 09:00:00  agent    verdict     quantum-router.service: healthy -> lagging: no progress from consumer r-1 while work waits 2m30s, hung at 5m00s (lag 3)\n\
             2027-01-15 09:02:30  agent    restart     restarting quantum-router.service: consumer r-1 idle 5m00s while work waits (lag 3)\n\
             2027-01-15 09:02:31  systemd  -           Started quantum-router.service - router.\n"
        );
        assert!(render("u", "-1d", &[], &jiff::tz::TimeZone::UTC).contains("nothing"));
    }
}
