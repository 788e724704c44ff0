//! Blanking the API key out of text that came from elsewhere (a server's
//! answer, a key command's error output): the one place that knows every
//! way a key can be spelled back. Whatever reaches the terminal, the
//! results file, the summary JSON, the report or `-v` went through
//! [`Blanker::blank`] once, where the answer was read.

use std::borrow::Cow;

mod base64_echoes;
mod html;
mod runs;
mod spelling;
mod walk;

use html::*;
use runs::*;
pub(crate) use spelling::*;
use walk::*;

/// What a blanked key reads as.
pub(crate) const BLANK: &str = "***";

/// Fewer consecutive key characters than this, echoed from anywhere in the
/// key (its start, its end, its middle), are not blanked: a short run is
/// not the key (a key is dozens of characters), and blanking it would
/// change names and addresses that merely share it. A key shorter than
/// this is blanked only whole.
pub(crate) const MIN_RUN: usize = 12;

/// Blanks one secret (the API key): any run of at least [`MIN_RUN`] of its
/// consecutive characters (the whole key when it is shorter), in ASCII
/// upper or lower case or as written, in each spelling of [`Family`], and
/// in a base64 run (standard or URL-safe alphabet, padded or not) that
/// decodes to such a run. Characters that show nothing ([`INVISIBLE`]) may
/// sit between the key's characters, as themselves or escaped: a reader
/// sees the key whole.
#[derive(Clone)]
pub(crate) struct Blanker {
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
    pub(crate) fn new(secret: &str) -> Blanker {
        let secret = secret.trim().as_bytes();
        let needed = secret.len().min(MIN_RUN);
        Blanker {
            runs: (!secret.is_empty()).then(|| Runs::new(secret, needed)),
            needed,
        }
    }

    /// `text` with every echo of the key replaced by [`BLANK`]; borrowed,
    /// without a copy, when there is none.
    pub(crate) fn blank<'a>(&self, text: Cow<'a, str>) -> Cow<'a, str> {
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
    pub(crate) fn finds_in(&self, text: &str) -> bool {
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
}

#[cfg(test)]
mod tests;
