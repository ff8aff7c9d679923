//! Arbitrary bytes scanned as one top-level input, exactly as a file would be: archive
//! sniffing (zip, tar, gzip, nesting), UTF-16 decoding, binary detection and the searcher.
#![no_main]

use keywatch_scan::content::{ContentScanner, Limits};
use keywatch_scan::searcher::{FindingOptions, Searcher};
use keywatch_scan::{Collector, LoadedRules, Matcher};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static MATCHER: OnceLock<Matcher> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let matcher = MATCHER.get_or_init(|| Matcher::new(LoadedRules::builtin().unwrap(), false).unwrap());
    let sink = Collector::default();
    let limits = Limits { max_file_size: 1 << 20, archive_depth: 3, max_archive_bytes: 8 << 20 };
    let mut scanner = ContentScanner::new(Searcher::new(matcher, FindingOptions::default()), limits, &sink);
    scanner.scan_top(&mut std::io::Cursor::new(data), "fuzz-input", None);
    let _ = sink.into_collected();
});
