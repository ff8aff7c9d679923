//! The keyword prefilter: every occurrence of every rule keyword in a buffer, ASCII
//! case-insensitively, overlapping matches included.
//!
//! This is the one part of the engine that touches every input byte, so its speed is the
//! scanner's speed. A DFA walk is bound by the latency of one table load per byte (the table
//! of a few hundred keywords lives in L2, not L1), not by arithmetic. So a large buffer is cut
//! into [`LANES`] segments walked in lock-step: the loads of different lanes do not depend on
//! each other and the CPU overlaps them. Each lane starts `longest keyword - 1` bytes before
//! its segment so that a keyword straddling a cut is still seen, and reports only keywords
//! ending inside its own segment, so every occurrence is reported exactly once.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::nfa::contiguous;
use aho_corasick::{AhoCorasickKind, Anchored, MatchKind, StartKind};
use anyhow::{Context, Result};

/// Independent walks interleaved over one buffer.
const LANES: usize = 4;
/// Below this size a buffer is walked as one lane: the set-up would cost more than it saves.
const MIN_LANE_BYTES: usize = 4096;

/// One keyword occurrence: `hay[start..end]` equals keyword `pattern`, ignoring ASCII case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeywordHit {
    pub pattern: usize,
    pub start: usize,
    pub end: usize,
}

pub struct KeywordIndex {
    automaton: Walker,
    longest: usize,
}

enum Walker {
    Dfa(DFA),
    /// Only when a huge keyword set exceeds the DFA's limits: slower, but has none.
    Nfa(contiguous::NFA),
}

impl KeywordIndex {
    /// `patterns` must be non-empty lower-case byte strings.
    pub fn new(patterns: &[Vec<u8>]) -> Result<Self> {
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            // Without a prefilter the start state is not "special", so the hot loop only
            // branches on match states.
            .prefilter(false)
            .build(patterns);
        let automaton = match dfa {
            Ok(dfa) => Walker::Dfa(dfa),
            Err(_) => Walker::Nfa(
                contiguous::NFA::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .prefilter(false)
                    .build(patterns)
                    .context("cannot build the keyword automaton")?,
            ),
        };
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        Ok(KeywordIndex { automaton, longest })
    }

    /// Which automaton the index runs, for diagnostics.
    pub fn kind(&self) -> AhoCorasickKind {
        match self.automaton {
            Walker::Dfa(_) => AhoCorasickKind::DFA,
            Walker::Nfa(_) => AhoCorasickKind::ContiguousNFA,
        }
    }

    /// Appends every keyword occurrence in `hay` to `out`, ordered by end offset.
    pub fn find_all(&self, hay: &[u8], out: &mut Vec<KeywordHit>, lanes: &mut LaneScratch) {
        match &self.automaton {
            Walker::Dfa(dfa) => find_interleaved(dfa, self.longest, hay, out, lanes),
            Walker::Nfa(nfa) => find_interleaved(nfa, self.longest, hay, out, lanes),
        }
    }
}

/// Scratch space for [`KeywordIndex::find_all`], one hit list per lane.
pub type LaneScratch = [Vec<KeywordHit>; LANES];

fn find_interleaved<A: Automaton>(
    automaton: &A,
    longest: usize,
    hay: &[u8],
    out: &mut Vec<KeywordHit>,
    lanes: &mut LaneScratch,
) {
    let start = automaton.start_state(Anchored::No).expect("built with unanchored starts");
    if longest == 0 || hay.len() < MIN_LANE_BYTES.max(LANES * longest * 4) {
        walk(automaton, start, hay, 0, 0, hay.len(), out);
        return;
    }
    // Lane `l` owns matches ending in (cut[l], cut[l + 1]] and walks from `from[l]`.
    let segment = hay.len() / LANES;
    let cuts: [usize; LANES + 1] = std::array::from_fn(|l| if l == LANES { hay.len() } else { l * segment });
    let from: [usize; LANES] = std::array::from_fn(|l| cuts[l].saturating_sub(longest - 1));
    let common = (0..LANES).map(|l| cuts[l + 1] - from[l]).min().unwrap_or(0);
    for lane in lanes.iter_mut() {
        lane.clear();
    }
    let mut state = [start; LANES];
    let [h0, h1, h2, h3] = std::array::from_fn::<&[u8], LANES, _>(|l| &hay[from[l]..from[l] + common]);
    for k in 0..common {
        let bytes = [h0[k], h1[k], h2[k], h3[k]];
        for l in 0..LANES {
            state[l] = automaton.next_state(Anchored::No, state[l], bytes[l]);
            if automaton.is_special(state[l]) {
                let end = from[l] + k + 1;
                if end > cuts[l] {
                    push_matches(automaton, state[l], end, &mut lanes[l]);
                }
            }
        }
    }
    for l in 0..LANES {
        walk(automaton, state[l], hay, from[l] + common, cuts[l], cuts[l + 1], &mut lanes[l]);
        out.append(&mut lanes[l]);
    }
}

