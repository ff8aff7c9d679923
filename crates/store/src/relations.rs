//! Typed relations between the inventory's entities: which identity a credential belongs to,
//! which vendor holds an identity, which person owns an identity or a credential.
//!
//! Each relation carries a confidence, its evidence and the source that reported it, and is
//! derived from the rows it describes: the maintenance functions here recompute the relations
//! of one credential or identity from the stored rows, inside the caller's transaction, so
//! they can never disagree with them for long. `identity_held_by_vendor` follows the vendor
//! links of the identity's credentials that are not deleted: the best link wins and its
//! evidence is carried over; a rejected link is gone from `vendor_link`, so from here too.

use crate::{row_to_credential, Store, StoredCredential};
use anyhow::{Context, Result};
use keywatch_model::inventory::{Credential, Identity};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeSet, HashSet};

/// The kinds of relation the store keeps, as stored in `relation.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelationKind {
    /// credential -> identity: the identity the credential acts as.
    CredentialOfIdentity,
    /// identity -> vendor: a vendor holds a credential of the identity.
    IdentityHeldByVendor,
    /// identity -> person: who created it or answers for it.
    IdentityOwnedByPerson,
    /// credential -> person: who created it or answers for it.
    CredentialOwnedByPerson,
}

impl RelationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::CredentialOfIdentity => "credential_of_identity",
            RelationKind::IdentityHeldByVendor => "identity_held_by_vendor",
            RelationKind::IdentityOwnedByPerson => "identity_owned_by_person",
            RelationKind::CredentialOwnedByPerson => "credential_owned_by_person",
        }
    }
}

/// How sure a relation is and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationEvidence {
    /// 0 to 1; 1 for what the platform itself reports, and for a confirmed vendor link.
    pub confidence: f64,
    pub evidence: Vec<String>,
    /// The importer that reported it (`aws:list-access-keys`), or `attribution`.
    pub source: String,
    pub first_seen: String,
    pub last_seen: String,
}

/// An identity as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIdentity {
    pub id: i64,
    pub identity: Identity,
    pub first_seen: String,
    pub last_seen: String,
}

/// A person who owns identities or credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: i64,
    /// An email address (lower case), or `PLATFORM:LOGIN` when the platform gives no address.
    pub key: String,
    /// As the platform first wrote it.
    pub name: String,
    /// Where the person was first seen.
    pub platform: String,
    pub first_seen: String,
    pub last_seen: String,
}

/// A vendor as it was known when something was last linked to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVendor {
    /// The catalogue id.
    pub id: String,
    /// The display name at link time; `None` for links older than the names' table.
    pub name: Option<String>,
}

/// One vendor link of a credential (`vendor_link`).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedVendor {
    pub vendor: StoredVendor,
    pub confidence: f64,
    pub evidence: Vec<String>,
}

/// An identity of a credential, with that identity's own owners and vendors.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRelations {
    pub identity: StoredIdentity,
    /// The `credential_of_identity` relation.
    pub relation: RelationEvidence,
    pub owners: Vec<(Person, RelationEvidence)>,
    pub vendors: Vec<(StoredVendor, RelationEvidence)>,
}

/// A record of another export merged into a credential (an AWS credential report key slot
/// merged into the key id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedRecord {
    pub platform: String,
    pub external_id: String,
    pub match_key: String,
    pub source: String,
    pub last_used: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
}

/// Everything related to one credential.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CredentialRelations {
    pub identities: Vec<IdentityRelations>,
    /// `credential_owned_by_person`.
    pub owners: Vec<(Person, RelationEvidence)>,
    /// The credential's own vendor links, strongest first.
    pub vendors: Vec<LinkedVendor>,
    pub merged: Vec<MergedRecord>,
}

/// What one person owns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Owned {
    pub identities: Vec<(StoredIdentity, RelationEvidence)>,
    pub credentials: Vec<(StoredCredential, RelationEvidence)>,
}

