//! `keywatch inventory import`: the JSON the platforms' inventory endpoints return (one page
//! or several concatenated, as `curl`, `gh api --paginate` or `aws ... --output json` save
//! them) and the AWS IAM credential report CSV, turned into an [`InventoryBatch`].
//!
//! Which endpoint a file came from is recognised by its shape, or given with `--kind`. A
//! record that cannot be read fails the whole file with an error naming the file and record,
//! so nothing half-read reaches the store.

mod atlassian;
mod aws;
mod github;
mod google;
mod okta;
mod slack;

use anyhow::{bail, Context, Result};
use keywatch_model::inventory::InventoryBatch;
use serde_json::Value;

/// The exports Keywatch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    AwsCredentialReport,
    AwsListAccessKeys,
    AwsRoles,
    GithubInstallations,
    GithubPersonalAccessTokens,
    GithubDeployKeys,
    GithubOrgWebhooks,
    GithubRepoWebhooks,
    GithubCredentialAuthorizations,
    GithubPersonalAccessTokenRequests,
    GoogleTokens,
    OktaApiTokens,
    OktaApps,
    OktaServiceAccounts,
    SlackIntegrationLogs,
    SlackBots,
    AtlassianApiTokens,
    AtlassianServiceAccounts,
    AtlassianOauthClients,
}

impl ExportKind {
    pub const ALL: &'static [ExportKind] = &[
        ExportKind::AwsCredentialReport,
        ExportKind::AwsListAccessKeys,
        ExportKind::AwsRoles,
        ExportKind::GithubInstallations,
        ExportKind::GithubPersonalAccessTokens,
        ExportKind::GithubDeployKeys,
        ExportKind::GithubOrgWebhooks,
        ExportKind::GithubRepoWebhooks,
        ExportKind::GithubCredentialAuthorizations,
        ExportKind::GithubPersonalAccessTokenRequests,
        ExportKind::GoogleTokens,
        ExportKind::OktaApiTokens,
        ExportKind::OktaApps,
        ExportKind::OktaServiceAccounts,
        ExportKind::SlackIntegrationLogs,
        ExportKind::SlackBots,
        ExportKind::AtlassianApiTokens,
        ExportKind::AtlassianServiceAccounts,
        ExportKind::AtlassianOauthClients,
    ];

    /// The `--kind` name.
    pub fn name(self) -> &'static str {
        match self {
            ExportKind::AwsCredentialReport => "aws-credential-report",
            ExportKind::AwsListAccessKeys => "aws-list-access-keys",
            ExportKind::AwsRoles => "aws-roles",
            ExportKind::GithubInstallations => "github-installations",
            ExportKind::GithubPersonalAccessTokens => "github-personal-access-tokens",
            ExportKind::GithubDeployKeys => "github-deploy-keys",
            ExportKind::GithubOrgWebhooks => "github-org-webhooks",
            ExportKind::GithubRepoWebhooks => "github-repo-webhooks",
            ExportKind::GithubCredentialAuthorizations => "github-credential-authorizations",
            ExportKind::GithubPersonalAccessTokenRequests => "github-personal-access-token-requests",
            ExportKind::GoogleTokens => "google-tokens",
            ExportKind::OktaApiTokens => "okta-api-tokens",
            ExportKind::OktaApps => "okta-apps",
            ExportKind::OktaServiceAccounts => "okta-service-accounts",
            ExportKind::SlackIntegrationLogs => "slack-integration-logs",
            ExportKind::SlackBots => "slack-bots",
            ExportKind::AtlassianApiTokens => "atlassian-api-tokens",
            ExportKind::AtlassianServiceAccounts => "atlassian-service-accounts",
            ExportKind::AtlassianOauthClients => "atlassian-oauth-clients",
        }
    }

    /// What produced such a file, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            ExportKind::AwsCredentialReport => "AWS IAM credential report (CSV)",
            ExportKind::AwsListAccessKeys => "aws iam list-access-keys",
            ExportKind::AwsRoles => "aws iam list-roles (or get-account-authorization-details)",
            ExportKind::GithubInstallations => "GitHub GET /orgs/{org}/installations",
            ExportKind::GithubPersonalAccessTokens => "GitHub GET /orgs/{org}/personal-access-tokens",
            ExportKind::GithubDeployKeys => "GitHub GET /repos/{owner}/{repo}/keys",
            ExportKind::GithubOrgWebhooks => "GitHub GET /orgs/{org}/hooks",
            ExportKind::GithubRepoWebhooks => "GitHub GET /repos/{owner}/{repo}/hooks",
            ExportKind::GithubCredentialAuthorizations => "GitHub GET /orgs/{org}/credential-authorizations",
            ExportKind::GithubPersonalAccessTokenRequests => "GitHub GET /orgs/{org}/personal-access-token-requests",
            ExportKind::GoogleTokens => "Google Workspace Directory API tokens.list",
            ExportKind::OktaApiTokens => "Okta GET /api/v1/api-tokens",
            ExportKind::OktaApps => "Okta GET /api/v1/apps",
            ExportKind::OktaServiceAccounts => "Okta GET /privileged-access/api/v1/service-accounts",
            ExportKind::SlackIntegrationLogs => "Slack team.integrationLogs",
            ExportKind::SlackBots => "Slack users.list (its bot users)",
            ExportKind::AtlassianApiTokens => "Atlassian GET /admin/api-access/v1/orgs/{orgId}/api-tokens",
            ExportKind::AtlassianServiceAccounts => "Atlassian GET /admin/api-access/v1/orgs/{orgId}/service-accounts",
            ExportKind::AtlassianOauthClients => "Atlassian GET /admin/api-access/v1/orgs/{orgId}/oauth-clients",
        }
    }
}

