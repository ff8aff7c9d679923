//! Finds the records in a log file of any supported platform and turns each into an
//! [`Event`]: AWS CloudTrail, Okta System Log, GitHub audit log, Atlassian (organization
//! events, Confluence and Jira audit), Google Workspace Reports, and any JSON-lines source
//! described by a [`Mapping`].
//!
//! A file is recognised by its content, never its name: gzip by its magic bytes, then JSON
//! lines (the first line is a whole JSON value) or one JSON document (a top-level array, or an
//! object holding the records under `Records`, `Events`, `items`, `data`, `results` or
//! `records`, or a single record). Documents are streamed element by element and lines line
//! by line; neither is loaded whole. Each record's platform is recognised from its fields.
//!
//! A reader thread splits the input into batches of records, worker threads parse them, and
//! the calling thread hands the results to the [`Sink`] in input order. A bad record is
//! reported with its file, line and record number, and the rest is read; a cut-off file keeps
//! what came before the cut.

use crate::fields::type_name;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{anyhow, Context as _};
use keywatch_model::event::{Event, RawRef};
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::mapped::Mapping;
use crate::{atlassian, cloudtrail, github, google, okta};

/// The longest JSON line accepted.
pub const MAX_LINE: usize = 16 * 1024 * 1024;
/// Records are handed to the parsing threads in batches of about this many bytes.
const BATCH_BYTES: usize = 1024 * 1024;
/// Keys under which a JSON document holds its records.
const WRAPPERS: [&str; 6] = ["Records", "Events", "items", "data", "results", "records"];
/// How deep arrays and wrappers may nest inside one line.
const MAX_NESTING: u32 = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub events: u64,
    pub errors: u64,
    /// Bytes read from the file (compressed, for gzip).
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub file: String,
    /// 1-based line of a JSON-lines file; 0 inside a JSON document.
    pub line: u64,
    /// Position of the record in its file, from 1; 0 when the problem is not one record's.
    pub record: u64,
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if self.record > 0 {
            write!(f, " (record {})", self.record)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Where the events and the problems go.
pub trait Sink {
    /// One event, with the offset in the (decompressed) input where its record ends, for
    /// "the first fraction of the input"; see [`decompressed_size`].
    fn event(&mut self, event: Event, position: u64);
    fn error(&mut self, error: ReadError);
    /// The events and errors that follow come from input `index` of [`read_files`].
    fn file(&mut self, _index: usize) {}
}

impl<F: FnMut(Event), G: FnMut(ReadError)> Sink for (F, G) {
    fn event(&mut self, event: Event, _position: u64) {
        (self.0)(event)
    }
    fn error(&mut self, error: ReadError) {
        (self.1)(error)
    }
}

/// The formats besides the built-in ones: field mappings for other JSON-lines sources.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub mappings: Vec<Mapping>,
}

/// A record format, as recognised from a record's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    CloudTrail,
    Okta,
    GitHub,
    Atlassian,
    Google,
    Mapped(usize),
}

/// Reads one file, plain or gzip.
pub fn read_file(path: &Path, sources: &Sources, sink: &mut dyn Sink) -> anyhow::Result<ReadStats> {
    read_files(&[path.to_path_buf()], sources, sink).pop().expect("one result per file")
}

/// Reads files in order through one pipeline, so that the reader thread decompresses and
/// splits the next file while workers parse the last (S3 delivers CloudTrail in thousands of
/// small files). Returns what each file gave, or why it could not be read; the sink hears
/// [`Sink::file`] before each file's events.
pub fn read_files(paths: &[PathBuf], sources: &Sources, sink: &mut dyn Sink) -> Vec<anyhow::Result<ReadStats>> {
    let inputs = paths.iter().map(|p| Input::File(p.clone())).collect();
    let displays: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    run(inputs, &displays, sources, sink)
}

/// Reads from any reader, `display` naming it in errors.
pub fn read(
    input: impl Read + Send,
    display: &str,
    sources: &Sources,
    sink: &mut dyn Sink,
) -> anyhow::Result<ReadStats> {
    let displays = [display.to_string()];
    run(vec![Input::Reader(Box::new(input))], &displays, sources, sink).pop().expect("one result per input")
}

