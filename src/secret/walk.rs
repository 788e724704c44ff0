//! Finding an echo of the key in a text: the walks that read it, one
//! spelled character at a time, in the key's [`Runs`].

use super::*;

impl Blanker {
    /// The first echo at or after `from`, as a byte range: the longest
    /// spelling found at the leftmost place. `walks` is room to work in.
    pub(super) fn find(
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
}

/// One way of reading the text from an echo's start (see
/// [`Blanker::longest_at`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Walk {
    /// Where in the text it is.
    at: usize,
    /// What it read, as a state of the key's [`Runs`].
    state: u32,
    /// The family of the escapes it read, once it read one.
    family: Option<Family>,
    /// How many key characters it read, up to [`Blanker::needed`].
    count: usize,
}