impl std::str::FromStr for ExportKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ExportKind::ALL.iter().copied().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ExportKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown export kind {s:?} (known: {})", names.join(", "))
        })
    }
}

/// Where the records of a file came from, for the batch's scope: the AWS account or GitHub
/// organisation is not always in the records themselves.
#[derive(Debug, Clone, Default)]
pub struct ImportContext {
    /// GitHub organisation or `owner/repo` the file was fetched for.
    pub github_owner: Option<String>,
    /// Okta org (`acme.okta.com`) the file was fetched from: with it, a token list is
    /// complete for that org.
    pub okta_org: Option<String>,
}

/// Reads one export. `display` names the file in errors.
pub fn read_export(
    bytes: &[u8],
    display: &str,
    kind: Option<ExportKind>,
    ctx: &ImportContext,
) -> Result<(ExportKind, InventoryBatch)> {
    if bytes.iter().take(3).eq(b"\xEF\xBB\xBF".iter()) {
        return read_export(&bytes[3..], display, kind, ctx);
    }
    let looks_csv = bytes.starts_with(b"user,arn,");
    if kind == Some(ExportKind::AwsCredentialReport) || (kind.is_none() && looks_csv) {
        let batch = aws::credential_report(bytes).with_context(|| format!("{display}: AWS credential report"))?;
        return Ok((ExportKind::AwsCredentialReport, batch));
    }
    let pages = json_pages(bytes).with_context(|| format!("{display}: not JSON and not a credential report CSV"))?;
    let kind = match kind {
        Some(k) => k,
        None => detect(&pages).with_context(|| format!("{display}: unknown export"))?,
    };
    let batch = read_pages(kind, &pages, ctx).with_context(|| format!("{display}: {}", kind.describe()))?;
    Ok((kind, batch))
}

/// Turns the parsed pages of one endpoint into a batch: what `read_export` does after parsing
/// a file, and what a live connector does with the pages it fetched.
pub fn read_pages(kind: ExportKind, pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    reject_repeated_pages(pages)?;
    let batch = read_pages_of(kind, pages, ctx)?;
    reject_repeated_credentials(&batch)?;
    Ok(batch)
}

