//! `keywatch inventory`: import platform exports into the store, list and show credentials.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use keywatch_inventory::attribution::Attributor;
use keywatch_inventory::import::{read_export, ExportKind, ImportContext};
use keywatch_model::inventory::{CredentialKind, CredentialStatus, Privilege};
use keywatch_model::time::{parse_rfc3339, rfc3339_utc};
use keywatch_store::{CredentialFilter, CredentialRelations, Person, RelationEvidence, Store, StoredCredential};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::output::csv_row;
use crate::{exit, Format, Global};

#[derive(Subcommand, Debug)]
pub enum InventoryCommand {
    /// Import exports of the platforms' inventory endpoints (JSON pages, or the AWS IAM
    /// credential report CSV); each file is recognised by its shape and stored in one
    /// transaction
    Import(ImportArgs),
    /// List stored credentials, most exposed first (active, privileged, recently used)
    List(ListArgs),
    /// Show one credential and the history of its changes
    Show(ShowArgs),
    /// Fetch the inventory live from the platforms configured under [inventory] in the
    /// config file (GitHub, Okta, Google Workspace, Slack, Atlassian, AWS), one transaction per
    /// endpoint
    Sync(crate::sync_cmd::SyncArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Export files
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// What the files are, instead of recognising them: aws-credential-report,
    /// aws-list-access-keys, aws-roles, github-installations, github-personal-access-tokens,
    /// github-deploy-keys, github-org-webhooks, google-tokens, okta-api-tokens,
    /// slack-integration-logs
    #[arg(long, value_name = "KIND")]
    pub kind: Option<ExportKind>,
    /// The GitHub organisation (or OWNER/REPO for deploy keys) the files were fetched for,
    /// when the records do not say
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// The Okta org the files were fetched from (`acme.okta.com`): makes a token list
    /// complete for it
    #[arg(long, value_name = "ORG")]
    pub okta_org: Option<String>,
    /// Exit 2 if any file could not be imported
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub catalogue: crate::vendor_cmd::CatalogueArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(long, value_name = "KIND")]
    pub kind: Option<CredentialKind>,
    /// active, inactive, pending, revoked, deleted (deleted ones are listed only when asked)
    #[arg(long)]
    pub status: Option<CredentialStatus>,
    /// read, write, admin, unknown
    #[arg(long)]
    pub privilege: Option<Privilege>,
    /// Only credentials not used for N days (never used counts)
    #[arg(long, value_name = "N")]
    pub unused_days: Option<u32>,
    /// Only credentials expiring within N days
    #[arg(long, value_name = "N")]
    pub expiring_days: Option<u32>,
    /// Evaluate --unused-days and --expiring-days as of this time (RFC 3339), not now
    #[arg(long, value_name = "TIME")]
    pub as_of: Option<String>,
    /// Only credentials linked to this vendor: id, name or alias (any case), as in
    /// `vendor exposure`
    #[arg(long, value_name = "NAME")]
    pub vendor: Option<String>,
    #[command(flatten)]
    pub catalogue: crate::vendor_cmd::CatalogueArgs,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Keywatch id, PLATFORM:EXTERNAL_ID, or an external id
    pub id: String,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run(global: &Global, cmd: &InventoryCommand) -> Result<u8> {
    match cmd {
        InventoryCommand::Import(args) => import(global, args),
        InventoryCommand::List(args) => list(global, args),
        InventoryCommand::Show(args) => show(global, args),
        InventoryCommand::Sync(args) => crate::sync_cmd::run(global, args),
    }
}

pub(crate) fn now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    rfc3339_utc(secs)
}

