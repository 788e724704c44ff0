//! Text from a server or a file, made safe to show: the one escaping
//! function for the terminal and the report. A server's message or a cell
//! may hold any character; the ones that act instead of showing (ESC
//! sequences, BEL), turn text around (U+202E) or hide (U+200B) are written
//! as `\u{..}`, so that nothing can forge, hide or reorder a line.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` acts on the terminal or the reader instead of showing:
/// control characters (C0, DEL, C1), the marks that set the direction of
/// text, and the characters that take no width or show as nothing: every
/// Default_Ignorable_Code_Point of Unicode (the Hangul fillers, variation
/// selectors, tags and the reserved ignorable ranges...), the Egyptian
/// hieroglyph format controls (no width without their font), the Braille
/// blank and the object replacement character.
///
/// Only for display: a variation selector after an emoji (U+FE0F) is
/// written as `\u{fe0f}` too, which costs a message its colour, not its
/// meaning.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'..='\u{1160}'
                | '\u{17b4}'..='\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff0}'..='\u{fffc}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{16fe4}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d159}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

/// The first `max` characters of `text`, when it has more: the one place
/// that cuts text short for a message.
pub fn prefix(text: &str, max: usize) -> Option<&str> {
    text.char_indices().nth(max).map(|(end, _)| &text[..end])
}

/// `text`, cut to `max` characters with an ellipsis.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    match prefix(text, max) {
        Some(prefix) => Cow::Owned(format!("{prefix}…")),
        None => Cow::Borrowed(text),
    }
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

    #[test]
    fn what_shows_as_nothing_is_shown_as_its_code() {
        let blank = [
            '\u{3164}',
            '\u{115f}',
            '\u{1160}',
            '\u{ffa0}',
            '\u{fe00}',
            '\u{fe0f}',
            '\u{e0100}',
            '\u{e01ef}',
            '\u{e0000}',
            '\u{e0001}',
            '\u{e0041}',
            '\u{e007f}',
            '\u{034f}',
            '\u{2800}',
            '\u{1d159}',
            '\u{1d173}',
            '\u{1d17a}',
            '\u{17b4}',
            '\u{17b5}',
            '\u{fffc}',
        ];
        for c in blank {
            assert!(hidden(c), "U+{:04X}", u32::from(c));
            let text = format!("ok{c}ok");
            assert_eq!(
                visible(&text),
                format!("ok\\u{{{:x}}}ok", u32::from(c)),
                "U+{:04X}",
                u32::from(c)
            );
        }
        // Their neighbours show, as does text around them.
        for c in [
            '\u{3163}',
            '\u{3165}',
            '\u{1161}',
            '\u{ff9f}',
            '\u{ffa1}',
            '\u{fdff}',
            '\u{fe10}',
            '\u{e1000}',
            '\u{034e}',
            '\u{2801}',
            '\u{1d15a}',
            '\u{1d172}',
            '\u{1d17b}',
            '\u{17b6}',
            '\u{fffd}',
            '😀',
            '한',
        ] {
            assert!(!hidden(c), "U+{:04X}", u32::from(c));
        }
        // A heart with its emoji selector: the selector is written out.
        assert_eq!(visible("I \u{2764}\u{fe0f} it"), "I \u{2764}\\u{fe0f} it");
    }
}
