//! Importers of the GitHub, Okta and Atlassian endpoints added after the first set, on
//! exports written here in the shapes the platforms document (field names only; the values
//! are made up).

use keywatch_inventory::import::{read_export, ExportKind, ImportContext};
use keywatch_model::inventory::{CredentialKind, CredentialStatus, IdentityKind, InventoryBatch, Privilege};

fn ctx() -> ImportContext {
    ImportContext::default()
}

fn github(owner: &str) -> ImportContext {
    ImportContext { github_owner: Some(owner.into()), ..ImportContext::default() }
}

fn okta(org: &str) -> ImportContext {
    ImportContext { okta_org: Some(org.into()), ..ImportContext::default() }
}

/// Reads `text` without naming its kind, checks it was recognised as `kind`, and that reading
/// it as `kind` explicitly gives the same batch.
fn detected(text: &str, kind: ExportKind, ctx: &ImportContext) -> InventoryBatch {
    let (found, batch) = read_export(text.as_bytes(), "export.json", None, ctx).unwrap();
    assert_eq!(found, kind, "recognised by shape");
    let (_, named) = read_export(text.as_bytes(), "export.json", Some(kind), ctx).unwrap();
    assert_eq!(batch, named);
    batch
}

/// The error of reading `text` as `kind`, with its context chain.
fn error(text: &str, kind: ExportKind, ctx: &ImportContext) -> String {
    let err = read_export(text.as_bytes(), "broken.json", Some(kind), ctx).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("broken.json"), "the error names the file: {message}");
    message
}

/// Nothing in the batch holds any of `secrets`.
fn keeps_no_secret(batch: &InventoryBatch, secrets: &[&str]) {
    let all = format!("{batch:?}");
    for secret in secrets {
        assert!(!all.contains(secret), "{secret:?} leaked into the batch: {all}");
    }
}

// --- GitHub: SAML SSO credential authorizations --------------------------------------------

const CREDENTIAL_AUTHORIZATIONS_PAGE_1: &str = r#"[
  {"login": "octocat", "credential_id": 161195, "credential_type": "personal access token",
   "token_last_eight": "71c3fc11", "credential_authorized_at": "2023-01-26T19:06:43Z",
   "credential_accessed_at": "2024-05-01T08:00:00+02:00", "authorized_credential_id": 12345678,
   "authorized_credential_note": "snowflake loader", "authorized_credential_expires_at": "2024-12-31T00:00:00Z",
   "scopes": ["repo", "read:org"], "x_exporter_note": "ghp_NOTAREALTOKENbutASECRETmarker0000000"},
  {"login": "hubot", "credential_id": 161196, "credential_type": "personal access token",
   "token_last_eight": "12345678", "credential_authorized_at": "2019-03-29T19:06:43Z",
   "credential_accessed_at": null, "authorized_credential_id": 22222222,
   "authorized_credential_note": "org admin script", "scopes": ["admin:org", "repo"]}
]"#;

const CREDENTIAL_AUTHORIZATIONS_PAGE_2: &str = r#"[
  {"login": "octocat", "credential_id": 161197, "credential_type": "SSH Key",
   "fingerprint": "SHA256:jklmnop12345678", "credential_authorized_at": "2022-02-02T02:02:02Z",
   "credential_accessed_at": "2024-04-04T04:04:04Z", "authorized_credential_id": 33333333,
   "authorized_credential_title": "build box", "scopes": []},
  {"login": "reader", "credential_id": 161198, "credential_type": "personal access token",
   "token_last_eight": "abcdef12", "credential_authorized_at": "2024-01-01T00:00:00Z",
   "credential_accessed_at": null, "authorized_credential_id": null, "scopes": ["read:org", "user:email"]}
]"#;

