//! Atlassian Cloud organisations: the admin API's "API access" collection
//! (`https://api.atlassian.com/admin/api-access/v1`), as documented at
//! developer.atlassian.com/cloud/admin/api-access/rest/ (groups `api-group-api-token`,
//! `api-group-service-account`, `api-group-oauth-client`).
//!
//! - `GET /orgs/{orgId}/api-tokens`: every user API token of the org's managed accounts,
//!   `{"data": [...], "links": {"self", "next", "prev"}}` per page.
//! - `GET /orgs/{orgId}/service-accounts` (experimental): `{"items": [...], "links": {...},
//!   "total": N}`; identities only, their credentials are listed by the other two.
//! - `GET /orgs/{orgId}/oauth-clients`: the OAuth 2.0 client credentials of the org's service
//!   accounts, `{"data": [...], "links": {...}}`.
//!
//! The org id is not in every record: it comes from the users' `orgId` or the `links.self` of
//! a page. A list is complete only when the org is known and the last page has no
//! `links.next`.

use super::{empty_batch, records, Record};
use anyhow::{bail, Result};
use keywatch_model::inventory::{
    Credential, CredentialKind, CredentialStatus, Identity, IdentityKind, InventoryBatch, Privilege,
};
use keywatch_model::time::rfc3339_utc;
use serde_json::Value;

/// `GET /orgs/{orgId}/api-tokens`. A user API token acts with every permission of its user
/// in every product; its value is never listed. `status` is documented only as `ALLOWED`.
pub(super) fn api_tokens(pages: &[Value]) -> Result<InventoryBatch> {
    let mut batch = empty_batch("atlassian:api-tokens");
    let mut orgs: Vec<String> = pages.iter().filter_map(org_of_page).collect();
    for (index, value) in records(pages, Some("data"))?.iter().enumerate() {
        let record = index + 1;
        let r = Record::new(value, record)?;
        let id = r.required_id("id")?;
        let Some(user) = value.get("user").filter(|u| u.is_object()) else {
            bail!("record {record}: missing \"user\"");
        };
        let u = Record::new(user, record)?;
        let user_id = u.required_id("id").map_err(|e| anyhow::anyhow!("{e} (in \"user\")"))?;
        let email = u.optional_str("email")?;
        let user_name = u.optional_str("name")?;
        if let Some(org) = u.optional_str("orgId")? {
            orgs.push(org.to_string());
        }
        let status = match r.required_str("status")? {
            "ALLOWED" => CredentialStatus::Active,
            other => bail!("record {record}: unknown status {other:?} (documented: ALLOWED)"),
        };
        let mut scopes: Vec<String> = r.optional_text_list("scopes")?;
        scopes.sort();
        // Without scopes the token is the user's password for the APIs: all they can do.
        let privilege = if scopes.is_empty() {
            Privilege::Unknown
        } else {
            scopes.iter().map(|s| scope_privilege(s)).max().unwrap_or(Privilege::Unknown)
        };
        let owner = email.or(user_name).unwrap_or(&user_id).to_string();
        if !batch.identities.iter().any(|i| i.external_id == user_id) {
            batch.identities.push(Identity {
                platform: "atlassian".into(),
                external_id: user_id.clone(),
                kind: IdentityKind::User,
                name: user_name.or(email).unwrap_or(&user_id).to_string(),
                owner: Some(owner.clone()),
            });
        }
        batch.credentials.push(Credential {
            platform: "atlassian".into(),
            external_id: format!("api-token/{id}"),
            kind: CredentialKind::ApiToken,
            name: r.optional_str("label")?.filter(|l| !l.is_empty()).unwrap_or("(unlabelled token)").to_string(),
            identity: Some(user_id),
            owner: Some(owner),
            scopes,
            privilege,
            created: r.optional_time("createdAt")?,
            expires: r.optional_time("expiresAt")?,
            last_rotated: None,
            last_used: r.optional_time("lastActiveAt")?,
            status,
            fingerprint: None,
            match_key: None,
        });
    }
    batch.complete_scope = complete(pages, &orgs, "api-tokens");
    Ok(batch)
}