enum Input<'r> {
    File(PathBuf),
    Reader(Box<dyn Read + Send + 'r>),
}

fn run(
    inputs: Vec<Input<'_>>,
    displays: &[String],
    sources: &Sources,
    sink: &mut dyn Sink,
) -> Vec<anyhow::Result<ReadStats>> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    std::thread::scope(|scope| {
        let (batch_tx, batch_rx) = crossbeam_channel::bounded::<Batch>(workers * 2);
        let (done_tx, done_rx) = crossbeam_channel::bounded::<Parsed>(workers * 2);
        scope.spawn(move || produce(inputs, displays, batch_tx));
        for _ in 0..workers {
            let (batch_rx, done_tx) = (batch_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                let mut parser = Parser::new(sources, "");
                let mut file = usize::MAX;
                for batch in batch_rx {
                    if batch.file != file {
                        // Each input is recognised afresh.
                        file = batch.file;
                        parser = Parser::new(sources, &displays[file]);
                    }
                    let outs = parser.batch(&batch);
                    let parsed = Parsed { seq: batch.seq, file: batch.file, outs, end: batch.end };
                    if done_tx.send(parsed).is_err() {
                        return;
                    }
                }
            });
        }
        drop((batch_rx, done_tx));

        let mut results: Vec<Option<anyhow::Result<ReadStats>>> = displays.iter().map(|_| None).collect();
        let mut delivery = Delivery { file: usize::MAX, display: "", sink, records: 0, events: 0, errors: 0 };
        let mut pending = BTreeMap::new();
        let mut next = 0u64;
        for parsed in done_rx {
            pending.insert(parsed.seq, parsed);
            while let Some(parsed) = pending.remove(&next) {
                next += 1;
                if parsed.file != delivery.file {
                    delivery.start(parsed.file, &displays[parsed.file]);
                }
                let end = delivery.deliver(parsed);
                if let Some((file, end)) = end {
                    results[file] = Some(delivery.finish(end));
                }
            }
        }
        results
            .into_iter()
            .zip(displays)
            .map(|(r, display)| r.unwrap_or_else(|| Err(anyhow!("{display}: reader thread stopped"))))
            .collect()
    })
}

/// The reader thread: every input in turn, each ended by a batch that carries how it ended.
fn produce(inputs: Vec<Input<'_>>, displays: &[String], tx: crossbeam_channel::Sender<Batch>) {
    let mut batcher = Batcher { tx, batch: Batch::new(0, 0), closed: false };
    for (file, input) in inputs.into_iter().enumerate() {
        let display = &displays[file];
        batcher.batch.file = file;
        let result = match input {
            Input::File(path) => match std::fs::File::open(&path) {
                Ok(f) => split(f, display, &mut batcher),
                Err(e) => Err(anyhow!("cannot open {display}: {e}")),
            },
            Input::Reader(reader) => split(reader, display, &mut batcher),
        };
        batcher.batch.end = Some(result);
        batcher.flush();
        if batcher.closed {
            return;
        }
    }
}

/// Records of one batch: their bytes, one after another.
struct Batch {
    seq: u64,
    /// Which input they come from.
    file: usize,
    data: Vec<u8>,
    items: Vec<Item>,
    /// The last batch of an input: how reading it ended.
    end: Option<anyhow::Result<Split>>,
}

struct Item {
    start: usize,
    end: usize,
    line: u64,
    /// Offset in the decompressed input where the record ends.
    position: u64,
    /// A record that cannot be parsed at all (an overlong line), with why.
    problem: Option<String>,
}

struct Parsed {
    seq: u64,
    file: usize,
    outs: Vec<Out>,
    end: Option<anyhow::Result<Split>>,
}

enum Out {
    /// An event and where its record ends in the input.
    Event(Box<Event>, u64),
    Error {
        line: u64,
        message: String,
    },
}

/// Hands parsed records to the sink in order, numbering them per input.
struct Delivery<'a, 's> {
    file: usize,
    display: &'a str,
    sink: &'s mut dyn Sink,
    records: u64,
    events: u64,
    errors: u64,
}

