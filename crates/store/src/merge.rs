//! One credential described by two exports under different ids.
//!
//! The AWS credential report names an access key by its user and slot; `list-access-keys`
//! names it by its key id. Importers give such records a match key (what both know of the
//! credential, [`Credential::match_key`]) and the store keeps one row per credential, whatever
//! the order the exports arrive in: the record with a fingerprint (the platform's own handle)
//! is canonical and the other becomes its alias in `credential_alias`. The alias's history is
//! re-pointed to the canonical row, its vendor decisions move there (the canonical row's own
//! decision wins a conflict), its last use fills the canonical row's when that has none, and a
//! `merged` change records it. When a match is in doubt (two canonical or two other records
//! share a key: two keys of one user made in the same second, or same-named users of two
//! accounts), nothing is merged.

use crate::{record_change, relations, Dirty, ImportSummary, Run, SELECT_CREDENTIAL};
use anyhow::{Context, Result};
use keywatch_model::inventory::Credential;
use rusqlite::{params, Connection, OptionalExtension};

/// The stored rows sharing one match key on one platform.
struct Matches {
    /// Rows with a fingerprint.
    canonical: Vec<i64>,
    /// Rows without one.
    others: Vec<i64>,
    /// Rows that records with this key were already merged into.
    alias_targets: Vec<i64>,
}

