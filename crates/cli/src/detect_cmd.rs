//! `keywatch detect LOGS...`: reads audit logs of any supported platform (files or
//! directories, plain or gzip, mixed formats), learns each credential's baseline and prints
//! the alerts, in one streaming pass. Credentials the inventory knows to be deleted or
//! revoked, and those in `--revoked FILE`, are watched for any further use. The analysis
//! options here are shared with `keywatch ingest`.

use anyhow::{bail, Context, Result};
use clap::Args;
use keywatch_activity::blocklist::{self, BlockEntry, BlocklistFormat};
use keywatch_activity::detect::{Alert, AllowList, Baseline, Detector, InventoryLink, Options};
use keywatch_activity::enrich::Enricher;
use keywatch_activity::mapped::Mapping;
use keywatch_activity::read::{self, ReadError, Sink, Sources};
use keywatch_model::event::Event;
use keywatch_model::inventory::CredentialStatus;
use keywatch_model::time::{parse_rfc3339, rfc3339_utc};
use keywatch_store::{CredentialFilter, Store};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::{exit, Format, Global};

/// What `detect` and `ingest` share: how to read and how to judge.
#[derive(Args, Debug)]
pub struct AnalysisArgs {
    /// Events before this time (RFC 3339) form the baselines
    #[arg(long, value_name = "TIME", conflicts_with = "train_fraction")]
    pub train_until: Option<String>,
    /// The first FRACTION of the input (by bytes, 0 to 1) forms the baselines
    #[arg(long, value_name = "FRACTION")]
    pub train_fraction: Option<f64>,
    /// Without a training window: each credential's first N events form its baseline
    #[arg(long, value_name = "N")]
    pub baseline_events: Option<u64>,
    /// Credentials revoked, deleted or rotated: one per line, `ID [TIME]`
    #[arg(long, value_name = "FILE")]
    pub revoked: Option<PathBuf>,
    /// A field-mapping file for another JSON-lines source (repeatable; also `[detect] mappings`)
    #[arg(long = "mapping", value_name = "FILE")]
    pub mappings: Vec<PathBuf>,
    /// An IP database, .mmdb or ASN .csv (repeatable; also `[detect] ip_databases`)
    #[arg(long = "ip-database", value_name = "FILE")]
    pub ip_databases: Vec<PathBuf>,
    /// Write the offending IPs, aggregated to CIDRs, to FILE
    #[arg(long, value_name = "FILE")]
    pub blocklist: Option<PathBuf>,
    /// plain, nftables, iptables, nginx or json
    #[arg(long, value_name = "FORMAT", default_value = "plain", value_parser = parse_blocklist_format)]
    pub blocklist_format: BlocklistFormat,
    /// Exit 2 when any file or record could not be read
    #[arg(long)]
    pub strict: bool,
}

