//! Reads bytes from a source in bounded chunks, runs the [`Matcher`] on them and turns raw
//! matches into [`Finding`]s with line, column, hashes and a redacted context line.
//!
//! Chunks overlap by `2 * MARGIN` bytes and each chunk reports only matches that start in its
//! own part of the stream, so a secret that straddles a chunk boundary is found exactly once
//! and memory stays bounded however long a file or a single line is.

use keywatch_model::Finding;
use std::io::{self, Read};

use crate::filters::{redact, sha256_hex};
use crate::matcher::{Matcher, RawMatch, Scratch, MULTILINE_WINDOW};
use crate::validate::decode_jwt;

/// Bytes kept from one chunk into the next: every window reaches at most this far.
const MARGIN: usize = 2 * MULTILINE_WINDOW;
/// Context shown either side of a secret.
const CONTEXT_CHARS: usize = 60;

pub const DEFAULT_CHUNK_SIZE: usize = 4 << 20;

/// Options that change what a finding contains.
#[derive(Debug, Clone, Copy, Default)]
pub struct FindingOptions {
    /// Put the full secret in `Finding::secret` (`--show-secrets`).
    pub include_secret: bool,
}

pub struct Searcher<'m> {
    matcher: &'m Matcher,
    chunk_size: usize,
    options: FindingOptions,
    buf: Vec<u8>,
    raw: Vec<RawMatch>,
    scratch: Scratch,
}

impl<'m> Searcher<'m> {
    pub fn new(matcher: &'m Matcher, options: FindingOptions) -> Self {
        Self::with_chunk_size(matcher, options, DEFAULT_CHUNK_SIZE)
    }

