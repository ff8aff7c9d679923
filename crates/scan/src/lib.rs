//! Keywatch's secret scanner.
//!
//! The pieces, in the order data flows through them:
//! - [`rules`] / [`gitleaks`]: rule files (the embedded default set, users' own, gitleaks
//!   configs) compiled into [`rules::CompiledRule`]s.
//! - [`matcher`]: the engine. An Aho-Corasick keyword prefilter ([`keywords`]), then each rule's regex on a
//!   window around each keyword hit, then [`filters`] and [`validate`].
//! - [`searcher`]: feeds bytes to the matcher in bounded, overlapping chunks and builds
//!   [`keywatch_model::Finding`]s (line, column, hashes, redacted context).
//! - Sources: [`walk`] (files and directories), [`content`] (archives, encodings, binary
//!   detection) and [`git`] (history).
//! - [`sink`]: where results go.
//!
//! [`Scanner`] ties them together for callers.

pub mod content;
pub mod filters;
pub mod git;
pub mod gitleaks;
pub mod har;
pub mod keywords;
pub mod matcher;
pub mod rules;
pub mod searcher;
pub mod sink;
pub use keywatch_model::time;
pub mod validate;
pub mod walk;

use anyhow::Result;
use std::io::Read;
use std::path::{Path, PathBuf};

pub use content::Limits;
pub use git::{GitOptions, GitSummary};
pub use matcher::Matcher;
pub use rules::LoadedRules;
pub use searcher::FindingOptions;
pub use sink::{Collected, Collector, Sink};
pub use walk::WalkOptions;

/// Everything that shapes a scan besides the rules.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub limits: Limits,
    pub findings: FindingOptions,
    pub walk: WalkOptions,
}

/// A ready-to-run scanner: compiled rules plus options.
pub struct Scanner {
    matcher: Matcher,
    options: ScanOptions,
}

impl Scanner {
    pub fn new(rules: LoadedRules, keep_invalid: bool, options: ScanOptions) -> Result<Self> {
        Ok(Scanner { matcher: Matcher::new(rules, keep_invalid)?, options })
    }

    /// Scans files and directories (in parallel).
    pub fn scan_paths(&self, paths: &[PathBuf], sink: &dyn Sink) {
        walk::scan_paths(paths, &self.matcher, self.options.findings, self.options.limits, &self.options.walk, sink);
    }

    /// Scans one stream, such as standard input; archives in it are opened too.
    pub fn scan_reader(&self, reader: &mut dyn Read, display: &str, sink: &dyn Sink) {
        let searcher = searcher::Searcher::new(&self.matcher, self.options.findings);
        let mut scanner = content::ContentScanner::new(searcher, self.options.limits, sink);
        scanner.scan_top(reader, display, None);
    }

    /// Scans every blob reachable in a git repository's history.
    pub fn scan_git(&self, repo: &Path, options: &GitOptions, sink: &dyn Sink) -> Result<GitSummary> {
        git::scan_git(repo, options, &self.matcher, self.options.findings, self.options.limits, sink)
    }
}
