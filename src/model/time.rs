//! Dates and durations as the reports show them. Pure: the clock itself is an adapter.

/// The two clocks of one look: the wall clock for what is wall-clock time by nature (windows,
/// pauses, key names, what a person reads), the monotonic one for every duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// Realtime, microseconds since the epoch.
    pub now_usec: u64,
    /// CLOCK_MONOTONIC, microseconds.
    pub mono_usec: u64,
    /// The local time zone's offset from UTC, seconds.
    pub utc_offset_secs: i64,
}

impl Clock {
    /// The monotonic reading of a wall-clock time `wall_usec` (a note an operator wrote), as
    /// far as the two clocks are apart now; 0 for a time before this boot.
    pub fn mono_of(&self, wall_usec: u64) -> u64 {
        let apart = i128::from(self.now_usec) - i128::from(self.mono_usec);
        (i128::from(wall_usec) - apart).clamp(0, i128::from(u64::MAX)) as u64
    }

    /// The wall-clock reading of a monotonic time (for what a person reads).
    pub fn wall_of(&self, mono_usec: u64) -> u64 {
        let apart = i128::from(self.now_usec) - i128::from(self.mono_usec);
        (i128::from(mono_usec) + apart).clamp(0, i128::from(u64::MAX)) as u64
    }
}

#[cfg(test)]
mod clock_tests {
    use super::Clock;

    #[test]
    fn converts_between_the_clocks_as_they_are_apart_now() {
        let c = Clock {
            now_usec: 1_000_000_000,
            mono_usec: 5_000,
            utc_offset_secs: 0,
        };
        assert_eq!(c.mono_of(999_999_000), 4_000);
        assert_eq!(c.wall_of(4_000), 999_999_000);
        assert_eq!(c.mono_of(c.wall_of(123)), 123);
        assert_eq!(c.mono_of(0), 0, "before this boot");
        assert_eq!(c.wall_of(u64::MAX), u64::MAX, "saturates");
    }
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (proleptic Gregorian).
pub fn civil_date(days: i64) -> String {
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Expands `{utcdate}` and `{date}` (local) in a key name.
pub fn render_key(template: &str, now_usec: u64, utc_offset_secs: i64) -> String {
    let secs = (now_usec / 1_000_000) as i64;
    template
        .replace("{utcdate}", &civil_date(secs.div_euclid(86_400)))
        .replace(
            "{date}",
            &civil_date((secs + utc_offset_secs).div_euclid(86_400)),
        )
}

/// `1h 2m 3s`-style rendering of milliseconds, for logs and tables.
pub fn fmt_ms(ms: u64) -> String {
    let s = ms / 1000;
    if s == 0 {
        return format!("{ms}ms");
    }
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_739), "2024-01-17");
        assert_eq!(civil_date(11_016), "2000-02-29");
        // 2026-01-17 23:30 UTC is already the 18th at UTC+1.
        let t = (20_470 * 86_400 + 23 * 3600 + 1800) as u64 * 1_000_000;
        assert_eq!(render_key("k:{utcdate}", t, 3600), "k:2026-01-17");
        assert_eq!(render_key("k:{date}", t, 3600), "k:2026-01-18");
    }

    #[test]
    fn durations_render_short() {
        assert_eq!(fmt_ms(250), "250ms");
        assert_eq!(fmt_ms(61_000), "1m01s");
        assert_eq!(fmt_ms(11_776_068), "3h16m");
    }
}
