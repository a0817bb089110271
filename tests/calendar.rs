//! `[[window]]` calendar events elapse exactly when systemd says they do: every expression
//! below, from several base times and in three time zones (with DST changes), against
//! `systemd-analyze calendar --iterations=6 --base-time=…` of the systemd on this machine.

use std::process::Command;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use quantum_watchdog::model::calendar::CalendarSpec;

const EXPRESSIONS: &[&str] = &[
    "Sat 02:00",
    "Mon..Fri *-*-* 23:55:00",
    "Mon-Fri 08:00",
    "Sat,Sun 02,14:30",
    "*-*-* 02:30",
    "*-*-* *:30",
    "*:0/20",
    "*:0/20:30",
    "*-*~01",
    "*-02~03",
    "*-*-1..20/10 12:00",
    "*-*-01/10 12:00",
    "Fri *-*-13",
    "Monday *-1..3-1",
    "26-12-24 8:00",
    "2027..2029-02-29",
    "quarterly",
    "semiannually",
    "weekly",
    "monthly",
    "hourly",
    "daily",
    "minutely",
    "*-*-* 02:00..04:00",
    "Sat 02:00 UTC",
    "Sat 02:00 Europe/Berlin",
    "*-*-* 02:30 America/New_York",
];

const ZONES: &[&str] = &["UTC", "Europe/Berlin", "America/New_York"];

/// Base times: ordinary days, the eve of both European DST changes of 2027, New York's too,
/// and the repeated hours themselves: the last second of Berlin's first pass, into its second
/// pass (02:10 CET), and into New York's (01:10 EST).
const BASES: &[&str] = &[
    "2026-12-01T00:00:00Z",
    "2027-03-27T12:00:00Z",
    "2027-03-13T12:00:00Z",
    "2027-10-30T12:00:00Z",
    "2027-11-06T12:00:00Z",
    "2028-02-27T23:59:59Z",
    "2027-10-31T00:59:59Z",
    "2027-10-31T01:10:00Z",
    "2027-11-07T06:10:00Z",
];

/// systemd's elapses, as it prints them (`Sat 2026-12-12 02:00:00 UTC`), or why it refused.
fn systemd(expr: &str, base: Timestamp, zone: &str) -> Result<Vec<String>, String> {
    let base = base.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    let out = Command::new("systemd-analyze")
        .env("TZ", zone)
        .args([
            "calendar",
            "--iterations=6",
            &format!("--base-time={base}"),
            expr,
        ])
        .output()
        .expect("systemd-analyze (package systemd) is needed for this test");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(text);
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("Next elapse: ").or_else(|| {
                l.split_once(": ")
                    .filter(|(k, _)| k.starts_with("Iter."))
                    .map(|(_, v)| v)
            })
        })
        .filter(|v| *v != "never")
        .map(str::to_string)
        .collect())
}

fn ours(expr: &str, base: Timestamp, zone: &str) -> Result<Vec<String>, String> {
    let spec = CalendarSpec::parse(expr)?;
    let local = TimeZone::get(zone).unwrap();
    let eval = match spec.zone() {
        Some(z) => TimeZone::get(z).unwrap(),
        None => local.clone(),
    };
    let mut out = Vec::new();
    let mut t = base;
    while out.len() < 6 {
        let Some(n) = spec.next_after(t, &eval) else {
            break;
        };
        out.push(
            n.to_zoned(local.clone())
                .strftime("%a %Y-%m-%d %H:%M:%S %Z")
                .to_string(),
        );
        t = n;
    }
    Ok(out)
}

#[test]
fn elapses_agree_with_systemd_analyze() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "systemd-analyze missing; under CI=true this is a failure, not a skip"
        );
        eprintln!("SKIPPED: needs systemd-analyze (package systemd)");
        return;
    }
    let mut checked = 0;
    for expr in EXPRESSIONS {
        for zone in ZONES {
            for base in BASES {
                let base: Timestamp = base.parse().unwrap();
                let want = systemd(expr, base, zone).unwrap_or_else(|e| panic!("{expr}: {e}"));
                let got = ours(expr, base, zone).unwrap_or_else(|e| panic!("{expr}: {e}"));
                assert_eq!(got, want, "{expr:?} from {base} in TZ={zone}");
                checked += want.len();
            }
        }
    }
    println!("MEASURE calendar elapses_checked={checked}");
}

/// What systemd refuses is refused here too.
#[test]
fn refusals_agree_with_systemd_analyze() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return;
    }
    let base: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
    for expr in [
        "*:*/20",
        "Sat..Mon 10:00",
        "*-*-* 24:00",
        "*-13-01",
        "Someday",
        "12:00 13:00",
    ] {
        assert!(
            systemd(expr, base, "UTC").is_err(),
            "systemd accepts {expr:?}"
        );
        assert!(CalendarSpec::parse(expr).is_err(), "we accept {expr:?}");
    }
}