impl<'a> Delivery<'a, '_> {
    fn start(&mut self, file: usize, display: &'a str) {
        (self.file, self.display) = (file, display);
        (self.records, self.events, self.errors) = (0, 0, 0);
        self.sink.file(file);
    }

    /// Delivers a batch; returns how its input ended when it was the last.
    fn deliver(&mut self, parsed: Parsed) -> Option<(usize, anyhow::Result<Split>)> {
        for out in parsed.outs {
            self.records += 1;
            match out {
                Out::Event(mut event, position) => {
                    event.raw.record = self.records;
                    self.events += 1;
                    self.sink.event(*event, position);
                }
                Out::Error { line, message } => self.problem(line, self.records, message),
            }
        }
        parsed.end.map(|end| (parsed.file, end))
    }

    /// What an input gave, once its last batch is delivered.
    fn finish(&mut self, end: anyhow::Result<Split>) -> anyhow::Result<ReadStats> {
        let split = end?;
        if let Some((line, message)) = split.fatal {
            if self.records == 0 {
                return Err(anyhow!("{}: {message}", self.display));
            }
            self.problem(line, self.records + 1, format!("{message}; rest of the file skipped"));
        }
        Ok(ReadStats { events: self.events, errors: self.errors, bytes: split.bytes })
    }

    fn problem(&mut self, line: u64, record: u64, message: String) {
        self.errors += 1;
        self.sink.error(ReadError { file: self.display.to_string(), line, record, message });
    }
}

/// What the reader thread ends with.
struct Split {
    bytes: u64,
    /// A problem that ended the file early: line and message.
    fatal: Option<(u64, String)>,
}

struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Cuts batches and sends them to the workers.
struct Batcher {
    tx: crossbeam_channel::Sender<Batch>,
    batch: Batch,
    /// The workers are gone: stop reading.
    closed: bool,
}

impl Batcher {
    fn push(&mut self, record: &[u8], line: u64, position: u64) {
        let start = self.batch.data.len();
        self.batch.data.extend_from_slice(record);
        self.batch.items.push(Item { start, end: self.batch.data.len(), line, position, problem: None });
        self.maybe_flush();
    }

    fn problem(&mut self, line: u64, position: u64, message: String) {
        let at = self.batch.data.len();
        self.batch.items.push(Item { start: at, end: at, line, position, problem: Some(message) });
        self.maybe_flush();
    }

    fn maybe_flush(&mut self) {
        if self.batch.data.len() >= BATCH_BYTES || self.batch.items.len() >= 8192 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.batch.items.is_empty() && self.batch.end.is_none() {
            return;
        }
        let seq = self.batch.seq;
        let file = self.batch.file;
        let batch = std::mem::replace(&mut self.batch, Batch::new(seq + 1, file));
        if self.tx.send(batch).is_err() {
            self.closed = true;
        }
    }
}

impl Batch {
    fn new(seq: u64, file: usize) -> Batch {
        Batch { seq, file, data: Vec::with_capacity(BATCH_BYTES + 64 * 1024), items: Vec::new(), end: None }
    }
}

/// The size of a file as the readers see it: decompressed when it is gzip (which this reads
/// through once), else its length. The total for `--train-fraction`.
pub fn decompressed_size(path: &Path) -> anyhow::Result<u64> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut raw = BufReader::new(file);
    if raw.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = flate2::bufread::MultiGzDecoder::new(raw);
        // A cut-off archive counts up to the cut, as reading it does.
        let mut total = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match decoder.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(total),
                Ok(n) => total += n as u64,
            }
        }
    }
    Ok(std::fs::metadata(path)?.len())
}

