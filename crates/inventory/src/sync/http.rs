//! The HTTP client every connector shares: timeouts, retries with exponential backoff, and
//! the platforms' rate-limit signals (`Retry-After`, `x-ratelimit-*`, `X-Rate-Limit-*`).
//!
//! A connector hands [`ApiClient::execute`] a function that builds its request, because a
//! retried request must be built again (AWS signs each attempt with the current time).

use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Request, StatusCode};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How patient a connector is with a platform.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Whole-request timeout, connection included.
    pub timeout: Duration,
    /// Attempts after the first one, for 429, 5xx, timeouts and dropped connections.
    pub max_retries: u32,
    /// First backoff; doubled per attempt, with jitter.
    pub initial_backoff: Duration,
    /// The longest Keywatch waits for a rate limit to reset before giving up on the request.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            timeout: Duration::from_secs(30),
            max_retries: 5,
            initial_backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(900),
        }
    }
}

/// One platform's API: its base URL, credentials sent on every request, and retry policy.
pub struct ApiClient {
    /// Names the platform in errors: `GitHub`, `Okta`.
    pub platform: &'static str,
    base_url: String,
    http: reqwest::Client,
    policy: RetryPolicy,
    /// Tells a throttling answer the status code does not show (AWS answers 400 `Throttling`).
    throttled_body: fn(StatusCode, &[u8]) -> bool,
}

