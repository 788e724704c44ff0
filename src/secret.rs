//! Blanking the API key out of text that came from elsewhere (a server's
//! answer, a key command's error output): the one place that knows every
//! way a key can be spelled back. Whatever reaches the terminal, the
//! results file, the summary JSON, the report or `-v` went through
//! [`Blanker::blank`] once, where the answer was read.

use std::borrow::Cow;

/// What a blanked key reads as.
pub const BLANK: &str = "***";

/// Fewer key characters than this, echoed from the key's start, are not
/// blanked: a short run is not the key (a key is dozens of characters),
/// and blanking it would change names and addresses that merely share it.
/// A key shorter than this is blanked only whole.
pub const MIN_PREFIX: usize = 12;

/// The spellings an echo of a key may come in. Each key character is
/// matched as itself or as its escape in the family, in any mix, so a
/// server that escapes only some characters (`$` but not `/`) is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Percent-encoding (`%24`, `%2f` or `%2F`; `+` for a space).
    Url,
    /// JSON string escapes (`\"`, `\\`, `\/`, `\u0024`).
    Json,
    /// HTML character references (`&amp;`, `&#36;`, `&#x24;`, `&quot;`...).
    Html,
}

/// Blanks one secret (the API key) in each spelling of [`Family`] and as
/// written, in whole or by a prefix of at least [`MIN_PREFIX`] characters.
#[derive(Clone)]
pub struct Blanker {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Blanker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blanker(***)")
    }
}

impl Blanker {
    /// `secret` is trimmed; an empty one blanks nothing.
    pub fn new(secret: &str) -> Blanker {
        Blanker {
            secret: secret.trim().as_bytes().to_vec(),
        }
    }

    /// How many key characters an echo must spell to be blanked.
    fn needed(&self) -> usize {
        self.secret.len().min(MIN_PREFIX)
    }

    /// `text` with every echo of the key replaced by [`BLANK`]; borrowed,
    /// without a copy, when there is none.
    pub fn blank<'a>(&self, text: Cow<'a, str>) -> Cow<'a, str> {
        if self.secret.is_empty() {
            return text;
        }
        let Some(first) = self.find(text.as_bytes(), 0) else {
            return text;
        };
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut next = Some(first);
        while let Some((start, end)) = next {
            // Matches are of ASCII spellings, so both ends are char boundaries.
            out.push_str(&text[copied..start]);
            out.push_str(BLANK);
            copied = end;
            next = self.find(bytes, end);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// Whether `text` holds an echo of the key.
    pub fn finds_in(&self, text: &str) -> bool {
        !self.secret.is_empty() && self.find(text.as_bytes(), 0).is_some()
    }

    /// The first echo at or after `from`, as a byte range: the longest
    /// spelling found at the leftmost place.
    fn find(&self, text: &[u8], from: usize) -> Option<(usize, usize)> {
        let first = self.secret[0];
        for start in from..text.len() {
            let byte = text[start];
            // Every spelling of the first character starts with it, `%`, `\`
            // or `&`.
            if byte != first && !matches!(byte, b'%' | b'\\' | b'&' | b'+') {
                continue;
            }
            let longest = [
                None,
                Some(Family::Url),
                Some(Family::Json),
                Some(Family::Html),
            ]
            .into_iter()
            .filter_map(|family| self.spelled_at(text, start, family))
            .max();
            if let Some(end) = longest {
                return Some((start, end));
            }
        }
        None
    }

    /// Where an echo that starts at `start` ends, if the key's first
    /// [`Blanker::needed`] characters (or more) are spelled there.
    fn spelled_at(&self, text: &[u8], start: usize, family: Option<Family>) -> Option<usize> {
        let mut at = start;
        let mut matched = 0;
        for &c in &self.secret {
            let Some(len) = spelling_len(&text[at..], c, family) else {
                break;
            };
            at += len;
            matched += 1;
        }
        (matched >= self.needed()).then_some(at)
    }
}

/// The length of the spelling of `c` at the start of `text` in `family`
/// (the character itself, or its escape), if one is there.
fn spelling_len(text: &[u8], c: u8, family: Option<Family>) -> Option<usize> {
    let escaped = match family {
        None => None,
        Some(Family::Url) => url_escape_len(text, c),
        Some(Family::Json) => json_escape_len(text, c),
        Some(Family::Html) => html_escape_len(text, c),
    };
    escaped.or_else(|| (text.first() == Some(&c)).then_some(1))
}

