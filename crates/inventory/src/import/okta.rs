//! Okta: `GET /api/v1/api-tokens`, `GET /api/v1/apps` and the Okta Privileged Access app
//! service accounts (`GET /privileged-access/api/v1/service-accounts`).
//!
//! Shapes as documented in the Okta Management API reference
//! (developer.okta.com/docs/api/openapi/okta-management/management/tag/Application/ for apps,
//! .../tags/serviceaccount/other/listappserviceaccounts for service accounts).

use super::{empty_batch, records, Record};
use anyhow::{bail, Result};
use keywatch_model::inventory::{
    Credential, CredentialKind, CredentialStatus, Identity, IdentityKind, InventoryBatch, Privilege,
};
use keywatch_model::time::{parse_rfc3339, rfc3339_utc};
use serde_json::Value;

/// API tokens (SSWS): one per record. A token acts with every permission of the admin who
/// made it, so its scope is that user. Okta does not list a last use, but it moves
/// `expiresAt` to `last use + tokenWindow` each time the token is used, so the last use is
/// `expiresAt - tokenWindow` when that falls after creation.
pub(super) fn api_tokens(pages: &[Value], org: Option<&str>) -> Result<InventoryBatch> {
    let mut batch = empty_batch("okta:api-tokens");
    batch.complete_scope = org.map(|o| format!("okta:{o}:api-tokens"));
    for (index, value) in records(pages, None)?.iter().enumerate() {
        let r = Record::new(value, index + 1)?;
        let id = r.required_id("id")?;
        let user = r.required_str("userId")?;
        let created = r.optional_time("created")?;
        let expires = r.optional_time("expiresAt")?;
        let window = match r.optional_str("tokenWindow")? {
            None => None,
            Some(w) => Some(duration_secs(w).ok_or_else(|| {
                anyhow::anyhow!("record {}: tokenWindow {w:?} is not an ISO 8601 duration", index + 1)
            })?),
        };
        let last_used = match (&expires, window, &created) {
            (Some(e), Some(w), Some(c)) => {
                let (e, c) = (parse_rfc3339(e).unwrap_or(0), parse_rfc3339(c).unwrap_or(0));
                // Within a minute of creation is the creation itself, not a use.
                (e - w > c + 60).then(|| rfc3339_utc(e - w))
            }
            _ => None,
        };
        if !batch.identities.iter().any(|i| i.external_id == user) {
            batch.identities.push(Identity {
                platform: "okta".into(),
                external_id: user.to_string(),
                kind: IdentityKind::User,
                name: user.to_string(),
                owner: Some(user.to_string()),
            });
        }
        let mut scopes = vec![format!("every API user {user} may call")];
        if let Some(connection) = value.get("network").and_then(|n| n.get("connection")).and_then(Value::as_str) {
            scopes.push(format!("network:{}", connection.to_ascii_lowercase()));
        }
        batch.credentials.push(Credential {
            platform: "okta".into(),
            external_id: id.clone(),
            kind: CredentialKind::ApiToken,
            name: r.optional_str("name")?.unwrap_or("(unnamed token)").to_string(),
            identity: Some(user.to_string()),
            owner: Some(user.to_string()),
            scopes,
            // Only administrators can make API tokens, but a read-only administrator's token
            // can only read: the level is the user's, which this export does not show.
            privilege: Privilege::Unknown,
            created,
            expires,
            last_rotated: None,
            last_used,
            status: CredentialStatus::Active,
            fingerprint: Some(id),
            match_key: None,
        });
    }
    Ok(batch)
}

