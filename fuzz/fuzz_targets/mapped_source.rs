//! A field mapping and a record, split at the first NUL byte: the bytes before it, if UTF-8,
//! as the mapping's TOML text (`Mapping::parse`), the bytes after it as one JSON record
//! (`Mapping::recognise`, `Mapping::skips`, `Mapping::to_event`). Without a NUL the whole
//! input is the mapping. Besides "no panic": every parse error starts with the origin given,
//! and an event keeps the RawRef it was given, the mapping's platform, a non-empty action, a
//! source IP that is an IP address, and a time within years 0 to 9999 as the module promises.
#![no_main]

mod common;

use common::{shown, violation};
use keywatch_activity::mapped::Mapping;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const ORIGIN: &str = "fuzz.toml";
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z, as `mapped.rs` bounds times.
const MIN_TIME: i64 = -62_167_219_200;
const MAX_TIME: i64 = 253_402_300_799;

fuzz_target!(|data: &[u8]| {
    let (text, record) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let mapping = match Mapping::parse(text, ORIGIN) {
        Ok(m) => m,
        Err(e) => {
            let message = format!("{e:#}");
            if !message.starts_with(&format!("{ORIGIN}: ")) {
                violation(format!("mapping error does not start with the origin: {message:?}\ninput: {}", shown(data)));
            }
            return;
        }
    };
    if mapping.origin() != ORIGIN || mapping.platform().trim().is_empty() {
        violation(format!("origin {:?}, platform {:?}", mapping.origin(), mapping.platform()));
    }
    let Some(record) = record else { return };
    let Ok(value) = serde_json::from_slice::<Value>(record) else { return };
    if let Value::Object(map) = &value {
        mapping.recognise(map);
    }
    mapping.skips(&value);
    let raw = common::raw();
    if let Ok(event) = mapping.to_event(&value, raw.clone()) {
        common::check_event(&event, mapping.platform(), &raw, data);
        if !(MIN_TIME..=MAX_TIME).contains(&event.time) {
            violation(format!("time out of range: {event:?}\ninput: {}", shown(data)));
        }
    }
});
