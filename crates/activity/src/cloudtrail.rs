//! AWS CloudTrail reader: S3 delivery files (`{"Records":[...]}`), JSON lines (one event per
//! line, also Logstash-shipped lines with `@timestamp`), and `aws cloudtrail lookup-events`
//! output (`{"Events":[{"CloudTrailEvent":"..."}]}`), plain or gzip, streamed.

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::net::IpAddr;
use std::path::Path;
use std::rc::Rc;

use anyhow::{anyhow, Context as _};
use keywatch_model::event::{Event, Outcome, RawRef};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The longest JSON line accepted.
const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    pub events: u64,
    pub errors: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub file: String,
    pub line: u64,
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

/// Reads one file (plain or gzip, recognised by the magic bytes 1f 8b, not the name), in any of
/// the three formats, streaming.
pub fn read_file(
    path: &Path,
    on_event: &mut dyn FnMut(Event),
    on_error: &mut dyn FnMut(ReadError),
) -> anyhow::Result<ReadStats> {
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    read(file, &path.display().to_string(), on_event, on_error)
}

/// Same from any reader, `display` naming it in errors.
pub fn read(
    input: impl Read,
    display: &str,
    on_event: &mut dyn FnMut(Event),
    on_error: &mut dyn FnMut(ReadError),
) -> anyhow::Result<ReadStats> {
    let counter = Rc::new(Cell::new(0u64));
    let mut raw = BufReader::with_capacity(256 * 1024, Counting { inner: input, count: counter.clone() });
    let head = raw.fill_buf().with_context(|| format!("{display}: read error"))?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let mut rest: Box<dyn BufRead + '_> = if gzip {
        Box::new(BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(raw)))
    } else {
        Box::new(raw)
    };
    // Look at the start to tell the format.
    let mut prefix = Vec::new();
    (&mut rest)
        .take(4096)
        .read_to_end(&mut prefix)
        .with_context(|| format!("{display}: read error{}", if gzip { " (gzip)" } else { "" }))?;
    if prefix.starts_with(&[0xef, 0xbb, 0xbf]) {
        prefix.drain(..3);
    }
    let mut ctx = Ctx { display, on_event, on_error, events: 0, errors: 0, record: 0 };
    let start = prefix.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        // Empty (or whitespace only): nothing to read.
        return Ok(ReadStats { events: 0, errors: 0, bytes: counter.get() });
    };
    if prefix[start] != b'{' {
        return Err(anyhow!("{display}: not CloudTrail JSON (does not start with '{{')"));
    }
    let document = first_key(&prefix[start + 1..]).is_some_and(|k| k == b"Records" || k == b"Events");
    let reader = Cursor::new(prefix).chain(rest);
    if document {
        read_documents(reader, &mut ctx)?;
    } else {
        read_lines(reader, &mut ctx)?;
    }
    Ok(ReadStats { events: ctx.events, errors: ctx.errors, bytes: counter.get() })
}

/// The first key of an object whose `{` was just passed, when it is in `text`.
fn first_key(text: &[u8]) -> Option<&[u8]> {
    let i = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = text[i..].strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    Some(&rest[..end])
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

struct Ctx<'a> {
    display: &'a str,
    on_event: &'a mut dyn FnMut(Event),
    on_error: &'a mut dyn FnMut(ReadError),
    events: u64,
    errors: u64,
    /// Records seen so far (good or bad).
    record: u64,
}