/// A page saved twice (a retried `curl >>`, a paginator that restarted) would count its
/// records twice; better to say so than to guess which copy is right.
fn reject_repeated_pages(pages: &[Value]) -> Result<()> {
    if pages.len() < 2 {
        return Ok(());
    }
    // Pages are grouped by their first record, so only pages that start alike are compared
    // whole: serialising every page to compare it cost as much as reading it.
    let mut by_first_record: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for (index, page) in pages.iter().enumerate() {
        // Empty pages look alike (two users without keys), and count nothing twice.
        let first = match page {
            Value::Array(items) => items.first(),
            Value::Object(fields) => fields.values().filter_map(Value::as_array).find_map(|a| a.first()),
            _ => None,
        };
        let Some(first) = first else { continue };
        let earlier = by_first_record.entry(first.to_string()).or_default();
        if let Some(&same) = earlier.iter().find(|&&i| pages[i] == *page) {
            bail!("page {} repeats page {} exactly: was a page saved twice?", index + 1, same + 1);
        }
        earlier.push(index);
    }
    Ok(())
}

/// One credential listed twice with different contents: the file mixes two exports.
fn reject_repeated_credentials(batch: &InventoryBatch) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (index, credential) in batch.credentials.iter().enumerate() {
        if !seen.insert(credential.external_id.as_str()) {
            bail!(
                "credential {} ({}) is listed twice, the second time as credential {} of the file; \
                 does the file hold two exports?",
                credential.external_id,
                credential.name,
                index + 1
            );
        }
    }
    Ok(())
}

fn read_pages_of(kind: ExportKind, pages: &[Value], ctx: &ImportContext) -> Result<InventoryBatch> {
    match kind {
        ExportKind::AwsCredentialReport => bail!("the credential report is CSV, not JSON pages"),
        ExportKind::AwsListAccessKeys => aws::list_access_keys(pages),
        ExportKind::AwsRoles => aws::roles(pages),
        ExportKind::GithubInstallations => github::installations(pages, ctx),
        ExportKind::GithubPersonalAccessTokens => github::personal_access_tokens(pages, ctx),
        ExportKind::GithubDeployKeys => github::deploy_keys(pages, ctx),
        ExportKind::GithubOrgWebhooks => github::org_webhooks(pages, ctx),
        ExportKind::GithubRepoWebhooks => github::repo_webhooks(pages, ctx),
        ExportKind::GithubCredentialAuthorizations => github::credential_authorizations(pages, ctx),
        ExportKind::GithubPersonalAccessTokenRequests => github::personal_access_token_requests(pages, ctx),
        ExportKind::GoogleTokens => google::tokens(pages),
        ExportKind::OktaApiTokens => okta::api_tokens(pages, ctx.okta_org.as_deref()),
        ExportKind::OktaApps => okta::apps(pages, ctx.okta_org.as_deref()),
        ExportKind::OktaServiceAccounts => okta::service_accounts(pages, ctx.okta_org.as_deref()),
        ExportKind::SlackIntegrationLogs => slack::integration_logs(pages),
        ExportKind::SlackBots => slack::bots(pages),
        ExportKind::AtlassianApiTokens => atlassian::api_tokens(pages),
        ExportKind::AtlassianServiceAccounts => atlassian::service_accounts(pages),
        ExportKind::AtlassianOauthClients => atlassian::oauth_clients(pages),
    }
}

/// Reads the AWS IAM credential report CSV.
pub fn read_credential_report(bytes: &[u8]) -> Result<InventoryBatch> {
    aws::credential_report(bytes)
}

/// A batch from `source` with no records yet and no claim to be complete.
fn empty_batch(source: &str) -> InventoryBatch {
    InventoryBatch { source: source.into(), complete_scope: None, identities: Vec::new(), credentials: Vec::new() }
}