#[test]
fn github_credential_authorizations() {
    let text = format!("{CREDENTIAL_AUTHORIZATIONS_PAGE_1}\n{CREDENTIAL_AUTHORIZATIONS_PAGE_2}");
    let batch = detected(&text, ExportKind::GithubCredentialAuthorizations, &github("acme"));
    assert_eq!(batch.source, "github:credential-authorizations");
    assert_eq!(batch.complete_scope.as_deref(), Some("github:acme:credential-authorizations"));
    assert_eq!(batch.credentials.len(), 4, "both pages are read");
    let names: Vec<&str> = batch.identities.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["octocat", "hubot", "reader"], "one identity per member");

    let pat = &batch.credentials[0];
    assert_eq!(pat.external_id, "credential-authorization/161195");
    assert_eq!(
        (pat.kind, pat.privilege, pat.status),
        (CredentialKind::PersonalAccessToken, Privilege::Write, CredentialStatus::Active)
    );
    assert_eq!(pat.name, "snowflake loader");
    assert_eq!(pat.owner.as_deref(), Some("octocat"));
    assert_eq!(pat.identity.as_deref(), Some("user/octocat"));
    assert_eq!(pat.fingerprint.as_deref(), Some("…71c3fc11"));
    assert_eq!(pat.scopes, ["read:org", "repo"]);
    assert_eq!(pat.created.as_deref(), Some("2023-01-26T19:06:43Z"));
    assert_eq!(pat.last_used.as_deref(), Some("2024-05-01T06:00:00Z"), "credential_accessed_at, in UTC");
    assert_eq!(pat.expires.as_deref(), Some("2024-12-31T00:00:00Z"));

    assert_eq!(batch.credentials[1].privilege, Privilege::Admin, "admin:org");
    assert_eq!(batch.credentials[1].last_used, None, "never accessed");

    let key = &batch.credentials[2];
    assert_eq!((key.kind, key.privilege), (CredentialKind::SshKey, Privilege::Unknown));
    assert_eq!(key.name, "build box");
    assert_eq!(key.fingerprint.as_deref(), Some("SHA256:jklmnop12345678"));

    let reader = &batch.credentials[3];
    assert_eq!((reader.privilege, reader.name.as_str()), (Privilege::Read, "(token without a note)"));
    keeps_no_secret(&batch, &["ghp_NOTAREALTOKEN"]);

    // Without the organisation the list cannot say what disappeared.
    let (_, partial) = read_export(text.as_bytes(), "x.json", None, &ctx()).unwrap();
    assert_eq!(partial.complete_scope, None);

    let unknown = text.replace("\"SSH Key\"", "\"GPG key\"");
    let message = error(&unknown, ExportKind::GithubCredentialAuthorizations, &ctx());
    assert!(message.contains("record 3") && message.contains("GPG key"), "{message}");

    let missing = text.replace("\"login\": \"hubot\", ", "");
    let message = error(&missing, ExportKind::GithubCredentialAuthorizations, &ctx());
    assert!(message.contains("record 2") && message.contains("\"login\""), "{message}");

    let bad_time = text.replace("2019-03-29T19:06:43Z", "last spring");
    let message = error(&bad_time, ExportKind::GithubCredentialAuthorizations, &ctx());
    assert!(message.contains("record 2") && message.contains("last spring"), "{message}");
}

// --- GitHub: fine-grained personal access token requests ----------------------------------

fn token_request(id: u64, login: &str, permissions: &str, last_used: &str) -> String {
    format!(
        r#"{{"id": {id}, "reason": "Access to the data repos", "owner": {{"login": "{login}", "id": 1, "type": "User"}},
        "repository_selection": "subset",
        "repositories_url": "https://api.github.com/organizations/652551/personal-access-token-requests/{id}/repositories",
        "permissions": {permissions}, "created_at": "2024-06-01T09:00:00-07:00", "token_id": {id}00,
        "token_name": "{login} token", "token_expired": false, "token_expires_at": "2024-09-01T09:00:00-07:00",
        "token_last_used_at": {last_used}, "x_exporter_note": "github_pat_NOTAREALTOKEN00000"}}"#
    )
}