fn import(global: &Global, args: &ImportArgs) -> Result<u8> {
    let catalogue = crate::vendor_cmd::load(global, &args.catalogue)?;
    let attributor = Attributor::new(&catalogue);
    let link = crate::vendor_cmd::linker(&attributor);
    let mut store = Store::open_in(&global.data_dir())?;
    let ctx = ImportContext { github_owner: args.owner.clone(), okta_org: args.okta_org.clone() };
    let mut failed = 0usize;
    for path in &args.files {
        let display = path.display().to_string();
        let outcome = std::fs::read(path)
            .with_context(|| format!("{display}: cannot read"))
            .and_then(|bytes| read_export(&bytes, &display, args.kind, &ctx))
            .and_then(|(kind, batch)| {
                let summary =
                    store.import(&batch, &display, &now(), &link).with_context(|| format!("{display}: not stored"))?;
                Ok((kind, batch, summary))
            });
        match outcome {
            Ok((kind, batch, s)) => {
                if !global.quiet {
                    let how = if args.kind.is_some() { "read as" } else { "recognised as" };
                    let complete = match &batch.complete_scope {
                        Some(scope) => format!("complete for {scope}"),
                        None => "partial: nothing it omits is marked deleted".to_string(),
                    };
                    eprintln!(
                        "{display}: {how} {} ({complete}); {} credentials: {} new, {} changed, {} unchanged, {} disappeared",
                        kind.describe(),
                        batch.credentials.len(),
                        s.new,
                        s.changed,
                        s.unchanged,
                        s.disappeared
                    );
                    if s.merged > 0 {
                        eprintln!(
                            "{display}: merged {} records into credentials stored under another id (the same AWS access key in the credential report and list-access-keys)",
                            s.merged
                        );
                    }
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e:#}");
            }
        }
    }
    if failed == args.files.len() || (args.strict && failed > 0) {
        return Ok(exit::TROUBLE);
    }
    Ok(exit::CLEAN)
}

fn days_from(base: &str, days: u32, sign: i64) -> Result<String> {
    let secs = parse_rfc3339(base).with_context(|| format!("--as-of {base:?} is not an RFC 3339 time"))?;
    Ok(rfc3339_utc(secs + sign * i64::from(days) * 86_400))
}

fn list(global: &Global, args: &ListArgs) -> Result<u8> {
    let as_of = match &args.as_of {
        Some(t) => rfc3339_utc(parse_rfc3339(t).with_context(|| format!("--as-of {t:?} is not an RFC 3339 time"))?),
        None => now(),
    };
    // The vendor is resolved first: an unknown name is a usage error, inventory or not.
    let vendor = match &args.vendor {
        Some(name) => Some(crate::vendor_cmd::resolve_vendor(global, &args.catalogue, name)?),
        None => None,
    };
    let filter = CredentialFilter {
        platform: args.platform.clone(),
        kind: args.kind,
        status: args.status,
        privilege: args.privilege,
        unused_since: args.unused_days.map(|d| days_from(&as_of, d, -1)).transpose()?,
        expiring_before: args
            .expiring_days
            .map(|d| Ok::<_, anyhow::Error>((as_of.clone(), days_from(&as_of, d, 1)?)))
            .transpose()?,
        vendor,
    };
    let store = open_existing(global)?;
    let mut found = store.credentials(&filter)?;
    sort_by_exposure(&mut found);
    let stdout = std::io::stdout();
    let format = Format::resolve(args.format, stdout.is_terminal());
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        Format::Json | Format::Sarif => {
            let list: Vec<serde_json::Value> = found.iter().map(credential_json).collect();
            serde_json::to_writer_pretty(
                &mut out,
                &json!({"credentials": list, "errors": [], "stats": {"count": found.len()}}),
            )?;
            writeln!(out)?;
        }
        Format::Jsonl => {
            for c in &found {
                serde_json::to_writer(&mut out, &credential_json(c))?;
                writeln!(out)?;
            }
        }
        Format::Csv => write_csv(&mut out, &found)?,
        Format::Human => {
            for c in &found {
                let k = &c.credential;
                writeln!(
                    out,
                    "{:>6}  {:<7} {:<22} {:<9} {:<8} {:<20} {}  last used {}",
                    c.id,
                    k.platform,
                    k.kind.as_str(),
                    k.status.as_str(),
                    k.privilege.as_str(),
                    c.identity_name.as_deref().or(k.identity.as_deref()).unwrap_or("-"),
                    k.name,
                    k.last_used.as_deref().unwrap_or("never/unknown")
                )?;
            }
            if !global.quiet {
                eprintln!("{} credentials", found.len());
            }
        }
    }
    out.flush()?;
    Ok(exit::CLEAN)
}

/// Active before inactive, admin before read, recently used first.
fn sort_by_exposure(found: &mut [StoredCredential]) {
    found.sort_by(|a, b| {
        by_exposure(a, b)
            .then_with(|| a.credential.platform.cmp(&b.credential.platform))
            .then_with(|| a.credential.name.cmp(&b.credential.name))
    });
}

/// What to rotate first: active before inactive, admin before write before read, then the
/// most recently used.
pub(crate) fn by_exposure(a: &StoredCredential, b: &StoredCredential) -> std::cmp::Ordering {
    let rank = |c: &StoredCredential| {
        (c.credential.status != CredentialStatus::Active, std::cmp::Reverse(c.credential.privilege))
    };
    rank(a)
        .cmp(&rank(b))
        .then_with(|| b.credential.last_used.cmp(&a.credential.last_used))
        .then_with(|| a.id.cmp(&b.id))
}

