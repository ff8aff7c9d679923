//! `keywatch vendor`: the vendor catalogue, and every stored credential a vendor could hold.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use keywatch_inventory::attribution::{Attribution, Attributor};
use keywatch_inventory::catalogue::Catalogue;
use keywatch_model::inventory::{Credential, CredentialKind, CredentialStatus, IdentityKind, Privilege};
use keywatch_store::{RelationEvidence, StoredCredential, StoredIdentity, VendorLink};
use serde::Serialize;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::{exit, Format, Global};

#[derive(Subcommand, Debug)]
pub enum VendorCommand {
    /// List the vendors Keywatch knows (built in, plus --vendors files)
    List(ListArgs),
    /// Every stored identity and credential attributed to one vendor, on every platform
    Exposure(ExposureArgs),
    /// Attribute every stored credential again, after the catalogue changed (imports
    /// attribute what they store)
    Relink(RelinkArgs),
    /// Confirm that a vendor holds a credential; the link stays through later imports
    Link(DecisionArgs),
    /// Reject a vendor link; attribution will not propose it again
    Unlink(DecisionArgs),
}

#[derive(Args, Debug)]
pub struct DecisionArgs {
    /// Vendor id, name or alias
    pub vendor: String,
    /// Credential: Keywatch id, PLATFORM:EXTERNAL_ID, or an external id
    pub credential: String,
    /// Who decides (default: $USER)
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    #[command(flatten)]
    pub catalogue: CatalogueArgs,
}

#[derive(Args, Debug)]
pub struct RelinkArgs {
    #[command(flatten)]
    pub catalogue: CatalogueArgs,
}

#[derive(Args, Debug)]
pub struct CatalogueArgs {
    /// Your own vendor file (the `[[vendor]]` format of data/vendors/catalogue.toml); repeatable
    #[arg(long = "vendors", value_name = "FILE")]
    pub vendor_files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub catalogue: CatalogueArgs,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Args, Debug)]
pub struct ExposureArgs {
    /// Vendor id, name or alias (any case)
    pub name: String,
    #[command(flatten)]
    pub catalogue: CatalogueArgs,
    /// Leave out links weaker than this (0 to 1)
    #[arg(long, default_value_t = 0.0, value_name = "X")]
    pub min_confidence: f64,
    /// Also list the identities the vendor holds (app installations, OAuth clients, users),
    /// each with the evidence of the strongest link (human and JSON output)
    #[arg(long)]
    pub identities: bool,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

pub fn run(global: &Global, cmd: &VendorCommand) -> Result<u8> {
    match cmd {
        VendorCommand::List(args) => list(global, args),
        VendorCommand::Exposure(args) => exposure(global, args),
        VendorCommand::Relink(args) => relink(global, args),
        VendorCommand::Link(args) => decide(global, args, true),
        VendorCommand::Unlink(args) => decide(global, args, false),
    }
}

fn decide(global: &Global, args: &DecisionArgs, confirmed: bool) -> Result<u8> {
    let catalogue = load(global, &args.catalogue)?;
    let Some(vendor) = catalogue.find(&args.vendor) else {
        bail!("no vendor {:?} in the catalogue (see `keywatch vendor list`)", args.vendor);
    };
    let mut store = crate::inventory_cmd::open_existing(global)?;
    let Some(credential) = store.credential(&args.credential)? else {
        bail!("no credential {:?} in the inventory", args.credential);
    };
    let by = args.by.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
    store.decide_link(credential.id, &vendor.id, &vendor.name, confirmed, &by, &crate::inventory_cmd::now())?;
    if !global.quiet {
        let verb = if confirmed { "linked to" } else { "unlinked from" };
        eprintln!(
            "{} ({}) {verb} {}; later imports keep this decision",
            credential.credential.name, credential.id, vendor.name
        );
    }
    Ok(exit::CLEAN)
}

/// The store's view of an attribution, with each vendor's display name from the catalogue
/// (the store keeps it as known at link time).
pub fn linker<'a>(attributor: &'a Attributor<'a>) -> impl Fn(&Credential, Option<&str>) -> Vec<VendorLink> + 'a {
    move |credential, identity_name| {
        attributor
            .attribute(credential, identity_name)
            .into_iter()
            .map(|a: Attribution| VendorLink {
                vendor_name: attributor.catalogue().find(&a.vendor_id).map(|v| v.name.clone()),
                vendor_id: a.vendor_id,
                confidence: a.confidence,
                evidence: a.evidence,
            })
            .collect()
    }
}

fn relink(global: &Global, args: &RelinkArgs) -> Result<u8> {
    let catalogue = load(global, &args.catalogue)?;
    let mut store = crate::inventory_cmd::open_existing(global)?;
    let attributor = Attributor::new(&catalogue);
    let linked = store.relink(&linker(&attributor), &crate::inventory_cmd::now())?;
    if !global.quiet {
        eprintln!("{linked} credentials are attributed to at least one vendor");
    }
    Ok(exit::CLEAN)
}

/// `vendor exposure --format json`, serialised straight from the rows: building a JSON
/// value per row first doubled the time for a vendor holding ten thousand credentials.
#[derive(Serialize)]
struct Exposure<'a> {
    vendor: &'a str,
    vendor_id: &'a str,
    credentials: Vec<ExposureRow<'a>>,
    /// The identities the vendor holds through those credentials (with `--identities`).
    #[serde(skip_serializing_if = "Option::is_none")]
    identities: Option<Vec<ExposureIdentity<'a>>>,
    errors: [(); 0],
    stats: ExposureStats,
}

