//! Inventory records: the machine identities of each platform and the credentials they hold.
//!
//! Importers and connectors produce these; the store keeps them with their history. Times are
//! RFC 3339 UTC strings (`2024-05-01T12:00:00Z`), already normalised by whoever made the
//! record, so every platform's date format is dealt with once, at the edge.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
                $name::ALL.iter().copied().find(|v| v.as_str() == wanted).ok_or_else(|| {
                    let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} {s:?} (known: {})", stringify!($name), known.join(", "))
                })
            }
        }
    };
}

text_enum!(
    /// What kind of non-human (or, for personal tokens, human) principal holds credentials.
    IdentityKind {
        ServiceAccount = "service_account",
        Integration = "integration",
        Bot = "bot",
        OauthClient = "oauth_client",
        IamUser = "iam_user",
        IamRole = "iam_role",
        User = "user",
    }
);

text_enum!(
    CredentialKind {
        ApiToken = "api_token",
        PersonalAccessToken = "personal_access_token",
        OauthGrant = "oauth_grant",
        AccessKey = "access_key",
        DeployKey = "deploy_key",
        WebhookSecret = "webhook_secret",
        ClientSecret = "client_secret",
        /// A role's trust policy letting another account assume it: what a vendor holds
        /// when it reaches AWS through a cross-account role.
        RoleTrust = "role_trust",
        /// A user's SSH key (as authorized for an organisation's SAML single sign-on); a
        /// repository's own key is a `deploy_key`.
        SshKey = "ssh_key",
        /// A password kept for an account by a vault (Okta Privileged Access app service
        /// accounts).
        Password = "password",
    }
);

text_enum!(
    /// What a credential can do, normalised across platforms; `Unknown` when the platform
    /// does not say.
    Privilege {
        Unknown = "unknown",
        Read = "read",
        Write = "write",
        Admin = "admin",
    }
);

text_enum!(
    CredentialStatus {
        Active = "active",
        Inactive = "inactive",
        /// Requested but not yet approved (GitHub fine-grained token requests).
        Pending = "pending",
        Revoked = "revoked",
        Deleted = "deleted",
    }
);

/// A principal on one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub platform: String,
    /// The platform's own id: an ARN, a numeric id, an email.
    pub external_id: String,
    pub kind: IdentityKind,
    pub name: String,
    /// The person who created it or answers for it, when the platform says.
    pub owner: Option<String>,
}

/// A credential on one platform. Never holds a secret: only what the platform shows about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub platform: String,
    pub external_id: String,
    pub kind: CredentialKind,
    pub name: String,
    /// `external_id` of the identity it belongs to.
    pub identity: Option<String>,
    pub owner: Option<String>,
    /// Scopes or permissions as the platform names them.
    pub scopes: Vec<String>,
    pub privilege: Privilege,
    pub created: Option<String>,
    pub expires: Option<String>,
    pub last_rotated: Option<String>,
    /// Last use as the platform reports it.
    pub last_used: Option<String>,
    pub status: CredentialStatus,
    /// A non-reversible handle the platform exposes: an AWS access key id, a GitHub
    /// `hashed_token`, a token prefix.
    pub fingerprint: Option<String>,
    /// What another export would call the same credential when it cannot name it by
    /// `external_id` (the AWS credential report's key slots against `list-access-keys`' key
    /// ids): records of one platform with equal match keys are merged into one credential,
    /// the one with a `fingerprint` (the platform's own handle) being canonical.
    #[serde(default)]
    pub match_key: Option<String>,
}

/// What one import or sync read: its records and the set they are complete for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryBatch {
    /// What produced it: `aws:credential-report`, `github:installations`...
    pub source: String,
    /// The set of credentials this batch lists in full (`aws:123456789012:access-keys`), or
    /// `None` when it is only part of one (a single page): only a complete batch can say
    /// that a credential it no longer lists has disappeared.
    pub complete_scope: Option<String>,
    pub identities: Vec<Identity>,
    pub credentials: Vec<Credential>,
}