fn credential_json(c: &StoredCredential) -> serde_json::Value {
    let k = &c.credential;
    json!({
        "id": c.id,
        "platform": k.platform,
        "external_id": k.external_id,
        "kind": k.kind,
        "name": k.name,
        "identity": k.identity,
        "identity_name": c.identity_name,
        "owner": k.owner,
        "privilege": k.privilege,
        "scopes": k.scopes,
        "created": k.created,
        "expires": k.expires,
        "last_rotated": k.last_rotated,
        "last_used": k.last_used,
        "status": k.status,
        "fingerprint": k.fingerprint,
        "source": c.source,
        "first_seen": c.first_seen,
        "last_seen": c.last_seen,
        "deleted_at": c.deleted_at,
    })
}

fn write_csv(out: &mut dyn Write, found: &[StoredCredential]) -> Result<()> {
    writeln!(
        out,
        "id,platform,kind,external_id,name,identity,owner,privilege,scopes,created,expires,last_used,status"
    )?;
    for c in found {
        let k = &c.credential;
        let row = [
            c.id.to_string(),
            k.platform.clone(),
            k.kind.as_str().to_string(),
            k.external_id.clone(),
            k.name.clone(),
            c.identity_name.clone().or(k.identity.clone()).unwrap_or_default(),
            k.owner.clone().unwrap_or_default(),
            k.privilege.as_str().to_string(),
            k.scopes.join(" "),
            k.created.clone().unwrap_or_default(),
            k.expires.clone().unwrap_or_default(),
            k.last_used.clone().unwrap_or_default(),
            k.status.as_str().to_string(),
        ];
        writeln!(out, "{}", csv_row(&row))?;
    }
    Ok(())
}

/// The store, which must exist: listing must not create an empty one silently.
pub(crate) fn open_existing(global: &Global) -> Result<Store> {
    let dir = global.data_dir();
    if !dir.join(keywatch_store::DATABASE_FILE).exists() {
        bail!("no inventory in {} yet: run `keywatch inventory import FILE...` first", dir.display());
    }
    Store::open_in(&dir)
}

