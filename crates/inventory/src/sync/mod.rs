//! `keywatch inventory sync`: live connectors that list every platform's non-human
//! identities through its API and hand the pages to the same readers `inventory import` uses.
//!
//! Each connector fetches every page of each endpoint it knows; an endpoint read in full
//! yields a batch that is complete for its scope, so what the platform stopped listing is
//! marked deleted. An endpoint that fails (after retries) yields an error instead, and the
//! other endpoints go on. Credentials come from environment variables or the config file;
//! they are sent to the platform and never reach a batch, an error or the store.

pub mod atlassian;
pub mod aws;
pub mod github;
pub mod google;
pub mod http;
pub mod okta;
pub mod sigv4;
pub mod slack;

use anyhow::{bail, Result};
use keywatch_model::inventory::InventoryBatch;
use serde::Deserialize;
use std::time::Duration;

pub use http::{ApiClient, Response, RetryPolicy};

/// `[inventory]` in the config file: which connectors `inventory sync` runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Seconds before one request times out (default 30).
    pub timeout_secs: Option<u64>,
    /// Retries of one request after 429, 5xx or a timeout (default 5).
    pub max_retries: Option<u32>,
    /// Longest wait for a rate limit to reset, in seconds (default 900).
    pub max_wait_secs: Option<u64>,
    /// Milliseconds of the first backoff (default 500); tests set it low.
    pub initial_backoff_ms: Option<u64>,
    pub github: Option<github::GithubConfig>,
    pub okta: Option<okta::OktaConfig>,
    pub google: Option<google::GoogleConfig>,
    pub slack: Option<slack::SlackConfig>,
    pub atlassian: Option<atlassian::AtlassianConfig>,
    pub aws: Option<aws::AwsConfig>,
}

impl SyncConfig {
    pub fn policy(&self) -> RetryPolicy {
        let default = RetryPolicy::default();
        RetryPolicy {
            timeout: self.timeout_secs.map_or(default.timeout, Duration::from_secs),
            max_retries: self.max_retries.unwrap_or(default.max_retries),
            initial_backoff: self.initial_backoff_ms.map_or(default.initial_backoff, Duration::from_millis),
            max_wait: self.max_wait_secs.map_or(default.max_wait, Duration::from_secs),
        }
    }

    /// The platforms configured, in the order they run.
    pub fn configured(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.github.is_some() {
            names.push("github");
        }
        if self.okta.is_some() {
            names.push("okta");
        }
        if self.google.is_some() {
            names.push("google_workspace");
        }
        if self.slack.is_some() {
            names.push("slack");
        }
        if self.atlassian.is_some() {
            names.push("atlassian");
        }
        if self.aws.is_some() {
            names.push("aws");
        }
        names
    }
}

/// A secret written in the config file. Its debug form is redacted, so a config printed for
/// diagnosis never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct ConfigSecret(String);

impl ConfigSecret {
    pub fn new(value: impl Into<String>) -> ConfigSecret {
        ConfigSecret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ConfigSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfigSecret(redacted)")
    }
}

/// What one endpoint of one platform gave: a batch, or why it could not be read.
#[derive(Debug)]
pub struct EndpointOutcome {
    pub platform: &'static str,
    /// `installations`, `api-tokens`, `repos/acme/api/keys`...
    pub endpoint: String,
    pub result: Result<InventoryBatch>,
}

impl EndpointOutcome {
    fn new(platform: &'static str, endpoint: impl Into<String>, result: Result<InventoryBatch>) -> EndpointOutcome {
        EndpointOutcome { platform, endpoint: endpoint.into(), result }
    }
}