fn parse_blocklist_format(text: &str) -> Result<BlocklistFormat, String> {
    text.parse()
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Log files or directories: AWS CloudTrail, Okta System Log, GitHub audit log, Atlassian,
    /// Google Workspace Reports, or a mapped JSON-lines source; .gz read transparently
    #[arg(required = true, value_name = "LOGS")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// human (default on a terminal), json or jsonl
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// Everything an analysis run needs, built from flags and config.
pub struct Analysis {
    pub options: Options,
    pub sources: Sources,
    /// The store, when the data directory has one: revoked credentials and alert links.
    pub inventory: Option<Store>,
    pub enricher: Option<Enricher>,
    pub train_fraction: Option<f64>,
}

impl Analysis {
    pub fn new(global: &Global, args: &AnalysisArgs) -> Result<Analysis> {
        let config = Config::load(global.config.as_deref())?;
        let detect = &config.detect;
        let mut options = Options {
            baseline_events: args.baseline_events.or(detect.baseline_events).unwrap_or(10).max(1),
            ..Options::default()
        };
        if let Some(until) = &args.train_until {
            options.train_until =
                Some(parse_rfc3339(until).with_context(|| format!("--train-until {until:?} is not an RFC 3339 time"))?);
        }
        if let Some(f) = args.train_fraction {
            if !(0.0..=1.0).contains(&f) {
                bail!("--train-fraction {f} is not between 0 and 1");
            }
        }
        if let Some(file) = &args.revoked {
            options.revoked.extend(read_revoked(file)?);
        }
        let dir = global.data_dir();
        let inventory =
            if dir.join(keywatch_store::DATABASE_FILE).exists() { Some(Store::open_in(&dir)?) } else { None };
        if let Some(store) = &inventory {
            options.revoked.extend(revoked_in_inventory(store)?);
        }
        let mut allow = AllowList::default();
        for network in &detect.allow_networks {
            allow.add_network(network).map_err(|e| anyhow::anyhow!("[detect] allow_networks: {e}"))?;
        }
        allow.user_agents = detect.allow_user_agents.clone();
        options.allow = allow;

        let mut sources = Sources::default();
        for file in detect.mappings.iter().chain(&args.mappings) {
            sources.mappings.push(Mapping::load(file)?);
        }
        let databases: Vec<PathBuf> = detect.ip_databases.iter().chain(&args.ip_databases).cloned().collect();
        let enricher = if databases.is_empty() { None } else { Some(Enricher::open(&databases)?) };
        Ok(Analysis { options, sources, inventory, enricher, train_fraction: args.train_fraction })
    }
}

/// The files of a run, and how many bytes they hold together (for `--train-fraction`).
pub struct Inputs {
    pub files: Vec<PathBuf>,
    sizes: Vec<u64>,
}

impl Inputs {
    /// The files under `inputs`; with `measure`, also their decompressed sizes (a gzip file is
    /// read through once more), so that a training fraction falls where the records are.
    pub fn collect(inputs: &[PathBuf], measure: bool) -> Result<Inputs> {
        let mut files = Vec::new();
        for input in inputs {
            collect(input, &mut files).with_context(|| format!("{}: cannot read", input.display()))?;
        }
        let size = |f: &PathBuf| if measure { read::decompressed_size(f).unwrap_or(0) } else { 0 };
        let sizes = files.iter().map(size).collect();
        Ok(Inputs { files, sizes })
    }

    fn total(&self) -> u64 {
        self.sizes.iter().sum()
    }
}

/// What reading a set of files produced.
#[derive(Default)]
pub struct ReadSummary {
    pub events: u64,
    pub bytes: u64,
    pub unreadable: usize,
    pub errors: Vec<ReadError>,
}

/// Reads every file in order, calling `on_event` with each event and whether it falls in the
/// training fraction (`None` without one).
pub fn read_all(
    inputs: &Inputs,
    analysis: &Analysis,
    on_event: &mut dyn FnMut(Event, Option<bool>) -> Result<()>,
) -> Result<ReadSummary> {
    struct Feed<'f> {
        on_event: &'f mut dyn FnMut(Event, Option<bool>) -> Result<()>,
        errors: &'f mut Vec<ReadError>,
        failed: Option<anyhow::Error>,
        /// Where each file starts in the whole input, for the training fraction.
        starts: Vec<u64>,
        offset: u64,
        cutoff: Option<f64>,
    }
    impl Sink for Feed<'_> {
        fn event(&mut self, event: Event, position: u64) {
            if self.failed.is_some() {
                return;
            }
            let training = self.cutoff.map(|cut| ((self.offset + position) as f64) <= cut);
            if let Err(e) = (self.on_event)(event, training) {
                self.failed = Some(e);
            }
        }
        fn error(&mut self, error: ReadError) {
            self.errors.push(error);
        }
        fn file(&mut self, index: usize) {
            self.offset = self.starts[index];
        }
    }
    let mut summary = ReadSummary::default();
    let cutoff = analysis.train_fraction.map(|f| f * inputs.total() as f64);
    let starts = inputs.sizes.iter().scan(0, |at, size| Some(std::mem::replace(at, *at + size))).collect();
    let mut feed = Feed { on_event, errors: &mut summary.errors, failed: None, starts, offset: 0, cutoff };
    let results = read::read_files(&inputs.files, &analysis.sources, &mut feed);
    if let Some(e) = feed.failed {
        return Err(e);
    }
    for (file, result) in inputs.files.iter().zip(results) {
        match result {
            Ok(stats) => {
                summary.events += stats.events;
                summary.bytes += stats.bytes;
            }
            Err(e) => {
                summary.unreadable += 1;
                let display = file.display().to_string();
                // The reader's message starts with the file's name: `file` holds it once.
                let message = format!("{e:#}");
                let message = message.strip_prefix(&format!("{display}: ")).map_or(message.clone(), str::to_string);
                summary.errors.push(ReadError { file: display, line: 0, record: 0, message });
            }
        }
    }
    if !inputs.files.is_empty() && summary.unreadable == inputs.files.len() {
        for e in &summary.errors {
            eprintln!("error: {e}");
        }
        bail!("none of the {} log files could be read", inputs.files.len());
    }
    Ok(summary)
}

