//! HTTP Archive (HAR 1.2) scanning and sanitising.
//!
//! Data flow: [`reader`] splits the file, read as a stream, into units (one entry, page or
//! other member of `log` each); batches of units are processed in parallel; each unit is
//! parsed by [`json`] (keeping byte spans), its string values are classified by where they
//! sit (header, cookie, query parameter, body...), every value is searched with the
//! detection rules in one pass, and [`policy`] adds what rules cannot know (session cookies,
//! bearer credentials, secret-named fields). The same hits become findings (`har scan`) or
//! markers spliced into the original bytes (`har sanitize`), so the two always agree.

pub mod json;
pub mod policy;
pub mod reader;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use anyhow::Result;
use base64::Engine as _;
use keywatch_model::{Finding, HarContext, ScanError, Severity, Validation};
use rayon::prelude::*;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::ops::Range;

use crate::filters::{redact, sha256_hex};
use crate::matcher::{Matcher, RawMatch, Scratch};
use crate::rules::LoadedRules;
use crate::searcher::{fingerprint, looks_like_jwt};
use crate::validate::decode_jwt;
use json::{Node, Value};
use policy::{FieldNames, HeaderClass, Tier, MARKER_PREFIX};
use reader::{Piece, Unit};

/// Largest entry (or page) read whole: 256 MiB.
pub const DEFAULT_MAX_UNIT: usize = 256 << 20;
/// Units are processed in parallel in batches of about this many bytes.
const BATCH_BYTES: usize = 8 << 20;
/// The sanitiser's second pass reads its spool in chunks of this size.
const SPOOL_CHUNK: usize = 8 << 20;
thread_local! {
    /// The matcher's buffers, kept per worker thread across units instead of grown anew.
    static MATCH_SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Distinct keys of one JSON body whose classification is remembered.
const KEY_CACHE: usize = 32;
/// Characters of sanitised value shown either side of a marker in a finding's context.
const CONTEXT_CHARS: usize = 60;

#[derive(Debug, Clone)]
pub struct HarOptions {
    pub max_unit: usize,
    /// More field names to redact (`--redact-name`), treated as secrets.
    pub extra_names: Vec<String>,
    /// Put full secrets in findings (`--show-secrets`).
    pub include_secret: bool,
    /// Keep every redaction in `FileReport::redactions` (`--report`); otherwise they are only
    /// counted, so memory does not grow with the file.
    pub list_redactions: bool,
}

impl Default for HarOptions {
    fn default() -> Self {
        HarOptions {
            max_unit: DEFAULT_MAX_UNIT,
            extra_names: Vec::new(),
            include_secret: false,
            list_redactions: false,
        }
    }
}

/// A kind of secret known from where it sits in HTTP traffic rather than from its format.
#[derive(Debug)]
pub struct Builtin {
    pub id: &'static str,
    pub description: &'static str,
    pub severity: Severity,
}

pub const SESSION_COOKIE: Builtin =
    Builtin { id: "session-cookie", description: "Session cookie", severity: Severity::High };
pub const COOKIE: Builtin = Builtin { id: "cookie", description: "Cookie value", severity: Severity::Info };
pub const BEARER_TOKEN: Builtin =
    Builtin { id: "bearer-token", description: "Bearer token in an Authorization header", severity: Severity::High };
pub const BASIC_AUTH: Builtin =
    Builtin { id: "basic-auth", description: "Basic credentials in an Authorization header", severity: Severity::High };
pub const AUTH_HEADER: Builtin =
    Builtin { id: "auth-header", description: "Credential in an authentication header", severity: Severity::High };
pub const API_KEY_HEADER: Builtin =
    Builtin { id: "api-key-header", description: "API key in a request header", severity: Severity::High };
pub const SENSITIVE_FIELD: Builtin = Builtin {
    id: "sensitive-field",
    description: "Secret-named parameter or field (password, token, code...)",
    severity: Severity::High,
};
pub const CORRELATION_FIELD: Builtin = Builtin {
    id: "correlation-field",
    description: "Session-correlating value (state, nonce, CSRF token)",
    severity: Severity::Info,
};
pub const URL_PASSWORD: Builtin =
    Builtin { id: "url-password", description: "Password in a URL's userinfo", severity: Severity::High };

#[derive(Debug, Clone, Copy)]
enum Kind {
    Rule(usize),
    Builtin(&'static Builtin),
}

/// One secret (or redactable value) inside a searched text.
#[derive(Debug, Clone)]
struct Hit {
    range: Range<usize>,
    kind: Kind,
    name: Option<String>,
    /// The secret's bytes when they differ from the text (percent- or JSON-decoded).
    secret: Option<Vec<u8>>,
    validation: Validation,
    /// Reported as a finding (a credential), not only redacted.
    report: bool,
}

/// A value with its secrets replaced, and where each replacement starts and what it is.
type Rewritten = (String, Vec<(usize, String)>);

/// Overlapping hits merged: the whole range is redacted, the winner names it.
struct Resolved {
    range: Range<usize>,
    winner: Hit,
}

/// One redaction, for `har sanitize --report`.
#[derive(Debug, Clone, Serialize)]
pub struct Redaction {
    pub file: String,
    /// JSON pointer of the value that was changed.
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<u64>,
    pub part: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub kind: String,
    pub marker: String,
    /// Whether `har scan` reports this value as a secret (cookies without session value,
    /// `state` and `nonce` are redacted but not reported).
    pub secret: bool,
}

/// What one HAR file yielded.
#[derive(Debug, Default)]
pub struct FileReport {
    pub findings: Vec<Finding>,
    /// Every redaction, when `HarOptions::list_redactions` is set.
    pub redactions: Vec<Redaction>,
    /// Values redacted, and how many of them are secrets (always counted).
    pub redacted: u64,
    pub redacted_secrets: u64,
    pub errors: Vec<ScanError>,
    pub entries: u64,
    pub bytes: u64,
}

impl FileReport {
    fn absorb_redactions(&mut self, redactions: Vec<Redaction>, keep: bool) {
        self.redacted += redactions.len() as u64;
        self.redacted_secrets += redactions.iter().filter(|r| r.secret).count() as u64;
        if keep {
            self.redactions.extend(redactions);
        }
    }
}

pub struct HarScanner {
    matcher: Matcher,
    names: FieldNames,
    options: HarOptions,
    /// How much of its spool the sanitiser's second pass reads at a time; tests make it tiny.
    spool_chunk: usize,
}

/// Where a string value sits in an entry, which decides how it is searched.
#[derive(Debug, Clone, Copy)]
enum Role<'n> {
    Url,
    Header(&'n str),
    Cookie(&'n str),
    Param(&'n str),
    Body(&'n str),
    Other,
}

struct Target<'n> {
    /// The JSON string in the unit's bytes, quotes included.
    span: Range<usize>,
    part: &'static str,
    name: Option<&'n str>,
    role: Role<'n>,
    /// What is searched: the value, or for base64 bodies the decoded text.
    text: Cow<'n, str>,
    base64: bool,
    /// Offset of `text` in the unit's combined search buffer.
    at: usize,
}

#[derive(Clone, Copy)]
enum Seg<'n> {
    Key(&'n str),
    Index(usize),
}

/// The result of one unit: findings, report lines, splices and problems.
#[derive(Default)]
struct UnitOutcome {
    findings: Vec<Finding>,
    redactions: Vec<Redaction>,
    edits: Vec<(Range<usize>, Vec<u8>)>,
    errors: Vec<String>,
    /// Secret values found, by the bytes to look for elsewhere.
    known: Vec<(Vec<u8>, Known)>,
    /// Whether the unit has a base64 body holding text, which a byte search cannot see into.
    decoded_body: bool,
}

/// What a first pass learnt for the second.
#[derive(Default)]
struct FirstPass {
    known: HashMap<Vec<u8>, Known>,
    units_with_decoded_bodies: std::collections::HashSet<String>,
    /// Where each unit went in the output (sanitising only).
    spans: Vec<UnitSpan>,
}

/// A unit's place in the sanitiser's first output.
struct UnitSpan {
    start: u64,
    end: u64,
    pointer: String,
    entry: Option<usize>,
    line: u64,
}

/// A secret found in one place, to be found again wherever else it appears.
#[derive(Debug, Clone)]
struct Known {
    kind: Kind,
    report: bool,
    /// What its marker hashes: the secret as first found.
    secret: Vec<u8>,
}

/// The secrets of a file's first pass, as one automaton.
struct KnownSet {
    entries: Vec<Known>,
    pattern_entry: Vec<usize>,
    automaton: AhoCorasick,
    /// The same patterns in SIMD (Teddy) searchers of 32 each, for up to 64 patterns: checking
    /// every unit for any known secret is the second pass's main cost, and these are many
    /// times faster than the automaton there. Empty when the CPU does not allow them.
    quick: Vec<aho_corasick::packed::Searcher>,
    /// For more patterns than a few SIMD searchers hold: one pass with hashed prefixes.
    prefixes: Option<PrefixFilter>,
    patterns: Vec<Vec<u8>>,
    units_with_decoded_bodies: std::collections::HashSet<String>,
    longest_pattern: usize,
}

/// Finds every occurrence of many strings of at least [`PREFIX_LEN`] bytes in one pass: the
/// six bytes at every `stride`-th position are hashed into a bitmap of the patterns' six-byte
/// windows at offsets `0..stride`, and only the rare hits are compared. Its cost does not grow
/// with the number of patterns, where each SIMD searcher adds a pass over the data.
struct PrefixFilter {
    bits: Vec<u64>,
    /// Right shift that turns the 64-bit hash into a bit index.
    shift: u32,
    /// Six-byte window -> (pattern, offset of the window in the pattern).
    by_window: HashMap<u64, Vec<(usize, usize)>>,
    stride: usize,
}

const PREFIX_LEN: usize = 6;
/// The filter probes every `stride`-th position, up to this many bytes apart.
const MAX_STRIDE: usize = 8;

impl PrefixFilter {
    fn new(patterns: &[Vec<u8>]) -> Option<Self> {
        let shortest = patterns.iter().map(Vec::len).min()?;
        if shortest < PREFIX_LEN {
            return None;
        }
        // Every match must contain a window starting at a scanned position.
        let stride = (shortest - PREFIX_LEN + 1).min(MAX_STRIDE);
        // About 64 bits per window: few false hits, and a bitmap small enough to stay in the
        // L1/L2 cache, which is what makes a probe cheap.
        let windows = patterns.len() * stride;
        let bit_count = (windows * 64).next_power_of_two().clamp(1 << 12, 1 << 22);
        let shift = 64 - bit_count.trailing_zeros();
        let mut bits = vec![0u64; bit_count / 64];
        let mut by_window: HashMap<u64, Vec<(usize, usize)>> = HashMap::new();
        for (id, p) in patterns.iter().enumerate() {
            for offset in 0..stride {
                let key = prefix_key(&p[offset..offset + PREFIX_LEN]);
                let h = prefix_hash(key, shift);
                bits[h >> 6] |= 1 << (h & 63);
                by_window.entry(key).or_default().push((id, offset));
            }
        }
        Some(PrefixFilter { bits, shift, by_window, stride })
    }

    fn for_each_match(&self, haystack: &[u8], patterns: &[Vec<u8>], f: &mut dyn FnMut(usize)) {
        if haystack.len() < PREFIX_LEN {
            return;
        }
        let last = haystack.len() - PREFIX_LEN;
        let mut i = 0;
        while i <= last {
            let key = if i + 8 <= haystack.len() {
                u64::from_le_bytes(haystack[i..i + 8].try_into().expect("eight bytes")) & 0xFFFF_FFFF_FFFF
            } else {
                prefix_key(&haystack[i..i + PREFIX_LEN])
            };
            let h = prefix_hash(key, self.shift);
            if self.bits[h >> 6] & (1 << (h & 63)) != 0 {
                if let Some(candidates) = self.by_window.get(&key) {
                    for &(id, offset) in candidates {
                        if i >= offset && haystack[i - offset..].starts_with(&patterns[id]) {
                            f(i - offset);
                        }
                    }
                }
            }
            i += self.stride;
        }
    }
}

fn prefix_key(bytes: &[u8]) -> u64 {
    bytes.iter().take(PREFIX_LEN).enumerate().fold(0u64, |acc, (i, &b)| acc | (u64::from(b) << (8 * i)))
}

fn prefix_hash(key: u64, shift: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

impl KnownSet {
    fn build(first: FirstPass) -> Option<Self> {
        let found = first.known;
        if found.is_empty() {
            return None;
        }
        let mut patterns: Vec<Vec<u8>> = Vec::with_capacity(found.len());
        let mut entries = Vec::with_capacity(found.len());
        let mut pattern_entry = Vec::with_capacity(found.len());
        for (pattern, known) in found {
            patterns.push(pattern);
            pattern_entry.push(entries.len());
            entries.push(known);
        }
        // Only the few units the filters flag are searched with this, so the compact NFA
        // (its memory grows with the patterns, a DFA's many times faster) is the right kind.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::ContiguousNFA))
            .build(&patterns)
            .ok()?;
        // Up to two SIMD (Teddy) searchers of 32 beat the prefix filter; past that, one pass
        // of the filter beats several searchers. The automaton is the fallback for CPUs
        // without the SIMD the searchers need.
        let (quick, prefixes) = if patterns.len() <= 64 {
            let searchers = patterns.chunks(32).map(|group| {
                aho_corasick::packed::Config::new()
                    .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
                    .builder()
                    .extend(group)
                    .build()
            });
            (searchers.collect::<Option<Vec<_>>>().unwrap_or_default(), None)
        } else {
            (Vec::new(), PrefixFilter::new(&patterns))
        };
        let units_with_decoded_bodies = first.units_with_decoded_bodies;
        let longest_pattern = patterns.iter().map(Vec::len).max().unwrap_or(0);
        Some(KnownSet {
            entries,
            pattern_entry,
            automaton,
            quick,
            prefixes,
            patterns,
            units_with_decoded_bodies,
            longest_pattern,
        })
    }

    /// Calls `f` with the start of every match of any known secret in `haystack`.
    fn for_each_match(&self, haystack: &[u8], f: &mut dyn FnMut(usize)) {
        if let Some(prefixes) = &self.prefixes {
            prefixes.for_each_match(haystack, &self.patterns, f);
        } else if self.quick.is_empty() {
            self.automaton.find_iter(haystack).for_each(|m| f(m.start()));
        } else {
            for searcher in &self.quick {
                searcher.find_iter(haystack).for_each(|m| f(m.start()));
            }
        }
    }

    /// Whether a unit may hold a known secret: written out, or inside a base64 text body.
    fn touches(&self, unit: &Unit) -> bool {
        if self.units_with_decoded_bodies.contains(&unit.pointer) {
            return true;
        }
        let mut found = false;
        self.for_each_match(&unit.bytes, &mut |_| found = true);
        found
    }
}

/// Records a redacted value for the second pass, as written and percent-encoded, if it is
/// distinctive enough that finding it elsewhere means finding the same secret.
fn remember(known: &mut Vec<(Vec<u8>, Known)>, text: &str, res: &Resolved) {
    // Every cookie value is redacted where it appears as a cookie; only credentials and
    // session-correlating values are worth hunting for elsewhere.
    if matches!(res.winner.kind, Kind::Builtin(b) if b.id == COOKIE.id) {
        return;
    }
    let secret = secret_bytes(text, &res.winner);
    let entry = Known { kind: res.winner.kind, report: res.winner.report, secret: secret.clone() };
    let mut add = |pattern: Vec<u8>, min_len: usize, entry: &Known| {
        let distinctive = pattern.len() >= min_len
            && !pattern.iter().all(u8::is_ascii_digit)
            && memchr::memmem::find(&pattern, MARKER_PREFIX.as_bytes()).is_none()
            && crate::filters::shannon_entropy(&pattern) >= 2.5;
        if distinctive {
            let encoded = percent_encode(&pattern);
            if encoded != pattern {
                known.push((encoded, entry.clone()));
            }
            known.push((pattern, entry.clone()));
        }
    };
    add(secret, 8, &entry);
    if matches!(res.winner.kind, Kind::Builtin(b) if b.id == BASIC_AUTH.id) {
        let credentials = &text[res.winner.range.clone()];
        if let Some(password) = basic_password(credentials) {
            let entry = Known { secret: password.clone(), ..entry.clone() };
            // Shorter values could not be searched for by the second pass's filter anyway.
            add(password, PREFIX_LEN, &entry);
        }
    }
}

fn percent_encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// Whether `range` overlaps a `[REDACTED:kind:hash]` marker in `text`.
fn inside_marker(text: &str, range: &Range<usize>) -> bool {
    let bytes = text.as_bytes();
    let finder = memchr::memmem::Finder::new(MARKER_PREFIX.as_bytes());
    finder.find_iter(bytes).any(|start| {
        let end = memchr::memchr(b']', &bytes[start..]).map_or(bytes.len(), |i| start + i + 1);
        start < range.end && range.start < end
    })
}

fn finding_key(f: &Finding) -> (String, String) {
    (f.har.as_ref().map(|h| h.location.clone()).unwrap_or_default(), f.secret_sha256.clone())
}

/// Why a sanitise run produced no output.
#[derive(Debug)]
pub struct SanitizeFailure(pub String);

impl std::fmt::Display for SanitizeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SanitizeFailure {}

enum Stop {
    Structure(reader::StructureError),
    Output(String),
}

impl From<reader::StructureError> for Stop {
    fn from(e: reader::StructureError) -> Self {
        Stop::Structure(e)
    }
}

impl HarScanner {
    pub fn new(rules: LoadedRules, keep_invalid: bool, options: HarOptions) -> Result<Self> {
        let names = FieldNames::new(&options.extra_names);
        Ok(HarScanner { matcher: Matcher::new(rules, keep_invalid)?, names, options, spool_chunk: SPOOL_CHUNK })
    }

    /// Finds every secret in one HAR. Problems are reported in the result and the rest of
    /// the file is still scanned; a broken structure ends the scan at that point.
    ///
    /// `open` is called once or twice: when a secret found in one place also appears where
    /// no rule would see it (a token copied into a script), a second pass over the units
    /// holding it reports those places too.
    pub fn scan(&self, open: &mut dyn FnMut() -> std::io::Result<Box<dyn Read>>, display: &str) -> FileReport {
        let mut report = FileReport::default();
        let error = |report: &mut FileReport, message: String| {
            report.errors.push(ScanError { path: display.to_string(), message });
        };
        let mut input = match open() {
            Ok(input) => input,
            Err(e) => {
                error(&mut report, format!("cannot read: {e}"));
                return report;
            }
        };
        let known = match self.run(&mut input, display, None, None, &mut report) {
            Ok(known) => known,
            Err(Stop::Structure(e)) => {
                error(&mut report, e.to_string());
                return report;
            }
            Err(Stop::Output(message)) => {
                error(&mut report, message);
                return report;
            }
        };
        let Some(known) = KnownSet::build(known) else { return report };
        let mut second = FileReport::default();
        let Ok(mut input) = open() else { return report };
        if self.run(&mut input, display, None, Some(&known), &mut second).is_ok() {
            let mut seen: std::collections::HashSet<(String, String)> =
                report.findings.iter().map(finding_key).collect();
            report.findings.extend(second.findings.into_iter().filter(|f| seen.insert(finding_key(f))));
        }
        report
    }

    /// Writes a sanitised copy of one HAR to `out`. Any problem fails the whole file: a
    /// sanitiser that skipped an entry it could not read would hand out its secrets.
    ///
    /// The first pass writes to a temporary file in `spool_dir`; the second copies it to
    /// `out`, also redacting every other occurrence of the secrets the first pass found.
    pub fn sanitize(
        &self,
        input: &mut dyn Read,
        display: &str,
        out: &mut dyn Write,
        spool_dir: &std::path::Path,
    ) -> Result<FileReport, SanitizeFailure> {
        let fail = |e: Stop| match e {
            Stop::Structure(e) => SanitizeFailure(format!("{display}: {e}")),
            Stop::Output(message) => SanitizeFailure(message),
        };
        let spool_error = |e: std::io::Error| SanitizeFailure(format!("{display}: temporary file: {e}"));
        let mut spool = tempfile::tempfile_in(spool_dir).map_err(spool_error)?;
        let mut report = FileReport::default();
        let mut first = {
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, &mut spool);
            let first = self.run(input, display, Some(&mut writer), None, &mut report).map_err(fail)?;
            writer.flush().map_err(spool_error)?;
            first
        };
        let spans = std::mem::take(&mut first.spans);
        let known = first;
        std::io::Seek::rewind(&mut spool).map_err(spool_error)?;
        match KnownSet::build(known) {
            None => {
                copy_in_chunks(&mut spool, out)
                    .map_err(|e| SanitizeFailure(format!("{display}: cannot write the sanitised copy: {e}")))?;
            }
            Some(known) => {
                self.second_pass_spooled(&mut spool, &spans, &known, display, out, &mut report).map_err(fail)?;
            }
        }
        Ok(report)
    }

    /// The sanitiser's second pass over its own first output, read once: each chunk is
    /// searched for the known secrets, and every unit whose bytes have all been searched is
    /// written out, parsed again first only if a known secret starts inside it. Most of the
    /// file goes straight from the read buffer to `out`.
    fn second_pass_spooled(
        &self,
        spool: &mut std::fs::File,
        spans: &[UnitSpan],
        known: &KnownSet,
        display: &str,
        out: &mut dyn Write,
        report: &mut FileReport,
    ) -> Result<(), Stop> {
        let io = |e: std::io::Error| Stop::Output(format!("{display}: cannot write the sanitised copy: {e}"));
        let mut touched: Vec<bool> =
            spans.iter().map(|u| known.units_with_decoded_bodies.contains(&u.pointer)).collect();
        let overlap = known.longest_pattern.saturating_sub(1);
        // `buf` holds the spool's bytes from `buf_start`; everything before `emitted` is out.
        let mut buf: Vec<u8> = Vec::with_capacity(self.spool_chunk + overlap);
        let mut buf_start: u64 = 0;
        let mut emitted: u64 = 0;
        let mut searched: u64 = 0;
        let mut next_span = 0;
        loop {
            let read = (&mut *spool).take(self.spool_chunk as u64).read_to_end(&mut buf).map_err(io)?;
            let end = buf_start + buf.len() as u64;
            let at_eof = read == 0;
            // Re-searching the last `overlap` bytes finds secrets cut by the chunk boundary;
            // marking a unit twice is harmless.
            let from = searched.saturating_sub(overlap as u64).max(buf_start);
            known.for_each_match(&buf[(from - buf_start) as usize..], &mut |at| {
                let at = from + at as u64;
                let i = spans.partition_point(|u| u.start <= at);
                if i > 0 && at < spans[i - 1].end {
                    touched[i - 1] = true;
                }
            });
            searched = end;
            // A secret starting at or after `decided` may not have been seen whole yet.
            let decided = if at_eof { end } else { end.saturating_sub(overlap as u64) };
            while next_span < spans.len() && spans[next_span].end <= decided {
                let span = &spans[next_span];
                let local = |at: u64| (at - buf_start) as usize;
                out.write_all(&buf[local(emitted)..local(span.start)]).map_err(io)?;
                let unit_bytes = &buf[local(span.start)..local(span.end)];
                if touched[next_span] {
                    let unit = Unit {
                        pointer: span.pointer.clone(),
                        entry: span.entry,
                        bytes: unit_bytes.to_vec(),
                        offset: span.start,
                        line: span.line,
                    };
                    let outcome = self.process_unit(&unit, display, true, Some(known));
                    if let Some(first) = outcome.errors.first() {
                        return Err(Stop::Output(format!("{display}: {first}; no output written")));
                    }
                    out.write_all(&splice(&unit.bytes, &outcome.edits)).map_err(io)?;
                    report.absorb_redactions(outcome.redactions, self.options.list_redactions);
                } else {
                    out.write_all(unit_bytes).map_err(io)?;
                }
                emitted = span.end;
                next_span += 1;
            }
            // Skeleton bytes before the next undecided unit can go too.
            let flushable = spans.get(next_span).map_or(decided, |u| u.start.min(decided));
            if flushable > emitted {
                out.write_all(&buf[(emitted - buf_start) as usize..(flushable - buf_start) as usize]).map_err(io)?;
                emitted = flushable;
            }
            if at_eof {
                return Ok(());
            }
            // Keep what is not yet written and the tail the next search must see again.
            let keep_from = emitted.min(end.saturating_sub(overlap as u64)).max(buf_start);
            buf.drain(..(keep_from - buf_start) as usize);
            buf_start = keep_from;
        }
    }

    /// One pass over a HAR. With `known`, only units holding a known secret are processed
    /// (the rest are copied), and known secrets are found wherever they appear. Returns the
    /// secrets found, for a second pass.
    fn run(
        &self,
        input: &mut dyn Read,
        display: &str,
        mut out: Option<&mut dyn Write>,
        known: Option<&KnownSet>,
        report: &mut FileReport,
    ) -> Result<FirstPass, Stop> {
        let sanitizing = out.is_some();
        let mut found = FirstPass::default();
        let mut written: u64 = 0;
        let mut batch: Vec<Piece> = Vec::new();
        let mut batch_bytes = 0usize;
        let mut flush = |batch: &mut Vec<Piece>, report: &mut FileReport| -> Result<(), Stop> {
            let outcomes: Vec<Option<UnitOutcome>> = batch
                .par_iter()
                .map(|piece| match piece {
                    Piece::Unit(unit) if known.is_none_or(|k| k.touches(unit)) => {
                        Some(self.process_unit(unit, display, sanitizing, known))
                    }
                    _ => None,
                })
                .collect();
            // The batch's output goes out in one vectored write, straight from the pieces.
            let mut output: Vec<Cow<'_, [u8]>> = Vec::with_capacity(if sanitizing { batch.len() } else { 0 });
            for (piece, outcome) in batch.iter().zip(outcomes) {
                match (piece, outcome) {
                    (Piece::Skeleton(bytes), _) => {
                        report.bytes += bytes.len() as u64;
                        written += bytes.len() as u64;
                        output.push(Cow::Borrowed(bytes));
                    }
                    (Piece::Oversized { pointer, bytes, line, .. }, _) => {
                        report.bytes += *bytes;
                        let message = format!(
                            "{pointer} (line {line}) is {bytes} bytes, more than the {} byte limit (--max-entry-size); not scanned",
                            self.options.max_unit
                        );
                        if sanitizing {
                            return Err(Stop::Output(format!("{display}: {message}")));
                        }
                        report.errors.push(ScanError { path: display.to_string(), message });
                    }
                    (Piece::Unit(unit), outcome) => {
                        report.bytes += unit.bytes.len() as u64;
                        report.entries += u64::from(unit.entry.is_some());
                        let Some(outcome) = outcome else {
                            written += unit.bytes.len() as u64;
                            output.push(Cow::Borrowed(&unit.bytes));
                            continue;
                        };
                        if sanitizing {
                            if let Some(first) = outcome.errors.first() {
                                return Err(Stop::Output(format!("{display}: {first}; no output written")));
                            }
                            let bytes = splice(&unit.bytes, &outcome.edits);
                            found.spans.push(UnitSpan {
                                start: written,
                                end: written + bytes.len() as u64,
                                pointer: unit.pointer.clone(),
                                entry: unit.entry,
                                line: unit.line,
                            });
                            written += bytes.len() as u64;
                            output.push(bytes);
                        }
                        for (pattern, k) in outcome.known {
                            found.known.entry(pattern).or_insert(k);
                        }
                        if outcome.decoded_body {
                            found.units_with_decoded_bodies.insert(unit.pointer.clone());
                        }
                        report.findings.extend(outcome.findings);
                        report.absorb_redactions(outcome.redactions, self.options.list_redactions);
                        report.errors.extend(
                            outcome.errors.into_iter().map(|message| ScanError { path: display.to_string(), message }),
                        );
                    }
                }
            }
            if let Some(w) = out.as_mut() {
                write_all_vectored(&mut **w, &output)
                    .map_err(|e| Stop::Output(format!("{display}: cannot write the sanitised copy: {e}")))?;
            }
            drop(output);
            batch.clear();
            Ok(())
        };
        reader::split_har(input, self.options.max_unit, &mut |piece: Piece| -> Result<(), Stop> {
            batch_bytes += match &piece {
                Piece::Unit(u) => u.bytes.len(),
                Piece::Skeleton(s) => s.len(),
                Piece::Oversized { .. } => 0,
            };
            batch.push(piece);
            if batch_bytes >= BATCH_BYTES || batch.len() >= 4096 {
                batch_bytes = 0;
                flush(&mut batch, report)?;
            }
            Ok(())
        })?;
        flush(&mut batch, report)?;
        Ok(found)
    }

    fn process_unit(&self, unit: &Unit, display: &str, sanitizing: bool, known: Option<&KnownSet>) -> UnitOutcome {
        let mut outcome = UnitOutcome::default();
        let root = match json::parse(&unit.bytes) {
            Ok(root) => root,
            Err(e) => {
                let line = unit.line + newlines(&unit.bytes[..e.offset.min(unit.bytes.len())]);
                outcome.errors.push(format!("{} at {}{} (line {line})", e.message, unit.pointer, e.pointer));
                return outcome;
            }
        };
        let in_entry = unit.entry.is_some();
        let mut targets = Vec::new();
        let mut segs = Vec::new();
        let mut errors = Vec::new();
        collect_targets(&root, None, &mut segs, in_entry, unit, &mut targets, &mut errors);
        outcome.errors.extend(errors);
        if targets.is_empty() {
            return outcome;
        }

        // One search over all values of the unit: far cheaper than one per value.
        let mut combined = Vec::with_capacity(targets.iter().map(|t| t.text.len() + 1).sum());
        for t in targets.iter_mut() {
            t.at = combined.len();
            combined.extend_from_slice(t.text.as_bytes());
            combined.push(b'\n');
        }
        outcome.decoded_body = targets.iter().any(|t| t.base64);
        // A second pass only looks for the secrets the first found: rules and field names
        // were applied already (to the same bytes, or to the sanitised copy).
        let mut raw: Vec<RawMatch> = Vec::new();
        if known.is_none() {
            MATCH_SCRATCH
                .with_borrow_mut(|scratch| self.matcher.find(&combined, 0..combined.len(), display, scratch, &mut raw));
        }
        let mut hits: Vec<Vec<Hit>> = vec![Vec::new(); targets.len()];
        for m in raw {
            let idx = targets.partition_point(|t| t.at <= m.secret.0) - 1;
            let t = &targets[idx];
            let range = m.secret.0 - t.at..m.secret.1 - t.at;
            if range.end > t.text.len() || range.is_empty() {
                continue;
            }
            let name = t.name.map(str::to_string);
            hits[idx].push(Hit {
                range,
                kind: Kind::Rule(m.rule),
                name,
                secret: None,
                validation: m.validation,
                report: true,
            });
        }
        if let Some(known) = known {
            for m in known.automaton.find_iter(&combined) {
                let idx = targets.partition_point(|t| t.at <= m.start()) - 1;
                let t = &targets[idx];
                let range = m.start() - t.at..m.end() - t.at;
                // Inside a marker the first pass wrote, a "secret" such as `REDACTED` or a kind
                // id is only the marker's own text.
                if range.end > t.text.len() || inside_marker(&t.text, &range) {
                    continue;
                }
                let k = &known.entries[known.pattern_entry[m.pattern().as_usize()]];
                hits[idx].push(Hit {
                    range,
                    kind: k.kind,
                    name: t.name.map(str::to_string),
                    secret: Some(k.secret.clone()),
                    validation: Validation::Unverified,
                    report: k.report,
                });
            }
        }
        for (t, found) in targets.iter().zip(hits.iter_mut()) {
            // URLs are shown in findings, so they are always fully redacted.
            if known.is_none() || matches!(t.role, Role::Url) {
                self.apply_policy(t, found);
            }
        }

        let context = EntryContext::of(&root, in_entry);
        let resolved: Vec<Vec<Resolved>> = targets.iter().zip(hits).map(|(t, h)| self.resolve(&t.text, h)).collect();
        let mut url = context.url.clone();
        let mut rewritten: Vec<Option<Rewritten>> = Vec::with_capacity(targets.len());
        for (t, r) in targets.iter().zip(&resolved) {
            let new = (!r.is_empty()).then(|| self.rewrite(&t.text, r));
            if t.part == "request URL" {
                if let Some((text, _)) = &new {
                    url = text.clone();
                }
            }
            rewritten.push(new);
        }

        let mut line_index: Option<Vec<usize>> = None;
        for ((t, r), new) in targets.iter().zip(&resolved).zip(&rewritten) {
            let Some((new_text, markers)) = new else { continue };
            let pointer = pointer_at(unit, &root, &t.span);
            for (res, (marker_at, replacement)) in r.iter().zip(markers) {
                let marker_at = *marker_at;
                remember(&mut outcome.known, &t.text, res);
                // The report shows the marker alone, not the JWT header and claims before it.
                let marker =
                    replacement.find(MARKER_PREFIX).map_or(replacement.as_str(), |i| &replacement[i..]).to_string();
                let kind_id = self.kind_id(res.winner.kind);
                let name = res.winner.name.clone().or(t.name.map(str::to_string));
                outcome.redactions.push(Redaction {
                    file: display.to_string(),
                    location: pointer.clone(),
                    entry: unit.entry.map(|e| e as u64),
                    part: t.part.to_string(),
                    name: name.clone(),
                    kind: kind_id.to_string(),
                    marker: marker.clone(),
                    secret: res.winner.report,
                });
                if !res.winner.report {
                    continue;
                }
                let newlines = line_index.get_or_insert_with(|| memchr::memchr_iter(b'\n', &unit.bytes).collect());
                let before = newlines.partition_point(|&n| n < t.span.start);
                let line = unit.line + before as u64;
                let line_start = if before == 0 { 0 } else { newlines[before - 1] + 1 };
                let column = if before == 0 && unit.line == 1 {
                    unit.offset + (t.span.start - line_start) as u64 + 1
                } else {
                    (t.span.start - line_start) as u64 + 1
                };
                let secret = secret_bytes(&t.text, &res.winner);
                outcome.findings.push(self.finding(FindingParts {
                    display,
                    kind: res.winner.kind,
                    validation: res.winner.validation,
                    secret: &secret,
                    line,
                    column,
                    context: context_around(new_text, marker_at, replacement.len()),
                    har: HarContext {
                        location: pointer.clone(),
                        entry: unit.entry.map(|e| e as u64),
                        part: t.part.to_string(),
                        name,
                        method: context.method.clone(),
                        url: url.clone(),
                        host: context.host.clone(),
                        started: context.started.clone(),
                    },
                    started: context.started_epoch,
                }));
            }
            if sanitizing {
                let value = if t.base64 {
                    Cow::Owned(base64::engine::general_purpose::STANDARD.encode(new_text.as_bytes()))
                } else {
                    Cow::Borrowed(new_text.as_str())
                };
                let mut token = Vec::with_capacity(value.len() + 2);
                token.push(b'"');
                json::escape_into(&value, &mut token);
                token.push(b'"');
                outcome.edits.push((t.span.clone(), token));
            }
        }
        outcome.edits.sort_by_key(|e| e.0.start);
        outcome
    }

    /// Adds the hits that depend on where the value sits.
    fn apply_policy(&self, t: &Target, hits: &mut Vec<Hit>) {
        let text = t.text.as_ref();
        match t.role {
            Role::Url => self.url_hits(text, hits),
            Role::Other => {
                if policy::looks_like_url(text) {
                    self.url_hits(text, hits);
                }
            }
            Role::Param(name) => self.field_hit(name, text, 0..text.len(), true, hits),
            Role::Cookie(name) => cookie_hit(name, text, 0..text.len(), hits),
            Role::Header(name) => match policy::header_class(name) {
                HeaderClass::Plain if self.names.tier(name).is_some() => {
                    let tier = self.names.tier(name).unwrap_or(Tier::Secret);
                    let range = trim_range(text, 0..text.len());
                    if FieldNames::value_qualifies(name, &text[range.clone()]) {
                        let kind = if tier == Tier::Secret { &SENSITIVE_FIELD } else { &CORRELATION_FIELD };
                        hits.push(builtin_hit(range, kind, name, None, tier == Tier::Secret));
                    }
                }
                HeaderClass::Auth => auth_hit(name, text, hits),
                HeaderClass::Cookie => {
                    for pair in policy::pairs(text, 0..text.len(), b';') {
                        cookie_hit(&pair.name, text, pair.value, hits);
                    }
                }
                HeaderClass::SetCookie => {
                    let mut start = 0;
                    for line in text.split('\n') {
                        let end = start + line.find(';').unwrap_or(line.len());
                        for pair in policy::pairs(text, start..end, b';') {
                            cookie_hit(&pair.name, text, pair.value, hits);
                        }
                        start += line.len() + 1;
                    }
                }
                HeaderClass::Credential(tier) => {
                    let range = trim_range(text, 0..text.len());
                    let value = &text[range.clone()];
                    if policy::trivial_value(value) || value.len() < 6 {
                        return;
                    }
                    let kind = match tier {
                        Tier::Correlation => &CORRELATION_FIELD,
                        Tier::Secret if name.to_ascii_lowercase().contains("key") => &API_KEY_HEADER,
                        Tier::Secret => &AUTH_HEADER,
                    };
                    hits.push(builtin_hit(range, kind, name, None, tier == Tier::Secret));
                }
                HeaderClass::Url => self.url_hits(text, hits),
                HeaderClass::Plain => {}
            },
            Role::Body(mime) => self.body_hits(text, mime, hits),
        }
    }

    fn url_hits(&self, text: &str, hits: &mut Vec<Hit>) {
        let (params, password) = policy::url_parts(text);
        for p in params {
            self.field_hit(&p.name, text, p.value, true, hits);
        }
        if let Some(range) = password {
            let decoded = policy::percent_decode(&text[range.clone()]);
            if !policy::trivial_value(&decoded) {
                hits.push(builtin_hit(range, &URL_PASSWORD, "userinfo", Some(decoded.into_bytes()), true));
            }
        }
    }

    /// A value under a field name: redacted if the name is on the list.
    fn field_hit(&self, name: &str, text: &str, range: Range<usize>, percent_encoded: bool, hits: &mut Vec<Hit>) {
        let Some(tier) = self.names.tier(name) else { return };
        let raw = &text[range.clone()];
        let decoded = if percent_encoded { policy::percent_decode(raw) } else { raw.to_string() };
        if !FieldNames::value_qualifies(name, &decoded) {
            return;
        }
        let kind = if tier == Tier::Secret { &SENSITIVE_FIELD } else { &CORRELATION_FIELD };
        let secret = (decoded != raw).then(|| decoded.into_bytes());
        hits.push(builtin_hit(range, kind, name, secret, tier == Tier::Secret));
    }

    fn body_hits(&self, text: &str, mime: &str, hits: &mut Vec<Hit>) {
        let mime_lower = mime.to_ascii_lowercase();
        let trimmed = text.trim_start();
        if mime_lower.contains("json") || trimmed.starts_with('{') || trimmed.starts_with('[') {
            if let Some(found) = self.json_body_hits(text) {
                hits.extend(found);
                return;
            }
        }
        if mime_lower.contains("multipart/form-data") {
            for field in policy::multipart_fields(text, mime) {
                self.field_hit(&field.name, text, field.value, false, hits);
            }
        } else if mime_lower.contains("x-www-form-urlencoded") || (mime_lower.is_empty() && looks_like_form(text)) {
            for pair in policy::pairs(text, 0..text.len(), b'&') {
                self.field_hit(&pair.name, text, pair.value, true, hits);
            }
        }
    }

    /// Secret-named fields and URLs in a JSON body; `None` if the body is not JSON.
    fn json_body_hits(&self, text: &str) -> Option<Vec<Hit>> {
        let mut hits = Vec::new();
        // API bodies are mostly arrays of like objects: the same few keys over and over. A
        // short list of keys already classified saves normalising and matching each again.
        let mut seen_keys: Vec<(&str, Option<Tier>)> = Vec::with_capacity(KEY_CACHE);
        json::visit_strings(text.as_bytes(), &mut |key, content, escaped| {
            let raw = &text[content.clone()];
            if let Some(key) = key {
                let key_raw = &text[key];
                let name = if key_raw.contains('\\') {
                    json::decode_content(key_raw).map(Cow::Owned)
                } else {
                    Some(Cow::Borrowed(key_raw))
                };
                if let Some(name) = name {
                    let tier = match seen_keys.iter().find(|(k, _)| *k == key_raw) {
                        Some(&(_, tier)) => tier,
                        None => {
                            let tier = self.names.tier(&name);
                            if seen_keys.len() < KEY_CACHE {
                                seen_keys.push((key_raw, tier));
                            }
                            tier
                        }
                    };
                    if let Some(tier) = tier {
                        let value =
                            if escaped { json::decode_content(raw).map(Cow::Owned) } else { Some(Cow::Borrowed(raw)) };
                        if let Some(value) = value.filter(|v| FieldNames::value_qualifies(&name, v)) {
                            let kind = if tier == Tier::Secret { &SENSITIVE_FIELD } else { &CORRELATION_FIELD };
                            let secret = escaped.then(|| value.as_bytes().to_vec());
                            hits.push(builtin_hit(content, kind, &name, secret, tier == Tier::Secret));
                            return;
                        }
                    }
                }
            }
            // A URL in a JSON value (`redirect_uri`, `next`) can carry tokens too; its
            // offsets map straight onto the body only when nothing in it is escaped.
            if !escaped && policy::looks_like_url(raw) {
                let mut url_hits = Vec::new();
                self.url_hits(raw, &mut url_hits);
                for mut h in url_hits {
                    h.range = h.range.start + content.start..h.range.end + content.start;
                    hits.push(h);
                }
            }
        })
        .ok()?;
        Some(hits)
    }

    /// Merges overlapping hits; the strongest names the merged range.
    fn resolve(&self, text: &str, mut hits: Vec<Hit>) -> Vec<Resolved> {
        if hits.is_empty() {
            return Vec::new();
        }
        // Byte-level matches can start or end inside a character; redact whole characters.
        for h in hits.iter_mut() {
            h.range = floor_char_boundary(text, h.range.start)..ceil_char_boundary(text, h.range.end);
        }
        hits.sort_by(|a, b| a.range.start.cmp(&b.range.start).then(b.range.end.cmp(&a.range.end)));
        let mut out: Vec<Resolved> = Vec::new();
        for hit in hits {
            match out.last_mut() {
                Some(last) if hit.range.start < last.range.end => {
                    last.range.end = last.range.end.max(hit.range.end);
                    if self.priority(&hit) > self.priority(&last.winner) {
                        last.winner = hit;
                    }
                }
                _ => out.push(Resolved { range: hit.range.clone(), winner: hit }),
            }
        }
        out
    }

    /// Provider rules say most, then the traffic-position kinds, then generic rules.
    fn priority(&self, hit: &Hit) -> u8 {
        match hit.kind {
            Kind::Rule(i) if !self.matcher.rules()[i].generic => 3,
            Kind::Builtin(_) if hit.report => 2,
            Kind::Rule(_) => 1,
            Kind::Builtin(_) => 0,
        }
    }

    fn kind_id(&self, kind: Kind) -> &str {
        match kind {
            Kind::Rule(i) => &self.matcher.rules()[i].id,
            Kind::Builtin(b) => b.id,
        }
    }

    /// The replacement of one merged range: a marker with the kind and a short hash of the
    /// secret, so equal secrets get equal markers. A JWT keeps its header and claims.
    fn marker(&self, text: &str, res: &Resolved) -> String {
        let secret = secret_bytes(text, &res.winner);
        let hash = sha256_hex(&secret);
        let marker = format!("{MARKER_PREFIX}{}:{}]", self.kind_id(res.winner.kind), &hash[..6]);
        let replaced = &text[res.range.clone()];
        match jwt_signature_start(replaced) {
            Some(sig) => format!("{}{marker}", &replaced[..sig]),
            None => marker,
        }
    }

    /// `text` with every resolved range replaced; also where each replacement starts.
    fn rewrite(&self, text: &str, resolved: &[Resolved]) -> Rewritten {
        let mut out = String::with_capacity(text.len());
        let mut replacements = Vec::with_capacity(resolved.len());
        let mut last = 0;
        for res in resolved {
            let start = floor_char_boundary(text, res.range.start.max(last));
            let end = ceil_char_boundary(text, res.range.end);
            out.push_str(&text[last.min(start)..start]);
            let replacement = self.marker(text, res);
            replacements.push((out.len(), replacement.clone()));
            out.push_str(&replacement);
            last = end;
        }
        out.push_str(&text[last..]);
        (out, replacements)
    }

    fn finding(&self, p: FindingParts) -> Finding {
        let (rule_id, provider, description, severity) = match p.kind {
            Kind::Rule(i) => {
                let r = &self.matcher.rules()[i];
                (r.id.clone(), r.provider.clone(), r.description.clone(), r.severity)
            }
            Kind::Builtin(b) => (b.id.to_string(), "HTTP".to_string(), b.description.to_string(), b.severity),
        };
        let secret_sha256 = sha256_hex(p.secret);
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let jwt = looks_like_jwt(p.secret).then(|| decode_jwt(p.secret, now, p.started)).flatten();
        let fingerprint_path = format!("{}#{}", p.display, p.har.location);
        Finding {
            fingerprint: fingerprint(&rule_id, &secret_sha256, &fingerprint_path, p.line),
            rule_id,
            provider,
            description,
            severity,
            path: p.display.to_string(),
            line: p.line,
            column: p.column,
            secret_sha256,
            redacted: redact(p.secret),
            validation: p.validation,
            context: p.context,
            commit: None,
            jwt,
            har: Some(p.har),
            secret: self.options.include_secret.then(|| String::from_utf8_lossy(p.secret).into_owned()),
        }
    }
}

struct FindingParts<'a> {
    display: &'a str,
    kind: Kind,
    validation: Validation,
    secret: &'a [u8],
    line: u64,
    column: u64,
    context: String,
    har: HarContext,
    started: Option<i64>,
}

/// The request an entry made, for findings' context.
#[derive(Default)]
struct EntryContext {
    method: String,
    url: String,
    host: String,
    started: Option<String>,
    started_epoch: Option<i64>,
}

impl EntryContext {
    fn of(root: &Node, in_entry: bool) -> Self {
        if !in_entry {
            return EntryContext::default();
        }
        let request = root.get("request");
        let url = request.and_then(|r| r.str_of("url")).unwrap_or("").to_string();
        let started = root.str_of("startedDateTime").map(str::to_string);
        EntryContext {
            method: request.and_then(|r| r.str_of("method")).unwrap_or("").to_string(),
            host: policy::host_of(&url),
            url,
            started_epoch: started.as_deref().and_then(crate::time::parse_rfc3339),
            started,
        }
    }
}

fn builtin_hit(range: Range<usize>, kind: &'static Builtin, name: &str, secret: Option<Vec<u8>>, report: bool) -> Hit {
    Hit {
        range,
        kind: Kind::Builtin(kind),
        name: Some(name.to_string()),
        secret,
        validation: Validation::Unverified,
        report,
    }
}

fn secret_bytes(text: &str, hit: &Hit) -> Vec<u8> {
    hit.secret.clone().unwrap_or_else(|| text.as_bytes()[hit.range.clone()].to_vec())
}

/// `Authorization: <scheme> <credentials>`: the credentials, named by the scheme.
fn auth_hit(name: &str, text: &str, hits: &mut Vec<Hit>) {
    let full = trim_range(text, 0..text.len());
    let (scheme, creds) = match text[full.clone()].find(' ') {
        Some(sp) => (&text[full.start..full.start + sp], trim_range(text, full.start + sp + 1..full.end)),
        None => ("", full),
    };
    let value = &text[creds.clone()];
    if value.len() < 8 || policy::trivial_value(value) {
        return;
    }
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "bearer" => &BEARER_TOKEN,
        "basic" => &BASIC_AUTH,
        _ => &AUTH_HEADER,
    };
    hits.push(builtin_hit(creds, kind, name, None, true));
}

fn basic_password(encoded: &str) -> Option<Vec<u8>> {
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let password = &decoded[colon + 1..];
    (!password.is_empty()).then(|| password.to_vec())
}

/// A cookie value: always redacted, reported when it is a session credential.
fn cookie_hit(name: &str, text: &str, range: Range<usize>, hits: &mut Vec<Hit>) {
    let mut range = trim_range(text, range);
    let value = &text[range.clone()];
    if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        range = range.start + 1..range.end - 1;
    }
    let value = &text[range.clone()];
    if policy::trivial_value(value) {
        return;
    }
    let session = policy::is_session_cookie(name, value);
    hits.push(builtin_hit(range, if session { &SESSION_COOKIE } else { &COOKIE }, name, None, session));
}

fn trim_range(text: &str, range: Range<usize>) -> Range<usize> {
    let slice = &text[range.clone()];
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.end - (slice.len() - slice.trim_end().len());
    start..end.max(start)
}

fn looks_like_form(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty() && t.contains('=') && !t.contains(|c: char| c.is_whitespace() || c == '<' || c == '{')
}

/// For a signed JWT, the offset of its signature (after the second dot).
fn jwt_signature_start(text: &str) -> Option<usize> {
    if !looks_like_jwt(text.as_bytes()) {
        return None;
    }
    let first = text.find('.')?;
    let second = first + 1 + text[first + 1..].find('.')?;
    (second + 1 < text.len()).then_some(second + 1)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i.min(text.len())
}

fn context_around(text: &str, at: usize, len: usize) -> String {
    let start = floor_char_boundary(text, at.saturating_sub(CONTEXT_CHARS));
    let end = ceil_char_boundary(text, (at + len + CONTEXT_CHARS).min(text.len()));
    text[start..end].chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn newlines(bytes: &[u8]) -> u64 {
    bytecount::count(bytes, b'\n') as u64
}

fn splice<'b>(bytes: &'b [u8], edits: &[(Range<usize>, Vec<u8>)]) -> Cow<'b, [u8]> {
    if edits.is_empty() {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + edits.len() * 32);
    let mut last = 0;
    for (range, replacement) in edits {
        out.extend_from_slice(&bytes[last..range.start]);
        out.extend_from_slice(replacement);
        last = range.end;
    }
    out.extend_from_slice(&bytes[last..]);
    Cow::Owned(out)
}

