//! The Okta, Slack and Google Workspace connectors against a real HTTP server on loopback
//! answering in each platform's documented shapes and pagination.

use keywatch_inventory::sync::{self, google::GoogleConfig, okta::OktaConfig, slack::SlackConfig, SyncConfig};
use keywatch_model::inventory::{CredentialStatus, Privilege};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fast() -> SyncConfig {
    SyncConfig { initial_backoff_ms: Some(1), max_retries: Some(3), ..SyncConfig::default() }
}

fn okta_token(id: &str, name: &str, expires_at: &str) -> serde_json::Value {
    serde_json::json!({
        "clientName": "Okta API", "created": "2023-01-05T10:00:00.000Z", "expiresAt": expires_at, "id": id,
        "lastUpdated": "2023-01-05T10:00:00.000Z", "name": name, "tokenWindow": "P30D", "userId": "00uabcdefgHIJKLMN0h7",
        "_links": {"user": [{"href": "https://acme.okta.com/api/v1/users/00uabcdefgHIJKLMN0h7", "hints": {"allow": ["GET"]}}]}
    })
}

#[tokio::test]
async fn okta_api_tokens_follow_link_cursors_and_rate_limits() {
    std::env::set_var("KW_TEST_OKTA_TOKEN", "00TestOnlyOktaTokenValue_abcdefghijklmnop");
    let server = MockServer::start().await;
    let next = format!("{}/api/v1/api-tokens?after=00Tabc2", server.uri());
    Mock::given(method("GET"))
        .and(path("/api/v1/api-tokens"))
        .and(header("authorization", "SSWS 00TestOnlyOktaTokenValue_abcdefghijklmnop"))
        .and(wiremock::matchers::query_param_is_missing("after"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "link",
                    format!("<{}/api/v1/api-tokens>; rel=\"self\", <{next}>; rel=\"next\"", server.uri()).as_str(),
                )
                .insert_header("x-rate-limit-limit", "25")
                .insert_header("x-rate-limit-remaining", "24")
                .set_body_json(serde_json::json!([okta_token(
                    "00Tabc1",
                    "Moveworks integration",
                    "2024-03-01T10:00:00.000Z"
                )])),
        )
        .mount(&server)
        .await;
    // The second page is rate limited once: 429 with the reset time, no Retry-After.
    let reset = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    Mock::given(method("GET"))
        .and(path("/api/v1/api-tokens"))
        .and(query_param("after", "00Tabc2"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-rate-limit-remaining", "0")
                .insert_header("x-rate-limit-reset", reset.to_string().as_str())
                .set_body_json(serde_json::json!({"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/api-tokens"))
        .and(query_param("after", "00Tabc2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([okta_token(
            "00Tabc2",
            "smartsheet-sync",
            "2023-02-01T10:00:00.000Z"
        )])))
        .mount(&server)
        .await;

    Mock::given(method("GET"))
        .and(path("/api/v1/apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([{
            "id": "0oa1svcapp0000000001", "name": "oidc_client", "label": "Snowflake sync job", "status": "ACTIVE",
            "lastUpdated": "2024-03-02T10:00:00.000Z", "created": "2024-01-15T09:30:00.000Z", "signOnMode": "OPENID_CONNECT",
            "credentials": {"oauthClient": {"autoKeyRotation": true, "client_id": "0oa1svcapp0000000001",
                "client_secret": "TEST-ONLY-OKTA-CLIENT-SECRET-0123456789", "token_endpoint_auth_method": "client_secret_basic"}},
            "settings": {"app": {}, "oauthClient": {"grant_types": ["client_credentials"], "application_type": "service"}},
            "_links": {}}])))
        .mount(&server)
        .await;
    let config = SyncConfig {
        okta: Some(OktaConfig {
            org_url: server.uri(),
            token_env: Some("KW_TEST_OKTA_TOKEN".into()),
            token: None,
            privileged_access: false,
        }),
        ..fast()
    };
    let outcomes = sync::run(&config, &[]).await.unwrap();
    let tokens = outcomes.iter().find(|o| o.endpoint == "api-tokens").unwrap().result.as_ref().expect("tokens");
    let names: Vec<&str> = tokens.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Moveworks integration", "smartsheet-sync"]);
    assert_eq!(tokens.credentials[0].last_used.as_deref(), Some("2024-01-31T10:00:00Z"), "expiresAt - tokenWindow");
    let host = server.uri().trim_start_matches("http://").to_string();
    assert_eq!(tokens.complete_scope, Some(format!("okta:{host}:api-tokens")));
    let apps = outcomes.iter().find(|o| o.endpoint == "apps").unwrap().result.as_ref().expect("apps");
    assert_eq!(apps.identities[0].name, "Snowflake sync job");
    assert!(!format!("{apps:?}").contains("TEST-ONLY-OKTA-CLIENT-SECRET"), "the client secret is never kept");
    assert_eq!(apps.complete_scope, Some(format!("okta:{host}:apps")));
}