#[test]
fn github_personal_access_token_requests() {
    let page1 = format!(
        "[{}, {}]",
        token_request(1, "octocat", r#"{"repository": {"contents": "read", "metadata": "read"}}"#, "null"),
        token_request(
            2,
            "hubot",
            r#"{"organization": {"members": "write"}, "repository": {"metadata": "read"}}"#,
            "null"
        )
    );
    let page2 = format!(
        "[{}]",
        token_request(3, "octocat", r#"{"repository": {"contents": "write"}}"#, r#""2024-06-02T10:00:00Z""#)
    );
    let text = format!("{page1}{page2}");
    let batch = detected(&text, ExportKind::GithubPersonalAccessTokenRequests, &github("acme"));
    assert_eq!(batch.complete_scope.as_deref(), Some("github:acme:personal-access-token-requests"));
    assert_eq!(batch.credentials.len(), 3);
    assert_eq!(batch.identities.len(), 2, "octocat's two requests share one identity");
    assert!(batch.credentials.iter().all(|c| c.status == CredentialStatus::Pending));
    let privileges: Vec<Privilege> = batch.credentials.iter().map(|c| c.privilege).collect();
    assert_eq!(privileges, [Privilege::Read, Privilege::Admin, Privilege::Write], "members:write is admin");

    let first = &batch.credentials[0];
    assert_eq!(first.external_id, "fine-grained-pat-request/1", "a request is not the grant it may become");
    assert_eq!(first.kind, CredentialKind::PersonalAccessToken);
    assert_eq!((first.name.as_str(), first.owner.as_deref()), ("octocat token", Some("octocat")));
    assert_eq!(first.scopes, ["repository/contents:read", "repository/metadata:read", "repositories:subset"]);
    assert_eq!(first.created.as_deref(), Some("2024-06-01T16:00:00Z"));
    assert_eq!(first.expires.as_deref(), Some("2024-09-01T16:00:00Z"));
    assert_eq!(batch.credentials[2].last_used.as_deref(), Some("2024-06-02T10:00:00Z"));
    keeps_no_secret(&batch, &["github_pat_NOTAREALTOKEN"]);

    let unknown = text.replace(r#""contents": "write""#, r#""contents": "maintain""#);
    let message = error(&unknown, ExportKind::GithubPersonalAccessTokenRequests, &ctx());
    assert!(message.contains("record 3") && message.contains("maintain"), "{message}");

    let missing = text.replacen(r#""owner": {"login": "hubot", "id": 1, "type": "User"},"#, "", 1);
    let message = error(&missing, ExportKind::GithubPersonalAccessTokenRequests, &ctx());
    assert!(message.contains("record 2") && message.contains("owner.login"), "{message}");

    // Grants are still grants.
    let grant = r#"[{"id": 25381, "owner": {"login": "octocat", "id": 1}, "repository_selection": "all",
        "repositories_url": "https://api.github.com/organizations/652551/personal-access-token-requests/25381/repositories",
        "permissions": {}, "access_granted_at": "2023-05-16T08:47:09.000-07:00", "token_id": 98716,
        "token_name": "etl", "token_expired": false, "token_expires_at": null, "token_last_used_at": null}]"#;
    let (kind, _) = read_export(grant.as_bytes(), "g.json", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::GithubPersonalAccessTokens);
}

// --- GitHub: repository webhooks -----------------------------------------------------------

fn repo_hook(id: u64, repo: &str, callback: &str, active: bool) -> String {
    format!(
        r#"{{"type": "Repository", "id": {id}, "name": "web", "active": {active}, "events": ["push", "pull_request"],
        "config": {{"content_type": "json", "insecure_ssl": "0", "url": "{callback}", "secret": "********"}},
        "updated_at": "2024-01-15T10:30:00Z", "created_at": "2024-01-15T10:30:00Z",
        "url": "https://api.github.com/repos/{repo}/hooks/{id}",
        "test_url": "https://api.github.com/repos/{repo}/hooks/{id}/test",
        "ping_url": "https://api.github.com/repos/{repo}/hooks/{id}/pings",
        "deliveries_url": "https://api.github.com/repos/{repo}/hooks/{id}/deliveries",
        "last_response": {{"code": null, "status": "unused", "message": null}}}}"#
    )
}

