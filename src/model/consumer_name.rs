//! Consumer name templates: `execution-{hostname}-{pid}`, `router-{unit}`, or a fixed name.
//!
//! A template renders the name a unit's current process reads under, and matches the names
//! found in a group to tell which process (if any) a consumer belongs to.

use std::fmt;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Hostname,
    Pid,
    Unit,
}

/// A parsed consumer name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A placeholder other than `{hostname}`, `{pid}`, `{unit}`.
    #[error("unknown placeholder {{{0}}}: expected {{hostname}}, {{pid}} or {{unit}}")]
    Unknown(String),
    /// `{` without `}`, or `}` alone.
    #[error("unbalanced brace in {0:?}")]
    Unbalanced(String),
    /// `{pid}` twice: a name could not tell which.
    #[error("{{pid}} may appear at most once")]
    PidTwice,
    /// Nothing at all.
    #[error("expected a non-empty consumer name template")]
    Empty,
}

/// What a consumer name says about the process that owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameMatch {
    /// The template has no `{pid}` and the name equals it: the unit's one consumer.
    Fixed,
    /// The name carries this PID, for this host and unit.
    Pid(u32),
    /// The name does not fit the template for this host (another host, another program).
    NoMatch,
}

impl Template {
    /// Parses `execution-{hostname}-{pid}`-style text.
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        if s.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(i) = rest.find(['{', '}']) {
            if rest.as_bytes()[i] == b'}' {
                return Err(TemplateError::Unbalanced(s.to_string()));
            }
            lit.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError::Unbalanced(s.to_string()))?;
            let name = &after[..end];
            let part = match name {
                "hostname" => Part::Hostname,
                "pid" => Part::Pid,
                "unit" => Part::Unit,
                other => return Err(TemplateError::Unknown(other.to_string())),
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = &after[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        if parts.iter().filter(|p| **p == Part::Pid).count() > 1 {
            return Err(TemplateError::PidTwice);
        }
        Ok(Template {
            source: s.to_string(),
            parts,
        })
    }

    /// The name carries a PID.
    pub fn has_pid(&self) -> bool {
        self.parts.contains(&Part::Pid)
    }

    /// The name the unit's process reads under. `None` when the template needs a PID and the
    /// unit has none (MainPID 0).
    pub fn render(&self, hostname: &str, pid: u32, unit: &str) -> Option<String> {
        if self.has_pid() && pid == 0 {
            return None;
        }
        let len = |p: &Part| match p {
            Part::Lit(l) => l.len(),
            Part::Hostname => hostname.len(),
            Part::Pid => 10,
            Part::Unit => unit.len(),
        };
        // One allocation: the longest a PID can be is ten digits.
        let mut out = String::with_capacity(self.parts.iter().map(len).sum());
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Hostname => out.push_str(hostname),
                Part::Pid => {
                    use std::fmt::Write;
                    let _ = write!(out, "{pid}");
                }
                Part::Unit => out.push_str(unit),
            }
        }
        Some(out)
    }

    /// Whether `name` is a consumer of this template on this host, and which PID it carries.
    pub fn matches(&self, name: &str, hostname: &str, unit: &str) -> NameMatch {
        let mut m = Matched::default();
        if match_parts(&self.parts, name, Host::Is(hostname), unit, &mut m) {
            m.name_match()
        } else {
            NameMatch::NoMatch
        }
    }

    /// Whether `name` is a consumer of this template on one of the hosts `is_host` accepts:
    /// that host, and what the name says. `None` if the template has no `{hostname}`.
    pub fn matches_some_host<'n>(
        &self,
        name: &'n str,
        unit: &str,
        is_host: &dyn Fn(&str) -> bool,
    ) -> Option<(&'n str, NameMatch)> {
        if !self.parts.contains(&Part::Hostname) {
            return None;
        }
        let mut m = Matched::default();
        match_parts(&self.parts, name, Host::OneOf(is_host), unit, &mut m).then_some(())?;
        Some((m.host?, m.name_match()))
    }
}

/// Which host names a `{hostname}` accepts.
#[derive(Clone, Copy)]
enum Host<'a> {
    /// Exactly this one.
    Is(&'a str),
    /// Any the function accepts.
    OneOf(&'a dyn Fn(&str) -> bool),
}

/// What a match found.
#[derive(Default)]
struct Matched<'n> {
    pid: Option<u32>,
    host: Option<&'n str>,
}