fn slack_page(page: u64, pages: u64, logs: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"ok": true, "logs": logs, "paging": {"count": 100, "total": 3, "page": page, "pages": pages}})
}

#[tokio::test]
async fn slack_integration_logs_page_by_number_and_surface_api_errors() {
    std::env::set_var("KW_TEST_SLACK_TOKEN", "xoxp-test-only-0000000000-0000000000");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/team.integrationLogs"))
        .and(wiremock::matchers::query_param_is_missing("page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(slack_page(1, 2, serde_json::json!([
            {"app_id": "A0ZAPIER", "app_type": "Zapier", "user_id": "U2", "user_name": "bo", "date": "1710000000", "change_type": "updated", "scope": "admin,channels:read"}
        ]))))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/team.integrationLogs"))
        .and(query_param("page", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(slack_page(2, 2, serde_json::json!([
            {"app_id": "A0ZAPIER", "app_type": "Zapier", "user_id": "U1", "user_name": "ana", "date": "1700000000", "change_type": "added", "scope": "channels:read"},
            {"service_id": 3456789012u64, "service_type": "Airbrake", "user_id": "U3", "user_name": "joey", "date": "1392163202", "change_type": "disabled", "reason": "user", "scope": "incoming-webhook"}
        ]))))
        .mount(&server)
        .await;
    let member = |id: &str, name: &str, bot: Option<(&str, Option<&str>)>, deleted: bool| {
        let mut profile = serde_json::json!({"real_name": name, "display_name": name});
        if let Some((bot_id, app_id)) = bot {
            profile["bot_id"] = bot_id.into();
            if let Some(app) = app_id {
                profile["api_app_id"] = app.into();
            }
        }
        serde_json::json!({"id": id, "team_id": "T0ACME", "name": name.to_lowercase(), "deleted": deleted, "real_name": name,
            "is_bot": bot.is_some(), "is_app_user": false, "updated": 1700000000, "profile": profile})
    };
    Mock::given(method("GET"))
        .and(path("/users.list"))
        .and(wiremock::matchers::query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true,
            "members": [member("USLACKBOT", "Slackbot", Some(("B0SLACK", None)), false), member("U1", "Ana", None, false),
                        member("U0ZAPBOT", "Zapier", Some(("B0ZAP", Some("A0ZAPIER"))), false)],
            "response_metadata": {"next_cursor": "dXNlcjpVMEc5V0ZYTlo="}})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users.list"))
        .and(query_param("cursor", "dXNlcjpVMEc5V0ZYTlo="))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true,
            "members": [member("U0OLDBOT", "Deploy bot", Some(("B0OLD", None)), true)],
            "response_metadata": {"next_cursor": ""}})))
        .mount(&server)
        .await;
    let config = SyncConfig {
        slack: Some(SlackConfig {
            base_url: Some(server.uri()),
            token_env: Some("KW_TEST_SLACK_TOKEN".into()),
            token: None,
            team_id: None,
        }),
        ..fast()
    };
    let outcomes = sync::run(&config, &["slack".to_string()]).await.unwrap();
    let bots = outcomes[1].result.as_ref().expect("bots");
    let found: Vec<(&str, Option<&str>, CredentialStatus)> =
        bots.credentials.iter().map(|c| (c.name.as_str(), c.identity.as_deref(), c.status)).collect();
    assert_eq!(
        found,
        [
            ("Zapier bot token", Some("app/A0ZAPIER"), CredentialStatus::Active),
            ("Deploy bot bot token", Some("bot/B0OLD"), CredentialStatus::Revoked)
        ],
        "Slackbot and people are not bots anyone holds a token for"
    );
    assert_eq!(bots.complete_scope.as_deref(), Some("slack:T0ACME:bots"));
    let batch = outcomes[0].result.as_ref().expect("logs");
    let zapier = batch.credentials.iter().find(|c| c.name == "Zapier integration").unwrap();
    assert_eq!(
        (zapier.status, zapier.privilege, zapier.owner.as_deref()),
        (CredentialStatus::Active, Privilege::Admin, Some("ana"))
    );

    // A token without the admin scope: Slack answers 200 with ok=false.
    let denied = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/team.integrationLogs"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"ok": false, "error": "missing_scope", "needed": "admin"})),
        )
        .mount(&denied)
        .await;
    let config = SyncConfig {
        slack: Some(SlackConfig {
            base_url: Some(denied.uri()),
            token_env: Some("KW_TEST_SLACK_TOKEN".into()),
            token: None,
            team_id: None,
        }),
        ..fast()
    };
    let outcomes = sync::run(&config, &[]).await.unwrap();
    let error = format!("{:#}", outcomes[0].result.as_ref().unwrap_err());
    assert!(error.contains("missing_scope"), "{error}");
    assert!(!error.contains("xoxp-test-only"), "{error}");
}

