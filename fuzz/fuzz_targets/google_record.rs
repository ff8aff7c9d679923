//! Arbitrary bytes as one Google Workspace Reports activity record: when they are JSON,
//! `google::to_event` and `google::recognise` must not panic (also on each element of a
//! top-level array), and an event must keep the `RawRef` it was given, platform `google`, a
//! non-empty action, a source IP that is an IP address, and fail exactly when it carries an
//! error.
#![no_main]

mod common;

use keywatch_activity::google;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::record(data, "google", google::to_event, google::recognise);
});
