//! Arbitrary bytes as an Okta System Log record: when they are JSON, `okta::to_event` and
//! `okta::recognise` must not panic (also on each element of a top-level array), and an event
//! must keep the `RawRef` it was given, platform `okta`, a non-empty action, a source IP that is
//! an IP address, and fail exactly when it carries an error.
#![no_main]

mod common;

use keywatch_activity::okta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::record(data, "okta", okta::to_event, okta::recognise);
});
