//! Arbitrary bytes as one Atlassian record (organization event, Confluence or Jira audit): when
//! they are JSON, `atlassian::to_event` and `atlassian::recognise` must not panic (also on each
//! element of a top-level array), and an event must keep the `RawRef` it was given, platform
//! `atlassian`, a non-empty action, a source IP that is an IP address, and fail exactly when it
//! carries an error.
#![no_main]

mod common;

use keywatch_activity::atlassian;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::record(data, "atlassian", atlassian::to_event, atlassian::recognise);
});
