//! How an `.xlsx` number format shows a number: the [`Mark`] of a format
//! that shows it otherwise than as the plain number.

use super::*;
use crate::model::patch::show;

/// How an `.xlsx` number format shows a number, by its code and its id:
/// the built-in formats the standard leaves to the locale (5 to 8, a
/// currency; 23 to 36 and 50 and above, dates and Asian formats) come
/// with no code, and calamine gives them as `General`.
pub(crate) fn xlsx_number_format_mark(code: &str, id: Option<u32>) -> Option<Mark> {
    match id {
        Some(5..=8) => Some(Mark::Format("a currency".into())),
        Some(id @ (23..=36 | 50..=163)) if code.eq_ignore_ascii_case("general") => {
            Some(Mark::Format(format!("the built-in format {id}")))
        }
        _ => xlsx_format_mark(code),
    }
}

/// How an `.xlsx` number format shows a number, when it is not as the
/// plain number: `Some(Mark::FormatHides)` for `;;;`, a percentage, a
/// currency, or another format by its code.
pub(crate) fn xlsx_format_mark(code: &str) -> Option<Mark> {
    let plain = ["general", "0", "@", "0.00", "#,##0", "#,##0.00"];
    let trimmed = code.trim();
    if plain.contains(&trimmed.to_ascii_lowercase().as_str()) {
        return None;
    }
    // Outside quoted literals and backslash escapes.
    let mut bare = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in trimmed.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            _ if !quoted => bare.push(c),
            _ => {}
        }
    }
    let sections: Vec<&str> = trimmed.split(';').collect();
    if sections.len() >= 3 && sections[..3].iter().all(|s| s.trim().is_empty()) {
        return Some(Mark::FormatHides);
    }
    // The text part, split outside quoted literals: anything but `@`
    // alone shows a text cell otherwise than it is.
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in trimmed.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                parts.last_mut().expect("one part at least").push(c);
            }
            ';' if !quoted => parts.push(String::new()),
            _ => parts.last_mut().expect("one part at least").push(c),
        }
    }
    if parts.len() >= 4 && parts[3].trim() != "@" {
        return Some(Mark::FormatText);
    }
    // Digits, padded or grouped (`000000`, `#,##0.00`), show the number
    // itself; a comma at the end would divide it by 1,000.
    if trimmed.chars().all(|c| matches!(c, '0' | '#' | ',' | '.')) && !trimmed.ends_with(',') {
        return None;
    }
    if bare.contains('%') {
        return Some(Mark::Format("a percentage".into()));
    }
    if bare.contains(['$', '€', '£', '¥']) || bare.contains("[$") {
        return Some(Mark::Format("a currency".into()));
    }
    // A code can be long (a forged one, 100 KB): a message shows its start.
    Some(Mark::Format(format!("the format {}", show(trimmed))))
}
