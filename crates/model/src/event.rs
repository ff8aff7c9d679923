//! One audit-log record of any platform, normalised: who (identity and credential) did what
//! (action on a resource), from where (source IP, user agent), with which outcome, and where
//! the raw record is.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

/// What an action means for security, as the reader that knows the platform's vocabulary
/// classifies it. Detectors decide what to make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// More power or a new way in: added to an admin group, policy attached, new key, new
    /// OAuth grant, new user or role.
    PrivilegeChange,
    /// A stored secret read or listed (`GetSecretValue`, `ListSecrets`, a vault read).
    SecretRead,
    /// Audit logging, flow logs or guardrails weakened.
    DefenceEvasion,
    /// Data or access handed beyond the organisation: snapshot sharing, public bucket
    /// policies, opened firewalls, a repository made public.
    ExposureChange,
    /// An interactive sign-in with a password and no second factor (a console login without
    /// MFA): a person, or someone with a stolen password, behind the identity.
    LoginWithoutMfa,
    /// A credential revoked, deleted or deactivated; `Event::resource` is that credential's id
    /// as other events name it (access key id, token id, hashed token, client id).
    Revocation,
}

impl Category {
    /// The name it is serialised and stored under.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::PrivilegeChange => "privilege_change",
            Category::SecretRead => "secret_read",
            Category::DefenceEvasion => "defence_evasion",
            Category::ExposureChange => "exposure_change",
            Category::LoginWithoutMfa => "login_without_mfa",
            Category::Revocation => "revocation",
        }
    }
}

/// Where an event came from: the file and its line (1-based) or record number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawRef {
    pub file: String,
    /// Line of a JSON-lines file; 0 for a record inside one JSON document.
    pub line: u64,
    /// Position of the record in its file, from 1.
    pub record: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Unix seconds, UTC.
    pub time: i64,
    pub platform: String,
    /// The platform's id of the record (`eventID`, `uuid`), when it has one.
    pub event_id: Option<String>,
    /// Who acted: an ARN, a login, an email.
    pub identity: Option<String>,
    /// The credential used: an access key id (`AKIA…` long-term, `ASIA…` session), a token id,
    /// a GitHub `hashed_token`.
    pub credential: Option<String>,
    /// For session credentials: the role session they belong to
    /// (`arn:aws:sts::123456789012:assumed-role/ROLE/SESSION`).
    pub session: Option<String>,
    /// The caller's IP address; `None` when the platform names a service instead.
    pub source_ip: Option<String>,
    /// A service acting for the caller (`ec2.amazonaws.com`, `AWS Internal`).
    pub via_service: Option<String>,
    pub user_agent: Option<String>,
    /// `service:Operation` (`iam.amazonaws.com:CreateAccessKey`), or the platform's action name.
    pub action: String,
    /// The main resource acted on, when the record names one.
    pub resource: Option<String>,
    pub outcome: Outcome,
    /// The error code of a failed call (`AccessDenied`).
    pub error: Option<String>,
    pub read_only: Option<bool>,
    pub category: Option<Category>,
    pub raw: RawRef,
}