/// `detect` and `ingest` write human text, JSON or JSON lines; SARIF and CSV are not theirs.
pub fn check_format(format: Option<Format>) -> Result<()> {
    let name = match format {
        Some(Format::Sarif) => "sarif",
        Some(Format::Csv) => "csv",
        _ => return Ok(()),
    };
    bail!("--format {name} is not supported here: use human, json or jsonl")
}

pub fn run(global: &Global, args: &DetectArgs) -> Result<u8> {
    check_format(args.format)?;
    let analysis = Analysis::new(global, &args.analysis)?;
    let inputs = Inputs::collect(&args.inputs, analysis.train_fraction.is_some())?;
    let mut detector = Detector::new(analysis.options.clone(), analysis.enricher.as_ref());
    let summary = read_all(&inputs, &analysis, &mut |event, training| {
        detector.observe(&event, training);
        Ok(())
    })?;
    let credentials = detector.credentials();
    let (mut alerts, baselines) = detector.finish();
    if let Some(store) = &analysis.inventory {
        link_to_inventory(store, &mut alerts)?;
    }
    if let Some(file) = &args.analysis.blocklist {
        write_blocklist(file, args.analysis.blocklist_format, &alerts, &baselines)?;
    }

    let stdout = std::io::stdout();
    let format = Format::resolve(args.format, stdout.is_terminal());
    let mut out = std::io::BufWriter::new(stdout.lock());
    let stats = json!({
        "files": inputs.files.len(), "events": summary.events, "bytes": summary.bytes,
        "credentials": credentials, "alerts": alerts.len(), "errors": summary.errors.len(),
        "unreadable_files": summary.unreadable, "watched_revoked": analysis.options.revoked.len(),
    });
    print_alerts(&mut out, format, &alerts, &summary.errors, stats)?;
    if format != Format::Json {
        if !global.quiet {
            eprintln!(
                "{} events in {} files from {} credentials; {} alerts; {} unreadable records",
                summary.events,
                inputs.files.len(),
                credentials,
                alerts.len(),
                summary.errors.len()
            );
        }
        print_errors(&summary.errors);
    }
    Ok(outcome(!alerts.is_empty(), &summary, args.analysis.strict))
}

/// Exit code: 2 under `--strict` when something could not be read; else 1 with alerts.
pub fn outcome(found: bool, summary: &ReadSummary, strict: bool) -> u8 {
    if strict && !summary.errors.is_empty() {
        exit::TROUBLE
    } else if found {
        exit::FOUND
    } else {
        exit::CLEAN
    }
}