#[test]
fn github_repo_webhooks() {
    let text = format!(
        "[{}]\n[{}]",
        repo_hook(11, "acme/web", "https://hooks.slack.com/services/T000/B000/NOTAREALPATHSECRET", true),
        repo_hook(12, "acme/web", "https://user:pw-in-url@ci.example.com:8443/hook?token=querysecret", false)
    );
    let batch = detected(&text, ExportKind::GithubRepoWebhooks, &ctx());
    assert_eq!(batch.source, "github:repo-webhooks");
    assert_eq!(batch.complete_scope.as_deref(), Some("github:acme/web:repo-webhooks"), "the repository from the urls");
    let first = &batch.credentials[0];
    assert_eq!(first.external_id, "repo-webhook/11");
    assert_eq!(
        (first.kind, first.privilege, first.status),
        (CredentialKind::WebhookSecret, Privilege::Read, CredentialStatus::Active)
    );
    assert_eq!(first.name, "webhook to hooks.slack.com");
    assert_eq!(first.scopes, ["repository:acme/web", "callback:hooks.slack.com", "event:push", "event:pull_request"]);
    assert_eq!(first.created.as_deref(), Some("2024-01-15T10:30:00Z"));
    let second = &batch.credentials[1];
    assert_eq!((second.name.as_str(), second.status), ("webhook to ci.example.com", CredentialStatus::Inactive));
    keeps_no_secret(&batch, &["NOTAREALPATHSECRET", "pw-in-url", "querysecret", "********"]);

    // Hooks of two repositories: no single set is complete.
    let two = text.replace("repos/acme/web/hooks/12", "repos/acme/api/hooks/12");
    let (_, batch) = read_export(two.as_bytes(), "h.json", None, &ctx()).unwrap();
    assert_eq!(batch.complete_scope, None);

    // An empty list is complete for the repository named on the command line.
    let (_, empty) = read_export(b"[]", "h.json", Some(ExportKind::GithubRepoWebhooks), &github("acme/empty")).unwrap();
    assert_eq!(empty.complete_scope.as_deref(), Some("github:acme/empty:repo-webhooks"));

    let no_config = text.replacen(
        r#""config": {"content_type": "json", "insecure_ssl": "0", "url": "https://user"#,
        r#""configuration": {"url": "https://user"#,
        1,
    );
    let message = error(&no_config, ExportKind::GithubRepoWebhooks, &ctx());
    assert!(message.contains("record 2") && message.contains("\"config\""), "{message}");

    let no_url = text.replace(r#""url": "https://api.github.com/repos/acme/web/hooks/12","#, "");
    let message = error(&no_url, ExportKind::GithubRepoWebhooks, &ctx());
    assert!(message.contains("record 2") && message.contains("--owner"), "{message}");
    let (_, named) = read_export(no_url.as_bytes(), "h.json", None, &github("acme/web")).unwrap();
    assert_eq!(named.credentials[1].scopes[0], "repository:acme/web");

    // Organisation hooks are still organisation hooks.
    let org = r#"[{"id": 1, "url": "https://api.github.com/orgs/acme/hooks/1", "ping_url": "https://api.github.com/orgs/acme/hooks/1/pings",
        "name": "web", "events": ["push"], "active": true, "config": {"url": "https://example.com/h", "content_type": "json"},
        "updated_at": "2023-09-06T20:39:23Z", "created_at": "2023-09-06T17:26:27Z", "type": "Organization"}]"#;
    let (kind, _) = read_export(org.as_bytes(), "o.json", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::GithubOrgWebhooks);
}

// --- Okta: applications ---------------------------------------------------------------------

const OKTA_APPS: &str = include_str!("fixtures/okta-apps.json");

#[test]
fn okta_apps_are_identities_and_confidential_clients_hold_a_secret() {
    let batch = detected(OKTA_APPS, ExportKind::OktaApps, &okta("acme.okta.com"));
    assert_eq!(batch.source, "okta:apps");
    assert_eq!(batch.complete_scope.as_deref(), Some("okta:acme.okta.com:apps"));
    let identities: Vec<(&str, IdentityKind, &str)> =
        batch.identities.iter().map(|i| (i.external_id.as_str(), i.kind, i.name.as_str())).collect();
    assert_eq!(
        identities,
        [
            ("app/0oa1svcapp0000000001", IdentityKind::OauthClient, "Snowflake sync job"),
            ("app/0oa1slack00000000002", IdentityKind::Integration, "Slack"),
            ("app/0oa1spa0000000000003", IdentityKind::OauthClient, "Internal dashboard SPA"),
            ("app/0oa1zsc0000000000004", IdentityKind::OauthClient, "Zscaler ZIA provisioning"),
        ],
        "every app of both pages"
    );
    // The SAML app has no client credential and the SPA is a public client: two credentials.
    assert_eq!(batch.credentials.len(), 2);
    let service = &batch.credentials[0];
    assert_eq!(service.external_id, "0oa1svcapp0000000001", "the client_id");
    assert_eq!((service.kind, service.status), (CredentialKind::ClientSecret, CredentialStatus::Active));
    assert_eq!(service.identity.as_deref(), Some("app/0oa1svcapp0000000001"));
    assert_eq!(service.name, "Snowflake sync job (oidc_client) client secret");
    assert_eq!(
        service.scopes,
        ["app:oidc_client", "application_type:service", "grant:client_credentials", "auth:client_secret_basic"]
    );
    assert_eq!(service.created.as_deref(), Some("2024-01-15T09:30:00Z"));
    assert_eq!(service.fingerprint.as_deref(), Some("0oa1svcapp0000000001"));
    assert_eq!(service.privilege, Privilege::Unknown);

    let zscaler = &batch.credentials[1];
    assert_eq!(zscaler.status, CredentialStatus::Inactive);
    assert_eq!(zscaler.name, "Zscaler ZIA provisioning (zscalerbyz) client key");
    assert!(zscaler.scopes.contains(&"app:zscalerbyz".to_string()));
    assert_eq!(zscaler.created.as_deref(), Some("2021-11-11T10:11:11Z"));
    keeps_no_secret(&batch, &["TEST-OKTA-CLIENT-SECRET", "do-not-store"]);

    let message = error(&OKTA_APPS.replace("\"INACTIVE\"", "\"SUSPENDED\""), ExportKind::OktaApps, &ctx());
    assert!(message.contains("record 4") && message.contains("SUSPENDED"), "{message}");
    let message = error(&OKTA_APPS.replace("\"SAML_2_0\"", "\"KERBEROS\""), ExportKind::OktaApps, &ctx());
    assert!(message.contains("record 2") && message.contains("KERBEROS"), "{message}");
    let message = error(&OKTA_APPS.replace("\"label\": \"Slack\",", ""), ExportKind::OktaApps, &ctx());
    assert!(message.contains("record 2") && message.contains("\"label\""), "{message}");
    let no_client = OKTA_APPS.replace("\"client_id\": \"0oa1zsc0000000000004\", ", "");
    let message = error(&no_client, ExportKind::OktaApps, &ctx());
    assert!(message.contains("record 4") && message.contains("client_id"), "{message}");
}

