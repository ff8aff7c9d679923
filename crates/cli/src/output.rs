//! Presenters for scan reports: human (grouped by secret, coloured), JSON, JSON lines, SARIF
//! 2.1.0 and CSV. They format; they do not decide.

use anyhow::{Context, Result};
use keywatch_model::{Finding, ScanError, ScanStats, Severity, Skipped, Validation};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::Format;

/// The JSON report: one object with the results, the errors and the counters.
#[derive(Debug, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub errors: Vec<ScanError>,
    pub skipped: Vec<Skipped>,
    pub stats: ScanStats,
}

pub fn render(report: &Report, format: Format, color: bool, verbosity: Verbosity) -> String {
    match format {
        Format::Human => human(report, color, verbosity),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json!({
                "version": env!("CARGO_PKG_VERSION"),
                "findings": report.findings,
                "errors": report.errors,
                "skipped": report.skipped,
                "stats": report.stats,
            }))
            .expect("report serialises");
            s.push('\n');
            s
        }
        Format::Jsonl => {
            report.findings.iter().map(|f| serde_json::to_string(f).expect("finding serialises") + "\n").collect()
        }
        Format::Sarif => sarif(report),
        Format::Csv => csv(report),
    }
}

/// Renders a report in the chosen format (human on a terminal, JSON when piped), writes it to
/// `output` atomically or to standard output, and repeats errors on stderr for machine
/// formats. Returns the exit code: trouble when `nothing_read` (or, with `strict`, any
/// error), found when there are findings, clean otherwise.
pub fn deliver(
    report: &Report,
    format: Option<Format>,
    output: Option<&Path>,
    global: &crate::Global,
    nothing_read: bool,
    strict: bool,
) -> Result<u8> {
    let to_terminal = output.is_none() && std::io::stdout().is_terminal();
    let format = Format::resolve(format, to_terminal);
    let rendered = render(report, format, global.color(to_terminal), Verbosity::of(global));
    match output {
        Some(path) => write_atomically(path, rendered.as_bytes())?,
        None => write_stdout(rendered.as_bytes())?,
    }
    if format != Format::Human && !global.quiet {
        print_errors_to_stderr(report, global.color(std::io::stderr().is_terminal()));
    }
    Ok(if nothing_read || (strict && !report.errors.is_empty()) {
        crate::exit::TROUBLE
    } else if report.findings.is_empty() {
        crate::exit::CLEAN
    } else {
        crate::exit::FOUND
    })
}

/// Writes to a temporary file beside `path`, then renames it into place, so a reader never
/// sees a partial report and an interrupted run leaves the old one intact.
pub fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("{}: cannot create output", path.display()))?;
    tmp.write_all(data).with_context(|| format!("{}: cannot write output", path.display()))?;
    tmp.as_file().sync_all().ok();
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("{}: cannot write output", path.display()))?;
    Ok(())
}

pub fn write_stdout(data: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(data).and_then(|_| out.flush()) {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to standard output"),
    }
}

/// Machine formats keep stdout clean; errors still reach the user on stderr.
pub fn print_errors_to_stderr(report: &Report, color: bool) {
    let paint = Paint(color);
    for e in &report.errors {
        eprintln!("{}: {}: {}", paint.red("error"), e.path, e.message);
    }
}

/// How much the human format says besides the findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Findings and errors only.
    Quiet,
    /// Plus a summary line.
    Normal,
    /// Plus every skipped input.
    Verbose,
}

impl Verbosity {
    /// From the global `-q` / `-v` flags.
    pub fn of(global: &crate::Global) -> Self {
        match (global.quiet, global.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            _ => Verbosity::Verbose,
        }
    }
}

struct Paint(bool);

impl Paint {
    fn code(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn bold(&self, t: &str) -> String {
        self.code("1", t)
    }
    fn dim(&self, t: &str) -> String {
        self.code("2", t)
    }
    fn red(&self, t: &str) -> String {
        self.code("31", t)
    }
    fn cyan(&self, t: &str) -> String {
        self.code("36", t)
    }
    fn severity(&self, s: Severity) -> String {
        let code = match s {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "34",
            Severity::Info => "2",
        };
        self.code(code, s.as_str())
    }
}

fn validation_label(v: Validation) -> &'static str {
    match v {
        Validation::ChecksumValid => "checksum valid",
        Validation::ChecksumInvalid => "checksum INVALID",
        Validation::Unverified => "unverified",
    }
}

