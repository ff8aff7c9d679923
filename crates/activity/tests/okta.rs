use std::path::PathBuf;

use keywatch_activity::okta::{recognise, to_event};
use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/okta").join(name)
}

fn raw(record: u64) -> RawRef {
    RawRef { file: "system_log.json".into(), line: 0, record }
}

/// The `/api/v1/logs` response: a top-level array of LogEvents.
fn api_records() -> Vec<Value> {
    let text = std::fs::read_to_string(fixture("system_log.json")).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Array(records) => records,
        other => panic!("fixture is not an array: {other}"),
    }
}

/// A log stream or export: one LogEvent per line.
fn stream_records() -> Vec<Value> {
    let text = std::fs::read_to_string(fixture("log_stream.jsonl")).unwrap();
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn events() -> Vec<Event> {
    api_records().iter().enumerate().map(|(i, r)| to_event(r, raw(i as u64 + 1)).unwrap()).collect()
}

fn by_type<'e>(events: &'e [Event], event_type: &str) -> &'e Event {
    events.iter().find(|e| e.action == event_type).unwrap_or_else(|| panic!("no {event_type}"))
}

#[test]
fn failed_sign_in_maps_every_field() {
    let events = events();
    let e = by_type(&events, "user.session.start");
    assert_eq!(e.platform, "okta");
    assert_eq!(e.time, 1_715_004_131); // 2024-05-06T14:02:11.482Z
    assert_eq!(e.event_id.as_deref(), Some("4f1c7a0e-0b9d-11ef-9c3a-2f7e1d3a5b61"));
    assert_eq!(e.identity.as_deref(), Some("dana.ortiz@example.com"));
    assert_eq!(e.credential, None, "a browser sign-in uses no API token or OAuth client");
    assert_eq!(e.source_ip.as_deref(), Some("198.51.100.23"));
    assert!(e.user_agent.as_deref().unwrap().starts_with("Mozilla/5.0 (Macintosh"));
    assert_eq!(e.outcome, Outcome::Failure);
    assert_eq!(e.error.as_deref(), Some("INVALID_CREDENTIALS"));
    assert_eq!(e.resource, None, "target is null");
    assert_eq!(e.category, None);
    assert_eq!(e.read_only, None);
    assert_eq!(e.raw, raw(1));
}

#[test]
fn api_token_request_names_the_token_and_is_a_privilege_change() {
    let events = events();
    let e = by_type(&events, "group.user_membership.add");
    assert_eq!(e.identity.as_deref(), Some("svc-provisioning@example.com"));
    assert_eq!(e.credential.as_deref(), Some("00T1b2c3d4E5f6G7h8i9"), "transaction.detail.requestApiTokenId");
    assert_eq!(e.source_ip.as_deref(), Some("203.0.113.40"));
    assert_eq!(e.user_agent.as_deref(), Some("okta-sdk-python/2.9.5 python/3.11.8 Linux/5.15.0-1057-aws"));
    assert_eq!(e.resource.as_deref(), Some("lee.chen@example.com"), "first target's alternateId");
    assert_eq!(e.category, Some(Category::PrivilegeChange));
    assert_eq!(e.outcome, Outcome::Success);
    assert_eq!(e.error, None);
}

#[test]
fn oauth_service_app_is_its_own_credential() {
    let events = events();
    let e = by_type(&events, "app.oauth2.as.token.grant.access_token");
    assert_eq!(e.credential.as_deref(), Some("0oa7reportsvcQ2w3e4d7"), "the PublicClientApp actor's client id");
    assert_eq!(e.identity.as_deref(), Some("0oa7reportsvcQ2w3e4d7"));
    assert_eq!(e.source_ip.as_deref(), Some("192.0.2.77"));
    assert_eq!(e.category, None);
}

#[test]
fn request_authorised_by_an_oauth_token_uses_the_client_id() {
    let records = stream_records();
    let e = to_event(&records[0], raw(1)).unwrap();
    assert_eq!(e.action, "user.lifecycle.suspend");
    assert_eq!(e.identity.as_deref(), Some("svc-provisioning@example.com"));
    assert_eq!(e.credential.as_deref(), Some("0oa4hrsyncClient9x8d7"), "client.id, with debugData.grantedScopes");
    assert_eq!(e.resource.as_deref(), Some("sam.leaver@example.com"));
}

#[test]
fn admin_privilege_grant() {
    let events = events();
    let e = by_type(&events, "user.account.privilege.grant");
    assert_eq!(e.identity.as_deref(), Some("it-admin@example.com"));
    assert_eq!(e.resource.as_deref(), Some("lee.chen@example.com"));
    assert_eq!(e.category, Some(Category::PrivilegeChange));
    assert_eq!(e.credential, None);
}

