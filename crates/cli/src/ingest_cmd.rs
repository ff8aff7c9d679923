//! `keywatch ingest LOGS...`: what `detect` does, kept in the store. Events are stored once
//! (by the platform's event id, or a hash of the event), baselines carry over from run to run
//! per credential, and alerts grow instead of repeating; ingesting the same log twice adds
//! nothing. `--follow` keeps reading a growing JSON-lines file, or standard input, and prints
//! each alert as it is raised or grows.

use anyhow::{bail, Context, Result};
use clap::Args;
use keywatch_activity::detect::{Alert, Baseline, Detector};
use keywatch_activity::read::{LineReader, ReadError};
use keywatch_model::event::Event;
use keywatch_model::time::rfc3339_utc;
use keywatch_store::activity::{ActivitySession, StoredAlert};
use keywatch_store::Store;
use serde_json::json;
use std::io::{BufRead, BufReader, IsTerminal, Seek, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::detect_cmd::{self, Analysis, AnalysisArgs, Inputs};
use crate::{Format, Global};

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Log files or directories (as for `detect`), or `-` for standard input
    #[arg(required = true, value_name = "LOGS")]
    pub inputs: Vec<PathBuf>,
    /// Keep reading one growing JSON-lines file (or `-`) and report alerts as they happen
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    /// human (default on a terminal), json or jsonl
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

fn now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    rfc3339_utc(secs)
}

/// The detector with the store's baselines and alerts.
fn detector_from_store<'a>(session: &ActivitySession<'_>, analysis: &'a Analysis) -> Result<Detector<'a>> {
    let mut detector = Detector::new(analysis.options.clone(), analysis.enricher.as_ref());
    let mut baselines = Vec::new();
    for (key, data) in session.baselines()? {
        let baseline: Baseline =
            serde_json::from_str(&data).with_context(|| format!("stored baseline of {key} is not valid"))?;
        baselines.push((key, baseline));
    }
    detector.load_baselines(baselines);
    let mut alerts = Vec::new();
    for stored in session.alerts()? {
        let alert: Alert =
            serde_json::from_str(&stored.data).with_context(|| format!("stored alert {} is not valid", stored.id))?;
        alerts.push(alert);
    }
    detector.load_alerts(alerts);
    Ok(detector)
}

/// Saves the alerts raised or grown since the last save; returns them.
fn save_changed(session: &ActivitySession<'_>, detector: &mut Detector<'_>, now: &str) -> Result<Vec<Alert>> {
    let changed = detector.take_changed();
    for alert in &changed {
        let stored = StoredAlert {
            id: alert.id.clone(),
            kind: alert.kind.clone(),
            severity: alert.severity.clone(),
            credential: alert.credential.clone(),
            first_seen: alert.first_seen.clone(),
            last_seen: alert.last_seen.clone(),
            data: serde_json::to_string(alert)?,
        };
        session.save_alert(&stored, now)?;
    }
    Ok(changed)
}

fn save_baselines(session: &ActivitySession<'_>, baselines: &[(String, Baseline)], now: &str) -> Result<()> {
    for (key, baseline) in baselines {
        session.save_baseline(key, &baseline.platform, &serde_json::to_string(baseline)?, now)?;
    }
    Ok(())
}

pub fn run(global: &Global, args: &IngestArgs) -> Result<u8> {
    detect_cmd::check_format(args.format)?;
    let analysis = Analysis::new(global, &args.analysis)?;
    if args.follow {
        return follow(global, args, &analysis);
    }
    if args.inputs.iter().any(|i| i.as_os_str() == "-") {
        bail!("`-` (standard input) is read with --follow");
    }
    let inputs = Inputs::collect(&args.inputs, analysis.train_fraction.is_some())?;
    let mut store = Store::open_in(&global.data_dir())?;
    let now = now();
    let session = store.activity()?;
    let mut detector = detector_from_store(&session, &analysis)?;
    let (mut new_events, mut duplicates) = (0u64, 0u64);
    let summary = detect_cmd::read_all(&inputs, &analysis, &mut |event, training| {
        if session.insert_event(&event, &now)? {
            new_events += 1;
            detector.observe(&event, training);
        } else {
            duplicates += 1;
        }
        Ok(())
    })?;
    let mut changed = save_changed(&session, &mut detector, &now)?;
    let credentials = detector.credentials();
    let (_, baselines) = detector.finish();
    save_baselines(&session, &baselines, &now)?;
    session.commit()?;
    detect_cmd::link_to_inventory(&store, &mut changed)?;
    if let Some(file) = &args.analysis.blocklist {
        detect_cmd::write_blocklist(file, args.analysis.blocklist_format, &changed, &baselines)?;
    }

    let stdout = std::io::stdout();
    let format = Format::resolve(args.format, stdout.is_terminal());
    let mut out = std::io::BufWriter::new(stdout.lock());
    let counts = store.activity_counts()?;
    let stats = json!({
        "files": inputs.files.len(), "events": summary.events, "new_events": new_events,
        "duplicate_events": duplicates, "bytes": summary.bytes, "credentials": credentials,
        "alerts_raised_or_grown": changed.len(), "errors": summary.errors.len(),
        "stored": {"events": counts.events, "baselines": counts.baselines, "alerts": counts.alerts},
    });
    detect_cmd::print_alerts(&mut out, format, &changed, &summary.errors, stats)?;
    if format != Format::Json {
        if !global.quiet {
            eprintln!(
                "{} events read, {new_events} new, {duplicates} already stored; {} alerts raised or grown; \
                 the store holds {} events, {} baselines, {} alerts",
                summary.events,
                changed.len(),
                counts.events,
                counts.baselines,
                counts.alerts
            );
        }
        detect_cmd::print_errors(&summary.errors);
    }
    Ok(detect_cmd::outcome(!changed.is_empty(), &summary, args.analysis.strict))
}