impl Store {
    /// The identities, owners, vendors and merged records of one credential.
    pub fn relations_of_credential(&self, credential_id: i64) -> Result<CredentialRelations> {
        let mut out = CredentialRelations::default();
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT i.id, i.platform, i.external_id, i.kind, i.name, i.owner, i.first_seen, i.last_seen, ",
            relation_columns!(),
            // The identity the credential's own record names first, then those of records
            // merged into it.
            " FROM relation r JOIN identity i ON i.id = r.to_id JOIN credential c ON c.id = r.from_id
             WHERE r.kind = 'credential_of_identity' AND r.from_id = ?1
             ORDER BY r.confidence DESC, i.external_id IS c.identity_external_id DESC, i.id"
        ))?;
        let identities = stmt
            .query_map([credential_id], |r| Ok((row_to_identity(r)?, row_to_evidence(r, 8)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (identity, relation) in identities {
            let identity = identity?;
            out.identities.push(IdentityRelations {
                owners: self.persons_related(RelationKind::IdentityOwnedByPerson, identity.id)?,
                vendors: self.vendors_of_identity(identity.id)?,
                identity,
                relation: relation?,
            });
        }
        out.owners = self.persons_related(RelationKind::CredentialOwnedByPerson, credential_id)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT l.vendor_id, v.name, l.confidence, l.evidence FROM vendor_link l
             LEFT JOIN vendor v ON v.catalogue_id = l.vendor_id
             WHERE l.credential_id = ?1 ORDER BY l.confidence DESC, l.vendor_id",
        )?;
        let links = stmt
            .query_map([credential_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (id, name, confidence, evidence) in links {
            out.vendors.push(LinkedVendor {
                vendor: StoredVendor { id, name },
                confidence,
                evidence: serde_json::from_str(&evidence).context("stored link evidence is unreadable")?,
            });
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT platform, external_id, match_key, source, last_used, first_seen, last_seen
             FROM credential_alias WHERE credential_id = ?1 ORDER BY first_seen, external_id",
        )?;
        out.merged = stmt
            .query_map([credential_id], |r| {
                Ok(MergedRecord {
                    platform: r.get(0)?,
                    external_id: r.get(1)?,
                    match_key: r.get(2)?,
                    source: r.get(3)?,
                    last_used: r.get(4)?,
                    first_seen: r.get(5)?,
                    last_seen: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(out)
    }

    /// The identities one vendor holds (`vendor_id` is the catalogue id), strongest first.
    pub fn identities_of_vendor(&self, vendor_id: &str) -> Result<Vec<(StoredIdentity, RelationEvidence)>> {
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT i.id, i.platform, i.external_id, i.kind, i.name, i.owner, i.first_seen, i.last_seen, ",
            relation_columns!(),
            " FROM relation r JOIN vendor v ON v.id = r.to_id JOIN identity i ON i.id = r.from_id
             WHERE r.kind = 'identity_held_by_vendor' AND v.catalogue_id = ?1
             ORDER BY r.confidence DESC, i.platform, i.name, i.id"
        ))?;
        let rows = stmt
            .query_map([vendor_id], |r| Ok((row_to_identity(r)?, row_to_evidence(r, 8)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|(i, e)| Ok((i?, e?))).collect()
    }

    /// Every person known as an owner, by key.
    pub fn owners(&self) -> Result<Vec<Person>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, key, name, platform, first_seen, last_seen FROM person ORDER BY key")?;
        let rows = stmt.query_map([], row_to_person)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().context("cannot read the owners")
    }

    /// The identities and credentials one person owns.
    pub fn owned_by(&self, person_id: i64) -> Result<Owned> {
        let mut owned = Owned::default();
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT i.id, i.platform, i.external_id, i.kind, i.name, i.owner, i.first_seen, i.last_seen, ",
            relation_columns!(),
            " FROM relation r JOIN identity i ON i.id = r.from_id
             WHERE r.kind = 'identity_owned_by_person' AND r.to_id = ?1 ORDER BY i.platform, i.name, i.id"
        ))?;
        let rows = stmt
            .query_map([person_id], |r| Ok((row_to_identity(r)?, row_to_evidence(r, 8)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (identity, evidence) in rows {
            owned.identities.push((identity?, evidence?));
        }
        let mut stmt = self.conn.prepare_cached(concat!(
            credential_columns!(),
            ", ",
            relation_columns!(),
            " FROM relation r JOIN credential c ON c.id = r.from_id
             LEFT JOIN identity i ON i.platform = c.platform AND i.external_id = c.identity_external_id
             WHERE r.kind = 'credential_owned_by_person' AND r.to_id = ?1 ORDER BY c.id"
        ))?;
        let rows = stmt
            .query_map([person_id], |r| Ok((row_to_credential(r)?, row_to_evidence(r, crate::CREDENTIAL_COLUMNS)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (credential, evidence) in rows {
            owned.credentials.push((credential?, evidence?));
        }
        Ok(owned)
    }

    fn persons_related(&self, kind: RelationKind, from_id: i64) -> Result<Vec<(Person, RelationEvidence)>> {
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT p.id, p.key, p.name, p.platform, p.first_seen, p.last_seen, ",
            relation_columns!(),
            " FROM relation r JOIN person p ON p.id = r.to_id WHERE r.kind = ?1 AND r.from_id = ?2 ORDER BY p.key"
        ))?;
        let rows = stmt
            .query_map(params![kind.as_str(), from_id], |r| Ok((row_to_person(r)?, row_to_evidence(r, 6)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|(p, e)| Ok((p, e?))).collect()
    }

    fn vendors_of_identity(&self, identity_id: i64) -> Result<Vec<(StoredVendor, RelationEvidence)>> {
        let mut stmt = self.conn.prepare_cached(concat!(
            "SELECT v.catalogue_id, v.name, ",
            relation_columns!(),
            " FROM relation r JOIN vendor v ON v.id = r.to_id
             WHERE r.kind = 'identity_held_by_vendor' AND r.from_id = ?1 ORDER BY r.confidence DESC, v.catalogue_id"
        ))?;
        let rows = stmt
            .query_map([identity_id], |r| {
                Ok((StoredVendor { id: r.get(0)?, name: r.get(1)? }, row_to_evidence(r, 2)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|(v, e)| Ok((v, e?))).collect()
    }
}

/// The columns `row_to_evidence` reads, in its order, from `relation r`.
macro_rules! relation_columns {
    () => {
        "r.confidence, r.evidence, r.source, r.first_seen, r.last_seen"
    };
}
use relation_columns;

fn row_to_evidence(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Result<RelationEvidence>> {
    let evidence: String = r.get(at + 1)?;
    let confidence: f64 = r.get(at)?;
    let (source, first_seen, last_seen) = (r.get(at + 2)?, r.get(at + 3)?, r.get(at + 4)?);
    Ok(serde_json::from_str(&evidence)
        .context("stored relation evidence is unreadable")
        .map(|evidence| RelationEvidence { confidence, evidence, source, first_seen, last_seen }))
}

/// `i.id, i.platform, i.external_id, i.kind, i.name, i.owner, i.first_seen, i.last_seen`.
fn row_to_identity(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredIdentity>> {
    let id: i64 = r.get(0)?;
    let kind: String = r.get(3)?;
    let (platform, external_id, name, owner) = (r.get(1)?, r.get(2)?, r.get(4)?, r.get(5)?);
    let (first_seen, last_seen) = (r.get(6)?, r.get(7)?);
    Ok(kind
        .parse()
        .map_err(anyhow::Error::msg)
        .map(|kind| StoredIdentity {
            id,
            identity: Identity { platform, external_id, kind, name, owner },
            first_seen,
            last_seen,
        })
        .with_context(|| format!("identity row {id} in the store is unreadable")))
}

fn row_to_person(r: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    Ok(Person {
        id: r.get(0)?,
        key: r.get(1)?,
        name: r.get(2)?,
        platform: r.get(3)?,
        first_seen: r.get(4)?,
        last_seen: r.get(5)?,
    })
}

// ---- Maintenance, inside the caller's transaction ----

/// One relation to write from a known entity: its far end, how sure and why.
struct Target {
    to_id: i64,
    confidence: f64,
    evidence: Vec<String>,
    source: String,
}

/// Adds `target`, folding it into an earlier one to the same entity: the best confidence
/// wins and the evidence of both is kept.
fn add_target(targets: &mut Vec<Target>, target: Target) {
    match targets.iter_mut().find(|t| t.to_id == target.to_id) {
        Some(t) => {
            if target.confidence > t.confidence {
                t.confidence = target.confidence;
                t.source = target.source;
            }
            for e in target.evidence {
                if !t.evidence.contains(&e) {
                    t.evidence.push(e);
                }
            }
        }
        None => targets.push(target),
    }
}

/// Makes the relations of `kind` from `from_id` exactly `targets`, keeping the first-seen time
/// of those that stay; returns the far ends before and after, so the caller can refresh what
/// depends on them.
fn replace_relations(
    conn: &Connection,
    kind: RelationKind,
    from_id: i64,
    targets: &[Target],
    now: &str,
) -> Result<BTreeSet<i64>> {
    let mut before = conn.prepare_cached("SELECT to_id FROM relation WHERE kind = ?1 AND from_id = ?2")?;
    let mut ends: BTreeSet<i64> =
        before.query_map(params![kind.as_str(), from_id], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let mut remove = conn.prepare_cached("DELETE FROM relation WHERE kind = ?1 AND from_id = ?2 AND to_id = ?3")?;
    for gone in ends.iter().filter(|e| !targets.iter().any(|t| t.to_id == **e)) {
        remove.execute(params![kind.as_str(), from_id, gone])?;
    }
    for t in targets {
        upsert_relation(conn, kind, from_id, t, now)?;
        ends.insert(t.to_id);
    }
    Ok(ends)
}

fn upsert_relation(conn: &Connection, kind: RelationKind, from_id: i64, t: &Target, now: &str) -> Result<()> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO relation (kind, from_id, to_id, confidence, evidence, source, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
         ON CONFLICT (kind, from_id, to_id) DO UPDATE SET confidence = excluded.confidence,
           evidence = excluded.evidence, source = excluded.source, last_seen = excluded.last_seen",
    )?;
    let evidence = serde_json::to_string(&t.evidence)?;
    upsert.execute(params![kind.as_str(), from_id, t.to_id, t.confidence, evidence, t.source, now])?;
    Ok(())
}

/// The relations of a credential this import inserted and merged nothing into: the same ones
/// `refresh_credential` would find, made from the record itself, since the row has no earlier
/// relations and no merged records to read back. Returns its identities.
pub(crate) fn relate_new_credential(
    conn: &Connection,
    credential_id: i64,
    c: &Credential,
    source: &str,
    now: &str,
) -> Result<BTreeSet<i64>> {
    let mut ends = BTreeSet::new();
    if let Some(identity) = &c.identity {
        if let Some(to_id) = identity_row(conn, &c.platform, identity)? {
            let evidence = vec![format!("{source} lists it as a credential of {identity}")];
            let target = Target { to_id, confidence: 1.0, evidence, source: source.to_string() };
            upsert_relation(conn, RelationKind::CredentialOfIdentity, credential_id, &target, now)?;
            ends.insert(to_id);
        }
    }
    if let Some(owner) = &c.owner {
        if let Some(to_id) = person_id(conn, &c.platform, owner, now)? {
            let evidence = vec![format!("{source} names {owner} as its owner")];
            let target = Target { to_id, confidence: 1.0, evidence, source: source.to_string() };
            upsert_relation(conn, RelationKind::CredentialOwnedByPerson, credential_id, &target, now)?;
        }
    }
    Ok(ends)
}

/// The platform-independent key of an owner as a platform writes it: an email address is the
/// same person on every platform (lower case, as mail systems treat it); anything else is a
/// login that only means something on its own platform.
pub(crate) fn person_key(platform: &str, owner: &str) -> Option<String> {
    let owner = owner.trim();
    if owner.is_empty() {
        None
    } else if owner.contains('@') {
        Some(owner.to_ascii_lowercase())
    } else {
        Some(format!("{platform}:{owner}"))
    }
}

/// The person row of an owner, made if new.
fn person_id(conn: &Connection, platform: &str, owner: &str, now: &str) -> Result<Option<i64>> {
    let Some(key) = person_key(platform, owner) else { return Ok(None) };
    let mut upsert = conn.prepare_cached(
        "INSERT INTO person (key, name, platform, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (key) DO UPDATE SET last_seen = max(person.last_seen, excluded.last_seen) RETURNING id",
    )?;
    Ok(Some(upsert.query_row(params![key, owner.trim(), platform, now], |r| r.get(0))?))
}

/// The vendor row of a catalogue id, made if new; a known `name` replaces the stored one.
pub(crate) fn vendor_row(conn: &Connection, catalogue_id: &str, name: Option<&str>, now: &str) -> Result<i64> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO vendor (catalogue_id, name, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (catalogue_id) DO UPDATE SET name = COALESCE(excluded.name, vendor.name),
           last_seen = max(vendor.last_seen, excluded.last_seen) RETURNING id",
    )?;
    Ok(upsert.query_row(params![catalogue_id, name, now], |r| r.get(0))?)
}

fn identity_row(conn: &Connection, platform: &str, external_id: &str) -> Result<Option<i64>> {
    let mut find = conn.prepare_cached("SELECT id FROM identity WHERE platform = ?1 AND external_id = ?2")?;
    Ok(find.query_row(params![platform, external_id], |r| r.get(0)).optional()?)
}

/// Recomputes a credential's `credential_of_identity` and `credential_owned_by_person`
/// relations from its row and the records merged into it; returns the identities it was or
/// is related to, whose vendor relations may have to follow.
pub(crate) fn refresh_credential(conn: &Connection, credential_id: i64, now: &str) -> Result<BTreeSet<i64>> {
    let mut row =
        conn.prepare_cached("SELECT platform, identity_external_id, owner, source FROM credential WHERE id = ?1")?;
    let Some((platform, identity, owner, source)) = row
        .query_row([credential_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?
    else {
        return Ok(BTreeSet::new());
    };
    let mut identities: Vec<Target> = Vec::new();
    let mut owners: Vec<Target> = Vec::new();
    if let Some(identity) = &identity {
        if let Some(to_id) = identity_row(conn, &platform, identity)? {
            let evidence = vec![format!("{source} lists it as a credential of {identity}")];
            add_target(&mut identities, Target { to_id, confidence: 1.0, evidence, source: source.clone() });
        }
    }
    if let Some(owner) = &owner {
        if let Some(to_id) = person_id(conn, &platform, owner, now)? {
            let evidence = vec![format!("{source} names {owner} as its owner")];
            add_target(&mut owners, Target { to_id, confidence: 1.0, evidence, source: source.clone() });
        }
    }
    let mut aliases = conn.prepare_cached(
        "SELECT external_id, match_key, record, source FROM credential_alias WHERE credential_id = ?1 ORDER BY first_seen",
    )?;
    let merged = aliases
        .query_map([credential_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (external_id, match_key, record, alias_source) in merged {
        let record: Credential =
            serde_json::from_str(&record).with_context(|| format!("merged record {external_id} is unreadable"))?;
        let same = format!("{alias_source} describes the same credential as {external_id} (match key {match_key})");
        if let Some(identity) = &record.identity {
            if let Some(to_id) = identity_row(conn, &platform, identity)? {
                let evidence = vec![format!("{same}, a credential of {identity}")];
                add_target(&mut identities, Target { to_id, confidence: 1.0, evidence, source: alias_source.clone() });
            }
        }
        if let Some(owner) = &record.owner {
            if let Some(to_id) = person_id(conn, &platform, owner, now)? {
                let evidence = vec![format!("{same}, owned by {owner}")];
                add_target(&mut owners, Target { to_id, confidence: 1.0, evidence, source: alias_source.clone() });
            }
        }
    }
    let ends = replace_relations(conn, RelationKind::CredentialOfIdentity, credential_id, &identities, now)?;
    replace_relations(conn, RelationKind::CredentialOwnedByPerson, credential_id, &owners, now)?;
    Ok(ends)
}

/// Drops the relations from a credential that is going away (merged into another); returns
/// the identities it was related to.
pub(crate) fn forget_credential(conn: &Connection, credential_id: i64, now: &str) -> Result<BTreeSet<i64>> {
    let ends = replace_relations(conn, RelationKind::CredentialOfIdentity, credential_id, &[], now)?;
    replace_relations(conn, RelationKind::CredentialOwnedByPerson, credential_id, &[], now)?;
    Ok(ends)
}

/// Recomputes an identity's `identity_owned_by_person` relation from its row; `source` is the
/// importer that reported the identity.
pub(crate) fn refresh_identity_owner(conn: &Connection, identity_id: i64, source: &str, now: &str) -> Result<()> {
    let mut row = conn.prepare_cached("SELECT platform, name, owner FROM identity WHERE id = ?1")?;
    let Some((platform, name, owner)) = row
        .query_row([identity_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
        })
        .optional()?
    else {
        return Ok(());
    };
    relate_identity_owner(conn, identity_id, &platform, &name, owner.as_deref(), source, now)
}

/// Makes an identity's `identity_owned_by_person` relation name `owner`, as its row now says.
pub(crate) fn relate_identity_owner(
    conn: &Connection,
    identity_id: i64,
    platform: &str,
    name: &str,
    owner: Option<&str>,
    source: &str,
    now: &str,
) -> Result<()> {
    let mut owners = Vec::new();
    if let Some(owner) = owner {
        if let Some(to_id) = person_id(conn, platform, owner, now)? {
            let evidence = vec![format!("{source} names {owner} as the owner of {name}")];
            owners.push(Target { to_id, confidence: 1.0, evidence, source: source.to_string() });
        }
    }
    replace_relations(conn, RelationKind::IdentityOwnedByPerson, identity_id, &owners, now)?;
    Ok(())
}

/// Recomputes an identity's `identity_held_by_vendor` relations from the vendor links of its
/// credentials that are not deleted: per vendor, the strongest link wins and brings its
/// evidence, after a line naming the credential it came through.
pub(crate) fn refresh_identity_vendors(conn: &Connection, identity_id: i64, now: &str) -> Result<()> {
    let mut links = conn.prepare_cached(
        "SELECT l.vendor_id, l.confidence, l.evidence, c.platform, c.external_id, c.name
         FROM relation r JOIN credential c ON c.id = r.from_id JOIN vendor_link l ON l.credential_id = c.id
         WHERE r.kind = 'credential_of_identity' AND r.to_id = ?1 AND c.deleted_at IS NULL
         ORDER BY l.confidence DESC, c.id",
    )?;
    let rows = links
        .query_map([identity_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut vendors: Vec<(String, Target, usize)> = Vec::new();
    for (vendor, confidence, evidence, platform, external_id, name) in rows {
        if let Some((_, _, more)) = vendors.iter_mut().find(|(v, _, _)| *v == vendor) {
            // Ordered strongest first: the first credential of a vendor is its best link.
            *more += 1;
            continue;
        }
        let mut lines = vec![format!("through credential {name:?} ({platform}:{external_id})")];
        lines.extend(serde_json::from_str::<Vec<String>>(&evidence).context("stored link evidence is unreadable")?);
        let to_id = vendor_row(conn, &vendor, None, now)?;
        vendors.push((vendor, Target { to_id, confidence, evidence: lines, source: "attribution".into() }, 0));
    }
    let targets: Vec<Target> = vendors
        .into_iter()
        .map(|(vendor, mut target, more)| {
            if more > 0 {
                target.evidence.push(format!("and {more} more credentials of this identity linked to {vendor}"));
            }
            target
        })
        .collect();
    replace_relations(conn, RelationKind::IdentityHeldByVendor, identity_id, &targets, now)?;
    Ok(())
}

/// Identities that a vendor-linked credential belongs to, or that are held by a vendor now:
/// the only ones whose `identity_held_by_vendor` relations can need a change.
pub(crate) fn identities_with_vendor_evidence(conn: &Connection) -> Result<HashSet<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.to_id FROM vendor_link l
           JOIN relation r ON r.kind = 'credential_of_identity' AND r.from_id = l.credential_id
         UNION SELECT from_id FROM relation WHERE kind = 'identity_held_by_vendor'",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<HashSet<i64>>>()?)
}

/// The identities a credential is a credential of.
pub(crate) fn identities_of_credential(conn: &Connection, credential_id: i64) -> Result<Vec<i64>> {
    let mut stmt =
        conn.prepare_cached("SELECT to_id FROM relation WHERE kind = 'credential_of_identity' AND from_id = ?1")?;
    let rows = stmt.query_map([credential_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
}

/// Credentials (directly or through a merged record) naming an identity seen at `now` but not
/// related to it yet: the identity arrived after them. One query for the whole import, since
/// asking per identity cost a query for each of hundreds of thousands of IAM users.
pub(crate) fn credentials_missing_identity_relation(conn: &Connection, now: &str) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id FROM identity i
           JOIN credential c ON c.platform = i.platform AND c.identity_external_id = i.external_id
         WHERE i.last_seen = ?1 AND NOT EXISTS (SELECT 1 FROM relation r
           WHERE r.kind = 'credential_of_identity' AND r.from_id = c.id AND r.to_id = i.id)
         UNION
         SELECT a.credential_id FROM identity i
           JOIN credential_alias a ON a.platform = i.platform AND a.identity_external_id = i.external_id
         WHERE i.last_seen = ?1 AND NOT EXISTS (SELECT 1 FROM relation r
           WHERE r.kind = 'credential_of_identity' AND r.from_id = a.credential_id AND r.to_id = i.id)",
    )?;
    let rows = stmt.query_map([now], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
}

/// Every relation from the stored rows: run once, when the relation table is made for a
/// store that already has an inventory.
pub(crate) fn rebuild(conn: &Connection, now: &str) -> Result<()> {
    let ids = |sql: &str| -> Result<Vec<i64>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
    };
    let identities = ids("SELECT id FROM identity ORDER BY id")?;
    for &id in &identities {
        refresh_identity_owner(conn, id, "inventory (before relations were kept)", now)?;
    }
    for id in ids("SELECT id FROM credential ORDER BY id")? {
        refresh_credential(conn, id, now)?;
    }
    let mut vendors = conn.prepare("SELECT DISTINCT vendor_id FROM vendor_link ORDER BY vendor_id")?;
    let vendors = vendors.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    for vendor in vendors {
        vendor_row(conn, &vendor, None, now)?;
    }
    for &id in &identities {
        refresh_identity_vendors(conn, id, now)?;
    }
    Ok(())
}
