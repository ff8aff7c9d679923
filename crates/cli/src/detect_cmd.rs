//! `keywatch detect LOGS...`: reads audit logs (files or directories, plain or gzip), learns
//! each credential's baseline and prints the alerts. Credentials the inventory knows to be
//! deleted or revoked, and those in `--revoked FILE`, are watched for any further use.

use anyhow::{bail, Context, Result};
use clap::Args;
use keywatch_activity::cloudtrail::{self, ReadError};
use keywatch_activity::detect::{self, Alert, Options};
use keywatch_model::event::Event;
use keywatch_model::inventory::CredentialStatus;
use keywatch_model::time::parse_rfc3339;
use keywatch_store::{CredentialFilter, Store};
use serde_json::json;
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::{exit, Format, Global};

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Log files or directories (AWS CloudTrail: S3 delivery files, JSON lines,
    /// `lookup-events` output; .gz read transparently)
    #[arg(required = true, value_name = "LOGS")]
    pub inputs: Vec<PathBuf>,
    /// Events before this time (RFC 3339) form the baselines; by default each credential's
    /// first --baseline-events events do
    #[arg(long, value_name = "TIME")]
    pub train_until: Option<String>,
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub baseline_events: usize,
    /// Credentials revoked, deleted or rotated: one per line, `ID [TIME]`
    #[arg(long, value_name = "FILE")]
    pub revoked: Option<PathBuf>,
    /// human (default on a terminal), json or jsonl
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run(global: &Global, args: &DetectArgs) -> Result<u8> {
    let mut options = Options { baseline_events: args.baseline_events.max(1), ..Options::default() };
    if let Some(until) = &args.train_until {
        options.train_until =
            Some(parse_rfc3339(until).with_context(|| format!("--train-until {until:?} is not an RFC 3339 time"))?);
    }
    if let Some(file) = &args.revoked {
        options.revoked.extend(read_revoked(file)?);
    }
    options.revoked.extend(revoked_in_inventory(global)?);

    let mut files = Vec::new();
    for input in &args.inputs {
        collect(input, &mut files).with_context(|| format!("{}: cannot read", input.display()))?;
    }
    let mut events: Vec<Event> = Vec::new();
    let mut errors: Vec<ReadError> = Vec::new();
    let mut unreadable = 0usize;
    let mut bytes = 0u64;
    for file in &files {
        match cloudtrail::read_file(file, &mut |e| events.push(e), &mut |e| errors.push(e)) {
            Ok(stats) => bytes += stats.bytes,
            Err(e) => {
                unreadable += 1;
                errors.push(ReadError {
                    file: file.display().to_string(),
                    line: 0,
                    record: 0,
                    message: format!("{e:#}"),
                });
            }
        }
    }
    if !files.is_empty() && unreadable == files.len() {
        for e in &errors {
            eprintln!("error: {}: {}", e.file, e.message);
        }
        bail!("none of the {} log files could be read", files.len());
    }
    let event_count = events.len();
    let alerts = detect::detect(&mut events, &options);

    let stdout = std::io::stdout();
    let format = Format::resolve(args.format, stdout.is_terminal());
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        Format::Json => {
            let document = json!({
                "alerts": alerts,
                "errors": errors.iter().map(error_json).collect::<Vec<_>>(),
                "stats": {"files": files.len(), "events": event_count, "bytes": bytes, "alerts": alerts.len(),
                          "errors": errors.len(), "watched_revoked": options.revoked.len()},
            });
            serde_json::to_writer_pretty(&mut out, &document)?;
            writeln!(out)?;
        }
        Format::Jsonl => {
            for alert in &alerts {
                serde_json::to_writer(&mut out, alert)?;
                writeln!(out)?;
            }
        }
        _ => {
            for alert in &alerts {
                human(&mut out, alert)?;
            }
            if !global.quiet {
                eprintln!(
                    "{} events in {} files; {} alerts; {} unreadable records",
                    event_count,
                    files.len(),
                    alerts.len(),
                    errors.len()
                );
            }
        }
    }
    out.flush()?;
    if format != Format::Json {
        for e in errors.iter().take(20) {
            eprintln!("error: {}:{}: {}", e.file, e.line, e.message);
        }
    }
    Ok(if alerts.is_empty() { exit::CLEAN } else { exit::FOUND })
}

fn human(out: &mut impl Write, a: &Alert) -> Result<()> {
    writeln!(
        out,
        "[{}] {} {} {} .. {} ({} events)",
        a.severity, a.kind, a.credential, a.first_seen, a.last_seen, a.event_count
    )?;
    writeln!(out, "    {}", a.explanation)?;
    if !a.source_ips.is_empty() {
        writeln!(out, "    source IPs: {}", a.source_ips.join(", "))?;
    }
    if !a.user_agents.is_empty() {
        writeln!(out, "    user agents: {}", a.user_agents.join(" | "))?;
    }
    Ok(())
}

fn error_json(e: &ReadError) -> serde_json::Value {
    json!({"file": e.file, "line": e.line, "record": e.record, "message": e.message})
}

/// Files under `input`, recursively, in name order; in a directory only log-like names.
fn collect(input: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(input)?;
    if meta.is_file() {
        files.push(input.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(input)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, files)?;
        } else {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if [".json", ".jsonl", ".json.gz", ".jsonl.gz", ".log", ".log.gz"].iter().any(|s| name.ends_with(s)) {
                files.push(path);
            }
        }
    }
    Ok(())
}

/// `ID [TIME]` per line; `#` starts a comment.
fn read_revoked(file: &Path) -> Result<HashMap<String, Option<i64>>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("{}: cannot read", file.display()))?;
    let mut revoked = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let id = parts.next().unwrap_or_default().to_string();
        let at = match parts.next() {
            None => None,
            Some(t) => Some(
                parse_rfc3339(t)
                    .with_context(|| format!("{}:{}: {t:?} is not an RFC 3339 time", file.display(), n + 1))?,
            ),
        };
        revoked.insert(id, at);
    }
    Ok(revoked)
}

/// Deleted and revoked credentials of the inventory with a platform handle (an access key id,
/// a token id), and when they went.
fn revoked_in_inventory(global: &Global) -> Result<HashMap<String, Option<i64>>> {
    let dir = global.data_dir();
    if !dir.join(keywatch_store::DATABASE_FILE).exists() {
        return Ok(HashMap::new());
    }
    let store = Store::open_in(&dir)?;
    let mut revoked = HashMap::new();
    for status in [CredentialStatus::Deleted, CredentialStatus::Revoked] {
        let filter = CredentialFilter { status: Some(status), ..CredentialFilter::default() };
        for c in store.credentials(&filter)? {
            let at = c.deleted_at.as_deref().and_then(parse_rfc3339);
            for handle in
                [c.credential.fingerprint.clone(), Some(c.credential.external_id.clone())].into_iter().flatten()
            {
                revoked.insert(handle, at);
            }
        }
    }
    Ok(revoked)
}