// --- Okta: Privileged Access app service accounts -------------------------------------------

fn service_account(id: &str, name: &str, status: &str, detail: &str) -> String {
    format!(
        r#"{{"id": "{id}", "name": "{name}", "description": "integration user", "username": "{name}@acme.example",
        "containerOrn": "orn:okta:idp:00o1n8sbwArJ7OQRw406:apps:salesforce:0oa1gjh63g214q0Hq0g4",
        "containerGlobalName": "salesforce", "containerInstanceName": "salesforce Prod 5",
        "created": "2024-02-02T02:02:02.000Z", "lastUpdated": "2024-03-03T03:03:03.000Z",
        "ownerUserIds": ["00u1owner00000000001"], "ownerGroupIds": ["00g1group0000000001"],
        "password": "TEST-VAULTED-PASSWORD-never-keep", "status": "{status}", "statusDetail": "{detail}"}}"#
    )
}

#[test]
fn okta_app_service_accounts_hold_vaulted_passwords() {
    let text = format!(
        "[{}, {}]\n[{}]",
        service_account("a1b2c3d4-0001", "sfdc-sync", "NO_ISSUES", "VAULTED"),
        service_account("a1b2c3d4-0002", "sfdc-staged", "INFO", "STAGED"),
        service_account("a1b2c3d4-0003", "sfdc-broken", "ALERT", "MISSING_PASSWORD")
    );
    let batch = detected(&text, ExportKind::OktaServiceAccounts, &okta("acme.okta.com"));
    assert_eq!(batch.complete_scope.as_deref(), Some("okta:acme.okta.com:service-accounts"));
    assert_eq!(batch.identities.len(), 3);
    let identity = &batch.identities[0];
    assert_eq!(
        (identity.external_id.as_str(), identity.kind, identity.name.as_str(), identity.owner.as_deref()),
        ("service-account/a1b2c3d4-0001", IdentityKind::ServiceAccount, "sfdc-sync", Some("00u1owner00000000001"))
    );
    let statuses: Vec<CredentialStatus> = batch.credentials.iter().map(|c| c.status).collect();
    assert_eq!(statuses, [CredentialStatus::Active, CredentialStatus::Pending, CredentialStatus::Inactive]);
    let first = &batch.credentials[0];
    assert_eq!(first.kind, CredentialKind::Password);
    assert_eq!(first.external_id, "service-account/a1b2c3d4-0001/password");
    assert_eq!(first.name, "sfdc-sync password (sfdc-sync@acme.example in salesforce Prod 5)");
    assert_eq!(
        first.scopes,
        [
            "app:salesforce",
            "app_instance:orn:okta:idp:00o1n8sbwArJ7OQRw406:apps:salesforce:0oa1gjh63g214q0Hq0g4",
            "account:sfdc-sync@acme.example",
            "health:no_issues",
        ]
    );
    assert_eq!(first.created.as_deref(), Some("2024-02-02T02:02:02Z"));
    assert_eq!(first.owner.as_deref(), Some("00u1owner00000000001"));
    keeps_no_secret(&batch, &["TEST-VAULTED-PASSWORD"]);

    let message = error(&text.replace("\"STAGED\"", "\"ARCHIVED\""), ExportKind::OktaServiceAccounts, &ctx());
    assert!(message.contains("record 2") && message.contains("ARCHIVED"), "{message}");
    let message = error(&text.replace("\"ALERT\"", "\"WARNING\""), ExportKind::OktaServiceAccounts, &ctx());
    assert!(message.contains("record 3") && message.contains("WARNING"), "{message}");
    let missing = text.replacen("\"username\": \"sfdc-staged@acme.example\",", "", 1);
    let message = error(&missing, ExportKind::OktaServiceAccounts, &ctx());
    assert!(message.contains("record 2") && message.contains("\"username\""), "{message}");
}

