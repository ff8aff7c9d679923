//! AWS IAM: every user's access keys (with their last use), the roles and their trust
//! policies, and the credential report, through the IAM Query API (`Version=2010-05-08`,
//! XML answers, SigV4-signed GET requests).
//!
//! Each answer is turned into the JSON `aws iam ... --output json` prints, so the same readers
//! as `inventory import` make the batches.

use super::sigv4::{self, Credentials, SigningRequest};
use super::{ApiClient, EndpointOutcome, RetryPolicy};
use crate::import::{normalise_time, read_credential_report, read_pages, ExportKind, ImportContext};
use anyhow::{anyhow, bail, Result};
use base64::Engine as _;
use keywatch_model::inventory::InventoryBatch;
use quick_xml::events::Event;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

/// `[inventory.aws]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// `https://iam.amazonaws.com` by default (`https://iam.cn-north-1.amazonaws.com.cn`,
    /// `https://iam.us-gov.amazonaws.com` in the other partitions).
    pub base_url: Option<String>,
    /// The region requests are signed for: `us-east-1` by default, where IAM lives.
    pub region: Option<String>,
    /// The variable holding the access key id (default `AWS_ACCESS_KEY_ID`).
    pub access_key_id_env: Option<String>,
    /// The variable holding the secret access key (default `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key_env: Option<String>,
    /// The variable holding the session token of temporary credentials. Unset:
    /// `AWS_SESSION_TOKEN` if the access key comes from `AWS_ACCESS_KEY_ID`, else none.
    pub session_token_env: Option<String>,
}

const PLATFORM: &str = "aws";
const VERSION: &str = "2010-05-08";
const PAGE_SIZE: &str = "1000";
/// How many times GenerateCredentialReport is asked before giving up on the report; the
/// waits between asks double from the retry backoff up to eight times it (4 s by default).
const REPORT_POLLS: u32 = 12;
const LONGEST_POLL_WAIT: Duration = Duration::from_secs(5);

pub async fn sync(config: &AwsConfig, policy: &RetryPolicy) -> Vec<EndpointOutcome> {
    let iam = match Iam::new(config, policy) {
        Ok(c) => c,
        Err(e) => return vec![EndpointOutcome::new(PLATFORM, "connect", Err(e))],
    };
    let mut keys = access_keys(&iam).await;
    let roles = roles(&iam).await;
    // Without users the keys' account is unknown; the roles name it, and an empty key list
    // of a known account is complete too.
    if let (Ok(batch), Ok(roles)) = (&mut keys, &roles) {
        if batch.complete_scope.is_none() {
            if let Some(account) = roles.identities.iter().find_map(|i| account_of(&i.external_id)) {
                batch.complete_scope = Some(format!("aws:{account}:access-keys"));
            }
        }
    }
    let report = credential_report(&iam, policy).await;
    vec![
        EndpointOutcome::new(PLATFORM, "access-keys", keys),
        EndpointOutcome::new(PLATFORM, "roles", roles),
        EndpointOutcome::new(PLATFORM, "credential-report", report),
    ]
}

/// Every user's access keys in one batch, complete for the account: ListUsers, then
/// ListAccessKeys and GetAccessKeyLastUsed for each.
async fn access_keys(iam: &Iam) -> Result<InventoryBatch> {
    let users = iam.list("ListUsers", &[], "Users").await?;
    let mut account: Option<String> = None;
    let mut pages = Vec::new();
    let mut key_ids = Vec::new();
    for (index, user) in users.iter().enumerate() {
        let (Some(name), Some(arn)) = (user.text_of("UserName"), user.text_of("Arn")) else {
            bail!("IAM ListUsers: user {} has no UserName or Arn", index + 1);
        };
        match account_of(arn) {
            Some(a) if account.as_deref().is_none_or(|known| known == a) => account = Some(a.to_string()),
            _ => bail!("IAM ListUsers: user {name:?} has an unexpected ARN {arn:?}"),
        }
        let keys = iam.list("ListAccessKeys", &[("UserName", name)], "AccessKeyMetadata").await?;
        for key in &keys {
            if let Some(id) = key.text_of("AccessKeyId") {
                key_ids.push(id.to_string());
            }
        }
        pages.push(serde_json::json!({ "AccessKeyMetadata": keys.iter().map(Node::to_json).collect::<Vec<_>>() }));
    }
    if pages.is_empty() {
        pages.push(serde_json::json!({ "AccessKeyMetadata": [] }));
    }
    let mut batch = read_pages(ExportKind::AwsListAccessKeys, &pages, &ImportContext::default())
        .map_err(|e| anyhow!("IAM ListAccessKeys: {e:#}"))?;
    let mut last_used: HashMap<String, Option<String>> = HashMap::new();
    for id in key_ids {
        let result = iam.call("GetAccessKeyLastUsed", &[("AccessKeyId", &id)]).await?;
        let used = match result.child("AccessKeyLastUsed").and_then(|u| u.text_of("LastUsedDate")) {
            None | Some("") => None,
            Some(t) => Some(normalise_time(t).ok_or_else(|| {
                anyhow!("IAM GetAccessKeyLastUsed: LastUsedDate {t:?} of key {id} is not a date and time")
            })?),
        };
        last_used.insert(id, used);
    }
    for credential in &mut batch.credentials {
        if let Some(used) = last_used.get(&credential.external_id) {
            credential.last_used.clone_from(used);
        }
    }
    // The importer calls one user's list complete for that user; this batch lists every
    // user's keys, so it is complete for the account.
    batch.complete_scope = account.map(|a| format!("aws:{a}:access-keys"));
    Ok(batch)
}

