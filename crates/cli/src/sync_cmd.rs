//! `keywatch inventory sync`: runs the connectors configured under `[inventory]` and stores
//! what each endpoint listed, one transaction per endpoint, so one platform's outage never
//! throws away another's results.

use anyhow::{bail, Result};
use clap::Args;
use keywatch_inventory::attribution::Attributor;
use keywatch_inventory::sync::{self, EndpointOutcome};
use keywatch_store::{ImportSummary, Store};
use serde_json::json;
use std::io::{IsTerminal, Write};

use crate::config::Config;
use crate::{exit, Format, Global};

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Only this platform (github, okta, google_workspace, slack, atlassian, aws); repeatable. All
    /// configured platforms by default
    #[arg(long = "platform", value_name = "NAME")]
    pub platforms: Vec<String>,
    /// Fetch and read everything, store nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Exit 2 if any endpoint could not be read
    #[arg(long)]
    pub strict: bool,
    /// The summary on stdout: human (default on a terminal) or json
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub catalogue: crate::vendor_cmd::CatalogueArgs,
}

pub fn run(global: &Global, args: &SyncArgs) -> Result<u8> {
    let config = Config::load(global.config.as_deref())?;
    if config.inventory.configured().is_empty() {
        bail!(
            "no connector is configured: add an [inventory.github], [inventory.okta], [inventory.google], \
             [inventory.slack], [inventory.atlassian] or [inventory.aws] section to the config file (--config or KEYWATCH_CONFIG); \
             see docs/inventory.md"
        );
    }
    let catalogue = crate::vendor_cmd::load(global, &args.catalogue)?;
    let attributor = Attributor::new(&catalogue);
    let link = crate::vendor_cmd::linker(&attributor);
    // Open the store before any request, so a store that cannot be opened costs no API quota.
    let mut store = if args.dry_run { None } else { Some(Store::open_in(&global.data_dir())?) };

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let outcomes = runtime.block_on(sync::run(&config.inventory, &args.platforms))?;

    let mut rows = Vec::new();
    let mut failed = 0usize;
    for outcome in outcomes {
        let EndpointOutcome { platform, endpoint, result } = outcome;
        let input = format!("sync:{platform}:{endpoint}");
        let stored: Result<(usize, Option<String>, Option<ImportSummary>)> = result.and_then(|batch| {
            let summary = match store.as_mut() {
                Some(store) => Some(store.import(&batch, &input, &crate::inventory_cmd::now(), &link)?),
                None => None,
            };
            Ok((batch.credentials.len(), batch.complete_scope, summary))
        });
        match stored {
            Ok((count, scope, summary)) => rows.push(json!({
                "platform": platform, "endpoint": endpoint, "ok": true, "credentials": count,
                "complete_scope": scope,
                "new": summary.as_ref().map(|s| s.new), "changed": summary.as_ref().map(|s| s.changed),
                "unchanged": summary.as_ref().map(|s| s.unchanged),
                "disappeared": summary.as_ref().map(|s| s.disappeared),
            })),
            Err(e) => {
                failed += 1;
                rows.push(json!({"platform": platform, "endpoint": endpoint, "ok": false, "error": format!("{e:#}")}));
            }
        }
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match Format::resolve(args.format, std::io::stdout().is_terminal()) {
        Format::Human => {
            for row in &rows {
                let name =
                    format!("{} {}", row["platform"].as_str().unwrap_or(""), row["endpoint"].as_str().unwrap_or(""));
                if row["ok"] == true {
                    let counts = if args.dry_run {
                        "not stored (dry run)".to_string()
                    } else {
                        format!(
                            "{} new, {} changed, {} unchanged, {} disappeared",
                            row["new"], row["changed"], row["unchanged"], row["disappeared"]
                        )
                    };
                    writeln!(out, "{name}: {} credentials; {counts}", row["credentials"])?;
                } else {
                    writeln!(out, "{name}: FAILED: {}", row["error"].as_str().unwrap_or(""))?;
                }
            }
        }
        _ => {
            let errors: Vec<&serde_json::Value> = rows.iter().filter(|r| r["ok"] == false).collect();
            let document = json!({
                "endpoints": rows,
                "errors": errors,
                "stats": {"endpoints": rows.len(), "failed": failed, "dry_run": args.dry_run},
            });
            serde_json::to_writer_pretty(&mut out, &document)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    for row in rows.iter().filter(|r| r["ok"] == false) {
        eprintln!(
            "error: {} {}: {}",
            row["platform"].as_str().unwrap_or(""),
            row["endpoint"].as_str().unwrap_or(""),
            row["error"].as_str().unwrap_or("")
        );
    }
    Ok(if failed == rows.len() || (failed > 0 && args.strict) { exit::TROUBLE } else { exit::CLEAN })
}
