//! The GitHub connector against a real HTTP server on loopback that answers like the GitHub
//! REST API: `Link` pagination, 429 with `Retry-After`, an exhausted quota, 5xx and a
//! truncated page.

use keywatch_inventory::sync::{self, github::GithubConfig, SyncConfig};
use keywatch_model::inventory::{CredentialKind, CredentialStatus};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghp_TestOnlyTokenValue0123456789abcdefABCD";

fn installation(id: u64, slug: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "account": {"login": "acme", "id": 1, "type": "Organization"}, "app_id": id * 10,
        "app_slug": slug, "target_id": 1, "target_type": "Organization", "repository_selection": "all",
        "permissions": {"contents": "read", "metadata": "read"}, "events": ["push"],
        "created_at": "2023-04-01T10:00:00Z", "updated_at": "2023-04-01T10:00:00Z",
        "suspended_at": null, "suspended_by": null, "single_file_name": null
    })
}

fn config(server: &MockServer, token_env: &str, repos: Option<Vec<&str>>) -> SyncConfig {
    SyncConfig {
        initial_backoff_ms: Some(1),
        max_retries: Some(3),
        github: Some(GithubConfig {
            org: "acme".into(),
            base_url: Some(server.uri()),
            token_env: Some(token_env.into()),
            repos: repos.map(|r| r.into_iter().map(String::from).collect()),
            saml_sso: true,
            token: None,
        }),
        ..SyncConfig::default()
    }
}

/// Every request must carry the token; anything else gets wiremock's 404.
fn authorised() -> wiremock::matchers::HeaderExactMatcher {
    header("authorization", format!("Bearer {TOKEN}").as_str())
}