impl Matches {
    fn of(conn: &Connection, platform: &str, key: &str) -> Result<Matches> {
        let ids = |sql: &str| -> Result<Vec<i64>> {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(params![platform, key], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
        };
        Ok(Matches {
            canonical: ids(
                "SELECT id FROM credential WHERE platform = ?1 AND match_key = ?2 AND fingerprint IS NOT NULL ORDER BY id",
            )?,
            others: ids(
                "SELECT id FROM credential WHERE platform = ?1 AND match_key = ?2 AND fingerprint IS NULL ORDER BY id",
            )?,
            alias_targets: ids(
                "SELECT DISTINCT credential_id FROM credential_alias WHERE platform = ?1 AND match_key = ?2",
            )?,
        })
    }

    /// The one canonical row these records can be merged into, when there is no doubt.
    fn sole_canonical(&self) -> Option<i64> {
        match self.canonical[..] {
            [one] if self.alias_targets.iter().all(|t| *t == one) => Some(one),
            _ => None,
        }
    }
}

/// Credentials that records were merged into.
pub(crate) fn credentials_with_aliases(conn: &Connection) -> Result<std::collections::HashSet<i64>> {
    let mut stmt = conn.prepare_cached("SELECT DISTINCT credential_id FROM credential_alias")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The stored credential a record without a fingerprint describes: the one it is already an
/// alias of, or, when no row has its own id yet, the sole canonical row of its match key.
pub(crate) fn alias_target(conn: &Connection, c: &Credential, key: &str) -> Result<Option<i64>> {
    let mut alias = conn.prepare_cached(
        "SELECT credential_id FROM credential_alias WHERE platform = ?1 AND external_id = ?2 AND match_key = ?3",
    )?;
    if let Some(id) = alias.query_row(params![c.platform, c.external_id, key], |r| r.get(0)).optional()? {
        return Ok(Some(id));
    }
    let mut stored = conn.prepare_cached("SELECT 1 FROM credential WHERE platform = ?1 AND external_id = ?2")?;
    if stored.exists(params![c.platform, c.external_id])? {
        // Stored on its own: the normal update, then `merge_matches`, which moves its history.
        return Ok(None);
    }
    let matches = Matches::of(conn, &c.platform, key)?;
    Ok(matches.sole_canonical().filter(|_| matches.others.is_empty()))
}

/// Applies a record to the canonical credential it is an alias of: the alias row is made or
/// updated, the canonical row takes the record's last use when it has none of its own (or had
/// the alias's), and comes back if it was deleted, since the record lists it again.
pub(crate) fn apply_alias(
    conn: &Connection,
    run: &Run<'_>,
    canonical_id: i64,
    c: &Credential,
    key: &str,
    summary: &mut ImportSummary,
) -> Result<()> {
    let mut previous = conn.prepare_cached(
        "SELECT last_used FROM credential_alias WHERE platform = ?1 AND external_id = ?2 AND match_key = ?3",
    )?;
    let previous: Option<Option<String>> =
        previous.query_row(params![c.platform, c.external_id, key], |r| r.get(0)).optional()?;
    let record = serde_json::to_string(c)?;
    let mut canonical =
        conn.prepare_cached("SELECT external_id, last_used, status, deleted_at FROM credential WHERE id = ?1")?;
    let (canonical_external_id, last_used, status, deleted_at) = canonical.query_row([canonical_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    match &previous {
        None => {
            conn.prepare_cached(
                "INSERT INTO credential_alias (platform, external_id, match_key, credential_id, identity_external_id,
                   record, last_used, source, scope, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )?
            .execute(params![
                c.platform,
                c.external_id,
                key,
                canonical_id,
                c.identity,
                record,
                c.last_used,
                run.source,
                run.scope,
                run.now
            ])?;
            record_change(
                conn,
                run.id,
                canonical_id,
                "merged",
                Some("external_id"),
                Some(&c.external_id),
                Some(&canonical_external_id),
            )?;
            summary.merged += 1;
        }
        Some(_) => {
            conn.prepare_cached(
                "UPDATE credential_alias SET identity_external_id = ?4, record = ?5, last_used = ?6, source = ?7,
                   scope = COALESCE(?8, scope), last_seen = ?9
                 WHERE platform = ?1 AND external_id = ?2 AND match_key = ?3",
            )?
            .execute(params![
                c.platform,
                c.external_id,
                key,
                c.identity,
                record,
                c.last_used,
                run.source,
                run.scope,
                run.now
            ])?;
        }
    }
    let mut changed = false;
    // The record's last use stands in for the canonical row's only while that has none of its
    // own: either none at all, or the one this record gave it last time.
    let alias_gave_it = last_used.is_none() || last_used == previous.clone().flatten();
    let new_last_used = if alias_gave_it { c.last_used.clone().or(last_used.clone()) } else { last_used.clone() };
    if new_last_used != last_used {
        record_change(
            conn,
            run.id,
            canonical_id,
            "changed",
            Some("last_used"),
            last_used.as_deref(),
            new_last_used.as_deref(),
        )?;
        changed = true;
    }
    let mut new_status = status.clone();
    if let Some(at) = &deleted_at {
        record_change(conn, run.id, canonical_id, "reappeared", None, Some(at), None)?;
        new_status = c.status.as_str().to_string();
        record_change(conn, run.id, canonical_id, "changed", Some("status"), Some(&status), Some(&new_status))?;
        summary.reappeared += 1;
        changed = true;
    }
    conn.prepare_cached(
        "UPDATE credential SET last_used = ?2, status = ?3, deleted_at = NULL, last_seen = ?4 WHERE id = ?1",
    )?
    .execute(params![canonical_id, new_last_used, new_status, run.now])?;
    if previous.is_some() {
        if changed {
            summary.changed += 1;
        } else {
            summary.unchanged += 1;
        }
    }
    Ok(())
}

/// After a record with match key `key` was stored: when exactly one canonical row and one
/// other row share the key, merges the other into the canonical one; returns its id.
pub(crate) fn merge_matches(
    conn: &Connection,
    run: &Run<'_>,
    platform: &str,
    key: &str,
    summary: &mut ImportSummary,
    dirty: &mut Dirty,
) -> Result<Option<i64>> {
    let matches = Matches::of(conn, platform, key)?;
    let (Some(into), [from]) = (matches.sole_canonical(), &matches.others[..]) else { return Ok(None) };
    merge_row(conn, run, *from, into, key, summary, dirty)?;
    Ok(Some(into))
}

/// Folds the stored credential `from` into `into`, `from`'s record becoming an alias.
fn merge_row(
    conn: &Connection,
    run: &Run<'_>,
    from: i64,
    into: i64,
    key: &str,
    summary: &mut ImportSummary,
    dirty: &mut Dirty,
) -> Result<()> {
    let merged = conn
        .prepare_cached(&format!("{SELECT_CREDENTIAL} WHERE c.id = ?1"))?
        .query_row([from], crate::row_to_credential)??;
    let scope: Option<String> =
        conn.prepare_cached("SELECT scope FROM credential WHERE id = ?1")?.query_row([from], |r| r.get(0))?;
    let (into_external_id, into_last_used): (String, Option<String>) = conn
        .prepare_cached("SELECT external_id, last_used FROM credential WHERE id = ?1")?
        .query_row([into], |r| Ok((r.get(0)?, r.get(1)?)))?;

    conn.prepare_cached("UPDATE credential_change SET credential_id = ?2 WHERE credential_id = ?1")?
        .execute(params![from, into])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO vendor_decision (credential_id, vendor_id, decision, decided_by, decided_at)
         SELECT ?2, vendor_id, decision, decided_by, decided_at FROM vendor_decision WHERE credential_id = ?1",
    )?
    .execute(params![from, into])?;
    conn.prepare_cached("DELETE FROM vendor_decision WHERE credential_id = ?1")?.execute([from])?;
    conn.prepare_cached("DELETE FROM vendor_link WHERE credential_id = ?1")?.execute([from])?;
    dirty.identities.extend(relations::forget_credential(conn, from, run.now)?);
    // Aliases already merged into `from` follow it.
    conn.prepare_cached("UPDATE credential_alias SET credential_id = ?2 WHERE credential_id = ?1")?
        .execute(params![from, into])?;
    let c = &merged.credential;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO credential_alias (platform, external_id, match_key, credential_id, identity_external_id,
           record, last_used, source, scope, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        c.platform,
        c.external_id,
        key,
        into,
        c.identity,
        serde_json::to_string(c)?,
        c.last_used,
        merged.source,
        scope,
        merged.first_seen,
        merged.last_seen
    ])?;
    conn.prepare_cached("DELETE FROM credential WHERE id = ?1")?
        .execute([from])
        .with_context(|| format!("cannot remove credential {from} after merging it into {into}"))?;
    record_change(conn, run.id, into, "merged", Some("external_id"), Some(&c.external_id), Some(&into_external_id))?;
    if into_last_used.is_none() && c.last_used.is_some() {
        conn.prepare_cached("UPDATE credential SET last_used = ?2 WHERE id = ?1")?
            .execute(params![into, c.last_used])?;
        record_change(conn, run.id, into, "changed", Some("last_used"), None, c.last_used.as_deref())?;
    }
    // Known since the first of the two was seen.
    conn.prepare_cached("UPDATE credential SET first_seen = min(first_seen, ?2) WHERE id = ?1")?
        .execute(params![into, merged.first_seen])?;
    summary.merged += 1;
    dirty.credential(into);
    Ok(())
}

/// The latest last use the records merged into a credential report.
pub(crate) fn alias_last_used(conn: &Connection, credential_id: i64) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached("SELECT MAX(last_used) FROM credential_alias WHERE credential_id = ?1")?;
    Ok(stmt.query_row([credential_id], |r| r.get(0))?)
}

/// The records merged into a credential, as their exports last described them.
pub(crate) fn alias_records(conn: &Connection, credential_id: i64) -> Result<Vec<Credential>> {
    let mut stmt = conn.prepare_cached(
        "SELECT external_id, record FROM credential_alias WHERE credential_id = ?1 ORDER BY first_seen",
    )?;
    let rows = stmt
        .query_map([credential_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, record)| serde_json::from_str(&record).with_context(|| format!("merged record {id} is unreadable")))
        .collect()
}