async fn roles(iam: &Iam) -> Result<InventoryBatch> {
    let roles = iam.list("ListRoles", &[], "Roles").await?;
    let page = serde_json::json!({ "Roles": roles.iter().map(Node::to_json).collect::<Vec<_>>() });
    read_pages(ExportKind::AwsRoles, &[page], &ImportContext::default()).map_err(|e| anyhow!("IAM ListRoles: {e:#}"))
}

/// GenerateCredentialReport until it says COMPLETE (a report less than four hours old is
/// reused), then GetCredentialReport.
async fn credential_report(iam: &Iam, policy: &RetryPolicy) -> Result<InventoryBatch> {
    let mut poll = 0;
    loop {
        let result = iam.call("GenerateCredentialReport", &[]).await?;
        match result.text_of("State") {
            Some("COMPLETE") => break,
            Some("STARTED" | "INPROGRESS") if poll + 1 < REPORT_POLLS => {
                let wait = policy.initial_backoff.saturating_mul(1 << poll.min(3)).min(LONGEST_POLL_WAIT);
                tokio::time::sleep(wait).await;
                poll += 1;
            }
            Some("STARTED" | "INPROGRESS") => {
                bail!("IAM GenerateCredentialReport: the report was not ready after {REPORT_POLLS} polls")
            }
            other => bail!("IAM GenerateCredentialReport: unexpected State {:?}", other.unwrap_or("(none)")),
        }
    }
    let result = iam.call("GetCredentialReport", &[]).await?;
    if let Some(format) = result.text_of("ReportFormat").filter(|f| *f != "text/csv") {
        bail!("IAM GetCredentialReport: ReportFormat {format:?}, expected text/csv");
    }
    let content = result.text_of("Content").ok_or_else(|| anyhow!("IAM GetCredentialReport: no Content"))?;
    let compact: String = content.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| anyhow!("IAM GetCredentialReport: Content is not base64: {e}"))?;
    read_credential_report(&bytes).map_err(|e| anyhow!("IAM GetCredentialReport: credential report: {e:#}"))
}

