//! Every key in every spelling a server might echo it in: the spellings,
//! and the property that each is blanked, whole or by any run.

use super::*;

fn url(key: &str, upper: bool) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ if upper => format!("%{b:02X}"),
            _ => format!("%{b:02x}"),
        })
        .collect()
}

/// Percent-encoded twice: each escape's `%` as `%25`.
fn url_twice(key: &str) -> String {
    url(key, true).replace('%', "%25")
}

fn json(key: &str) -> String {
    let quoted = serde_json::to_string(key).unwrap();
    quoted[1..quoted.len() - 1].replace('/', "\\/")
}

fn html(key: &str) -> String {
    key.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The WHATWG names (the HTML standard's `entities.json`) of each
/// printable ASCII character that has one, written out here apart from
/// the blanker's table; then those of what reads as a space, `-` and
/// `~`.
pub(super) const WHATWG_NAMES: [(char, &[&str]); 33] = [
    ('!', &["excl"]),
    ('"', &["quot", "QUOT"]),
    ('#', &["num"]),
    ('$', &["dollar"]),
    ('%', &["percnt"]),
    ('&', &["amp", "AMP"]),
    ('\'', &["apos"]),
    ('(', &["lpar"]),
    (')', &["rpar"]),
    ('*', &["ast", "midast"]),
    ('+', &["plus"]),
    (',', &["comma"]),
    ('.', &["period"]),
    ('/', &["sol"]),
    (':', &["colon"]),
    (';', &["semi"]),
    ('<', &["lt", "LT"]),
    ('=', &["equals"]),
    ('>', &["gt", "GT"]),
    ('?', &["quest"]),
    ('@', &["commat"]),
    ('[', &["lsqb", "lbrack"]),
    ('\\', &["bsol"]),
    (']', &["rsqb", "rbrack"]),
    ('^', &["Hat"]),
    ('_', &["lowbar", "UnderBar"]),
    ('`', &["grave", "DiacriticalGrave"]),
    ('{', &["lcub", "lbrace"]),
    ('|', &["verbar", "vert", "VerticalLine"]),
    ('}', &["rcub", "rbrace"]),
    (' ', &["nbsp", "NonBreakingSpace"]),
    ('-', &["hyphen", "dash"]),
    ('~', &["tilde", "DiacriticalTilde"]),
];

fn whatwg_names(c: char) -> &'static [&'static str] {
    WHATWG_NAMES
        .iter()
        .find(|(named, _)| *named == c)
        .map_or(&[], |(_, names)| names)
}

/// Each character by its name where it has one, the names in turn.
fn html_named(key: &str) -> String {
    key.chars()
        .enumerate()
        .map(|(i, c)| match whatwg_names(c) {
            [] => c.to_string(),
            names => format!("&{};", names[i % names.len()]),
        })
        .collect()
}

/// Each character by its number, in decimal or hexadecimal, after up
/// to 25 zeros, every other one without its `;` (but the last in
/// hexadecimal, which the text after it could go on).
fn html_numbers(key: &str) -> String {
    let count = key.chars().count();
    key.chars()
        .enumerate()
        .map(|(i, c)| {
            let zeros = "0".repeat(i * 7 % 26);
            let value = u32::from(c);
            let (number, hex) = match i % 3 {
                0 => (format!("&#{zeros}{value}"), false),
                1 => (format!("&#x{zeros}{value:x}"), true),
                _ => (format!("&#X{zeros}{value:X}"), true),
            };
            let bare = i % 2 == 0 && (i + 1 < count || !hex);
            format!("{number}{}", if bare { "" } else { ";" })
        })
        .collect()
}

/// As a careless server writes it: the legacy names without `;`, the
/// other punctuation by decimal number without `;` but before a digit.
fn html_bare(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| match c {
            '&' => "&amp".to_string(),
            '<' => "&lt".to_string(),
            '>' => "&GT".to_string(),
            '"' => "&quot".to_string(),
            c if c.is_ascii_alphanumeric() => c.to_string(),
            c => {
                let digit_next = chars.get(i + 1).is_some_and(char::is_ascii_digit);
                format!("&#{}{}", u32::from(c), if digit_next { ";" } else { "" })
            }
        })
        .collect()
}

/// The key's characters, each spelled by `spell`, with the invisible
/// characters `between` (in turn) between them.
fn with_invisible(key: &str, spell: fn(&str) -> String, between: &[&str]) -> String {
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if i > 0 {
            out.push_str(between[i % between.len()]);
        }
        out.push_str(&spell(&c.to_string()));
    }
    out
}

