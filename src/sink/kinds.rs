//! One kind of problem whatever the values it quotes: rows are grouped by
//! their message with its quoted values taken out, and a group's message
//! keeps the values its rows share.

/// `lang: "xx" is not a language` -> `lang: "…" is not a language`: a
/// message without the values it quotes (as `{:?}` quotes them).
pub(crate) fn kind_of(error: &str) -> String {
    let mut kind = String::with_capacity(error.len());
    for (before, value) in parts(error) {
        kind.push_str(before);
        if let Some((_, closed)) = value {
            kind.push_str(if closed { "\"…\"" } else { "\"…" });
        }
    }
    kind
}

/// The text before each quoted value and the value with whether its quote
/// closes (`None`: the text after the last one), escaped quotes skipped.
fn parts(text: &str) -> Vec<(&str, Option<(&str, bool)>)> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        let (before, after) = (&rest[..open], &rest[open + 1..]);
        let mut end = None;
        let mut escaped = false;
        for (at, c) in after.char_indices() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(at);
                    break;
                }
                _ => {}
            }
        }
        match end {
            Some(end) => {
                parts.push((before, Some((&after[..end], true))));
                rest = &after[end + 1..];
            }
            None => {
                parts.push((before, Some((after, false))));
                rest = "";
            }
        }
    }
    parts.push((rest, None));
    parts
}

/// The message of two rows' problems of one kind, each quoted value kept
/// where both quote the same and `…` where they differ: `groups: must be a
/// JSON list such as [{"id": 2}], not "…"` keeps the example it gives.
/// `None` when they are not of one kind after all.
pub(super) fn merged(shown: &str, other: &str) -> Option<String> {
    let (a, b) = (parts(shown), parts(other));
    if a.len() != b.len() {
        return None;
    }
    let mut out = String::with_capacity(shown.len());
    for ((before, value), (other_before, other_value)) in a.into_iter().zip(b) {
        if before != other_before {
            return None;
        }
        out.push_str(before);
        if let (Some((value, closed)), Some((other, _))) = (value, other_value) {
            out.push('"');
            out.push_str(if value == other { value } else { "…" });
            if closed {
                out.push('"');
            }
        }
    }
    Some(out)
}
