//! HTML character references, by number or by name, as a browser reads
//! them.

use super::*;

/// The most digits of a numeric character reference that are read,
/// leading zeros included (`&#x0000000024;`): a browser reads any number,
/// but a bound keeps each step of a walk short.
pub(super) const MAX_REFERENCE_DIGITS: usize = 32;

/// What an HTML character reference at the start of `text` spells, and
/// its length, as a browser reads it: by number, `;` or not (the digits
/// run as far as they go), or by name (see [`NAMED_REFERENCES`]).
pub(super) fn html_escape(text: &[u8]) -> Option<(Spelled, usize)> {
    if text.get(1) != Some(&b'#') {
        return named_reference(text);
    }
    let (radix, from) = match text.get(2) {
        Some(b'x' | b'X') => (16, 3),
        _ => (10, 2),
    };
    let (mut value, mut end) = (0u32, from);
    while let Some(digit) = text.get(end).and_then(|&d| char::from(d).to_digit(radix)) {
        if end - from == MAX_REFERENCE_DIGITS {
            return None;
        }
        value = value.saturating_mul(radix).saturating_add(digit);
        end += 1;
    }
    if end == from {
        return None;
    }
    let len = end + usize::from(text.get(end) == Some(&b';'));
    Some((stands_for(value)?, len))
}

/// The longest name in [`NAMED_REFERENCES`] (`NegativeVeryThinSpace`) is
/// shorter than this.
const MAX_NAME: usize = 24;

/// A named reference at the start of `text` (`&dollar;`), or a legacy one
/// without its `;` (`&amp`), with its length.
fn named_reference(text: &[u8]) -> Option<(Spelled, usize)> {
    let mut len = 0;
    while len < MAX_NAME && text.get(1 + len).is_some_and(u8::is_ascii_alphanumeric) {
        len += 1;
    }
    let name = &text[1..1 + len];
    if text.get(1 + len) == Some(&b';') {
        let named = NAMED_REFERENCES.binary_search_by(|(n, _)| n.as_bytes().cmp(name));
        if let Ok(at) = named {
            return Some((NAMED_REFERENCES[at].1, len + 2));
        }
    }
    // A browser reads these at the start of a longer word too (`&ampx` is
    // `&x`).
    LEGACY_REFERENCES
        .iter()
        .find(|(legacy, _)| name.starts_with(legacy.as_bytes()))
        .map(|&(legacy, value)| (value, legacy.len() + 1))
}

/// Every name of the WHATWG list (the HTML standard's `entities.json`)
/// that stands for a printable ASCII character; the names of what reads as
/// one (`&nbsp;`, `&hyphen;`, `&tilde;`, see [`stands_for`]); and those of
/// the [`INVISIBLE`] characters; sorted by their bytes, to be searched.
/// Names are case-sensitive (`&QUOT;` is one, `&Quot;` is not). `&fjlig;`
/// (two characters, `fj`) is not read.
pub(super) const NAMED_REFERENCES: &[(&str, Spelled)] = &[
    ("AMP", Spelled::Byte(b'&')),
    ("ApplyFunction", Spelled::Invisible),
    ("DiacriticalGrave", Spelled::Byte(b'`')),
    ("DiacriticalTilde", Spelled::Byte(b'~')),
    ("GT", Spelled::Byte(b'>')),
    ("Hat", Spelled::Byte(b'^')),
    ("InvisibleComma", Spelled::Invisible),
    ("InvisibleTimes", Spelled::Invisible),
    ("LT", Spelled::Byte(b'<')),
    ("NegativeMediumSpace", Spelled::Invisible),
    ("NegativeThickSpace", Spelled::Invisible),
    ("NegativeThinSpace", Spelled::Invisible),
    ("NegativeVeryThinSpace", Spelled::Invisible),
    ("NoBreak", Spelled::Invisible),
    ("NonBreakingSpace", Spelled::Byte(b' ')),
    ("QUOT", Spelled::Byte(b'"')),
    ("UnderBar", Spelled::Byte(b'_')),
    ("VerticalLine", Spelled::Byte(b'|')),
    ("ZeroWidthSpace", Spelled::Invisible),
    ("af", Spelled::Invisible),
    ("amp", Spelled::Byte(b'&')),
    ("apos", Spelled::Byte(b'\'')),
    ("ast", Spelled::Byte(b'*')),
    ("bsol", Spelled::Byte(b'\\')),
    ("colon", Spelled::Byte(b':')),
    ("comma", Spelled::Byte(b',')),
    ("commat", Spelled::Byte(b'@')),
    ("dash", Spelled::Byte(b'-')),
    ("dollar", Spelled::Byte(b'$')),
    ("equals", Spelled::Byte(b'=')),
    ("excl", Spelled::Byte(b'!')),
    ("grave", Spelled::Byte(b'`')),
    ("gt", Spelled::Byte(b'>')),
    ("hyphen", Spelled::Byte(b'-')),
    ("ic", Spelled::Invisible),
    ("it", Spelled::Invisible),
    ("lbrace", Spelled::Byte(b'{')),
    ("lbrack", Spelled::Byte(b'[')),
    ("lcub", Spelled::Byte(b'{')),
    ("lowbar", Spelled::Byte(b'_')),
    ("lpar", Spelled::Byte(b'(')),
    ("lrm", Spelled::Invisible),
    ("lsqb", Spelled::Byte(b'[')),
    ("lt", Spelled::Byte(b'<')),
    ("midast", Spelled::Byte(b'*')),
    ("nbsp", Spelled::Byte(b' ')),
    ("num", Spelled::Byte(b'#')),
    ("percnt", Spelled::Byte(b'%')),
    ("period", Spelled::Byte(b'.')),
    ("plus", Spelled::Byte(b'+')),
    ("quest", Spelled::Byte(b'?')),
    ("quot", Spelled::Byte(b'"')),
    ("rbrace", Spelled::Byte(b'}')),
    ("rbrack", Spelled::Byte(b']')),
    ("rcub", Spelled::Byte(b'}')),
    ("rlm", Spelled::Invisible),
    ("rpar", Spelled::Byte(b')')),
    ("rsqb", Spelled::Byte(b']')),
    ("semi", Spelled::Byte(b';')),
    ("shy", Spelled::Invisible),
    ("sol", Spelled::Byte(b'/')),
    ("tilde", Spelled::Byte(b'~')),
    ("verbar", Spelled::Byte(b'|')),
    ("vert", Spelled::Byte(b'|')),
    ("zwj", Spelled::Invisible),
    ("zwnj", Spelled::Invisible),
];

/// The names of [`NAMED_REFERENCES`] that browsers read without their `;`
/// (the legacy ones of the WHATWG list).
const LEGACY_REFERENCES: &[(&str, Spelled)] = &[
    ("amp", Spelled::Byte(b'&')),
    ("AMP", Spelled::Byte(b'&')),
    ("lt", Spelled::Byte(b'<')),
    ("LT", Spelled::Byte(b'<')),
    ("gt", Spelled::Byte(b'>')),
    ("GT", Spelled::Byte(b'>')),
    ("quot", Spelled::Byte(b'"')),
    ("QUOT", Spelled::Byte(b'"')),
    ("nbsp", Spelled::Byte(b' ')),
    ("shy", Spelled::Invisible),
];
