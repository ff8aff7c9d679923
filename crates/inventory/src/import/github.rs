//! GitHub organisation inventory: app installations, fine-grained personal access tokens
//! granted to the organisation, and repository deploy keys.

use super::{empty_batch, records, ImportContext, Record};
use anyhow::{bail, Result};
use keywatch_model::inventory::{
    Credential, CredentialKind, CredentialStatus, Identity, IdentityKind, InventoryBatch, Privilege,
};
use serde_json::Value;

/// Permissions that control the organisation or its members: write on one of these is admin.
const ADMIN_PERMISSIONS: &[&str] = &[
    "administration",
    "organization_administration",
    "members",
    "organization_secrets",
    "secrets",
    "organization_user_blocking",
    "organization_custom_roles",
    "organization_self_hosted_runners",
];

/// `{"contents": "write", ...}` as sorted `name:level` scopes and a privilege level.
fn permissions(map: Option<&Value>, prefix: &str, scopes: &mut Vec<String>, privilege: &mut Privilege) -> Result<()> {
    let Some(map) = map.filter(|v| !v.is_null()) else { return Ok(()) };
    let Some(map) = map.as_object() else { bail!("permissions are not an object") };
    for (name, level) in map {
        let Some(level) = level.as_str() else { bail!("permission {name:?} has no level") };
        let this = match level {
            "read" => Privilege::Read,
            "write" if ADMIN_PERMISSIONS.contains(&name.as_str()) => Privilege::Admin,
            "write" => Privilege::Write,
            "admin" => Privilege::Admin,
            other => bail!("permission {name:?} has an unknown level {other:?}"),
        };
        *privilege = (*privilege).max(this);
        scopes.push(format!("{prefix}{name}:{level}"));
    }
    scopes.sort();
    Ok(())
}

/// `GET /orgs/{org}/installations`: `{"total_count": N, "installations": [...]}` per page.
/// Each installation is an integration identity; what it was granted is its credential.
pub(super) fn installations(pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    let mut out = empty_batch("github:installations");
    let mut org: Option<String> = ctx.github_owner.clone();
    let list = records(pages, Some("installations"))?;
    for (index, value) in list.iter().enumerate() {
        let r = Record::new(value, index + 1)?;
        let id = r.required_id("id")?;
        let slug = r.required_str("app_slug")?;
        let account = value.get("account").and_then(|a| a.get("login")).and_then(Value::as_str);
        if org.is_none() {
            org = account.map(str::to_string);
        }
        let mut scopes = Vec::new();
        let mut privilege = Privilege::Unknown;
        permissions(value.get("permissions"), "", &mut scopes, &mut privilege)
            .map_err(|e| anyhow::anyhow!("record {}: {e}", index + 1))?;
        if let Some(selection) = r.optional_str("repository_selection")? {
            scopes.push(format!("repositories:{selection}"));
        }
        let status = if r.optional_str("suspended_at")?.is_some() {
            CredentialStatus::Inactive
        } else {
            CredentialStatus::Active
        };
        let identity = format!("installation/{id}");
        out.identities.push(Identity {
            platform: "github".into(),
            external_id: identity.clone(),
            kind: IdentityKind::Integration,
            name: slug.to_string(),
            owner: None,
        });
        out.credentials.push(Credential {
            platform: "github".into(),
            external_id: format!("installation/{id}/grant"),
            kind: CredentialKind::OauthGrant,
            name: format!("{slug} app installation"),
            identity: Some(identity),
            owner: None,
            scopes,
            privilege,
            created: r.optional_time("created_at")?,
            expires: None,
            last_rotated: None,
            last_used: None,
            status,
            fingerprint: None,
        });
    }
    let declared: Option<u64> = pages.first().and_then(|p| p.get("total_count")).and_then(Value::as_u64);
    if let (Some(org), Some(total)) = (org, declared) {
        // Only when every page is here can a missing installation mean an uninstalled one.
        if total as usize == out.credentials.len() {
            out.complete_scope = Some(format!("github:{org}:installations"));
        }
    }
    Ok(out)
}

/// `GET /orgs/{org}/personal-access-tokens`: fine-grained tokens with access to the org.
pub(super) fn personal_access_tokens(pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    let mut out = empty_batch("github:personal-access-tokens");
    for (index, value) in records(pages, None)?.iter().enumerate() {
        let r = Record::new(value, index + 1)?;
        let grant_id = r.required_id("id")?;
        let token_id = match value.get("token_id") {
            Some(Value::Number(n)) => n.to_string(),
            _ => grant_id.clone(),
        };
        let login = value
            .get("owner")
            .and_then(|o| o.get("login"))
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow::anyhow!("record {}: missing \"owner.login\"", index + 1))?;
        let mut scopes = Vec::new();
        let mut privilege = Privilege::Unknown;
        if let Some(perms) = value.get("permissions").filter(|p| !p.is_null()) {
            for group in ["organization", "repository", "other"] {
                permissions(perms.get(group), &format!("{group}/"), &mut scopes, &mut privilege)
                    .map_err(|e| anyhow::anyhow!("record {}: {e}", index + 1))?;
            }
        }
        if let Some(selection) = r.optional_str("repository_selection")? {
            scopes.push(format!("repositories:{selection}"));
        }
        let status = if r.optional_bool("token_expired")? == Some(true) {
            CredentialStatus::Inactive
        } else {
            CredentialStatus::Active
        };
        let identity = format!("user/{login}");
        out.identities.push(Identity {
            platform: "github".into(),
            external_id: identity.clone(),
            kind: IdentityKind::User,
            name: login.to_string(),
            owner: Some(login.to_string()),
        });
        out.credentials.push(Credential {
            platform: "github".into(),
            external_id: format!("fine-grained-pat/{token_id}"),
            kind: CredentialKind::PersonalAccessToken,
            name: r.optional_str("token_name")?.unwrap_or("(unnamed token)").to_string(),
            identity: Some(identity),
            owner: Some(login.to_string()),
            scopes,
            privilege,
            created: r.optional_time("access_granted_at")?,
            expires: r.optional_time("token_expires_at")?,
            last_rotated: None,
            last_used: r.optional_time("token_last_used_at")?,
            status,
            fingerprint: None,
        });
    }
    out.identities.dedup_by(|a, b| a.external_id == b.external_id);
    if let Some(org) = &ctx.github_owner {
        out.complete_scope = Some(format!("github:{org}:personal-access-tokens"));
    }
    Ok(out)
}

