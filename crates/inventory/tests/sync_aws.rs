//! The AWS IAM connector against a loopback server that answers like the IAM Query API:
//! XML results, `IsTruncated`/`Marker` pagination, `400 Throttling`, 5xx, the credential
//! report's generation and base64 content. Every request's SigV4 signature is recomputed.

use base64::Engine as _;
use keywatch_inventory::sync::sigv4::{self, Credentials, SigningRequest};
use keywatch_inventory::sync::{self, aws::AwsConfig, EndpointOutcome, SyncConfig};
use keywatch_model::inventory::{CredentialKind, CredentialStatus, InventoryBatch};
use wiremock::matchers::{method, query_param, query_param_is_missing};
use wiremock::{Mock, MockBuilder, MockServer, ResponseTemplate};

const ACCESS_KEY_ID: &str = "AKIATESTONLYEXAMPLE1";
const SECRET: &str = "TestOnlySecret/K7MDENG+bPxRfiCYzzSECRETzz";
const SESSION_TOKEN: &str = "TestOnlySessionToken//zzTOKENzz==";
const ACCOUNT: &str = "123456789012";

/// Sets this test's credential variables and returns its config.
fn config(server: &MockServer, test: &str, session_token: bool) -> SyncConfig {
    let key_env = format!("KW_TEST_AWS_KEY_ID_{test}");
    let secret_env = format!("KW_TEST_AWS_SECRET_{test}");
    let token_env = format!("KW_TEST_AWS_TOKEN_{test}");
    std::env::set_var(&key_env, ACCESS_KEY_ID);
    std::env::set_var(&secret_env, SECRET);
    if session_token {
        std::env::set_var(&token_env, SESSION_TOKEN);
    }
    SyncConfig {
        initial_backoff_ms: Some(1),
        max_retries: Some(3),
        aws: Some(AwsConfig {
            base_url: Some(server.uri()),
            region: None,
            access_key_id_env: Some(key_env),
            secret_access_key_env: Some(secret_env),
            session_token_env: session_token.then_some(token_env),
        }),
        ..SyncConfig::default()
    }
}

/// A successful answer as IAM writes it.
fn ok(action: &str, result: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        format!(
            r#"<{action}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <{action}Result>{result}</{action}Result>
  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>
</{action}Response>"#
        ),
        "text/xml",
    )
}

fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(
        format!(
            r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>4c3b2a1f-0000-4fc4-9331-6e8eEXAMPLE</RequestId>
</ErrorResponse>"#
        ),
        "text/xml",
    )
}

fn action(name: &str) -> MockBuilder {
    Mock::given(method("GET")).and(query_param("Action", name)).and(query_param("Version", "2010-05-08"))
}

fn user(name: &str) -> String {
    format!(
        "<member><UserId>AIDA{id}</UserId><Path>/</Path><UserName>{name}</UserName>\
         <Arn>arn:aws:iam::{ACCOUNT}:user/{name}</Arn><CreateDate>2021-06-01T12:00:00Z</CreateDate></member>",
        id = name.to_uppercase().replace('-', "")
    )
}

fn key(user: &str, id: &str, status: &str) -> String {
    format!(
        "<member><UserName>{user}</UserName><AccessKeyId>{id}</AccessKeyId><Status>{status}</Status>\
         <CreateDate>2021-06-01T12:05:00Z</CreateDate></member>"
    )
}

fn last_used(user: &str, date: Option<&str>) -> String {
    match date {
        Some(d) => format!(
            "<UserName>{user}</UserName><AccessKeyLastUsed><LastUsedDate>{d}</LastUsedDate>\
             <ServiceName>s3</ServiceName><Region>us-east-1</Region></AccessKeyLastUsed>"
        ),
        None => format!(
            "<UserName>{user}</UserName><AccessKeyLastUsed><ServiceName>N/A</ServiceName>\
             <Region>N/A</Region></AccessKeyLastUsed>"
        ),
    }
}

