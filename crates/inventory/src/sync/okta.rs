//! Okta: API tokens, the apps (OAuth service apps among them) and, with Privileged Access,
//! the service accounts of an org, through the management API (`Link` header pagination, `X-Rate-Limit-*` headers).

use super::{fetch_pages, http::next_link, ApiClient, EndpointOutcome, Next, Request, RetryPolicy};
use crate::import::{read_pages, ExportKind, ImportContext};
use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

/// `[inventory.okta]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaConfig {
    /// `https://acme.okta.com`: the org's own URL is the API's base URL.
    pub org_url: String,
    /// The variable holding the API token (default `KEYWATCH_OKTA_TOKEN`, then `OKTA_API_TOKEN`).
    pub token_env: Option<String>,
    /// The API token itself, when it cannot come from the environment.
    pub token: Option<super::ConfigSecret>,
    /// Also list Okta Privileged Access service accounts (an add-on: orgs without it answer
    /// 404).
    #[serde(default)]
    pub privileged_access: bool,
}

const PLATFORM: &str = "okta";

/// The endpoints read, and which reader takes their pages.
const ENDPOINTS: &[(&str, &str, ExportKind)] =
    &[("api-tokens", "api/v1/api-tokens", ExportKind::OktaApiTokens), ("apps", "api/v1/apps", ExportKind::OktaApps)];
const PRIVILEGED_ACCESS: (&str, &str, ExportKind) =
    ("service-accounts", "privileged-access/api/v1/service-accounts", ExportKind::OktaServiceAccounts);

pub async fn sync(config: &OktaConfig, policy: &RetryPolicy) -> Vec<EndpointOutcome> {
    let client = match client(config, policy) {
        Ok(c) => c,
        Err(e) => return vec![EndpointOutcome::new(PLATFORM, "connect", Err(e))],
    };
    let org = config.org_url.trim_end_matches('/');
    let host = org.split_once("://").map_or(org, |(_, rest)| rest);
    let ctx = ImportContext { okta_org: Some(host.to_string()), ..ImportContext::default() };
    let mut outcomes = Vec::new();
    let optional = config.privileged_access.then_some(&PRIVILEGED_ACCESS);
    for (endpoint, path, kind) in ENDPOINTS.iter().chain(optional) {
        let result = list(&client, path).await.and_then(|pages| read_pages(*kind, &pages, &ctx));
        outcomes.push(EndpointOutcome::new(PLATFORM, *endpoint, result));
    }
    outcomes
}

fn client(config: &OktaConfig, policy: &RetryPolicy) -> Result<ApiClient> {
    let token = super::secret(
        "Okta",
        "API token",
        config.token.as_ref().map(super::ConfigSecret::expose),
        config.token_env.as_deref(),
        &["KEYWATCH_OKTA_TOKEN", "OKTA_API_TOKEN"],
    )?;
    ApiClient::new("Okta", &config.org_url, vec![("authorization", format!("SSWS {token}"))], policy.clone())
}

async fn list(client: &ApiClient, path: &str) -> Result<Vec<Value>> {
    fetch_pages(client, Request::new(path, &[]), |response, _| next_link(response).map(Next::Url)).await
}