impl Ctx<'_> {
    fn error(&mut self, line: u64, record: u64, message: String) {
        self.errors += 1;
        (self.on_error)(ReadError { file: self.display.to_string(), line, record, message });
    }

    /// One CloudTrail record, or a `Records`/`Events` wrapper found on a line.
    fn value(&mut self, value: Value, line: u64) {
        if let Value::Object(map) = &value {
            if !map.contains_key("eventName") {
                if let Some(Value::Array(_)) = map.get("Records") {
                    let Value::Object(mut map) = value else { unreachable!() };
                    let Some(Value::Array(records)) = map.remove("Records") else { unreachable!() };
                    for r in records {
                        self.record(r, line);
                    }
                    return;
                }
                if let Some(Value::Array(_)) = map.get("Events") {
                    let Value::Object(mut map) = value else { unreachable!() };
                    let Some(Value::Array(events)) = map.remove("Events") else { unreachable!() };
                    for e in events {
                        self.lookup_event(e, line);
                    }
                    return;
                }
            }
        }
        self.record(value, line);
    }

    /// One element of lookup-events' `Events`.
    fn lookup_event(&mut self, value: Value, line: u64) {
        match value.get("CloudTrailEvent") {
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(inner) => self.record(inner, line),
                Err(e) => {
                    self.record += 1;
                    let record = self.record;
                    self.error(line, record, format!("CloudTrailEvent is not valid JSON: {e}"));
                }
            },
            Some(Value::Object(_)) => {
                let Value::Object(mut map) = value else { unreachable!() };
                self.record(map.remove("CloudTrailEvent").unwrap_or(Value::Null), line);
            }
            Some(_) => {
                self.record += 1;
                let record = self.record;
                self.error(line, record, "CloudTrailEvent is not a string".into());
            }
            None if value.get("eventName").is_some() => self.record(value, line),
            None => {
                self.record += 1;
                let record = self.record;
                self.error(line, record, "missing CloudTrailEvent".into());
            }
        }
    }

    fn record(&mut self, value: Value, line: u64) {
        self.record += 1;
        let raw = RawRef { file: self.display.to_string(), line, record: self.record };
        match to_event(&value, raw) {
            Ok(event) => {
                self.events += 1;
                (self.on_event)(event);
            }
            Err(message) => {
                let record = self.record;
                self.error(line, record, message);
            }
        }
    }

    /// A failure that ends the file: reported, unless nothing at all was read (then `Err`).
    fn fatal(&mut self, line: u64, message: String) -> anyhow::Result<()> {
        if self.record == 0 && self.errors == 0 {
            return Err(anyhow!("{}: {message}", self.display));
        }
        let record = self.record + 1;
        self.error(line, record, format!("{message}; rest of the file skipped"));
        Ok(())
    }
}

fn read_documents(reader: impl BufRead, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    loop {
        if let Err(e) = (Top { ctx }).deserialize(&mut de) {
            let line = e.line() as u64;
            return ctx.fatal(line, format!("invalid or truncated JSON: {e}"));
        }
        match de.end() {
            Ok(()) => return Ok(()),
            Err(e) if e.is_io() => return ctx.fatal(e.line() as u64, format!("read error: {e}")),
            // Another document follows (concatenated lookup-events pages).
            Err(_) => {}
        }
    }
}

fn read_lines(mut reader: impl BufRead, ctx: &mut Ctx<'_>) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = match (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => return ctx.fatal(line + 1, format!("read error: {e}")),
        };
        if n == 0 {
            return Ok(());
        }
        line += 1;
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            ctx.record += 1;
            let record = ctx.record;
            ctx.error(line, record, format!("line longer than {MAX_LINE} bytes"));
            if let Err(e) = skip_line(&mut reader) {
                return ctx.fatal(line, format!("read error: {e}"));
            }
            continue;
        }
        let text = buf.trim_ascii();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Value>(text) {
            Ok(value) => ctx.value(value, line),
            Err(e) => {
                ctx.record += 1;
                let record = ctx.record;
                ctx.error(line, record, format!("invalid JSON: {e}"));
            }
        }
    }
}

fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(pos + 1);
            return Ok(());
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// The top-level object of an S3 delivery file or a lookup-events page.
struct Top<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
}

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail object with Records or Events")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "Records" => map.next_value_seed(Elements { ctx: &mut *self.ctx, lookup: false })?,
                "Events" => map.next_value_seed(Elements { ctx: &mut *self.ctx, lookup: true })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The `Records` or `Events` array, one element at a time.
struct Elements<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    lookup: bool,
}

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of CloudTrail records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            if self.lookup {
                self.ctx.lookup_event(value, 0);
            } else {
                self.ctx.record(value, 0);
            }
        }
        Ok(())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// An optional string field: absent or null → `None`; another type → error.