/// The value of the hexadecimal digits `digits` (any case).
fn hex_value(digits: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

fn url_escape_len(text: &[u8], c: u8) -> Option<usize> {
    if c == b' ' && text.first() == Some(&b'+') {
        return Some(1);
    }
    match text {
        [b'%', h, l, ..] if hex_value(&[*h, *l]) == Some(u32::from(c)) => Some(3),
        _ => None,
    }
}

fn json_escape_len(text: &[u8], c: u8) -> Option<usize> {
    match text {
        [b'\\', b'u', a, b, d, e, ..] if hex_value(&[*a, *b, *d, *e]) == Some(u32::from(c)) => {
            Some(6)
        }
        [b'\\', e, ..] if *e == c && matches!(c, b'"' | b'\\' | b'/') => Some(2),
        _ => None,
    }
}

fn html_escape_len(text: &[u8], c: u8) -> Option<usize> {
    if text.first() != Some(&b'&') {
        return None;
    }
    let end = text.iter().take(12).position(|&b| b == b';')?;
    let name = &text[1..end];
    let value = match name {
        [b'#', b'x' | b'X', hex @ ..] if !hex.is_empty() => hex_value(hex)?,
        [b'#', decimal @ ..] if !decimal.is_empty() => {
            std::str::from_utf8(decimal).ok()?.parse().ok()?
        }
        b"amp" => u32::from(b'&'),
        b"lt" => u32::from(b'<'),
        b"gt" => u32::from(b'>'),
        b"quot" => u32::from(b'"'),
        b"apos" => u32::from(b'\''),
        b"sol" => u32::from(b'/'),
        b"dollar" => u32::from(b'$'),
        b"equals" => u32::from(b'='),
        b"plus" => u32::from(b'+'),
        b"percnt" => u32::from(b'%'),
        b"num" => u32::from(b'#'),
        b"colon" => u32::from(b':'),
        b"excl" => u32::from(b'!'),
        _ => return None,
    };
    (value == u32::from(c)).then_some(end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blank(key: &str, text: &str) -> String {
        Blanker::new(key).blank(Cow::Borrowed(text)).into_owned()
    }

    #[test]
    fn every_spelling_of_the_key_is_blanked() {
        let key = "12345$ab/cd\"e&f<g>h'i+j k%l";
        let echoed = format!("key {key} echoed");
        let cases = [
            ("no key here", "no key here"),
            (echoed.as_str(), "key *** echoed"),
            (r#"bad 12345$ab\/cd\"e&f<g>h'i+j k%l."#, "bad ***."),
            (r"bad 12345\u0024ab/cd\u0022e&f<g>h'i+j k%l.", "bad ***."),
            (
                "u=12345%24ab%2Fcd%22e%26f%3Cg%3Eh%27i%2Bj%20k%25l&x",
                "u=***&x",
            ),
            (
                "u=12345%24ab%2fcd%22e%26f%3cg%3eh%27i%2bj+k%25l&x",
                "u=***&x",
            ),
            (
                "<p>12345$ab/cd&quot;e&amp;f&lt;g&gt;h&#39;i+j k%l</p>",
                "<p>***</p>",
            ),
            (
                "<p>12345&#x24;ab&#47;cd&#34;e&amp;f&lt;g&gt;h&#x27;i+j k%l</p>",
                "<p>***</p>",
            ),
            // A prefix of 12 characters or more, in any spelling.
            ("cut: 12345$ab/cd\"…", "cut: ***…"),
            ("cut: 12345%24ab%2Fcd%22…", "cut: ***…"),
            ("cut: 12345%24ab%2Fcd…", "cut: 12345%24ab%2Fcd…"),
            // Eleven is not enough.
            ("cut: 12345$ab/c…", "cut: 12345$ab/c…"),
        ];
        for (text, want) in cases {
            assert_eq!(blank(key, text), want, "{text}");
        }
        // A short key is blanked only whole.
        assert_eq!(
            blank("ab/cd", r#"{"m":"ab\/cd ab/c"}"#),
            r#"{"m":"*** ab/c"}"#
        );
        assert!(matches!(
            Blanker::new(key).blank(Cow::Borrowed("clean")),
            Cow::Borrowed(_)
        ));
        assert_eq!(blank("", "text"), "text");
    }

    #[test]
    fn the_blanker_never_prints_the_key() {
        assert!(!format!("{:?}", Blanker::new("s3cret-key")).contains("s3cret"));
    }

    /// The encodings a server may echo the key in, as the test spells them.
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

    #[test]
    fn every_key_is_blanked_in_every_encoding_in_whole_or_by_a_prefix() {
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
        // escapes included.
        let key = "[!-~][ -~]{10,70}[!-~]";
        let encoding = 0..5usize;
        let prefix = prop_oneof![Just(None), (MIN_PREFIX..80usize).prop_map(Some)];
        let around = "[a-z {}:\",=]{0,20}";
        let strategy = (key, encoding, prefix, around, around);
        runner
            .run(&strategy, |(key, encoding, prefix, before, after)| {
                let shown = match prefix {
                    Some(len) => &key[..len.min(key.len())],
                    None => key.as_str(),
                };
                let spelled = match encoding {
                    0 => shown.to_string(),
                    1 => json(shown),
                    2 => url(shown, true),
                    3 => url(shown, false),
                    _ => html(shown),
                };
                let text = format!("{before}{spelled}{after}");
                let blanked = Blanker::new(&key).blank(Cow::Borrowed(&text));
                // No spelling of the key's first twelve characters is left.
                let start = &key[..MIN_PREFIX];
                for form in [
                    start.to_string(),
                    json(start),
                    url(start, true),
                    url(start, false),
                    html(start),
                ] {
                    prop_assert!(
                        !blanked.contains(&form),
                        "{text:?} became {blanked:?}, which holds {form:?}"
                    );
                }
                prop_assert!(blanked.contains(BLANK));
                Ok(())
            })
            .unwrap();
    }
}