// --- Atlassian: organisation API tokens, service accounts, OAuth clients ---------------------

const ATLASSIAN_TOKENS: &str = include_str!("fixtures/atlassian-api-tokens.json");

#[test]
fn atlassian_api_tokens_of_managed_accounts() {
    let batch = detected(ATLASSIAN_TOKENS, ExportKind::AtlassianApiTokens, &ctx());
    assert_eq!(batch.source, "atlassian:api-tokens");
    assert_eq!(batch.complete_scope.as_deref(), Some("atlassian:0a1b2c3d-org:api-tokens"), "the last page has no next");
    assert_eq!(batch.credentials.len(), 3);
    assert_eq!(batch.identities.len(), 2, "one identity per user");
    let first = &batch.credentials[0];
    assert_eq!(first.external_id, "api-token/tok-0001");
    assert_eq!(
        (first.kind, first.status, first.privilege),
        (CredentialKind::ApiToken, CredentialStatus::Active, Privilege::Unknown)
    );
    assert_eq!(first.name, "jira-sync (zapier)");
    assert_eq!(first.owner.as_deref(), Some("integration-bot@acme.example"));
    assert_eq!(first.identity.as_deref(), Some("557058:aaaa-1111"));
    assert_eq!(first.created.as_deref(), Some("2024-02-01T10:00:00Z"));
    assert_eq!(first.expires.as_deref(), Some("2025-02-01T10:00:00Z"));
    assert_eq!(first.last_used.as_deref(), Some("2024-06-30T21:59:00Z"));
    assert_eq!(batch.credentials[1].last_used, None);
    assert_eq!(batch.identities[0].kind, IdentityKind::User);

    // The first page alone points to a next one: not complete.
    let first_page = &ATLASSIAN_TOKENS[..ATLASSIAN_TOKENS.find("\n{").unwrap()];
    let (_, partial) = read_export(first_page.as_bytes(), "t.json", None, &ctx()).unwrap();
    assert_eq!(partial.complete_scope, None);

    let scoped = ATLASSIAN_TOKENS.replace(
        r#""label": "reporting","#,
        r#""label": "reporting", "scopes": ["read:jira-work", "write:jira-work"],"#,
    );
    let (_, batch) = read_export(scoped.as_bytes(), "t.json", None, &ctx()).unwrap();
    assert_eq!(batch.credentials[2].privilege, Privilege::Write);

    let message = error(
        &ATLASSIAN_TOKENS.replace(
            "\"laptop script\",\n      \"status\": \"ALLOWED\"",
            "\"laptop script\",\n      \"status\": \"QUARANTINED\"",
        ),
        ExportKind::AtlassianApiTokens,
        &ctx(),
    );
    assert!(message.contains("record 2") && message.contains("QUARANTINED"), "{message}");
    let no_user = ATLASSIAN_TOKENS.replace(r#""user": {"id": "557058:bbbb-2222", "orgId": "0a1b2c3d-org", "name": "Dana Admin", "email": "dana@acme.example"}"#, r#""owner": null"#);
    let message = error(&no_user, ExportKind::AtlassianApiTokens, &ctx());
    assert!(message.contains("record 2") && message.contains("\"user\""), "{message}");
    let no_id = ATLASSIAN_TOKENS.replace(r#""id": "tok-0003","#, "");
    let message = error(&no_id, ExportKind::AtlassianApiTokens, &ctx());
    assert!(message.contains("record 3") && message.contains("\"id\""), "{message}");
}

const ATLASSIAN_SERVICE_ACCOUNTS: &str = r#"{"links": {"next": "cursor-2", "prev": null}, "items": [
  {"atlassianId": "712020:svc-0001", "id": "svc-0001", "email": "svc-jira-sync@serviceaccount.atlassian.com",
   "displayName": "Jira sync", "picture": "https://avatar.example/1.png", "container": "org",
   "updatedAt": 1764642980899, "status": "ACTIVE", "createdById": "557058:bbbb-2222", "description": "sync to the data lake"}
], "total": 2}
{"links": {"next": null, "prev": "cursor-1"}, "items": [
  {"atlassianId": "712020:svc-0002", "id": "svc-0002", "email": "svc-backup@serviceaccount.atlassian.com",
   "displayName": "Backup", "updatedAt": 1764642980000, "status": "ACTIVE", "createdById": "557058:aaaa-1111",
   "x_exporter_note": "ATATT3xNOTAREALTOKEN"}
], "total": 2}"#;

