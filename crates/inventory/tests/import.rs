//! Importers on exports shaped like the platforms' documented responses.

use keywatch_inventory::import::{read_export, ExportKind, ImportContext};
use keywatch_model::inventory::{CredentialKind, CredentialStatus, Privilege};

fn ctx() -> ImportContext {
    ImportContext::default()
}

const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::123456789012:root,2019-03-01T09:00:00+00:00,not_supported,2024-01-02T03:04:05+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
ci-deployer,arn:aws:iam::123456789012:user/ci-deployer,2021-06-01T12:00:00+00:00,false,N/A,N/A,N/A,false,true,2021-06-01T12:05:00+00:00,2024-02-10T08:00:00+00:00,us-east-1,s3,false,2022-01-01T00:00:00+02:00,N/A,N/A,N/A,false,N/A,false,N/A
snowflake-etl,arn:aws:iam::123456789012:user/snowflake-etl,2022-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2022-01-01T00:10:00+00:00,no_information,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
";

#[test]
fn credential_report_lists_each_users_keys() {
    let (kind, batch) = read_export(REPORT.as_bytes(), "report.csv", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::AwsCredentialReport);
    assert_eq!(batch.complete_scope.as_deref(), Some("aws:123456789012:credential-report"));
    assert_eq!(batch.identities.len(), 3);
    let ids: Vec<&str> = batch.credentials.iter().map(|c| c.external_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "arn:aws:iam::123456789012:user/ci-deployer#access_key_1",
            "arn:aws:iam::123456789012:user/ci-deployer#access_key_2",
            "arn:aws:iam::123456789012:user/snowflake-etl#access_key_1",
        ]
    );
    let first = &batch.credentials[0];
    assert_eq!(first.status, CredentialStatus::Active);
    assert_eq!(first.last_used.as_deref(), Some("2024-02-10T08:00:00Z"));
    assert_eq!(first.scopes, ["last used with s3"]);
    // The second key is inactive; its rotation time had an offset.
    assert_eq!(batch.credentials[1].status, CredentialStatus::Inactive);
    assert_eq!(batch.credentials[1].last_rotated.as_deref(), Some("2021-12-31T22:00:00Z"));
    assert_eq!(batch.credentials[2].last_used, None, "no_information is no date");
}

#[test]
fn credential_report_errors_name_the_line() {
    let short_row = format!("{REPORT}broken,arn:aws:iam::123456789012:user/broken\n");
    let err = read_export(short_row.as_bytes(), "report.csv", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("report.csv") && format!("{err:#}").contains("line 5"), "{err:#}");
    let bad_date = REPORT.replace("2024-02-10T08:00:00+00:00", "yesterday");
    let err = read_export(bad_date.as_bytes(), "report.csv", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("line 3") && format!("{err:#}").contains("yesterday"), "{err:#}");
    let other_account = REPORT
        .replace("user/snowflake-etl", "user/x")
        .replace("arn:aws:iam::123456789012:user/x", "arn:aws:iam::999999999999:user/x");
    let err = read_export(other_account.as_bytes(), "report.csv", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("account 999999999999"), "{err:#}");
}

#[test]
fn list_access_keys_reads_concatenated_pages() {
    let pages = r#"{"AccessKeyMetadata": [{"UserName": "ci-deployer", "AccessKeyId": "AKIAIOSFODNN7EXAMPL1", "Status": "Active", "CreateDate": "2021-06-01T12:05:00+00:00"}]}
{"AccessKeyMetadata": [{"UserName": "ci-deployer", "AccessKeyId": "AKIAIOSFODNN7EXAMPL2", "Status": "Inactive", "CreateDate": "2022-01-01T00:00:00Z"}], "IsTruncated": false}"#;
    let (kind, batch) = read_export(pages.as_bytes(), "keys.json", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::AwsListAccessKeys);
    assert_eq!(batch.credentials.len(), 2);
    assert_eq!(batch.credentials[1].status, CredentialStatus::Inactive);
    assert_eq!(batch.credentials[0].fingerprint.as_deref(), Some("AKIAIOSFODNN7EXAMPL1"));
    assert_eq!(batch.complete_scope.as_deref(), Some("aws:user/ci-deployer:access-keys"));

    let unknown_status = pages.replace("\"Inactive\"", "\"Expired\"");
    let err = read_export(unknown_status.as_bytes(), "keys.json", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("record 2") && format!("{err:#}").contains("Expired"), "{err:#}");
}

