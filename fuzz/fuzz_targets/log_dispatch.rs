//! Arbitrary bytes as one audit-log file through the dispatcher, `read::read`: gzip by its
//! magic bytes, JSON lines or a JSON document (arrays, wrapper keys, concatenated documents,
//! a single pretty-printed record), the reader thread and the parsing workers, every built-in
//! format and the Vault mapping of `crates/activity/tests/fixtures/mapped/vault.toml`.
//!
//! Besides "no panic" (in any thread), checks what the sink sees against what `read` says:
//! - an error result: nothing was delivered, and the message starts with the file's name;
//! - otherwise `ReadStats::events` / `errors` are the events and errors delivered, and
//!   `bytes` is at most the input's length;
//! - events and errors carry the file's name and are numbered 1, 2, 3, ... in delivery order;
//!   event positions never go back (and stay within a plain input); each event has a known
//!   platform, a non-empty action and a source IP only when it is an IP address;
//! - when `read` took a small plain input as JSON lines (everything it delivered has a line
//!   number; records inside a JSON document have line 0), `LineReader` fed the same lines one
//!   at a time gives exactly the same events and errors;
//! - when `read` took a small plain input as a JSON document (it delivered something with
//!   line 0) and the input is a sequence of valid JSON arrays and objects, the records are what
//!   a serde_json reference finds (an array's elements; the elements of the arrays an object
//!   holds under a wrapper key; else the object itself), each read as `LineReader` reads it.
//!   This checks the structure-only document splitter against a real JSON parser.
//! Telling the layout from what `read` did, rather than copying its rules, keeps these checks
//! valid while those rules change.
#![no_main]

mod common;

use std::net::IpAddr;
use std::sync::OnceLock;

use common::{shown, violation};
use keywatch_activity::mapped::Mapping;
use keywatch_activity::read::{self, LineReader, ReadError, Sink, Sources};
use keywatch_model::event::Event;
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

const DISPLAY: &str = "fuzz.log";
const PLATFORMS: [&str; 6] = ["aws", "okta", "github", "atlassian", "google", "vault"];
/// As `read.rs`: keys under which a JSON document holds its records.
const WRAPPERS: [&str; 6] = ["Records", "Events", "items", "data", "results", "records"];
/// Below this, an input is one batch (`read.rs` cuts at 1 MiB or 8192 records), so
/// one worker reads it in order, as `LineReader` does.
const DIFF_MAX: usize = 16_000;

fn sources() -> &'static Sources {
    static SOURCES: OnceLock<Sources> = OnceLock::new();
    SOURCES.get_or_init(|| {
        let text = include_str!("../../crates/activity/tests/fixtures/mapped/vault.toml");
        Sources { mappings: vec![Mapping::parse(text, "vault.toml").unwrap()] }
    })
}

/// The members of a JSON object as written, keys with their quotes, duplicates kept.
fn members(object: &str) -> Option<Vec<(&str, &str)>> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(&'de str, &'de str)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<&RawValue, &RawValue>()? {
                out.push((k.get(), v.get()));
            }
            Ok(out)
        }
    }
    serde_json::Deserializer::from_str(object).deserialize_map(Members).ok()
}

fn elements(array: &str) -> Option<Vec<&str>> {
    Some(serde_json::from_str::<Vec<&RawValue>>(array).ok()?.into_iter().map(RawValue::get).collect())
}

/// The records of a plain input that is a sequence of JSON arrays and objects (after a BOM),
/// found with serde_json; `None` when it is anything else.
fn document_records(data: &[u8]) -> Option<Vec<&str>> {
    let text = data.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(data);
    let mut records = Vec::new();
    for value in serde_json::Deserializer::from_slice(text).into_iter::<&RawValue>() {
        let value = value.ok()?.get();
        if value.starts_with('[') {
            records.extend(elements(value)?);
        } else if value.starts_with('{') {
            let mut wrapped = false;
            for (key, member) in members(value)? {
                if member.starts_with('[') && WRAPPERS.contains(&&key[1..key.len() - 1]) {
                    wrapped = true;
                    records.extend(elements(member)?);
                }
            }
            if !wrapped {
                records.push(value);
            }
        } else {
            return None;
        }
    }
    Some(records)
}

