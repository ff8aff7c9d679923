//! `keywatch scan`: options, rule loading, running the scanner with a progress bar, baseline
//! suppression, and handing the report to a presenter.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use globset::{Glob, GlobSetBuilder};
use keywatch_model::{Finding, ScanStats};
use keywatch_scan::sink::Counters;
use keywatch_scan::{Collector, GitOptions, Limits, LoadedRules, ScanOptions, Scanner, WalkOptions};
use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{parse_size, Config};
use crate::output::{self, Report};
use crate::{Format, Global};

pub const LONG_ABOUT: &str = "Find secrets in files, directories, archives, standard input or git history.\n\n\
Directories are walked in parallel, honouring .gitignore and .keywatchignore (--no-ignore to \
scan everything); binary files are skipped; zip (jar, whl, apk...), tar, tar.gz and gz archives \
are opened, nested up to --archive-depth. A finding inside an archive is shown as \
outer.zip!inner/path. With --git, each PATH is a repository and every blob reachable from \
any ref is scanned once; each secret is reported with the commit that introduced it.\n\n\
Secrets are shown redacted (first 4 and last 2 characters at most) with their SHA-256; \
--show-secrets prints them in full. A line containing `keywatch:allow` is never reported.\n\n\
Exit codes: 0 nothing found, 1 secrets found, 2 usage error or nothing could be read \
(with --strict, also when any input could not be read).";

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// Files or directories to scan; `-` reads standard input. With --git, repositories.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,

    /// Scan git history: every blob reachable from all refs of each repository PATH
    #[arg(long)]
    pub git: bool,
    /// With --git: only history reachable from this branch (or revision)
    #[arg(long, value_name = "NAME", requires = "git")]
    pub branch: Option<String>,
    /// With --git: only commits after this one
    #[arg(long, value_name = "REV", requires = "git")]
    pub since_commit: Option<String>,

    /// Output format [default: human on a terminal, json otherwise]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report to FILE (atomically) instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Extra rule file: Keywatch TOML or a gitleaks config (repeatable)
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Use only the rules given with --rules
    #[arg(long)]
    pub no_default_rules: bool,
    /// Suppress findings whose fingerprint is in this earlier JSON report
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Skip paths matching this glob, relative to the scanned directory (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Do not honour .gitignore, .ignore and .keywatchignore files
    #[arg(long)]
    pub no_ignore: bool,

    /// Skip files, archive entries and blobs larger than this (K, M, G suffixes) [default: 100M]
    #[arg(long, value_name = "SIZE")]
    pub max_file_size: Option<String>,
    /// Open archives nested at most this deep [default: 3]
    #[arg(long, value_name = "N")]
    pub archive_depth: Option<u32>,
    /// Stop expanding one archive after this many bytes in all [default: 1G]
    #[arg(long, value_name = "SIZE")]
    pub max_archive_size: Option<String>,

    /// Keep matches whose checksum is wrong (reported as checksum_invalid)
    #[arg(long)]
    pub keep_invalid: bool,
    /// Print and store secrets in full. Dangerous: reports become secrets themselves
    #[arg(long)]
    pub show_secrets: bool,
    /// Worker threads [default: one per core]
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Exit 2 when any input could not be read, even if the rest was scanned
    #[arg(long)]
    pub strict: bool,
}

pub fn run(global: &Global, args: &ScanArgs) -> Result<u8> {
    let started = Instant::now();
    let config = Config::load(global.config.as_deref())?;
    let rules = load_rules(global, &args.rules, args.no_default_rules, &config)?;
    let rule_count = rules.rules.len() as u64;
    if rule_count == 0 {
        bail!("no rules to scan with (--no-default-rules without --rules)");
    }
    let max_file_size = size_option(args.max_file_size.as_deref(), config.scan.max_file_size.as_deref(), "100M")?;
    let max_archive_bytes =
        size_option(args.max_archive_size.as_deref(), config.scan.max_archive_size.as_deref(), "1G")?;
    let limits = Limits {
        max_file_size,
        archive_depth: args.archive_depth.or(config.scan.archive_depth).unwrap_or(3),
        max_archive_bytes,
    };
    let mut exclude = config.scan.exclude.clone();
    exclude.extend(args.exclude.iter().cloned());
    let options = ScanOptions {
        limits,
        findings: keywatch_scan::FindingOptions { include_secret: args.show_secrets },
        walk: WalkOptions { no_ignore: args.no_ignore, exclude: build_globs(&exclude)?, threads: args.threads },
    };
    if args.threads > 0 {
        // Git history scanning uses rayon; size its pool like the walker's.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(args.threads).build_global();
    }
    let baseline_path = args.baseline.clone().or(config.scan.baseline.clone());
    let baseline = match &baseline_path {
        Some(path) => load_baseline(path)?,
        None => HashSet::new(),
    };
    let scanner = Scanner::new(rules, args.keep_invalid, options)?;

    let collector = Collector::default();
    let show_progress = !global.quiet && std::io::stderr().is_terminal();
    let done = std::sync::atomic::AtomicBool::new(false);
    let (summary, git_failures) = std::thread::scope(|scope| {
        if show_progress {
            let (counters, done) = (&collector.counters, &done);
            scope.spawn(move || progress_loop(counters, done));
        }
        let outcome = scan_inputs(&scanner, args, &collector);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        outcome
    });
    if !git_failures.is_empty() && args.paths.len() == git_failures.len() {
        bail!("{}", git_failures.join("; "));
    }

    let mut collected = collector.into_collected();
    for failure in git_failures {
        collected.errors.push(keywatch_model::ScanError { path: "git".into(), message: failure });
    }
    let before = collected.findings.len();
    collected.findings.retain(|f| !baseline.contains(&f.fingerprint));
    let suppressed = (before - collected.findings.len()) as u64;
    sort_findings(&mut collected.findings);
    collected.errors.sort_by(|a, b| a.path.cmp(&b.path));
    collected.skipped.sort_by(|a, b| a.path.cmp(&b.path));

    let stats = ScanStats {
        files: collected.files,
        bytes: collected.bytes,
        archives: collected.archives,
        blobs: summary.blobs,
        commits: summary.commits,
        skipped: collected.skipped.len() as u64,
        errors: collected.errors.len() as u64,
        findings: collected.findings.len() as u64,
        suppressed,
        rules: rule_count,
        seconds: started.elapsed().as_secs_f64(),
    };
    let report = Report { findings: collected.findings, errors: collected.errors, skipped: collected.skipped, stats };

    let nothing_read = report.stats.files == 0 && report.stats.blobs == 0 && !report.errors.is_empty();
    output::deliver(&report, args.format, args.output.as_deref(), global, nothing_read, args.strict)
}