fn installation(id: u64, slug: &str, permissions: &str, suspended: bool) -> String {
    format!(
        r#"{{"id": {id}, "account": {{"login": "acme", "id": 1, "type": "Organization"}}, "app_id": {id}0, "app_slug": "{slug}",
        "target_id": 1, "target_type": "Organization", "repository_selection": "all", "permissions": {permissions},
        "events": ["push"], "created_at": "2023-04-01T10:00:00Z", "updated_at": "2023-04-01T10:00:00Z",
        "suspended_at": {}, "suspended_by": null, "single_file_name": null}}"#,
        if suspended { r#""2024-01-01T00:00:00Z""# } else { "null" }
    )
}

#[test]
fn github_installations_over_two_pages() {
    let page1 = format!(
        r#"{{"total_count": 3, "installations": [{}, {}]}}"#,
        installation(11, "zapier", r#"{"contents": "read", "metadata": "read"}"#, false),
        installation(12, "moveworks", r#"{"members": "write", "contents": "write"}"#, false)
    );
    let page2 = format!(
        r#"{{"total_count": 3, "installations": [{}]}}"#,
        installation(13, "old-ci", r#"{"contents": "write"}"#, true)
    );
    let (kind, batch) =
        read_export(format!("{page1}\n{page2}").as_bytes(), "installations.json", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::GithubInstallations);
    assert_eq!(batch.complete_scope.as_deref(), Some("github:acme:installations"));
    let privileges: Vec<Privilege> = batch.credentials.iter().map(|c| c.privilege).collect();
    assert_eq!(privileges, [Privilege::Read, Privilege::Admin, Privilege::Write]);
    assert_eq!(batch.credentials[2].status, CredentialStatus::Inactive);
    assert_eq!(batch.credentials[0].scopes, ["contents:read", "metadata:read", "repositories:all"]);
    assert_eq!(batch.identities[1].name, "moveworks");

    // Only the first page: not complete, so nothing can be called uninstalled.
    let (_, partial) = read_export(page1.as_bytes(), "installations.json", None, &ctx()).unwrap();
    assert_eq!(partial.complete_scope, None);
}

#[test]
fn github_tokens_and_deploy_keys() {
    let pats = r#"[{"id": 25381, "owner": {"login": "octocat", "id": 1}, "repository_selection": "all",
        "repositories_url": "https://api.github.com/organizations/652551/personal-access-token-requests/25381/repositories",
        "permissions": {"organization": {"members": "read"}, "repository": {"metadata": "read", "contents": "write"}},
        "access_granted_at": "2023-05-16T08:47:09.000-07:00", "token_id": 98716, "token_name": "snowflake etl",
        "token_expired": false, "token_expires_at": "2023-11-16T08:47:09.000-07:00", "token_last_used_at": null}]"#;
    let (kind, batch) = read_export(
        pats.as_bytes(),
        "pats.json",
        None,
        &ImportContext { github_owner: Some("acme".into()), ..ImportContext::default() },
    )
    .unwrap();
    assert_eq!(kind, ExportKind::GithubPersonalAccessTokens);
    let t = &batch.credentials[0];
    assert_eq!(
        (t.kind, t.privilege, t.name.as_str()),
        (CredentialKind::PersonalAccessToken, Privilege::Write, "snowflake etl")
    );
    assert_eq!(t.created.as_deref(), Some("2023-05-16T15:47:09Z"));
    assert_eq!(t.expires.as_deref(), Some("2023-11-16T15:47:09Z"));

    let keys = r#"[{"id": 1, "key": "ssh-rsa AAAAB3NzaC1yc2EAAA deploy@ci", "url": "https://api.github.com/repos/acme/web/keys/1",
        "title": "octocat@octomac", "verified": true, "created_at": "2014-12-10T15:53:42Z", "read_only": true,
        "added_by": "octocat", "last_used": "2022-01-10T15:53:42Z", "enabled": true}]"#;
    let (kind, batch) = read_export(keys.as_bytes(), "keys.json", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::GithubDeployKeys);
    assert_eq!(batch.credentials[0].privilege, Privilege::Read);
    assert_eq!(batch.complete_scope.as_deref(), Some("github:acme/web:deploy-keys"));
}

