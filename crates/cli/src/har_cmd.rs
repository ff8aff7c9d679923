//! `keywatch har scan` and `keywatch har sanitize`: HTTP Archives, file by file, through
//! the library's [`HarScanner`]; this module only finds the files, writes the outputs
//! atomically and presents the results.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use keywatch_model::{ScanError, ScanStats};
use keywatch_scan::har::{FileReport, HarOptions, HarScanner};
use rayon::prelude::*;
use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Config;
use crate::output::{self, Report};
use crate::scan_cmd::{load_rules, size_option, sort_findings};
use crate::{exit, Format, Global};

const SCAN_ABOUT: &str = "Find secrets in HTTP Archive (HAR) files.\n\n\
Looks in request and response headers (Authorization, Cookie, Set-Cookie, X-API-Key...), cookies, \
URLs, query strings and fragments, form, JSON and multipart bodies, base64 response bodies, \
WebSocket messages, redirects and extension fields. Session cookies, bearer and Basic \
credentials and secret-named fields (password, access_token, code, client_secret...) are \
findings even when no provider rule matches. Each finding names its JSON pointer, the entry's \
method, URL (redacted) and host; JWTs are decoded to show whether they were valid when captured \
and are now.\n\n\
Files are read as streams: memory depends on the largest entry, not the file. A directory is \
searched for *.har files.\n\n\
Exit codes: 0 nothing found, 1 secrets found, 2 usage error or nothing could be read.";

const SANITIZE_ABOUT: &str = "Write HAR files with every secret replaced by a marker.\n\n\
Each secret becomes [REDACTED:<kind>:<hash6>], where hash6 starts the secret's SHA-256, so two \
occurrences of one token stay recognisably equal. JWTs keep their header and claims and lose \
their signature. All cookie values and authentication headers are redacted, and so are \
parameters and form or JSON fields named in the list (password, token, access_token, id_token, \
refresh_token, code, client_secret, api_key, SAMLResponse, state, nonce, csrf...; add names \
with --redact-name or [har] redact_names in the config) and every value any detection rule \
matches. Everything else (structure, URLs, timings, statuses, sizes, other headers) is copied \
byte for byte.\n\n\
Output is written to a temporary file and renamed into place, so a failure never leaves a \
partial file. Sanitising a sanitised file changes nothing.\n\n\
With --check nothing is written: the exit code is 1 if any file still holds a secret, 2 if a \
file could not be read, 0 if all are clean.";