pub fn print_alerts(
    out: &mut impl Write,
    format: Format,
    alerts: &[Alert],
    errors: &[ReadError],
    stats: serde_json::Value,
) -> Result<()> {
    match format {
        Format::Json => {
            let document = json!({
                "alerts": alerts,
                "errors": errors.iter().map(error_json).collect::<Vec<_>>(),
                "stats": stats,
            });
            serde_json::to_writer_pretty(&mut *out, &document)?;
            writeln!(out)?;
        }
        Format::Jsonl => {
            for alert in alerts {
                serde_json::to_writer(&mut *out, alert)?;
                writeln!(out)?;
            }
        }
        _ => {
            for alert in alerts {
                human(out, alert)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub fn print_errors(errors: &[ReadError]) {
    for e in errors.iter().take(20) {
        eprintln!("error: {e}");
    }
    if errors.len() > 20 {
        eprintln!("error: ... and {} more unreadable records", errors.len() - 20);
    }
}

pub fn human(out: &mut impl Write, a: &Alert) -> Result<()> {
    writeln!(
        out,
        "[{}] {} {} {} .. {} ({} events)",
        a.severity, a.kind, a.credential, a.first_seen, a.last_seen, a.event_count
    )?;
    writeln!(out, "    {}", a.explanation)?;
    if !a.source_ips.is_empty() {
        writeln!(out, "    source IPs: {}", a.source_ips.join(", "))?;
    }
    if !a.networks.is_empty() {
        writeln!(out, "    networks: {}", a.networks.join(", "))?;
    }
    if !a.user_agents.is_empty() {
        writeln!(out, "    user agents: {}", a.user_agents.join(" | "))?;
    }
    if let Some(inv) = &a.inventory {
        writeln!(
            out,
            "    inventory: #{} {} {} {:?} ({}{}{})",
            inv.id,
            inv.platform,
            inv.kind,
            inv.name,
            inv.status,
            inv.owner.as_deref().map(|o| format!("; owner {o}")).unwrap_or_default(),
            if inv.vendors.is_empty() { String::new() } else { format!("; held by {}", inv.vendors.join(", ")) }
        )?;
    }
    Ok(())
}

fn error_json(e: &ReadError) -> serde_json::Value {
    json!({"file": e.file, "line": e.line, "record": e.record, "message": e.message})
}

/// Adds to each alert what the inventory knows of its credential: owner, status, and the
/// vendors that hold it.
pub fn link_to_inventory(store: &Store, alerts: &mut [Alert]) -> Result<()> {
    let mut known: HashMap<String, Option<InventoryLink>> = HashMap::new();
    for alert in alerts.iter_mut() {
        if !known.contains_key(&alert.credential) {
            // An id on two platforms is ambiguous: better no link than a wrong one.
            let link = match store.credential(&alert.credential).ok().flatten() {
                Some(c) => {
                    let relations = store.relations_of_credential(c.id)?;
                    Some(InventoryLink {
                        id: c.id,
                        platform: c.credential.platform.clone(),
                        kind: c.credential.kind.as_str().to_string(),
                        name: c.credential.name.clone(),
                        owner: c.credential.owner.clone(),
                        status: c.credential.status.as_str().to_string(),
                        vendors: relations
                            .vendors
                            .iter()
                            .map(|v| v.vendor.name.clone().unwrap_or_else(|| v.vendor.id.clone()))
                            .collect(),
                    })
                }
                None => None,
            };
            known.insert(alert.credential.clone(), link);
        }
        alert.inventory = known[&alert.credential].clone();
    }
    Ok(())
}

/// Alert kinds whose addresses are the attacker's even when the credential's baseline knows
/// them (a signature, not a deviation).
const ALWAYS_OFFENDING: &[&str] = &["attack_tool", "use_after_revocation", "instance_credentials_off_instance"];

/// The offending IPs of a set of alerts: every address of a signature alert, and of other
/// alerts those that the credential's baseline never saw (so the credential's own servers
/// are not blocked because they also made a privilege change).
pub fn offending_ips(alerts: &[Alert], baselines: &HashMap<&str, &Baseline>) -> Vec<BlockEntry> {
    let mut by_ip: BTreeMap<IpAddr, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for alert in alerts {
        let known = baselines.get(alert.credential.as_str());
        for ip_text in &alert.source_ips {
            let Ok(ip) = ip_text.parse::<IpAddr>() else { continue };
            let in_baseline = known.is_some_and(|b| b.ips.contains(ip_text));
            if in_baseline && !ALWAYS_OFFENDING.contains(&alert.kind.as_str()) {
                continue;
            }
            let (ids, reasons) = by_ip.entry(ip).or_default();
            if !ids.contains(&alert.id) {
                ids.push(alert.id.clone());
            }
            if !reasons.contains(&alert.kind) {
                reasons.push(alert.kind.clone());
            }
        }
    }
    by_ip.into_iter().map(|(ip, (alerts, reasons))| BlockEntry { ip, alerts, reason: reasons.join(", ") }).collect()
}

pub fn write_blocklist(
    file: &Path,
    format: BlocklistFormat,
    alerts: &[Alert],
    baselines: &[(String, Baseline)],
) -> Result<()> {
    let baselines: HashMap<&str, &Baseline> = baselines.iter().map(|(k, b)| (k.as_str(), b)).collect();
    let entries = offending_ips(alerts, &baselines);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let text = blocklist::render(&entries, format, &rfc3339_utc(now));
    write_atomically(file, text.as_bytes()).with_context(|| format!("{}: cannot write the blocklist", file.display()))
}

/// Temp file in the same directory, then rename: a reader never sees half a blocklist.
fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, file).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
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
            if [".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz", ".log", ".log.gz"]
                .iter()
                .any(|s| name.ends_with(s))
            {
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
fn revoked_in_inventory(store: &Store) -> Result<HashMap<String, Option<i64>>> {
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