#[test]
fn unknown_shapes_and_broken_json_are_clear_errors() {
    let err = read_export(br#"{"users": []}"#, "x.json", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("x.json") && format!("{err:#}").contains("no known endpoint"), "{err:#}");
    let err = read_export(b"[]", "empty.json", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("--kind"), "{err:#}");
    let err = read_export(b"{\"installations\": [", "cut.json", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("cut.json") && format!("{err:#}").contains("line 1"), "{err:#}");
    let wrong_type = r#"{"total_count": 1, "installations": [{"id": true, "app_slug": "x"}]}"#;
    let err = read_export(wrong_type.as_bytes(), "t.json", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("record 1") && format!("{err:#}").contains("\"id\""), "{err:#}");
    // A forced kind that does not fit says so.
    let err = read_export(br#"[{"id": 1}]"#, "f.json", Some(ExportKind::GithubInstallations), &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("no \"installations\" list"), "{err:#}");
    let err = read_export(b"\xff\xfe{", "bin.json", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("bin.json"), "{err:#}");
}

#[test]
fn okta_api_tokens_with_last_use_derived_from_the_expiry_window() {
    let tokens = r#"[
      {"clientName": "Okta API", "created": "2024-01-01T00:00:00.000Z", "expiresAt": "2024-03-10T12:00:00.000Z",
       "id": "00Tabcdefg1234567890", "lastUpdated": "2024-01-01T00:00:00.000Z", "name": "moveworks-integration",
       "network": {"connection": "ANYWHERE"}, "tokenWindow": "P30D", "userId": "00uabcdefg1234567890",
       "_links": {"user": {"href": "https://acme.okta.com/api/v1/users/00uabcdefg1234567890"}}},
      {"clientName": "Okta API", "created": "2024-02-01T00:00:00.000Z", "expiresAt": "2024-03-02T00:00:00.000Z",
       "id": "00Tzzzzzzz1234567890", "lastUpdated": "2024-02-01T00:00:00.000Z", "name": "never used",
       "tokenWindow": "P30D", "userId": "00uabcdefg1234567890"}
    ]"#;
    let ctx = ImportContext { okta_org: Some("acme.okta.com".into()), ..ImportContext::default() };
    let (kind, batch) = read_export(tokens.as_bytes(), "tokens.json", None, &ctx).unwrap();
    assert_eq!(kind, ExportKind::OktaApiTokens);
    assert_eq!(batch.complete_scope.as_deref(), Some("okta:acme.okta.com:api-tokens"));
    assert_eq!(batch.credentials[0].kind, CredentialKind::ApiToken);
    assert_eq!(batch.credentials[0].last_used.as_deref(), Some("2024-02-09T12:00:00Z"));
    assert_eq!(batch.credentials[1].last_used, None, "expiry is creation plus the window: never used");
    assert_eq!(batch.identities.len(), 1);
    let bad = tokens.replace(
        "\"P30D\", \"userId\": \"00uabcdefg1234567890\",\n       \"_links\"",
        "\"30 days\", \"userId\": \"00uabcdefg1234567890\",\n       \"_links\"",
    );
    let err = read_export(bad.as_bytes(), "tokens.json", None, &ctx).unwrap_err();
    assert!(format!("{err:#}").contains("record 1") && format!("{err:#}").contains("30 days"), "{err:#}");
}

const ROLES: &str = r#"{"Roles": [
  {"Path": "/", "RoleName": "DatadogIntegrationRole", "RoleId": "AROAEXAMPLEID1", "Arn": "arn:aws:iam::123456789012:role/DatadogIntegrationRole",
   "CreateDate": "2022-03-01T10:00:00+00:00", "MaxSessionDuration": 3600,
   "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::464622532012:root"}, "Action": "sts:AssumeRole",
     "Condition": {"StringEquals": {"sts:ExternalId": "do-not-store-me"}}}]}},
  {"Path": "/", "RoleName": "ec2-app", "RoleId": "AROAEXAMPLEID2", "Arn": "arn:aws:iam::123456789012:role/ec2-app",
   "CreateDate": "2022-03-01T10:00:00Z",
   "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": {"Effect": "Allow",
     "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}}},
  {"Path": "/", "RoleName": "partner", "RoleId": "AROAEXAMPLEID3", "Arn": "arn:aws:iam::123456789012:role/partner",
   "CreateDate": "2023-05-01T10:00:00Z",
   "AssumeRolePolicyDocument": "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22AWS%22%3A%5B%22111122223333%22%2C%22arn%3Aaws%3Aiam%3A%3A123456789012%3Aroot%22%5D%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D"}
], "IsTruncated": false}"#;