impl Matched<'_> {
    fn name_match(&self) -> NameMatch {
        match self.pid {
            Some(p) => NameMatch::Pid(p),
            None => NameMatch::Fixed,
        }
    }
}

/// The largest PID Linux can give (`PID_MAX_LIMIT` on 64-bit; `pid_max` cannot exceed it): a
/// number above it in a name is not a PID of this host, so it proves nothing about liveness.
pub const PID_MAX_LIMIT: u32 = 4_194_304;

fn match_parts<'n>(
    parts: &[Part],
    s: &'n str,
    host: Host<'_>,
    unit: &str,
    m: &mut Matched<'n>,
) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return s.is_empty();
    };
    let fixed = match (first, host) {
        (Part::Lit(l), _) => l.as_str(),
        (Part::Hostname, Host::Is(h)) => h,
        (Part::Unit, _) => unit,
        (Part::Hostname, Host::OneOf(accepts)) => {
            return match_host(rest, s, accepts, host, unit, m);
        }
        (Part::Pid, _) => return match_pid(rest, s, host, unit, m),
    };
    s.strip_prefix(fixed)
        .is_some_and(|tail| match_parts(rest, tail, host, unit, m))
}

/// `{hostname}` against any accepted host: matches only if exactly one accepted host lets
/// the rest match (`exec-{hostname}{pid}` reads `exec-web123` as web1's 23 or web12's 3:
/// no reading).
fn match_host<'n>(
    rest: &[Part],
    s: &'n str,
    accepts: &dyn Fn(&str) -> bool,
    host: Host<'_>,
    unit: &str,
    m: &mut Matched<'n>,
) -> bool {
    let mut found: Option<Matched<'n>> = None;
    for n in (1..=s.len()).filter(|&n| s.is_char_boundary(n)) {
        let mut tail = Matched::default();
        if accepts(&s[..n]) && match_parts(rest, &s[n..], host, unit, &mut tail) {
            if found.is_some() {
                return false;
            }
            tail.host = Some(&s[..n]);
            found = Some(tail);
        }
    }
    let Some(f) = found else {
        return false;
    };
    m.pid = f.pid.or(m.pid);
    m.host = f.host;
    true
}