/// Runs the scan over every input; returns the git totals and the repositories that could
/// not be opened at all.
fn scan_inputs(scanner: &Scanner, args: &ScanArgs, collector: &Collector) -> (keywatch_scan::GitSummary, Vec<String>) {
    let mut summary = keywatch_scan::GitSummary::default();
    let mut failures = Vec::new();
    if args.git {
        let options = GitOptions { branch: args.branch.clone(), since_commit: args.since_commit.clone() };
        for repo in &args.paths {
            match scanner.scan_git(repo, &options, collector) {
                Ok(s) => {
                    summary.commits += s.commits;
                    summary.blobs += s.blobs;
                }
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        return (summary, failures);
    }
    let (stdin, paths): (Vec<&PathBuf>, Vec<&PathBuf>) = args.paths.iter().partition(|p| p.as_os_str() == "-");
    if !stdin.is_empty() {
        scanner.scan_reader(&mut std::io::stdin().lock(), "<stdin>", collector);
    }
    let mut existing = Vec::new();
    for path in paths {
        match std::fs::symlink_metadata(path) {
            Ok(_) => existing.push(path.clone()),
            Err(e) => keywatch_scan::Sink::error(collector, &path.to_string_lossy(), format!("cannot read: {e}")),
        }
    }
    scanner.scan_paths(&existing, collector);
    (summary, failures)
}

/// The built-in rules (unless turned off) plus the config's and the command line's rule files.
pub fn load_rules(global: &Global, extra: &[PathBuf], no_default: bool, config: &Config) -> Result<LoadedRules> {
    let mut rules =
        if no_default || config.scan.no_default_rules { LoadedRules::default() } else { LoadedRules::builtin()? };
    for path in config.scan.rules.iter().chain(extra.iter()) {
        rules.extend(LoadedRules::load_file(path)?)?;
    }
    if global.verbose > 0 {
        for note in &rules.notes {
            eprintln!("note: {note}");
        }
    }
    Ok(rules)
}

pub fn size_option(flag: Option<&str>, config: Option<&str>, default: &str) -> Result<u64> {
    parse_size(flag.or(config).unwrap_or(default))
}

fn build_globs(patterns: &[String]) -> Result<Option<globset::GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(Glob::new(p).with_context(|| format!("--exclude {p:?}"))?);
        // `vendor` or `vendor/` also means everything under it.
        let trimmed = p.trim_end_matches('/');
        if !trimmed.contains('*') {
            builder.add(Glob::new(&format!("{trimmed}/**")).with_context(|| format!("--exclude {p:?}"))?);
        }
    }
    Ok(Some(builder.build()?))
}

/// Reads the fingerprints of an earlier JSON (or JSON-lines) report.
fn load_baseline(path: &Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read baseline", path.display()))?;
    let mut out = HashSet::new();
    let mut collect = |v: &serde_json::Value| {
        if let Some(fp) = v.get("fingerprint").and_then(|f| f.as_str()) {
            out.insert(fp.to_string());
        }
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(obj)) => {
            let findings = obj
                .get("findings")
                .and_then(|f| f.as_array())
                .ok_or_else(|| anyhow!("{}: baseline has no \"findings\" list", path.display()))?;
            findings.iter().for_each(&mut collect);
        }
        Ok(serde_json::Value::Array(items)) => items.iter().for_each(&mut collect),
        Ok(_) => bail!("{}: baseline is not a Keywatch JSON report", path.display()),
        Err(first_error) => {
            for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line).map_err(|_| {
                    anyhow!(
                        "{}: baseline is neither JSON nor JSON lines ({first_error}; line {})",
                        path.display(),
                        n + 1
                    )
                })?;
                collect(&v);
            }
        }
    }
    Ok(out)
}

/// Most severe first, then by place.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
            .then_with(|| a.line.cmp(&b.line))
            .then_with(|| a.column.cmp(&b.column))
            .then_with(|| a.rule_id.cmp(&b.rule_id))
    });
}

fn progress_loop(counters: &Counters, done: &std::sync::atomic::AtomicBool) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        bar.set_message(format!(
            "{} files, {:.1} MB, {} findings",
            Counters::get(&counters.files),
            Counters::get(&counters.bytes) as f64 / 1e6,
            Counters::get(&counters.findings)
        ));
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}