/// Whether `systemd-analyze` is there; under `CI=true` its absence fails.
fn systemd_analyze_present() -> bool {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci,
        "systemd-analyze missing; under CI=true this is a failure, not a skip"
    );
    eprintln!("SKIPPED: needs systemd-analyze (package systemd)");
    false
}

/// Both DST changes of 2026, from a base every five minutes of the three hours around each:
/// a skipped time never elapses; a repeated one elapses in its first pass, or in its second
/// from a base in that second pass (glibc's `mktime` keeps the base's offset there).
#[test]
fn repeated_and_skipped_hours_agree_with_systemd_analyze() {
    if !systemd_analyze_present() {
        return;
    }
    // (expression, the instants of the fall-back and of the spring-forward)
    let cases = [
        (
            "*-*-* 02:30 Europe/Berlin",
            "2026-10-25T01:00:00Z",
            "2026-03-29T01:00:00Z",
        ),
        (
            "*-*-* 02:00..59/15 Europe/Berlin",
            "2026-10-25T01:00:00Z",
            "2026-03-29T01:00:00Z",
        ),
        (
            "*:0/20 Europe/Berlin",
            "2026-10-25T01:00:00Z",
            "2026-03-29T01:00:00Z",
        ),
        (
            "*-*-* 01:30 America/New_York",
            "2026-11-01T06:00:00Z",
            "2026-03-08T07:00:00Z",
        ),
    ];
    let mut checked = 0;
    for (expr, fall, spring) in cases {
        for change in [fall, spring] {
            let change: Timestamp = change.parse().unwrap();
            for minutes in (-90..=90).step_by(5) {
                let base = change + jiff::SignedDuration::from_mins(minutes);
                for base in [base, base - jiff::SignedDuration::from_secs(1)] {
                    let want = systemd(expr, base, "UTC").unwrap_or_else(|e| panic!("{expr}: {e}"));
                    let got = ours(expr, base, "UTC").unwrap_or_else(|e| panic!("{expr}: {e}"));
                    assert_eq!(got, want, "{expr:?} from {base}");
                    checked += want.len();
                }
            }
        }
    }
    println!("MEASURE calendar dst_elapses_checked={checked}");
}

/// Where a window and `systemd-analyze` part: `*-*-* 02:30 Europe/Berlin`, 30 minutes, on
/// 2026-10-25. systemd from 02:05 CET (01:05 UTC, the repeated hour's second pass) names
/// 02:30 CET (01:30 UTC); a timer running through the night fired at 02:30 CEST (00:30 UTC)
/// and not again, and the window follows that timer: open 00:30-01:00 UTC, closed at the
/// repeated 02:35 (01:35 UTC). On 2026-03-29, 02:30 does not exist and opens nothing.
#[test]
fn a_window_opens_once_in_a_repeated_hour_as_a_running_timer_fires() {
    if !systemd_analyze_present() {
        return;
    }
    let expr = "*-*-* 02:30 Europe/Berlin";
    let spec = CalendarSpec::parse(expr).unwrap();
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let half_hour = jiff::SignedDuration::from_mins(30);
    let t = |s: &str| s.parse::<Timestamp>().unwrap();
    let first = |base: &str| systemd(expr, t(base), "UTC").unwrap().remove(0);
    // What systemd says: from before the change, the first pass; from the second pass, the second.
    assert_eq!(first("2026-10-25T00:00:00Z"), "Sun 2026-10-25 00:30:00 UTC");
    assert_eq!(first("2026-10-25T00:30:00Z"), "Mon 2026-10-26 01:30:00 UTC");
    assert_eq!(first("2026-10-25T01:05:00Z"), "Sun 2026-10-25 01:30:00 UTC");
    assert_eq!(first("2026-03-29T00:00:00Z"), "Mon 2026-03-30 00:30:00 UTC");
    // The window.
    for (now, until) in [
        ("2026-10-25T00:29:59Z", None),
        ("2026-10-25T00:30:00Z", Some("2026-10-25T01:00:00Z")),
        ("2026-10-25T00:59:59Z", Some("2026-10-25T01:00:00Z")),
        ("2026-10-25T01:00:00Z", None),
        ("2026-10-25T01:35:00Z", None),
        ("2026-10-26T01:35:00Z", Some("2026-10-26T02:00:00Z")),
        ("2026-03-29T00:35:00Z", None),
        ("2026-03-29T01:35:00Z", None),
        ("2026-03-30T00:35:00Z", Some("2026-03-30T01:00:00Z")),
    ] {
        assert_eq!(
            spec.open_window(t(now), half_hour, &berlin),
            until.map(t),
            "{expr} for 30 min at {now}"
        );
    }
}