/// Every JSON value in the file: one page, or pages written one after another.
fn json_pages(bytes: &[u8]) -> Result<Vec<Value>> {
    let mut pages = Vec::new();
    for (index, page) in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>().enumerate() {
        let page = page.map_err(|e| {
            anyhow::anyhow!("page {}: invalid JSON at line {}, column {}: {e}", index + 1, e.line(), e.column())
        })?;
        pages.push(page);
    }
    if pages.is_empty() {
        bail!("the file is empty");
    }
    Ok(pages)
}

fn detect(pages: &[Value]) -> Result<ExportKind> {
    let first = &pages[0];
    let has = |v: &Value, key: &str| v.get(key).is_some();
    let first_item = first.as_array().and_then(|a| a.first());
    // Atlassian's admin API wraps its lists: `{"data": [...], "links": {...}}` or
    // `{"items": [...], "links": {...}, "total": N}`.
    let wrapped_item = |field: &str| first.get(field).and_then(Value::as_array).and_then(|a| a.first());
    let kind = if has(first, "AccessKeyMetadata") {
        ExportKind::AwsListAccessKeys
    } else if has(first, "Roles") || has(first, "RoleDetailList") {
        ExportKind::AwsRoles
    } else if has(first, "logs") && has(first, "ok") {
        ExportKind::SlackIntegrationLogs
    } else if has(first, "members") && has(first, "ok") {
        ExportKind::SlackBots
    } else if first.get("kind").and_then(Value::as_str) == Some("admin#directory#tokenList") {
        ExportKind::GoogleTokens
    } else if has(first, "installations") {
        ExportKind::GithubInstallations
    } else if let Some(item) = wrapped_item("data").filter(|_| has(first, "links")) {
        if has(item, "label") && has(item, "user") {
            ExportKind::AtlassianApiTokens
        } else if has(item, "clientId") {
            ExportKind::AtlassianOauthClients
        } else {
            let keys: Vec<&str> =
                item.as_object().map(|o| o.keys().map(String::as_str).take(8).collect()).unwrap_or_default();
            bail!("a list of records with fields {} matches no known endpoint; name it with --kind", keys.join(", "));
        }
    } else if wrapped_item("items").is_some_and(|item| has(item, "atlassianId")) {
        ExportKind::AtlassianServiceAccounts
    } else if let Some(item) = first_item {
        if has(item, "credential_id") && has(item, "credential_type") {
            ExportKind::GithubCredentialAuthorizations
        } else if has(item, "owner")
            && has(item, "reason")
            && has(item, "created_at")
            && !has(item, "access_granted_at")
        {
            // A request, not a grant: it has no `access_granted_at` yet.
            ExportKind::GithubPersonalAccessTokenRequests
        } else if has(item, "token_id") && has(item, "access_granted_at")
            || has(item, "token_name") && has(item, "owner")
        {
            ExportKind::GithubPersonalAccessTokens
        } else if has(item, "key") && has(item, "read_only") {
            ExportKind::GithubDeployKeys
        } else if has(item, "config") && has(item, "events") && has(item, "ping_url") {
            // Repository hooks say so in `type` and have a `test_url`; organisation hooks
            // have neither.
            let repository = item.get("type").and_then(Value::as_str) == Some("Repository")
                || has(item, "test_url")
                || item.get("url").and_then(Value::as_str).is_some_and(|u| u.contains("/repos/"));
            if repository {
                ExportKind::GithubRepoWebhooks
            } else {
                ExportKind::GithubOrgWebhooks
            }
        } else if has(item, "tokenWindow") && has(item, "userId") {
            ExportKind::OktaApiTokens
        } else if has(item, "signOnMode") && has(item, "label") {
            ExportKind::OktaApps
        } else if has(item, "containerOrn") && has(item, "username") {
            ExportKind::OktaServiceAccounts
        } else {
            let keys: Vec<&str> =
                item.as_object().map(|o| o.keys().map(String::as_str).take(8).collect()).unwrap_or_default();
            bail!("a list of records with fields {} matches no known endpoint; name it with --kind", keys.join(", "));
        }
    } else if first.as_array().is_some_and(|a| a.is_empty()) {
        bail!("an empty list: which endpoint it came from cannot be told; name it with --kind");
    } else {
        let keys: Vec<&str> =
            first.as_object().map(|o| o.keys().map(String::as_str).take(8).collect()).unwrap_or_default();
        bail!("an object with fields {} matches no known endpoint; name it with --kind", keys.join(", "));
    };
    Ok(kind)
}

