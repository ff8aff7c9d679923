//! Atlassian Cloud: an organisation's user API tokens, service accounts and their OAuth
//! clients, through the admin API's API-access collection (`links.next` pagination, which
//! is a cursor on some endpoints and a whole URL on others).

use super::{fetch_pages, ApiClient, EndpointOutcome, Next, Request, RetryPolicy};
use crate::import::{read_pages, ExportKind, ImportContext};
use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

/// `[inventory.atlassian]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtlassianConfig {
    /// The organisation id (admin.atlassian.com, Settings > API keys).
    pub org_id: String,
    /// `https://api.atlassian.com/admin/api-access/v1` by default.
    pub base_url: Option<String>,
    /// The variable holding the organisation API key (default `KEYWATCH_ATLASSIAN_API_KEY`).
    pub api_key_env: Option<String>,
    /// The API key itself, when it cannot come from the environment.
    pub api_key: Option<super::ConfigSecret>,
}

const PLATFORM: &str = "atlassian";

const ENDPOINTS: &[(&str, ExportKind)] = &[
    ("api-tokens", ExportKind::AtlassianApiTokens),
    ("service-accounts", ExportKind::AtlassianServiceAccounts),
    ("oauth-clients", ExportKind::AtlassianOauthClients),
];

pub async fn sync(config: &AtlassianConfig, policy: &RetryPolicy) -> Vec<EndpointOutcome> {
    let client = match client(config, policy) {
        Ok(c) => c,
        Err(e) => return vec![EndpointOutcome::new(PLATFORM, "connect", Err(e))],
    };
    let mut outcomes = Vec::new();
    for (endpoint, kind) in ENDPOINTS {
        let path = format!("orgs/{}/{endpoint}", config.org_id);
        let result = fetch_pages(&client, Request::new(path, &[]), next)
            .await
            .and_then(|pages| read_pages(*kind, &pages, &ImportContext::default()));
        outcomes.push(EndpointOutcome::new(PLATFORM, *endpoint, result));
    }
    outcomes
}

fn client(config: &AtlassianConfig, policy: &RetryPolicy) -> Result<ApiClient> {
    let key = super::secret(
        "Atlassian",
        "organisation API key",
        config.api_key.as_ref().map(super::ConfigSecret::expose),
        config.api_key_env.as_deref(),
        &["KEYWATCH_ATLASSIAN_API_KEY"],
    )?;
    ApiClient::new(
        "Atlassian",
        config.base_url.as_deref().unwrap_or("https://api.atlassian.com/admin/api-access/v1"),
        vec![("authorization", format!("Bearer {key}"))],
        policy.clone(),
    )
}

fn next(_: &super::Response, page: &Value) -> Option<Next> {
    let next = page.get("links")?.get("next")?.as_str().filter(|n| !n.is_empty())?;
    Some(if next.starts_with("https://") || next.starts_with("http://") {
        Next::Url(next.to_string())
    } else {
        Next::Param("cursor", next.to_string())
    })
}