/// How often `--follow` commits and reports.
const FOLLOW_COMMIT: Duration = Duration::from_millis(500);

/// A growing file, reopened from the start when it is truncated or replaced.
struct Tail {
    path: PathBuf,
    reader: BufReader<std::fs::File>,
    position: u64,
}

impl Tail {
    fn open(path: PathBuf) -> Result<Tail> {
        let file = std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Tail { path, reader: BufReader::new(file), position: 0 })
    }

    /// Whether the file now on disk is shorter than what was read: rotated or truncated.
    fn rotated(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() < self.position)
    }

    fn reopen(&mut self) -> Result<()> {
        let mut file =
            std::fs::File::open(&self.path).with_context(|| format!("cannot open {}", self.path.display()))?;
        file.rewind()?;
        self.reader = BufReader::new(file);
        self.position = 0;
        Ok(())
    }
}

fn follow(global: &Global, args: &IngestArgs, analysis: &Analysis) -> Result<u8> {
    let [input] = args.inputs.as_slice() else { bail!("--follow reads one file or `-`") };
    let stdin = input.as_os_str() == "-";
    let display = if stdin { "<stdin>".to_string() } else { input.display().to_string() };
    let mut tail = if stdin { None } else { Some(Tail::open(input.clone())?) };
    let stdin_lines = stdin.then(stdin_lines);
    let mut store = Store::open_in(&global.data_dir())?;
    let stdout = std::io::stdout();
    let format = match Format::resolve(args.format, stdout.is_terminal()) {
        Format::Json => Format::Jsonl,
        other => other,
    };
    let mut out = stdout.lock();
    let mut lines = LineReader::new(&analysis.sources, &display);
    let (mut line_number, mut found) = (0u64, false);
    let mut partial = Vec::new();
    let mut errors: Vec<ReadError> = Vec::new();
    let mut commits = 0u64;
    let mut detector = {
        let session = store.activity()?;
        let detector = detector_from_store(&session, analysis)?;
        session.commit()?;
        detector
    };
    loop {
        let now = now();
        let session = store.activity()?;
        let started = Instant::now();
        let mut ended = false;
        let mut seen = 0u64;
        while started.elapsed() < FOLLOW_COMMIT {
            match (&mut tail, &stdin_lines) {
                (Some(t), _) => {
                    let n = t.reader.read_until(b'\n', &mut partial)?;
                    t.position += n as u64;
                    if n == 0 || partial.last() != Some(&b'\n') {
                        if t.rotated() {
                            t.reopen()?;
                            partial.clear();
                            line_number = 0;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                }
                // Waits no longer than the commit interval: what was read is committed and
                // reported even when the pipe then stays quiet.
                (None, Some(rx)) => match rx.recv_timeout(FOLLOW_COMMIT.saturating_sub(started.elapsed())) {
                    Ok(line) => partial = line?,
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        ended = true;
                        break;
                    }
                },
                (None, None) => unreachable!("one input"),
            }
            line_number += 1;
            for result in lines.line(&partial, line_number) {
                match result {
                    Ok(event) => {
                        seen += 1;
                        observe(&session, &mut detector, &event, &now)?;
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        errors.push(e);
                    }
                }
            }
            partial.clear();
        }
        let mut changed = save_changed(&session, &mut detector, &now)?;
        if seen > 0 {
            save_baselines(&session, &detector.take_touched_baselines(), &now)?;
            commits += 1;
        }
        session.commit()?;
        detect_cmd::link_to_inventory(&store, &mut changed)?;
        for alert in &changed {
            found = true;
            match format {
                Format::Jsonl => {
                    serde_json::to_writer(&mut out, alert)?;
                    writeln!(out)?;
                }
                _ => detect_cmd::human(&mut out, alert)?,
            }
        }
        out.flush()?;
        if ended {
            if !global.quiet {
                eprintln!("{line_number} lines read; {} unreadable records; {commits} commits", errors.len());
            }
            let summary = detect_cmd::ReadSummary { errors, ..Default::default() };
            return Ok(detect_cmd::outcome(found, &summary, args.analysis.strict));
        }
    }
}

/// Standard input, line by line (the last line perhaps without its newline), read on a thread
/// of its own so that waiting for the next line never holds back what was read before it.
fn stdin_lines() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::sync_channel(1024);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(std::io::stdin());
        loop {
            let mut line = Vec::new();
            let sent = match reader.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => tx.send(Ok(line)),
                Err(e) => tx.send(Err(e)),
            };
            if sent.is_err() {
                return;
            }
        }
    });
    rx
}

fn observe(session: &ActivitySession<'_>, detector: &mut Detector<'_>, event: &Event, now: &str) -> Result<()> {
    if session.insert_event(event, now)? {
        detector.observe(event, None);
    }
    Ok(())
}
