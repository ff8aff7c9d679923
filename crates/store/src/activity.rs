//! Behaviour analysis in the store: events, per-credential baselines and alerts, written by
//! `keywatch ingest` in one transaction per [`ActivitySession`].
//!
//! Baselines and alerts are kept as JSON documents whose shape belongs to the analyser; the
//! store only indexes what it must find them by.

use anyhow::{Context, Result};
use keywatch_model::event::{Event, Outcome};
use rusqlite::{params, Transaction};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

use crate::Store;

/// An alert as the store keeps it: what it is indexed by, and the analyser's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    pub id: String,
    pub kind: String,
    pub severity: String,
    pub credential: String,
    pub first_seen: String,
    pub last_seen: String,
    pub data: String,
}

/// Counts of what the store holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityCounts {
    pub events: u64,
    pub baselines: u64,
    pub alerts: u64,
}

impl Store {
    /// Starts a transaction for ingesting events; nothing is written until
    /// [`ActivitySession::commit`].
    pub fn activity(&mut self) -> Result<ActivitySession<'_>> {
        Ok(ActivitySession { tx: self.conn.transaction()? })
    }

    pub fn activity_counts(&self) -> Result<ActivityCounts> {
        let count = |table: &str| -> Result<u64> {
            Ok(self.conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0))? as u64)
        };
        Ok(ActivityCounts {
            events: count("activity_event")?,
            baselines: count("activity_baseline")?,
            alerts: count("activity_alert")?,
        })
    }

    /// Stored alerts, most recent activity first.
    pub fn alerts(&self) -> Result<Vec<StoredAlert>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, severity, credential, first_seen, last_seen, data FROM activity_alert
             ORDER BY last_seen DESC, id",
        )?;
        let rows = stmt.query_map([], row_to_alert)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn row_to_alert(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredAlert> {
    Ok(StoredAlert {
        id: r.get(0)?,
        kind: r.get(1)?,
        severity: r.get(2)?,
        credential: r.get(3)?,
        first_seen: r.get(4)?,
        last_seen: r.get(5)?,
        data: r.get(6)?,
    })
}

pub struct ActivitySession<'s> {
    tx: Transaction<'s>,
}

/// What makes an event the same event in two files: the platform's event id, or, for
/// platforms that give none, a hash of every normalised field but where it was read from.
pub fn dedupe_key(e: &Event) -> String {
    match &e.event_id {
        Some(id) => format!("{}:{id}", e.platform),
        None => {
            let mut hash = Sha256::new();
            let fields = [
                Some(e.platform.as_str()),
                e.identity.as_deref(),
                e.credential.as_deref(),
                e.session.as_deref(),
                e.source_ip.as_deref(),
                e.via_service.as_deref(),
                e.user_agent.as_deref(),
                Some(e.action.as_str()),
                e.resource.as_deref(),
                e.error.as_deref(),
            ];
            hash.update(e.time.to_le_bytes());
            for field in fields {
                // A marker keeps `None` apart from an empty string, and fields apart.
                match field {
                    Some(text) => {
                        hash.update([1]);
                        hash.update((text.len() as u64).to_le_bytes());
                        hash.update(text.as_bytes());
                    }
                    None => hash.update([0]),
                }
            }
            let mut key = format!("{}:sha256:", e.platform);
            for b in hash.finalize() {
                let _ = write!(key, "{b:02x}");
            }
            key
        }
    }
}

impl ActivitySession<'_> {
    /// Stores an event unless the same event is already stored; says whether it was new.
    pub fn insert_event(&self, e: &Event, now: &str) -> Result<bool> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO activity_event (dedupe, time, platform, event_id, identity, credential,
               session, source_ip, via_service, user_agent, action, resource, outcome, error, read_only,
               category, raw_file, raw_line, raw_record, ingested_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        )?;
        let outcome = match e.outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        };
        let inserted = stmt
            .execute(params![
                dedupe_key(e),
                e.time,
                e.platform,
                e.event_id,
                e.identity,
                e.credential,
                e.session,
                e.source_ip,
                e.via_service,
                e.user_agent,
                e.action,
                e.resource,
                outcome,
                e.error,
                e.read_only,
                e.category.map(|c| c.as_str()),
                e.raw.file,
                e.raw.line as i64,
                e.raw.record as i64,
                now,
            ])
            .context("cannot store an event")?;
        Ok(inserted == 1)
    }

    /// Every stored baseline: key and JSON.
    pub fn baselines(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare("SELECT key, data FROM activity_baseline")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn save_baseline(&self, key: &str, platform: &str, data: &str, now: &str) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO activity_baseline (key, platform, data, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (key) DO UPDATE SET platform = excluded.platform, data = excluded.data,
               updated_at = excluded.updated_at WHERE data <> excluded.data",
        )?;
        stmt.execute(params![key, platform, data, now])?;
        Ok(())
    }

    pub fn alerts(&self) -> Result<Vec<StoredAlert>> {
        let mut stmt = self
            .tx
            .prepare("SELECT id, kind, severity, credential, first_seen, last_seen, data FROM activity_alert")?;
        let rows = stmt.query_map([], row_to_alert)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Adds or replaces an alert.
    pub fn save_alert(&self, alert: &StoredAlert, now: &str) -> Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO activity_alert (id, kind, severity, credential, first_seen, last_seen, data, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, first_seen = excluded.first_seen,
               last_seen = excluded.last_seen, data = excluded.data, updated_at = excluded.updated_at",
        )?;
        stmt.execute(params![
            alert.id,
            alert.kind,
            alert.severity,
            alert.credential,
            alert.first_seen,
            alert.last_seen,
            alert.data,
            now
        ])?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        self.tx.commit().context("cannot commit the ingested events")
    }
}
