//! Names from Redis as they may be printed.

use std::borrow::Cow;

/// A name or message as it may be printed: control characters (an escape sequence, a
/// newline) are shown escaped, so no consumer name can forge output.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The longest name a table shows in full (`status --json` and the journal's fields keep it).
pub const NAME_MAX: usize = 120;

/// A name from Redis for a table: [`printable`], and one longer than [`NAME_MAX`] characters
/// cut with its length said, so a 5 000-character consumer name cannot flood the screen.
pub fn printable_name(s: &str) -> Cow<'_, str> {
    let p = printable(s);
    if p.chars().count() <= NAME_MAX {
        return p;
    }
    let head: String = p.chars().take(NAME_MAX).collect();
    Cow::Owned(format!("{head}…({} bytes)", s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_for_tables() {
        let long = "c".repeat(5000);
        let shown = printable_name(&long);
        assert_eq!(
            shown.chars().count(),
            NAME_MAX + "…(5000 bytes)".chars().count()
        );
        assert!(shown.ends_with("…(5000 bytes)"));
        assert_eq!(printable_name("execution-h-1"), "execution-h-1");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("execution-h-1"), "execution-h-1");
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(
            printable("x\nquantum-a.service HEALTHY"),
            "x\\nquantum-a.service HEALTHY"
        );
        assert_eq!(printable("tab\there"), "tab\\there");
        assert_eq!(printable("é ü 中"), "é ü 中", "printable non-ASCII stays");
    }
}
