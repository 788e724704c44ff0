//! Echoes of the key encoded in base64 (standard or URL-safe alphabet,
//! padded or not, its `/` and `+` escaped or not).

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::*;

impl Blanker {
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
    pub(super) fn base64_echoes(
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
