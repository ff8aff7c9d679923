//! Arbitrary bytes as a HAR file: the span-keeping JSON parser, `HarScanner::scan` and
//! `HarScanner::sanitize` with the built-in rules. Besides "no panic", checks what the
//! sanitiser promises: when it succeeds, its output is valid JSON if the input was, a second
//! pass changes nothing, and scanning the output finds nothing.
//!
//! `HAR_FUZZ_IGNORE=policy.rs:371,...` (source locations, comma-separated) makes panics at
//! those places skip the input instead of crashing, so a run can look past a known bug until
//! it is fixed. Unset, every panic is a crash.
#![no_main]

use keywatch_scan::har::{json, FileReport, HarOptions, HarScanner, SanitizeFailure};
use keywatch_scan::LoadedRules;
use libfuzzer_sys::fuzz_target;
use std::io::{Cursor, Read};
use std::panic::{self, AssertUnwindSafe};
use std::sync::OnceLock;

/// Inputs (and sanitised outputs) above this are skipped: the units would hit `max_unit`.
const MAX_INPUT: usize = 64 << 10;

static SCANNER: OnceLock<HarScanner> = OnceLock::new();

fn scanner() -> &'static HarScanner {
    SCANNER.get_or_init(|| {
        ignore_known_panics();
        let options = HarOptions { max_unit: 1 << 16, ..Default::default() };
        HarScanner::new(LoadedRules::builtin().unwrap(), false, options).unwrap()
    })
}

/// Wraps libfuzzer-sys's abort-on-panic hook: a panic at an ignored location unwinds
/// instead (rayon carries it back from its worker thread) and [`guard`] catches it.
fn ignore_known_panics() {
    let ignored: Vec<String> = std::env::var("HAR_FUZZ_IGNORE")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if ignored.is_empty() {
        return;
    }
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        if !ignored.iter().any(|i| at.ends_with(i.as_str())) {
            previous(info);
        }
    }));
}

/// `HarScanner::scan` reads its input up to twice (a second pass for known secrets).
fn scan(bytes: &[u8]) -> FileReport {
    let owned = bytes.to_vec();
    scanner().scan(&mut || Ok(Box::new(Cursor::new(owned.clone())) as Box<dyn Read>), "fuzz.har")
}

/// `HarScanner::sanitize` spools its first pass to an unnamed temporary file.
fn sanitize(bytes: &[u8], out: &mut Vec<u8>) -> Result<FileReport, SanitizeFailure> {
    scanner().sanitize(&mut &bytes[..], "fuzz.har", out, &std::env::temp_dir())
}

/// `None` when `f` hit an ignored panic (any other panic has aborted the process).
fn guard<T>(f: impl FnOnce() -> T) -> Option<T> {
    panic::catch_unwind(AssertUnwindSafe(f)).ok()
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let _ = json::parse(data);
    if guard(|| scan(data)).is_none() {
        return;
    }

    let mut out = Vec::new();
    match guard(|| sanitize(data, &mut out)) {
        Some(Ok(_)) => {}
        _ => return,
    }
    if serde_json::from_slice::<serde_json::Value>(data).is_ok() {
        if let Err(e) = serde_json::from_slice::<serde_json::Value>(&out) {
            panic!("sanitised output of valid JSON is not JSON ({e}):\n{}", String::from_utf8_lossy(&out));
        }
    }
    // Markers can be longer than what they replace; past the unit limit a second pass would
    // fail as oversized, which says nothing about the sanitiser.
    if out.len() > MAX_INPUT {
        return;
    }
    let mut again = Vec::new();
    match guard(|| sanitize(&out, &mut again)) {
        None => return,
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            panic!("sanitised output cannot be sanitised again ({e}):\n{}", String::from_utf8_lossy(&out))
        }
    }
    if again != out {
        panic!(
            "sanitising is not idempotent:\nfirst:  {}\nsecond: {}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&again)
        );
    }
    let Some(report) = guard(|| scan(&out)) else { return };
    if !report.findings.is_empty() {
        let found: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("{} at {} ({})", f.rule_id, f.har.as_ref().map_or("", |h| &h.location), f.redacted))
            .collect();
        panic!("scan of sanitised output finds {found:?}:\n{}", String::from_utf8_lossy(&out));
    }
});