fn human(report: &Report, color: bool, verbosity: Verbosity) -> String {
    let verbose = verbosity == Verbosity::Verbose;
    let paint = Paint(color);
    let mut out = String::new();
    // One group per secret: the same token in ten files is one leak with ten locations.
    let mut groups: BTreeMap<(String, String), Vec<&Finding>> = BTreeMap::new();
    let mut order: Vec<(String, String)> = Vec::new();
    for f in &report.findings {
        let key = (f.rule_id.clone(), f.secret_sha256.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(f);
    }
    for key in &order {
        let group = &groups[key];
        let first = group[0];
        let _ = writeln!(
            out,
            "{} {}  {}  {}  {}",
            paint.red("●"),
            paint.bold(&first.description),
            paint.severity(first.severity),
            paint.bold(&first.redacted),
            paint.dim(validation_label(first.validation)),
        );
        let _ = writeln!(
            out,
            "  {}",
            paint.dim(&format!("{} · {} · sha256 {}", first.rule_id, first.provider, &first.secret_sha256[..16]))
        );
        for f in group {
            let _ = writeln!(
                out,
                "    {}  {}",
                paint.cyan(&format!("{}:{}:{}", f.path, f.line, f.column)),
                f.context.trim()
            );
            if let Some(c) = &f.commit {
                let _ = writeln!(
                    out,
                    "      {}",
                    paint.dim(&format!(
                        "introduced in {} by {} <{}> on {}: {}",
                        &c.commit[..12],
                        c.author_name,
                        c.author_email,
                        c.date,
                        c.summary
                    ))
                );
            }
            if let Some(h) = &f.har {
                let name = h.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
                let request = if h.url.is_empty() { String::new() } else { format!(" · {} {}", h.method, h.url) };
                let _ = writeln!(out, "      {}", paint.dim(&format!("{}{name} at {}{request}", h.part, h.location)));
            }
            if let Some(j) = &f.jwt {
                let _ = writeln!(out, "      {}", paint.dim(&jwt_summary(j)));
            }
            if let Some(secret) = &f.secret {
                let _ = writeln!(out, "      secret: {secret}");
            }
        }
        out.push('\n');
    }
    for e in &report.errors {
        let _ = writeln!(out, "{}: {}: {}", paint.red("error"), e.path, e.message);
    }
    if verbose {
        for s in &report.skipped {
            let _ = writeln!(out, "{}: {}: {}", paint.dim("skipped"), s.path, s.reason);
        }
    }
    if verbosity == Verbosity::Quiet {
        return out;
    }
    let s = &report.stats;
    let mut summary = format!(
        "{} in {} place{}",
        plural(order.len() as u64, "secret"),
        s.findings,
        if s.findings == 1 { "" } else { "s" }
    );
    let _ = write!(summary, " · {} ({:.1} MB)", plural(s.files, "file"), s.bytes as f64 / 1e6);
    if s.commits > 0 || s.blobs > 0 {
        let _ = write!(summary, " · {} and {}", plural(s.commits, "commit"), plural(s.blobs, "blob"));
    }
    let _ = write!(summary, " in {:.2} s", s.seconds);
    if s.suppressed > 0 {
        let _ = write!(summary, " · {} suppressed by baseline", s.suppressed);
    }
    if s.skipped > 0 {
        let _ = write!(summary, " · {} skipped{}", s.skipped, if verbose { "" } else { " (-v lists them)" });
    }
    if s.errors > 0 {
        let _ = write!(summary, " · {}", paint.red(&plural(s.errors, "error")));
    }
    let _ = writeln!(out, "{}", paint.bold(&summary));
    out
}

/// `JWT HS256 · iss … · sub … · aud … · expires … (expired)` for the human format.
fn jwt_summary(j: &keywatch_model::JwtClaims) -> String {
    let mut parts = vec![format!("JWT {}", j.alg)];
    if let Some(iss) = &j.iss {
        parts.push(format!("iss {iss}"));
    }
    if let Some(sub) = &j.sub {
        parts.push(format!("sub {sub}"));
    }
    if !j.aud.is_empty() {
        parts.push(format!("aud {}", j.aud.join(",")));
    }
    match (&j.expires, j.expired) {
        (Some(exp), Some(true)) => parts.push(format!("expired {exp}")),
        (Some(exp), _) => parts.push(format!("valid until {exp}")),
        (None, _) => parts.push("no expiry".into()),
    }
    match j.valid_at_capture {
        Some(true) => parts.push("was valid when captured".into()),
        Some(false) => parts.push("was not valid when captured".into()),
        None => {}
    }
    parts.join(" · ")
}

fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// SARIF 2.1.0 as GitHub code scanning accepts it: relative artifact URIs, one rule per
/// rule id, `partialFingerprints` for alert tracking across runs.
fn sarif(report: &Report) -> String {
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules = Vec::new();
    for f in &report.findings {
        if !rule_index.contains_key(f.rule_id.as_str()) {
            rule_index.insert(&f.rule_id, rules.len());
            rules.push(json!({
                "id": f.rule_id,
                "name": f.rule_id,
                "shortDescription": {"text": f.description},
                "fullDescription": {"text": format!("{} ({})", f.description, f.provider)},
                "help": {"text": format!("A {} credential was found. Revoke or rotate it with {}, then remove it from the file (and from history).", f.provider, f.provider)},
                "defaultConfiguration": {"level": sarif_level(f.severity)},
                "properties": {"tags": ["security", "secret", f.provider.to_lowercase()], "security-severity": security_severity(f.severity)},
            }));
        }
    }
    let results: Vec<_> = report
        .findings
        .iter()
        .map(|f| {
            // Archive members are not files in the repository: point at the archive and name
            // the member in the message.
            let (file, member) = match f.path.split_once('!') {
                Some((outer, inner)) => (outer, Some(inner)),
                None => (f.path.as_str(), None),
            };
            let mut message = format!("{} found: {} (sha256 {})", f.description, f.redacted, &f.secret_sha256[..16]);
            if let Some(m) = member {
                let _ = write!(message, " in archive member {m}");
            }
            if let Some(c) = &f.commit {
                let _ = write!(message, ", introduced in commit {} by {}", &c.commit[..12], c.author_email);
            }
            let region = if member.is_some() {
                json!({"startLine": 1})
            } else {
                json!({"startLine": f.line, "startColumn": f.column})
            };
            json!({
                "ruleId": f.rule_id,
                "ruleIndex": rule_index[f.rule_id.as_str()],
                "level": sarif_level(f.severity),
                "message": {"text": message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": sarif_uri(file)},
                    "region": region,
                }}],
                "partialFingerprints": {"keywatch/v1": f.fingerprint, "secretSha256/v1": f.secret_sha256},
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "keywatch",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/keywatch/keywatch",
                "rules": rules,
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).expect("sarif serialises") + "\n"
}

fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

/// A relative URI: forward slashes, no `./`, reserved characters percent-encoded.
fn sarif_uri(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.strip_prefix("./").unwrap_or(&p);
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => out.push(b as char),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn csv(report: &Report) -> String {
    let mut out = String::from("rule_id,provider,severity,path,line,column,redacted,secret_sha256,fingerprint,validation,commit,author_email,date\n");
    for f in &report.findings {
        let commit = f.commit.as_ref();
        let fields = [
            f.rule_id.clone(),
            f.provider.clone(),
            f.severity.to_string(),
            f.path.clone(),
            f.line.to_string(),
            f.column.to_string(),
            f.redacted.clone(),
            f.secret_sha256.clone(),
            f.fingerprint.clone(),
            serde_json::to_value(f.validation).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
            commit.map(|c| c.commit.clone()).unwrap_or_default(),
            commit.map(|c| c.author_email.clone()).unwrap_or_default(),
            commit.map(|c| c.date.clone()).unwrap_or_default(),
        ];
        out.push_str(&csv_row(&fields));
        out.push('\n');
    }
    out
}

/// One CSV line (without its newline) of fields quoted by [`csv_field`].
pub fn csv_row(fields: &[String]) -> String {
    fields.iter().map(|s| csv_field(s)).collect::<Vec<_>>().join(",")
}

/// Quotes a CSV field when needed, and defuses spreadsheet formulas.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_csv() {
        assert_eq!(sarif_uri("./a b/c.env"), "a%20b/c.env");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd"), "'=cmd");
    }
}
