//! Slack: `team.integrationLogs`, the history of apps and services being added, changed and
//! removed. The latest event of each integration gives its state; the history is folded
//! oldest first, so a page order does not matter.

use super::{empty_batch, records, Record};
use anyhow::{bail, Result};
use keywatch_model::inventory::{
    Credential, CredentialKind, CredentialStatus, Identity, IdentityKind, InventoryBatch, Privilege,
};
use keywatch_model::time::rfc3339_utc;
use serde_json::Value;

struct Event {
    key: String,
    name: String,
    date: i64,
    change: String,
    scopes: Vec<String>,
    user: Option<String>,
}

/// `{"ok": true, "logs": [...], "paging": {...}}` pages.
pub(super) fn integration_logs(pages: &[Value]) -> Result<InventoryBatch> {
    for (index, page) in pages.iter().enumerate() {
        if page.get("ok").and_then(Value::as_bool) == Some(false) {
            let error = page.get("error").and_then(Value::as_str).unwrap_or("unknown error");
            bail!("page {}: Slack returned an error ({error}), not logs", index + 1);
        }
    }
    let mut events = Vec::new();
    for (index, value) in records(pages, Some("logs"))?.iter().enumerate() {
        let record = index + 1;
        let r = Record::new(value, record)?;
        let (key, name) = match (value.get("app_id"), value.get("service_id")) {
            (Some(id), _) if !id.is_null() => (format!("app/{}", id_text(id, record)?), r.optional_str("app_type")?),
            (_, Some(id)) if !id.is_null() => {
                (format!("service/{}", id_text(id, record)?), r.optional_str("service_type")?)
            }
            _ => bail!("record {record}: neither \"app_id\" nor \"service_id\""),
        };
        let date = r.required_str("date")?;
        let date: i64 =
            date.parse().map_err(|_| anyhow::anyhow!("record {record}: date {date:?} is not Unix seconds"))?;
        let change = r.required_str("change_type")?.to_string();
        if !matches!(
            change.as_str(),
            "added" | "removed" | "enabled" | "disabled" | "updated" | "expanded" | "reissued"
        ) {
            bail!("record {record}: unknown change_type {change:?}");
        }
        let scopes = r
            .optional_str("scope")?
            .map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .unwrap_or_default();
        events.push(Event {
            name: name.unwrap_or(&key).to_string(),
            key,
            date,
            change,
            scopes,
            user: r.optional_str("user_name")?.map(str::to_string),
        });
    }
    events.sort_by(|a, b| a.key.cmp(&b.key).then(a.date.cmp(&b.date)));
    let mut batch = empty_batch("slack:integration-logs");
    for group in events.chunk_by(|a, b| a.key == b.key) {
        let first = &group[0];
        let last = &group[group.len() - 1];
        let status = match last.change.as_str() {
            "removed" => CredentialStatus::Revoked,
            "disabled" => CredentialStatus::Inactive,
            _ => CredentialStatus::Active,
        };
        // Scopes as of the last event that listed any.
        let scopes = group.iter().rev().find(|e| !e.scopes.is_empty()).map(|e| e.scopes.clone()).unwrap_or_default();
        let privilege = scopes.iter().map(|s| scope_privilege(s)).max().unwrap_or(Privilege::Unknown);
        let installer = group.iter().find(|e| e.change == "added").and_then(|e| e.user.clone());
        batch.identities.push(Identity {
            platform: "slack".into(),
            external_id: first.key.clone(),
            kind: IdentityKind::Integration,
            name: last.name.clone(),
            owner: installer.clone(),
        });
        batch.credentials.push(Credential {
            platform: "slack".into(),
            external_id: format!("{}/grant", first.key),
            kind: CredentialKind::OauthGrant,
            name: format!("{} integration", last.name),
            identity: Some(first.key.clone()),
            owner: installer,
            scopes,
            privilege,
            created: Some(rfc3339_utc(first.date)),
            expires: None,
            last_rotated: group.iter().rev().find(|e| e.change == "reissued").map(|e| rfc3339_utc(e.date)),
            last_used: None,
            status,
            fingerprint: None,
            match_key: None,
        });
    }
    Ok(batch)
}

