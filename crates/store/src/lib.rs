//! Keywatch's store: one SQLite file in the data directory.
//!
//! All SQL lives in this crate, behind [`Store`]'s methods, so another database can be added
//! without touching the code that imports or analyses. Every import runs in one transaction:
//! a failed import leaves the store exactly as it was. Nothing is forgotten: a credential
//! that a complete import no longer lists is marked deleted with the time, and every change
//! of every field is kept in `credential_change`.
//!
//! Besides identities and credentials the store keeps owners (`person`), the vendors things
//! were linked to (`vendor`) and typed relations between them ([`relations`]), maintained in
//! the same transactions as the rows they follow; and it merges records of two exports that
//! describe one credential under different ids ([`merge`]).

use anyhow::{bail, Context, Result};
use keywatch_model::inventory::{Credential, CredentialKind, CredentialStatus, InventoryBatch, Privilege};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql, Transaction};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The columns `row_to_credential` reads, in its order. Defined before the modules so that
/// their queries can use it too.
macro_rules! credential_columns {
    () => {
        "SELECT c.id, c.platform, c.external_id, c.kind, c.name, c.identity_external_id,
         c.owner, c.scopes, c.privilege, c.created, c.expires, c.last_rotated, c.last_used, c.status,
         c.fingerprint, i.name, c.source, c.first_seen, c.last_seen, c.deleted_at, c.match_key"
    };
}

/// How many columns `credential_columns!` selects: where columns a query appends begin.
pub(crate) const CREDENTIAL_COLUMNS: usize = 21;

pub mod activity;
mod merge;
pub mod relations;

pub use relations::{
    CredentialRelations, IdentityRelations, LinkedVendor, MergedRecord, Owned, Person, RelationEvidence, RelationKind,
    StoredIdentity, StoredVendor,
};

/// A migration: its SQL, then, if the new tables must be filled from the existing rows, the
/// Rust code that maintains them (so the two can never disagree), in the same transaction.
struct Migration {
    name: &'static str,
    sql: &'static str,
    fill: Option<fn(&Connection, &str) -> Result<()>>,
}

/// Schema migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[Migration] = &[
    Migration { name: "0001_inventory", sql: include_str!("../migrations/0001_inventory.sql"), fill: None },
    Migration { name: "0002_vendor_links", sql: include_str!("../migrations/0002_vendor_links.sql"), fill: None },
    Migration {
        name: "0003_vendor_decisions",
        sql: include_str!("../migrations/0003_vendor_decisions.sql"),
        fill: None,
    },
    Migration {
        name: "0004_relations",
        sql: include_str!("../migrations/0004_relations.sql"),
        fill: Some(relations::rebuild),
    },
    Migration { name: "0005_activity", sql: include_str!("../migrations/0005_activity.sql"), fill: None },
];

/// A vendor link proposed by the caller's attribution.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorLink {
    /// The catalogue id.
    pub vendor_id: String,
    /// The vendor's display name, kept as known at link time; `None` when the caller does not
    /// know it (the stored one is then kept).
    pub vendor_name: Option<String>,
    /// 0 to 1.
    pub confidence: f64,
    pub evidence: Vec<String>,
}

/// Attribution, supplied by the caller so the store knows nothing of vendors: the links of a
/// credential given the name of its identity.
pub type Linker<'a> = &'a dyn Fn(&Credential, Option<&str>) -> Vec<VendorLink>;

/// The database file inside a data directory.
pub const DATABASE_FILE: &str = "keywatch.db";

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// What one import changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub run_id: i64,
    pub new: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub disappeared: usize,
    pub reappeared: usize,
    /// Records found to describe a credential already stored under another id, and merged
    /// into it (see [`Credential::match_key`]).
    pub merged: usize,
}

/// A credential as stored, with Keywatch's own bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    pub id: i64,
    pub credential: Credential,
    pub identity_name: Option<String>,
    pub source: String,
    pub first_seen: String,
    pub last_seen: String,
    pub deleted_at: Option<String>,
}

/// One recorded change of a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at: String,
    pub source: String,
    pub input: String,
    pub change: String,
    pub field: Option<String>,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

/// Which credentials to list; every set field must hold.
#[derive(Debug, Clone, Default)]
pub struct CredentialFilter {
    pub platform: Option<String>,
    pub kind: Option<CredentialKind>,
    pub status: Option<CredentialStatus>,
    pub privilege: Option<Privilege>,
    /// Not used since this time (or never used): `now - N days`, computed by the caller.
    pub unused_since: Option<String>,
    /// Expires between now and this time.
    pub expiring_before: Option<(String, String)>,
    /// Linked to this vendor (catalogue id), at any confidence.
    pub vendor: Option<String>,
}

/// One import run, as the functions writing it need to know it.
pub(crate) struct Run<'a> {
    pub id: i64,
    pub source: &'a str,
    pub scope: Option<&'a str>,
    pub now: &'a str,
}

/// What an import has to revisit once its records are written: credentials whose vendor
/// links and relations follow from them, and identities whose vendor relations follow from
/// their credentials' links.
#[derive(Default)]
pub(crate) struct Dirty {
    credentials: Vec<i64>,
    credential_set: HashSet<i64>,
    pub identities: BTreeSet<i64>,
}

impl Dirty {
    pub fn credential(&mut self, id: i64) {
        if self.credential_set.insert(id) {
            self.credentials.push(id);
        }
    }
}

impl Store {
    /// Opens (creating if needed) `DATABASE_FILE` in `data_dir` and brings its schema up to
    /// date.
    pub fn open_in(data_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        Store::open(&data_dir.join(DATABASE_FILE))
    }

