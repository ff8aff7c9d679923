//! The rule engine: an Aho-Corasick keyword prefilter over the whole input, then each rule's
//! regex only on small windows around its keywords' hits.
//!
//! Almost all input holds no keyword of any rule, so the cost per byte is one pass of one
//! automaton; the regexes, which are the expensive part, run on a few kilobytes per hit.

use anyhow::Result;
use keywatch_model::Validation;
use std::collections::HashMap;
use std::ops::Range;

use crate::filters::{is_documented_example, looks_like_placeholder, shannon_entropy};
use crate::keywords::{KeywordHit, KeywordIndex, LaneScratch};
use crate::rules::{AllowTarget, Allowlist, CompiledRule, LoadedRules, SecretGroup};
use crate::validate::Outcome;

/// How far either side of a keyword a single-line rule looks (the line, clipped to this).
pub const LINE_WINDOW: usize = 4096;
/// How far either side of a keyword a multi-line rule looks.
pub const MULTILINE_WINDOW: usize = 8192;

/// Markers that suppress every finding on their line.
const INLINE_ALLOW_MARKERS: [&[u8]; 2] = [b"keywatch:allow", b"gitleaks:allow"];

/// A candidate that passed every filter: offsets are into the searched buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawMatch {
    pub rule: usize,
    pub secret: (usize, usize),
    pub validation: Validation,
}

/// Reusable buffers for one thread's searches.
#[derive(Default)]
pub struct Scratch {
    windows: Vec<(usize, usize, usize)>,
    hits: Vec<KeywordHit>,
    lanes: LaneScratch,
}

pub struct Matcher {
    rules: Vec<CompiledRule>,
    global_allowlist: Allowlist,
    keywords: KeywordIndex,
    /// For each keyword pattern, the rules it triggers.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules with no keywords: they run over the whole buffer.
    unanchored_rules: Vec<usize>,
    keep_invalid: bool,
}

