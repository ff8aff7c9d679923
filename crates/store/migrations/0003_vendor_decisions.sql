-- A person's decision on a vendor link: confirmed links stay even when attribution no longer
-- proposes them, rejected ones never come back. Kept across imports and relinks.

CREATE TABLE vendor_decision (
    credential_id INTEGER NOT NULL REFERENCES credential (id),
    vendor_id TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('confirmed', 'rejected')),
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (credential_id, vendor_id)
);
