-- Inventory: identities and credentials of every platform, and the history of every import.
-- Times are RFC 3339 UTC text, which sorts chronologically.

CREATE TABLE identity (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    external_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    UNIQUE (platform, external_id)
);

CREATE TABLE credential (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    external_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    identity_external_id TEXT,
    owner TEXT,
    scopes TEXT NOT NULL,            -- JSON array of strings
    privilege TEXT NOT NULL,
    created TEXT,
    expires TEXT,
    last_rotated TEXT,
    last_used TEXT,
    status TEXT NOT NULL,
    fingerprint TEXT,
    source TEXT NOT NULL,            -- the importer or connector that last reported it
    scope TEXT,                      -- the complete set it was last reported in, if any
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    deleted_at TEXT,                 -- when a complete import stopped listing it
    UNIQUE (platform, external_id)
);
CREATE INDEX credential_scope ON credential (scope) WHERE deleted_at IS NULL;
CREATE INDEX credential_identity ON credential (platform, identity_external_id);

CREATE TABLE import_run (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    input TEXT NOT NULL,             -- file name or connector
    scope TEXT,
    at TEXT NOT NULL,
    new_count INTEGER NOT NULL,
    changed_count INTEGER NOT NULL,
    disappeared_count INTEGER NOT NULL
);

CREATE TABLE credential_change (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES import_run (id),
    credential_id INTEGER NOT NULL REFERENCES credential (id),
    change TEXT NOT NULL,            -- new, changed, disappeared, reappeared
    field TEXT,
    old_value TEXT,
    new_value TEXT
);
CREATE INDEX credential_change_credential ON credential_change (credential_id);
