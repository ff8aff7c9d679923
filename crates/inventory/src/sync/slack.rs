//! Slack: the workspace's integration history (`team.integrationLogs`, paged by `page`),
//! folded by the reader into each app's and service's current state, and its bot users
//! (`users.list`, paged by cursor).

use super::{fetch_pages, ApiClient, EndpointOutcome, Next, Request, RetryPolicy};
use crate::import::{read_pages, ExportKind, ImportContext};
use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

/// `[inventory.slack]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// `https://slack.com/api` by default.
    pub base_url: Option<String>,
    /// The variable holding a user token with `admin` scope (default `KEYWATCH_SLACK_TOKEN`,
    /// then `SLACK_TOKEN`).
    pub token_env: Option<String>,
    /// The token itself, when it cannot come from the environment.
    pub token: Option<super::ConfigSecret>,
    /// Enterprise Grid: the workspace to read (`team_id`).
    pub team_id: Option<String>,
}

const PLATFORM: &str = "slack";

pub async fn sync(config: &SlackConfig, policy: &RetryPolicy) -> Vec<EndpointOutcome> {
    let client = match client(config, policy) {
        Ok(c) => c,
        Err(e) => return vec![EndpointOutcome::new(PLATFORM, "connect", Err(e))],
    };
    let team: Vec<(&str, &str)> = config.team_id.as_deref().map(|t| ("team_id", t)).into_iter().collect();
    let logs_query: Vec<(&str, &str)> = [("count", "100")].into_iter().chain(team.iter().copied()).collect();
    let logs = fetch_pages(&client, Request::new("team.integrationLogs", &logs_query), next_page)
        .await
        .and_then(|pages| read_pages(ExportKind::SlackIntegrationLogs, &pages, &ImportContext::default()));
    let users_query: Vec<(&str, &str)> = [("limit", "200")].into_iter().chain(team.iter().copied()).collect();
    let bots = fetch_pages(&client, Request::new("users.list", &users_query), next_cursor)
        .await
        .and_then(|pages| read_pages(ExportKind::SlackBots, &pages, &ImportContext::default()));
    vec![EndpointOutcome::new(PLATFORM, "integration-logs", logs), EndpointOutcome::new(PLATFORM, "bots", bots)]
}

fn client(config: &SlackConfig, policy: &RetryPolicy) -> Result<ApiClient> {
    let token = super::secret(
        "Slack",
        "token",
        config.token.as_ref().map(super::ConfigSecret::expose),
        config.token_env.as_deref(),
        &["KEYWATCH_SLACK_TOKEN", "SLACK_TOKEN"],
    )?;
    ApiClient::new(
        "Slack",
        config.base_url.as_deref().unwrap_or("https://slack.com/api"),
        vec![("authorization", format!("Bearer {token}"))],
        policy.clone(),
    )
}

/// `paging: {page, pages}`: the next page number while there is one. A page that says
/// `ok: false` ends the listing; the reader turns its `error` into the endpoint's error.
fn next_page(_: &super::Response, page: &Value) -> Option<Next> {
    if page.get("ok").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let paging = page.get("paging")?;
    let current = paging.get("page")?.as_u64()?;
    let pages = paging.get("pages")?.as_u64()?;
    (current < pages).then(|| Next::Param("page", (current + 1).to_string()))
}

/// `response_metadata.next_cursor`, empty on the last page.
fn next_cursor(_: &super::Response, page: &Value) -> Option<Next> {
    if page.get("ok").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let cursor = page.get("response_metadata")?.get("next_cursor")?.as_str()?;
    (!cursor.is_empty()).then(|| Next::Param("cursor", cursor.to_string()))
}
