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

#[cfg(test)]
mod tests {
    use super::*;

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
