//! The vocabulary every Keywatch crate shares: plain data types with serde, no I/O.
//!
//! A reader turns some input into these records, the store keeps them and presenters print
//! them. Field names are part of the JSON output contract: add fields freely, never rename
//! or remove one.

pub mod event;
pub mod inventory;
pub mod time;

use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a leak of this kind of credential is, most severe last so `Ord` sorts upward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Severity::Info),
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!("unknown severity {other:?} (expected critical, high, medium, low or info)")),
        }
    }
}

/// What Keywatch knows about whether a found secret is genuine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validation {
    /// The secret carries a checksum (GitHub's CRC32, for example) and it is correct.
    ChecksumValid,
    /// The secret's checksum is wrong; only reported with `--keep-invalid`.
    ChecksumInvalid,
    /// Nothing was checked: the format matched, that is all.
    Unverified,
}

/// The commit that introduced a secret, for findings in git history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub commit: String,
    pub author_name: String,
    pub author_email: String,
    /// RFC 3339, UTC.
    pub date: String,
    pub summary: String,
}

/// The parts of a JWT that tell a responder whose token it is and whether it still works.
/// Decoded from the token itself; the signature is never verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtClaims {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    /// Expiry, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Issued at, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<String>,
    /// Whether `exp` had passed when the scan ran (`None` when the token has no `exp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<bool>,
    /// For a token captured at a known time (a HAR entry's `startedDateTime`): whether it was
    /// within `nbf`..`exp` then (`None` when the token has neither or the time is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_at_capture: Option<bool>,
}

/// Where in an HTTP Archive a secret was found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarContext {
    /// JSON pointer (RFC 6901) of the value holding the secret, such as
    /// `/log/entries/12/request/headers/3/value`.
    pub location: String,
    /// Index of the entry in `log.entries`, when the secret is in an entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<u64>,
    /// What the value is: `request header`, `response cookie`, `query parameter`, `request body`...
    pub part: String,
    /// The header, cookie, parameter or JSON field name, where the value has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// The entry's URL with every secret in it redacted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// The entry's `startedDateTime` as written in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
}

/// One secret found at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule_id: String,
    pub provider: String,
    pub description: String,
    pub severity: Severity,
    /// File path; inside archives, `outer.zip!inner/dir/file.env`.
    pub path: String,
    /// 1-based line of the start of the secret.
    pub line: u64,
    /// 1-based byte column of the start of the secret.
    pub column: u64,
    /// Hex SHA-256 of the exact secret bytes.
    pub secret_sha256: String,
    /// At most the first 4 and last 2 characters of the secret.
    pub redacted: String,
    /// Stable identity of this finding: rule, secret hash and location.
    pub fingerprint: String,
    pub validation: Validation,
    /// The line holding the secret with the secret itself redacted, clipped for display.
    pub context: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitInfo>,
    /// What a JWT says about itself (decoded, never verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtClaims>,
    /// For findings in HTTP Archives: where in the archive, and which request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub har: Option<HarContext>,
    /// The full secret: only set when the user asks for it (`--show-secrets`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// An input that could not be read, or was read only in part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanError {
    pub path: String,
    pub message: String,
}

/// An input deliberately not scanned (binary, too large, excluded kind of entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// Counters of one scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanStats {
    pub files: u64,
    pub bytes: u64,
    pub archives: u64,
    pub blobs: u64,
    pub commits: u64,
    pub skipped: u64,
    pub errors: u64,
    pub findings: u64,
    pub suppressed: u64,
    pub rules: u64,
    pub seconds: f64,
}