/// `{pid}`: 1 ..= PID_MAX_LIMIT, no leading zero; every split is tried (the rest may start
/// with digits too).
fn match_pid<'n>(
    rest: &[Part],
    s: &'n str,
    host: Host<'_>,
    unit: &str,
    m: &mut Matched<'n>,
) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count().min(7);
    if digits == 0 || s.starts_with('0') {
        return false;
    }
    for n in (1..=digits).rev() {
        if let Ok(p) = s[..n].parse::<u32>()
            && p <= PID_MAX_LIMIT
            && match_parts(rest, &s[n..], host, unit, m)
        {
            m.pid = Some(p);
            return true;
        }
    }
    false
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_table() {
        let cases = [
            (
                "execution-{hostname}-{pid}",
                3933260,
                "execution-quantumtrader-prod-1-3933260",
            ),
            ("router-{unit}", 0, "router-quantum-router.service"),
            ("fixed", 7, "fixed"),
            ("{pid}", 42, "42"),
        ];
        for (t, pid, want) in cases {
            let t = Template::parse(t).unwrap();
            assert_eq!(
                t.render("quantumtrader-prod-1", pid, "quantum-router.service")
                    .as_deref(),
                Some(want)
            );
        }
        let t = Template::parse("x-{pid}").unwrap();
        assert_eq!(t.render("h", 0, "u"), None, "no PID, no name");
    }

    #[test]
    fn match_table() {
        let host = "quantumtrader-prod-1";
        let unit = "quantum-execution.service";
        let cases: &[(&str, &str, NameMatch)] = &[
            (
                "execution-{hostname}-{pid}",
                "execution-quantumtrader-prod-1-3493769",
                NameMatch::Pid(3493769),
            ),
            (
                "execution-{hostname}-{pid}",
                "execution-quantumtrader-prod-2-3493769",
                NameMatch::NoMatch,
            ),
            (
                "execution-{hostname}-{pid}",
                "execution-quantumtrader-prod-1-",
                NameMatch::NoMatch,
            ),
            (
                "execution-{hostname}-{pid}",
                "execution-quantumtrader-prod-1-12a",
                NameMatch::NoMatch,
            ),
            (
                "execution-{hostname}-{pid}",
                "execution-quantumtrader-prod-1-0",
                NameMatch::NoMatch,
            ),
            (
                "execution-{hostname}-{pid}",
                "execution-quantumtrader-prod-1-99999999999",
                NameMatch::NoMatch,
            ),
            (
                "execution-{hostname}-{pid}",
                "recover-1234",
                NameMatch::NoMatch,
            ),
            // No Linux PID is above PID_MAX_LIMIT: such a name is of unknown liveness.
            ("a-{pid}", "a-4194304", NameMatch::Pid(4_194_304)),
            ("a-{pid}", "a-4194305", NameMatch::NoMatch),
            ("a-{pid}", "a-2147483648", NameMatch::NoMatch),
            ("a-{pid}", "a-3000000000", NameMatch::NoMatch),
            ("a-{pid}", "a-4294967295", NameMatch::NoMatch),
            ("a-{pid}", "a-42949672950", NameMatch::NoMatch),
            ("{pid}-{pid2}", "1-2", NameMatch::NoMatch),
            ("w{pid}7", "w12347", NameMatch::Pid(1234)),
            (
                "{unit}:{pid}",
                "quantum-execution.service:88",
                NameMatch::Pid(88),
            ),
            ("router", "router", NameMatch::Fixed),
            ("router", "router-2", NameMatch::NoMatch),
        ];
        for (t, name, want) in cases {
            let Ok(tpl) = Template::parse(t) else {
                assert_eq!(*want, NameMatch::NoMatch);
                continue;
            };
            assert_eq!(tpl.matches(name, host, unit), *want, "{t} ~ {name}");
        }
    }

    #[test]
    fn round_trip() {
        let t = Template::parse("exec-{hostname}-{pid}-{unit}").unwrap();
        for pid in [1u32, 9, 10, 4_194_304, u32::MAX] {
            let n = t.render("h-1", pid, "u.service").unwrap();
            let want = if pid <= PID_MAX_LIMIT {
                NameMatch::Pid(pid)
            } else {
                NameMatch::NoMatch
            };
            assert_eq!(t.matches(&n, "h-1", "u.service"), want, "{n}");
        }
    }

    #[test]
    fn other_hosts_are_told_from_the_name() {
        let t = Template::parse("execution-{hostname}-{pid}").unwrap();
        let fleet = ["qt-prod-1", "qt-prod-12", "qt"];
        let known = |h: &str| fleet.contains(&h);
        let cases = [
            (
                "execution-qt-prod-1-77",
                Some(("qt-prod-1", NameMatch::Pid(77))),
            ),
            (
                "execution-qt-prod-12-77",
                Some(("qt-prod-12", NameMatch::Pid(77))),
            ),
            // "qt-prod-1" + "2-77"? No: "-{pid}" must follow the host.
            ("execution-qt-77", Some(("qt", NameMatch::Pid(77)))),
            ("execution-qt-prod-3-77", None),
            ("execution-qt-prod-1-0", None),
            ("router-qt-prod-1-77", None),
            ("execution-qt-prod-1-\u{7}-77", None),
        ];
        for (name, want) in cases {
            assert_eq!(t.matches_some_host(name, "u", &known), want, "{name}");
        }
        // Two hosts read it: web1's 23, web12's 3 — no reading at all.
        let glued = Template::parse("exec-{hostname}{pid}").unwrap();
        let webs = |h: &str| h == "web1" || h == "web12";
        assert_eq!(glued.matches_some_host("exec-web123", "u", &webs), None);
        assert_eq!(
            glued.matches_some_host("exec-web1x", "u", &webs),
            None,
            "no PID"
        );
        let fixed = Template::parse("router-{pid}").unwrap();
        assert_eq!(
            fixed.matches_some_host("router-7", "u", &known),
            None,
            "no host in it"
        );
        let both = Template::parse("{hostname}:{unit}").unwrap();
        assert_eq!(
            both.matches_some_host("qt:u.service", "u.service", &known),
            Some(("qt", NameMatch::Fixed))
        );
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Template::parse("a-{host}"),
            Err(TemplateError::Unknown("host".into()))
        );
        assert!(matches!(
            Template::parse("a-{pid"),
            Err(TemplateError::Unbalanced(_))
        ));
        assert!(matches!(
            Template::parse("a-}"),
            Err(TemplateError::Unbalanced(_))
        ));
        assert_eq!(Template::parse("{pid}{pid}"), Err(TemplateError::PidTwice));
        assert_eq!(Template::parse(""), Err(TemplateError::Empty));
    }
}