/// The reader thread: decompresses, tells lines from a document, and cuts batches.
fn split(input: impl Read, display: &str, batcher: &mut Batcher) -> anyhow::Result<Split> {
    let count = Rc::new(Cell::new(0u64));
    let mut counted = Counting { inner: input, count: count.clone() };
    // The first 64 KiB, however the input hands them over (a pipe may give one byte at a time).
    let mut head = Vec::new();
    (&mut counted).take(64 * 1024).read_to_end(&mut head).with_context(|| format!("{display}: read error"))?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let binary = !gzip && head.contains(&0);
    let raw = BufReader::with_capacity(256 * 1024, Cursor::new(head).chain(counted));
    let mut reader: Box<dyn BufRead + '_> = if gzip {
        Box::new(BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    let read_error = |e: std::io::Error| format!("read error{}: {e}", if gzip { " (gzip)" } else { "" });
    if binary {
        return Err(anyhow!("{display}: not a JSON log (binary data, or text in UTF-16)"));
    }

    // Everything read to tell the layout, replayed afterwards: the first line that is not
    // blank and, when that one is not whole JSON, the next one.
    let mut buffered = Vec::new();
    let first = match next_content_line(&mut reader, &mut buffered, 64 * 1024) {
        Ok(Some(start)) => start,
        Ok(None) => return Ok(Split { bytes: count.get(), fatal: None }),
        Err(e) => return Ok(Split { bytes: count.get(), fatal: Some((1, read_error(e))) }),
    };
    if buffered.starts_with(&[0xef, 0xbb, 0xbf]) {
        buffered[..3].copy_from_slice(b"   ");
    }
    let text = buffered[first..].trim_ascii_start();
    let starts_object = text.first() == Some(&b'{');
    let wrapper = starts_object && first_key(&text[1..]).is_some_and(|k| WRAPPERS.iter().any(|w| w.as_bytes() == k));
    let document = if text.first() == Some(&b'[') || wrapper {
        true
    } else {
        if buffered.last() != Some(&b'\n') {
            // A first line longer than the look-ahead: read the rest of it.
            let _ = (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut buffered);
        }
        if serde_json::from_slice::<IgnoredAny>(buffered[first..].trim_ascii()).is_ok() {
            false
        } else {
            // A damaged first line (a file cut at the front) in JSON lines, or a pretty-printed
            // document: the next line tells.
            // A first line that stops where a document goes on (`{"items": [`) is a document.
            let opens =
                buffered[first..].trim_ascii_end().last().is_some_and(|b| matches!(b, b'{' | b'[' | b',' | b':'));
            let second = next_content_line(&mut reader, &mut buffered, MAX_LINE as u64).ok().flatten();
            let is_record = |buffered: &[u8], start: usize| {
                let line = buffered[start..].trim_ascii();
                line.first() == Some(&b'{') && serde_json::from_slice::<IgnoredAny>(line).is_ok()
            };
            let second_is_json = second.is_some_and(|start| is_record(&buffered, start));
            if !second_is_json && !starts_object {
                return Err(anyhow!(
                    "{display}: not a JSON log (text that is not JSON; expected JSON lines or a JSON document)"
                ));
            }
            if second_is_json && opens {
                // `{"wrapped":` then a record: JSON lines go on with records, a document does not.
                let third = next_content_line(&mut reader, &mut buffered, MAX_LINE as u64).ok().flatten();
                third.is_some_and(|start| !is_record(&buffered, start))
            } else {
                !second_is_json
            }
        }
    };
    let rest = Cursor::new(buffered).chain(reader);
    let fatal = if document {
        split_documents(BufReader::with_capacity(256 * 1024, rest), batcher)
    } else {
        split_lines(rest, batcher).map_err(|(line, e)| (line, read_error(e))).err()
    };
    Ok(Split { bytes: count.get(), fatal })
}

/// Reads lines into `buffered` up to the first that is not blank; returns where it starts,
/// or `None` at the end of the input.
fn next_content_line(reader: &mut impl BufRead, buffered: &mut Vec<u8>, limit: u64) -> std::io::Result<Option<usize>> {
    loop {
        let start = buffered.len();
        if reader.take(limit).read_until(b'\n', buffered)? == 0 {
            return Ok(None);
        }
        let line = &buffered[start..];
        let line = if start == 0 { line.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(line) } else { line };
        if !line.trim_ascii().is_empty() {
            return Ok(Some(start));
        }
    }
}

/// The first key of an object whose `{` was just passed, when it is in `text`.
fn first_key(text: &[u8]) -> Option<&[u8]> {
    let i = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = text[i..].strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    Some(&rest[..end])
}

fn split_lines(mut reader: impl BufRead, batcher: &mut Batcher) -> Result<(), (u64, std::io::Error)> {
    let mut buf = Vec::new();
    let (mut line, mut position) = (0u64, 0u64);
    while !batcher.closed {
        buf.clear();
        let n = (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).map_err(|e| (line + 1, e))?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        position += n as u64;
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            batcher.problem(line, position, format!("line longer than {MAX_LINE} bytes"));
            position += skip_line(&mut reader).map_err(|e| (line, e))?;
            continue;
        }
        let text = buf.trim_ascii();
        if !text.is_empty() {
            batcher.push(text, line, position);
        }
    }
    Ok(())
}