impl Matcher {
    pub fn new(loaded: LoadedRules, keep_invalid: bool) -> Result<Self> {
        let mut keyword_ids: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut unanchored_rules = Vec::new();
        for (idx, rule) in loaded.rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                unanchored_rules.push(idx);
                continue;
            }
            for kw in &rule.keywords {
                let key = kw.as_bytes().to_ascii_lowercase();
                let id = *keyword_ids.entry(key.clone()).or_insert_with(|| {
                    patterns.push(key);
                    keyword_rules.push(Vec::new());
                    patterns.len() - 1
                });
                if !keyword_rules[id].contains(&idx) {
                    keyword_rules[id].push(idx);
                }
            }
        }
        let keywords = KeywordIndex::new(&patterns)?;
        Ok(Matcher {
            rules: loaded.rules,
            global_allowlist: loaded.global_allowlist,
            keywords,
            keyword_rules,
            unanchored_rules,
            keep_invalid,
        })
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Finds every accepted secret in `hay` whose match starts inside `report`.
    /// `path` is used for path-based allow-lists and rule path filters.
    pub fn find(&self, hay: &[u8], report: Range<usize>, path: &str, scratch: &mut Scratch, out: &mut Vec<RawMatch>) {
        if self.path_allowed(&self.global_allowlist, path) {
            return;
        }
        let Scratch { windows, hits, lanes } = scratch;
        windows.clear();
        hits.clear();
        self.keywords.find_all(hay, hits, lanes);
        let mut line_cache: Option<(usize, usize)> = None;
        for hit in hits.iter() {
            for &rule_idx in &self.keyword_rules[hit.pattern] {
                let rule = &self.rules[rule_idx];
                let (start, end) = if rule.multiline {
                    (hit.start.saturating_sub(MULTILINE_WINDOW), (hit.end + MULTILINE_WINDOW).min(hay.len()))
                } else {
                    line_window(hay, hit.start, hit.end, &mut line_cache)
                };
                windows.push((rule_idx, start, end));
            }
        }
        for &rule_idx in &self.unanchored_rules {
            windows.push((rule_idx, 0, hay.len()));
        }
        if windows.is_empty() {
            return;
        }
        windows.sort_unstable();
        // Merge overlapping windows of one rule so each byte is searched once per rule.
        let mut merged: Vec<(usize, usize, usize)> = Vec::with_capacity(windows.len());
        for &(rule, start, end) in windows.iter() {
            match merged.last_mut() {
                Some(last) if last.0 == rule && start < last.2 => last.2 = last.2.max(end),
                _ => merged.push((rule, start, end)),
            }
        }
        let first_new = out.len();
        for (rule_idx, start, end) in merged {
            let rule = &self.rules[rule_idx];
            if let Some(filter) = &rule.path_filter {
                if !filter.is_match(path.as_bytes()) {
                    continue;
                }
            }
            if self.path_allowed(&rule.allowlist, path) {
                continue;
            }
            let window = &hay[start..end];
            let program = rule.pattern.program();
            for caps in program.regex.captures_iter(window) {
                let whole = caps.get(0).expect("group 0 always participates");
                let match_start = start + whole.start();
                if !report.contains(&match_start) {
                    continue;
                }
                let secret = match program.secret_group {
                    SecretGroup::Index(i) => caps.get(i),
                    SecretGroup::Whole => Some(whole),
                };
                let Some(secret) = secret else { continue };
                let secret_range = (start + secret.start(), start + secret.end());
                let whole_range = (match_start, start + whole.end());
                if let Some(validation) = self.accept(rule, hay, secret_range, whole_range) {
                    out.push(RawMatch { rule: rule_idx, secret: secret_range, validation });
                }
            }
        }
        self.drop_generic_duplicates(out, first_new);
    }

    /// A generic rule (`api_key = ...`) that caught a secret a provider rule also caught adds
    /// nothing but noise: the provider rule says more.
    fn drop_generic_duplicates(&self, out: &mut Vec<RawMatch>, first_new: usize) {
        let mut specific: Vec<(usize, usize)> =
            out[first_new..].iter().filter(|m| !self.rules[m.rule].generic).map(|m| m.secret).collect();
        if specific.is_empty() || specific.len() == out.len() - first_new {
            return;
        }
        specific.sort_unstable();
        let mut index = first_new;
        out.retain(|m| {
            let keep = index < first_new || !self.rules[m.rule].generic || {
                let (s, e) = m.secret;
                // Specific ranges starting before this one ends; any reaching past its start overlaps.
                let upto = specific.partition_point(|r| r.0 < e);
                !specific[..upto].iter().rev().take(64).any(|r| r.1 > s)
            };
            index += 1;
            keep
        });
    }

    fn path_allowed(&self, allowlist: &Allowlist, path: &str) -> bool {
        allowlist.paths.iter().any(|p| p.is_match(path.as_bytes()))
    }

    /// Applies the filters of `docs/rules.md` in order, returning the validation status of an
    /// accepted candidate.
    fn accept(
        &self,
        rule: &CompiledRule,
        hay: &[u8],
        secret: (usize, usize),
        whole: (usize, usize),
    ) -> Option<Validation> {
        let value = &hay[secret.0..secret.1];
        if value.is_empty() || is_documented_example(value, rule.generic) {
            return None;
        }
        if let Some(min) = rule.min_entropy {
            if shannon_entropy(value) < min {
                return None;
            }
        }
        if rule.generic && looks_like_placeholder(value) {
            return None;
        }
        let line = line_around(hay, secret.0);
        let mut lower: Option<Vec<u8>> = None;
        for allowlist in [&rule.allowlist, &self.global_allowlist] {
            if allowlist.is_empty() {
                continue;
            }
            let lower = lower.get_or_insert_with(|| value.to_ascii_lowercase());
            if allowlist.stopwords.iter().any(|w| memchr::memmem::find(lower, w.as_bytes()).is_some()) {
                return None;
            }
            for (target, re) in &allowlist.regexes {
                let subject = match target {
                    AllowTarget::Secret => value,
                    AllowTarget::Match => &hay[whole.0..whole.1],
                    AllowTarget::Line => line,
                };
                if re.get().is_match(subject) {
                    return None;
                }
            }
        }
        if INLINE_ALLOW_MARKERS.iter().any(|m| memchr::memmem::find(line, m).is_some()) {
            return None;
        }
        match rule.validator.map(|v| v.check(value)) {
            None | Some(Outcome::StructureValid) => Some(Validation::Unverified),
            Some(Outcome::ChecksumValid) => Some(Validation::ChecksumValid),
            Some(Outcome::Invalid) if self.keep_invalid => Some(Validation::ChecksumInvalid),
            Some(Outcome::Invalid) => None,
        }
    }
}

/// The line around `pos`, clipped to `LINE_WINDOW` either side.
pub fn line_around(hay: &[u8], pos: usize) -> &[u8] {
    let lo = pos.saturating_sub(LINE_WINDOW);
    let start = memchr::memrchr(b'\n', &hay[lo..pos]).map_or(lo, |i| lo + i + 1);
    let hi = (pos + LINE_WINDOW).min(hay.len());
    let end = memchr::memchr(b'\n', &hay[pos..hi]).map_or(hi, |i| pos + i);
    &hay[start..end]
}

/// The window of a single-line rule for a keyword hit at `start..end`: its line, clipped.
/// Consecutive hits on one long line reuse the line bounds found for the previous hit.
fn line_window(hay: &[u8], start: usize, end: usize, cache: &mut Option<(usize, usize)>) -> (usize, usize) {
    let (line_start, line_end) = match *cache {
        Some((ls, le)) if ls <= start && end <= le => (ls, le),
        _ => {
            let ls = memchr::memrchr(b'\n', &hay[..start]).map_or(0, |i| i + 1);
            let le = memchr::memchr(b'\n', &hay[end..]).map_or(hay.len(), |i| end + i);
            *cache = Some((ls, le));
            (ls, le)
        }
    };
    (line_start.max(start.saturating_sub(LINE_WINDOW)), line_end.min(end + LINE_WINDOW))
}