/// `GET /orgs/{orgId}/service-accounts`: service accounts as `service_account` identities
/// (their `id`, named by `displayName`, answered for by `createdById`). The list holds no
/// credentials, so it claims no completeness.
pub(super) fn service_accounts(pages: &[Value]) -> Result<InventoryBatch> {
    let mut batch = empty_batch("atlassian:service-accounts");
    for (index, value) in records(pages, Some("items"))?.iter().enumerate() {
        let record = index + 1;
        let r = Record::new(value, record)?;
        let id = r.required_id("id")?;
        let name = r.optional_str("displayName")?.or(r.optional_str("email")?).unwrap_or(&id).to_string();
        // `updatedAt` is epoch milliseconds; read to reject a malformed record, not kept (an
        // identity has no times).
        millis(value, "updatedAt", record)?;
        if !batch.identities.iter().any(|i| i.external_id == id) {
            batch.identities.push(Identity {
                platform: "atlassian".into(),
                external_id: id,
                kind: IdentityKind::ServiceAccount,
                name,
                owner: r.optional_str("createdById")?.map(str::to_string),
            });
        }
    }
    Ok(batch)
}

/// `GET /orgs/{orgId}/oauth-clients`: OAuth 2.0 client credentials (client id and secret)
/// made for service accounts. Each is an `oauth_client` identity holding a `client_secret`
/// whose id is the `clientId`; the secret is shown once at creation and never listed.
/// `status` is documented only as `ACTIVE`.
pub(super) fn oauth_clients(pages: &[Value]) -> Result<InventoryBatch> {
    let mut batch = empty_batch("atlassian:oauth-clients");
    let orgs: Vec<String> = pages.iter().filter_map(org_of_page).collect();
    for (index, value) in records(pages, Some("data"))?.iter().enumerate() {
        let record = index + 1;
        let r = Record::new(value, record)?;
        let client_id = r.required_id("clientId")?;
        let name = r.optional_str("name")?.filter(|n| !n.is_empty()).unwrap_or(&client_id).to_string();
        let status = match r.required_str("status")? {
            "ACTIVE" => CredentialStatus::Active,
            other => bail!("record {record}: unknown status {other:?} (documented: ACTIVE)"),
        };
        let created = millis(value, "createdAt", record)?;
        millis(value, "updatedAt", record)?;
        let identity = format!("oauth-client/{client_id}");
        batch.identities.push(Identity {
            platform: "atlassian".into(),
            external_id: identity.clone(),
            kind: IdentityKind::OauthClient,
            name: name.clone(),
            owner: None,
        });
        batch.credentials.push(Credential {
            platform: "atlassian".into(),
            external_id: client_id.clone(),
            kind: CredentialKind::ClientSecret,
            name: format!("{name} client secret"),
            identity: Some(identity),
            owner: None,
            scopes: Vec::new(),
            // Its scopes were chosen at creation; the list does not show them.
            privilege: Privilege::Unknown,
            created,
            expires: None,
            last_rotated: None,
            last_used: None,
            status,
            fingerprint: Some(client_id),
            match_key: None,
        });
    }
    batch.complete_scope = complete(pages, &orgs, "oauth-clients");
    Ok(batch)
}

/// An epoch-milliseconds field (`1763149545609`) as RFC 3339 UTC.
fn millis(value: &Value, key: &str, record: usize) -> Result<Option<String>> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ms) if ms >= 0 => Ok(Some(rfc3339_utc(ms / 1000))),
            _ => bail!("record {record}: \"{key}\" is not a time in milliseconds: {n}"),
        },
        Some(_) => bail!("record {record}: \"{key}\" is not a time in milliseconds"),
    }
}

/// The org id in a page's `links.self` (`.../admin/api-access/v1/orgs/{orgId}/...`).
fn org_of_page(page: &Value) -> Option<String> {
    let link = page.get("links")?.get("self")?.as_str()?;
    let rest = link.split("/orgs/").nth(1)?;
    let org = rest.split(['/', '?', '#']).next()?;
    (!org.is_empty()).then(|| org.to_string())
}

/// `atlassian:{org}:{what}` when every record and page named the same org and the last page
/// points to no next one.
fn complete(pages: &[Value], orgs: &[String], what: &str) -> Option<String> {
    let org = orgs.first()?;
    if orgs.iter().any(|o| o != org) {
        return None;
    }
    let next = pages.last()?.get("links").and_then(|l| l.get("next"));
    let more = next.and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    (!more).then(|| format!("atlassian:{org}:{what}"))
}

/// Atlassian scopes (`read:jira-work`, `write:confluence-content`, `manage:jira-configuration`,
/// `delete:...`, `*:admin`): admin for `manage:`/`admin` ones, write for `write:`/`delete:`,
/// read for `read:`.
fn scope_privilege(scope: &str) -> Privilege {
    if scope.starts_with("manage:") || scope.contains("admin") {
        Privilege::Admin
    } else if scope.starts_with("write:") || scope.starts_with("delete:") {
        Privilege::Write
    } else if scope.starts_with("read:") {
        Privilege::Read
    } else {
        Privilege::Unknown
    }
}
