//! Google Workspace: every user's OAuth grants to third-party apps, through the Directory API
//! (`users.list` paged by `pageToken`, then `tokens.list` per user).

use super::{fetch_pages, ApiClient, EndpointOutcome, Next, Request, RetryPolicy};
use crate::import::{read_pages, ExportKind, ImportContext};
use anyhow::{bail, Result};
use keywatch_model::inventory::InventoryBatch;
use serde::Deserialize;
use serde_json::Value;

/// `[inventory.google]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// The customer whose users to read (default `my_customer`, the admin's own).
    pub customer: Option<String>,
    /// `https://admin.googleapis.com` by default.
    pub base_url: Option<String>,
    /// The variable holding an OAuth access token with the
    /// `admin.directory.user.security` and `admin.directory.user.readonly` scopes (default
    /// `KEYWATCH_GOOGLE_TOKEN`), e.g. from a service account with domain-wide delegation.
    pub token_env: Option<String>,
    /// The access token itself, when it cannot come from the environment.
    pub token: Option<super::ConfigSecret>,
}

const PLATFORM: &str = "google_workspace";

pub async fn sync(config: &GoogleConfig, policy: &RetryPolicy) -> Vec<EndpointOutcome> {
    let client = match client(config, policy) {
        Ok(c) => c,
        Err(e) => return vec![EndpointOutcome::new(PLATFORM, "connect", Err(e))],
    };
    let customer = config.customer.as_deref().unwrap_or("my_customer");
    let users = match users(&client, customer).await {
        Ok(users) => users,
        Err(e) => return vec![EndpointOutcome::new(PLATFORM, "users", Err(e))],
    };
    // One batch for all users, complete for the customer only if every user's list was read.
    let mut merged = InventoryBatch {
        source: "google_workspace:tokens".into(),
        complete_scope: None,
        identities: Vec::new(),
        credentials: Vec::new(),
    };
    let mut failures = Vec::new();
    let mut seen_clients = std::collections::HashSet::new();
    for (id, email) in &users {
        let path = format!("admin/directory/v1/users/{id}/tokens");
        let read = fetch_pages(&client, Request::new(path, &[]), |_, _| None)
            .await
            .and_then(|pages| read_pages(ExportKind::GoogleTokens, &pages, &ImportContext::default()));
        match read {
            Ok(batch) => {
                for identity in batch.identities {
                    // Each OAuth client once, however many users granted it.
                    if seen_clients.insert(identity.external_id.clone()) {
                        merged.identities.push(identity);
                    }
                }
                for mut credential in batch.credentials {
                    // The grant names its user by numeric id; the address is what people know.
                    credential.owner = Some(email.clone());
                    merged.credentials.push(credential);
                }
            }
            Err(e) => failures.push(format!("user {email}: {e:#}")),
        }
    }
    let mut outcomes = Vec::new();
    if failures.is_empty() {
        merged.complete_scope = Some(format!("google_workspace:{customer}:tokens"));
    } else {
        let shown: Vec<&str> = failures.iter().take(5).map(String::as_str).collect();
        outcomes.push(EndpointOutcome::new(
            PLATFORM,
            "tokens",
            Err(anyhow::anyhow!(
                "{} of {} users' grants could not be read, so deleted grants are not marked: {}",
                failures.len(),
                users.len(),
                shown.join("; ")
            )),
        ));
    }
    outcomes.insert(0, EndpointOutcome::new(PLATFORM, "tokens", Ok(merged)));
    outcomes
}

fn client(config: &GoogleConfig, policy: &RetryPolicy) -> Result<ApiClient> {
    let token = super::secret(
        "Google Workspace",
        "access token",
        config.token.as_ref().map(super::ConfigSecret::expose),
        config.token_env.as_deref(),
        &["KEYWATCH_GOOGLE_TOKEN"],
    )?;
    ApiClient::new(
        "Google Workspace",
        config.base_url.as_deref().unwrap_or("https://admin.googleapis.com"),
        vec![("authorization", format!("Bearer {token}"))],
        policy.clone(),
    )
}

/// `(id, primaryEmail)` of every user of the customer.
async fn users(client: &ApiClient, customer: &str) -> Result<Vec<(String, String)>> {
    let first = Request::new(
        "admin/directory/v1/users",
        &[("customer", customer), ("maxResults", "500"), ("projection", "basic")],
    );
    let pages = fetch_pages(client, first, |_, page| {
        page.get("nextPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(|t| Next::Param("pageToken", t.to_string()))
    })
    .await?;
    let mut users = Vec::new();
    for (index, page) in pages.iter().enumerate() {
        // A customer with no users returns a page without "users".
        let Some(list) = page.get("users") else { continue };
        let Some(list) = list.as_array() else { bail!("users page {}: \"users\" is not a list", index + 1) };
        for (n, user) in list.iter().enumerate() {
            let id = user.get("id").and_then(Value::as_str);
            let email = user.get("primaryEmail").and_then(Value::as_str);
            match (id, email) {
                (Some(id), Some(email)) => users.push((id.to_string(), email.to_string())),
                _ => bail!("users page {}, user {}: no \"id\" or \"primaryEmail\"", index + 1, n + 1),
            }
        }
    }
    Ok(users)
}
