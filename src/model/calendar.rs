//! Calendar events as systemd writes them (`OnCalendar=`, `systemd.time(7)`): `Sat 02:00`,
//! `Mon..Fri *-*-* 23:55:00`, `*-*~01`, `quarterly`, with an optional time zone. Parsed into
//! components and iterated the way `systemd-analyze calendar` does (tests/calendar.rs checks
//! the two agree): the next elapse is strictly after the base; a time that a DST change skips
//! does not elapse; one it repeats elapses in its first pass, or in its second from a base in
//! that second pass (see [`CalendarSpec::next_after`]). A window follows a timer that has been
//! running across the change: a repeated time opens it once, in its first pass.
//!
//! Not supported (an error says so): fractional seconds, and `@epoch` forms.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// One item of a component: `*`, `5`, `1..5`, `0/20`, `1..20/10`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    start: Option<u32>,
    end: Option<u32>,
    repeat: Option<u32>,
}

impl Item {
    fn matches(&self, v: u32) -> bool {
        let Some(s) = self.start else {
            return true;
        };
        if v < s || self.end.is_some_and(|e| v > e) {
            return false;
        }
        match self.repeat {
            Some(r) => (v - s).is_multiple_of(r),
            None => self.end.is_some() || v == s,
        }
    }
}

/// A comma-separated list of items; any may match.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Component(Vec<Item>);

impl Component {
    fn any() -> Component {
        Component(vec![Item {
            start: None,
            end: None,
            repeat: None,
        }])
    }

    fn value(v: u32) -> Component {
        Component(vec![Item {
            start: Some(v),
            end: None,
            repeat: None,
        }])
    }

    fn matches(&self, v: u32) -> bool {
        self.0.iter().any(|i| i.matches(v))
    }

    /// The smallest matching value in `from..=to`.
    fn next(&self, from: u32, to: u32) -> Option<u32> {
        (from..=to).find(|v| self.matches(*v))
    }
}

/// A parsed calendar event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarSpec {
    source: String,
    /// Bit 0 Monday … bit 6 Sunday; all set when none given.
    weekdays: u8,
    year: Component,
    month: Component,
    day: Component,
    /// `~`: days count from the month's end (`~01` is its last day).
    from_end: bool,
    hour: Component,
    minute: Component,
    second: Component,
    zone: Option<String>,
}

const WEEKDAYS: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// The last year an event is looked for in (systemd's limit too).
const LAST_YEAR: i16 = 2199;

fn shorthand(s: &str) -> Option<&'static str> {
    Some(match s {
        "minutely" => "*-*-* *:*:00",
        "hourly" => "*-*-* *:00:00",
        "daily" => "*-*-* 00:00:00",
        "weekly" => "Mon *-*-* 00:00:00",
        "monthly" => "*-*-01 00:00:00",
        "yearly" | "annually" => "*-01-01 00:00:00",
        "quarterly" => "*-01,04,07,10-01 00:00:00",
        "semiannually" => "*-01,07-01 00:00:00",
        _ => return None,
    })
}

fn weekday(s: &str) -> Option<u8> {
    let l = s.to_ascii_lowercase();
    WEEKDAYS
        .iter()
        .position(|(short, long)| l == *short || l == *long)
        .map(|i| i as u8)
}

