//! Untrusted text made safe for a terminal.
//!
//! Plugin names, descriptions, outputs, logs and error messages come from
//! plugins (and datasets from users): printed raw, an escape sequence in
//! them is executed by the terminal (colours, cursor moves, window titles,
//! hyperlinks that hide their target). Every place the CLI prints such text
//! goes through [`safe`] or [`safe_line`], which show control characters as
//! visible escapes (`\x1b`) instead.

use std::borrow::Cow;

/// `text` with control characters (C0 but newline and tab, DEL, C1) shown
/// as `\xNN` / `\u{NN}` escapes. Newlines and tabs stay.
pub fn safe(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n' || c == '\t')
}

/// As [`safe`], for one line (a table cell): newlines and tabs are escaped
/// too, so a value cannot break the layout.
pub fn safe_line(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !keep(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !unsafe_char(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_executed() {
        assert_eq!(safe("\u{1b}[31mred\u{1b}[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(
            safe("\u{1b}]8;;http://evil\u{7}link\u{1b}]8;;\u{7}"),
            "\\x1b]8;;http://evil\\x07link\\x1b]8;;\\x07"
        );
        assert_eq!(safe("a\u{9b}31mb\u{7f}"), "a\\x9b31mb\\x7f");
        assert_eq!(safe("bell\u{7}\r"), "bell\\x07\\r");
    }

    #[test]
    fn ordinary_text_is_untouched() {
        let text = "naïve café — 2+2=4\n\tindented ✓";
        assert!(matches!(safe(text), Cow::Borrowed(_)));
        assert_eq!(safe(text), text);
    }

    #[test]
    fn a_line_escapes_newlines_and_tabs_too() {
        assert_eq!(safe_line("a\nb\tc"), "a\\nb\\tc");
    }
}