#[derive(Subcommand, Debug)]
pub enum HarCommand {
    /// Find secrets in HAR files
    #[command(long_about = SCAN_ABOUT)]
    Scan(HarScanArgs),
    /// Write sanitised copies of HAR files (or check that they are clean)
    #[command(long_about = SANITIZE_ABOUT)]
    Sanitize(HarSanitizeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct HarCommon {
    /// Extra rule file: Keywatch TOML or a gitleaks config (repeatable)
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Use only the rules given with --rules
    #[arg(long)]
    pub no_default_rules: bool,
    /// Also redact (and report) values of this field, parameter or header name (repeatable)
    #[arg(long = "redact-name", value_name = "NAME")]
    pub redact_names: Vec<String>,
    /// Largest entry read whole (K, M, G suffixes) [default: 256M]
    #[arg(long, value_name = "SIZE")]
    pub max_entry_size: Option<String>,
    /// Worker threads [default: one per core]
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
}

#[derive(Args, Debug)]
pub struct HarScanArgs {
    /// HAR files or directories holding them; `-` reads standard input
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub common: HarCommon,
    /// Output format [default: human on a terminal, json otherwise]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the report to FILE (atomically) instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep matches whose checksum is wrong (reported as checksum_invalid)
    #[arg(long)]
    pub keep_invalid: bool,
    /// Print secrets in full. Dangerous: reports become secrets themselves
    #[arg(long)]
    pub show_secrets: bool,
    /// Exit 2 when any input could not be read, even if the rest was scanned
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
}

#[derive(Args, Debug)]
pub struct HarSanitizeArgs {
    /// HAR files or directories holding them
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Where to write: a file for one input (`-` for standard output), else a directory
    #[arg(short, long, value_name = "OUT", conflicts_with_all = ["in_place", "check"])]
    pub output: Option<PathBuf>,
    /// Replace each input with its sanitised copy
    #[arg(long, conflicts_with = "check")]
    pub in_place: bool,
    /// Write nothing; exit 1 if any file still holds a secret
    #[arg(long)]
    pub check: bool,
    /// Print what was redacted where
    #[arg(long)]
    pub report: bool,
    /// Format of --report and --check output [default: human]
    #[arg(long, value_enum, default_value = "human")]
    pub format: ReportFormat,
    #[command(flatten)]
    pub common: HarCommon,
}

pub fn run(global: &Global, command: &HarCommand) -> Result<u8> {
    match command {
        HarCommand::Scan(args) => scan(global, args),
        HarCommand::Sanitize(args) if args.check => check(global, args),
        HarCommand::Sanitize(args) => sanitize(global, args),
    }
}

fn build_scanner(
    global: &Global,
    common: &HarCommon,
    keep_invalid: bool,
    show_secrets: bool,
    list_redactions: bool,
) -> Result<HarScanner> {
    let config = Config::load(global.config.as_deref())?;
    let rules = load_rules(global, &common.rules, common.no_default_rules, &config)?;
    let max_unit = size_option(common.max_entry_size.as_deref(), config.har.max_entry_size.as_deref(), "256M")?;
    let mut extra_names = config.har.redact_names.clone();
    extra_names.extend(common.redact_names.iter().cloned());
    if common.threads > 0 {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(common.threads).build_global();
    }
    let options = HarOptions {
        max_unit: usize::try_from(max_unit).unwrap_or(usize::MAX).max(1024),
        extra_names,
        include_secret: show_secrets,
        list_redactions,
    };
    HarScanner::new(rules, keep_invalid, options)
}

/// An input file, and its path relative to the directory it was found in (directory mode).
type HarFile = (PathBuf, Option<PathBuf>);

/// Expands directories into the `.har` files under them, sorted; files are kept as given.
fn har_files(paths: &[PathBuf], errors: &mut Vec<ScanError>) -> Vec<HarFile> {
    let mut out = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                let mut found = Vec::new();
                walk_dir(path, &mut found, errors);
                found.sort();
                for f in found {
                    let rel = f.strip_prefix(path).map(Path::to_path_buf).ok();
                    out.push((f, rel));
                }
            }
            Ok(_) => out.push((path.clone(), None)),
            Err(_) if path.as_os_str() == "-" => out.push((path.clone(), None)),
            Err(e) => errors.push(ScanError { path: path.display().to_string(), message: format!("cannot read: {e}") }),
        }
    }
    out
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<ScanError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(ScanError { path: dir.display().to_string(), message: format!("cannot read directory: {e}") });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            walk_dir(&path, out, errors);
        } else if kind.is_file() && path.extension().is_some_and(|e| e.eq_ignore_ascii_case("har")) {
            out.push(path);
        }
    }
}

fn open_input(path: &Path) -> Result<Box<dyn Read + Send>> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(std::io::stdin()));
    }
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(Box::new(file))
}

/// Scans one input. Standard input is spooled to a temporary file first, because the
/// scanner may read its input twice.
fn scan_input(scanner: &HarScanner, path: &Path) -> Result<FileReport> {
    let display = display_name(path);
    if path.as_os_str() == "-" {
        let mut spool = tempfile::tempfile().context("cannot create a temporary file")?;
        std::io::copy(&mut std::io::stdin().lock(), &mut spool).context("cannot read standard input")?;
        let mut open = || -> std::io::Result<Box<dyn Read>> {
            let mut file = spool.try_clone()?;
            std::io::Seek::rewind(&mut file)?;
            Ok(Box::new(file))
        };
        return Ok(scanner.scan(&mut open, &display));
    }
    let mut open = || -> std::io::Result<Box<dyn Read>> { Ok(Box::new(std::fs::File::open(path)?)) };
    Ok(scanner.scan(&mut open, &display))
}