/// A response whose status was a success.
#[derive(Debug)]
pub struct Response {
    pub url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON; an error names the URL, since a malformed page must fail its whole
    /// listing rather than be read as a short one.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            anyhow!(
                "{}: the response is not valid JSON (line {}, column {}: {e}); {} bytes received",
                redact_url(&self.url),
                e.line(),
                e.column(),
                self.body.len()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl ApiClient {
    /// `default_headers` carry the credentials; they are marked sensitive so that no debug
    /// output of the client shows them.
    pub fn new(
        platform: &'static str,
        base_url: &str,
        default_headers: Vec<(&'static str, String)>,
        policy: RetryPolicy,
    ) -> Result<ApiClient> {
        let mut headers = HeaderMap::new();
        for (name, value) in default_headers {
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| anyhow!("{platform}: the {name} header value is not valid"))?;
            value.set_sensitive(name == "authorization" || name.contains("token") || name.contains("key"));
            headers.insert(HeaderName::from_static(name), value);
        }
        headers.entry(reqwest::header::ACCEPT).or_insert(HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .user_agent(concat!("keywatch/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(10)))
            .build()
            .context("cannot build the HTTP client")?;
        let base_url = base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            bail!("{platform}: base URL {base_url:?} must start with https:// (or http:// for a local test server)");
        }
        Ok(ApiClient { platform, base_url, http, policy, throttled_body: |_, _| false })
    }

    pub fn with_throttle_detector(mut self, detector: fn(StatusCode, &[u8]) -> bool) -> ApiClient {
        self.throttled_body = detector;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `path` relative to the base URL, or a whole URL as a `Link` header gives it. A whole URL
    /// must stay on the base URL's host, so a page cannot send our credentials elsewhere.
    pub fn url(&self, path_or_url: &str) -> Result<String> {
        if path_or_url.starts_with("https://") || path_or_url.starts_with("http://") {
            if origin(path_or_url) != origin(&self.base_url) {
                bail!(
                    "{}: a next-page link points to {}, not to {}; not following it",
                    self.platform,
                    origin(path_or_url),
                    origin(&self.base_url)
                );
            }
            return Ok(path_or_url.to_string());
        }
        Ok(format!("{}/{}", self.base_url, path_or_url.trim_start_matches('/')))
    }

    /// GET a path (or whole URL) with query parameters.
    pub async fn get(&self, path_or_url: &str, query: &[(&str, &str)]) -> Result<Response> {
        let url = self.url(path_or_url)?;
        self.execute(&|| self.http.request(Method::GET, &url).query(query).build().map_err(Into::into)).await
    }

    /// A request builder on this client, for connectors that need more than GET.
    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends the request `build` makes, retrying what is worth retrying, and returns the first
    /// successful response. Errors say what the platform answered, never the credentials.
    pub async fn execute(&self, build: &(dyn Fn() -> Result<Request> + Sync)) -> Result<Response> {
        let mut attempt = 0u32;
        loop {
            let request = build()?;
            let url = request.url().to_string();
            let shown = format!("{} {}", request.method(), redact_url(&url));
            let outcome = self.http.execute(request).await;
            let wait = match outcome {
                Err(e) => {
                    let why =
                        if e.is_timeout() { "timed out".to_string() } else { format!("failed: {}", error_chain(&e)) };
                    if attempt >= self.policy.max_retries {
                        bail!("{} {shown}: {why}, {} attempts", self.platform, attempt + 1);
                    }
                    self.backoff(attempt)
                }
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = match response.bytes().await {
                        Ok(b) => b.to_vec(),
                        Err(e) if attempt < self.policy.max_retries => {
                            eprintln!(
                                "keywatch: {} {shown}: the body was cut off ({}); retrying",
                                self.platform,
                                error_chain(&e)
                            );
                            tokio::time::sleep(self.backoff(attempt)).await;
                            attempt += 1;
                            continue;
                        }
                        Err(e) => bail!("{} {shown}: the body was cut off: {}", self.platform, error_chain(&e)),
                    };
                    if status.is_success() && !(self.throttled_body)(status, &body) {
                        if let Some(wait) = exhausted_quota_wait(&headers, SystemTime::now()) {
                            // The quota is spent: pause before the next request instead of
                            // collecting a 429 for it.
                            if wait <= self.policy.max_wait {
                                tokio::time::sleep(wait).await;
                            }
                        }
                        return Ok(Response { url, headers, body });
                    }
                    let throttled = status == StatusCode::TOO_MANY_REQUESTS
                        || (status == StatusCode::FORBIDDEN && rate_limit_exhausted(&headers))
                        || (status == StatusCode::FORBIDDEN && headers.contains_key(reqwest::header::RETRY_AFTER))
                        || (self.throttled_body)(status, &body);
                    let retryable = throttled || status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT;
                    if !retryable {
                        bail!("{} {shown}: HTTP {status}{}", self.platform, body_excerpt(&body));
                    }
                    if attempt >= self.policy.max_retries {
                        bail!(
                            "{} {shown}: HTTP {status} after {} attempts{}",
                            self.platform,
                            attempt + 1,
                            body_excerpt(&body)
                        );
                    }
                    let asked = if throttled { server_wait(&headers, SystemTime::now()) } else { None };
                    match asked {
                        Some(wait) if wait > self.policy.max_wait => bail!(
                            "{} {shown}: rate limited for {} s, longer than the {} s this sync waits",
                            self.platform,
                            wait.as_secs(),
                            self.policy.max_wait.as_secs()
                        ),
                        Some(wait) => wait,
                        None => self.backoff(attempt),
                    }
                }
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// `initial * 2^attempt`, plus up to a quarter more so that parallel syncs spread out.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.policy.initial_backoff.saturating_mul(1u32 << attempt.min(16));
        let jitter_seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let jitter = base.mul_f64(f64::from(jitter_seed % 1000) / 4000.0);
        (base + jitter).min(self.policy.max_wait)
    }
}

/// How long the server asked us to wait: `Retry-After` (seconds or an HTTP date), else the
/// reset time of an exhausted quota (`x-ratelimit-reset` on GitHub, `X-Rate-Limit-Reset` on
/// Okta, both Unix seconds).
pub fn server_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(value) = headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            return Some(at.duration_since(now).unwrap_or_default());
        }
    }
    reset_wait(headers, now)
}

fn reset_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = ["x-ratelimit-reset", "x-rate-limit-reset"]
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))?
        .trim();
    // Unix seconds (GitHub, Okta), or an RFC 3339 time (Atlassian).
    let reset = match value.parse::<u64>() {
        Ok(seconds) => seconds,
        Err(_) => u64::try_from(keywatch_model::time::parse_rfc3339(value)?).ok()?,
    };
    let now_secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    // A reset in the past means the quota is already back; one second covers clock skew.
    Some(Duration::from_secs(reset.saturating_sub(now_secs).max(1)))
}