/// The account of an IAM ARN (`arn:aws:iam::123456789012:user/x`).
fn account_of(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    if parts.next() != Some("arn") || parts.nth(1) != Some("iam") {
        return None;
    }
    let account = parts.nth(1)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// IAM answers a throttled request with 400 and `<Code>Throttling</Code>`.
fn throttled(status: StatusCode, body: &[u8]) -> bool {
    const CODES: [&[u8]; 3] =
        [b"<Code>Throttling</Code>", b"<Code>ThrottlingException</Code>", b"<Code>RequestLimitExceeded</Code>"];
    !status.is_success() && CODES.iter().any(|code| body.windows(code.len()).any(|w| w == *code))
}

/// The IAM endpoint, signing each attempt anew.
struct Iam {
    api: ApiClient,
    credentials: Credentials,
    region: String,
    /// `Host` as sent, and the path requests go to.
    host: String,
    path: String,
}

impl Iam {
    fn new(config: &AwsConfig, policy: &RetryPolicy) -> Result<Iam> {
        let secret = super::secret;
        let access_key_id =
            secret("AWS", "access key id", None, config.access_key_id_env.as_deref(), &["AWS_ACCESS_KEY_ID"])?;
        let secret_access_key = secret(
            "AWS",
            "secret access key",
            None,
            config.secret_access_key_env.as_deref(),
            &["AWS_SECRET_ACCESS_KEY"],
        )?;
        let session_token = match (&config.session_token_env, &config.access_key_id_env) {
            (Some(name), _) => Some(secret("AWS", "session token", None, Some(name), &[])?),
            (None, None) => secret("AWS", "session token", None, None, &["AWS_SESSION_TOKEN"]).ok(),
            (None, Some(_)) => None,
        };
        let api = ApiClient::new(
            "AWS",
            config.base_url.as_deref().unwrap_or("https://iam.amazonaws.com"),
            vec![("accept", "text/xml".into())],
            policy.clone(),
        )?
        .with_throttle_detector(throttled);
        let url = reqwest::Url::parse(&format!("{}/", api.base_url()))
            .map_err(|e| anyhow!("AWS: base URL {:?} is not a URL: {e}", api.base_url()))?;
        let Some(host) = url.host_str() else { bail!("AWS: base URL {:?} has no host", api.base_url()) };
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Ok(Iam {
            path: url.path().to_string(),
            host,
            api,
            credentials: Credentials { access_key_id, secret_access_key, session_token },
            region: config.region.clone().unwrap_or_else(|| "us-east-1".into()),
        })
    }

    /// One action; returns its `<ActionResult>` element. Errors name the action.
    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<Node> {
        let mut all = vec![("Action", action), ("Version", VERSION)];
        all.extend_from_slice(params);
        let query = sigv4::canonical_query(&all);
        let url = format!("{}/?{query}", self.api.base_url());
        let build = || {
            let request = SigningRequest {
                method: "GET",
                host: &self.host,
                path: &self.path,
                query: &query,
                headers: &[],
                payload: b"",
            };
            let date = sigv4::amz_date(SystemTime::now());
            let mut builder = self.api.request(Method::GET, &url);
            for (name, value) in sigv4::sign(&request, &self.credentials, &self.region, "iam", &date) {
                let mut value =
                    HeaderValue::from_str(&value).map_err(|_| anyhow!("AWS: the {name} header is not valid"))?;
                value.set_sensitive(name != "x-amz-date");
                builder = builder.header(name, value);
            }
            builder.build().map_err(Into::into)
        };
        let response = self.api.execute(&build).await.map_err(|e| anyhow!("IAM {action}: {e:#}"))?;
        let root = parse_xml(&response.body)
            .map_err(|e| anyhow!("IAM {action}: the response is not valid XML ({e}); {} bytes", response.body.len()))?;
        if root.name != format!("{action}Response") {
            bail!("IAM {action}: the response is <{}>, not <{action}Response>", root.name);
        }
        root.children
            .into_iter()
            .find(|c| c.name == format!("{action}Result"))
            .ok_or_else(|| anyhow!("IAM {action}: the response has no <{action}Result>"))
    }

    /// The `member`s of `list` on every page of a paginated action (`IsTruncated`, `Marker`).
    async fn list(&self, action: &str, params: &[(&str, &str)], list: &str) -> Result<Vec<Node>> {
        let mut members = Vec::new();
        let mut marker: Option<String> = None;
        let mut seen = HashSet::new();
        for page in 1.. {
            let mut all: Vec<(&str, &str)> = params.to_vec();
            all.push(("MaxItems", PAGE_SIZE));
            if let Some(m) = &marker {
                all.push(("Marker", m));
            }
            let mut result = self.call(action, &all).await?;
            let Some(index) = result.children.iter().position(|c| c.name == list) else {
                bail!("IAM {action}: page {page} has no <{list}>");
            };
            let items = result.children.remove(index);
            if let Some(other) = items.children.iter().find(|c| c.name != "member") {
                bail!("IAM {action}: page {page}: <{}> in <{list}>", other.name);
            }
            members.extend(items.children);
            match result.text_of("IsTruncated") {
                Some("true") => {
                    let Some(next) = result.text_of("Marker").filter(|m| !m.is_empty()) else {
                        bail!("IAM {action}: page {page} is truncated but has no Marker");
                    };
                    if !seen.insert(next.to_string()) {
                        bail!("IAM {action}: page {page} repeats the Marker of an earlier page; stopping");
                    }
                    marker = Some(next.to_string());
                }
                None | Some("false") => break,
                Some(other) => bail!("IAM {action}: page {page}: IsTruncated is {other:?}"),
            }
        }
        Ok(members)
    }
}

/// An XML element: its local name, its text, its child elements.
#[derive(Debug, Default, Clone, PartialEq)]
struct Node {
    name: String,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The JSON the AWS CLI prints for it: a leaf as text, a list of `member`s as an array,
    /// other elements as objects.
    fn to_json(&self) -> Value {
        if self.children.is_empty() {
            Value::String(self.text.clone())
        } else if self.children.iter().all(|c| c.name == "member") {
            Value::Array(self.children.iter().map(Node::to_json).collect())
        } else {
            let mut map = Map::new();
            for c in &self.children {
                map.insert(c.name.clone(), c.to_json());
            }
            Value::Object(map)
        }
    }
}

/// The document's root element. Anything but one well-formed element is an error.
fn parse_xml(body: &[u8]) -> Result<Node> {
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let name_of = |e: &quick_xml::events::BytesStart<'_>| String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    loop {
        let event = reader.read_event().map_err(|e| anyhow!("at byte {}: {e}", reader.error_position()))?;
        let finished = match event {
            Event::Start(e) => {
                if root.is_some() {
                    bail!("a second root element <{}>", name_of(&e));
                }
                stack.push(Node { name: name_of(&e), ..Node::default() });
                None
            }
            Event::Empty(e) => {
                let node = Node { name: name_of(&e), ..Node::default() };
                match stack.last_mut() {
                    Some(parent) => {
                        parent.children.push(node);
                        None
                    }
                    None => Some(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(|| anyhow!("an end tag without a start tag"))?;
                match stack.last_mut() {
                    Some(parent) => {
                        parent.children.push(node);
                        None
                    }
                    None => Some(node),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| anyhow!("at byte {}: {e}", reader.buffer_position()))?;
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => bail!("text outside the root element"),
                }
                None
            }
            Event::CData(c) => {
                let text = c.decode().map_err(|e| anyhow!("at byte {}: {e}", reader.buffer_position()))?;
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&text),
                    None => bail!("text outside the root element"),
                }
                None
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    bail!("the document ends inside <{}>", open.name);
                }
                return root.ok_or_else(|| anyhow!("no root element"));
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => None,
        };
        if let Some(node) = finished {
            if root.is_some() {
                bail!("a second root element <{}>", node.name);
            }
            root = Some(node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_to_cli_json() {
        let root = parse_xml(
            br#"<?xml version="1.0"?>
<ListAccessKeysResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <ListAccessKeysResult>
    <UserName>Bob</UserName>
    <AccessKeyMetadata>
      <member><UserName>Bob</UserName><AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId><Status>Active</Status></member>
    </AccessKeyMetadata>
    <Tags/>
    <Note>a &amp; b</Note>
    <IsTruncated>false</IsTruncated>
  </ListAccessKeysResult>
</ListAccessKeysResponse>"#,
        )
        .unwrap();
        assert_eq!(root.name, "ListAccessKeysResponse");
        let result = root.child("ListAccessKeysResult").unwrap();
        assert_eq!(result.text_of("Note"), Some("a & b"));
        assert_eq!(
            result.child("AccessKeyMetadata").unwrap().to_json(),
            serde_json::json!([{"UserName": "Bob", "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "Status": "Active"}])
        );
    }

    #[test]
    fn malformed_xml_is_an_error() {
        for bad in [&b"<A><B></A>"[..], b"<A><B>", b"", b"not xml", b"<A/><B/>", b"<A></A><B></B>"] {
            assert!(parse_xml(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn throttling_is_told_by_the_body() {
        let body = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert!(throttled(StatusCode::BAD_REQUEST, body));
        assert!(!throttled(StatusCode::OK, body));
        assert!(!throttled(
            StatusCode::BAD_REQUEST,
            b"<ErrorResponse><Error><Code>ValidationError</Code></Error></ErrorResponse>"
        ));
    }

    #[test]
    fn accounts_of_arns() {
        assert_eq!(account_of("arn:aws:iam::123456789012:user/ci"), Some("123456789012"));
        assert_eq!(account_of("arn:aws-cn:iam::123456789012:role/x"), Some("123456789012"));
        assert_eq!(account_of("arn:aws:s3:::bucket"), None);
        assert_eq!(account_of("user/ci"), None);
    }
}
