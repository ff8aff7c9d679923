//! GitHub organisation inventory: app installations, fine-grained personal access tokens
//! granted to the organisation and the requests for them, SAML single sign-on credential
//! authorizations, organisation and repository webhooks, and repository deploy keys.
//!
//! Shapes as documented in the REST reference (docs.github.com/en/rest): `orgs/orgs`,
//! `orgs/personal-access-tokens`, `orgs/webhooks`, `repos/webhooks`, `deploy-keys`; the
//! credential authorizations (GitHub Enterprise Cloud) at
//! docs.github.com/en/enterprise-cloud@latest/rest/orgs/orgs#list-saml-sso-authorizations-for-an-organization.

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
            match_key: None,
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
    fine_grained(pages, ctx, false)
}

/// `GET /orgs/{org}/personal-access-token-requests`: fine-grained tokens waiting for an owner
/// to let them into the org. Each request is its own `pending` credential (a token can ask
/// again for more while it holds a grant); approved or denied, it leaves this list, and the
/// grant, if any, appears in the other.
pub(super) fn personal_access_token_requests(pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    fine_grained(pages, ctx, true)
}

/// Grants and requests share their shape (`organization-programmatic-access-grant` and
/// `...-grant-request`): a request has `created_at` and `reason` where a grant has
/// `access_granted_at`.
fn fine_grained(pages: &[Value], ctx: &ImportContext, requests: bool) -> Result<InventoryBatch> {
    let what = if requests { "personal-access-token-requests" } else { "personal-access-tokens" };
    let mut out = empty_batch(&format!("github:{what}"));
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
        let expired = r.optional_bool("token_expired")? == Some(true);
        let (external_id, created, status) = if requests {
            (
                format!("fine-grained-pat-request/{grant_id}"),
                Some(r.required_time("created_at")?),
                CredentialStatus::Pending,
            )
        } else {
            let status = if expired { CredentialStatus::Inactive } else { CredentialStatus::Active };
            (format!("fine-grained-pat/{token_id}"), r.optional_time("access_granted_at")?, status)
        };
        let identity = format!("user/{login}");
        out.identities.push(user_identity(&identity, login));
        out.credentials.push(Credential {
            platform: "github".into(),
            external_id,
            kind: CredentialKind::PersonalAccessToken,
            name: r.optional_str("token_name")?.unwrap_or("(unnamed token)").to_string(),
            identity: Some(identity),
            owner: Some(login.to_string()),
            scopes,
            privilege,
            created,
            expires: r.optional_time("token_expires_at")?,
            last_rotated: None,
            last_used: r.optional_time("token_last_used_at")?,
            status,
            fingerprint: None,
            match_key: None,
        });
    }
    dedup_identities(&mut out);
    if let Some(org) = &ctx.github_owner {
        out.complete_scope = Some(format!("github:{org}:{what}"));
    }
    Ok(out)
}

/// One identity per id, in first-seen order (records of one user need not be adjacent).
fn dedup_identities(out: &mut InventoryBatch) {
    let mut seen = std::collections::HashSet::new();
    out.identities.retain(|i| seen.insert(i.external_id.clone()));
}

/// `GET /orgs/{org}/credential-authorizations`: the personal access tokens (classic) and SSH
/// keys members authorized for the organisation's SAML single sign-on. The token itself is
/// never shown; GitHub gives its last eight characters (`token_last_eight`), kept as a
/// `…12345678` fingerprint to match a leaked token against, and an SSH key's fingerprint.
pub(super) fn credential_authorizations(pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    let mut out = empty_batch("github:credential-authorizations");
    for (index, value) in records(pages, None)?.iter().enumerate() {
        let record = index + 1;
        let r = Record::new(value, record)?;
        let login = r.required_str("login")?;
        let id = r.required_id("credential_id")?;
        let credential_type = r.required_str("credential_type")?;
        let authorized = r.required_time("credential_authorized_at")?;
        let mut scopes: Vec<String> = r.optional_text_list("scopes")?;
        scopes.sort();
        let (kind, privilege, fingerprint, title) = match credential_type.to_ascii_lowercase().as_str() {
            "personal access token" => {
                let privilege = scopes.iter().map(|s| classic_scope_privilege(s)).max().unwrap_or(Privilege::Read);
                let last_eight = r.optional_str("token_last_eight")?.map(|l| format!("…{l}"));
                (
                    CredentialKind::PersonalAccessToken,
                    privilege,
                    last_eight,
                    r.optional_str("authorized_credential_note")?,
                )
            }
            // A member's own key: it reaches whatever the member can, which this list does not say.
            "ssh key" => (
                CredentialKind::SshKey,
                Privilege::Unknown,
                r.optional_str("fingerprint")?.map(str::to_string),
                r.optional_str("authorized_credential_title")?,
            ),
            _ => bail!(
                "record {record}: unknown credential_type {credential_type:?} (known: \"personal access token\", \"SSH key\")"
            ),
        };
        let identity = format!("user/{login}");
        out.identities.push(user_identity(&identity, login));
        let untitled = if kind == CredentialKind::SshKey { "(untitled SSH key)" } else { "(token without a note)" };
        out.credentials.push(Credential {
            platform: "github".into(),
            external_id: format!("credential-authorization/{id}"),
            kind,
            name: title.filter(|t| !t.is_empty()).unwrap_or(untitled).to_string(),
            identity: Some(identity),
            owner: Some(login.to_string()),
            scopes,
            privilege,
            created: Some(authorized),
            expires: r.optional_time("authorized_credential_expires_at")?,
            last_rotated: None,
            last_used: r.optional_time("credential_accessed_at")?,
            status: CredentialStatus::Active,
            fingerprint,
            match_key: None,
        });
    }
    dedup_identities(&mut out);
    if let Some(org) = &ctx.github_owner {
        out.complete_scope = Some(format!("github:{org}:credential-authorizations"));
    }
    Ok(out)
}

