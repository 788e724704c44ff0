//! Blanking the API key out of text that came from elsewhere (a server's
//! answer, a key command's error output): the one place that knows every
//! way a key can be spelled back. Whatever reaches the terminal, the
//! results file, the summary JSON, the report or `-v` went through
//! [`Blanker::blank`] once, where the answer was read.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// What a blanked key reads as.
pub const BLANK: &str = "***";

/// Fewer consecutive key characters than this, echoed from anywhere in the
/// key (its start, its end, its middle), are not blanked: a short run is
/// not the key (a key is dozens of characters), and blanking it would
/// change names and addresses that merely share it. A key shorter than
/// this is blanked only whole.
pub const MIN_RUN: usize = 12;

/// How many times over a percent-encoding may have been encoded again
/// (`%2524` for `$` is once more): enough for any server chain, and a
/// bound on the work a run of `%252525...` costs.
const MAX_NESTED_PERCENT: usize = 4;

/// The spellings an echo of a key may come in. Each key character is
/// matched as itself (in either case, for a letter) or as its escape in
/// the family, in any mix, so a server that escapes only some characters
/// (`$` but not `/`) is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
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

/// Blanks one secret (the API key): any run of at least [`MIN_RUN`] of its
/// consecutive characters (the whole key when it is shorter), in ASCII
/// upper or lower case or as written, in each spelling of [`Family`], and
/// in a base64 run (standard or URL-safe alphabet, padded or not) that
/// decodes to such a run. Characters that show nothing ([`INVISIBLE`]) may
/// sit between the key's characters, as themselves or escaped: a reader
/// sees the key whole.
#[derive(Clone)]
pub struct Blanker {
    /// The key's runs; `None` for an empty key, which blanks nothing.
    runs: Option<Runs>,
    /// How many key characters an echo must spell to be blanked.
    needed: usize,
}

impl std::fmt::Debug for Blanker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blanker(***)")
    }
}

impl Blanker {
    /// `secret` is trimmed; an empty one blanks nothing.
    pub fn new(secret: &str) -> Blanker {
        let secret = secret.trim().as_bytes();
        let needed = secret.len().min(MIN_RUN);
        Blanker {
            runs: (!secret.is_empty()).then(|| Runs::new(secret, needed)),
            needed,
        }
    }

