-- The inventory's other entities (the people who own identities and credentials, the vendors
-- that hold them) and the typed relations between them, each with how sure it is and why.
-- Also the records of other exports merged into one credential (credential_alias), found by
-- a match key the importer supplies. Existing rows are brought in by the Rust step of this
-- migration (Store::open), from the same code that maintains them at each import.

-- A person, known by a platform-independent key: an email address (lower case) when the
-- platform gives one, else PLATFORM:LOGIN.
CREATE TABLE person (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,              -- as the platform first wrote it
    platform TEXT NOT NULL,          -- the platform it was first seen on
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);

-- A vendor of the catalogue that something was linked to, with its display name as known
-- when it was last linked (NULL for vendors only linked before this migration, until the
-- next import or relink).
CREATE TABLE vendor (
    id INTEGER PRIMARY KEY,
    catalogue_id TEXT NOT NULL UNIQUE,
    name TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);

-- kind                        from          to
-- credential_of_identity      credential.id identity.id
-- identity_held_by_vendor     identity.id   vendor.id
-- identity_owned_by_person    identity.id   person.id
-- credential_owned_by_person  credential.id person.id
CREATE TABLE relation (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('credential_of_identity', 'identity_held_by_vendor',
                                       'identity_owned_by_person', 'credential_owned_by_person')),
    from_id INTEGER NOT NULL,
    to_id INTEGER NOT NULL,
    confidence REAL NOT NULL,
    evidence TEXT NOT NULL,          -- JSON array of strings
    source TEXT NOT NULL,            -- the importer, or `attribution` for vendor relations
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    UNIQUE (kind, from_id, to_id)
);
CREATE INDEX relation_to ON relation (kind, to_id);

ALTER TABLE credential ADD COLUMN match_key TEXT;
CREATE INDEX credential_match_key ON credential (platform, match_key) WHERE match_key IS NOT NULL;

-- A record of another export that describes a stored credential under another external id
-- (an AWS credential report key slot of a key known by its id). Looked up by the record's
-- own id and match key, so that a slot which later holds another key is not taken for this one.
CREATE TABLE credential_alias (
    platform TEXT NOT NULL,
    external_id TEXT NOT NULL,
    match_key TEXT NOT NULL,
    credential_id INTEGER NOT NULL REFERENCES credential (id),
    identity_external_id TEXT,
    record TEXT NOT NULL,            -- JSON of the record as that export last described it
    last_used TEXT,
    source TEXT NOT NULL,
    scope TEXT,                      -- the complete set it was last reported in, if any
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (platform, external_id, match_key)
);
CREATE INDEX credential_alias_credential ON credential_alias (credential_id);
CREATE INDEX credential_alias_match ON credential_alias (platform, match_key);
CREATE INDEX credential_alias_scope ON credential_alias (scope);
CREATE INDEX credential_alias_identity ON credential_alias (platform, identity_external_id);
