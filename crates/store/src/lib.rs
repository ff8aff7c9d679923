//! Keywatch's store: one SQLite file in the data directory.
//!
//! All SQL lives in this crate, behind [`Store`]'s methods, so another database can be added
//! without touching the code that imports or analyses. Every import runs in one transaction:
//! a failed import leaves the store exactly as it was. Nothing is forgotten: a credential
//! that a complete import no longer lists is marked deleted with the time, and every change
//! of every field is kept in `credential_change`.

use anyhow::{bail, Context, Result};
use keywatch_model::inventory::{Credential, CredentialKind, CredentialStatus, InventoryBatch, Privilege};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, ToSql, Transaction};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Schema migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_inventory", include_str!("../migrations/0001_inventory.sql")),
    ("0002_vendor_links", include_str!("../migrations/0002_vendor_links.sql")),
    ("0003_vendor_decisions", include_str!("../migrations/0003_vendor_decisions.sql")),
];

/// A vendor link proposed by the caller's attribution: vendor id, confidence, evidence.
pub type VendorLink = (String, f64, Vec<String>);

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
    /// bare external id when it is unambiguous).
    pub fn credential(&self, id: &str) -> Result<Option<StoredCredential>> {
        let by_row = |sql: &str, args: &[&dyn rusqlite::ToSql]| self.query_credentials(sql, args);
        if let Ok(n) = id.parse::<i64>() {
            if let Some(found) = by_row(&format!("{SELECT_CREDENTIAL} WHERE c.id = ?1"), &[&n])?.pop() {
                return Ok(Some(found));
            }
        }
        if let Some((platform, external)) = id.split_once(':') {
            let found = by_row(
                &format!("{SELECT_CREDENTIAL} WHERE c.platform = ?1 AND c.external_id = ?2"),
                &[&platform, &external],
            )?;
            if let Some(found) = found.into_iter().next() {
                return Ok(Some(found));
            }
        }
        let mut found = by_row(&format!("{SELECT_CREDENTIAL} WHERE c.external_id = ?1"), &[&id])?;
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => bail!("{n} credentials have the id {id:?} on different platforms; use PLATFORM:{id}"),
        }
    }

    /// Recomputes every credential's vendor links (after the catalogue changed), in one
    /// transaction; returns how many credentials now have at least one link.
    pub fn relink(&mut self, link: Linker<'_>) -> Result<usize> {
        // Every credential, deleted ones included: their links still answer "what did this
        // vendor hold".
        let all = self.query_credentials(SELECT_CREDENTIAL, [])?;
        let tx = self.conn.transaction()?;
        let mut linked = 0;
        for c in &all {
            linked += usize::from(write_links(&tx, c.id, &link(&c.credential, c.identity_name.as_deref()))? > 0);
        }
        tx.commit()?;
        Ok(linked)
    }

    /// Records a person's decision on linking `credential_id` to `vendor_id` and applies it
    /// at once; later imports and relinks keep applying it.
    pub fn decide_link(
        &mut self,
        credential_id: i64,
        vendor_id: &str,
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
        let mut current =
            tx.prepare("SELECT vendor_id, confidence, evidence FROM vendor_link WHERE credential_id = ?1")?;
        let links = current
            .query_map([credential_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?, r.get::<_, String>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .map(|(vendor, confidence, evidence)| {
                let mut evidence: Vec<String> = serde_json::from_str(&evidence).unwrap_or_default();
                // The decision is re-applied below; drop its earlier note so it is not doubled.
                evidence.retain(|e| !e.starts_with("confirmed by "));
                (vendor, confidence, evidence)
            })
            .collect::<Vec<VendorLink>>();
        drop(current);
        write_links(&tx, credential_id, &links)?;
        tx.commit()?;
        Ok(())
    }

    /// The credentials linked to one vendor, deleted ones included, with each link's
    /// confidence and evidence.
    pub fn vendor_credentials(&self, vendor_id: &str) -> Result<Vec<(StoredCredential, f64, Vec<String>)>> {
        let mut stmt = self.conn.prepare(SELECT_VENDOR_CREDENTIALS)?;
        let rows = stmt.query_map([vendor_id], |r| {
            let credential = row_to_credential(r)?;
            let confidence: f64 = r.get(20)?;
            let evidence: String = r.get(21)?;
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

    /// Every recorded change of one credential, oldest first.
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
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).with_context(|| format!("migration {name} failed"))?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// The columns `row_to_credential` reads, in its order.
macro_rules! credential_columns {
    () => {
        "SELECT c.id, c.platform, c.external_id, c.kind, c.name, c.identity_external_id,
         c.owner, c.scopes, c.privilege, c.created, c.expires, c.last_rotated, c.last_used, c.status,
         c.fingerprint, i.name, c.source, c.first_seen, c.last_seen, c.deleted_at"
    };
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
     WHERE l.vendor_id = ?1 ORDER BY c.id"
);

/// The tracked field values then source, scope and time: the columns after the key in both
/// the insert and the update of a credential.
fn row_values<'v>(values: &'v [Option<String>], tail: &'v [&'v dyn ToSql; 3]) -> impl Iterator<Item = &'v dyn ToSql> {
    values.iter().map(|v| v as &dyn ToSql).chain(tail.iter().copied())
}

/// Replaces the vendor links of one credential; returns how many it now has.
fn write_links(tx: &Transaction<'_>, credential_id: i64, proposed: &[VendorLink]) -> Result<usize> {
    let mut links: Vec<VendorLink> = proposed.to_vec();
    let mut decisions = tx.prepare_cached(
        "SELECT vendor_id, decision, decided_by, decided_at FROM vendor_decision WHERE credential_id = ?1",
    )?;
    let decided = decisions
        .query_map([credential_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (vendor, decision, by, at) in decided {
        if decision == "rejected" {
            links.retain(|(v, _, _)| *v != vendor);
            continue;
        }
        let note = format!("confirmed by {by} at {at}");
        match links.iter_mut().find(|(v, _, _)| *v == vendor) {
            Some(link) => {
                link.1 = 1.0;
                link.2.insert(0, note);
            }
            None => links.push((vendor, 1.0, vec![note])),
        }
    }
    tx.prepare_cached("DELETE FROM vendor_link WHERE credential_id = ?1")?.execute([credential_id])?;
    let mut insert = tx.prepare_cached(
        "INSERT OR REPLACE INTO vendor_link (credential_id, vendor_id, confidence, evidence) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (vendor, confidence, evidence) in &links {
        insert.execute(params![credential_id, vendor, confidence, serde_json::to_string(evidence)?])?;
    }
    Ok(links.len())
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

fn import_batch(
    tx: &Transaction<'_>,
    batch: &InventoryBatch,
    input: &str,
    now: &str,
    link: Linker<'_>,
) -> Result<ImportSummary> {
    let identity_names: std::collections::HashMap<(&str, &str), &str> =
        batch.identities.iter().map(|i| ((i.platform.as_str(), i.external_id.as_str()), i.name.as_str())).collect();
    let identity_name = |c: &Credential| -> Option<String> {
        let id = c.identity.as_deref()?;
        if let Some(name) = identity_names.get(&(c.platform.as_str(), id)) {
            return Some(name.to_string());
        }
        tx.query_row(
            "SELECT name FROM identity WHERE platform = ?1 AND external_id = ?2",
            params![c.platform, id],
            |r| r.get(0),
        )
        .optional()
        .ok()
        .flatten()
    };
    tx.execute(
        "INSERT INTO import_run (source, input, scope, at, new_count, changed_count, disappeared_count)
         VALUES (?1, ?2, ?3, ?4, 0, 0, 0)",
        params![batch.source, input, batch.complete_scope, now],
    )?;
    let run_id = tx.last_insert_rowid();
    let mut summary = ImportSummary { run_id, ..ImportSummary::default() };

    let mut upsert_identity = tx.prepare_cached(
        "INSERT INTO identity (platform, external_id, kind, name, owner, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
         ON CONFLICT (platform, external_id) DO UPDATE SET
           kind = excluded.kind, name = excluded.name,
           owner = COALESCE(excluded.owner, identity.owner), last_seen = excluded.last_seen",
    )?;
    for i in &batch.identities {
        upsert_identity.execute(params![i.platform, i.external_id, i.kind.as_str(), i.name, i.owner, now])?;
    }

    let mut find = tx.prepare_cached(
        "SELECT id, kind, name, identity_external_id, owner, scopes, privilege, created, expires,
                last_rotated, last_used, status, fingerprint, deleted_at
         FROM credential WHERE platform = ?1 AND external_id = ?2",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO credential (platform, external_id, kind, name, identity_external_id, owner, scopes,
            privilege, created, expires, last_rotated, last_used, status, fingerprint, source, scope,
            first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE credential SET kind = ?2, name = ?3, identity_external_id = ?4, owner = ?5, scopes = ?6,
            privilege = ?7, created = ?8, expires = ?9, last_rotated = ?10, last_used = ?11, status = ?12,
            fingerprint = ?13, source = ?14, scope = COALESCE(?15, scope), last_seen = ?16, deleted_at = NULL
         WHERE id = ?1",
    )?;
    let mut record = tx.prepare_cached(
        "INSERT INTO credential_change (run_id, credential_id, change, field, old_value, new_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;

    let mut listed: HashSet<(&str, &str)> = HashSet::with_capacity(batch.credentials.len());
    for c in &batch.credentials {
        if !listed.insert((c.platform.as_str(), c.external_id.as_str())) {
            // The same credential twice in one batch (overlapping pages): the first wins.
            continue;
        }
        let fields = tracked_fields(c);
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
        let values = |f: &[(&'static str, Option<String>); 12]| -> Vec<Option<String>> {
            f.iter().map(|(_, v)| v.clone()).collect()
        };
        let v = values(&fields);
        let tail: [&dyn ToSql; 3] = [&batch.source, &batch.complete_scope, &now];
        match existing {
            None => {
                let key: [&dyn ToSql; 2] = [&c.platform, &c.external_id];
                insert.execute(params_from_iter(key.into_iter().chain(row_values(&v, &tail))))?;
                let id = tx.last_insert_rowid();
                record.execute(params![run_id, id, "new", None::<String>, None::<String>, None::<String>])?;
                write_links(tx, id, &link(c, identity_name(c).as_deref()))?;
                summary.new += 1;
            }
            Some((id, old, deleted_at)) => {
                let mut changed = false;
                if deleted_at.is_some() {
                    record.execute(params![run_id, id, "reappeared", None::<String>, deleted_at, None::<String>])?;
                    summary.reappeared += 1;
                }
                for ((field, new), old) in fields.iter().zip(&old) {
                    if new != old {
                        record.execute(params![run_id, id, "changed", field, old, new])?;
                        changed = true;
                    }
                }
                let key: [&dyn ToSql; 1] = [&id];
                update.execute(params_from_iter(key.into_iter().chain(row_values(&v, &tail))))?;
                write_links(tx, id, &link(c, identity_name(c).as_deref()))?;
                if changed {
                    summary.changed += 1;
                } else {
                    summary.unchanged += 1;
                }
            }
        }
    }

    if let Some(scope) = &batch.complete_scope {
        let mut gone_stmt = tx.prepare_cached(
            "SELECT id, platform, external_id FROM credential WHERE scope = ?1 AND deleted_at IS NULL",
        )?;
        let gone: Vec<i64> = gone_stmt
            .query_map([scope], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter(|(_, p, e)| !listed.contains(&(p.as_str(), e.as_str())))
            .map(|(id, _, _)| id)
            .collect();
        let mut mark = tx.prepare_cached("UPDATE credential SET status = 'deleted', deleted_at = ?2 WHERE id = ?1")?;
        for id in gone {
            mark.execute(params![id, now])?;
            record.execute(params![run_id, id, "disappeared", "status", None::<String>, "deleted"])?;
            summary.disappeared += 1;
        }
    }
    tx.execute(
        "UPDATE import_run SET new_count = ?2, changed_count = ?3, disappeared_count = ?4 WHERE id = ?1",
        params![run_id, summary.new as i64, summary.changed as i64, summary.disappeared as i64],
    )?;
    Ok(summary)
}

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
                vec![("acme".to_string(), 0.6, vec![format!("{} is acme's", c.external_id)])]
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

        let everything: Linker<'_> = &|_, _| vec![("acme".to_string(), 0.9, vec!["relinked".to_string()])];
        assert_eq!(store.relink(everything).unwrap(), 2);
        assert_eq!(store.vendor_credentials("acme").unwrap().len(), 2);
    }
}