#[test]
fn atlassian_service_accounts_are_identities() {
    let batch = detected(ATLASSIAN_SERVICE_ACCOUNTS, ExportKind::AtlassianServiceAccounts, &ctx());
    assert_eq!(batch.source, "atlassian:service-accounts");
    assert!(batch.credentials.is_empty(), "credentials come from the token and OAuth client lists");
    assert_eq!(batch.complete_scope, None);
    let identities: Vec<(&str, IdentityKind, &str, Option<&str>)> = batch
        .identities
        .iter()
        .map(|i| (i.external_id.as_str(), i.kind, i.name.as_str(), i.owner.as_deref()))
        .collect();
    assert_eq!(
        identities,
        [
            ("svc-0001", IdentityKind::ServiceAccount, "Jira sync", Some("557058:bbbb-2222")),
            ("svc-0002", IdentityKind::ServiceAccount, "Backup", Some("557058:aaaa-1111")),
        ]
    );
    keeps_no_secret(&batch, &["ATATT3xNOTAREALTOKEN"]);

    let no_id = ATLASSIAN_SERVICE_ACCOUNTS.replace(r#""id": "svc-0002","#, "");
    let message = error(&no_id, ExportKind::AtlassianServiceAccounts, &ctx());
    assert!(message.contains("record 2") && message.contains("\"id\""), "{message}");
    let bad_time = ATLASSIAN_SERVICE_ACCOUNTS.replace("1764642980000", "\"yesterday\"");
    let message = error(&bad_time, ExportKind::AtlassianServiceAccounts, &ctx());
    assert!(message.contains("record 2") && message.contains("updatedAt"), "{message}");
}

const ATLASSIAN_OAUTH_CLIENTS: &str = r#"{"data": [
  {"clientId": "atl-client-0001", "name": "Datadog collector", "createdAt": 1763149545609, "updatedAt": 1763149545609, "status": "ACTIVE"}
], "links": {"self": "https://api.atlassian.com/admin/api-access/v1/orgs/0a1b2c3d-org/oauth-clients", "next": "https://api.atlassian.com/admin/api-access/v1/orgs/0a1b2c3d-org/oauth-clients?cursor=2"}}
{"data": [
  {"clientId": "atl-client-0002", "name": "", "createdAt": 1700000000000, "updatedAt": 1700000000000, "status": "ACTIVE",
   "clientSecret": "ATOAxNOTAREALSECRET"}
], "links": {"self": "https://api.atlassian.com/admin/api-access/v1/orgs/0a1b2c3d-org/oauth-clients?cursor=2"}}"#;