async fn mount_ok(server: &MockServer, route: &str, body: serde_json::Value) {
    Mock::given(method("GET"))
        .and(path(route))
        .and(authorised())
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

#[tokio::test]
async fn pages_retries_and_a_broken_endpoint() {
    std::env::set_var("KW_TEST_GITHUB_TOKEN_1", TOKEN);
    let server = MockServer::start().await;
    // Installations over two pages, the second reached through the Link header.
    let next = format!("{}/organizations/1/installations?per_page=100&page=2", server.uri());
    Mock::given(method("GET"))
        .and(path("/orgs/acme/installations"))
        .and(authorised())
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("link", format!("<{next}>; rel=\"next\", <{next}>; rel=\"last\"").as_str())
                .set_body_json(serde_json::json!({"total_count": 3, "installations": [installation(11, "zapier"), installation(12, "moveworks")]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/organizations/1/installations"))
        .and(query_param("page", "2"))
        .and(authorised())
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"total_count": 3, "installations": [installation(13, "circleci-checks")]}),
        ))
        .mount(&server)
        .await;
    // Personal access tokens: rate limited once, with Retry-After.
    Mock::given(method("GET"))
        .and(path("/orgs/acme/personal-access-tokens"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_ok(
        &server,
        "/orgs/acme/personal-access-tokens",
        serde_json::json!([{"id": 25381, "owner": {"login": "octocat", "id": 1}, "repository_selection": "all",
            "repositories_url": "https://api.github.com/organizations/652551/personal-access-token-requests/25381/repositories",
            "permissions": {"repository": {"contents": "write"}}, "access_granted_at": "2023-05-16T08:47:09.000-07:00",
            "token_id": 98716, "token_name": "snowflake etl", "token_expired": false,
            "token_expires_at": null, "token_last_used_at": "2024-02-01T00:00:00Z"}]),
    )
    .await;
    mount_ok(
        &server,
        "/orgs/acme/personal-access-token-requests",
        serde_json::json!([{"id": 25382, "reason": "nightly export", "owner": {"login": "octocat", "id": 1},
            "repository_selection": "all", "repositories_url": "https://api.github.com/organizations/652551/personal-access-token-requests/25382/repositories",
            "permissions": {"organization": {"members": "read"}}, "created_at": "2024-03-01T08:00:00Z",
            "token_id": 98717, "token_name": "airtable sync", "token_expired": false, "token_expires_at": null, "token_last_used_at": null}]),
    )
    .await;
    mount_ok(
        &server,
        "/orgs/acme/credential-authorizations",
        serde_json::json!([{"login": "octocat", "credential_id": 161195, "credential_type": "personal access token",
            "token_last_eight": "71c3fc11", "credential_authorized_at": "2011-01-26T19:06:43Z", "scopes": ["user", "repo"],
            "credential_accessed_at": "2011-01-26T19:06:43Z", "authorized_credential_id": 12345678,
            "authorized_credential_title": "my ci token", "authorized_credential_expires_at": null}]),
    )
    .await;
    // Org webhooks: a 502 then the list.
    Mock::given(method("GET"))
        .and(path("/orgs/acme/hooks"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_ok(
        &server,
        "/orgs/acme/hooks",
        serde_json::json!([{"id": 1, "url": "https://api.github.com/orgs/acme/hooks/1", "ping_url": "https://api.github.com/orgs/acme/hooks/1/pings",
            "name": "web", "events": ["push"], "active": true,
            "config": {"url": "https://hooks.zapier.com/hooks/catch/123/abc/", "content_type": "json", "insecure_ssl": "0", "secret": "********"},
            "updated_at": "2023-09-06T20:39:23Z", "created_at": "2023-09-06T17:26:27Z", "type": "Organization"}]),
    )
    .await;
    // Repositories: listed from the org; one repo's key page is cut off mid-JSON.
    mount_ok(
        &server,
        "/orgs/acme/repos",
        serde_json::json!([{"id": 1, "full_name": "acme/web"}, {"id": 2, "full_name": "acme/api"}]),
    )
    .await;
    mount_ok(
        &server,
        "/repos/acme/web/keys",
        serde_json::json!([{"id": 7, "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA", "url": "https://api.github.com/repos/acme/web/keys/7",
            "title": "deploy from CircleCI", "verified": true, "created_at": "2022-12-10T15:53:42Z", "read_only": false,
            "added_by": "octocat", "last_used": "2024-01-10T15:53:42Z", "enabled": true}]),
    )
    .await;
    mount_ok(&server, "/repos/acme/web/hooks", serde_json::json!([])).await;
    mount_ok(&server, "/repos/acme/api/hooks", serde_json::json!([])).await;
    Mock::given(method("GET"))
        .and(path("/repos/acme/api/keys"))
        .and(authorised())
        .respond_with(ResponseTemplate::new(200).set_body_raw(r#"[{"id": 8, "key": "ssh-rsa AAAA"#, "application/json"))
        .mount(&server)
        .await;

    let outcomes = sync::run(&config(&server, "KW_TEST_GITHUB_TOKEN_1", None), &[]).await.unwrap();
    let by_endpoint = |name: &str| outcomes.iter().find(|o| o.endpoint == name).unwrap_or_else(|| panic!("no {name}"));

    let installations = by_endpoint("installations").result.as_ref().expect("installations");
    assert_eq!(installations.credentials.len(), 3, "both pages");
    assert_eq!(installations.complete_scope.as_deref(), Some("github:acme:installations"));

    let pats = by_endpoint("personal-access-tokens").result.as_ref().expect("retried after 429");
    assert_eq!(pats.credentials[0].kind, CredentialKind::PersonalAccessToken);
    assert_eq!(pats.credentials[0].last_used.as_deref(), Some("2024-02-01T00:00:00Z"));

    let requests = by_endpoint("personal-access-token-requests").result.as_ref().expect("requests");
    assert_eq!(requests.credentials[0].status, CredentialStatus::Pending);
    let saml = by_endpoint("credential-authorizations").result.as_ref().expect("saml");
    assert_eq!(saml.credentials[0].owner.as_deref(), Some("octocat"));
    assert!(by_endpoint("repos/acme/web/hooks").result.is_ok() && by_endpoint("repos/acme/api/hooks").result.is_ok());

    let hooks = by_endpoint("hooks").result.as_ref().expect("retried after 502");
    assert_eq!(hooks.credentials[0].name, "webhook to hooks.zapier.com");

    let web = by_endpoint("repos/acme/web/keys").result.as_ref().expect("web keys");
    assert_eq!(web.credentials[0].status, CredentialStatus::Active);
    let api = by_endpoint("repos/acme/api/keys").result.as_ref().expect_err("the cut-off page fails its listing");
    let message = format!("{api:#}");
    assert!(message.contains("not valid JSON") && message.contains("/repos/acme/api/keys"), "{message}");

    for outcome in &outcomes {
        if let Err(e) = &outcome.result {
            assert!(!format!("{e:#}").contains(TOKEN), "the token leaked into an error");
        }
    }
    // The 429 was retried once, the 502 once; nothing was fetched twice otherwise.
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.iter().filter(|r| r.url.path() == "/orgs/acme/personal-access-tokens").count(), 2);
    assert_eq!(requests.iter().filter(|r| r.url.path() == "/orgs/acme/hooks").count(), 2);
    assert!(requests.iter().all(|r| r.headers.get("x-github-api-version").is_some()));
}

#[tokio::test]
async fn an_exhausted_quota_waits_for_its_reset_and_long_waits_give_up() {
    std::env::set_var("KW_TEST_GITHUB_TOKEN_2", TOKEN);
    let server = MockServer::start().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // Primary rate limit: 403 with x-ratelimit-remaining 0, reset a second from now.
    Mock::given(method("GET"))
        .and(path("/orgs/acme/installations"))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", (now + 1).to_string().as_str())
                .set_body_json(serde_json::json!({"message": "API rate limit exceeded"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_ok(
        &server,
        "/orgs/acme/installations",
        serde_json::json!({"total_count": 1, "installations": [installation(11, "zapier")]}),
    )
    .await;
    // An hour's Retry-After is longer than this sync will wait.
    Mock::given(method("GET"))
        .and(path("/orgs/acme/personal-access-tokens"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .mount(&server)
        .await;
    // No access to hooks: a 404 is not retried.
    Mock::given(method("GET"))
        .and(path("/orgs/acme/hooks"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({"message": "Not Found"})))
        .mount(&server)
        .await;

    let mut config = config(&server, "KW_TEST_GITHUB_TOKEN_2", Some(vec![]));
    config.max_wait_secs = Some(60);
    config.github.as_mut().unwrap().saml_sso = false;
    let outcomes = sync::run(&config, &["github".to_string()]).await.unwrap();
    let endpoints: Vec<&str> = outcomes.iter().map(|o| o.endpoint.as_str()).collect();
    assert_eq!(endpoints, ["installations", "personal-access-tokens", "personal-access-token-requests", "hooks"]);
    assert!(outcomes[0].result.is_ok(), "waited for the reset: {:?}", outcomes[0].result);
    let pats = format!("{:#}", outcomes[1].result.as_ref().unwrap_err());
    assert!(pats.contains("rate limited for 3600 s"), "{pats}");
    let hooks = format!("{:#}", outcomes[3].result.as_ref().unwrap_err());
    assert!(hooks.contains("404") && hooks.contains("Not Found"), "{hooks}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.iter().filter(|r| r.url.path() == "/orgs/acme/hooks").count(), 1, "a 404 is final");
}

#[tokio::test]
async fn no_token_no_requests() {
    let server = MockServer::start().await;
    let outcomes = sync::run(&config(&server, "KW_TEST_GITHUB_TOKEN_UNSET", None), &[]).await.unwrap();
    let error = format!("{:#}", outcomes[0].result.as_ref().unwrap_err());
    assert!(error.contains("KW_TEST_GITHUB_TOKEN_UNSET"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
    let unknown = sync::run(&config(&server, "X", None), &["okta".to_string()]).await.unwrap_err();
    assert!(format!("{unknown:#}").contains("not configured"), "{unknown:#}");
}