/// `GET /repos/{owner}/{repo}/keys`: deploy keys. The repository comes from `--owner` or
/// from each key's `url`.
pub(super) fn deploy_keys(pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    let mut out = empty_batch("github:deploy-keys");
    let mut repos: Vec<String> = Vec::new();
    for (index, value) in records(pages, None)?.iter().enumerate() {
        let r = Record::new(value, index + 1)?;
        let id = r.required_id("id")?;
        let key = r.required_str("key")?;
        let repo = match (&ctx.github_owner, r.optional_str("url")?.and_then(repo_of_key_url)) {
            (_, Some(repo)) => repo,
            (Some(repo), None) => repo.clone(),
            (None, None) => {
                bail!("record {}: no \"url\" to tell the repository; give it with --owner OWNER/REPO", index + 1)
            }
        };
        if !repos.contains(&repo) {
            repos.push(repo.clone());
        }
        let read_only = r.optional_bool("read_only")?.unwrap_or(false);
        let enabled = r.optional_bool("enabled")?.unwrap_or(true);
        out.credentials.push(Credential {
            platform: "github".into(),
            external_id: format!("deploy-key/{id}"),
            kind: CredentialKind::DeployKey,
            name: r.optional_str("title")?.unwrap_or("(untitled deploy key)").to_string(),
            identity: Some(format!("repo/{repo}")),
            owner: r.optional_str("added_by")?.map(str::to_string),
            scopes: vec![format!("repository:{repo}:{}", if read_only { "read" } else { "write" })],
            privilege: if read_only { Privilege::Read } else { Privilege::Write },
            created: r.optional_time("created_at")?,
            expires: None,
            last_rotated: None,
            last_used: r.optional_time("last_used")?,
            status: if enabled { CredentialStatus::Active } else { CredentialStatus::Inactive },
            // The key's algorithm and the start of its public part: enough to recognise it.
            fingerprint: Some(key.split_whitespace().take(2).collect::<Vec<_>>().join(" ").chars().take(40).collect()),
        });
    }
    if repos.len() == 1 {
        out.complete_scope = Some(format!("github:{}:deploy-keys", repos[0]));
    }
    Ok(out)
}

/// `https://api.github.com/repos/OWNER/REPO/keys/ID` -> `OWNER/REPO`.
fn repo_of_key_url(url: &str) -> Option<String> {
    let rest = url.split("/repos/").nth(1)?;
    let mut parts = rest.split('/');
    let (owner, repo) = (parts.next()?, parts.next()?);
    (parts.next() == Some("keys") && !owner.is_empty() && !repo.is_empty()).then(|| format!("{owner}/{repo}"))
}

/// `GET /orgs/{org}/hooks`: organisation webhooks. The shared secret (shown masked) is a
/// `webhook_secret` credential held by whoever receives the deliveries, named by the
/// callback host, which is kept as a `callback:HOST` scope for attribution.
pub(super) fn org_webhooks(pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    let mut out = empty_batch("github:org-webhooks");
    for (index, value) in records(pages, None)?.iter().enumerate() {
        let r = Record::new(value, index + 1)?;
        let id = r.required_id("id")?;
        let config = value.get("config").filter(|c| c.is_object());
        let Some(config) = config else { bail!("record {}: missing \"config\"", index + 1) };
        let url = config.get("url").and_then(Value::as_str).unwrap_or("");
        let host = url.split("://").nth(1).and_then(|rest| rest.split(['/', '?', '#']).next()).unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host).split(':').next().unwrap_or(host);
        if host.is_empty() {
            bail!("record {}: config.url {url:?} has no host", index + 1);
        }
        let has_secret = config.get("secret").is_some_and(|s| !s.is_null());
        let events: Vec<String> = value
            .get("events")
            .and_then(Value::as_array)
            .map(|e| e.iter().filter_map(Value::as_str).map(|e| format!("event:{e}")).collect())
            .unwrap_or_default();
        let mut scopes = vec![format!("callback:{host}")];
        scopes.extend(events);
        if config.get("insecure_ssl").and_then(Value::as_str) == Some("1") {
            scopes.push("insecure_ssl".into());
        }
        let active = r.optional_bool("active")?.unwrap_or(true);
        out.credentials.push(Credential {
            platform: "github".into(),
            external_id: format!("org-webhook/{id}"),
            kind: CredentialKind::WebhookSecret,
            name: format!("webhook to {host}{}", if has_secret { "" } else { " (no secret)" }),
            identity: None,
            owner: None,
            scopes,
            // Deliveries carry the organisation's events: what the receiver learns, not what
            // it can change.
            privilege: Privilege::Read,
            created: r.optional_time("created_at")?,
            expires: None,
            last_rotated: None,
            last_used: None,
            status: if active { CredentialStatus::Active } else { CredentialStatus::Inactive },
            fingerprint: None,
        });
    }
    if let Some(org) = &ctx.github_owner {
        out.complete_scope = Some(format!("github:{org}:org-webhooks"));
    }
    Ok(out)
}
