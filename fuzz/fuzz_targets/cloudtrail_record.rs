//! Arbitrary bytes as one AWS CloudTrail record, through both paths of `cloudtrail`:
//! `fast_event` (borrowed fields straight from the bytes) and `to_event` (a parsed
//! `serde_json::Value`). Whenever the fast path gives an event, the bytes must be valid JSON
//! and `to_event` must give the same event; the dispatcher trusts the fast path without
//! asking the slow one. One leniency is by design: in fields it does not read, the fast path
//! accepts what the JSON grammar allows but `Value` refuses (a lone surrogate escape, a number
//! beyond f64, nesting past 128), so such a record is read instead of lost. On any JSON value, `to_event` and `recognise` must not panic, and an
//! event must keep the RawRef it was given, platform `aws`, a non-empty action, a source IP
//! that is an IP address, and fail exactly when it carries an error code.
//!
//! `ACTIVITY_FUZZ_KNOWN` (see `common.rs`) skips known mismatches by their message.
#![no_main]

mod common;

use common::{shown, violation};
use keywatch_activity::cloudtrail;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// What `serde_json::Value` refuses although the JSON grammar allows it.
const VALUE_ONLY_REFUSALS: [&str; 3] = ["surrogate", "number out of range", "recursion limit exceeded"];

fuzz_target!(|data: &[u8]| {
    let raw = common::raw();
    let fast = cloudtrail::fast_event(data, raw.clone());
    let value = serde_json::from_slice::<Value>(data);
    let slow = value.as_ref().ok().map(|v| {
        if let Value::Object(map) = v {
            cloudtrail::recognise(map);
        }
        cloudtrail::to_event(v, raw.clone())
    });
    if let Some(Ok(event)) = &slow {
        common::check_event(event, "aws", &raw, data);
        common::check_outcome(event, data);
    }
    let Some(fast) = fast else { return };
    common::check_event(&fast, "aws", &raw, data);
    match (&value, &slow) {
        (Err(e), _) if VALUE_ONLY_REFUSALS.iter().any(|r| e.to_string().contains(r)) => {}
        (Err(e), _) => violation(format!(
            "fast_event gives an event but the record is not valid JSON (serde_json: {e})\nfast: {fast:?}\ninput: {}",
            shown(data)
        )),
        (_, Some(Err(e))) => violation(format!(
            "fast_event gives an event but to_event fails (to_event: {e})\nfast: {fast:?}\ninput: {}",
            shown(data)
        )),
        (_, Some(Ok(event))) if *event != fast => violation(format!(
            "fast_event and to_event disagree\nfast: {fast:?}\nslow: {event:?}\ninput: {}",
            shown(data)
        )),
        _ => {}
    }
});
