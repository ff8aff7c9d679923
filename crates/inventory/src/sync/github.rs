//! GitHub: an organisation's app installations, fine-grained PAT grants and pending requests,
//! webhooks, SAML credential authorizations (when asked), and the deploy keys and webhooks of
//! its repositories, through the REST API (`Link` header pagination).

use super::{fetch_pages, http::next_link, ApiClient, EndpointOutcome, Next, Request, RetryPolicy};
use crate::import::{read_pages, ExportKind, ImportContext};
use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;

/// `[inventory.github]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    pub org: String,
    /// `https://api.github.com` by default; `https://HOST/api/v3` for GitHub Enterprise Server.
    pub base_url: Option<String>,
    /// The variable holding the token (default `KEYWATCH_GITHUB_TOKEN`, then `GITHUB_TOKEN`).
    pub token_env: Option<String>,
    /// The token itself, when it cannot come from the environment.
    pub token: Option<super::ConfigSecret>,
    /// `owner/repo` names whose deploy keys to list; every repository of the org when unset.
    pub repos: Option<Vec<String>>,
    /// Also list SAML SSO credential authorizations (organisations with SAML single sign-on on
    /// GitHub Enterprise Cloud; others answer 404).
    #[serde(default)]
    pub saml_sso: bool,
}

const PLATFORM: &str = "github";

pub async fn sync(config: &GithubConfig, policy: &RetryPolicy) -> Vec<EndpointOutcome> {
    let client = match client(config, policy) {
        Ok(c) => c,
        Err(e) => return vec![EndpointOutcome::new(PLATFORM, "connect", Err(e))],
    };
    let org = config.org.as_str();
    let org_ctx = ImportContext { github_owner: Some(org.to_string()), ..ImportContext::default() };
    let mut outcomes = Vec::new();
    let org_lists = [
        ("installations", format!("orgs/{org}/installations"), ExportKind::GithubInstallations),
        (
            "personal-access-tokens",
            format!("orgs/{org}/personal-access-tokens"),
            ExportKind::GithubPersonalAccessTokens,
        ),
        (
            "personal-access-token-requests",
            format!("orgs/{org}/personal-access-token-requests"),
            ExportKind::GithubPersonalAccessTokenRequests,
        ),
        ("hooks", format!("orgs/{org}/hooks"), ExportKind::GithubOrgWebhooks),
    ];
    let saml = config.saml_sso.then(|| {
        (
            "credential-authorizations",
            format!("orgs/{org}/credential-authorizations"),
            ExportKind::GithubCredentialAuthorizations,
        )
    });
    for (endpoint, path, kind) in org_lists.into_iter().chain(saml) {
        let result = list(&client, &path).await.and_then(|pages| read_pages(kind, &pages, &org_ctx));
        outcomes.push(EndpointOutcome::new(PLATFORM, endpoint, result));
    }
    let repos = match &config.repos {
        Some(repos) => Ok(repos.clone()),
        None => org_repos(&client, org).await,
    };
    match repos {
        Err(e) => outcomes.push(EndpointOutcome::new(PLATFORM, "repos", Err(e))),
        Ok(repos) => {
            for repo in repos {
                let ctx = ImportContext { github_owner: Some(repo.clone()), ..ImportContext::default() };
                for (what, kind) in [("keys", ExportKind::GithubDeployKeys), ("hooks", ExportKind::GithubRepoWebhooks)]
                {
                    let endpoint = format!("repos/{repo}/{what}");
                    let result = list(&client, &endpoint).await.and_then(|pages| read_pages(kind, &pages, &ctx));
                    outcomes.push(EndpointOutcome::new(PLATFORM, endpoint, result));
                }
            }
        }
    }
    outcomes
}

fn client(config: &GithubConfig, policy: &RetryPolicy) -> Result<ApiClient> {
    let token = super::secret(
        "GitHub",
        "token",
        config.token.as_ref().map(super::ConfigSecret::expose),
        config.token_env.as_deref(),
        &["KEYWATCH_GITHUB_TOKEN", "GITHUB_TOKEN"],
    )?;
    ApiClient::new(
        "GitHub",
        config.base_url.as_deref().unwrap_or("https://api.github.com"),
        vec![
            ("authorization", format!("Bearer {token}")),
            ("accept", "application/vnd.github+json".into()),
            ("x-github-api-version", "2022-11-28".into()),
        ],
        policy.clone(),
    )
}

/// Every page of a list endpoint, 100 records a page.
async fn list(client: &ApiClient, path: &str) -> Result<Vec<Value>> {
    fetch_pages(client, Request::new(path, &[("per_page", "100")]), |response, _| next_link(response).map(Next::Url))
        .await
}

/// `owner/repo` of every repository of the organisation.
async fn org_repos(client: &ApiClient, org: &str) -> Result<Vec<String>> {
    let pages = list(client, &format!("orgs/{org}/repos")).await?;
    let mut names = Vec::new();
    for (page_index, page) in pages.iter().enumerate() {
        let Some(items) = page.as_array() else {
            anyhow::bail!("GitHub orgs/{org}/repos: page {} is not a list of repositories", page_index + 1);
        };
        for item in items {
            match item.get("full_name").and_then(Value::as_str) {
                Some(name) => names.push(name.to_string()),
                None => {
                    anyhow::bail!("GitHub orgs/{org}/repos: page {}: a repository without full_name", page_index + 1)
                }
            }
        }
    }
    Ok(names)
}