pub(super) const RAW_INVISIBLE: [&str; 8] = [
    "\u{200b}", "\u{200c}", "\u{200d}", "\u{2060}", "\u{ad}", "\u{200e}", "\u{200f}", "\u{feff}",
];

/// The per-character spellings: a run of the key spelled is a run of
/// its spelling.
fn spelled(key: &str, encoding: usize) -> String {
    match encoding {
        0 => key.to_string(),
        1 => json(key),
        2 => url(key, true),
        3 => url(key, false),
        4 => html(key),
        5 => key.to_uppercase(),
        6 => key.to_lowercase(),
        7 => url_twice(key),
        8 => url(&key.to_uppercase(), false),
        9 => html_named(key),
        10 => html_numbers(key),
        11 => html_bare(key),
        12 => with_invisible(key, str::to_string, &RAW_INVISIBLE),
        13 => with_invisible(
            key,
            html_named,
            &[
                "&ZeroWidthSpace;",
                "&zwnj;",
                "&#x200D;",
                "&NoBreak;",
                "&shy;",
                "&lrm;",
                "&#8207;",
                "&#xFEFF;",
                "&NegativeThinSpace;",
                "&shy",
            ],
        ),
        14 => with_invisible(key, json, &["\\u200b", "\\u2060", "\\uFEFF", "\\u00AD"]),
        _ => with_invisible(
            key,
            |c| url(c, true),
            &["%E2%80%8B", "%c2%ad", "%EF%BB%BF", "%e2%81%A0"],
        ),
    }
}

const SPELLINGS: usize = 16;

#[test]
fn every_key_is_blanked_in_every_encoding_in_whole_or_by_any_run() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 2000,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    // A key is printable ASCII (what an HTTP header takes), spaces
    // inside only: every character class, the ones each encoding
    // escapes included; some shorter than a run, blanked only whole.
    let key = "[!-~]([ -~]{0,70}[!-~])?";
    // The per-character spellings, then base64: standard padded,
    // URL-safe unpadded, each after 0 to 3 other bytes (the 3
    // alignments), and cut from the left at one of its characters.
    let encoding = 0..SPELLINGS + 4;
    // Which run of the key is echoed: where it starts, how long.
    let run = (any::<prop::sample::Index>(), any::<prop::sample::Index>());
    let around = "[a-z {}:\",=]{0,20}";
    let strategy = (key, encoding, run, 0..4usize, around, around);
    runner
        .run(
            &strategy,
            |(key, encoding, (start, len), before_key, before, after)| {
                let needed = key.len().min(MIN_RUN);
                let start = start.index(key.len() - needed + 1);
                let len = needed + len.index(key.len() - start - needed + 1);
                let shown = &key[start..start + len];
                let base64 = |shown: &str, url_safe: bool| {
                    let bytes = format!("{}{shown}", &"u:x"[..before_key]);
                    match url_safe {
                        false => STANDARD.encode(bytes),
                        true => URL_SAFE_NO_PAD.encode(bytes),
                    }
                };
                let echo = match encoding - SPELLINGS.min(encoding) {
                    _ if encoding < SPELLINGS => spelled(shown, encoding),
                    0 => base64(shown, false),
                    1 => base64(shown, true),
                    // Cut from the left at its second character: its
                    // first group of 3 bytes is lost, the rest still
                    // spells a run.
                    2 if len >= needed + 3 => base64(shown, false)[1..].to_string(),
                    _ => base64(shown, true),
                };
                let text = format!("{before}{echo}{after}");
                let blanked = Blanker::new(&key).blank(Cow::Borrowed(&text));
                prop_assert!(blanked.contains(BLANK), "{text:?} for {key:?}");
                // What is left besides the blanks (a key may hold `*`).
                let left: Vec<&str> = blanked.split(BLANK).collect();
                let holds = |piece: &str| left.iter().any(|left| left.contains(piece));
                if encoding < SPELLINGS {
                    // No spelling of any run of the echoed part is left.
                    for at in 0..=shown.len() - needed {
                        let piece = &shown[at..at + needed];
                        for form in (0..SPELLINGS).map(|e| spelled(piece, e)) {
                            prop_assert!(
                                !holds(&form),
                                "{text:?} became {blanked:?}, which holds {form:?}"
                            );
                        }
                    }
                } else {
                    // The whole base64 run went.
                    let echo = echo.trim_end_matches('=');
                    for at in 0..echo.len().saturating_sub(4) {
                        let piece = &echo[at..(at + 5).min(echo.len())];
                        prop_assert!(
                            !holds(piece),
                            "{text:?} became {blanked:?}, which holds {piece:?}"
                        );
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}