/// `std::io::copy` into a `dyn Write` moves 8 KiB per call; this moves [`SPOOL_CHUNK`].
fn copy_in_chunks(from: &mut dyn Read, to: &mut dyn Write) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(SPOOL_CHUNK);
    loop {
        buf.clear();
        if from.take(SPOOL_CHUNK as u64).read_to_end(&mut buf)? == 0 {
            return Ok(());
        }
        to.write_all(&buf)?;
    }
}

/// Writes every piece in as few system calls as the writer allows, without first copying
/// them into one buffer.
fn write_all_vectored(out: &mut dyn Write, pieces: &[Cow<'_, [u8]>]) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> =
        pieces.iter().filter(|p| !p.is_empty()).map(|p| std::io::IoSlice::new(p)).collect();
    let mut remaining: &mut [std::io::IoSlice<'_>] = &mut slices;
    // writev takes at most IOV_MAX (1024) slices per call; the writer stops early on its own.
    while !remaining.is_empty() {
        let upto = remaining.len().min(1024);
        match out.write_vectored(&remaining[..upto]) {
            Ok(0) => {
                return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "failed to write the whole buffer"))
            }
            Ok(n) => std::io::IoSlice::advance_slices(&mut remaining, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Walks a unit and lists every string value worth searching, with its role.
fn collect_targets<'n>(
    node: &'n Node<'n>,
    parent: Option<&'n Node<'n>>,
    segs: &mut Vec<Seg<'n>>,
    in_entry: bool,
    unit: &Unit,
    out: &mut Vec<Target<'n>>,
    errors: &mut Vec<String>,
) {
    match &node.value {
        Value::Object(members) => {
            for (key, value) in members {
                segs.push(Seg::Key(key));
                collect_targets(value, Some(node), segs, in_entry, unit, out, errors);
                segs.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                segs.push(Seg::Index(i));
                collect_targets(item, Some(node), segs, in_entry, unit, out, errors);
                segs.pop();
            }
        }
        Value::String(value) => {
            let Some((role, part, name)) = classify(segs, parent, in_entry, unit) else { return };
            if matches!(role, Role::Other) && value.len() < 8 {
                return;
            }
            let mut base64 = false;
            let text: Cow<'n, str> = if let Role::Body(_) = role {
                let encoded = parent.and_then(|p| p.str_of("encoding")).is_some_and(|e| e.eq_ignore_ascii_case("base64"))
                    // Chrome writes the data of binary frames (opcode 2) in base64.
                    || (part == "WebSocket message"
                        && parent.and_then(|p| p.get("opcode")).is_some_and(|o| &unit.bytes[o.span.clone()] == b"2"));
                if encoded {
                    base64 = true;
                    match decode_text_body(value) {
                        Ok(Some(text)) => Cow::Owned(text),
                        Ok(None) => return,
                        Err(message) => {
                            let line = unit.line + newlines(&unit.bytes[..node.span.start]);
                            let pointer = pointer_for(unit, segs);
                            errors.push(format!("{message} at {pointer} (line {line})"));
                            return;
                        }
                    }
                } else {
                    Cow::Borrowed(value.as_ref())
                }
            } else {
                Cow::Borrowed(value.as_ref())
            };
            out.push(Target { span: node.span.clone(), part, name, role, text, base64, at: 0 });
        }
        _ => {}
    }
}

fn classify<'n>(
    segs: &[Seg<'n>],
    parent: Option<&'n Node<'n>>,
    in_entry: bool,
    unit: &Unit,
) -> Option<(Role<'n>, &'static str, Option<&'n str>)> {
    if !in_entry {
        let part = if unit.pointer.starts_with("/log/pages") { "page" } else { "log" };
        return Some((Role::Other, part, None));
    }
    let name = || parent.and_then(|p| p.str_of("name"));
    let side = |s: &str| if s == "request" { 0 } else { 1 };
    use Seg::{Index as I, Key as K};
    Some(match segs {
        [K("request"), K("url")] => (Role::Url, "request URL", None),
        [K("response"), K("redirectURL")] => (Role::Url, "redirect URL", None),
        [K(s @ ("request" | "response")), K("headers"), I(_), K("value")] => {
            let n = name().unwrap_or("");
            (Role::Header(n), ["request header", "response header"][side(s)], name())
        }
        [K(s @ ("request" | "response")), K("cookies"), I(_), K("value")] => {
            let n = name().unwrap_or("");
            (Role::Cookie(n), ["request cookie", "response cookie"][side(s)], name())
        }
        [K("request"), K("queryString"), I(_), K("value")] => {
            (Role::Param(name().unwrap_or("")), "query parameter", name())
        }
        [K("request"), K("postData"), K("params"), I(_), K("value")] => {
            (Role::Param(name().unwrap_or("")), "form field", name())
        }
        [K("request"), K("postData"), K("text")] => {
            (Role::Body(parent.and_then(|p| p.str_of("mimeType")).unwrap_or("")), "request body", None)
        }
        [K("response"), K("content"), K("text")] => {
            (Role::Body(parent.and_then(|p| p.str_of("mimeType")).unwrap_or("")), "response body", None)
        }
        [K("_webSocketMessages"), I(_), K("data")] => (Role::Body(""), "WebSocket message", None),
        _ => (Role::Other, "value", None),
    })
}

/// Decodes a base64 body; `None` when it is binary (images, fonts), which is not searched.
fn decode_text_body(encoded: &str) -> Result<Option<String>, String> {
    let head = &encoded.as_bytes()[..encoded.len().min(8192) / 4 * 4];
    if !head.is_empty() && head.len() < encoded.len() && !head.iter().any(u8::is_ascii_whitespace) {
        // Look at the start first so that large images are not decoded only to be skipped.
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(head) {
            if is_binary(&bytes) {
                return Ok(None);
            }
        }
    }
    let compact: Cow<str> = if encoded.bytes().any(|b| b.is_ascii_whitespace()) {
        Cow::Owned(encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect())
    } else {
        Cow::Borrowed(encoded)
    };
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(compact.as_bytes()).map_err(|e| format!("invalid base64 ({e})"))?;
    if is_binary(&bytes) {
        return Ok(None);
    }
    Ok(String::from_utf8(bytes).ok())
}

fn is_binary(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(8192)];
    if memchr::memchr(0, head).is_some() {
        return true;
    }
    match std::str::from_utf8(head) {
        Ok(_) => false,
        // A multi-byte character cut at the end of the sample is still text.
        Err(e) => e.error_len().is_some(),
    }
}

fn pointer_for(unit: &Unit, segs: &[Seg]) -> String {
    let mut pointer = unit.pointer.clone();
    for seg in segs {
        pointer.push('/');
        match seg {
            Seg::Key(k) => json::push_pointer_token(&mut pointer, k),
            Seg::Index(i) => pointer.push_str(&i.to_string()),
        }
    }
    pointer
}

/// The JSON pointer of the value at `span`, found by descending from the root: computed only
/// for the few values that hold a secret, rather than for every value searched.
fn pointer_at(unit: &Unit, root: &Node, span: &Range<usize>) -> String {
    let mut pointer = unit.pointer.clone();
    let inside = |n: &Node| n.span.start <= span.start && span.end <= n.span.end;
    let mut node = root;
    while node.span != *span {
        match &node.value {
            Value::Object(members) => match members.iter().find(|(_, v)| inside(v)) {
                Some((key, value)) => {
                    pointer.push('/');
                    json::push_pointer_token(&mut pointer, key);
                    node = value;
                }
                None => break,
            },
            Value::Array(items) => match items.iter().position(inside) {
                Some(i) => {
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    node = &items[i];
                }
                None => break,
            },
            _ => break,
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_filter_finds_what_a_plain_search_finds() {
        // 100 token-like patterns, some sharing prefixes, planted at known places including
        // the very end of the haystack.
        for min_extra in [0usize, 5] {
            check_prefix_filter(
                (0..100u32)
                    .map(|i| {
                        format!("tok{:03}x{}{}", i % 70, "q".repeat((i % 9) as usize), "z".repeat(min_extra))
                            .into_bytes()
                    })
                    .collect(),
            );
        }
    }

    fn check_prefix_filter(patterns: Vec<Vec<u8>>) {
        let filter = PrefixFilter::new(&patterns).expect("all patterns are long enough");
        let mut haystack = b"padding ".repeat(50);
        for p in patterns.iter().step_by(7) {
            haystack.extend_from_slice(b" \"");
            haystack.extend_from_slice(p);
        }
        haystack.extend_from_slice(&patterns[99]);
        let mut found = Vec::new();
        filter.for_each_match(&haystack, &patterns, &mut |at| found.push(at));
        found.sort_unstable();
        found.dedup();
        let expected: Vec<usize> =
            (0..haystack.len()).filter(|&i| patterns.iter().any(|p| haystack[i..].starts_with(p))).collect();
        assert_eq!(found, expected, "stride {}", filter.stride);
        assert!(PrefixFilter::new(&[b"short".to_vec()]).is_none());
    }

    /// The second pass reads its spool in chunks and writes each unit once every byte of it
    /// was searched; cutting the spool anywhere must not change the output.
    #[test]
    fn second_pass_output_does_not_depend_on_where_the_spool_is_cut() {
        let token = "Qm9ndXNPcGFxdWVUb2tlbjRkOGYyYTc3YzE5ZQx";
        let mut entries = vec![format!(
            r#"{{"request":{{"method":"GET","url":"https://api.example.net/me","headers":[{{"name":"Authorization","value":"Bearer {token}"}}]}},"response":{{"status":200,"content":{{"size":2,"text":"ok"}}}}}}"#
        )];
        for i in 0..40 {
            let body = if i % 3 == 0 { format!("<input name=t{i} value='{token}'>") } else { "x".repeat(i * 7) };
            entries.push(format!(
                r#"{{"request":{{"method":"GET","url":"https://app.example.net/p/{i}","headers":[]}},"response":{{"status":200,"content":{{"size":{},"mimeType":"text/html","text":"{body}"}}}}}}"#,
                body.len()
            ));
        }
        let har = format!(r#"{{"log":{{"version":"1.2","entries":[{}]}}}}"#, entries.join(",\n"));
        let sanitise = |chunk: usize| {
            let mut scanner = HarScanner::new(LoadedRules::builtin().unwrap(), false, HarOptions::default()).unwrap();
            scanner.spool_chunk = chunk;
            let mut out = Vec::new();
            scanner.sanitize(&mut har.as_bytes(), "t.har", &mut out, &std::env::temp_dir()).unwrap();
            String::from_utf8(out).unwrap()
        };
        let whole = sanitise(SPOOL_CHUNK);
        assert!(!whole.contains(token), "the token survived in {whole}");
        assert_eq!(whole.matches("[REDACTED:bearer-token:").count(), 15, "{whole}");
        for chunk in [1, 7, 64, 333, 4096] {
            assert_eq!(sanitise(chunk), whole, "spool read {chunk} bytes at a time");
        }
    }
}