/// `GET /api/v1/apps`: every app integration of the org. Each app is an identity: an
/// `oauth_client` when it signs in with OpenID Connect (its `credentials.oauthClient`), an
/// `integration` otherwise (SAML, SWA, bookmarks...), named by its `label` with the app's
/// catalogue `name` (`slack`, `zscalerbyz`) kept as an `app:NAME` scope. An OAuth client that
/// authenticates to the token endpoint (any `token_endpoint_auth_method` but `none`) holds a
/// client credential: a `client_secret` whose id is the `client_id`. Okta may include the
/// `client_secret` itself in the app: it is never read.
pub(super) fn apps(pages: &[Value], org: Option<&str>) -> Result<InventoryBatch> {
    let mut batch = empty_batch("okta:apps");
    batch.complete_scope = org.map(|o| format!("okta:{o}:apps"));
    for (index, value) in records(pages, None)?.iter().enumerate() {
        let record = index + 1;
        let r = Record::new(value, record)?;
        let id = r.required_id("id")?;
        let label = r.required_str("label")?;
        let name = r.optional_str("name")?;
        let sign_on = r.required_str("signOnMode")?;
        const SIGN_ON_MODES: &[&str] = &[
            "AUTO_LOGIN",
            "BASIC_AUTH",
            "BOOKMARK",
            "BROWSER_PLUGIN",
            "OPENID_CONNECT",
            "SAML_1_1",
            "SAML_2_0",
            "SECURE_PASSWORD_STORE",
            "WS_FEDERATION",
            "MFA_AS_SERVICE",
        ];
        if !SIGN_ON_MODES.contains(&sign_on) {
            bail!("record {record}: unknown signOnMode {sign_on:?}");
        }
        let status = match r.required_str("status")? {
            "ACTIVE" => CredentialStatus::Active,
            "INACTIVE" => CredentialStatus::Inactive,
            "DELETED" => CredentialStatus::Deleted,
            other => bail!("record {record}: unknown status {other:?} (known: ACTIVE, INACTIVE, DELETED)"),
        };
        let oauth = value.get("credentials").and_then(|c| c.get("oauthClient")).filter(|o| !o.is_null());
        let settings = value.get("settings").and_then(|s| s.get("oauthClient")).filter(|o| !o.is_null());
        let identity = format!("app/{id}");
        batch.identities.push(Identity {
            platform: "okta".into(),
            external_id: identity.clone(),
            kind: if oauth.is_some() || sign_on == "OPENID_CONNECT" {
                IdentityKind::OauthClient
            } else {
                IdentityKind::Integration
            },
            name: label.to_string(),
            owner: None,
        });
        let Some(oauth) = oauth else { continue };
        if !oauth.is_object() {
            bail!("record {record}: \"credentials.oauthClient\" is not an object");
        }
        let text = |v: Option<&Value>, key: &str| -> Result<Option<String>> {
            match v.and_then(|v| v.get(key)) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => bail!("record {record}: \"{key}\" is not text"),
            }
        };
        let Some(client_id) = text(Some(oauth), "client_id")?.filter(|c| !c.is_empty()) else {
            bail!("record {record}: missing \"credentials.oauthClient.client_id\"");
        };
        let auth_method = text(Some(oauth), "token_endpoint_auth_method")?;
        const AUTH_METHODS: &[&str] =
            &["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"];
        if let Some(method) = auth_method.as_deref().filter(|m| !AUTH_METHODS.contains(m)) {
            bail!("record {record}: unknown token_endpoint_auth_method {method:?}");
        }
        // A public client (PKCE, no secret) holds nothing to leak.
        if auth_method.as_deref() == Some("none") {
            continue;
        }
        let mut scopes: Vec<String> = name.map(|n| format!("app:{n}")).into_iter().collect();
        if let Some(kind) = text(settings, "application_type")? {
            scopes.push(format!("application_type:{kind}"));
        }
        if let Some(grants) = settings.and_then(|s| s.get("grant_types")).filter(|g| !g.is_null()) {
            let Some(grants) = grants.as_array() else { bail!("record {record}: \"grant_types\" is not a list") };
            for grant in grants {
                let Some(grant) = grant.as_str() else { bail!("record {record}: a grant type is not text") };
                scopes.push(format!("grant:{grant}"));
            }
        }
        if let Some(method) = &auth_method {
            scopes.push(format!("auth:{method}"));
        }
        let what = if auth_method.as_deref() == Some("private_key_jwt") { "client key" } else { "client secret" };
        let app_name = match name {
            Some(n) if n != label => format!("{label} ({n})"),
            _ => label.to_string(),
        };
        batch.credentials.push(Credential {
            platform: "okta".into(),
            external_id: client_id.clone(),
            kind: CredentialKind::ClientSecret,
            name: format!("{app_name} {what}"),
            identity: Some(identity),
            owner: None,
            scopes,
            // What the client may do is in the grants of its authorization servers and, for
            // Okta's own API, its `okta.*` scope grants: neither is in the app.
            privilege: Privilege::Unknown,
            created: r.optional_time("created")?,
            expires: None,
            last_rotated: None,
            last_used: None,
            status,
            fingerprint: Some(client_id),
            match_key: None,
        });
    }
    Ok(batch)
}