#[test]
fn token_revocation_names_the_revoked_token() {
    let events = events();
    let e = by_type(&events, "system.api_token.revoke");
    assert_eq!(e.category, Some(Category::Revocation));
    // The same id the token's own requests carry as requestApiTokenId (alternateId is "unknown").
    assert_eq!(e.resource.as_deref(), Some("00T1b2c3d4E5f6G7h8i9"));
    assert_eq!(e.resource, by_type(&events, "group.user_membership.add").credential);
    assert_eq!(e.credential, None, "transaction.detail is null");
}

#[test]
fn oauth_client_deactivation_revokes_the_client_id() {
    let records = stream_records();
    let e = to_event(&records[1], raw(2)).unwrap();
    assert_eq!(e.action, "app.oauth2.client.lifecycle.deactivate");
    assert_eq!(e.category, Some(Category::Revocation));
    assert_eq!(e.resource.as_deref(), Some("0oa7reportsvcQ2w3e4d7"));
    let app = by_type(&events(), "app.oauth2.as.token.grant.access_token").credential.clone();
    assert_eq!(e.resource, app);
}

#[test]
fn log_stream_deactivation_is_defence_evasion_and_falls_back_to_the_ip_chain() {
    let events = events();
    let e = by_type(&events, "system.log_stream.lifecycle.deactivate");
    assert_eq!(e.category, Some(Category::DefenceEvasion));
    assert_eq!(e.source_ip.as_deref(), Some("185.220.101.34"), "client.ipAddress is null");
    assert_eq!(e.resource.as_deref(), Some("Splunk Cloud SIEM"));
}

#[test]
fn policy_deny_is_a_failure_with_its_reason() {
    let events = events();
    let e = by_type(&events, "policy.evaluate_sign_on");
    assert_eq!(e.outcome, Outcome::Failure);
    assert_eq!(e.error.as_deref(), Some("Sign-on policy evaluation resulted in DENY"));
    assert_eq!(e.source_ip.as_deref(), Some("2001:db8:85a3::8a2e:370:7334"));
    assert_eq!(e.resource.as_deref(), Some("00p2defaultSignOn5d7"), "alternateId \"unknown\" falls back to id");
}

#[test]
fn client_secret_read_is_a_secret_read() {
    let events = events();
    let e = by_type(&events, "app.oauth2.client.read_client_secret");
    assert_eq!(e.category, Some(Category::SecretRead));
    assert_eq!(e.read_only, Some(true));
    assert_eq!(e.resource.as_deref(), Some("Nightly Access Report"));
}

#[test]
fn allow_and_challenge_are_successes_without_error() {
    let mut record = api_records()[6].clone();
    record["outcome"] = json!({"result": "ALLOW", "reason": "Sign-on policy evaluation resulted in ALLOW"});
    let e = to_event(&record, raw(1)).unwrap();
    assert_eq!((e.outcome, e.error), (Outcome::Success, None));
    record["outcome"] = json!({"result": "CHALLENGE", "reason": null});
    assert_eq!(to_event(&record, raw(1)).unwrap().outcome, Outcome::Success);
    record.as_object_mut().unwrap().remove("outcome");
    assert_eq!(to_event(&record, raw(1)).unwrap().outcome, Outcome::Success);
    record["outcome"] = json!({"result": "FAILURE"});
    let e = to_event(&record, raw(1)).unwrap();
    assert_eq!((e.outcome, e.error.as_deref()), (Outcome::Failure, Some("FAILURE")));
}

#[test]
fn minimal_record_is_enough() {
    let e = to_event(&json!({"published": "2024-05-06T14:02:11Z", "eventType": "user.session.end"}), raw(1)).unwrap();
    assert_eq!(e.time, 1_715_004_131);
    assert_eq!(e.action, "user.session.end");
    assert_eq!((e.identity, e.credential, e.source_ip, e.event_id), (None, None, None, None));
}