fn display_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

fn scan(global: &Global, args: &HarScanArgs) -> Result<u8> {
    let started = Instant::now();
    let scanner = build_scanner(global, &args.common, args.keep_invalid, args.show_secrets, false)?;
    let mut errors = Vec::new();
    let files = har_files(&args.paths, &mut errors);
    let reports: Vec<Result<FileReport>> = files.par_iter().map(|(path, _)| scan_input(&scanner, path)).collect();
    let mut findings = Vec::new();
    let mut stats = ScanStats { rules: 0, ..ScanStats::default() };
    for report in reports {
        match report {
            Ok(r) => {
                stats.files += 1;
                stats.bytes += r.bytes;
                findings.extend(r.findings);
                errors.extend(r.errors);
            }
            Err(e) => errors.push(ScanError { path: String::new(), message: format!("{e:#}") }),
        }
    }
    sort_findings(&mut findings);
    stats.findings = findings.len() as u64;
    stats.errors = errors.len() as u64;
    stats.seconds = started.elapsed().as_secs_f64();
    let report = Report { findings, errors, skipped: Vec::new(), stats };

    let nothing_read = report.stats.files == 0 || (report.stats.bytes == 0 && !report.errors.is_empty());
    output::deliver(&report, args.format, args.output.as_deref(), global, nothing_read, args.strict)
}

