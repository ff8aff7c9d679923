-- Behaviour analysis: the audit-log events `keywatch ingest` stored, each credential's
-- learned baseline, and the alerts raised. Events are unique by `dedupe` (the platform's event
-- id, or a hash of the normalised fields when the platform gives none), so ingesting the same
-- log twice adds nothing.
CREATE TABLE activity_event (
    id INTEGER PRIMARY KEY,
    dedupe TEXT NOT NULL UNIQUE,
    time INTEGER NOT NULL,
    platform TEXT NOT NULL,
    event_id TEXT,
    identity TEXT,
    credential TEXT,
    session TEXT,
    source_ip TEXT,
    via_service TEXT,
    user_agent TEXT,
    action TEXT NOT NULL,
    resource TEXT,
    outcome TEXT NOT NULL,
    error TEXT,
    read_only INTEGER,
    category TEXT,
    raw_file TEXT NOT NULL,
    raw_line INTEGER NOT NULL,
    raw_record INTEGER NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE INDEX activity_event_credential ON activity_event (credential, time);
CREATE INDEX activity_event_source_ip ON activity_event (source_ip);

-- One row per tracked credential key (an access key, a role session, a token): the JSON of
-- what it did while its baseline was learned.
CREATE TABLE activity_baseline (
    key TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE activity_alert (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    credential TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
