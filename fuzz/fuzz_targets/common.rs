//! Helpers shared by the audit-log reader targets (`mod common;` in each).
//!
//! `ACTIVITY_FUZZ_KNOWN=text,...` (comma-separated) makes an invariant violation whose
//! message contains one of the texts skip the input instead of crashing, so a run can look
//! past a known mismatch until it is fixed. Panics inside the readers are always crashes.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::OnceLock;

use keywatch_model::event::{Event, Outcome, RawRef};
use serde_json::Value;

/// The `RawRef` the per-record targets hand to converters; they must give it back unchanged.
pub fn raw() -> RawRef {
    RawRef { file: "fuzz.json".into(), line: 7, record: 3 }
}

fn known() -> &'static [String] {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        std::env::var("ACTIVITY_FUZZ_KNOWN")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// An invariant does not hold: a crash, unless `ACTIVITY_FUZZ_KNOWN` lists it.
pub fn violation(message: String) {
    if known().iter().any(|k| message.contains(k.as_str())) {
        return;
    }
    panic!("{message}");
}

/// The input, for messages: as text when it is UTF-8, else escaped.
pub fn shown(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(s) => s.to_string(),
        Err(_) => data.escape_ascii().to_string(),
    }
}

/// What every converter promises of an event it returns: the `RawRef` it was given, the
/// platform, an action, and a source IP only when it is an IP address.
pub fn check_event(event: &Event, platform: &str, raw: &RawRef, data: &[u8]) {
    let bad = |what: &str| violation(format!("{what}: {event:?}\ninput: {}", shown(data)));
    if &event.raw != raw {
        bad("event.raw is not the RawRef given");
    }
    if event.platform != platform {
        bad("unexpected platform");
    }
    if event.action.is_empty() {
        bad("empty action");
    }
    if event.source_ip.as_deref().is_some_and(|ip| ip.parse::<IpAddr>().is_err()) {
        bad("source_ip is not an IP address");
    }
}

/// The built-in readers fail an event exactly when they give it an error.
pub fn check_outcome(event: &Event, data: &[u8]) {
    if event.error.is_some() != (event.outcome == Outcome::Failure) {
        violation(format!("error and outcome disagree: {event:?}\ninput: {}", shown(data)));
    }
}

/// One built-in per-record reader: on any JSON value, `to_event` and `recognise` must not
/// panic, and an event must keep the promises above.
pub fn record(
    data: &[u8],
    platform: &str,
    to_event: fn(&Value, RawRef) -> Result<Event, String>,
    recognise: fn(&serde_json::Map<String, Value>) -> bool,
) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    if let Value::Object(map) = &value {
        recognise(map);
    }
    let raw = raw();
    if let Ok(event) = to_event(&value, raw.clone()) {
        check_event(&event, platform, &raw, data);
        check_outcome(&event, data);
    }
    // The dispatcher also hands over the elements of a top-level array.
    if let Value::Array(items) = &value {
        for item in items.iter().take(16) {
            if let Value::Object(map) = item {
                recognise(map);
            }
            if let Ok(event) = to_event(item, raw.clone()) {
                check_event(&event, platform, &raw, data);
                check_outcome(&event, data);
            }
        }
    }
}