fn parse_weekdays(s: &str) -> Result<u8, String> {
    let mut bits = 0u8;
    for part in s.split(',') {
        let (a, b) = match part.split_once("..").or_else(|| part.split_once('-')) {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let (Some(a), Some(b)) = (weekday(a), weekday(b)) else {
            return Err(format!("{part:?} is not a weekday (Mon … Sun)"));
        };
        if a > b {
            return Err(format!("{part:?}: a weekday range runs forward (Mon..Fri)"));
        }
        for d in a..=b {
            bits |= 1 << d;
        }
    }
    Ok(bits)
}

fn number(s: &str, what: &str) -> Result<u32, String> {
    if s.contains('.') && !s.contains("..") {
        return Err(format!("{what} {s:?}: fractional values are not supported"));
    }
    s.parse()
        .map_err(|_| format!("{what} {s:?}: expected a number, a range a..b, a/step or *"))
}

/// One component: `*`, or a comma list of `N`, `N..M`, `N/R`, `N..M/R`, each in `min..=max`.
fn parse_component(s: &str, what: &str, min: u32, max: u32) -> Result<Component, String> {
    if s == "*" {
        return Ok(Component::any());
    }
    let mut items = Vec::new();
    for part in s.split(',') {
        let (range, repeat) = match part.split_once('/') {
            Some((r, rep)) => (r, Some(number(rep, what)?)),
            None => (part, None),
        };
        if range == "*" {
            return Err(format!(
                "{what} {part:?}: a repetition needs a start (0/20, not */20)"
            ));
        }
        let (start, end) = match range.split_once("..") {
            Some((a, b)) => (number(a, what)?, Some(number(b, what)?)),
            None => (number(range, what)?, None),
        };
        if repeat == Some(0) {
            return Err(format!("{what} {part:?}: a repetition of 0"));
        }
        let within = |v: u32| (min..=max).contains(&v);
        if !within(start) || end.is_some_and(|e| !within(e) || e < start) {
            return Err(format!("{what} {part:?}: expected values in {min}..{max}"));
        }
        items.push(Item {
            start: Some(start),
            end,
            repeat,
        });
    }
    Ok(Component(items))
}

/// A year component: two-digit years are 19xx from 70, else 20xx.
fn parse_year(s: &str) -> Result<Component, String> {
    let mut c = parse_component(s, "year", 0, LAST_YEAR as u32)?;
    for i in &mut c.0 {
        let widen = |v: u32| match v {
            0..=69 => v + 2000,
            70..=99 => v + 1900,
            _ => v,
        };
        i.start = i.start.map(widen);
        i.end = i.end.map(widen);
        if i.start.is_some_and(|v| v < 1970) {
            return Err(format!("year {s:?}: expected 1970 or later"));
        }
    }
    Ok(c)
}

impl CalendarSpec {
    /// Parses an `OnCalendar=`-style expression.
    pub fn parse(source: &str) -> Result<CalendarSpec, String> {
        let text = source.trim();
        let text = shorthand(text).unwrap_or(text);
        let mut tokens: Vec<&str> = text.split_whitespace().collect();
        if tokens.is_empty() {
            return Err("an empty calendar event".into());
        }
        let mut spec = CalendarSpec {
            source: source.trim().to_string(),
            weekdays: 0x7f,
            year: Component::any(),
            month: Component::any(),
            day: Component::any(),
            from_end: false,
            hour: Component::value(0),
            minute: Component::value(0),
            second: Component::value(0),
            zone: None,
        };
        if let Some(last) = tokens.last()
            && (*last == "UTC"
                || (last.contains('/') && last.starts_with(|c: char| c.is_ascii_alphabetic())))
        {
            spec.zone = Some(last.to_string());
            tokens.pop();
        }
        if let Some(first) = tokens.first()
            && first.starts_with(|c: char| c.is_ascii_alphabetic())
        {
            spec.weekdays = parse_weekdays(first)?;
            tokens.remove(0);
        }
        let (mut date, mut time) = (None, None);
        for t in tokens {
            let slot = if t.contains(':') {
                &mut time
            } else {
                &mut date
            };
            if slot.replace(t).is_some() {
                return Err(format!("{t:?}: one date and one time at most"));
            }
        }
        if let Some(d) = date {
            spec.parse_date(d)?;
        }
        if let Some(t) = time {
            spec.parse_time(t)?;
        }
        Ok(spec)
    }

    fn parse_date(&mut self, d: &str) -> Result<(), String> {
        let (ym, day) = match d.rsplit_once('~') {
            Some((ym, day)) => {
                self.from_end = true;
                (ym, day)
            }
            None => d.rsplit_once('-').ok_or_else(|| {
                format!("{d:?}: expected a date [YEAR-]MONTH-DAY or a time HOUR:MINUTE[:SECOND]")
            })?,
        };
        let (year, month) = match ym.split_once('-') {
            Some((y, m)) => (Some(y), m),
            None => (None, ym),
        };
        if let Some(y) = year {
            self.year = parse_year(y)?;
        }
        self.month = parse_component(month, "month", 1, 12)?;
        self.day = parse_component(day, "day", 1, 31)?;
        Ok(())
    }

    fn parse_time(&mut self, t: &str) -> Result<(), String> {
        let parts: Vec<&str> = t.split(':').collect();
        let (h, m, s) = match parts[..] {
            [h, m] => (h, m, "00"),
            [h, m, s] => (h, m, s),
            _ => return Err(format!("{t:?}: expected HOUR:MINUTE[:SECOND]")),
        };
        self.hour = parse_component(h, "hour", 0, 23)?;
        self.minute = parse_component(m, "minute", 0, 59)?;
        self.second = parse_component(s, "second", 0, 59)?;
        Ok(())
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The time zone it names (`UTC`, `Europe/Berlin`), if any; else local time applies.
    pub fn zone(&self) -> Option<&str> {
        self.zone.as_deref()
    }

    fn day_matches(&self, y: i16, m: i8, d: i8) -> bool {
        let Ok(date) = jiff::civil::Date::new(y, m, d) else {
            return false;
        };
        let wd = date.weekday().to_monday_zero_offset() as u8;
        let n = if self.from_end {
            (date.days_in_month() - d + 1) as u32
        } else {
            d as u32
        };
        self.weekdays & (1 << wd) != 0 && self.day.matches(n)
    }

    /// The first civil time at or after `c` whose every component matches, or `None`.
    fn next_civil(&self, mut c: DateTime) -> Option<DateTime> {
        loop {
            c = match self.next_day(c)? {
                Next::At(day) => day,
                Next::From(later) => {
                    c = later;
                    continue;
                }
            };
            match self.next_time(c)? {
                Next::At(t) => return Some(t),
                Next::From(later) => c = later,
            }
        }
    }

    /// `c`, or the start of the first day after it, if its year, month and day match; else
    /// where to look again.
    fn next_day(&self, mut c: DateTime) -> Option<Next> {
        let y = self.year.next(c.year() as u32, LAST_YEAR as u32)? as i16;
        if y != c.year() {
            c = at(y, 1, 1, 0, 0, 0)?;
        }
        let Some(mo) = self.month.next(c.month() as u32, 12) else {
            return Some(Next::From(at(y.checked_add(1)?, 1, 1, 0, 0, 0)?));
        };
        if mo as i8 != c.month() {
            c = at(y, mo as i8, 1, 0, 0, 0)?;
        }
        let last = c.date().days_in_month();
        let Some(d) = (c.day()..=last).find(|d| self.day_matches(y, c.month(), *d)) else {
            let next = c.date().last_of_month().tomorrow().ok()?;
            return Some(Next::From(next.to_datetime(jiff::civil::Time::midnight())));
        };
        if d != c.day() {
            c = at(y, c.month(), d, 0, 0, 0)?;
        }
        Some(Next::At(c))
    }

    /// The first time of `c`'s day at or after it whose hour, minute and second match; else
    /// where to look again (the next hour, minute or day).
    fn next_time(&self, mut c: DateTime) -> Option<Next> {
        let Some(h) = self.hour.next(c.hour() as u32, 23) else {
            let next = c.date().tomorrow().ok()?;
            return Some(Next::From(next.to_datetime(jiff::civil::Time::midnight())));
        };
        if h as i8 != c.hour() {
            c = at(c.year(), c.month(), c.day(), h as i8, 0, 0)?;
        }
        let Some(mi) = self.minute.next(c.minute() as u32, 59) else {
            let next = c.checked_add(1.hour()).ok()?;
            return Some(Next::From(next.with().minute(0).second(0).build().ok()?));
        };
        if mi as i8 != c.minute() {
            c = at(c.year(), c.month(), c.day(), c.hour(), mi as i8, 0)?;
        }
        let Some(s) = self.second.next(c.second() as u32, 59) else {
            let next = c.checked_add(1.minute()).ok()?;
            return Some(Next::From(next.with().second(0).build().ok()?));
        };
        Some(Next::At(at(
            c.year(),
            c.month(),
            c.day(),
            c.hour(),
            c.minute(),
            s as i8,
        )?))
    }

    /// The first elapse strictly after `after`, in `tz` (the spec's own zone, resolved by the
    /// caller, or local time), as `systemd-analyze calendar --base-time=after` prints it. A
    /// skipped civil time never elapses. A repeated one (the hour a fall-back repeats) elapses
    /// in its first pass, unless `after` lies in the second pass of that same repetition: then
    /// in its second. systemd converts local times with glibc's `mktime` and `tm_isdst = -1`,
    /// which resolves a repeated time to the offset of the time it converted last: the base's
    /// own when the base is in the repetition, else the one before the change.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        self.next(after, tz, true)
    }

    /// [`Self::next_after`]; with `base_decides` false, a repeated civil time always resolves to
    /// its first pass (the elapses of a timer running across the change, whatever `after` is).
    fn next(&self, after: Timestamp, tz: &TimeZone, base_decides: bool) -> Option<Timestamp> {
        let start = after.checked_add(1.second()).ok()?;
        // systemd's base is `after` and a microsecond; within a repetition its offset decides.
        let base = after.checked_add(1.microsecond()).ok()?;
        let base_offset = tz.to_offset(base);
        let mut c = start
            .to_zoned(tz.clone())
            .datetime()
            .with()
            .subsec_nanosecond(0)
            .build()
            .ok()?;
        loop {
            let civil = self.next_civil(c)?;
            let ts = match tz.to_ambiguous_timestamp(civil).offset() {
                AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(civil).ok(),
                AmbiguousOffset::Fold {
                    before,
                    after: later,
                } => {
                    // The second pass when the base is in the second pass of this same fold:
                    // on its later offset and less than the fold's length before this elapse.
                    let fold = jiff::SignedDuration::from_secs(i64::from(
                        before.seconds() - later.seconds(),
                    ));
                    match later.to_timestamp(civil) {
                        Ok(second)
                            if base_decides
                                && base_offset == later
                                && second.duration_since(base) < fold =>
                        {
                            Some(second)
                        }
                        _ => before.to_timestamp(civil).ok(),
                    }
                }
                AmbiguousOffset::Gap { .. } => None,
            };
            match ts {
                Some(ts) if ts > after => return Some(ts),
                _ => c = civil.checked_add(1.second()).ok()?,
            }
        }
    }

    /// Whether a window of `duration` that opens at each elapse is open at `now`: some elapse
    /// lies in `(now - duration, now]`. Returns when it closes. The elapses are those of a timer
    /// that has been running across every DST change: a repeated civil time opens the window
    /// once, in its first pass, even where `systemd-analyze calendar` from a base inside the
    /// repetition's second pass names the second (a timer started there would fire then; one
    /// running through the night fired in the first pass and does not fire again).
    pub fn open_window(
        &self,
        now: Timestamp,
        duration: jiff::SignedDuration,
        tz: &TimeZone,
    ) -> Option<Timestamp> {
        let from = now.checked_sub(duration).ok()?;
        let opened = self.next(from, tz, false)?;
        (opened <= now)
            .then(|| opened.checked_add(duration).ok())
            .flatten()
    }
}

/// A step of the search for the next elapse: a match, or where to look again.
enum Next {
    /// It matches.
    At(DateTime),
    /// Look again from here.
    From(DateTime),
}

/// The civil time of these components, if it exists.
fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8) -> Option<DateTime> {
    DateTime::new(y, mo, d, h, mi, s, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        format!("{s}Z").parse().unwrap()
    }

    #[test]
    fn parses_what_systemd_parses_and_refuses_the_rest() {
        for (text, ok) in [
            ("Sat 02:00", true),
            ("Mon..Fri *-*-* 23:55:00", true),
            ("Mon-Fri", true),
            ("*-*~01", true),
            ("quarterly", true),
            ("26-12-24 8:00", true),
            ("*:0/20", true),
            ("Sat 02:00 Europe/Berlin", true),
            ("*-*-* 02:30 UTC", true),
            ("", false),
            ("*:*/20", false),         // systemd too: a repetition needs a start
            ("Sat..Mon 10:00", false), // no wrapping ranges
            ("*-*-* 24:00", false),
            ("*-13-01", false),
            ("*:*:1.5", false), // fractional seconds: not supported here
            ("Someday", false),
            ("12:00 13:00", false),
        ] {
            assert_eq!(
                CalendarSpec::parse(text).is_ok(),
                ok,
                "{text}: {:?}",
                CalendarSpec::parse(text)
            );
        }
    }

    #[test]
    fn elapses_in_utc() {
        let tz = TimeZone::UTC;
        for (text, base, next) in [
            ("Sat 02:00", "2026-12-05T02:00:00", "2026-12-12T02:00:00"),
            ("*-*~01", "2026-12-01T00:00:00", "2026-12-31T00:00:00"),
            ("*-02~03", "2026-12-01T00:00:00", "2027-02-26T00:00:00"),
            ("Fri *-*-13", "2026-12-01T00:00:00", "2027-08-13T00:00:00"),
            ("*-*-1..20/10", "2026-12-01T00:00:00", "2026-12-11T00:00:00"),
        ] {
            let s = CalendarSpec::parse(text).unwrap();
            assert_eq!(s.next_after(utc(base), &tz), Some(utc(next)), "{text}");
        }
        assert_eq!(
            CalendarSpec::parse("*-02-30")
                .unwrap()
                .next_after(utc("2026-12-01T00:00:00"), &tz),
            None
        );
    }

    #[test]
    fn windows_open_for_their_duration() {
        let tz = TimeZone::UTC;
        let s = CalendarSpec::parse("Sat 02:00").unwrap();
        let two_h = jiff::SignedDuration::from_hours(2);
        assert_eq!(
            s.open_window(utc("2026-12-05T02:00:00"), two_h, &tz),
            Some(utc("2026-12-05T04:00:00"))
        );
        assert_eq!(
            s.open_window(utc("2026-12-05T03:59:59"), two_h, &tz),
            Some(utc("2026-12-05T04:00:00"))
        );
        assert_eq!(s.open_window(utc("2026-12-05T04:00:00"), two_h, &tz), None);
        assert_eq!(s.open_window(utc("2026-12-05T01:59:59"), two_h, &tz), None);
    }
}