/// Runs the configured connectors (all of them, or those named in `only`) side by side and
/// returns every endpoint's outcome, platform by platform.
pub async fn run(config: &SyncConfig, only: &[String]) -> Result<Vec<EndpointOutcome>> {
    let configured = config.configured();
    for name in only {
        if !configured.contains(&name.as_str()) {
            bail!(
                "platform {name:?} is not configured for sync (configured: {}); see docs/inventory.md",
                if configured.is_empty() { "none".to_string() } else { configured.join(", ") }
            );
        }
    }
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let policy = config.policy();
    let none = || async { Vec::new() };
    let (github, okta, google, slack, atlassian, aws) = tokio::join!(
        async {
            match &config.github {
                Some(c) if wanted("github") => github::sync(c, &policy).await,
                _ => none().await,
            }
        },
        async {
            match &config.okta {
                Some(c) if wanted("okta") => okta::sync(c, &policy).await,
                _ => none().await,
            }
        },
        async {
            match &config.google {
                Some(c) if wanted("google_workspace") => google::sync(c, &policy).await,
                _ => none().await,
            }
        },
        async {
            match &config.slack {
                Some(c) if wanted("slack") => slack::sync(c, &policy).await,
                _ => none().await,
            }
        },
        async {
            match &config.atlassian {
                Some(c) if wanted("atlassian") => atlassian::sync(c, &policy).await,
                _ => none().await,
            }
        },
        async {
            match &config.aws {
                Some(c) if wanted("aws") => aws::sync(c, &policy).await,
                _ => none().await,
            }
        },
    );
    Ok([github, okta, google, slack, atlassian, aws].into_iter().flatten().collect())
}

/// A connector's secret: the config file's value, else the named variable, else the first
/// default variable that is set. The error lists where it looked, never a value. The
/// environment is the better place: a config file is committed and copied more easily.
pub fn secret(
    platform: &str,
    what: &str,
    from_config: Option<&str>,
    env_name: Option<&str>,
    default_env: &[&str],
) -> Result<String> {
    if let Some(value) = from_config.filter(|v| !v.is_empty()) {
        return Ok(value.to_string());
    }
    let names: Vec<&str> = env_name.into_iter().chain(default_env.iter().copied()).collect();
    for name in &names {
        if let Ok(value) = std::env::var(name) {
            if !value.trim().is_empty() {
                return Ok(value.trim().to_string());
            }
        }
    }
    bail!("{platform}: no {what}: set {} in the environment", names.join(" or "))
}

/// Every page of a listing: `first` fetched, then whatever `next` finds in each response,
/// until it finds nothing. A cursor seen twice is a server loop, and fails the listing rather
/// than spinning.
pub async fn fetch_pages<F>(client: &ApiClient, first: Request<'_>, next: F) -> Result<Vec<serde_json::Value>>
where
    F: Fn(&Response, &serde_json::Value) -> Option<Next>,
{
    let mut pages = Vec::new();
    let mut request = first.clone();
    let mut seen = std::collections::HashSet::new();
    loop {
        let query: Vec<(&str, &str)> = request.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = client.get(&request.path, &query).await?;
        let page =
            response.json().map_err(|e| anyhow::anyhow!("{}: page {}: {e}", client.platform, pages.len() + 1))?;
        let follow = next(&response, &page);
        pages.push(page);
        match follow {
            None => return Ok(pages),
            Some(Next::Url(url)) => {
                if !seen.insert(url.clone()) {
                    bail!("{}: page {} links back to a page already read; stopping", client.platform, pages.len());
                }
                request = Request { path: url, query: Vec::new() };
            }
            Some(Next::Param(name, value)) => {
                if !seen.insert(format!("{name}={value}")) {
                    bail!("{}: page {} repeats the cursor of an earlier page; stopping", client.platform, pages.len());
                }
                request = first.clone();
                request.query.retain(|(k, _)| *k != name);
                request.query.push((name, value));
            }
        }
    }
}

/// A page request: a path (or whole URL) and its query.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub path: String,
    pub query: Vec<(&'a str, String)>,
}

impl<'a> Request<'a> {
    pub fn new(path: impl Into<String>, query: &[(&'a str, &str)]) -> Request<'a> {
        Request { path: path.into(), query: query.iter().map(|(k, v)| (*k, v.to_string())).collect() }
    }
}

/// Where the next page is: a whole URL (`Link` headers), or the first request again with one
/// query parameter set (`pageToken`, `cursor`, `page`).
#[derive(Debug, Clone)]
pub enum Next {
    Url(String),
    Param(&'static str, String),
}
