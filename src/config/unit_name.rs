//! Unit names as systemd accepts them.

/// The unit types systemd knows.
const UNIT_SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// Checks a `units` pattern: the characters of unit names and the globs `* ? [...]`, every
/// `[` closed. A pattern that no unit name could match (`"["`, `"quantum *"`) is a mistake.
pub fn check_unit_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > 255 {
        return Err("expected a unit name pattern of 1 to 255 bytes".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || ":_.\\-@*?[]!^".contains(c);
    if let Some(c) = p.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "{c:?} cannot be in a unit name; expected letters, digits, :_.\\-@ and the globs * ? [...]"
        ));
    }
    let mut open = false;
    let mut first = false;
    for c in p.chars() {
        match c {
            '[' if !open => (open, first) = (true, true),
            ']' if open && !first => open = false,
            _ => first = first && matches!(c, '!' | '^'),
        }
    }
    if open {
        return Err("a [ without its ]".into());
    }
    Ok(())
}

/// Checks a unit name as systemd does (`unit_name_is_valid`): at most 255 bytes, a known
/// suffix, only `[A-Za-z0-9:_.\\-]` and one `@` with an instance (a template is not a unit).
pub fn check_unit_name(name: &str) -> Result<(), String> {
    if name.len() > 255 {
        return Err("longer than 255 bytes".into());
    }
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return Err("no unit type suffix".into());
    };
    if !UNIT_SUFFIXES.contains(&suffix) {
        return Err(format!("unknown unit type .{suffix}"));
    }
    if stem.is_empty() {
        return Err("empty name".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || ":_.\\-".contains(c);
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, Some(i)),
        None => (stem, None),
    };
    if prefix.is_empty() || !prefix.chars().all(allowed) {
        return Err("only letters, digits and :_.\\- are allowed".into());
    }
    match instance {
        Some("") => Err("a template (name@.type) is not a unit; name an instance".into()),
        Some(i) if !i.chars().all(|c| allowed(c) || c == '@') => {
            Err("only letters, digits and :_.\\-@ are allowed in an instance".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_patterns() {
        for (p, ok) in [
            ("quantum-*.service", true),
            ("quantum-[a-z]?.service", true),
            ("quantum-[!x]*", true),
            ("*", true),
            ("[", false),
            ("quantum-[.service", false),
            ("quantum *.service", false),
            ("quantum-\u{1b}.service", false),
            ("", false),
        ] {
            assert_eq!(check_unit_pattern(p).is_ok(), ok, "{p}");
        }
    }

    #[test]
    fn unit_names_are_checked_as_systemd_does() {
        for ok in [
            "quantum-x.service",
            "a@b.service",
            "a:b_c.d-e.timer",
            "x@y@z.service",
        ] {
            assert_eq!(check_unit_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "quantum-x",
            "quantum-x.srvice",
            ".service",
            "a@.service",
            "a b.service",
            "a/b.service",
            "quantum-*.service",
            "q\u{1b}.service",
            &format!("{}.service", "a".repeat(250)),
        ] {
            assert!(check_unit_name(bad).is_err(), "{bad:?}");
        }
    }
}