    /// `text` with every echo of the key replaced by [`BLANK`]; borrowed,
    /// without a copy, when there is none.
    pub fn blank<'a>(&self, text: Cow<'a, str>) -> Cow<'a, str> {
        let echoes = self.echoes(&text);
        if echoes.is_empty() {
            return text;
        }
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (start, end) in echoes {
            out.push_str(&text[copied..start]);
            out.push_str(BLANK);
            copied = end;
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// Whether `text` holds an echo of the key.
    pub fn finds_in(&self, text: &str) -> bool {
        !self.echoes(text).is_empty()
    }

    /// The echoes of the key in `text`, as byte ranges on character
    /// boundaries, in order, none overlapping.
    fn echoes(&self, text: &str) -> Vec<(usize, usize)> {
        let Some(runs) = &self.runs else {
            return Vec::new();
        };
        let bytes = text.as_bytes();
        let mut walks = Vec::new();
        let mut echoes = Vec::new();
        let mut from = 0;
        while let Some((start, end)) = self.find(runs, bytes, from, &mut walks) {
            // Escapes are ASCII, but a key that is not may be matched from
            // or to the middle of one of its characters: the whole
            // character goes.
            let start = (0..=start)
                .rev()
                .find(|&at| text.is_char_boundary(at))
                .unwrap_or(0);
            let end = (end..=text.len())
                .find(|&at| text.is_char_boundary(at))
                .unwrap_or(text.len());
            echoes.push((start, end));
            from = end;
        }
        let encoded = self.base64_echoes(runs, bytes, &mut walks);
        if encoded.is_empty() {
            return echoes;
        }
        echoes.extend(encoded);
        echoes.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(echoes.len());
        for (start, end) in echoes {
            match merged.last_mut() {
                Some(last) if start < last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// The first echo at or after `from`, as a byte range: the longest
    /// spelling found at the leftmost place. `walks` is room to work in.
    fn find(
        &self,
        runs: &Runs,
        text: &[u8],
        from: usize,
        walks: &mut Vec<Walk>,
    ) -> Option<(usize, usize)> {
        (from..text.len()).find_map(|start| {
            let opens = match text.get(start + 1) {
                Some(&next) => runs.opens(text[start], next),
                None => self.needed == 1 || starts_escape(text[start]),
            };
            opens
                .then(|| self.longest_at(runs, text, start, walks))
                .flatten()
                .map(|end| (start, end))
        })
    }

    /// Where the longest echo that starts at `start` ends, if one does.
    ///
    /// Each walk reads the text from `start`, one spelled character at a
    /// time, in the key's [`Runs`]: a walk lives as long as what it read is
    /// a run of the key. A place in the text may be read in more than one
    /// way (`%25` is `%` or the start of `%2524`), so walks branch; two that
    /// reach the same place in the same state and family go on the same
    /// way, and are merged: the work is bounded by the text the echo spans,
    /// whatever the key repeats.
    fn longest_at(
        &self,
        runs: &Runs,
        text: &[u8],
        start: usize,
        walks: &mut Vec<Walk>,
    ) -> Option<usize> {
        let needed = self.needed;
        // Most walks read only characters as written, which cannot start
        // an escape: one way of reading, followed without the bookkeeping.
        let (mut at, mut state, mut count) = (start, ROOT, 0);
        while let Some(&byte) = text.get(at) {
            if starts_escape(byte) || starts_invisible(byte) {
                break;
            }
            let Some(next) = runs.step(state, byte.to_ascii_lowercase()) else {
                return (count >= needed).then_some(at);
            };
            (at, state, count) = (at + 1, next, (count + 1).min(needed));
        }
        walks.clear();
        walks.push(Walk {
            at,
            state,
            family: None,
            count,
        });
        let mut end = None;
        // The walk furthest behind goes first: every one it starts is
        // further on, so two that meet are both still waiting, and merged.
        while let Some(first) = (0..walks.len()).min_by_key(|&i| walks[i].at) {
            let walk = walks.swap_remove(first);
            if walk.count >= needed {
                end = end.max(Some(walk.at));
            }
            spellings(text, walk.at, walk.family, |spelled, len, family| {
                let (state, count) = match spelled {
                    Spelled::Byte(value) => {
                        let Some(state) = runs.step(walk.state, value.to_ascii_lowercase()) else {
                            return;
                        };
                        (state, (walk.count + 1).min(needed))
                    }
                    // Skipped, between two key characters: the walk reads
                    // on in the same state.
                    Spelled::Invisible if walk.count > 0 => (walk.state, walk.count),
                    Spelled::Invisible => return,
                };
                let next = Walk {
                    at: walk.at + len,
                    state,
                    family,
                    count,
                };
                match walks
                    .iter_mut()
                    .find(|w| (w.at, w.state, w.family) == (next.at, next.state, next.family))
                {
                    Some(same) => same.count = same.count.max(next.count),
                    None => walks.push(next),
                }
            });
        }
        end
    }

    /// The base64 runs of `text` that decode to an echo of the key, each
    /// with its padding.
    ///
    /// A run is read in the standard and the URL-safe alphabet at once,
    /// with `\/` (JSON) and `%2B`, `%2F` (a URL) as the characters they
    /// stand for. The key may start at any of the 3 bytes of a group, and
    /// the run may start anywhere in the encoded text (a header's
    /// `Basic ...`, or a server that cut it): it is decoded from each of
    /// its first 4 characters, and blanked whole if any decoding holds a
    /// run of the key in a spelling [`Blanker::find`] knows.
    fn base64_echoes(
        &self,
        runs: &Runs,
        text: &[u8],
        walks: &mut Vec<Walk>,
    ) -> Vec<(usize, usize)> {
        // The characters that hold `needed` bytes.
        let shortest = (self.needed * 4).div_ceil(3);
        let mut found = Vec::new();
        let mut run = Vec::new();
        let mut decoded = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let start = at;
            let mut len = 0;
            while let Some((_, spelled)) = base64_char(&text[at..]) {
                at += spelled;
                len += 1;
            }
            if len == 0 {
                at += 1;
                continue;
            }
            if len < shortest {
                continue;
            }
            run.clear();
            let mut read = start;
            while let Some((c, spelled)) = base64_char(&text[read..at]) {
                run.push(c);
                read += spelled;
            }
            let echoed = (0..4).any(|skip| {
                let mut part = run.get(skip..).unwrap_or_default();
                // A last character alone holds no whole byte.
                if part.len() % 4 == 1 {
                    part = &part[..part.len() - 1];
                }
                decoded.clear();
                BASE64.decode_vec(part, &mut decoded).is_ok()
                    && self.find(runs, &decoded, 0, walks).is_some()
            });
            if echoed {
                for _ in 0..2 {
                    if let Some(len) = base64_padding(&text[at..]) {
                        at += len;
                    }
                }
                found.push((start, at));
            }
        }
        found
    }
}

/// Decodes a run in the standard alphabet, the URL-safe one mapped onto
/// it, whatever its padding and last bits.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The base64 character at the start of `text`, in the standard alphabet,
/// and the length of its spelling.
#[inline]
fn base64_char(text: &[u8]) -> Option<(u8, usize)> {
    let first = *text.first()?;
    if BASE64_CHARS[usize::from(first)] != 0 {
        return Some((BASE64_CHARS[usize::from(first)], 1));
    }
    match text {
        [b'\\', b'/', ..] => Some((b'/', 2)),
        [b'%', h, l, ..] => match hex_byte(*h, *l)? {
            c @ (b'+' | b'/') => Some((c, 3)),
            _ => None,
        },
        _ => None,
    }
}

/// Each byte that is a base64 character as the standard alphabet spells
/// it (`-` and `_`, URL-safe, as `+` and `/`), 0 for the others.
const BASE64_CHARS: [u8; 256] = {
    let mut table = [0; 256];
    let mut byte = 0;
    while byte < 256 {
        let c = byte as u8;
        table[byte] = match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => c,
            b'-' => b'+',
            b'_' => b'/',
            _ => 0,
        };
        byte += 1;
    }
    table
};

/// The length of the base64 padding character at the start of `text`
/// (`=`, `%3D`, `\u003d`), if one is there.
fn base64_padding(text: &[u8]) -> Option<usize> {
    match text {
        [b'=', ..] => Some(1),
        [b'%', b'3', b'd' | b'D', ..] => Some(3),
        [b'\\', b'u', b'0', b'0', b'3', b'd' | b'D', ..] => Some(6),
        _ => None,
    }
}

/// One way of reading the text from an echo's start (see
/// [`Blanker::longest_at`]).
#[derive(Debug, Clone, Copy)]
struct Walk {
    /// Where in the text it is.
    at: usize,
    /// What it read, as a state of the key's [`Runs`].
    state: u32,
    /// The family of the escapes it read, once it read one.
    family: Option<Family>,
    /// How many key characters it read, up to [`Blanker::needed`].
    count: usize,
}

/// The state of [`Runs`] where every walk starts.
const ROOT: u32 = 0;

/// No transition from the root on a byte.
const NONE: u32 = u32::MAX;

/// Every run of consecutive characters of the key, ASCII-lowercased, as a
/// suffix automaton: a walk from [`ROOT`] that reads a string stays in it
/// exactly when the string is such a run, from anywhere in the key. It
/// has fewer than two states and three transitions per key byte.
#[derive(Clone)]
struct Runs {
    /// The root's transitions by byte, [`NONE`] where there is none: most
    /// places in a text fail there.
    root: Box<[u32; 256]>,
    /// The pairs of bytes an echo may start with, a bit each (`first << 8
    /// | second`): a byte that may start an escape, or two bytes that are
    /// (in either case) consecutive key characters, or one and a byte
    /// that may start an escape or an [`INVISIBLE`] character. Most places
    /// in a text fail here, at the cost of one test.
    opens: Box<[u64; 1024]>,
    /// The transitions of state `s` are `edges[starts[s]..starts[s + 1]]`,
    /// sorted by byte.
    starts: Vec<u32>,
    edges: Vec<(u8, u32)>,
}

impl Runs {
    /// The runs of `key`, where an echo holds `needed` characters or more.
    fn new(key: &[u8], needed: usize) -> Runs {
        // The usual construction, one byte at a time: `len` is the longest
        // string of a state, `link` its suffix link.
        let mut len = vec![0usize];
        let mut link: Vec<Option<usize>> = vec![None];
        let mut next: Vec<BTreeMap<u8, usize>> = vec![BTreeMap::new()];
        let mut last = 0;
        for &byte in key {
            let c = byte.to_ascii_lowercase();
            let cur = len.len();
            len.push(len[last] + 1);
            link.push(None);
            next.push(BTreeMap::new());
            let mut p = Some(last);
            while let Some(state) = p {
                if next[state].contains_key(&c) {
                    break;
                }
                next[state].insert(c, cur);
                p = link[state];
            }
            link[cur] = Some(match p {
                None => ROOT as usize,
                Some(p) => {
                    let q = next[p][&c];
                    if len[p] + 1 == len[q] {
                        q
                    } else {
                        let clone = len.len();
                        len.push(len[p] + 1);
                        link.push(link[q]);
                        next.push(next[q].clone());
                        let mut r = Some(p);
                        while let Some(state) = r {
                            if next[state].get(&c) != Some(&q) {
                                break;
                            }
                            next[state].insert(c, clone);
                            r = link[state];
                        }
                        link[q] = Some(clone);
                        clone
                    }
                }
            });
            last = cur;
        }
        let state = |s: usize| u32::try_from(s).expect("a key has fewer than 2^32 bytes");
        let mut root = Box::new([NONE; 256]);
        for (&c, &to) in &next[ROOT as usize] {
            root[usize::from(c)] = state(to);
        }
        let mut starts = Vec::with_capacity(next.len() + 1);
        let mut edges = Vec::new();
        for map in &next {
            starts.push(state(edges.len()));
            edges.extend(map.iter().map(|(&c, &to)| (c, state(to))));
        }
        starts.push(state(edges.len()));
        let mut opens = Box::new([0u64; 1024]);
        let mut open = |first: u8, second: u8| {
            let bit = usize::from(first) << 8 | usize::from(second);
            opens[bit / 64] |= 1 << (bit % 64);
        };
        // Each byte as written, and in the other case for a letter.
        let spellings = |c: u8| [c, c.to_ascii_uppercase(), c.to_ascii_lowercase()];
        for first in 0..=u8::MAX {
            let in_key = root[usize::from(first.to_ascii_lowercase())] != NONE;
            if starts_escape(first) || in_key && needed == 1 {
                (0..=u8::MAX).for_each(|second| open(first, second));
            } else if in_key {
                for second in ESCAPES
                    .into_iter()
                    .chain((0..=u8::MAX).filter(|byte| starts_invisible(*byte)))
                {
                    open(first, second);
                }
            }
        }
        for pair in key.windows(2) {
            for first in spellings(pair[0]) {
                for second in spellings(pair[1]) {
                    open(first, second);
                }
            }
        }
        Runs {
            root,
            opens,
            starts,
            edges,
        }
    }

    /// Whether an echo may start with `first` then `second`.
    fn opens(&self, first: u8, second: u8) -> bool {
        let bit = usize::from(first) << 8 | usize::from(second);
        self.opens[bit / 64] & 1 << (bit % 64) != 0
    }

    /// The state after reading `byte` (lowercased) in `state`, if the key
    /// has that run.
    fn step(&self, state: u32, byte: u8) -> Option<u32> {
        if state == ROOT {
            let to = self.root[usize::from(byte)];
            return (to != NONE).then_some(to);
        }
        let s = state as usize;
        let edges = &self.edges[self.starts[s] as usize..self.starts[s + 1] as usize];
        edges
            .binary_search_by_key(&byte, |&(c, _)| c)
            .ok()
            .map(|i| edges[i].1)
    }
}

/// The bytes an escape of some [`Family`] may start with.
const ESCAPES: [u8; 4] = [b'%', b'+', b'\\', b'&'];

/// Whether an escape of some [`Family`] may start with `byte`.
fn starts_escape(byte: u8) -> bool {
    ESCAPES.contains(&byte)
}

/// What a spelling in a text stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelled {
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
pub const INVISIBLE: [char; 8] = [
    '\u{200b}', '\u{200c}', '\u{200d}', '\u{2060}', '\u{ad}', '\u{200e}', '\u{200f}', '\u{feff}',
];

/// Whether `c` shows nothing and may stand between two key characters: a
/// character (ASCII controls and DEL included) that [`crate::visible::hidden`] writes as
/// `\u{..}` on the terminal (invisible operators, fillers, bidi marks,
/// variation selectors, tags...), one list for both.
pub fn is_invisible(c: char) -> bool {
    crate::visible::hidden(c)
}

/// Whether `byte` may start the UTF-8 of an [`is_invisible`] character: an
/// ASCII control or DEL, or the first byte of one of the others (a test
/// holds the list to the function).
fn starts_invisible(byte: u8) -> bool {
    matches!(
        byte,
        0x00..=0x1f | 0x7f | 0xc2 | 0xcd | 0xd8 | 0xe1 | 0xe2 | 0xe3 | 0xef | 0xf0 | 0xf3
    )
}

/// The length of the UTF-8 of an [`is_invisible`] character at the start
/// of `text`, if one is there.
fn invisible(text: &[u8]) -> Option<usize> {
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
fn stands_for(value: u32) -> Option<Spelled> {
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
fn spellings(
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
fn hex_byte(high: u8, low: u8) -> Option<u8> {
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

/// The most digits of a numeric character reference that are read,
/// leading zeros included (`&#x0000000024;`): a browser reads any number,
/// but a bound keeps each step of a walk short.
const MAX_REFERENCE_DIGITS: usize = 32;

/// What an HTML character reference at the start of `text` spells, and
/// its length, as a browser reads it: by number, `;` or not (the digits
/// run as far as they go), or by name (see [`NAMED_REFERENCES`]).
fn html_escape(text: &[u8]) -> Option<(Spelled, usize)> {
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
const NAMED_REFERENCES: &[(&str, Spelled)] = &[
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

#[cfg(test)]
mod tests;
