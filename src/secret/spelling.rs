//! How a key character may be spelled in a text: as itself, as an escape
//! of a [`Family`] (percent-encoding and JSON here, HTML character
//! references in [`super::html`]), or as an [`INVISIBLE`] character
//! skipped between two of them.

use super::*;

/// How many times over a percent-encoding may have been encoded again
/// (`%2524` for `$` is once more): enough for any server chain, and a
/// bound on the work a run of `%252525...` costs.
const MAX_NESTED_PERCENT: usize = 4;

/// The spellings an echo of a key may come in. Each key character is
/// matched as itself (in either case, for a letter) or as its escape in
/// the family, in any mix, so a server that escapes only some characters
/// (`$` but not `/`) is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    /// Percent-encoding (`%24`, `%2f` or `%2F`; `+` for a space), encoded
    /// again up to [`MAX_NESTED_PERCENT`] times (`%2524`).
    Url,
    /// JSON string escapes (`\"`, `\\`, `\/`, `\u0024`).
    Json,
    /// HTML character references as a browser reads them: by number in
    /// decimal or hexadecimal (`&#36;`, `&#x24;`, with any leading zeros up
    /// to [`MAX_REFERENCE_DIGITS`] digits, `;` or not), or by any of the
    /// WHATWG names of a printable ASCII character (`&dollar;`, `&lowbar;`,
    /// `&QUOT;`...), without the `;` for the legacy names browsers take so
    /// (`&amp`, `&lt`...). See [`NAMED_REFERENCES`].
    Html,
}

/// The bytes an escape of some [`Family`] may start with.
pub(super) const ESCAPES: [u8; 4] = [b'%', b'+', b'\\', b'&'];

/// Whether an escape of some [`Family`] may start with `byte`.
pub(super) fn starts_escape(byte: u8) -> bool {
    ESCAPES.contains(&byte)
}

/// What a spelling in a text stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spelled {
    /// A byte of the key: an ASCII character, or one byte of the UTF-8 of
    /// another (a key's non-ASCII character is matched by its bytes).
    Byte(u8),
    /// An [`INVISIBLE`] character, skipped between two key characters.
    Invisible,
}

/// Some of the characters that show nothing, which a server may put
/// between the key's characters (on purpose or by a template): zero-width
/// space, non-joiner and joiner, word joiner, soft hyphen, the
/// left-to-right and right-to-left marks, and the zero-width no-break space
/// (BOM). Every other one the terminal's escaping hides too
/// ([`is_invisible`]) is skipped as well.
#[cfg(test)]
pub(crate) const INVISIBLE: [char; 8] = [
    '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{ad}', '\u{200e}', '\u{200f}', '\u{feff}',
];

/// Whether `c` shows nothing and may stand between two key characters: a
/// character (ASCII controls and DEL included) that [`crate::visible::hidden`] writes as
/// `\u{..}` on the terminal (invisible operators, fillers, bidi marks,
/// variation selectors, tags...), one list for both.
pub(crate) fn is_invisible(c: char) -> bool {
    crate::visible::hidden(c)
}

/// Whether `byte` may start the UTF-8 of an [`is_invisible`] character: an
/// ASCII control or DEL, or the first byte of one of the others (a test
/// holds the list to the function).
pub(super) fn starts_invisible(byte: u8) -> bool {
    matches!(
        byte,
        0x00..=0x1f | 0x7f | 0xc2 | 0xcd | 0xd8 | 0xe1 | 0xe2 | 0xe3 | 0xef | 0xf0 | 0xf3
    )
}