#[test]
fn recognises_its_own_records_only() {
    for r in api_records().iter().chain(stream_records().iter()) {
        assert!(recognise(r.as_object().unwrap()), "{}", r["uuid"]);
    }
    let cloudtrail = json!({
        "eventVersion": "1.08", "eventTime": "2024-05-01T12:00:00Z", "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey", "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"},
        "sourceIPAddress": "203.0.113.7", "eventID": "11111111-1111-1111-1111-111111111111"
    });
    assert!(!recognise(cloudtrail.as_object().unwrap()));
    let github = json!({
        "@timestamp": 1714995943017u64, "_document_id": "kX9z2Qb7T1mVwPcR4nHsLA", "action": "org.add_member",
        "actor": "octo-admin", "org": "acme", "created_at": 1714995943017u64
    });
    assert!(!recognise(github.as_object().unwrap()));
    let google = json!({
        "kind": "admin#reports#activity", "id": {"time": "2024-05-01T12:00:00.000Z", "applicationName": "token"},
        "actor": {"email": "a@example.com"}, "events": [{"name": "authorize"}]
    });
    assert!(!recognise(google.as_object().unwrap()));
    let atlassian = json!({"id": "1", "type": "events", "attributes": {"time": "2024-05-01T12:00:00Z", "action": "api_token_created"}});
    assert!(!recognise(atlassian.as_object().unwrap()));
    // The event hook wrapper is not a LogEvent: the events are under data.events.
    let hook = json!({"eventType": "com.okta.event_hook", "eventTime": "2024-05-01T12:00:00Z", "data": {"events": []}});
    assert!(!recognise(hook.as_object().unwrap()));
}

fn error_of(record: Value) -> String {
    to_event(&record, raw(1)).unwrap_err()
}

#[test]
fn wrong_types_are_errors_naming_the_field() {
    let base = api_records()[1].clone();
    let with = |path: &[&str], value: Value| {
        let mut r = base.clone();
        let mut at = &mut r;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        error_of(r)
    };
    assert_eq!(with(&["actor"], json!("dana.ortiz@example.com")), "actor is not an object (string)");
    assert_eq!(with(&["published"], json!(1715004131482u64)), "published is not a string (number)");
    assert_eq!(with(&["published"], json!("yesterday")), "published is not an RFC 3339 time: \"yesterday\"");
    assert_eq!(with(&["eventType"], json!(["a"])), "eventType is not a string (array)");
    assert_eq!(with(&["actor", "alternateId"], json!(7)), "actor.alternateId is not a string (number)");
    assert_eq!(with(&["client", "ipAddress"], json!(true)), "client.ipAddress is not a string (boolean)");
    assert_eq!(
        with(&["client", "userAgent", "rawUserAgent"], json!({})),
        "client.userAgent.rawUserAgent is not a string (object)"
    );
    assert_eq!(with(&["outcome"], json!("SUCCESS")), "outcome is not an object (string)");
    assert_eq!(with(&["target"], json!({"id": "x"})), "target is not an array (object)");
    assert_eq!(with(&["target"], json!([{"id": "x"}, 5])), "target[1] is not an object (number)");
    assert_eq!(with(&["target"], json!([{"id": 5}])), "target[0].id is not a string (number)");
    assert_eq!(
        with(&["transaction", "detail", "requestApiTokenId"], json!(12)),
        "transaction.detail.requestApiTokenId is not a string (number)"
    );
    assert_eq!(with(&["request", "ipChain"], json!("1.2.3.4")), "request.ipChain is not an array (string)");
}

#[test]
fn missing_required_fields_and_non_objects() {
    let mut r = api_records()[0].clone();
    r.as_object_mut().unwrap().remove("published");
    assert_eq!(error_of(r), "missing published");
    let mut r = api_records()[0].clone();
    r.as_object_mut().unwrap().remove("eventType");
    assert_eq!(error_of(r), "missing eventType");
    assert_eq!(error_of(json!([1, 2])), "record is not a JSON object (array)");
    assert_eq!(error_of(json!("text")), "record is not a JSON object (string)");
    assert_eq!(error_of(Value::Null), "record is not a JSON object (null)");
}

#[test]
fn never_panics_on_odd_values() {
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(1e300),
        json!(""),
        json!("unknown"),
        json!([]),
        json!([null, {}, [], "x"]),
        json!({}),
        json!({"ip": 5, "id": []}),
    ];
    let base = api_records()[1].clone();
    let keys: Vec<String> = base.as_object().unwrap().keys().cloned().collect();
    for key in &keys {
        for value in &odd {
            let mut r = base.clone();
            r[key.as_str()] = value.clone();
            let _ = to_event(&r, raw(1));
            if let Some(inner) = base[key.as_str()].as_object() {
                for inner_key in inner.keys() {
                    let mut r = base.clone();
                    r[key.as_str()][inner_key.as_str()] = value.clone();
                    let _ = to_event(&r, raw(1));
                }
            }
        }
    }
    for value in &odd {
        let _ = to_event(value, raw(1));
    }
}