/// `GET /privileged-access/api/v1/service-accounts` (Okta Privileged Access): accounts in
/// other apps (a Salesforce integration user...) whose password Okta vaults and rotates.
/// Each is a `service_account` identity holding a `password` credential; the `password` field
/// the API may carry is never read. The credential's state follows `statusDetail`; `status`
/// (the account's health) is kept as a `health:...` scope.
pub(super) fn service_accounts(pages: &[Value], org: Option<&str>) -> Result<InventoryBatch> {
    let mut batch = empty_batch("okta:service-accounts");
    batch.complete_scope = org.map(|o| format!("okta:{o}:service-accounts"));
    for (index, value) in records(pages, None)?.iter().enumerate() {
        let record = index + 1;
        let r = Record::new(value, record)?;
        let id = r.required_id("id")?;
        let name = r.required_str("name")?;
        let username = r.required_str("username")?;
        let container = r.required_str("containerOrn")?;
        let app = r.optional_str("containerGlobalName")?;
        let instance = r.optional_str("containerInstanceName")?;
        let health = match r.optional_str("status")? {
            None => None,
            Some(s @ ("ALERT" | "ERROR" | "INFO" | "NO_ISSUES" | "UNSECURED")) => Some(s.to_ascii_lowercase()),
            Some(other) => {
                bail!("record {record}: unknown status {other:?} (known: ALERT, ERROR, INFO, NO_ISSUES, UNSECURED)")
            }
        };
        let status = match r.optional_str("statusDetail")? {
            None | Some("VAULTED" | "ROTATED" | "ROTATING" | "ROTATION_FAILED" | "UNMANAGED") => {
                CredentialStatus::Active
            }
            Some("STAGED" | "PENDING") => CredentialStatus::Pending,
            // No password Okta knows of: nothing that works is held.
            Some("CREATION_FAILED" | "MISSING_PASSWORD") => CredentialStatus::Inactive,
            Some(other) => bail!(
                "record {record}: unknown statusDetail {other:?} (known: CREATION_FAILED, MISSING_PASSWORD, PENDING, \
                 ROTATED, ROTATING, ROTATION_FAILED, STAGED, UNMANAGED, VAULTED)"
            ),
        };
        let (users, groups) = (r.optional_text_list("ownerUserIds")?, r.optional_text_list("ownerGroupIds")?);
        let owner = users.first().cloned().or_else(|| groups.first().map(|g| format!("group:{g}")));
        let identity = format!("service-account/{id}");
        batch.identities.push(Identity {
            platform: "okta".into(),
            external_id: identity.clone(),
            kind: IdentityKind::ServiceAccount,
            name: name.to_string(),
            owner: owner.clone(),
        });
        let mut scopes: Vec<String> = app.map(|a| format!("app:{a}")).into_iter().collect();
        scopes.push(format!("app_instance:{container}"));
        scopes.push(format!("account:{username}"));
        scopes.extend(health.map(|h| format!("health:{h}")));
        let place = instance.or(app).unwrap_or(container);
        batch.credentials.push(Credential {
            platform: "okta".into(),
            external_id: format!("{identity}/password"),
            kind: CredentialKind::Password,
            name: format!("{name} password ({username} in {place})"),
            identity: Some(identity),
            owner,
            scopes,
            // The account's rights are the app's business.
            privilege: Privilege::Unknown,
            created: r.optional_time("created")?,
            expires: None,
            last_rotated: None,
            last_used: None,
            status,
            fingerprint: None,
            match_key: None,
        });
    }
    Ok(batch)
}

/// `P30D`, `PT12H`, `P1DT30M`, `P2W` in seconds (no years or months: their length varies).
fn duration_secs(text: &str) -> Option<i64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0i64;
    let mut add = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
            } else {
                let scale = units.iter().find(|(u, _)| *u == c)?.1;
                total += number.parse::<i64>().ok()?.checked_mul(scale)?;
                number.clear();
            }
        }
        number.is_empty().then_some(())
    };
    add(date, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        add(t, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    (rest != "T" && !rest.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::duration_secs;

    #[test]
    fn iso_durations() {
        assert_eq!(duration_secs("P30D"), Some(30 * 86_400));
        assert_eq!(duration_secs("PT12H"), Some(12 * 3_600));
        assert_eq!(duration_secs("P1DT30M"), Some(86_400 + 1_800));
        assert_eq!(duration_secs("P2W"), Some(2 * 604_800));
        for bad in ["", "P", "30D", "P1Y", "PT", "P3X", "P1DT"] {
            assert_eq!(duration_secs(bad), None, "{bad}");
        }
    }
}