/// The length of the UTF-8 of an [`is_invisible`] character at the start
/// of `text`, if one is there.
pub(super) fn invisible(text: &[u8]) -> Option<usize> {
    let len = match text.first()? {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let c = std::str::from_utf8(text.get(..len)?).ok()?.chars().next()?;
    is_invisible(c).then_some(len)
}

/// The length of an [`INVISIBLE`] character percent-encoded (once) at the
/// start of `text`, each of its bytes an escape: `%E2%80%8B`.
fn percent_invisible(text: &[u8]) -> Option<usize> {
    let mut bytes = [0; 4];
    let mut read = 0;
    while let (Some(byte), Some([b'%', high, low])) =
        (bytes.get_mut(read), text.get(3 * read..3 * read + 3))
    {
        let Some(value) = hex_byte(*high, *low) else {
            break;
        };
        *byte = value;
        read += 1;
    }
    invisible(&bytes[..read]).map(|len| 3 * len)
}

/// What an escape that stands for the character `value` spells: an ASCII
/// character, an [`INVISIBLE`] one, or one that reads as an ASCII
/// character (a non-breaking space, `‐` U+2010 for `-`, `˜` U+02DC for
/// `~`, the characters of `&nbsp;`, `&hyphen;` and `&tilde;`); `None` for
/// any other.
pub(super) fn stands_for(value: u32) -> Option<Spelled> {
    match char::from_u32(value)? {
        '\u{a0}' => Some(Spelled::Byte(b' ')),
        '\u{2010}' => Some(Spelled::Byte(b'-')),
        '\u{2dc}' => Some(Spelled::Byte(b'~')),
        c if is_invisible(c) => Some(Spelled::Invisible),
        c => u8::try_from(c).ok().filter(u8::is_ascii).map(Spelled::Byte),
    }
}

/// Calls `found(spelled, len, family)` for each character that may be
/// spelled at `text[at..]`: the byte itself, in any family, an
/// [`INVISIBLE`] character, and each escape of `family` (of any family
/// when `None`, the escape's then), as what it stands for and the length
/// of its spelling.
pub(super) fn spellings(
    text: &[u8],
    at: usize,
    family: Option<Family>,
    mut found: impl FnMut(Spelled, usize, Option<Family>),
) {
    let rest = &text[at..];
    let Some(&first) = rest.first() else {
        return;
    };
    found(Spelled::Byte(first), 1, family);
    if let Some(len) = invisible(rest) {
        found(Spelled::Invisible, len, family);
    }
    let allows = |f: Family| family.is_none_or(|g| g == f);
    match first {
        b'+' if allows(Family::Url) => found(Spelled::Byte(b' '), 1, Some(Family::Url)),
        b'%' if allows(Family::Url) => {
            // `%24`, and each encoding of it again: `%2524`, `%252524`...
            let mut hex = &rest[1..];
            for _ in 0..=MAX_NESTED_PERCENT {
                let [h, l, ..] = hex else { break };
                let Some(value) = hex_byte(*h, *l) else { break };
                found(
                    Spelled::Byte(value),
                    rest.len() - hex.len() + 2,
                    Some(Family::Url),
                );
                if value != b'%' {
                    break;
                }
                hex = &hex[2..];
            }
            if let Some(len) = percent_invisible(rest) {
                found(Spelled::Invisible, len, Some(Family::Url));
            }
        }
        b'\\' if allows(Family::Json) => {
            if let Some((value, len)) = json_escape(rest) {
                found(value, len, Some(Family::Json));
            }
        }
        b'&' if allows(Family::Html) => {
            if let Some((value, len)) = html_escape(rest) {
                found(value, len, Some(Family::Html));
            }
        }
        _ => {}
    }
}

/// The value of one hexadecimal digit (any case).
fn hex_digit(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .map(|d| u8::try_from(d).expect("a hexadecimal digit"))
}

/// The byte two hexadecimal digits spell.
pub(super) fn hex_byte(high: u8, low: u8) -> Option<u8> {
    Some(hex_digit(high)? << 4 | hex_digit(low)?)
}

/// What a JSON escape at the start of `text` spells, and its length.
fn json_escape(text: &[u8]) -> Option<(Spelled, usize)> {
    match text {
        [b'\\', b'u', a, b, c, d, ..] => {
            let value = [*a, *b, *c, *d].iter().try_fold(0u32, |value, &digit| {
                Some(value << 4 | u32::from(hex_digit(digit)?))
            })?;
            Some((stands_for(value)?, 6))
        }
        [b'\\', e @ (b'"' | b'\\' | b'/'), ..] => Some((Spelled::Byte(*e), 2)),
        _ => None,
    }
}