#[derive(Serialize)]
struct ExposureStats {
    count: usize,
}

#[derive(Serialize)]
struct ExposureRow<'a> {
    platform: &'a str,
    kind: CredentialKind,
    id: &'a str,
    name: &'a str,
    identity: Option<&'a str>,
    owner: Option<&'a str>,
    privilege: Privilege,
    scopes: &'a [String],
    created: Option<&'a str>,
    last_used: Option<&'a str>,
    status: CredentialStatus,
    confidence: f64,
    evidence: &'a [String],
}

#[derive(Serialize)]
struct ExposureIdentity<'a> {
    platform: &'a str,
    id: &'a str,
    name: &'a str,
    kind: IdentityKind,
    confidence: f64,
    evidence: &'a [String],
}

impl<'a> ExposureIdentity<'a> {
    fn of(i: &'a StoredIdentity, held: &'a RelationEvidence) -> Self {
        ExposureIdentity {
            platform: &i.identity.platform,
            id: &i.identity.external_id,
            name: &i.identity.name,
            kind: i.identity.kind,
            confidence: held.confidence,
            evidence: &held.evidence,
        }
    }
}

impl<'a> ExposureRow<'a> {
    fn of(c: &'a StoredCredential, a: &'a Attribution) -> Self {
        let k = &c.credential;
        ExposureRow {
            platform: &k.platform,
            kind: k.kind,
            id: &k.external_id,
            name: &k.name,
            identity: c.identity_name.as_deref().or(k.identity.as_deref()),
            owner: k.owner.as_deref(),
            privilege: k.privilege,
            scopes: &k.scopes,
            created: k.created.as_deref(),
            last_used: k.last_used.as_deref(),
            status: k.status,
            confidence: a.confidence,
            evidence: &a.evidence,
        }
    }
}

/// The built-in catalogue, then the config file's `[vendors] catalogue` files, then `--vendors`.
pub fn load(global: &Global, args: &CatalogueArgs) -> Result<Catalogue> {
    let mut catalogue = Catalogue::builtin()?;
    let config = crate::config::Config::load(global.config.as_deref())?;
    for file in config.vendors.catalogue.iter().chain(&args.vendor_files) {
        catalogue.extend_from_file(file)?;
    }
    Ok(catalogue)
}

