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

/// Base times: ordinary days, the eve of both European DST changes of 2027, New York's too.
const BASES: &[&str] = &[
    "2026-12-01T00:00:00Z",
    "2027-03-27T12:00:00Z",
    "2027-03-13T12:00:00Z",
    "2027-10-30T12:00:00Z",
    "2027-11-06T12:00:00Z",
    "2028-02-27T23:59:59Z",
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
