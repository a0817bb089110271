//! Human durations (`90s`, `5m`, `1h 30m`), at most [`MAX_DURATION`].

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// The longest duration any key accepts: longer ones are surely a mistake, and every
/// duration must stay far from overflowing when added to the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A human duration (`90s`, `5m`, `1h`, `1h 30m`), serialised back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// In milliseconds.
    pub fn as_millis(&self) -> u64 {
        self.0.as_millis() as u64
    }
    /// In microseconds.
    pub fn as_micros(&self) -> u64 {
        self.0.as_micros() as u64
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"90s\", \"5m\" or \"1h\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                parse_duration(s).map(HumanDuration).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A duration as configuration writes it: `90s` is `1m 30s`, `1h` is `1h`.
pub fn format_duration(d: Duration) -> String {
    match jiff::SignedDuration::try_from(d) {
        Ok(s) => format!("{s:#}"),
        Err(_) => format!("{}s", d.as_secs()),
    }
}

/// A month and a year of a duration: fixed lengths (30.44 and 365.25 days), as configurations
/// written before have them.
const MONTH_SECS: i128 = 2_630_016;
const YEAR_SECS: i128 = 31_557_600;

/// The length of a span, days of 24 hours and months and years of fixed length: a timeout is
/// no calendar arithmetic. `None` if negative or out of range.
fn span_length(span: jiff::Span) -> Option<Duration> {
    let calendar =
        i128::from(span.get_years()) * YEAR_SECS + i128::from(span.get_months()) * MONTH_SECS;
    let rest = span.years(0).months(0);
    let rest = rest
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .ok()?;
    let nanos = rest
        .as_nanos()
        .checked_add(calendar.checked_mul(1_000_000_000)?)?;
    let nanos = u64::try_from(nanos).ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Parses a human duration; a bare number is rejected (its unit would be a guess).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() || t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "expected a duration with a unit such as \"90s\", \"5m\" or \"1h\", found {s:?}"
        ));
    }
    let wrong = |e: &dyn fmt::Display| {
        format!(
            "expected a duration such as \"90s\", \"5m\" or \"1h\", at most 366 days, found {s:?} ({e})"
        )
    };
    let span: jiff::Span = t.parse().map_err(|e| wrong(&e))?;
    let d = span_length(span).ok_or_else(|| wrong(&"it is negative or too long"))?;
    if d > MAX_DURATION {
        return Err(format!(
            "expected a duration of at most 366 days, found {s:?}"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, secs) in [
            ("90s", 90),
            ("5m", 300),
            ("1h", 3600),
            ("1h 30m", 5400),
            ("1h30m", 5400),
            ("2 days", 172_800),
            ("1w", 604_800),
            ("10min", 600),
            ("1month 13h 26m 24s", 31 * 86_400),
            ("1 year", 31_557_600),
            ("500ms", 0),
            ("366d", 366 * 86_400),
        ] {
            assert_eq!(parse_duration(s).unwrap().as_secs(), secs, "{s}");
        }
        for s in [
            "",
            "5",
            "five minutes",
            "-5s",
            "5s ago",
            "367d",
            "2 years",
            "18446744073710s",
        ] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }
}
