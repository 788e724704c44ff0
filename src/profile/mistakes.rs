//! A mistake in the config file told without its values: toml's message
//! kept only while it reads as toml's or serde's own wording, so that a key
//! pasted on a line is never quoted back.

use super::*;

/// A TOML mistake by its line and the name on that line, never the value:
/// toml's own message quotes the line, and the line may be a key pasted
/// where it does not belong (`api_key = 1234$abcd...` unquoted).
pub(super) fn describe_mistake(text: &str, error: &toml::de::Error) -> String {
    let mut place = String::new();
    if let Some(span) = error.span() {
        let start = span.start.min(text.len());
        let line = text[..start].matches('\n').count() + 1;
        place = format!("at line {line}");
        let line_text = text.lines().nth(line - 1).unwrap_or_default();
        if let Some((name, _)) = line_text.split_once('=') {
            let name = name.trim().trim_matches(['"', '\'']);
            place.push_str(&format!(" ({})", shown_name(name)));
            if names_a_key(name) {
                return format!("{place}: {KEY_NOT_IN_FILE}");
            }
        }
    }
    let what = without_values(error.message());
    match place.is_empty() {
        true => format!(": {what}"),
        false => format!("{place}: {what}"),
    }
}

/// toml's message with nothing in it that may be a value or a name from the
/// file, on one line.
///
/// toml and serde quote a value (`string "…"`, with its own escapes;
/// `integer \`5\``) and a name (`unknown field \`…\``), but no quoting can
/// be trusted to end where the value does: the value may hold the quote
/// characters, escaped or not. So the message is read from its start only
/// as long as it reads as toml's own phrasing ([`phrasing`]); at the first
/// `"` or `'` (where a value starts), or anything else the phrasing has
/// not, the rest is left out, but for its last `, expected …` when that
/// reads as phrasing to its end: what the value should have been.
pub(super) fn without_values(message: &str) -> String {
    if let Some(named) = without_name(message) {
        return named;
    }
    let (mut out, cut) = phrasing(message);
    if let Some(rest) = cut {
        out.push_str("(not shown)");
        let expected = rest.rfind(", expected ").map(|at| phrasing(&rest[at..]));
        if let Some((expected, None)) = expected {
            out.push_str(&expected);
        }
    }
    out.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// serde's messages about a name (`unknown field \`…\`, expected one of
/// \`rate\`, …`), with the name shown as [`backticked`] allows, else left
/// out. The name runs to the last place where serde's own words take
/// over, so a backtick inside it cannot end it early; `None` for another
/// message.
pub(super) fn without_name(message: &str) -> Option<String> {
    let (about, name) = [
        "unknown field",
        "unknown variant",
        "missing field",
        "duplicate field",
    ]
    .into_iter()
    .find_map(|about| Some((about, message.strip_prefix(about)?.strip_prefix(" `")?)))?;
    let (name, after) = match ["`, expected ", "`, there are no "]
        .into_iter()
        .filter_map(|after| name.rfind(after))
        .max()
    {
        Some(end) => (&name[..end], &name[end + 1..]),
        None => (name.strip_suffix('`')?, ""),
    };
    let name = backticked(name).map_or("(not shown)".to_string(), |name| format!("`{name}`"));
    let after = match phrasing(after) {
        (after, None) => after,
        (_, Some(_)) => String::new(),
    };
    Some(format!("{about} {name}{after}"))
}

/// The start of `text` that reads as toml's phrasing, and the rest of
/// `text`, from where it stops reading so, if it does.
///
/// The phrasing is words ([`phrasing_word`]), spaces and a little
/// punctuation (`,:;().-`), and tokens in backticks that [`backticked`]
/// shows, each followed by a space, a comma, `;`, `)` or the end. Whatever
/// is shown is made of these pieces only, so a value that confuses the
/// reading (a backtick or a quote inside it) shows no more than they allow.
pub(super) fn phrasing(text: &str) -> (String, Option<&str>) {
    let mut out = String::new();
    let mut at = 0;
    while let Some(c) = text[at..].chars().next() {
        let rest = &text[at..];
        if c == '`' {
            let token = rest[1..].find('`').and_then(|end| {
                let ends_well = rest[end + 2..]
                    .chars()
                    .next()
                    .is_none_or(|next| " \n,;)".contains(next));
                backticked(&rest[1..1 + end])
                    .filter(|_| ends_well)
                    .map(|inner| (inner, end + 2))
            });
            let Some((inner, len)) = token else {
                return (out, Some(rest));
            };
            out.push_str(&format!("`{inner}`"));
            at += len;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if !phrasing_word(&rest[..len]) {
                return (out, Some(rest));
            }
            out.push_str(&rest[..len]);
            at += len;
        } else if " \n,:;().-".contains(c) {
            out.push(c);
            at += 1;
        } else {
            return (out, Some(rest));
        }
    }
    (out, None)
}

/// A word toml's and serde's messages are made of: lowercase (`invalid`,
/// `usize`), a small number (a length), a Rust number type (`u32`), or a
/// type of this file's (`untagged enum RateValue`).
pub(super) fn phrasing_word(word: &str) -> bool {
    let lowercase = word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let number = word.bytes().all(|b| b.is_ascii_digit());
    (lowercase && word.len() <= 24)
        || (number && word.len() <= 4)
        || [
            "u8",
            "u16",
            "u32",
            "u64",
            "u128",
            "i8",
            "i16",
            "i32",
            "i64",
            "i128",
            "f32",
            "f64",
            "RateValue",
            "RawProfile",
            "ConfigFile",
            "Option",
        ]
        .contains(&word)
}

/// What toml's message puts in backticks, when it is shown: a field of a
/// profile, a name as [`shown_name`] shows one, a short literal (`]]`,
/// `"`, `0x`), a short number (`integer \`5\``); `None` for anything else.
pub(super) fn backticked(inner: &str) -> Option<&str> {
    let literal = inner.len() <= 3 && !inner.bytes().any(|b| b.is_ascii_alphanumeric());
    let number = inner.len() <= 11
        && inner.bytes().any(|b| b.is_ascii_digit())
        && inner
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-._eE".contains(&b));
    let name = shown_name(inner).starts_with('`');
    (literal || number || name || ["0x", "0o", "0b", "inf", "nan"].contains(&inner))
        .then_some(inner)
}
