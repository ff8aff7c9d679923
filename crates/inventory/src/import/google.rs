//! Google Workspace: the Directory API's `tokens.list` (the OAuth grants one user gave to
//! third-party apps).

use super::{empty_batch, records, Record};
use anyhow::Result;
use keywatch_model::inventory::{
    Credential, CredentialKind, CredentialStatus, Identity, IdentityKind, InventoryBatch, Privilege,
};
use serde_json::Value;

/// `GET admin/directory/v1/users/{userKey}/tokens`: `{"kind": "admin#directory#tokenList",
/// "items": [...]}`. Each grant is an `oauth_grant` of the app's OAuth client (the
/// identity a vendor holds) on behalf of the user.
pub(super) fn tokens(pages: &[Value]) -> Result<InventoryBatch> {
    let mut batch = empty_batch("google_workspace:tokens");
    let mut users: Vec<String> = Vec::new();
    for (index, value) in records(pages, Some("items"))?.iter().enumerate() {
        let r = Record::new(value, index + 1)?;
        let client = r.required_str("clientId")?;
        let user = r.required_str("userKey")?;
        let app = r.optional_str("displayText")?.unwrap_or(client);
        let scopes = r.optional_text_list("scopes")?;
        let privilege = scopes.iter().map(|s| scope_privilege(s)).max().unwrap_or(Privilege::Unknown);
        if !users.iter().any(|u| u == user) {
            users.push(user.to_string());
        }
        if !batch.identities.iter().any(|i| i.external_id == client) {
            batch.identities.push(Identity {
                platform: "google_workspace".into(),
                external_id: client.to_string(),
                kind: IdentityKind::OauthClient,
                name: app.to_string(),
                owner: None,
            });
        }
        batch.credentials.push(Credential {
            platform: "google_workspace".into(),
            external_id: format!("{user}/{client}"),
            kind: CredentialKind::OauthGrant,
            name: format!("{app} for user {user}"),
            identity: Some(client.to_string()),
            owner: Some(user.to_string()),
            scopes,
            privilege,
            created: None,
            expires: None,
            last_rotated: None,
            last_used: None,
            status: CredentialStatus::Active,
            fingerprint: None,
            match_key: None,
        });
    }
    if users.len() == 1 {
        batch.complete_scope = Some(format!("google_workspace:{}:tokens", users[0]));
    }
    Ok(batch)
}

/// What one Google OAuth scope allows: admin APIs and full mail or cloud access are admin,
/// `.readonly` scopes read, the rest write; sign-in scopes (`openid`, `email`, `profile`)
/// only identify the user.
fn scope_privilege(scope: &str) -> Privilege {
    let name = scope.trim_start_matches("https://www.googleapis.com/auth/");
    if matches!(name, "openid" | "email" | "profile" | "userinfo.email" | "userinfo.profile") {
        Privilege::Read
    } else if name.starts_with("admin.") && !name.ends_with(".readonly")
        || scope == "https://mail.google.com/"
        || name == "cloud-platform"
    {
        Privilege::Admin
    } else if name.ends_with(".readonly") || name.contains(".readonly.") {
        Privilege::Read
    } else {
        Privilege::Write
    }
}
