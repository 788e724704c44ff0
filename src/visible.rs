//! Text from a server or a file, made safe to show: the one escaping
//! function for the terminal and the report. A server's message or a cell
//! may hold any character; the ones that act instead of showing (ESC
//! sequences, BEL), turn text around (U+202E) or hide (U+200B) are written
//! as `\u{..}`, so that nothing can forge, hide or reorder a line.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` acts on the terminal or the reader instead of showing:
/// control characters (C0, DEL, C1), the marks that set the direction of
/// text, and the characters that take no width.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{180e}'
                | '\u{00ad}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

/// `text` on one line with every [`hidden`] character written as
/// `\u{1b}`; line breaks and tabs become spaces. Borrowed when nothing is
/// hidden.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => shown.push(' '),
            c if hidden(c) => {
                let _ = write!(shown, "\\u{{{:x}}}", u32::from(c));
            }
            c => shown.push(c),
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_acts_on_the_terminal_is_shown_not_done() {
        let cases = [
            ("plain text, é, 名前", "plain text, é, 名前"),
            ("\u{1b}[2Jcleared\u{7}", "\\u{1b}[2Jcleared\\u{7}"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            ("zero\u{200b}width\u{feff}", "zero\\u{200b}width\\u{feff}"),
            ("two\nlines\tand tab", "two lines and tab"),
            ("c1 \u{9b}31m", "c1 \\u{9b}31m"),
        ];
        for (text, want) in cases {
            assert_eq!(visible(text), want, "{text:?}");
        }
        assert!(matches!(visible("clean"), Cow::Borrowed(_)));
    }
}