    /// A searcher with a given chunk size (at least four margins); tests use small chunks
    /// to exercise the boundaries.
    pub fn with_chunk_size(matcher: &'m Matcher, options: FindingOptions, chunk_size: usize) -> Self {
        Searcher {
            matcher,
            chunk_size: chunk_size.max(4 * MARGIN),
            options,
            buf: Vec::new(),
            raw: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// Searches an in-memory buffer in one go.
    pub fn search_slice(&mut self, data: &[u8], path: &str, out: &mut Vec<Finding>) {
        self.raw.clear();
        self.matcher.find(data, 0..data.len(), path, &mut self.scratch, &mut self.raw);
        let pos = LinePosition::default();
        emit(self.matcher, data, &mut self.raw, &pos, path, self.options, out);
    }

    /// Searches a stream chunk by chunk; returns the number of bytes read. On a read error
    /// the findings of the part already read are kept in `out`.
    pub fn search_reader(&mut self, reader: &mut dyn Read, path: &str, out: &mut Vec<Finding>) -> io::Result<u64> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let result = self.search_chunks(reader, path, out, &mut buf);
        buf.clear();
        if buf.capacity() > 2 * (self.chunk_size + 2 * MARGIN) {
            buf.shrink_to(self.chunk_size + 2 * MARGIN);
        }
        self.buf = buf;
        result
    }

    fn search_chunks(
        &mut self,
        reader: &mut dyn Read,
        path: &str,
        out: &mut Vec<Finding>,
        buf: &mut Vec<u8>,
    ) -> io::Result<u64> {
        let mut total: u64 = 0;
        let mut report_from = 0usize;
        let mut pos = LinePosition::default();
        loop {
            let target = self.chunk_size + 2 * MARGIN;
            let (read, eof) = fill(reader, buf, target)?;
            total += read as u64;
            let report_end = if eof { buf.len() } else { buf.len() - MARGIN };
            self.raw.clear();
            self.matcher.find(buf, report_from..report_end, path, &mut self.scratch, &mut self.raw);
            emit(self.matcher, buf, &mut self.raw, &pos, path, self.options, out);
            if eof {
                return Ok(total);
            }
            let keep_from = buf.len() - 2 * MARGIN;
            pos.advance(&buf[..keep_from]);
            buf.drain(..keep_from);
            report_from = MARGIN;
        }
    }
}

/// Reads until `buf` holds `target` bytes or the stream ends. `read_to_end` on a `Take`
/// fills spare capacity without zeroing the whole chunk first, which matters for many small
/// files.
fn fill(reader: &mut dyn Read, buf: &mut Vec<u8>, target: usize) -> io::Result<(usize, bool)> {
    let start = buf.len();
    if buf.capacity() < target {
        buf.reserve(target - buf.len());
    }
    loop {
        let want = (target - buf.len()) as u64;
        match reader.take(want).read_to_end(buf) {
            Ok(0) => return Ok((buf.len() - start, true)),
            Ok(_) if buf.len() >= target => return Ok((buf.len() - start, false)),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Line bookkeeping across chunks: the line number at the start of the current buffer and
/// the absolute offset where that line began.
#[derive(Debug, Default)]
struct LinePosition {
    /// Newlines before the current buffer.
    lines_before: u64,
    /// Bytes before the current buffer.
    offset: u64,
    /// Absolute offset of the start of the line in progress at the buffer start.
    line_start: u64,
}

impl LinePosition {
    fn advance(&mut self, dropped: &[u8]) {
        self.lines_before += memchr::memchr_iter(b'\n', dropped).count() as u64;
        if let Some(i) = memchr::memrchr(b'\n', dropped) {
            self.line_start = self.offset + i as u64 + 1;
        }
        self.offset += dropped.len() as u64;
    }
}

fn emit(
    matcher: &Matcher,
    hay: &[u8],
    raw: &mut [RawMatch],
    pos: &LinePosition,
    path: &str,
    options: FindingOptions,
    out: &mut Vec<Finding>,
) {
    raw.sort_unstable_by_key(|m| (m.secret.0, m.rule));
    let ranges: Vec<(usize, usize)> = raw.iter().map(|m| m.secret).collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let mut counted_to = 0usize;
    let mut lines = pos.lines_before;
    // Absolute offset of the start of the line holding `counted_to`, kept while counting so
    // no match needs a second scan backwards through a long line.
    let mut line_start_abs = pos.line_start;
    for m in raw.iter() {
        let (s, e) = m.secret;
        for i in memchr::memchr_iter(b'\n', &hay[counted_to..s]) {
            lines += 1;
            line_start_abs = pos.offset + (counted_to + i) as u64 + 1;
        }
        counted_to = s;
        let column = pos.offset + s as u64 - line_start_abs + 1;
        let rule = &matcher.rules()[m.rule];
        let secret = &hay[s..e];
        let secret_sha256 = sha256_hex(secret);
        let line = lines + 1;
        out.push(Finding {
            rule_id: rule.id.clone(),
            provider: rule.provider.clone(),
            description: rule.description.clone(),
            severity: rule.severity,
            path: path.to_string(),
            line,
            column,
            fingerprint: fingerprint(&rule.id, &secret_sha256, path, line),
            secret_sha256,
            context: context_line(hay, s, e, &ranges),
            redacted: redact(secret),
            validation: m.validation,
            commit: None,
            har: None,
            jwt: looks_like_jwt(secret).then(|| decode_jwt(secret, now, None)).flatten(),
            secret: options.include_secret.then(|| String::from_utf8_lossy(secret).into_owned()),
        });
    }
}

/// A secret shaped like a JWT (`eyJ` header, three dot-separated parts), whoever matched it:
/// the JWT rule, a bearer-header rule or a generic one.
pub fn looks_like_jwt(secret: &[u8]) -> bool {
    secret.starts_with(b"eyJ") && secret.iter().filter(|&&b| b == b'.').count() == 2
}

/// Stable identity of a finding: rule, secret hash and location (path and line).
pub fn fingerprint(rule_id: &str, secret_sha256: &str, path: &str, line: u64) -> String {
    let key = format!("{rule_id}\0{secret_sha256}\0{path}\0{line}");
    sha256_hex(key.as_bytes())[..32].to_string()
}

/// The secret's line, clipped for display, with this secret and every other secret found on
/// it replaced by their redacted forms. `secrets` is sorted by start.
fn context_line(hay: &[u8], s: usize, e: usize, secrets: &[(usize, usize)]) -> String {
    let lo = s.saturating_sub(CONTEXT_CHARS * 4);
    let line_start = memchr::memrchr(b'\n', &hay[lo..s]).map_or(lo, |i| lo + i + 1);
    let hi = (e + CONTEXT_CHARS * 4).min(hay.len());
    let line_end = match memchr::memchr(b'\n', &hay[s..e]) {
        Some(i) => s + i,
        None => memchr::memchr(b'\n', &hay[e..hi]).map_or(hi, |i| e + i),
    };
    let lossy = |a: usize, b: usize| String::from_utf8_lossy(&hay[a..b]).into_owned();
    let (mut before, mut after) = (String::new(), String::new());
    let mut target_seen = false;
    let mut cursor = line_start;
    for &(a, b) in secrets {
        if b <= cursor || a >= line_end {
            continue;
        }
        let start = a.max(cursor);
        let side = if target_seen { &mut after } else { &mut before };
        side.push_str(&lossy(cursor, start));
        if !target_seen && a <= s && s < b {
            target_seen = true;
        } else {
            side.push_str(&redact(&hay[start..b]));
        }
        cursor = b;
        if cursor >= line_end {
            break;
        }
    }
    if cursor < line_end {
        let side = if target_seen { &mut after } else { &mut before };
        side.push_str(&lossy(cursor, line_end));
    }
    let mut out = clip_start(before.trim_start(), CONTEXT_CHARS);
    out.push_str(&redact(&hay[s..e]));
    out.push_str(&clip_end(&after, CONTEXT_CHARS));
    out.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn clip_start(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        s.to_string()
    } else {
        let mut out = String::from("…");
        out.extend(s.chars().skip(n - max));
        out
    }
}

fn clip_end(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}