#[derive(Default)]
struct Recorder {
    seen: Vec<Result<Event, ReadError>>,
    positions: Vec<u64>,
}

impl Sink for Recorder {
    fn event(&mut self, event: Event, position: u64) {
        self.seen.push(Ok(event));
        self.positions.push(position);
    }
    fn error(&mut self, error: ReadError) {
        self.seen.push(Err(error));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut sink = Recorder::default();
    let result = read::read(data, DISPLAY, sources(), &mut sink);
    let fail = |what: String| violation(format!("{what}\ninput: {}", shown(data)));

    let stats = match result {
        Err(e) => {
            if !sink.seen.is_empty() {
                fail(format!("read failed ({e:#}) after delivering {} events and errors", sink.seen.len()));
            }
            if !format!("{e:#}").starts_with(&format!("{DISPLAY}: ")) {
                fail(format!("error does not name the file: {e:#}"));
            }
            return;
        }
        Ok(stats) => stats,
    };
    let events = sink.seen.iter().filter(|s| s.is_ok()).count() as u64;
    let errors = sink.seen.len() as u64 - events;
    if (stats.events, stats.errors) != (events, errors) {
        fail(format!(
            "stats say {} events and {} errors, the sink saw {events} and {errors}",
            stats.events, stats.errors
        ));
    }
    if stats.bytes > data.len() as u64 {
        fail(format!("stats say {} bytes read of {}", stats.bytes, data.len()));
    }
    for (i, seen) in sink.seen.iter().enumerate() {
        let (file, record) = match seen {
            Ok(e) => (&e.raw.file, e.raw.record),
            Err(e) => (&e.file, e.record),
        };
        if file != DISPLAY || record != i as u64 + 1 {
            fail(format!("delivery {} is {file:?} record {record}: {seen:?}", i + 1));
        }
        if let Ok(e) = seen {
            if !PLATFORMS.contains(&e.platform.as_str())
                || e.action.is_empty()
                || e.source_ip.as_deref().is_some_and(|ip| ip.parse::<IpAddr>().is_err())
            {
                fail(format!("bad event: {e:?}"));
            }
        }
    }
    let gzip = data.starts_with(&[0x1f, 0x8b]);
    if sink.positions.windows(2).any(|w| w[0] > w[1])
        || (!gzip && sink.positions.iter().any(|&p| p > data.len() as u64))
    {
        fail(format!("event positions {:?} (input {} bytes)", sink.positions, data.len()));
    }

    // A BOM is dropped by `read` only; `ingest --follow` hands `LineReader` lines as they come.
    let json_lines = !sink.seen.is_empty()
        && sink.seen.iter().all(|s| match s {
            Ok(e) => e.raw.line > 0,
            Err(e) => e.line > 0,
        });
    if json_lines && !gzip && !data.starts_with(&[0xef, 0xbb, 0xbf]) && data.len() < DIFF_MAX {
        let mut reader = LineReader::new(sources(), DISPLAY);
        let mut expected = Vec::new();
        for (i, line) in data.split(|&b| b == b'\n').enumerate() {
            expected.extend(reader.line(line, i as u64 + 1));
        }
        if expected != sink.seen {
            fail(format!("read and LineReader disagree\nread:       {:?}\nLineReader: {expected:?}", sink.seen));
        }
    }

    let document = sink.seen.iter().any(|s| match s {
        Ok(e) => e.raw.line == 0,
        Err(e) => e.line == 0,
    });
    if document && !gzip && data.len() < DIFF_MAX {
        if let Some(records) = document_records(data) {
            let mut reader = LineReader::new(sources(), DISPLAY);
            let expected: Vec<_> = records.iter().flat_map(|r| reader.line(r.as_bytes(), 0)).collect();
            if expected != sink.seen {
                fail(format!(
                    "read and the serde_json reference disagree on a document\nrecords:   {records:?}\n\
                     read:      {:?}\nreference: {expected:?}",
                    sink.seen
                ));
            }
        }
    }
});