/// What one OAuth scope of a personal access token (classic) allows: `admin:*`, deleting
/// repositories or packages and running the enterprise are admin; `read:*` and the read-only
/// user scopes read; the rest (`repo`, `workflow`, `write:*`, `gist`...) write.
fn classic_scope_privilege(scope: &str) -> Privilege {
    if scope.starts_with("admin:")
        || matches!(scope, "delete_repo" | "delete:packages" | "site_admin")
        || scope.starts_with("manage_runners:")
        || scope.starts_with("manage_billing:")
    {
        Privilege::Admin
    } else if scope.starts_with("read:") || matches!(scope, "user:email" | "notifications") {
        Privilege::Read
    } else {
        Privilege::Write
    }
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
        let repo = match (&ctx.github_owner, r.optional_str("url")?.and_then(|u| repo_of_url(u, "keys"))) {
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
            match_key: None,
        });
    }
    if repos.len() == 1 {
        out.complete_scope = Some(format!("github:{}:deploy-keys", repos[0]));
    }
    Ok(out)
}

/// `https://api.github.com/repos/OWNER/REPO/{what}/ID` -> `OWNER/REPO`.
fn repo_of_url(url: &str, what: &str) -> Option<String> {
    let rest = url.split("/repos/").nth(1)?;
    let mut parts = rest.split('/');
    let (owner, repo) = (parts.next()?, parts.next()?);
    (parts.next() == Some(what) && !owner.is_empty() && !repo.is_empty()).then(|| format!("{owner}/{repo}"))
}

/// `GET /orgs/{org}/hooks`: organisation webhooks. The shared secret (shown masked) is a
/// `webhook_secret` credential held by whoever receives the deliveries, named by the
/// callback host, which is kept as a `callback:HOST` scope for attribution.
pub(super) fn org_webhooks(pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    webhooks(pages, ctx, false)
}

/// `GET /repos/{owner}/{repo}/hooks`: a repository's webhooks, the same shape with
/// `"type": "Repository"`. The repository comes from `--owner OWNER/REPO` or each hook's
/// `url`, and is kept as a `repository:OWNER/REPO` scope.
pub(super) fn repo_webhooks(pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    webhooks(pages, ctx, true)
}

fn webhooks(pages: &[Value], ctx: &ImportContext, repository: bool) -> Result<InventoryBatch> {
    let (what, prefix) = if repository { ("repo-webhooks", "repo-webhook") } else { ("org-webhooks", "org-webhook") };
    let mut out = empty_batch(&format!("github:{what}"));
    let mut repos: Vec<String> = Vec::new();
    let owner_repo = ctx.github_owner.as_ref().filter(|o| o.contains('/'));
    for (index, value) in records(pages, None)?.iter().enumerate() {
        let r = Record::new(value, index + 1)?;
        let id = r.required_id("id")?;
        let repo = if repository {
            let repo = match (r.optional_str("url")?.and_then(|u| repo_of_url(u, "hooks")), owner_repo) {
                (Some(repo), _) => repo,
                (None, Some(repo)) => repo.clone(),
                (None, None) => {
                    bail!("record {}: no \"url\" to tell the repository; give it with --owner OWNER/REPO", index + 1)
                }
            };
            if !repos.contains(&repo) {
                repos.push(repo.clone());
            }
            Some(repo)
        } else {
            None
        };
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
        let mut scopes: Vec<String> = repo.iter().map(|r| format!("repository:{r}")).collect();
        scopes.push(format!("callback:{host}"));
        scopes.extend(events);
        if config.get("insecure_ssl").and_then(Value::as_str) == Some("1") {
            scopes.push("insecure_ssl".into());
        }
        let active = r.optional_bool("active")?.unwrap_or(true);
        out.credentials.push(Credential {
            platform: "github".into(),
            external_id: format!("{prefix}/{id}"),
            kind: CredentialKind::WebhookSecret,
            name: format!("webhook to {host}{}", if has_secret { "" } else { " (no secret)" }),
            identity: None,
            owner: None,
            scopes,
            // Deliveries carry the organisation's (or repository's) events: what the receiver
            // learns, not what it can change.
            privilege: Privilege::Read,
            created: r.optional_time("created_at")?,
            expires: None,
            last_rotated: None,
            last_used: None,
            status: if active { CredentialStatus::Active } else { CredentialStatus::Inactive },
            fingerprint: None,
            match_key: None,
        });
    }
    if repository {
        // No hooks at all is complete too, when the repository was named.
        if repos.is_empty() {
            repos.extend(owner_repo.cloned());
        }
        if repos.len() == 1 {
            out.complete_scope = Some(format!("github:{}:{what}", repos[0]));
        }
    } else if let Some(org) = &ctx.github_owner {
        out.complete_scope = Some(format!("github:{org}:{what}"));
    }
    Ok(out)
}

/// The member a token or key belongs to, who also answers for it.
fn user_identity(external_id: &str, login: &str) -> Identity {
    Identity {
        platform: "github".into(),
        external_id: external_id.to_string(),
        kind: IdentityKind::User,
        name: login.to_string(),
        owner: Some(login.to_string()),
    }
}