#[test]
fn aws_roles_turn_cross_account_trust_into_credentials() {
    let (kind, batch) = read_export(ROLES.as_bytes(), "roles.json", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::AwsRoles);
    assert_eq!(batch.identities.len(), 3);
    assert_eq!(batch.complete_scope.as_deref(), Some("aws:123456789012:roles"));
    let trusts: Vec<(&str, &[String])> =
        batch.credentials.iter().map(|c| (c.name.as_str(), c.scopes.as_slice())).collect();
    assert_eq!(trusts.len(), 2, "the service role and the same-account principal give none: {trusts:?}");
    assert_eq!(trusts[0].0, "DatadogIntegrationRole assumable by arn:aws:iam::464622532012:root");
    assert!(trusts[0].1.contains(&"requires sts:ExternalId".to_string()));
    assert_eq!(
        trusts[1].0, "partner assumable by arn:aws:iam::111122223333:root",
        "URL-encoded policy, bare account id"
    );
    assert!(!format!("{batch:?}").contains("do-not-store-me"), "the external id's value is never kept");

    let broken = ROLES.replace("\"Statement\": {\"Effect\"", "\"Statements\": {\"Effect\"");
    let err = read_export(broken.as_bytes(), "roles.json", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("record 2") && format!("{err:#}").contains("no Statement"), "{err:#}");
}

#[test]
fn github_org_webhooks_name_their_callback_host() {
    let hooks = r#"[{"id": 1, "url": "https://api.github.com/orgs/acme/hooks/1", "ping_url": "https://api.github.com/orgs/acme/hooks/1/pings",
        "deliveries_url": "https://api.github.com/orgs/acme/hooks/1/deliveries", "name": "web", "events": ["push", "pull_request"],
        "active": true, "config": {"url": "https://hooks.zapier.com/hooks/catch/123/abc/", "content_type": "json", "insecure_ssl": "0", "secret": "********"},
        "updated_at": "2023-09-06T20:39:23Z", "created_at": "2023-09-06T17:26:27Z", "type": "Organization"}]"#;
    let (kind, batch) = read_export(hooks.as_bytes(), "hooks.json", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::GithubOrgWebhooks);
    let hook = &batch.credentials[0];
    assert_eq!((hook.kind, hook.name.as_str()), (CredentialKind::WebhookSecret, "webhook to hooks.zapier.com"));
    assert_eq!(hook.scopes, ["callback:hooks.zapier.com", "event:push", "event:pull_request"]);
    assert!(!format!("{batch:?}").contains("catch/123"), "the callback path may hold a token; only the host is kept");
}