fn opt_str<'v>(map: &'v Map<String, Value>, key: &str, path: &str) -> Result<Option<&'v str>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(format!("{path}{key} is not a string ({})", type_name(other))),
    }
}

fn req_str<'v>(map: &'v Map<String, Value>, key: &str) -> Result<&'v str, String> {
    opt_str(map, key, "")?.ok_or_else(|| format!("missing {key}"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// Turns one CloudTrail record into an [`Event`], or says what is wrong with it.
pub fn to_event(value: &Value, raw: RawRef) -> Result<Event, String> {
    let Value::Object(map) = value else {
        return Err(format!("record is not a JSON object ({})", type_name(value)));
    };
    let (time_key, time_text) = match opt_str(map, "eventTime", "")? {
        Some(t) => ("eventTime", t),
        None => match opt_str(map, "@timestamp", "")? {
            Some(t) => ("@timestamp", t),
            None => return Err("missing eventTime".into()),
        },
    };
    let time = keywatch_model::time::parse_rfc3339(time_text)
        .ok_or_else(|| format!("{time_key} is not an RFC 3339 time: {time_text:?}"))?;
    let source = req_str(map, "eventSource")?;
    let name = req_str(map, "eventName")?;
    let event_id = nonempty(opt_str(map, "eventID", "")?);

    let empty = Map::new();
    let ui = match map.get("userIdentity") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(ui)) => ui,
        Some(other) => return Err(format!("userIdentity is not an object ({})", type_name(other))),
    };
    let arn = nonempty(opt_str(ui, "arn", "userIdentity.")?);
    let issuer = ui
        .get("sessionContext")
        .and_then(|s| s.get("sessionIssuer"))
        .and_then(|s| s.get("arn"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let (identity, session) = match (opt_str(ui, "type", "userIdentity.")?, issuer) {
        (Some("AssumedRole"), Some(role)) => (Some(role.to_string()), arn),
        _ => (arn, None),
    };
    let credential = nonempty(opt_str(ui, "accessKeyId", "userIdentity.")?);
    let invoked_by = nonempty(opt_str(ui, "invokedBy", "userIdentity.")?);

    let (source_ip, via_ip) = match nonempty(opt_str(map, "sourceIPAddress", "")?) {
        Some(ip) if ip.parse::<IpAddr>().is_ok() => (Some(ip), None),
        Some(host) => (None, Some(host)),
        None => (None, None),
    };
    let via_service = via_ip.or(invoked_by);
    let user_agent = opt_str(map, "userAgent", "")?.map(|ua| {
        let ua = ua.trim();
        ua.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(ua).to_string()
    });
    let user_agent = nonempty(user_agent.as_deref());
    let error = nonempty(opt_str(map, "errorCode", "")?);
    let read_only = match map.get("readOnly") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    Ok(Event {
        time,
        platform: "aws".into(),
        event_id,
        identity,
        credential,
        session,
        source_ip,
        via_service,
        user_agent,
        action: format!("{source}:{name}"),
        resource: resource(map),
        outcome: if error.is_some() { Outcome::Failure } else { Outcome::Success },
        error,
        read_only,
        raw,
    })
}

fn resource(map: &Map<String, Value>) -> Option<String> {
    if let Some(Value::Array(resources)) = map.get("resources") {
        let arn = resources
            .iter()
            .find_map(|r| r.get("ARN").or_else(|| r.get("arn")).and_then(Value::as_str).filter(|s| !s.is_empty()));
        if let Some(arn) = arn {
            return Some(arn.to_string());
        }
    }
    let params = map.get("requestParameters")?.as_object()?;
    for key in ["bucketName", "userName", "roleName", "secretId", "instanceId", "functionName", "name"] {
        if let Some(v) = params.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
            return Some(v.to_string());
        }
    }
    params
        .get("instancesSet")
        .and_then(|s| s.get("items"))
        .and_then(Value::as_array)
        .and_then(|items| items.iter().find_map(|i| i.get("instanceId").and_then(Value::as_str)))
        .map(str::to_string)
}