fn rate_limit_exhausted(headers: &HeaderMap) -> bool {
    header_u64(headers, "x-ratelimit-remaining").or_else(|| header_u64(headers, "x-rate-limit-remaining")) == Some(0)
}

/// After a successful response that used the last of the quota: how long until it resets.
fn exhausted_quota_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if rate_limit_exhausted(headers) {
        reset_wait(headers, now)
    } else {
        None
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The URL with its query values hidden: some APIs take tokens or cursors there.
pub fn redact_url(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else { return url.to_string() };
    let names: Vec<String> =
        query.split('&').map(|pair| format!("{}=…", pair.split_once('=').map_or(pair, |(name, _)| name))).collect();
    format!("{path}?{}", names.join("&"))
}

/// `scheme://host:port` of a URL, for the same-origin check.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i);
    &url[..end]
}

/// The start of an error body, for the message: platforms say why there (bad scope, unknown
/// org). Bodies are error documents, not inventory, so they carry no credential values.
fn body_excerpt(body: &[u8]) -> String {
    if body.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!(": {}", text.trim())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The `rel="next"` target of a `Link` header (GitHub, Okta).
pub fn next_link(response: &Response) -> Option<String> {
    let header = response.header("link")?;
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        is_next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn waits_as_the_server_asks() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(server_wait(&headers(&[("retry-after", "7")]), now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(server_wait(&headers(&[("retry-after", &date)]), now), Some(Duration::from_secs(30)));
        assert_eq!(server_wait(&headers(&[("x-ratelimit-reset", "1700000042")]), now), Some(Duration::from_secs(42)));
        assert_eq!(
            server_wait(&headers(&[("x-rate-limit-reset", "1699999000")]), now),
            Some(Duration::from_secs(1)),
            "a reset in the past waits a second, not forever"
        );
        assert_eq!(
            server_wait(&headers(&[("x-ratelimit-reset", "2023-11-14T22:14:20Z")]), now),
            Some(Duration::from_secs(60)),
            "Atlassian sends the reset as a time"
        );
        assert_eq!(server_wait(&headers(&[]), now), None);
    }

    #[test]
    fn link_header_next() {
        let response = Response {
            url: "https://api.github.com/orgs/acme/installations".into(),
            headers: headers(&[(
                "link",
                "<https://api.github.com/organizations/1/installations?page=2>; rel=\"next\", <https://api.github.com/organizations/1/installations?page=5>; rel=\"last\"",
            )]),
            body: vec![],
        };
        assert_eq!(
            next_link(&response).as_deref(),
            Some("https://api.github.com/organizations/1/installations?page=2")
        );
        let last = Response { headers: headers(&[("link", "<https://x/y?page=1>; rel=\"prev\"")]), ..response };
        assert_eq!(next_link(&last), None);
    }

    #[test]
    fn query_values_are_hidden() {
        assert_eq!(
            redact_url("https://slack.com/api/x?token=xoxb-1&cursor=abc"),
            "https://slack.com/api/x?token=…&cursor=…"
        );
        assert_eq!(redact_url("https://a/b"), "https://a/b");
    }

    #[test]
    fn links_must_stay_on_the_platform() {
        let client = ApiClient::new("GitHub", "https://api.github.com/", vec![], RetryPolicy::default()).unwrap();
        assert_eq!(client.url("/orgs/a").unwrap(), "https://api.github.com/orgs/a");
        assert!(client.url("https://api.github.com/orgs/a?page=2").is_ok());
        assert!(client.url("https://evil.example/orgs/a?page=2").is_err());
        assert!(client.url("https://api.github.com.evil.example/x").is_err());
    }
}