fn role(name: &str, policy: &serde_json::Value) -> String {
    format!(
        "<member><Path>/</Path><Arn>arn:aws:iam::{ACCOUNT}:role/{name}</Arn><RoleName>{name}</RoleName>\
         <AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument><CreateDate>2022-03-01T08:00:00Z</CreateDate>\
         <RoleId>AROA{}</RoleId><MaxSessionDuration>3600</MaxSessionDuration></member>",
        sigv4::uri_encode(&policy.to_string(), false),
        name.to_uppercase().replace('-', "")
    )
}

const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::123456789012:root,2019-03-01T09:00:00+00:00,not_supported,2024-01-02T03:04:05+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
ci-deployer,arn:aws:iam::123456789012:user/ci-deployer,2021-06-01T12:00:00+00:00,false,N/A,N/A,N/A,false,true,2021-06-01T12:05:00+00:00,2024-05-01T10:00:00+00:00,us-east-1,s3,false,2021-06-01T12:05:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A
";

/// Users over two pages; ci-deployer's keys over two pages, one used and one never used;
/// backup-bot's key; roles; a credential report that is generated, then ready.
async fn mount_account(server: &MockServer) {
    action("ListUsers")
        .and(query_param("MaxItems", "1000"))
        .and(query_param_is_missing("Marker"))
        .respond_with(ok(
            "ListUsers",
            &format!(
                "<Users>{}</Users><IsTruncated>true</IsTruncated><Marker>users/page+2=</Marker>",
                user("ci-deployer")
            ),
        ))
        .mount(server)
        .await;
    action("ListUsers")
        .and(query_param("Marker", "users/page+2="))
        .respond_with(ok(
            "ListUsers",
            &format!("<Users>{}</Users><IsTruncated>false</IsTruncated>", user("backup-bot")),
        ))
        .mount(server)
        .await;
    action("ListAccessKeys")
        .and(query_param("UserName", "ci-deployer"))
        .and(query_param_is_missing("Marker"))
        .respond_with(ok(
            "ListAccessKeys",
            &format!(
                "<UserName>ci-deployer</UserName><AccessKeyMetadata>{}</AccessKeyMetadata>\
                 <IsTruncated>true</IsTruncated><Marker>keys2</Marker>",
                key("ci-deployer", "AKIAIOSFODNN7EXAMPLE", "Active")
            ),
        ))
        .mount(server)
        .await;
    action("ListAccessKeys")
        .and(query_param("UserName", "ci-deployer"))
        .and(query_param("Marker", "keys2"))
        .respond_with(ok(
            "ListAccessKeys",
            &format!(
                "<UserName>ci-deployer</UserName><AccessKeyMetadata>{}</AccessKeyMetadata><IsTruncated>false</IsTruncated>",
                key("ci-deployer", "AKIAI44QH8DHBEXAMPLE", "Inactive")
            ),
        ))
        .mount(server)
        .await;
    action("ListAccessKeys")
        .and(query_param("UserName", "backup-bot"))
        .respond_with(ok(
            "ListAccessKeys",
            &format!(
                "<UserName>backup-bot</UserName><AccessKeyMetadata>{}</AccessKeyMetadata><IsTruncated>false</IsTruncated>",
                key("backup-bot", "AKIAJBACKUPBOTEXAMPL", "Active")
            ),
        ))
        .mount(server)
        .await;
    for (id, user, date) in [
        ("AKIAIOSFODNN7EXAMPLE", "ci-deployer", Some("2024-05-01T10:00:00Z")),
        ("AKIAI44QH8DHBEXAMPLE", "ci-deployer", None),
        ("AKIAJBACKUPBOTEXAMPL", "backup-bot", Some("2024-04-30T23:30:00+01:00")),
    ] {
        action("GetAccessKeyLastUsed")
            .and(query_param("AccessKeyId", id))
            .respond_with(ok("GetAccessKeyLastUsed", &last_used(user, date)))
            .mount(server)
            .await;
    }
    let partner = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "ext-id-not-to-be-shown"}}}]});
    let lambda = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    action("ListRoles")
        .and(query_param_is_missing("Marker"))
        .respond_with(ok(
            "ListRoles",
            &format!(
                "<Roles>{}</Roles><IsTruncated>true</IsTruncated><Marker>roles2</Marker>",
                role("partner-audit", &partner)
            ),
        ))
        .mount(server)
        .await;
    action("ListRoles")
        .and(query_param("Marker", "roles2"))
        .respond_with(ok(
            "ListRoles",
            &format!("<Roles>{}</Roles><IsTruncated>false</IsTruncated>", role("lambda-exec", &lambda)),
        ))
        .mount(server)
        .await;
    action("GenerateCredentialReport")
        .respond_with(ok(
            "GenerateCredentialReport",
            "<State>STARTED</State><Description>No report exists. Starting a new report generation task</Description>",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    action("GenerateCredentialReport")
        .respond_with(ok("GenerateCredentialReport", "<State>COMPLETE</State>"))
        .mount(server)
        .await;
    // AWS wraps the base64 content over lines.
    let content = base64::engine::general_purpose::STANDARD.encode(REPORT);
    let wrapped: Vec<String> = content.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    action("GetCredentialReport")
        .respond_with(ok(
            "GetCredentialReport",
            &format!(
                "<Content>{}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>2024-05-02T00:00:00Z</GeneratedTime>",
                wrapped.join("\n")
            ),
        ))
        .mount(server)
        .await;
}

fn outcome<'a>(outcomes: &'a [EndpointOutcome], endpoint: &str) -> &'a EndpointOutcome {
    outcomes.iter().find(|o| o.endpoint == endpoint).unwrap_or_else(|| panic!("no {endpoint} outcome: {outcomes:?}"))
}

