//! Every run of consecutive characters of the key, as a suffix automaton
//! the walks read a text in.

use std::collections::BTreeMap;

use super::*;

/// The state of [`Runs`] where every walk starts.
pub(super) const ROOT: u32 = 0;

/// No transition from the root on a byte.
const NONE: u32 = u32::MAX;

/// Every run of consecutive characters of the key, ASCII-lowercased, as a
/// suffix automaton: a walk from [`ROOT`] that reads a string stays in it
/// exactly when the string is such a run, from anywhere in the key. It
/// has fewer than two states and three transitions per key byte.
#[derive(Clone)]
pub(super) struct Runs {
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
    pub(super) fn new(key: &[u8], needed: usize) -> Runs {
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
    pub(super) fn opens(&self, first: u8, second: u8) -> bool {
        let bit = usize::from(first) << 8 | usize::from(second);
        self.opens[bit / 64] & 1 << (bit % 64) != 0
    }

    /// The state after reading `byte` (lowercased) in `state`, if the key
    /// has that run.
    pub(super) fn step(&self, state: u32, byte: u8) -> Option<u32> {
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