fn show(global: &Global, args: &ShowArgs) -> Result<u8> {
    let store = open_existing(global)?;
    let Some(c) = store.credential(&args.id)? else {
        bail!("no credential {:?} in the inventory", args.id);
    };
    let history = store.history(c.id)?;
    let relations = store.relations_of_credential(c.id)?;
    let stdout = std::io::stdout();
    let format = Format::resolve(args.format, stdout.is_terminal());
    let mut out = std::io::BufWriter::new(stdout.lock());
    if format == Format::Human {
        let k = &c.credential;
        writeln!(out, "{} ({} {} on {})", k.name, k.status.as_str(), k.kind.as_str(), k.platform)?;
        let rows = [
            ("id", c.id.to_string()),
            ("external id", k.external_id.clone()),
            ("identity", c.identity_name.clone().or(k.identity.clone()).unwrap_or_else(|| "-".into())),
            ("owner", k.owner.clone().unwrap_or_else(|| "-".into())),
            ("privilege", k.privilege.as_str().to_string()),
            ("scopes", if k.scopes.is_empty() { "-".into() } else { k.scopes.join(", ") }),
            ("created", k.created.clone().unwrap_or_else(|| "-".into())),
            ("expires", k.expires.clone().unwrap_or_else(|| "-".into())),
            ("last rotated", k.last_rotated.clone().unwrap_or_else(|| "-".into())),
            ("last used", k.last_used.clone().unwrap_or_else(|| "never/unknown".into())),
            ("fingerprint", k.fingerprint.clone().unwrap_or_else(|| "-".into())),
            ("first seen", c.first_seen.clone()),
            ("last seen", c.last_seen.clone()),
            ("deleted", c.deleted_at.clone().unwrap_or_else(|| "-".into())),
        ];
        for (label, value) in rows {
            writeln!(out, "  {label:<13} {value}")?;
        }
        write_relations(&mut out, &relations)?;
        writeln!(out, "history:")?;
        for h in &history {
            let detail = match &h.field {
                Some(f) => format!(
                    " {f}: {} -> {}",
                    h.old_value.as_deref().unwrap_or("(none)"),
                    h.new_value.as_deref().unwrap_or("(none)")
                ),
                None => String::new(),
            };
            writeln!(out, "  {} {}{detail} ({}, {})", h.at, h.change, h.source, h.input)?;
        }
    } else {
        let history: Vec<serde_json::Value> = history
            .iter()
            .map(|h| {
                json!({"at": h.at, "change": h.change, "field": h.field, "old": h.old_value,
                       "new": h.new_value, "source": h.source, "input": h.input})
            })
            .collect();
        let mut value = credential_json(&c);
        value["history"] = json!(history);
        add_relations_json(&mut value, &relations);
        serde_json::to_writer_pretty(&mut out, &value)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(exit::CLEAN)
}

/// `show`'s relation sections, after the credential's fields.
fn write_relations(out: &mut dyn Write, relations: &CredentialRelations) -> Result<()> {
    // The evidence names the source where it matters; JSON has it as a field.
    let why = |r: &RelationEvidence| format!("[{:.2}: {}]", r.confidence, r.evidence.join("; "));
    let person = |p: &Person| if p.name == p.key { p.key.clone() } else { format!("{} ({})", p.name, p.key) };
    if !relations.identities.is_empty() {
        writeln!(out, "identities:")?;
    }
    for i in &relations.identities {
        let identity = &i.identity.identity;
        writeln!(
            out,
            "  {} {} {} ({})  {}",
            identity.platform,
            identity.kind.as_str(),
            identity.name,
            identity.external_id,
            why(&i.relation)
        )?;
        for (p, r) in &i.owners {
            writeln!(out, "    owned by {}  {}", person(p), why(r))?;
        }
        for (v, r) in &i.vendors {
            writeln!(out, "    held by vendor {} ({})  {}", v.name.as_deref().unwrap_or(&v.id), v.id, why(r))?;
        }
    }
    for (p, r) in &relations.owners {
        writeln!(out, "owned by {}  {}", person(p), why(r))?;
    }
    if !relations.vendors.is_empty() {
        writeln!(out, "vendors:")?;
    }
    for l in &relations.vendors {
        let name = l.vendor.name.as_deref().unwrap_or(&l.vendor.id);
        writeln!(out, "  {name} ({})  [{:.2}: {}]", l.vendor.id, l.confidence, l.evidence.join("; "))?;
    }
    if !relations.merged.is_empty() {
        writeln!(out, "merged records (the same credential in other exports):")?;
    }
    for m in &relations.merged {
        writeln!(
            out,
            "  {}:{} from {} (first seen {}, last seen {}, last used {})",
            m.platform,
            m.external_id,
            m.source,
            m.first_seen,
            m.last_seen,
            m.last_used.as_deref().unwrap_or("never/unknown")
        )?;
    }
    Ok(())
}

/// `show --format json`'s relation fields, added beside the credential's own.
fn add_relations_json(value: &mut serde_json::Value, relations: &CredentialRelations) {
    let relation = |r: &RelationEvidence| {
        json!({"confidence": r.confidence, "evidence": r.evidence, "source": r.source,
               "first_seen": r.first_seen, "last_seen": r.last_seen})
    };
    let with = |mut base: serde_json::Value, r: &RelationEvidence| {
        if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), relation(r)) {
            base.extend(extra);
        }
        base
    };
    let person =
        |p: &Person, r: &RelationEvidence| with(json!({"key": p.key, "name": p.name, "platform": p.platform}), r);
    value["identities"] = relations
        .identities
        .iter()
        .map(|i| {
            let identity = &i.identity.identity;
            let mut v = with(
                json!({"platform": identity.platform, "id": identity.external_id, "name": identity.name,
                       "kind": identity.kind, "owner": identity.owner}),
                &i.relation,
            );
            v["owners"] = i.owners.iter().map(|(p, r)| person(p, r)).collect();
            v["vendors"] = i
                .vendors
                .iter()
                .map(|(vendor, r)| with(json!({"vendor_id": vendor.id, "name": vendor.name}), r))
                .collect();
            v
        })
        .collect();
    value["owners"] = relations.owners.iter().map(|(p, r)| person(p, r)).collect();
    value["vendors"] = relations
        .vendors
        .iter()
        .map(|l| {
            json!({"vendor_id": l.vendor.id, "name": l.vendor.name, "confidence": l.confidence,
                   "evidence": l.evidence})
        })
        .collect();
    value["merged"] = relations
        .merged
        .iter()
        .map(|m| {
            json!({"platform": m.platform, "external_id": m.external_id, "source": m.source,
                   "last_used": m.last_used, "first_seen": m.first_seen, "last_seen": m.last_seen})
        })
        .collect();
}