/// The .har files of `sanitize` and `--check`, and the paths that could not be read; an
/// error if there is nothing at all to work on.
fn sanitize_inputs(paths: &[PathBuf]) -> Result<(Vec<HarFile>, Vec<ScanError>)> {
    let mut errors = Vec::new();
    let files = har_files(paths, &mut errors);
    if files.is_empty() && errors.is_empty() {
        bail!("no .har files under {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    }
    Ok((files, errors))
}

/// `--check`: scan only; any finding or unreadable file fails.
fn check(global: &Global, args: &HarSanitizeArgs) -> Result<u8> {
    let scanner = build_scanner(global, &args.common, false, false, false)?;
    let (files, errors) = sanitize_inputs(&args.paths)?;
    let results: Vec<(String, Result<FileReport>)> =
        files.par_iter().map(|(path, _)| (display_name(path), scan_input(&scanner, path))).collect();
    let mut dirty = false;
    let mut trouble = !errors.is_empty();
    let mut json_files = Vec::new();
    let mut lines = String::new();
    for e in &errors {
        lines.push_str(&format!("{}: error: {}\n", e.path, e.message));
    }
    for (name, result) in results {
        match result {
            Ok(r) => {
                dirty |= !r.findings.is_empty();
                trouble |= !r.errors.is_empty();
                let mut kinds: Vec<&str> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
                kinds.sort_unstable();
                kinds.dedup();
                let status = if !r.errors.is_empty() {
                    "unreadable"
                } else if r.findings.is_empty() {
                    "clean"
                } else {
                    "secrets"
                };
                match status {
                    "clean" => lines.push_str(&format!("{name}: clean\n")),
                    "secrets" => lines.push_str(&format!(
                        "{name}: {} secret value{} ({})\n",
                        r.findings.len(),
                        if r.findings.len() == 1 { "" } else { "s" },
                        kinds.join(", ")
                    )),
                    _ => {}
                }
                for e in &r.errors {
                    lines.push_str(&format!("{name}: error: {}\n", e.message));
                }
                json_files.push(json!({
                    "file": name,
                    "status": status,
                    "secrets": r.findings.len(),
                    "kinds": kinds,
                    "locations": r.findings.iter().filter_map(|f| f.har.as_ref().map(|h| h.location.clone())).collect::<Vec<_>>(),
                    "errors": r.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>(),
                }));
            }
            Err(e) => {
                trouble = true;
                lines.push_str(&format!("{name}: error: {e:#}\n"));
                json_files.push(json!({"file": name, "status": "unreadable", "errors": [format!("{e:#}")]}));
            }
        }
    }
    let rendered = match args.format {
        ReportFormat::Human => lines,
        ReportFormat::Json => {
            let errs: Vec<_> = errors.iter().map(|e| json!({"path": e.path, "message": e.message})).collect();
            serde_json::to_string_pretty(&json!({"files": json_files, "errors": errs}))? + "\n"
        }
    };
    output::write_stdout(rendered.as_bytes())?;
    Ok(if trouble {
        exit::TROUBLE
    } else if dirty {
        exit::FOUND
    } else {
        exit::CLEAN
    })
}

/// Where one input's sanitised copy goes.
enum Destination {
    File(PathBuf),
    Stdout,
}

fn destinations(args: &HarSanitizeArgs, files: &[HarFile]) -> Result<Vec<Destination>> {
    if args.in_place {
        if files.iter().any(|(p, _)| p.as_os_str() == "-") {
            bail!("--in-place cannot replace standard input");
        }
        return Ok(files.iter().map(|(p, _)| Destination::File(p.clone())).collect());
    }
    let Some(out) = &args.output else {
        bail!("say where to write: -o OUT (a file, `-` for standard output, or a directory) or --in-place; --check writes nothing");
    };
    let single_file_input = files.len() == 1 && files[0].1.is_none() && !out.is_dir();
    if single_file_input {
        return Ok(vec![if out.as_os_str() == "-" { Destination::Stdout } else { Destination::File(out.clone()) }]);
    }
    if out.as_os_str() == "-" {
        bail!("-o - takes one input file; for several, give a directory");
    }
    if out.exists() && !out.is_dir() {
        bail!("{}: several inputs need an output directory, and this is a file", out.display());
    }
    let mut seen = std::collections::HashSet::new();
    let mut dests = Vec::new();
    for (path, rel) in files {
        let target = match rel {
            Some(rel) => out.join(rel),
            None => out.join(path.file_name().unwrap_or(path.as_os_str())),
        };
        if !seen.insert(target.clone()) {
            bail!("two inputs would both be written to {}", target.display());
        }
        if std::fs::canonicalize(path).ok() == std::fs::canonicalize(&target).ok() && target.exists() {
            bail!("{}: output would overwrite its input; use --in-place for that", target.display());
        }
        dests.push(Destination::File(target));
    }
    Ok(dests)
}

struct Sanitized {
    input: String,
    output: String,
    report: Result<FileReport, String>,
}

fn sanitize(global: &Global, args: &HarSanitizeArgs) -> Result<u8> {
    let started = Instant::now();
    let scanner = build_scanner(global, &args.common, false, false, args.report)?;
    let (files, errors) = sanitize_inputs(&args.paths)?;
    let dests = destinations(args, &files)?;
    let results: Vec<Sanitized> = files
        .par_iter()
        .zip(dests.par_iter())
        .map(|((path, _), dest)| {
            let input = display_name(path);
            let output = match dest {
                Destination::File(p) => p.display().to_string(),
                Destination::Stdout => "<stdout>".to_string(),
            };
            let report = sanitize_one(&scanner, path, &input, dest).map_err(|e| format!("{e:#}"));
            Sanitized { input, output, report }
        })
        .collect();

    let report_to_stdout = !matches!(dests.as_slice(), [Destination::Stdout]);
    let mut failed = !errors.is_empty();
    let mut text = String::new();
    let mut json_files = Vec::new();
    let (mut redacted, mut secrets, mut bytes, mut written) = (0u64, 0u64, 0u64, 0usize);
    for s in &results {
        match &s.report {
            Ok(r) => {
                written += 1;
                bytes += r.bytes;
                redacted += r.redacted;
                secrets += r.redacted_secrets;
                if args.report {
                    append_human_report(&mut text, s, r);
                }
                json_files.push(json!({
                    "input": s.input, "output": s.output, "entries": r.entries, "bytes": r.bytes,
                    "redactions": r.redactions,
                }));
            }
            Err(e) => {
                failed = true;
                text.push_str(&format!("error: {e}\n"));
                json_files.push(json!({"input": s.input, "output": null, "error": e}));
            }
        }
    }
    for e in &errors {
        text.push_str(&format!("error: {}: {}\n", e.path, e.message));
    }
    let summary = format!(
        "sanitised {written} of {} file{} ({:.1} MB): {redacted} value{} redacted, {secrets} of them secrets, in {:.2} s",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        bytes as f64 / 1e6,
        if redacted == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64()
    );
    if args.report && args.format == ReportFormat::Json {
        let errs: Vec<_> = errors.iter().map(|e| json!({"path": e.path, "message": e.message})).collect();
        let rendered = serde_json::to_string_pretty(&json!({"files": json_files, "errors": errs}))? + "\n";
        emit(&rendered, report_to_stdout)?;
        for s in &results {
            if let Err(e) = &s.report {
                eprintln!("error: {e}");
            }
        }
    } else {
        if !global.quiet {
            text.push_str(&summary);
            text.push('\n');
        }
        if args.report {
            emit(&text, report_to_stdout)?;
        } else {
            eprint!("{text}");
        }
    }
    Ok(if failed { exit::TROUBLE } else { exit::CLEAN })
}

fn emit(text: &str, to_stdout: bool) -> Result<()> {
    if to_stdout {
        output::write_stdout(text.as_bytes())
    } else {
        eprint!("{text}");
        Ok(())
    }
}

fn append_human_report(text: &mut String, s: &Sanitized, r: &FileReport) {
    text.push_str(&format!(
        "{} -> {}: {} redaction{}\n",
        s.input,
        s.output,
        r.redactions.len(),
        if r.redactions.len() == 1 { "" } else { "s" }
    ));
    for x in &r.redactions {
        let name = x.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
        text.push_str(&format!("  {}  {}{}  {}\n", x.location, x.part, name, x.marker));
    }
}

/// Sanitises one file into a temporary file beside the destination, renamed into place
/// only when the whole file succeeded.
fn sanitize_one(scanner: &HarScanner, path: &Path, display: &str, dest: &Destination) -> Result<FileReport> {
    let mut input = open_input(path)?;
    match dest {
        Destination::Stdout => {
            let mut buffer = tempfile::tempfile().context("cannot create a temporary file")?;
            let report = {
                let mut writer = std::io::BufWriter::with_capacity(1 << 20, &mut buffer);
                let report = scanner.sanitize(&mut input, display, &mut writer, &std::env::temp_dir())?;
                writer.flush().context("cannot write the sanitised copy")?;
                report
            };
            use std::io::Seek;
            buffer.rewind()?;
            let mut stdout = std::io::stdout().lock();
            std::io::copy(&mut buffer, &mut stdout).context("cannot write to standard output")?;
            stdout.flush()?;
            Ok(report)
        }
        Destination::File(target) => {
            let dir = match target.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create directory", dir.display()))?;
            let tmp = tempfile::NamedTempFile::new_in(&dir)
                .with_context(|| format!("{}: cannot create output", target.display()))?;
            let report = {
                let mut writer = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
                let report = scanner.sanitize(&mut input, display, &mut writer, &dir)?;
                writer.flush().with_context(|| format!("{}: cannot write output", target.display()))?;
                report
            };
            if let Ok(meta) = std::fs::metadata(path) {
                // Keep the input's permissions: a HAR is often readable by its owner only.
                let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
            }
            tmp.persist(target)
                .map_err(|e| e.error)
                .with_context(|| format!("{}: cannot write output", target.display()))?;
            Ok(report)
        }
    }
}