fn google_user(id: &str, email: &str) -> serde_json::Value {
    serde_json::json!({"kind": "admin#directory#user", "id": id, "primaryEmail": email, "name": {"fullName": email}, "isAdmin": false})
}

fn google_tokens(user: &str, grants: &[(&str, &str, &[&str])]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = grants
        .iter()
        .map(|(client, app, scopes)| {
            serde_json::json!({"kind": "admin#directory#token", "etag": "\"e\"", "clientId": client, "displayText": app,
                "anonymous": false, "nativeApp": false, "userKey": user, "scopes": scopes})
        })
        .collect();
    serde_json::json!({"kind": "admin#directory#tokenList", "etag": "\"l\"", "items": items})
}

async fn google_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/admin/directory/v1/users"))
        .and(query_param("customer", "my_customer"))
        .and(wiremock::matchers::query_param_is_missing("pageToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "kind": "admin#directory#users", "users": [google_user("111", "ana@acme.example")], "nextPageToken": "tok2"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/admin/directory/v1/users"))
        .and(query_param("pageToken", "tok2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "kind": "admin#directory#users", "users": [google_user("222", "bo@acme.example")]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/admin/directory/v1/users/111/tokens"))
        .respond_with(ResponseTemplate::new(200).set_body_json(google_tokens(
            "111",
            &[("123-zap.apps.googleusercontent.com", "Zapier", &["https://www.googleapis.com/auth/gmail.readonly"])],
        )))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn google_grants_of_every_user_in_one_complete_batch() {
    std::env::set_var("KW_TEST_GOOGLE_TOKEN", "ya29.test-only-access-token");
    let server = google_server().await;
    // Bo's list fails once with 503, then answers.
    Mock::given(method("GET"))
        .and(path("/admin/directory/v1/users/222/tokens"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/admin/directory/v1/users/222/tokens"))
        .respond_with(ResponseTemplate::new(200).set_body_json(google_tokens(
            "222",
            &[
                ("123-zap.apps.googleusercontent.com", "Zapier", &["https://mail.google.com/"]),
                ("987-bak.apps.googleusercontent.com", "Backup tool", &["https://www.googleapis.com/auth/drive"]),
            ],
        )))
        .mount(&server)
        .await;
    let config = SyncConfig {
        google: Some(GoogleConfig {
            customer: None,
            base_url: Some(server.uri()),
            token_env: Some("KW_TEST_GOOGLE_TOKEN".into()),
            token: None,
        }),
        ..fast()
    };
    let outcomes = sync::run(&config, &[]).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    let batch = outcomes[0].result.as_ref().expect("grants");
    assert_eq!(batch.complete_scope.as_deref(), Some("google_workspace:my_customer:tokens"));
    assert_eq!(batch.identities.len(), 2, "Zapier once, though two users granted it");
    let owners: Vec<&str> = batch.credentials.iter().filter_map(|c| c.owner.as_deref()).collect();
    assert_eq!(owners, ["ana@acme.example", "bo@acme.example", "bo@acme.example"]);
    assert_eq!(batch.credentials[1].privilege, Privilege::Admin);
}

#[tokio::test]
async fn google_a_user_that_cannot_be_read_makes_the_batch_partial() {
    std::env::set_var("KW_TEST_GOOGLE_TOKEN_2", "ya29.test-only-access-token");
    let server = google_server().await;
    Mock::given(method("GET"))
        .and(path("/admin/directory/v1/users/222/tokens"))
        .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
            "error": {"code": 403, "message": "Not Authorized to access this resource/api", "errors": [{"reason": "forbidden"}]}})))
        .mount(&server)
        .await;
    let config = SyncConfig {
        google: Some(GoogleConfig {
            customer: None,
            base_url: Some(server.uri()),
            token_env: Some("KW_TEST_GOOGLE_TOKEN_2".into()),
            token: None,
        }),
        ..fast()
    };
    let outcomes = sync::run(&config, &[]).await.unwrap();
    assert_eq!(outcomes.len(), 2);
    let batch = outcomes[0].result.as_ref().expect("what could be read is kept");
    assert_eq!(batch.complete_scope, None, "a partial list must not mark anything deleted");
    assert_eq!(batch.credentials.len(), 1);
    let error = format!("{:#}", outcomes[1].result.as_ref().unwrap_err());
    assert!(error.contains("1 of 2 users") && error.contains("bo@acme.example") && error.contains("403"), "{error}");
}

#[tokio::test]
async fn atlassian_cursors_links_and_a_rate_limited_page() {
    let server = MockServer::start().await;
    let org = format!("{}/orgs/org-1", server.uri());
    let token = |id: &str, label: &str| {
        serde_json::json!({"id": id, "label": label, "status": "ALLOWED", "createdAt": "2024-02-01T10:00:00.000Z",
            "expiresAt": null, "lastActiveAt": "2024-06-30T23:59:00.000+02:00",
            "user": {"id": "557058:aaaa-1111", "orgId": "org-1", "name": "Integration Bot", "email": "integration-bot@acme.example"}})
    };
    // API tokens: `links.next` is a whole URL.
    Mock::given(method("GET"))
        .and(path("/orgs/org-1/api-tokens"))
        .and(header("authorization", "Bearer test-only-atlassian-org-api-key-0123456789"))
        .and(wiremock::matchers::query_param_is_missing("cursor"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"data": [token("tok-1", "jira-sync (zapier)")],
            "links": {"self": format!("{org}/api-tokens"), "next": format!("{org}/api-tokens?cursor=c2")}})),
        )
        .mount(&server)
        .await;
    // The second page is rate limited once; Atlassian sends the reset as a time.
    Mock::given(method("GET"))
        .and(path("/orgs/org-1/api-tokens"))
        .and(query_param("cursor", "c2"))
        .respond_with(ResponseTemplate::new(429).insert_header("x-ratelimit-reset", "2000-01-01T00:00:00Z"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orgs/org-1/api-tokens"))
        .and(query_param("cursor", "c2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [token("tok-2", "reporting")],
            "links": {"self": format!("{org}/api-tokens?cursor=c2"), "next": null}})),
        )
        .mount(&server)
        .await;
    // Service accounts: `links.next` is a bare cursor.
    Mock::given(method("GET"))
        .and(path("/orgs/org-1/service-accounts"))
        .and(wiremock::matchers::query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"links": {"next": "cursor-2", "prev": null}, "total": 2,
            "items": [{"atlassianId": "712020:svc-0001", "id": "svc-0001", "email": "svc-jira-sync@serviceaccount.atlassian.com",
                "displayName": "Jira sync", "updatedAt": 1764642980899u64, "status": "ACTIVE", "createdById": "557058:bbbb-2222"}]})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orgs/org-1/service-accounts"))
        .and(query_param("cursor", "cursor-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"links": {"next": null, "prev": "cursor-1"}, "total": 2,
            "items": [{"atlassianId": "712020:svc-0002", "id": "svc-0002", "email": "svc-backup@serviceaccount.atlassian.com",
                "displayName": "Backup", "updatedAt": 1764642980000u64, "status": "ACTIVE", "createdById": "557058:aaaa-1111"}]})))
        .mount(&server)
        .await;
    // OAuth clients: a page that links back to itself is a server loop, not an endless list.
    Mock::given(method("GET"))
        .and(path("/orgs/org-1/oauth-clients"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [
            {"clientId": "atl-client-0001", "name": "Datadog collector", "createdAt": 1763149545609u64, "updatedAt": 1763149545609u64, "status": "ACTIVE"}],
            "links": {"self": format!("{org}/oauth-clients"), "next": "same"}})))
        .mount(&server)
        .await;

    let config = SyncConfig {
        atlassian: Some(sync::atlassian::AtlassianConfig {
            org_id: "org-1".into(),
            base_url: Some(server.uri()),
            api_key_env: None,
            api_key: Some(sync::ConfigSecret::new("test-only-atlassian-org-api-key-0123456789")),
        }),
        ..fast()
    };
    let outcomes = sync::run(&config, &["atlassian".to_string()]).await.unwrap();
    let endpoint = |name: &str| &outcomes.iter().find(|o| o.endpoint == name).unwrap().result;
    let tokens = endpoint("api-tokens").as_ref().expect("api tokens");
    assert_eq!(tokens.credentials.len(), 2);
    assert_eq!(tokens.complete_scope.as_deref(), Some("atlassian:org-1:api-tokens"));
    assert_eq!(tokens.credentials[0].last_used.as_deref(), Some("2024-06-30T21:59:00Z"));
    let accounts = endpoint("service-accounts").as_ref().expect("service accounts");
    assert_eq!(accounts.identities.len(), 2);
    assert!(!format!("{config:?}").contains("test-only-atlassian"), "a config's debug form hides its secrets");
    let looped = format!("{:#}", endpoint("oauth-clients").as_ref().unwrap_err());
    assert!(looped.contains("repeats the cursor"), "{looped}");
}
