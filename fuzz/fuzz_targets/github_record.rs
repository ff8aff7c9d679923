//! Arbitrary bytes as a GitHub audit log record: when they are JSON, `github::to_event` and
//! `github::recognise` must not panic (also on each element of a top-level array), and an event
//! must keep the `RawRef` it was given, platform `github`, a non-empty action, a source IP that is
//! an IP address, and fail exactly when it carries an error.
#![no_main]

mod common;

use keywatch_activity::github;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::record(data, "github", github::to_event, github::recognise);
});