/// Skips to the next line; returns how many bytes that was.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(pos + 1);
            return Ok(skipped + pos as u64 + 1);
        }
        let n = buf.len();
        skipped += n as u64;
        reader.consume(n);
    }
}

/// Splits one or more concatenated JSON documents into records; returns the problem that
/// ended them.
fn split_documents(reader: impl BufRead, batcher: &mut Batcher) -> Option<(u64, String)> {
    let result = crate::document::split(reader, &WRAPPERS, MAX_LINE, &mut |record, position| {
        batcher.push(record, 0, position);
        !batcher.closed
    });
    result.err()
}

/// Reads JSON lines one at a time as they arrive (a growing file, a pipe), for
/// `ingest --follow`: the same formats as [`read`], without its batches.
pub struct LineReader<'s> {
    parser: Parser<'s>,
    records: u64,
}

impl<'s> LineReader<'s> {
    pub fn new(sources: &'s Sources, display: &'s str) -> Self {
        LineReader { parser: Parser::new(sources, display), records: 0 }
    }

    /// One line (`line` is its 1-based number) into events and errors, in order.
    pub fn line(&mut self, bytes: &[u8], line: u64) -> Vec<Result<Event, ReadError>> {
        let text = bytes.trim_ascii();
        if text.is_empty() {
            return Vec::new();
        }
        let mut outs = Vec::new();
        if text.len() > MAX_LINE {
            outs.push(Out::Error { line, message: format!("line longer than {MAX_LINE} bytes") });
        } else {
            self.parser.record(text, line, 0, &mut outs);
        }
        outs.into_iter()
            .map(|out| {
                self.records += 1;
                match out {
                    Out::Event(mut e, _) => {
                        e.raw.record = self.records;
                        Ok(*e)
                    }
                    Out::Error { line, message } => {
                        Err(ReadError { file: self.parser.display.to_string(), line, record: self.records, message })
                    }
                }
            })
            .collect()
    }
}

/// Turns records into events; one per worker thread, remembering the format last seen so
/// that a file of one platform is recognised once, not per record.
struct Parser<'s> {
    sources: &'s Sources,
    display: &'s str,
    last: Option<Format>,
    /// Where the record being read ends in the input.
    position: u64,
}

impl<'s> Parser<'s> {
    fn new(sources: &'s Sources, display: &'s str) -> Self {
        Parser { sources, display, last: None, position: 0 }
    }

    fn batch(&mut self, batch: &Batch) -> Vec<Out> {
        let mut outs = Vec::with_capacity(batch.items.len());
        for item in &batch.items {
            match &item.problem {
                Some(message) => outs.push(Out::Error { line: item.line, message: message.clone() }),
                None => self.record(&batch.data[item.start..item.end], item.line, item.position, &mut outs),
            }
        }
        outs
    }

    fn raw(&self, line: u64) -> RawRef {
        RawRef { file: self.display.to_string(), line, record: 0 }
    }

    fn record(&mut self, bytes: &[u8], line: u64, position: u64, outs: &mut Vec<Out>) {
        self.position = position;
        if matches!(self.last, None | Some(Format::CloudTrail)) {
            if let Some(event) = cloudtrail::fast_event(bytes, self.raw(line)) {
                self.last = Some(Format::CloudTrail);
                outs.push(Out::Event(Box::new(event), position));
                return;
            }
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => self.value(&value, line, 0, outs),
            Err(e) => outs.push(Out::Error { line, message: format!("invalid JSON: {e}") }),
        }
    }