/// The records of every page: pages that are arrays, or the array under `field` of pages that
/// are objects (`{"installations": [...]}`).
fn records<'v>(pages: &'v [Value], field: Option<&str>) -> Result<Vec<&'v Value>> {
    let mut out = Vec::new();
    for (index, page) in pages.iter().enumerate() {
        let list = match field {
            Some(f) => page.get(f).and_then(Value::as_array),
            None => page.as_array(),
        };
        let Some(list) = list else {
            match field {
                Some(f) => bail!("page {}: no \"{f}\" list", index + 1),
                None => bail!("page {}: not a JSON array", index + 1),
            }
        };
        out.extend(list.iter());
    }
    Ok(out)
}

/// Field access with errors that name the record.
struct Record<'v> {
    value: &'v Value,
    index: usize,
}

impl<'v> Record<'v> {
    fn new(value: &'v Value, index: usize) -> Result<Self> {
        if !value.is_object() {
            bail!("record {index}: not a JSON object");
        }
        Ok(Record { value, index })
    }

    fn required_str(&self, key: &str) -> Result<&'v str> {
        match self.value.get(key) {
            Some(Value::String(s)) => Ok(s),
            Some(Value::Number(_)) => bail!("record {}: \"{key}\" is a number, expected text", self.index),
            Some(other) if !other.is_null() => bail!("record {}: \"{key}\" has the wrong type", self.index),
            _ => bail!("record {}: missing \"{key}\"", self.index),
        }
    }

    /// A text or numeric id, as text.
    fn required_id(&self, key: &str) -> Result<String> {
        match self.value.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(_) => bail!("record {}: \"{key}\" is not an id", self.index),
            None => bail!("record {}: missing \"{key}\"", self.index),
        }
    }

    fn optional_str(&self, key: &str) -> Result<Option<&'v str>> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => bail!("record {}: \"{key}\" has the wrong type, expected text", self.index),
        }
    }

    fn required_time(&self, key: &str) -> Result<String> {
        let text = self.required_str(key)?;
        normalise_time(text)
            .ok_or_else(|| anyhow::anyhow!("record {}: \"{key}\" is not a date and time: {text:?}", self.index))
    }

    fn optional_time(&self, key: &str) -> Result<Option<String>> {
        match self.optional_str(key)? {
            None => Ok(None),
            Some(text) => normalise_time(text)
                .map(Some)
                .ok_or_else(|| anyhow::anyhow!("record {}: \"{key}\" is not a date and time: {text:?}", self.index)),
        }
    }

    /// A list of strings; absent or null is empty.
    fn optional_text_list(&self, key: &str) -> Result<Vec<String>> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| anyhow::anyhow!("record {}: an entry of \"{key}\" is not text", self.index)),
            Some(_) => bail!("record {}: \"{key}\" is not a list", self.index),
        }
    }

    fn optional_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => bail!("record {}: \"{key}\" is not true or false", self.index),
        }
    }
}

/// An RFC 3339 time with any offset, as RFC 3339 UTC.
pub fn normalise_time(text: &str) -> Option<String> {
    keywatch_model::time::parse_rfc3339(text.trim()).map(keywatch_model::time::rfc3339_utc)
}