/// Walks `hay[from..to]` from `state`, reporting matches that end after `owned_after`.
fn walk<A: Automaton>(
    automaton: &A,
    mut state: StateID,
    hay: &[u8],
    from: usize,
    owned_after: usize,
    to: usize,
    out: &mut Vec<KeywordHit>,
) {
    for (i, &byte) in hay[from..to].iter().enumerate() {
        state = automaton.next_state(Anchored::No, state, byte);
        if automaton.is_special(state) {
            let end = from + i + 1;
            if end > owned_after {
                push_matches(automaton, state, end, out);
            }
        }
    }
}

#[inline(never)]
fn push_matches<A: Automaton>(automaton: &A, state: StateID, end: usize, out: &mut Vec<KeywordHit>) {
    if !automaton.is_match(state) {
        return;
    }
    for index in 0..automaton.match_len(state) {
        let pattern = automaton.match_pattern(state, index);
        let len = automaton.pattern_len(pattern);
        out.push(KeywordHit { pattern: pattern.as_usize(), start: end - len, end });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::AhoCorasick;

    fn reference(patterns: &[Vec<u8>], hay: &[u8]) -> Vec<KeywordHit> {
        let ac = AhoCorasick::builder().ascii_case_insensitive(true).build(patterns).unwrap();
        let mut hits: Vec<KeywordHit> = ac
            .find_overlapping_iter(hay)
            .map(|m| KeywordHit { pattern: m.pattern().as_usize(), start: m.start(), end: m.end() })
            .collect();
        hits.sort_by_key(|h| (h.end, h.pattern));
        hits
    }

    fn ours(index: &KeywordIndex, hay: &[u8]) -> Vec<KeywordHit> {
        let mut out = Vec::new();
        index.find_all(hay, &mut out, &mut Default::default());
        assert!(out.windows(2).all(|w| w[0].end <= w[1].end), "hits must come ordered by end");
        out.sort_by_key(|h| (h.end, h.pattern));
        out
    }

    #[test]
    fn interleaved_walk_finds_exactly_what_a_plain_search_finds() {
        let patterns: Vec<Vec<u8>> =
            ["ghp_", "akia", "secret", "token", "api_key", "key", "xoxb-", "sk_live_", "password", "ey"]
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect();
        let index = KeywordIndex::new(&patterns).unwrap();
        assert_eq!(index.kind(), AhoCorasickKind::DFA);
        // A deterministic haystack dense in keywords, in mixed case, with keywords laid across
        // every possible lane cut for several lengths.
        let words = ["GHP_", "Secret", "tok", "en", "API_KEY", "xoxb-", "pass", "word", "sk_LIVE_", "eY", "zz", " "];
        let mut seed = 0x9e3779b97f4a7c15u64;
        for len in [0usize, 1, 7, 4095, 4096, 4097, 20_011, 65_536, 100_003] {
            let mut hay = Vec::with_capacity(len + 16);
            while hay.len() < len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                hay.extend_from_slice(words[(seed % words.len() as u64) as usize].as_bytes());
            }
            hay.truncate(len);
            assert_eq!(ours(&index, &hay), reference(&patterns, &hay), "haystack of {len} bytes");
        }
    }
}
