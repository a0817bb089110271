//! Unit name patterns with the shell globs systemd's `ListUnitsByPatterns` accepts
//! (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`), matched the way `fnmatch(3)` does without flags.

/// Whether `name` matches `pattern`. Unit names are ASCII (systemd allows nothing else), so
/// they are matched byte by byte without a copy; anything else character by character.
pub fn matches(pattern: &str, name: &str) -> bool {
    if pattern.is_ascii() && name.is_ascii() {
        return glob(pattern.as_bytes(), name.as_bytes());
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob(&p, &n)
}

/// A pattern or name element: a byte of an ASCII string, or a character.
trait Sym: Copy + PartialOrd {
    fn is(self, c: char) -> bool;
}

impl Sym for u8 {
    fn is(self, c: char) -> bool {
        char::from(self) == c
    }
}

impl Sym for char {
    fn is(self, c: char) -> bool {
        self == c
    }
}

/// The package's own units. `quantum-*.service` matches them too, but they are the watchdog,
/// not the trading system: a pattern never makes them watched (a `[[watch]]` still can).
pub const OWN_UNITS: [&str; 3] = [
    "quantum-watchdog.service",
    "quantum-stream-recover.service",
    "quantum-stream-recover.timer",
];

/// Whether `name` is one of the package's own units ([`OWN_UNITS`]).
pub fn is_own(name: &str) -> bool {
    OWN_UNITS.contains(&name)
}

/// Whether `name` matches any of `patterns`.
pub fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| matches(p, name))
}

fn glob<C: Sym>(p: &[C], n: &[C]) -> bool {
    // Iterative with one backtrack point for the last `*`: linear for typical patterns.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                c if c.is('*') => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                c if c.is('?') => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                c if c.is('[') => {
                    if let Some((ok, len)) = class(&p[pi..], n[ni]) {
                        if ok {
                            pi += len;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni].is('[') {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c.is('\\') && pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c.is('*'))
}

/// Matches `c` against the bracket expression at the start of `p`. Returns whether it matched
/// and the expression's length, or `None` when `[` does not start a valid expression.
fn class<C: Sym>(p: &[C], c: C) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = p.get(i).is_some_and(|x| x.is('!') || x.is('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        let ch = p[i];
        if ch.is(']') && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1].is('-') && !p[i + 2].is(']') {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if ch == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("quantum-*.service", "quantum-execution.service", true),
            ("quantum-*.service", "quantum-.service", true),
            ("quantum-*.service", "quantum-execution.timer", false),
            ("quantum-*.service", "xquantum-a.service", false),
            ("quantum-?.service", "quantum-a.service", true),
            ("quantum-?.service", "quantum-ab.service", false),
            ("quantum-[ae]*.service", "quantum-execution.service", true),
            ("quantum-[!ae]*.service", "quantum-execution.service", false),
            ("quantum-[a-f]x", "quantum-cx", true),
            ("quantum-[a-f]x", "quantum-gx", false),
            ("*", "anything", true),
            ("*-*-*", "a-b-c", true),
            ("*-*-*", "a-b", false),
            ("a[", "a[", true),
            ("exact.service", "exact.service", true),
            ("exact.service", "exact.services", false),
            ("quantum-\\*.service", "quantum-*.service", true),
            ("quantum-\\*.service", "quantum-a.service", false),
            ("ü-*.service", "ü-a.service", true),
            ("quantum-[ü]x", "quantum-üx", true),
            ("quantum-?x", "quantum-üx", true),
        ];
        for (p, n, want) in cases {
            assert_eq!(matches(p, n), want, "{p} ~ {n}");
        }
    }
}