fn id_text(id: &Value, record: usize) -> Result<String> {
    match id {
        Value::String(s) if !s.is_empty() => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => bail!("record {record}: the app or service id is not an id"),
    }
}

/// Slack scopes: `admin` and `admin.*` are admin, writes (and incoming webhooks, which post)
/// are write, the rest read.
fn scope_privilege(scope: &str) -> Privilege {
    if scope == "admin" || scope.starts_with("admin.") || scope.starts_with("admin:") {
        Privilege::Admin
    } else if scope.contains(":write") || scope == "incoming-webhook" || scope == "bot" || scope == "client" {
        Privilege::Write
    } else {
        Privilege::Read
    }
}

/// `users.list` pages (`{"ok": true, "members": [...], "response_metadata": {...}}`): the bot
/// users among the members. A bot of an app joins that app's identity (`app/A…`), the one
/// the integration logs and the vendor catalogue use; a legacy custom bot has its own.
pub(super) fn bots(pages: &[Value]) -> Result<InventoryBatch> {
    for (index, page) in pages.iter().enumerate() {
        if page.get("ok").and_then(Value::as_bool) == Some(false) {
            let error = page.get("error").and_then(Value::as_str).unwrap_or("unknown error");
            bail!("page {}: Slack returned an error ({error}), not members", index + 1);
        }
    }
    let mut batch = empty_batch("slack:bots");
    let mut teams: Vec<String> = Vec::new();
    for (index, value) in records(pages, Some("members"))?.iter().enumerate() {
        let record = index + 1;
        let r = Record::new(value, record)?;
        if let Some(team) = r.optional_str("team_id")? {
            if !teams.iter().any(|t| t == team) {
                teams.push(team.to_string());
            }
        }
        let id = r.required_str("id")?;
        // Slackbot is Slack's own, in every workspace, with no token anyone holds.
        if r.optional_bool("is_bot")? != Some(true) || id == "USLACKBOT" {
            continue;
        }
        let profile = value.get("profile").filter(|p| p.is_object());
        let Some(profile) = profile else { bail!("record {record}: a bot without \"profile\"") };
        let p = Record::new(profile, record)?;
        let bot_id = p.optional_str("bot_id")?;
        let app_id = p.optional_str("api_app_id")?.filter(|a| !a.is_empty());
        let name = p
            .optional_str("real_name")?
            .filter(|n| !n.is_empty())
            .or(r.optional_str("real_name")?)
            .unwrap_or(r.required_str("name")?);
        let identity = match app_id {
            Some(app) => format!("app/{app}"),
            None => format!("bot/{}", bot_id.unwrap_or(id)),
        };
        let status = if r.optional_bool("deleted")? == Some(true) {
            CredentialStatus::Revoked
        } else {
            CredentialStatus::Active
        };
        if !batch.identities.iter().any(|i| i.external_id == identity) {
            batch.identities.push(Identity {
                platform: "slack".into(),
                external_id: identity.clone(),
                kind: if app_id.is_some() { IdentityKind::Integration } else { IdentityKind::Bot },
                name: name.to_string(),
                owner: None,
            });
        }
        batch.credentials.push(Credential {
            platform: "slack".into(),
            external_id: format!("bot/{}/token", bot_id.unwrap_or(id)),
            kind: CredentialKind::ApiToken,
            name: format!("{name} bot token"),
            identity: Some(identity),
            owner: None,
            // users.list does not show a bot's scopes; posting as a user is the least it can do.
            scopes: vec![format!("bot_user:{id}")],
            privilege: Privilege::Unknown,
            created: None,
            expires: None,
            last_rotated: None,
            last_used: None,
            status,
            fingerprint: bot_id.map(str::to_string),
            match_key: None,
        });
    }
    let last_cursor = pages
        .last()
        .and_then(|p| p.get("response_metadata"))
        .and_then(|m| m.get("next_cursor"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if teams.len() == 1 && last_cursor.is_empty() {
        batch.complete_scope = Some(format!("slack:{}:bots", teams[0]));
    }
    Ok(batch)
}