#[test]
fn google_tokens_are_grants_of_oauth_clients() {
    let list = r#"{"kind": "admin#directory#tokenList", "etag": "\"abc\"", "items": [
      {"kind": "admin#directory#token", "etag": "\"e1\"", "clientId": "123456789-abc.apps.googleusercontent.com", "displayText": "Zapier",
       "anonymous": false, "nativeApp": false, "userKey": "104502345678901234567",
       "scopes": ["https://www.googleapis.com/auth/gmail.readonly", "openid"]},
      {"kind": "admin#directory#token", "clientId": "987-xyz.apps.googleusercontent.com", "displayText": "Backup tool",
       "anonymous": false, "nativeApp": false, "userKey": "104502345678901234567",
       "scopes": ["https://mail.google.com/", "https://www.googleapis.com/auth/drive"]}]}"#;
    let (kind, batch) = read_export(list.as_bytes(), "tokens.json", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::GoogleTokens);
    assert_eq!(batch.complete_scope.as_deref(), Some("google_workspace:104502345678901234567:tokens"));
    let privileges: Vec<Privilege> = batch.credentials.iter().map(|c| c.privilege).collect();
    assert_eq!(privileges, [Privilege::Read, Privilege::Admin], "full mail access is admin");
    assert_eq!(batch.identities[0].name, "Zapier");
    let bad = list.replace("\"openid\"]", "7]");
    let err = read_export(bad.as_bytes(), "tokens.json", None, &ctx()).unwrap_err();
    assert!(format!("{err:#}").contains("record 1") && format!("{err:#}").contains("scope"), "{err:#}");
}

#[test]
fn slack_integration_logs_fold_into_each_integrations_state() {
    let page2 = r#"{"ok": true, "logs": [
      {"app_id": "A0ZAPIER", "app_type": "Zapier", "user_id": "U1", "user_name": "ana", "date": "1700000000", "change_type": "added", "scope": "channels:read,chat:write"},
      {"service_id": 3456789012, "service_type": "Airbrake", "user_id": "U3", "user_name": "joey", "channel": "C1", "date": "1392163202", "change_type": "disabled", "reason": "user", "scope": "incoming-webhook"}
    ], "paging": {"count": 2, "total": 4, "page": 2, "pages": 2}}"#;
    let page1 = r#"{"ok": true, "logs": [
      {"app_id": "A0ZAPIER", "app_type": "Zapier", "user_id": "U2", "user_name": "bo", "date": "1710000000", "change_type": "updated", "scope": "admin,channels:read"},
      {"app_id": "A0OLD", "app_type": "Old bot", "user_id": "U2", "user_name": "bo", "date": "1600000000", "change_type": "removed"}
    ], "paging": {"count": 2, "total": 4, "page": 1, "pages": 2}}"#;
    let (kind, batch) = read_export(format!("{page1}{page2}").as_bytes(), "logs.json", None, &ctx()).unwrap();
    assert_eq!(kind, ExportKind::SlackIntegrationLogs);
    let state: Vec<(&str, CredentialStatus, Privilege)> =
        batch.credentials.iter().map(|c| (c.name.as_str(), c.status, c.privilege)).collect();
    assert_eq!(
        state,
        [
            ("Old bot integration", CredentialStatus::Revoked, Privilege::Unknown),
            ("Zapier integration", CredentialStatus::Active, Privilege::Admin),
            ("Airbrake integration", CredentialStatus::Inactive, Privilege::Write),
        ]
    );
    let zapier = &batch.credentials[1];
    assert_eq!(zapier.owner.as_deref(), Some("ana"), "who added it, not who changed it last");
    assert_eq!(zapier.created.as_deref(), Some("2023-11-14T22:13:20Z"));
    let err = read_export(
        br#"{"ok": false, "error": "not_allowed_token_type"}"#,
        "e.json",
        Some(ExportKind::SlackIntegrationLogs),
        &ctx(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("not_allowed_token_type"), "{err:#}");
}