fn batch<'a>(outcomes: &'a [EndpointOutcome], endpoint: &str) -> &'a InventoryBatch {
    match &outcome(outcomes, endpoint).result {
        Ok(b) => b,
        Err(e) => panic!("{endpoint} failed: {e:#}"),
    }
}

/// Nothing the sync returns shows the secret key or the session token.
fn assert_no_secrets(outcomes: &[EndpointOutcome]) {
    for o in outcomes {
        let text = match &o.result {
            Ok(b) => format!("{b:?}"),
            Err(e) => format!("{e:#} {e:?}"),
        };
        for secret in [SECRET, SESSION_TOKEN, "ext-id-not-to-be-shown"] {
            assert!(!text.contains(secret), "{} shows a secret: {text}", o.endpoint);
        }
    }
}

/// Every request carries a well-formed SigV4 `Authorization` whose signature is the one the
/// request's own method, host, path, query and date give; the secret is never sent.
async fn assert_signed(server: &MockServer, session_token: bool) -> usize {
    let requests = server.received_requests().await.expect("request recording is on");
    for request in &requests {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let authorization = header("authorization").expect("an Authorization header");
        let date = header("x-amz-date").expect("an X-Amz-Date header");
        assert_eq!(date.len(), 16, "{date}");
        assert!(date.ends_with('Z') && date.as_bytes()[8] == b'T', "{date}");
        let prefix = format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/{}/us-east-1/iam/aws4_request, ", &date[..8]);
        assert!(authorization.starts_with(&prefix), "{authorization}");
        let (signed, signature) = authorization[prefix.len()..].split_once(", ").expect("two more parts");
        let signature = signature.strip_prefix("Signature=").expect("Signature=");
        assert!(signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let expected_signed = if session_token {
            "SignedHeaders=host;x-amz-date;x-amz-security-token"
        } else {
            "SignedHeaders=host;x-amz-date"
        };
        assert_eq!(signed, expected_signed);
        assert_eq!(header("x-amz-security-token").is_some(), session_token);

        let credentials = Credentials {
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET.into(),
            session_token: session_token.then(|| SESSION_TOKEN.to_string()),
        };
        let host = header("host").expect("a Host header");
        let signing = SigningRequest {
            method: request.method.as_str(),
            host: &host,
            path: request.url.path(),
            query: request.url.query().unwrap_or(""),
            headers: &[],
            payload: b"",
        };
        let again = sigv4::sign(&signing, &credentials, "us-east-1", "iam", &date);
        let recomputed = &again.iter().find(|(n, _)| *n == "authorization").unwrap().1;
        assert_eq!(&authorization, recomputed, "{}", request.url);

        for (_, value) in request.headers.iter() {
            assert!(!value.to_str().unwrap_or("").contains(SECRET));
        }
        assert!(!request.url.as_str().contains("TestOnlySecret"));
    }
    requests.len()
}

async fn count(server: &MockServer, pred: impl Fn(&str) -> bool) -> usize {
    let requests = server.received_requests().await.unwrap();
    requests.iter().filter(|r| pred(r.url.query().unwrap_or(""))).count()
}

#[tokio::test]
async fn syncs_keys_with_last_use_roles_and_the_report_through_retries() {
    let server = MockServer::start().await;
    // The first ListUsers page is throttled, backup-bot's key list fails once with a 500:
    // both are retried.
    action("ListUsers")
        .and(query_param_is_missing("Marker"))
        .respond_with(error(400, "Throttling", "Rate exceeded"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    action("ListAccessKeys")
        .and(query_param("UserName", "backup-bot"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_raw("<ErrorResponse><Error><Code>ServiceFailure</Code></Error></ErrorResponse>", "text/xml"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_account(&server).await;
    let config = config(&server, "FULL", false);
    assert!(config.configured().contains(&"aws"));

    let outcomes = sync::run(&config, &["aws".to_string()]).await.unwrap();
    assert_no_secrets(&outcomes);
    let endpoints: Vec<&str> = outcomes.iter().map(|o| o.endpoint.as_str()).collect();
    assert_eq!(endpoints, ["access-keys", "roles", "credential-report"]);
    assert!(outcomes.iter().all(|o| o.platform == "aws"));

    let keys = batch(&outcomes, "access-keys");
    assert_eq!(keys.complete_scope.as_deref(), Some("aws:123456789012:access-keys"), "one batch for every user's keys");
    let ids: Vec<&str> = keys.credentials.iter().map(|c| c.external_id.as_str()).collect();
    assert_eq!(ids, ["AKIAIOSFODNN7EXAMPLE", "AKIAI44QH8DHBEXAMPLE", "AKIAJBACKUPBOTEXAMPL"]);
    let used: Vec<Option<&str>> = keys.credentials.iter().map(|c| c.last_used.as_deref()).collect();
    assert_eq!(used, [Some("2024-05-01T10:00:00Z"), None, Some("2024-04-30T22:30:00Z")]);
    assert_eq!(keys.credentials[1].status, CredentialStatus::Inactive);
    assert_eq!(keys.credentials[0].created.as_deref(), Some("2021-06-01T12:05:00Z"));
    assert!(keys.credentials.iter().all(|c| c.kind == CredentialKind::AccessKey && c.scopes.is_empty()));
    assert_eq!(keys.identities.len(), 2);

    let roles = batch(&outcomes, "roles");
    assert_eq!(roles.complete_scope.as_deref(), Some("aws:123456789012:roles"));
    assert_eq!(roles.identities.len(), 2, "both pages of roles");
    assert_eq!(roles.credentials.len(), 1, "only the cross-account trust is a credential");
    let trust = &roles.credentials[0];
    assert_eq!(trust.kind, CredentialKind::RoleTrust);
    assert_eq!(trust.external_id, "arn:aws:iam::123456789012:role/partner-audit#trust/arn:aws:iam::999988887777:root");
    assert!(trust.scopes.contains(&"requires sts:ExternalId".to_string()), "{:?}", trust.scopes);

    let report = batch(&outcomes, "credential-report");
    assert_eq!(report.complete_scope.as_deref(), Some("aws:123456789012:credential-report"));
    assert_eq!(report.identities.len(), 2);
    assert_eq!(report.credentials.len(), 2);
    assert_eq!(report.credentials[0].last_used.as_deref(), Some("2024-05-01T10:00:00Z"));

    let total = assert_signed(&server, false).await;
    assert!(total >= 14, "{total} requests");
    assert_eq!(
        count(&server, |q| q.contains("Action=ListUsers") && !q.contains("Marker")).await,
        2,
        "throttled, then retried"
    );
    assert_eq!(count(&server, |q| q.contains("Action=ListAccessKeys") && q.contains("UserName=backup-bot")).await, 2);
    assert_eq!(count(&server, |q| q.contains("Action=GenerateCredentialReport")).await, 2, "STARTED, then COMPLETE");
    assert_eq!(count(&server, |q| q.contains("Action=GetCredentialReport")).await, 1);
}

#[tokio::test]
async fn a_malformed_page_fails_only_its_endpoint() {
    let server = MockServer::start().await;
    action("ListRoles")
        .and(query_param("Marker", "roles2"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult><Roles><member><RoleName>cut</Role"#,
            "text/xml",
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_account(&server).await;
    // Temporary credentials: the session token is sent and signed.
    let config = config(&server, "MALFORMED", true);
    let outcomes = sync::run(&config, &[]).await.unwrap();
    assert_no_secrets(&outcomes);

    let err = outcome(&outcomes, "roles").result.as_ref().unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("ListRoles") && text.contains("not valid XML"), "{text}");
    assert!(batch(&outcomes, "access-keys").complete_scope.is_some());
    assert!(batch(&outcomes, "credential-report").complete_scope.is_some());
    assert_signed(&server, true).await;
}

#[tokio::test]
async fn errors_name_the_action_and_polling_is_bounded() {
    let server = MockServer::start().await;
    action("ListUsers")
        .respond_with(error(403, "AccessDenied", "User is not authorized to perform: iam:ListUsers"))
        .mount(&server)
        .await;
    action("ListRoles").respond_with(error(400, "Throttling", "Rate exceeded")).mount(&server).await;
    action("GenerateCredentialReport")
        .respond_with(ok("GenerateCredentialReport", "<State>INPROGRESS</State>"))
        .mount(&server)
        .await;
    let config = config(&server, "ERRORS", false);
    let outcomes = sync::run(&config, &[]).await.unwrap();
    assert_no_secrets(&outcomes);

    let text = |endpoint: &str| format!("{:#}", outcome(&outcomes, endpoint).result.as_ref().unwrap_err());
    let keys = text("access-keys");
    assert!(keys.contains("ListUsers") && keys.contains("403") && keys.contains("AccessDenied"), "{keys}");
    let roles = text("roles");
    assert!(roles.contains("ListRoles") && roles.contains("4 attempts") && roles.contains("Throttling"), "{roles}");
    let report = text("credential-report");
    assert!(report.contains("GenerateCredentialReport") && report.contains("not ready"), "{report}");

    assert_eq!(count(&server, |q| q.contains("Action=ListUsers")).await, 1, "a 403 is not retried");
    assert_eq!(count(&server, |q| q.contains("Action=ListRoles")).await, 4, "throttling retried up to max_retries");
    assert_eq!(count(&server, |q| q.contains("Action=GenerateCredentialReport")).await, 12, "bounded polls");
    assert_eq!(count(&server, |q| q.contains("Action=GetCredentialReport")).await, 0);
}

#[tokio::test]
async fn missing_credentials_name_the_variables_only() {
    let server = MockServer::start().await;
    // The standard variable is the fallback; no test of this file relies on it.
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    std::env::set_var("KW_TEST_AWS_KEY_ID_NOSECRET", ACCESS_KEY_ID);
    let config = SyncConfig {
        aws: Some(AwsConfig {
            base_url: Some(server.uri()),
            access_key_id_env: Some("KW_TEST_AWS_KEY_ID_NOSECRET".into()),
            secret_access_key_env: Some("KW_TEST_AWS_SECRET_NEVER_SET".into()),
            ..AwsConfig::default()
        }),
        ..SyncConfig::default()
    };
    let outcomes = sync::run(&config, &[]).await.unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].endpoint, "connect");
    let text = format!("{:#}", outcomes[0].result.as_ref().unwrap_err());
    assert!(text.contains("KW_TEST_AWS_SECRET_NEVER_SET") && !text.contains(ACCESS_KEY_ID), "{text}");
    assert!(server.received_requests().await.unwrap().is_empty());

    let unknown = toml::from_str::<AwsConfig>("base_url = \"https://iam.amazonaws.com\"\nsecret = \"x\"\n");
    assert!(unknown.is_err(), "unknown fields are refused");
}
