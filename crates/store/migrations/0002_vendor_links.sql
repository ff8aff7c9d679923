-- Which vendor each credential is attributed to, with the confidence and evidence of the
-- attribution in force when the credential was last imported (or relinked).

CREATE TABLE vendor_link (
    credential_id INTEGER NOT NULL REFERENCES credential (id),
    vendor_id TEXT NOT NULL,
    confidence REAL NOT NULL,
    evidence TEXT NOT NULL,          -- JSON array of strings
    PRIMARY KEY (credential_id, vendor_id)
);
CREATE INDEX vendor_link_vendor ON vendor_link (vendor_id);