    fn value(&mut self, value: &Value, line: u64, depth: u32, outs: &mut Vec<Out>) {
        let map = match value {
            Value::Object(map) => map,
            Value::Array(items) if depth < MAX_NESTING => {
                for item in items {
                    self.value(item, line, depth + 1, outs);
                }
                return;
            }
            other => {
                let message = format!("record is not a JSON object ({})", type_name(other));
                outs.push(Out::Error { line, message });
                return;
            }
        };
        if let Some(inner) = map.get("CloudTrailEvent") {
            // An element of `aws cloudtrail lookup-events`.
            let result = match inner {
                Value::String(text) => serde_json::from_str::<Value>(text)
                    .map_err(|e| format!("CloudTrailEvent is not valid JSON: {e}"))
                    .and_then(|inner| cloudtrail::to_event(&inner, self.raw(line))),
                Value::Object(_) => cloudtrail::to_event(inner, self.raw(line)),
                _ => Err("CloudTrailEvent is not a string".into()),
            };
            self.last = Some(Format::CloudTrail);
            outs.push(self.out(result, line));
            return;
        }
        if let Some(format) = self.recognise(map) {
            self.last = Some(format);
            if let Format::Mapped(i) = format {
                // A record the mapping says to pass over (the response line of a request).
                if self.sources.mappings[i].skips(value) {
                    return;
                }
            }
            let result = self.convert(format, value, line);
            outs.push(self.out(result, line));
            return;
        }
        if depth < MAX_NESTING {
            // A page of records on one line, a single event wrapped in `data` (Atlassian's
            // get-event), or an Okta event hook's `data.events`.
            let inner = WRAPPERS.iter().chain(&["events"]).find_map(|w| match map.get(*w) {
                Some(v @ (Value::Array(_) | Value::Object(_))) => Some(v),
                _ => None,
            });
            if let Some(inner) = inner {
                self.value(inner, line, depth + 1, outs);
                return;
            }
        }
        // Not recognisable: in a file of one format, that format says what is missing.
        let result = match self.last {
            Some(format) => self.convert(format, value, line),
            None => Err("unrecognised record: not AWS CloudTrail, Okta, GitHub, Atlassian, Google Workspace, \
                 or a configured mapping"
                .into()),
        };
        outs.push(self.out(result, line));
    }

    fn recognise(&self, map: &Map<String, Value>) -> Option<Format> {
        let sources = self.sources;
        let fits = |format: Format| match format {
            Format::CloudTrail => cloudtrail::recognise(map),
            Format::Okta => okta::recognise(map),
            Format::GitHub => github::recognise(map),
            Format::Atlassian => atlassian::recognise(map),
            Format::Google => google::recognise(map),
            Format::Mapped(i) => sources.mappings[i].recognise(map),
        };
        if let Some(last) = self.last.filter(|f| fits(*f)) {
            return Some(last);
        }
        let builtin = [Format::CloudTrail, Format::Okta, Format::GitHub, Format::Atlassian, Format::Google];
        builtin.into_iter().chain((0..sources.mappings.len()).map(Format::Mapped)).find(|f| fits(*f))
    }

    fn convert(&self, format: Format, value: &Value, line: u64) -> Result<Event, String> {
        let raw = self.raw(line);
        match format {
            Format::CloudTrail => cloudtrail::to_event(value, raw),
            Format::Okta => okta::to_event(value, raw),
            Format::GitHub => github::to_event(value, raw),
            Format::Atlassian => atlassian::to_event(value, raw),
            Format::Google => google::to_event(value, raw),
            Format::Mapped(i) => self.sources.mappings[i].to_event(value, raw),
        }
    }
}

impl Parser<'_> {
    fn out(&self, result: Result<Event, String>, line: u64) -> Out {
        match result {
            Ok(event) => Out::Event(Box::new(event), self.position),
            Err(message) => Out::Error { line, message },
        }
    }
}