#[test]
fn atlassian_oauth_clients_hold_client_secrets() {
    let batch = detected(ATLASSIAN_OAUTH_CLIENTS, ExportKind::AtlassianOauthClients, &ctx());
    assert_eq!(batch.source, "atlassian:oauth-clients");
    assert_eq!(batch.complete_scope.as_deref(), Some("atlassian:0a1b2c3d-org:oauth-clients"), "org from links.self");
    assert_eq!(batch.credentials.len(), 2);
    let first = &batch.credentials[0];
    assert_eq!(first.external_id, "atl-client-0001");
    assert_eq!((first.kind, first.status), (CredentialKind::ClientSecret, CredentialStatus::Active));
    assert_eq!(first.name, "Datadog collector client secret");
    assert_eq!(first.created.as_deref(), Some("2025-11-14T19:45:45Z"), "epoch milliseconds");
    assert_eq!(first.identity.as_deref(), Some("oauth-client/atl-client-0001"));
    assert_eq!(first.fingerprint.as_deref(), Some("atl-client-0001"));
    assert_eq!(batch.identities[0].kind, IdentityKind::OauthClient);
    assert_eq!(batch.credentials[1].name, "atl-client-0002 client secret", "an empty name falls back to the id");
    keeps_no_secret(&batch, &["ATOAxNOTAREALSECRET"]);

    let first_page = &ATLASSIAN_OAUTH_CLIENTS[..ATLASSIAN_OAUTH_CLIENTS.find("\n{").unwrap()];
    let (_, partial) = read_export(first_page.as_bytes(), "c.json", None, &ctx()).unwrap();
    assert_eq!(partial.complete_scope, None, "a next page exists");

    let message = error(
        &ATLASSIAN_OAUTH_CLIENTS.replace("\"status\": \"ACTIVE\",\n", "\"status\": \"REVOKED\",\n"),
        ExportKind::AtlassianOauthClients,
        &ctx(),
    );
    assert!(message.contains("record 2") && message.contains("REVOKED"), "{message}");
    let no_id = ATLASSIAN_OAUTH_CLIENTS.replace(r#""clientId": "atl-client-0001", "#, "");
    let message = error(&no_id, ExportKind::AtlassianOauthClients, &ctx());
    assert!(message.contains("record 1") && message.contains("\"clientId\""), "{message}");
}

#[test]
fn new_kinds_have_names_that_parse_back() {
    for kind in ExportKind::ALL {
        assert_eq!(kind.name().parse::<ExportKind>().unwrap(), *kind);
        assert!(!kind.describe().is_empty());
    }
    assert_eq!("atlassian-api-tokens".parse::<ExportKind>().unwrap(), ExportKind::AtlassianApiTokens);
}

#[test]
fn empty_wrapped_lists_ask_for_the_kind() {
    let err = read_export(br#"{"data": [], "links": {"next": null}}"#, "e.json", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("--kind"), "{err:#}");
    let (_, batch) = read_export(
        br#"{"data": [], "links": {"self": "https://api.atlassian.com/admin/api-access/v1/orgs/o1/api-tokens"}}"#,
        "e.json",
        Some(ExportKind::AtlassianApiTokens),
        &ctx(),
    )
    .unwrap();
    assert_eq!(batch.complete_scope.as_deref(), Some("atlassian:o1:api-tokens"), "no tokens at all, for a known org");
}

#[test]
fn repeated_pages_and_credentials_are_errors_but_empty_pages_are_not() {
    let page = r#"[{"id": 1, "key": "ssh-ed25519 AAAA", "url": "https://api.github.com/repos/acme/web/keys/1", "title": "ci",
        "verified": true, "created_at": "2022-12-10T15:53:42Z", "read_only": true, "added_by": "octocat", "last_used": null, "enabled": true}]"#;
    let twice = format!("{page}\n{page}");
    let err = read_export(twice.as_bytes(), "keys.json", None, &ImportContext::default()).unwrap_err();
    assert!(format!("{err:#}").contains("page 2 repeats page 1"), "{err:#}");

    let changed = page.replace("\"title\": \"ci\"", "\"title\": \"ci (renamed)\"");
    let err =
        read_export(format!("{page}\n{changed}").as_bytes(), "keys.json", None, &ImportContext::default()).unwrap_err();
    assert!(format!("{err:#}").contains("is listed twice"), "{err:#}");

    // Two users without keys give two identical empty pages: nothing is counted twice.
    let empty = r#"{"AccessKeyMetadata": [], "IsTruncated": false}"#;
    let keys = r#"{"AccessKeyMetadata": [{"UserName": "ci", "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "Status": "Active", "CreateDate": "2021-06-01T12:05:00+00:00"}]}"#;
    let (_, batch) =
        read_export(format!("{empty}\n{keys}\n{empty}").as_bytes(), "k.json", None, &ImportContext::default()).unwrap();
    assert_eq!(batch.credentials.len(), 1);
}

#[test]
fn slack_users_list_yields_bot_tokens() {
    let page = r#"{"ok": true, "members": [
      {"id": "U0ZAPBOT", "team_id": "T0ACME", "name": "zapier", "deleted": false, "is_bot": true, "updated": 1700000000,
       "profile": {"real_name": "Zapier", "bot_id": "B0ZAP", "api_app_id": "A0ZAPIER"}},
      {"id": "U1", "team_id": "T0ACME", "name": "ana", "deleted": false, "is_bot": false, "profile": {"real_name": "Ana"}}
    ], "response_metadata": {"next_cursor": ""}}"#;
    let (kind, batch) = read_export(page.as_bytes(), "users.json", None, &ImportContext::default()).unwrap();
    assert_eq!(kind, ExportKind::SlackBots);
    assert_eq!(batch.credentials.len(), 1);
    assert_eq!(batch.credentials[0].identity.as_deref(), Some("app/A0ZAPIER"));
    assert_eq!(batch.complete_scope.as_deref(), Some("slack:T0ACME:bots"));
    let err = read_export(
        page.replace(r#""is_bot": true"#, r#""is_bot": "yes""#).as_bytes(),
        "users.json",
        None,
        &ImportContext::default(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("record 1"), "{err:#}");
}
