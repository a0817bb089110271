//! What the terminal may be sent: colours and screen control only where a person reads.

/// Whether text for stdout may carry colours: only on a terminal, never with `NO_COLOR` set to
/// anything but the empty string (no-color.org), never with `TERM=dumb`.
pub fn colors(tty: bool, no_color: Option<&str>, term: Option<&str>) -> bool {
    tty && no_color.is_none_or(str::is_empty) && term != Some("dumb")
}

/// Whether `status --watch` may clear the screen between looks: on a terminal that is not
/// `dumb`. Into a pipe or a file each look is only appended.
pub fn may_clear(tty: bool, term: Option<&str>) -> bool {
    tty && term != Some("dumb")
}

/// One look of `status --watch`: the screen cleared first where [`may_clear`] allows it,
/// else the look after a separating line with its time.
pub fn watch_frame(text: &str, clear: bool, at: &str) -> String {
    if clear {
        format!("\x1b[H\x1b[2J{text}")
    } else {
        format!("--- {at}\n{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_clearing_only_where_a_person_reads() {
        let cases = [
            (true, None, Some("xterm-256color"), true, true),
            (true, Some(""), Some("xterm"), true, true),
            (true, Some("1"), Some("xterm"), false, true),
            (true, None, Some("dumb"), false, false),
            (true, None, None, true, true),
            (false, None, Some("xterm"), false, false),
        ];
        for (tty, no_color, term, want_colors, want_clear) in cases {
            assert_eq!(
                colors(tty, no_color, term),
                want_colors,
                "{tty} {no_color:?} {term:?}"
            );
            assert_eq!(may_clear(tty, term), want_clear, "{tty} {term:?}");
        }
        assert_eq!(watch_frame("x\n", true, "t"), "\x1b[H\x1b[2Jx\n");
        assert_eq!(watch_frame("x\n", false, "12:00:00"), "--- 12:00:00\nx\n");
    }
}