fn list(global: &Global, args: &ListArgs) -> Result<u8> {
    let catalogue = load(global, &args.catalogue)?;
    let stdout = std::io::stdout();
    let format = Format::resolve(args.format, stdout.is_terminal());
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        Format::Human => {
            for v in catalogue.vendors() {
                writeln!(out, "{:<28} {:<32} {}", v.id, v.name, v.categories.join(", "))?;
            }
        }
        _ => {
            let vendors: Vec<serde_json::Value> = catalogue
                .vendors()
                .iter()
                .map(|v| {
                    json!({"id": v.id, "name": v.name, "aliases": v.aliases, "domains": v.domains,
                           "github_apps": v.github_apps, "aws_accounts": v.aws_accounts,
                           "categories": v.categories})
                })
                .collect();
            serde_json::to_writer_pretty(
                &mut out,
                &json!({"vendors": vendors, "errors": [], "stats": {"count": vendors.len()}}),
            )?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(exit::CLEAN)
}

/// The catalogue id of a vendor named by id, name or alias (any case), as `exposure` and
/// `inventory list --vendor` take it.
pub fn resolve_vendor(global: &Global, args: &CatalogueArgs, name: &str) -> Result<String> {
    let catalogue = load(global, args)?;
    match catalogue.find(name) {
        Some(vendor) => Ok(vendor.id.clone()),
        None => bail!("{}", unknown_vendor(name)),
    }
}

fn unknown_vendor(name: &str) -> String {
    format!("no vendor {name:?} in the catalogue (see `keywatch vendor list`, or add one with --vendors FILE)")
}

fn exposure(global: &Global, args: &ExposureArgs) -> Result<u8> {
    let catalogue = load(global, &args.catalogue)?;
    let Some(vendor) = catalogue.find(&args.name) else {
        bail!("{}", unknown_vendor(&args.name));
    };
    let store = crate::inventory_cmd::open_existing(global)?;
    let mut held: Vec<(StoredCredential, Attribution)> = store
        .vendor_credentials(&vendor.id)?
        .into_iter()
        .filter(|(_, confidence, _)| *confidence >= args.min_confidence)
        .map(|(c, confidence, evidence)| (c, Attribution { vendor_id: vendor.id.clone(), confidence, evidence }))
        .collect();
    // Each credential row names its identity already; the list of identities with their own
    // evidence is a second query, asked for, since it costs half again the time.
    let identities: Vec<(StoredIdentity, RelationEvidence)> = if args.identities {
        store
            .identities_of_vendor(&vendor.id)?
            .into_iter()
            .filter(|(_, relation)| relation.confidence >= args.min_confidence)
            .collect()
    } else {
        Vec::new()
    };
    // Active, privileged, recently used first: what to rotate first.
    held.sort_by(|(a, _), (b, _)| crate::inventory_cmd::by_exposure(a, b));
    let stdout = std::io::stdout();
    let format = Format::resolve(args.format, stdout.is_terminal());
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        Format::Human => {
            writeln!(out, "{} ({}): {} credentials", vendor.name, vendor.id, held.len())?;
            for (c, a) in &held {
                let k = &c.credential;
                writeln!(
                    out,
                    "  {:<7} {:<22} {:<8} {:<8} {}  last used {}  [{:.2}: {}]",
                    k.platform,
                    k.kind.as_str(),
                    k.status.as_str(),
                    k.privilege.as_str(),
                    k.name,
                    k.last_used.as_deref().unwrap_or("never/unknown"),
                    a.confidence,
                    a.evidence.join("; ")
                )?;
            }
            if !identities.is_empty() {
                writeln!(out, "identities held:")?;
                for (i, relation) in &identities {
                    writeln!(
                        out,
                        "  {:<7} {:<15} {} ({})  [{:.2}: {}]",
                        i.identity.platform,
                        i.identity.kind.as_str(),
                        i.identity.name,
                        i.identity.external_id,
                        relation.confidence,
                        relation.evidence.join("; ")
                    )?;
                }
            }
        }
        Format::Csv => {
            writeln!(out, "platform,kind,id,name,identity,privilege,status,last_used,confidence")?;
            for (c, a) in &held {
                let k = &c.credential;
                let cells = [
                    k.platform.clone(),
                    k.kind.as_str().to_string(),
                    k.external_id.clone(),
                    k.name.clone(),
                    c.identity_name.clone().unwrap_or_default(),
                    k.privilege.as_str().to_string(),
                    k.status.as_str().to_string(),
                    k.last_used.clone().unwrap_or_default(),
                    format!("{:.2}", a.confidence),
                ];
                writeln!(out, "{}", crate::output::csv_row(&cells))?;
            }
        }
        _ => {
            let credentials: Vec<ExposureRow<'_>> = held.iter().map(|(c, a)| ExposureRow::of(c, a)).collect();
            let report = Exposure {
                vendor: &vendor.name,
                vendor_id: &vendor.id,
                stats: ExposureStats { count: credentials.len() },
                credentials,
                identities: args
                    .identities
                    .then(|| identities.iter().map(|(i, r)| ExposureIdentity::of(i, r)).collect()),
                errors: [],
            };
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if held.is_empty() { exit::CLEAN } else { exit::FOUND })
}