    pub fn open(path: &Path) -> Result<Store> {
        let mut conn = Connection::open(path).with_context(|| format!("cannot open the store {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL").context("cannot enable WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // An import uses a few dozen distinct statements per record; the default cache of 16
        // would re-prepare them for every record.
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&mut conn).with_context(|| format!("cannot migrate the store {}", path.display()))?;
        Ok(Store { conn, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores one batch in one transaction. `input` names where it came from (a file) and
    /// `now` is the import time (RFC 3339 UTC).
    /// `link` attributes each stored credential to vendors; its links replace the old ones.
    pub fn import(
        &mut self,
        batch: &InventoryBatch,
        input: &str,
        now: &str,
        link: Linker<'_>,
    ) -> Result<ImportSummary> {
        let tx = self.conn.transaction()?;
        let summary = import_batch(&tx, batch, input, now, link)?;
        tx.commit().context("cannot commit the import")?;
        Ok(summary)
    }

    /// Credentials matching `filter`, deleted ones included only when the filter asks for
    /// status `deleted`. Ordered by platform, then name.
    pub fn credentials(&self, filter: &CredentialFilter) -> Result<Vec<StoredCredential>> {
        let mut sql = format!("{SELECT_CREDENTIAL} WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        let mut bind = |sql: &mut String, clause: &str, value: String| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(p) = &filter.platform {
            bind(&mut sql, " AND c.platform = ?", p.to_ascii_lowercase());
        }
        if let Some(k) = filter.kind {
            bind(&mut sql, " AND c.kind = ?", k.as_str().to_string());
        }
        match filter.status {
            Some(s) => bind(&mut sql, " AND c.status = ?", s.as_str().to_string()),
            None => sql.push_str(" AND c.deleted_at IS NULL"),
        }
        if let Some(p) = filter.privilege {
            bind(&mut sql, " AND c.privilege = ?", p.as_str().to_string());
        }
        if let Some(since) = &filter.unused_since {
            bind(&mut sql, " AND (c.last_used IS NULL OR c.last_used < ?)", since.clone());
        }
        if let Some((from, to)) = &filter.expiring_before {
            bind(&mut sql, " AND c.expires IS NOT NULL AND c.expires >= ?", from.clone());
            bind(&mut sql, " AND c.expires < ?", to.clone());
        }
        if let Some(vendor) = &filter.vendor {
            bind(&mut sql, " AND c.id IN (SELECT credential_id FROM vendor_link WHERE vendor_id = ?)", vendor.clone());
        }
        sql.push_str(" ORDER BY c.platform, c.name, c.id");
        self.query_credentials(&sql, rusqlite::params_from_iter(args.iter()))
    }

    /// The credentials a `SELECT_CREDENTIAL` query returns.
    fn query_credentials(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<StoredCredential>> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(args, row_to_credential)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().context("cannot read credentials")?.into_iter().collect()
    }

    /// One credential by Keywatch id, or by the platform's id (`platform:external_id` or a
    /// bare external id when it is unambiguous). The id of a record merged into a credential
    /// (an AWS credential report key slot) finds that credential.
    pub fn credential(&self, id: &str) -> Result<Option<StoredCredential>> {
        let by_row = |sql: &str, args: &[&dyn rusqlite::ToSql]| self.query_credentials(sql, args);
        if let Ok(n) = id.parse::<i64>() {
            if let Some(found) = by_row(&format!("{SELECT_CREDENTIAL} WHERE c.id = ?1"), &[&n])?.pop() {
                return Ok(Some(found));
            }
        }
        // The latest record of another export merged into a credential under this id.
        const ALIAS: &str = "SELECT credential_id FROM credential_alias";
        const LATEST: &str = "ORDER BY last_seen DESC LIMIT 1";
        if let Some((platform, external)) = id.split_once(':') {
            let found = by_row(
                &format!(
                    "{SELECT_CREDENTIAL} WHERE c.platform = ?1 AND c.external_id = ?2
                     UNION ALL {SELECT_CREDENTIAL} WHERE c.id =
                       ({ALIAS} WHERE platform = ?1 AND external_id = ?2 {LATEST})"
                ),
                &[&platform, &external],
            )?;
            if let Some(found) = found.into_iter().next() {
                return Ok(Some(found));
            }
        }
        let mut found = by_row(&format!("{SELECT_CREDENTIAL} WHERE c.external_id = ?1"), &[&id])?;
        if found.is_empty() {
            // Per platform, the credential the latest record under this id was merged into.
            found = by_row(
                &format!(
                    "{SELECT_CREDENTIAL} WHERE c.id IN (SELECT credential_id FROM
                       (SELECT credential_id, MAX(last_seen) FROM credential_alias WHERE external_id = ?1 GROUP BY platform))"
                ),
                &[&id],
            )?;
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => bail!("{n} credentials have the id {id:?} on different platforms; use PLATFORM:{id}"),
        }
    }

    /// Recomputes every credential's vendor links (after the catalogue changed), and the
    /// vendor relations of every identity, in one transaction; returns how many credentials
    /// now have at least one link. `now` dates the relations it makes or confirms.
    pub fn relink(&mut self, link: Linker<'_>, now: &str) -> Result<usize> {
        let tx = self.conn.transaction()?;
        // Every credential, deleted ones included: their links still answer "what did this
        // vendor hold".
        let ids: Vec<i64> = tx
            .prepare("SELECT id FROM credential ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut linked = 0;
        for id in ids {
            let links = links_of(&tx, id, link, true)?;
            linked += usize::from(write_links(&tx, id, &links, now)? > 0);
        }
        let identities: Vec<i64> = tx
            .prepare("SELECT id FROM identity ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in identities {
            relations::refresh_identity_vendors(&tx, id, now)?;
        }
        tx.commit()?;
        Ok(linked)
    }

    /// Records a person's decision on linking `credential_id` to the vendor `vendor_id`
    /// (named `vendor_name` in the catalogue) and applies it at once, to the credential's
    /// links and its identities' vendor relations; later imports and relinks keep applying it.
    pub fn decide_link(
        &mut self,
        credential_id: i64,
        vendor_id: &str,
        vendor_name: &str,
        confirmed: bool,
        by: &str,
        at: &str,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO vendor_decision (credential_id, vendor_id, decision, decided_by, decided_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (credential_id, vendor_id) DO UPDATE SET
               decision = excluded.decision, decided_by = excluded.decided_by, decided_at = excluded.decided_at",
            params![credential_id, vendor_id, if confirmed { "confirmed" } else { "rejected" }, by, at],
        )?;
        relations::vendor_row(&tx, vendor_id, Some(vendor_name), at)?;
        let mut current =
            tx.prepare("SELECT vendor_id, confidence, evidence FROM vendor_link WHERE credential_id = ?1")?;
        let links = current
            .query_map([credential_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?, r.get::<_, String>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .map(|(vendor_id, confidence, evidence)| {
                let mut evidence: Vec<String> = serde_json::from_str(&evidence).unwrap_or_default();
                // The decision is re-applied below; drop its earlier note so it is not doubled.
                evidence.retain(|e| !e.starts_with("confirmed by "));
                VendorLink { vendor_id, vendor_name: None, confidence, evidence }
            })
            .collect::<Vec<VendorLink>>();
        drop(current);
        write_links(&tx, credential_id, &links, at)?;
        for identity in relations::identities_of_credential(&tx, credential_id)? {
            relations::refresh_identity_vendors(&tx, identity, at)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The credentials linked to one vendor, deleted ones included, with each link's
    /// confidence and evidence.
    pub fn vendor_credentials(&self, vendor_id: &str) -> Result<Vec<(StoredCredential, f64, Vec<String>)>> {
        let mut stmt = self.conn.prepare(SELECT_VENDOR_CREDENTIALS)?;
        let rows = stmt.query_map([vendor_id], |r| {
            let credential = row_to_credential(r)?;
            let confidence: f64 = r.get(CREDENTIAL_COLUMNS)?;
            let evidence: String = r.get(CREDENTIAL_COLUMNS + 1)?;
            Ok((credential, confidence, evidence))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (credential, confidence, evidence) = row?;
            let evidence: Vec<String> =
                serde_json::from_str(&evidence).context("stored link evidence is unreadable")?;
            out.push((credential?, confidence, evidence));
        }
        Ok(out)
    }

    /// Every recorded change of one credential, oldest first (those of records merged into it
    /// included).
    pub fn history(&self, credential_id: i64) -> Result<Vec<Change>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.at, r.source, r.input, ch.change, ch.field, ch.old_value, ch.new_value
             FROM credential_change ch JOIN import_run r ON r.id = ch.run_id
             WHERE ch.credential_id = ?1 ORDER BY ch.id",
        )?;
        let rows = stmt.query_map([credential_id], |r| {
            Ok(Change {
                at: r.get(0)?,
                source: r.get(1)?,
                input: r.get(2)?,
                change: r.get(3)?,
                field: r.get(4)?,
                old_value: r.get(5)?,
                new_value: r.get(6)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>().context("cannot read the history")
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let done: usize = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?.try_into().unwrap_or(0);
    if done > MIGRATIONS.len() {
        bail!("the store was written by a newer Keywatch (schema {done}, this one knows {})", MIGRATIONS.len());
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration.sql).with_context(|| format!("migration {} failed", migration.name))?;
        if let Some(fill) = migration.fill {
            fill(&tx, &now_utc()).with_context(|| format!("migration {} failed", migration.name))?;
        }
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// The time now, for the rows a migration makes: the only time the store does not take from
/// its caller.
fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    keywatch_model::time::rfc3339_utc(secs)
}

const SELECT_CREDENTIAL: &str = concat!(
    credential_columns!(),
    " FROM credential c LEFT JOIN identity i ON i.platform = c.platform AND i.external_id = c.identity_external_id"
);

const SELECT_VENDOR_CREDENTIALS: &str = concat!(
    credential_columns!(),
    ", l.confidence, l.evidence FROM credential c
     JOIN vendor_link l ON l.credential_id = c.id
     LEFT JOIN identity i ON i.platform = c.platform AND i.external_id = c.identity_external_id
     WHERE l.vendor_id = ?1"
);

/// The tracked field values then source, scope, time and match key: the columns after the
/// key in both the insert and the update of a credential.
fn row_values<'v>(values: &'v [Option<String>], tail: &'v [&'v dyn ToSql; 4]) -> impl Iterator<Item = &'v dyn ToSql> {
    values.iter().map(|v| v as &dyn ToSql).chain(tail.iter().copied())
}

/// Records one change of a credential under an import run.
pub(crate) fn record_change(
    conn: &Connection,
    run_id: i64,
    credential_id: i64,
    change: &str,
    field: Option<&str>,
    old_value: Option<&str>,
    new_value: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO credential_change (run_id, credential_id, change, field, old_value, new_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![run_id, credential_id, change, field, old_value, new_value])?;
    Ok(())
}

/// The links attribution proposes for a stored credential and for every record merged into
/// it: per vendor the strongest wins, with the evidence of all.
/// `may_have_aliases` false skips looking for merged records (known to be none).
fn links_of(
    conn: &Connection,
    credential_id: i64,
    link: Linker<'_>,
    may_have_aliases: bool,
) -> Result<Vec<VendorLink>> {
    let Some(stored) = conn
        .prepare_cached(&format!("{SELECT_CREDENTIAL} WHERE c.id = ?1"))?
        .query_row([credential_id], row_to_credential)
        .optional()?
        .transpose()?
    else {
        return Ok(Vec::new());
    };
    let mut links = link(&stored.credential, stored.identity_name.as_deref());
    let records = if may_have_aliases { merge::alias_records(conn, credential_id)? } else { Vec::new() };
    for record in records {
        let identity_name: Option<String> = match &record.identity {
            Some(identity) => conn
                .prepare_cached("SELECT name FROM identity WHERE platform = ?1 AND external_id = ?2")?
                .query_row(params![record.platform, identity], |r| r.get(0))
                .optional()?,
            None => None,
        };
        for proposed in link(&record, identity_name.as_deref()) {
            match links.iter_mut().find(|l| l.vendor_id == proposed.vendor_id) {
                Some(l) => {
                    l.confidence = l.confidence.max(proposed.confidence);
                    l.vendor_name = l.vendor_name.take().or(proposed.vendor_name);
                    for e in proposed.evidence {
                        if !l.evidence.contains(&e) {
                            l.evidence.push(e);
                        }
                    }
                }
                None => links.push(proposed),
            }
        }
    }
    Ok(links)
}

/// Replaces the vendor links of one credential, through the people's decisions; returns how
/// many it now has. Each linked vendor's row keeps its name as known now.
fn write_links(conn: &Connection, credential_id: i64, proposed: &[VendorLink], now: &str) -> Result<usize> {
    let mut links: Vec<VendorLink> = proposed.to_vec();
    let mut decisions = conn.prepare_cached(
        "SELECT vendor_id, decision, decided_by, decided_at FROM vendor_decision WHERE credential_id = ?1",
    )?;
    let decided = decisions
        .query_map([credential_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (vendor, decision, by, at) in decided {
        if decision == "rejected" {
            links.retain(|l| l.vendor_id != vendor);
            continue;
        }
        let note = format!("confirmed by {by} at {at}");
        match links.iter_mut().find(|l| l.vendor_id == vendor) {
            Some(link) => {
                link.confidence = 1.0;
                link.evidence.insert(0, note);
            }
            None => {
                links.push(VendorLink { vendor_id: vendor, vendor_name: None, confidence: 1.0, evidence: vec![note] })
            }
        }
    }
    conn.prepare_cached("DELETE FROM vendor_link WHERE credential_id = ?1")?.execute([credential_id])?;
    insert_links(conn, credential_id, &links, now)
}

/// Writes links of a credential that has none stored and no decisions yet (a new one).
fn insert_links(conn: &Connection, credential_id: i64, links: &[VendorLink], now: &str) -> Result<usize> {
    let mut insert = conn.prepare_cached(
        "INSERT OR REPLACE INTO vendor_link (credential_id, vendor_id, confidence, evidence) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for l in links {
        insert.execute(params![credential_id, l.vendor_id, l.confidence, serde_json::to_string(&l.evidence)?])?;
        relations::vendor_row(conn, &l.vendor_id, l.vendor_name.as_deref(), now)?;
    }
    Ok(links.len())
}

fn identity_name(conn: &Connection, platform: &str, external_id: &str) -> Result<Option<String>> {
    let mut find = conn.prepare_cached("SELECT name FROM identity WHERE platform = ?1 AND external_id = ?2")?;
    Ok(find.query_row(params![platform, external_id], |r| r.get(0)).optional()?)
}

/// A row of `SELECT_CREDENTIAL`. An unreadable stored value is an error naming the row, not
/// a panic: the file may have been written by another version.
fn row_to_credential(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredCredential>> {
    let id: i64 = r.get(0)?;
    let kind: String = r.get(3)?;
    let scopes: String = r.get(7)?;
    let privilege: String = r.get(8)?;
    let status: String = r.get(13)?;
    let parsed = (|| -> Result<StoredCredential> {
        Ok(StoredCredential {
            id,
            credential: Credential {
                platform: r.get(1)?,
                external_id: r.get(2)?,
                kind: kind.parse().map_err(anyhow::Error::msg)?,
                name: r.get(4)?,
                identity: r.get(5)?,
                owner: r.get(6)?,
                scopes: serde_json::from_str(&scopes).context("scopes")?,
                privilege: privilege.parse().map_err(anyhow::Error::msg)?,
                created: r.get(9)?,
                expires: r.get(10)?,
                last_rotated: r.get(11)?,
                last_used: r.get(12)?,
                status: status.parse().map_err(anyhow::Error::msg)?,
                fingerprint: r.get(14)?,
                match_key: r.get(20)?,
            },
            identity_name: r.get(15)?,
            source: r.get(16)?,
            first_seen: r.get(17)?,
            last_seen: r.get(18)?,
            deleted_at: r.get(19)?,
        })
    })();
    Ok(parsed.with_context(|| format!("credential row {id} in the store is unreadable")))
}

/// The fields compared between imports, by name, as stored text.
fn tracked_fields(c: &Credential) -> [(&'static str, Option<String>); 12] {
    [
        ("kind", Some(c.kind.as_str().to_string())),
        ("name", Some(c.name.clone())),
        ("identity", c.identity.clone()),
        ("owner", c.owner.clone()),
        ("scopes", Some(serde_json::to_string(&c.scopes).unwrap_or_default())),
        ("privilege", Some(c.privilege.as_str().to_string())),
        ("created", c.created.clone()),
        ("expires", c.expires.clone()),
        ("last_rotated", c.last_rotated.clone()),
        ("last_used", c.last_used.clone()),
        ("status", Some(c.status.as_str().to_string())),
        ("fingerprint", c.fingerprint.clone()),
    ]
}

/// Match keys that two records of one standing (with or without a fingerprint) share in one
/// batch: which of them is which other record cannot be told, so none of them is merged.
/// Which match keys of the batch's platforms the store already holds, and on which kind of
/// record: loaded once per import, so that the records whose key nothing else shares (all of
/// them on a first import) skip the merge queries.
#[derive(Default)]
struct StoredMatchKeys {
    counts: HashMap<(String, String), MatchKeyCounts>,
}

#[derive(Default, Clone, Copy)]
struct MatchKeyCounts {
    canonical: u32,
    others: u32,
    aliased: bool,
}

impl StoredMatchKeys {
    fn load(tx: &Transaction<'_>, batch: &InventoryBatch) -> Result<StoredMatchKeys> {
        let mut platforms: Vec<&str> =
            batch.credentials.iter().filter(|c| c.match_key.is_some()).map(|c| c.platform.as_str()).collect();
        platforms.sort_unstable();
        platforms.dedup();
        let mut keys = StoredMatchKeys::default();
        for platform in platforms {
            let mut rows = tx.prepare_cached(
                "SELECT match_key, fingerprint IS NOT NULL FROM credential WHERE platform = ?1 AND match_key IS NOT NULL",
            )?;
            for row in rows.query_map([platform], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))? {
                let (key, canonical) = row?;
                keys.add(platform, &key, canonical);
            }
            let mut aliases =
                tx.prepare_cached("SELECT DISTINCT match_key FROM credential_alias WHERE platform = ?1")?;
            for key in aliases.query_map([platform], |r| r.get::<_, String>(0))? {
                keys.counts.entry((platform.to_string(), key?)).or_default().aliased = true;
            }
        }
        Ok(keys)
    }

    fn add(&mut self, platform: &str, key: &str, canonical: bool) {
        let counts = self.counts.entry((platform.to_string(), key.to_string())).or_default();
        if canonical {
            counts.canonical += 1;
        } else {
            counts.others += 1;
        }
    }

    fn aliased(&self, platform: &str, key: &str) -> bool {
        self.counts.get(&(platform.to_string(), key.to_string())).is_some_and(|c| c.aliased)
    }

    /// A record without a fingerprint merges only into a canonical row (or one its key was
    /// already merged into); a canonical record only absorbs a row without one.
    fn may_merge(&self, platform: &str, key: &str, canonical: bool) -> bool {
        let Some(counts) = self.counts.get(&(platform.to_string(), key.to_string())) else { return false };
        if canonical {
            counts.others > 0
        } else {
            counts.canonical > 0 || counts.aliased
        }
    }
}

fn ambiguous_match_keys(batch: &InventoryBatch) -> HashSet<(&str, &str, bool)> {
    let mut seen: HashMap<(&str, &str, bool), HashSet<&str>> = HashMap::new();
    for c in &batch.credentials {
        if let Some(key) = c.match_key.as_deref() {
            seen.entry((c.platform.as_str(), key, c.fingerprint.is_some())).or_default().insert(c.external_id.as_str());
        }
    }
    seen.into_iter().filter(|(_, ids)| ids.len() > 1).map(|(k, _)| k).collect()
}

fn import_batch(
    tx: &Transaction<'_>,
    batch: &InventoryBatch,
    input: &str,
    now: &str,
    link: Linker<'_>,
) -> Result<ImportSummary> {
    tx.execute(
        "INSERT INTO import_run (source, input, scope, at, new_count, changed_count, disappeared_count)
         VALUES (?1, ?2, ?3, ?4, 0, 0, 0)",
        params![batch.source, input, batch.complete_scope, now],
    )?;
    let run = Run { id: tx.last_insert_rowid(), source: &batch.source, scope: batch.complete_scope.as_deref(), now };
    let mut summary = ImportSummary { run_id: run.id, ..ImportSummary::default() };
    let mut dirty = Dirty::default();

    let mut upsert_identity = tx.prepare_cached(
        "INSERT INTO identity (platform, external_id, kind, name, owner, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (platform, external_id) DO UPDATE SET
           kind = excluded.kind, name = excluded.name,
           owner = COALESCE(excluded.owner, identity.owner), last_seen = excluded.last_seen
         RETURNING id, owner",
    )?;
    for i in &batch.identities {
        let (id, owner): (i64, Option<String>) = upsert_identity
            .query_row(params![i.platform, i.external_id, i.kind.as_str(), i.name, i.owner, now], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        relations::relate_identity_owner(tx, id, &i.platform, &i.name, owner.as_deref(), &batch.source, now)?;
    }

    let ambiguous = ambiguous_match_keys(batch);
    let mut stored_keys = StoredMatchKeys::load(tx, batch)?;
    // Credentials this import inserted and merged nothing into: their links and relations
    // are made from the record, with no earlier state to read back or replace.
    let mut inserted: HashMap<i64, &Credential> = HashMap::new();
    // Credentials whose row this import left as it was: their relations follow from the row,
    // so they stand; only their vendor links are recomputed (the catalogue may have grown).
    let mut unchanged: HashSet<i64> = HashSet::new();
    // Credentials with merged records: when the import began, or merged into by it.
    let mut aliased: HashSet<i64> = merge::credentials_with_aliases(tx)?;
    let identity_names: HashMap<(&str, &str), &str> =
        batch.identities.iter().map(|i| ((i.platform.as_str(), i.external_id.as_str()), i.name.as_str())).collect();
    // Rows this batch reported, directly or through a merged record: a complete batch marks
    // the others of its scope deleted.
    let mut reported: HashSet<i64> = HashSet::with_capacity(batch.credentials.len());
    let mut listed: HashSet<(&str, &str)> = HashSet::with_capacity(batch.credentials.len());
    let mut listed_aliases: HashSet<(&str, &str, &str)> = HashSet::new();
    for c in &batch.credentials {
        if !listed.insert((c.platform.as_str(), c.external_id.as_str())) {
            // The same credential twice in one batch (overlapping pages): the first wins.
            continue;
        }
        let canonical = c.fingerprint.is_some();
        if let (Some(key), false) = (c.match_key.as_deref(), canonical) {
            // Listed, whether or not it can be merged now: what it was merged into is not gone.
            listed_aliases.insert((c.platform.as_str(), c.external_id.as_str(), key));
        }
        let key = c.match_key.as_deref().filter(|k| !ambiguous.contains(&(c.platform.as_str(), *k, canonical)));
        // Only a key the other kind of record already holds can merge anything.
        let may_merge = key.is_some_and(|k| stored_keys.may_merge(&c.platform, k, canonical));
        if let (Some(key), false, true) = (key, canonical, may_merge) {
            if let Some(target) = merge::alias_target(tx, c, key)? {
                merge::apply_alias(tx, &run, target, c, key, &mut summary)?;
                aliased.insert(target);
                reported.insert(target);
                dirty.credential(target);
                continue;
            }
        }
        let before = (summary.new, summary.unchanged, summary.reappeared);
        let may_have_aliases = may_merge || c.match_key.as_deref().is_some_and(|k| stored_keys.aliased(&c.platform, k));
        let id = upsert_credential(tx, &run, c, &mut summary, may_have_aliases)?;
        reported.insert(id);
        dirty.credential(id);
        if summary.new > before.0 && !may_merge {
            inserted.insert(id, c);
        } else if summary.unchanged > before.1 && summary.reappeared == before.2 && !may_merge {
            unchanged.insert(id);
        }
        if let Some(key) = key {
            if may_merge {
                if let Some(into) = merge::merge_matches(tx, &run, &c.platform, key, &mut summary, &mut dirty)? {
                    aliased.insert(into);
                    reported.insert(into);
                }
            }
            stored_keys.add(&c.platform, key, canonical);
        }
    }

    for &id in &dirty.credentials {
        match inserted.get(&id) {
            Some(c) => {
                let identity_name = match &c.identity {
                    None => None,
                    Some(i) => match identity_names.get(&(c.platform.as_str(), i.as_str())) {
                        Some(name) => Some(name.to_string()),
                        None => identity_name(tx, &c.platform, i)?,
                    },
                };
                insert_links(tx, id, &link(c, identity_name.as_deref()), now)?;
                dirty.identities.extend(relations::relate_new_credential(tx, id, c, &batch.source, now)?);
            }
            None => {
                write_links(tx, id, &links_of(tx, id, link, aliased.contains(&id))?, now)?;
                if unchanged.contains(&id) {
                    // Its links may still have changed, and its identities' vendors with them.
                    dirty.identities.extend(relations::identities_of_credential(tx, id)?);
                } else {
                    dirty.identities.extend(relations::refresh_credential(tx, id, now)?);
                }
            }
        }
    }
    // Credentials stored earlier whose identity arrives only now gain their relation to it.
    if !batch.identities.is_empty() {
        for id in relations::credentials_missing_identity_relation(tx, now)? {
            if !dirty.credential_set.contains(&id) {
                dirty.identities.extend(relations::refresh_credential(tx, id, now)?);
            }
        }
    }

    if let Some(scope) = &batch.complete_scope {
        let mut gone_stmt = tx.prepare_cached("SELECT id FROM credential WHERE scope = ?1 AND deleted_at IS NULL")?;
        let mut gone: BTreeSet<i64> = gone_stmt
            .query_map([scope], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<BTreeSet<_>>>()?
            .into_iter()
            .filter(|id| !reported.contains(id))
            .collect();
        // A record merged into a credential that this complete batch no longer lists: the
        // credential is gone too (a key the credential report no longer shows was deleted),
        // unless the batch reported it under another record.
        let mut gone_aliases = tx.prepare_cached(
            "SELECT a.platform, a.external_id, a.match_key, a.credential_id FROM credential_alias a
             JOIN credential c ON c.id = a.credential_id WHERE a.scope = ?1 AND c.deleted_at IS NULL",
        )?;
        let aliases = gone_aliases
            .query_map([scope], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (platform, external_id, key, id) in aliases {
            if !listed_aliases.contains(&(platform.as_str(), external_id.as_str(), key.as_str()))
                && !reported.contains(&id)
            {
                gone.insert(id);
            }
        }
        let mut mark = tx.prepare_cached("UPDATE credential SET status = 'deleted', deleted_at = ?2 WHERE id = ?1")?;
        for id in gone {
            mark.execute(params![id, now])?;
            record_change(tx, run.id, id, "disappeared", Some("status"), None, Some("deleted"))?;
            dirty.identities.extend(relations::identities_of_credential(tx, id)?);
            summary.disappeared += 1;
        }
    }
    // Only identities with a vendor-linked credential, or a vendor relation to undo, can
    // change; asking the others one by one was a quarter of a large import.
    let vendor_related = relations::identities_with_vendor_evidence(tx)?;
    for &identity in dirty.identities.iter().filter(|i| vendor_related.contains(i)) {
        relations::refresh_identity_vendors(tx, identity, now)?;
    }
    tx.execute(
        "UPDATE import_run SET new_count = ?2, changed_count = ?3, disappeared_count = ?4 WHERE id = ?1",
        params![run.id, summary.new as i64, summary.changed as i64, summary.disappeared as i64],
    )?;
    Ok(summary)
}

/// Inserts or updates one credential by (platform, external id), recording what is new or
/// changed; returns its row id.
/// `may_have_aliases` false skips looking for a merged record's last use (known to be none).
fn upsert_credential(
    tx: &Transaction<'_>,
    run: &Run<'_>,
    c: &Credential,
    summary: &mut ImportSummary,
    may_have_aliases: bool,
) -> Result<i64> {
    let mut find = tx.prepare_cached(
        "SELECT id, kind, name, identity_external_id, owner, scopes, privilege, created, expires,
                last_rotated, last_used, status, fingerprint, deleted_at
         FROM credential WHERE platform = ?1 AND external_id = ?2",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO credential (platform, external_id, kind, name, identity_external_id, owner, scopes,
            privilege, created, expires, last_rotated, last_used, status, fingerprint, source, scope,
            first_seen, last_seen, match_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17, ?18)",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE credential SET kind = ?2, name = ?3, identity_external_id = ?4, owner = ?5, scopes = ?6,
            privilege = ?7, created = ?8, expires = ?9, last_rotated = ?10, last_used = ?11, status = ?12,
            fingerprint = ?13, source = ?14, scope = COALESCE(?15, scope), last_seen = ?16, deleted_at = NULL,
            match_key = ?17
         WHERE id = ?1",
    )?;
    let existing = find
        .query_row(params![c.platform, c.external_id], |r| {
            let id: i64 = r.get(0)?;
            let mut old: Vec<Option<String>> = Vec::with_capacity(12);
            for col in 1..=12 {
                old.push(r.get(col)?);
            }
            let deleted_at: Option<String> = r.get(13)?;
            Ok((id, old, deleted_at))
        })
        .optional()?;
    let mut fields = tracked_fields(c);
    let tail: [&dyn ToSql; 4] = [&run.source, &run.scope, &run.now, &c.match_key];
    match existing {
        None => {
            let values: Vec<Option<String>> = fields.iter().map(|(_, v)| v.clone()).collect();
            let key: [&dyn ToSql; 2] = [&c.platform, &c.external_id];
            insert.execute(params_from_iter(key.into_iter().chain(row_values(&values, &tail))))?;
            let id = tx.last_insert_rowid();
            record_change(tx, run.id, id, "new", None, None, None)?;
            summary.new += 1;
            Ok(id)
        }
        Some((id, old, deleted_at)) => {
            if c.last_used.is_none() && may_have_aliases {
                // A record merged into this credential may know its last use when this one
                // does not (the credential report does, `list-access-keys` does not).
                if let Some(last_used) = merge::alias_last_used(tx, id)? {
                    fields.iter_mut().find(|(name, _)| *name == "last_used").expect("tracked").1 = Some(last_used);
                }
            }
            let mut changed = false;
            if deleted_at.is_some() {
                record_change(tx, run.id, id, "reappeared", None, deleted_at.as_deref(), None)?;
                summary.reappeared += 1;
            }
            for ((field, new), old) in fields.iter().zip(&old) {
                if new != old {
                    record_change(tx, run.id, id, "changed", Some(field), old.as_deref(), new.as_deref())?;
                    changed = true;
                }
            }
            let values: Vec<Option<String>> = fields.iter().map(|(_, v)| v.clone()).collect();
            let key: [&dyn ToSql; 1] = [&id];
            update.execute(params_from_iter(key.into_iter().chain(row_values(&values, &tail))))?;
            if changed {
                summary.changed += 1;
            } else {
                summary.unchanged += 1;
            }
            Ok(id)
        }
    }
}

#[cfg(test)]
mod relation_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use keywatch_model::inventory::{Identity, IdentityKind};

    const NO_LINKS: Linker<'static> = &|_, _| Vec::new();

    fn key(id: &str, status: CredentialStatus, last_used: Option<&str>) -> Credential {
        Credential {
            platform: "aws".into(),
            external_id: id.into(),
            kind: CredentialKind::AccessKey,
            name: format!("{id} of ci-deployer"),
            identity: Some("arn:aws:iam::123456789012:user/ci-deployer".into()),
            owner: None,
            scopes: vec![],
            privilege: Privilege::Unknown,
            created: Some("2023-01-05T10:00:00Z".into()),
            expires: None,
            last_rotated: None,
            last_used: last_used.map(str::to_string),
            status,
            fingerprint: Some(id.into()),
            match_key: None,
        }
    }

    fn batch(credentials: Vec<Credential>) -> InventoryBatch {
        InventoryBatch {
            source: "aws:credential-report".into(),
            complete_scope: Some("aws:123456789012:access-keys".into()),
            identities: vec![Identity {
                platform: "aws".into(),
                external_id: "arn:aws:iam::123456789012:user/ci-deployer".into(),
                kind: IdentityKind::IamUser,
                name: "ci-deployer".into(),
                owner: None,
            }],
            credentials,
        }
    }

    #[test]
    fn imports_record_new_changed_disappeared_and_reappeared() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_in(dir.path()).unwrap();
        let first = batch(vec![
            key("AKIAAAAAAAAAAAAAAAA1", CredentialStatus::Active, None),
            key("AKIAAAAAAAAAAAAAAAA2", CredentialStatus::Active, Some("2024-01-01T00:00:00Z")),
        ]);
        let s = store.import(&first, "report-1.csv", "2024-02-01T00:00:00Z", NO_LINKS).unwrap();
        assert_eq!((s.new, s.changed, s.disappeared), (2, 0, 0));

        // Key 2 was used again, key 1 is gone.
        let second = batch(vec![key("AKIAAAAAAAAAAAAAAAA2", CredentialStatus::Active, Some("2024-02-10T00:00:00Z"))]);
        let s = store.import(&second, "report-2.csv", "2024-02-11T00:00:00Z", NO_LINKS).unwrap();
        assert_eq!((s.new, s.changed, s.disappeared), (0, 1, 1));
        let gone = store.credential("aws:AKIAAAAAAAAAAAAAAAA1").unwrap().expect("kept after it disappeared");
        assert_eq!(gone.credential.status, CredentialStatus::Deleted);
        assert_eq!(gone.deleted_at.as_deref(), Some("2024-02-11T00:00:00Z"));
        assert!(store.credentials(&CredentialFilter::default()).unwrap().iter().all(|c| c.deleted_at.is_none()));

        let used = store.credential("AKIAAAAAAAAAAAAAAAA2").unwrap().unwrap();
        let history = store.history(used.id).unwrap();
        assert_eq!(history[0].change, "new");
        assert_eq!(history[1].field.as_deref(), Some("last_used"));
        assert_eq!(history[1].old_value.as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(used.identity_name.as_deref(), Some("ci-deployer"));

        // Importing the same report again changes nothing; key 1 coming back is recorded.
        let s = store.import(&second, "report-2.csv", "2024-02-12T00:00:00Z", NO_LINKS).unwrap();
        assert_eq!((s.new, s.changed, s.unchanged, s.disappeared), (0, 0, 1, 0));
        let s = store.import(&first, "report-1.csv", "2024-02-13T00:00:00Z", NO_LINKS).unwrap();
        assert_eq!(s.reappeared, 1);
        assert_eq!(store.credential("AKIAAAAAAAAAAAAAAAA1").unwrap().unwrap().deleted_at, None);
    }

    #[test]
    fn a_failed_import_leaves_the_store_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_in(dir.path()).unwrap();
        store
            .import(
                &batch(vec![key("AKIAAAAAAAAAAAAAAAA1", CredentialStatus::Active, None)]),
                "a",
                "2024-01-01T00:00:00Z",
                NO_LINKS,
            )
            .unwrap();
        let before = store.credentials(&CredentialFilter::default()).unwrap();
        // Break the schema under the import so that it fails half-way through.
        store.conn.execute_batch("CREATE TRIGGER fail BEFORE INSERT ON credential_change WHEN NEW.change = 'disappeared' BEGIN SELECT RAISE(ABORT, 'injected'); END").unwrap();
        let err = store
            .import(
                &batch(vec![key("AKIAAAAAAAAAAAAAAAA9", CredentialStatus::Active, None)]),
                "b",
                "2024-01-02T00:00:00Z",
                NO_LINKS,
            )
            .unwrap_err();
        assert!(format!("{err:#}").contains("injected"), "{err:#}");
        store.conn.execute_batch("DROP TRIGGER fail").unwrap();
        assert_eq!(store.credentials(&CredentialFilter::default()).unwrap(), before);
        let runs: i64 = store.conn.query_row("SELECT COUNT(*) FROM import_run", [], |r| r.get(0)).unwrap();
        assert_eq!(runs, 1);
    }

    #[test]
    fn filters_select_by_platform_status_and_use() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_in(dir.path()).unwrap();
        let mut stale = key("AKIAAAAAAAAAAAAAAAA3", CredentialStatus::Inactive, Some("2023-01-01T00:00:00Z"));
        stale.expires = Some("2024-03-01T00:00:00Z".into());
        store
            .import(
                &batch(vec![
                    key("AKIAAAAAAAAAAAAAAAA4", CredentialStatus::Active, Some("2024-02-01T00:00:00Z")),
                    stale,
                ]),
                "r",
                "2024-02-02T00:00:00Z",
                NO_LINKS,
            )
            .unwrap();
        let ids = |f: CredentialFilter| -> Vec<String> {
            store.credentials(&f).unwrap().into_iter().map(|c| c.credential.external_id).collect()
        };
        assert_eq!(
            ids(CredentialFilter { status: Some(CredentialStatus::Inactive), ..Default::default() }),
            ["AKIAAAAAAAAAAAAAAAA3"]
        );
        assert_eq!(
            ids(CredentialFilter { unused_since: Some("2024-01-01T00:00:00Z".into()), ..Default::default() }),
            ["AKIAAAAAAAAAAAAAAAA3"]
        );
        assert_eq!(
            ids(CredentialFilter {
                expiring_before: Some(("2024-02-02T00:00:00Z".into(), "2024-04-01T00:00:00Z".into())),
                ..Default::default()
            }),
            ["AKIAAAAAAAAAAAAAAAA3"]
        );
        assert!(ids(CredentialFilter { platform: Some("github".into()), ..Default::default() }).is_empty());
    }

    #[test]
    fn reopening_keeps_the_data_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = Store::open_in(dir.path()).unwrap();
            store
                .import(
                    &batch(vec![key("AKIAAAAAAAAAAAAAAAA5", CredentialStatus::Active, None)]),
                    "r",
                    "2024-01-01T00:00:00Z",
                    NO_LINKS,
                )
                .unwrap();
        }
        let store = Store::open_in(dir.path()).unwrap();
        assert_eq!(store.credentials(&CredentialFilter::default()).unwrap().len(), 1);
        store.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(store);
        let err = Store::open_in(dir.path()).err().expect("newer schema refused");
        assert!(format!("{err:#}").contains("newer Keywatch"), "{err:#}");
    }

    #[test]
    fn vendor_links_are_replaced_on_each_import_and_by_relink() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_in(dir.path()).unwrap();
        let by_user: Linker<'_> = &|c, identity| {
            if identity == Some("ci-deployer") && c.status == CredentialStatus::Active {
                vec![VendorLink {
                    vendor_id: "acme".into(),
                    vendor_name: Some("Acme".into()),
                    confidence: 0.6,
                    evidence: vec![format!("{} is acme's", c.external_id)],
                }]
            } else {
                vec![]
            }
        };
        let keys = batch(vec![
            key("AKIAAAAAAAAAAAAAAAA1", CredentialStatus::Active, None),
            key("AKIAAAAAAAAAAAAAAAA2", CredentialStatus::Inactive, None),
        ]);
        store.import(&keys, "r", "2024-01-01T00:00:00Z", by_user).unwrap();
        let linked = store.vendor_credentials("acme").unwrap();
        assert_eq!(linked.len(), 1);
        assert_eq!(linked[0].0.credential.external_id, "AKIAAAAAAAAAAAAAAAA1");
        assert_eq!((linked[0].1, linked[0].2.len()), (0.6, 1));

        // Key 1 deactivated: its link goes with the next import.
        let keys = batch(vec![
            key("AKIAAAAAAAAAAAAAAAA1", CredentialStatus::Inactive, None),
            key("AKIAAAAAAAAAAAAAAAA2", CredentialStatus::Inactive, None),
        ]);
        store.import(&keys, "r", "2024-01-02T00:00:00Z", by_user).unwrap();
        assert!(store.vendor_credentials("acme").unwrap().is_empty());

        let everything: Linker<'_> = &|_, _| {
            vec![VendorLink {
                vendor_id: "acme".into(),
                vendor_name: Some("Acme".into()),
                confidence: 0.9,
                evidence: vec!["relinked".to_string()],
            }]
        };
        assert_eq!(store.relink(everything, "2024-01-03T00:00:00Z").unwrap(), 2);
        assert_eq!(store.vendor_credentials("acme").unwrap().len(), 2);
    }
}
