use std::path::PathBuf;

use keywatch_activity::github::{recognise, to_event};
use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github").join(name)
}

fn raw(line: u64, record: u64) -> RawRef {
    RawRef { file: "audit.json".into(), line, record }
}

/// A JSON document holding a top-level array: the REST API response or the web export.
fn array(name: &str) -> Vec<Value> {
    match serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap() {
        Value::Array(records) => records,
        other => panic!("{name} is not an array: {other}"),
    }
}

/// Audit log streaming: one object per line.
fn lines(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn events(records: &[Value]) -> Vec<Event> {
    records.iter().enumerate().map(|(i, r)| to_event(r, raw(0, i as u64 + 1)).unwrap()).collect()
}

fn by_action<'e>(events: &'e [Event], action: &str) -> &'e Event {
    events.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("no {action}"))
}

/// The fine-grained token's id: what revocations and the inventory call it.
const PAT_ID: &str = "4710293";

#[test]
fn git_clone_by_a_fine_grained_token() {
    let events = events(&lines("streaming.jsonl"));
    let e = by_action(&events, "git.clone");
    assert_eq!(e.platform, "github");
    assert_eq!(e.time, 1_715_040_100, "@timestamp 1715040100218 ms");
    assert_eq!(e.event_id.as_deref(), Some("Rt6yU1iO9pAs2DfG4hJk3Q"));
    assert_eq!(e.identity.as_deref(), Some("ci-builder"));
    assert_eq!(e.credential.as_deref(), Some(PAT_ID), "token_id before hashed_token");
    assert_eq!(e.source_ip.as_deref(), Some("192.0.2.77"));
    assert_eq!(e.user_agent.as_deref(), Some("git/2.43.0"));
    assert_eq!(e.resource.as_deref(), Some("acme/payments-service"));
    assert_eq!(e.outcome, Outcome::Success);
    assert_eq!(e.error, None);
    assert_eq!(e.read_only, Some(true));
    assert_eq!(e.category, None);
    assert_eq!((e.session.as_deref(), e.via_service.as_deref()), (None, None));
    assert_eq!(e.raw, raw(0, 1));
}

#[test]
fn git_push_is_a_write_by_the_same_token() {
    let events = events(&lines("streaming.jsonl"));
    let e = by_action(&events, "git.push");
    assert_eq!(e.read_only, Some(false));
    assert_eq!(e.credential.as_deref(), Some(PAT_ID));
}

#[test]
fn app_download_is_read_only_by_operation_type() {
    let events = events(&lines("streaming.jsonl"));
    let e = by_action(&events, "repo.download_zip");
    assert_eq!(e.identity.as_deref(), Some("release-bot[bot]"));
    assert_eq!(e.credential.as_deref(), Some("PlqfWQGNJ0t9tT94TFq7uckWl/KnrxFZN0ZR2wlGdhw="));
    assert_eq!(e.read_only, Some(true));
}

#[test]
fn hashed_token_is_the_credential_without_a_token_id() {
    let mut r = lines("streaming.jsonl")[0].clone();
    r["token_id"] = json!("4710293");
    assert_eq!(to_event(&r, raw(1, 1)).unwrap().credential.as_deref(), Some("4710293"));
    r.as_object_mut().unwrap().remove("token_id");
    let hash = "UjzOjsdZ7y2WcoKhdxE7z154XHWsJBrFrKHTzar7R/8=";
    assert_eq!(to_event(&r, raw(1, 1)).unwrap().credential.as_deref(), Some(hash));
}

#[test]
fn org_add_member_from_the_rest_api() {
    let events = events(&array("rest_api.json"));
    let e = by_action(&events, "org.add_member");
    assert_eq!(e.time, 1_714_995_943);
    assert_eq!(e.event_id.as_deref(), Some("kX9z2Qb7T1mVwPcR4nHsLA"));
    assert_eq!(e.identity.as_deref(), Some("octo-admin"));
    assert_eq!(e.credential, None, "a web session: no token");
    assert_eq!(e.source_ip.as_deref(), Some("198.51.100.9"));
    assert_eq!(e.resource.as_deref(), Some("lee-chen"), "the member added");
    assert_eq!(e.category, Some(Category::PrivilegeChange));
    assert_eq!(e.read_only, Some(false), "operation_type create");
}

#[test]
fn update_member_counts_only_when_it_makes_an_owner() {
    let records = array("rest_api.json");
    let events = events(&records);
    assert_eq!(by_action(&events, "org.update_member").category, Some(Category::PrivilegeChange));
    let mut demote = records[1].clone();
    demote["permission"] = json!("read");
    demote["old_permission"] = json!("admin");
    assert_eq!(to_event(&demote, raw(0, 2)).unwrap().category, None);
}

#[test]
fn access_revocation_names_the_revoked_token() {
    let events = events(&array("rest_api.json"));
    let e = by_action(&events, "personal_access_token.access_revoked");
    assert_eq!(e.category, Some(Category::Revocation));
    assert_eq!(e.resource.as_deref(), Some("4710293"));
    // token_id is the revoked token, not one the admin used: the revocation is no use of it.
    assert_eq!(e.credential, None);
}

#[test]
fn sso_authorisation_revocation() {
    let events = events(&lines("streaming.jsonl"));
    let e = by_action(&events, "org_credential_authorization.revoke");
    assert_eq!(e.category, Some(Category::Revocation));
    assert_eq!(e.resource.as_deref(), Some("3391007"));
    assert_eq!(e.credential, None, "the owner revoked it from the web interface");
    // Done through the API, the admin's own token is the credential.
    let mut api = lines("streaming.jsonl")[3].clone();
    api["hashed_token"] = json!("E9auhvY9yQdbeb2u40ffQldL0iCnVnb0sSTIwFImRQ8=");
    let e = to_event(&api, raw(4, 4)).unwrap();
    assert_eq!(e.credential.as_deref(), Some("E9auhvY9yQdbeb2u40ffQldL0iCnVnb0sSTIwFImRQ8="));
    assert_eq!(e.resource.as_deref(), Some("3391007"));
}

#[test]
fn repository_made_public_is_an_exposure_change() {
    let records = array("rest_api.json");
    let events = events(&records);
    let e = by_action(&events, "repo.access");
    assert_eq!(e.category, Some(Category::ExposureChange));
    assert_eq!(e.resource.as_deref(), Some("acme/payments-service"));
    let mut private = records[3].clone();
    private["visibility"] = json!("private");
    private["previous_visibility"] = json!("public");
    assert_eq!(to_event(&private, raw(0, 4)).unwrap().category, None);
}

#[test]
fn rejected_api_request_is_a_failure_with_its_status() {
    let events = events(&array("rest_api.json"));
    let e = by_action(&events, "api.request");
    assert_eq!(e.outcome, Outcome::Failure);
    assert_eq!(e.error.as_deref(), Some("403"));
    assert_eq!(e.read_only, Some(false), "DELETE");
    assert_eq!(e.credential.as_deref(), Some(PAT_ID));
    assert_eq!(e.resource.as_deref(), Some("acme"), "no repo, user or team: the organisation");
}

#[test]
fn rejected_ref_update_is_a_failure() {
    let events = events(&lines("streaming.jsonl"));
    let e = by_action(&events, "protected_branch.rejected_ref_update");
    assert_eq!(e.outcome, Outcome::Failure);
    assert_eq!(e.error.as_deref(), Some("rejected_ref_update"));
    assert_eq!(e.time, 1_715_042_400);
}

#[test]
fn audit_streaming_turned_off_or_deleted_is_defence_evasion() {
    let records = lines("streaming.jsonl");
    let events = events(&records);
    let paused = by_action(&events, "audit_log_streaming.update");
    assert_eq!(paused.category, Some(Category::DefenceEvasion));
    assert_eq!(paused.resource.as_deref(), Some("acme-corp"), "enterprise events name the business");
    assert_eq!(paused.source_ip.as_deref(), Some("185.220.101.34"));
    assert_eq!(by_action(&events, "audit_log_streaming.destroy").category, Some(Category::DefenceEvasion));
    let mut enabled = records[4].clone();
    enabled["audit_log_stream_enabled"] = json!(true);
    assert_eq!(to_event(&enabled, raw(5, 5)).unwrap().category, None);
}

#[test]
fn web_export_with_created_at_text_and_nested_data() {
    let events = events(&array("export.json"));
    let e = by_action(&events, "team.add_member");
    assert_eq!(e.time, 1_715_009_462, "created_at 2024-05-06T15:31:02.118Z");
    assert_eq!(e.resource.as_deref(), Some("lee-chen"));
    assert_eq!(e.category, Some(Category::PrivilegeChange));
    assert_eq!((e.event_id.as_deref(), e.source_ip.as_deref(), e.read_only), (None, None, None));
    let grant = by_action(&events, "oauth_authorization.create");
    assert_eq!(grant.time, 1_714_999_021);
    assert_eq!(grant.category, Some(Category::PrivilegeChange));
}

#[test]
fn timestamp_forms() {
    let base = json!({"action": "repo.create", "actor": "octo-admin", "org": "acme"});
    let at = |key: &str, v: Value| {
        let mut r = base.clone();
        r[key] = v;
        to_event(&r, raw(1, 1)).map(|e| e.time)
    };
    assert_eq!(at("@timestamp", json!(1715040100218u64)), Ok(1_715_040_100));
    assert_eq!(at("@timestamp", json!(1715040100218.0)), Ok(1_715_040_100));
    assert_eq!(at("@timestamp", json!("1715040100218")), Ok(1_715_040_100), "numeric string");
    assert_eq!(at("@timestamp", json!("1624445969188.000000")), Ok(1_624_445_969), "as some shippers render it");
    assert_eq!(at("@timestamp", json!(1715040100)), Ok(1_715_040_100), "seconds, not milliseconds");
    assert_eq!(at("created_at", json!(1715040100218u64)), Ok(1_715_040_100));
    assert_eq!(at("created_at", json!("2024-05-07T00:01:40Z")), Ok(1_715_040_100));
    // @timestamp wins over created_at.
    let mut both = base.clone();
    both["@timestamp"] = json!(1715040100218u64);
    both["created_at"] = json!(1000000000000u64);
    assert_eq!(to_event(&both, raw(1, 1)).unwrap().time, 1_715_040_100);
}

fn error_of(record: Value) -> String {
    to_event(&record, raw(1, 1)).unwrap_err()
}

#[test]
fn wrong_types_are_errors_naming_the_field() {
    let base = lines("streaming.jsonl")[0].clone();
    let with = |key: &str, value: Value| {
        let mut r = base.clone();
        r[key] = value;
        error_of(r)
    };
    assert_eq!(
        with("@timestamp", json!("last tuesday")),
        "@timestamp is neither milliseconds since the epoch nor an RFC 3339 time: \"last tuesday\""
    );
    assert_eq!(with("@timestamp", json!(true)), "@timestamp is not a number (boolean)");
    assert_eq!(with("@timestamp", json!(-5)), "@timestamp is out of range: -5");
    assert_eq!(with("@timestamp", json!(1e300)), "@timestamp is out of range: 1e+300");
    assert_eq!(
        with("@timestamp", json!("NaN")),
        "@timestamp is neither milliseconds since the epoch nor an RFC 3339 time: \"NaN\""
    );
    assert_eq!(with("actor", json!({"login": "ci-builder"})), "actor is not a string (object)");
    assert_eq!(with("action", json!(7)), "action is not a string (number)");
    assert_eq!(with("hashed_token", json!(["x"])), "hashed_token is not a string (array)");
    assert_eq!(with("token_id", json!({"id": 1})), "token_id is not a number or string (object)");
    assert_eq!(with("actor_ip", json!(19202)), "actor_ip is not a string (number)");
    assert_eq!(with("repo", json!(false)), "repo is not a string (boolean)");
    assert_eq!(with("org", json!(12)), "org is not a string (number)");
    assert_eq!(with("status_code", json!([403])), "status_code is not a number (array)");
}

#[test]
fn missing_fields_and_non_objects() {
    let mut r = lines("streaming.jsonl")[0].clone();
    r.as_object_mut().unwrap().remove("action");
    assert_eq!(error_of(r), "missing action");
    let mut r = lines("streaming.jsonl")[0].clone();
    r.as_object_mut().unwrap().remove("@timestamp");
    assert_eq!(error_of(r), "missing @timestamp and created_at");
    assert_eq!(error_of(json!([{"action": "git.clone"}])), "record is not a JSON object (array)");
    assert_eq!(error_of(json!(42)), "record is not a JSON object (number)");
}

#[test]
fn invalid_ip_is_dropped_not_an_error() {
    let mut r = lines("streaming.jsonl")[0].clone();
    r["actor_ip"] = json!("not-an-ip");
    assert_eq!(to_event(&r, raw(1, 1)).unwrap().source_ip, None);
    r["actor_ip"] = json!("2001:db8::7");
    assert_eq!(to_event(&r, raw(1, 1)).unwrap().source_ip.as_deref(), Some("2001:db8::7"));
}

#[test]
fn recognises_its_own_records_only() {
    let own: Vec<Value> =
        [array("rest_api.json"), lines("streaming.jsonl"), array("export.json")].into_iter().flatten().collect();
    for r in &own {
        assert!(recognise(r.as_object().unwrap()), "{}", r["action"]);
    }
    let cloudtrail = json!({
        "eventVersion": "1.08", "eventTime": "2024-05-01T12:00:00Z", "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey", "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"},
        "sourceIPAddress": "203.0.113.7", "eventID": "11111111-1111-1111-1111-111111111111"
    });
    assert!(!recognise(cloudtrail.as_object().unwrap()));
    // Logstash-shipped CloudTrail lines carry @timestamp too.
    let mut shipped = cloudtrail.clone();
    shipped["@timestamp"] = json!("2024-05-01T12:00:01Z");
    assert!(!recognise(shipped.as_object().unwrap()));
    let okta: Value = serde_json::from_str(
        &std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/okta/system_log.json"))
            .unwrap(),
    )
    .unwrap();
    for r in okta.as_array().unwrap() {
        assert!(!recognise(r.as_object().unwrap()));
    }
    let confluence = json!({
        "author": {"type": "user", "displayName": "Dana"}, "remoteAddress": "198.51.100.1",
        "creationDate": 1714995943017u64, "summary": "Space permission added", "category": "Permissions"
    });
    assert!(!recognise(confluence.as_object().unwrap()));
    let jira = json!({"id": 1, "summary": "User added to group", "created": "2024-05-01T12:00:00.000+0000", "objectItem": {"name": "x"}, "authorKey": "admin"});
    assert!(!recognise(jira.as_object().unwrap()));
    let atlassian = json!({"id": "1", "type": "events", "attributes": {"time": "2024-05-01T12:00:00Z", "action": "api_token_created"}});
    assert!(!recognise(atlassian.as_object().unwrap()));
}

#[test]
fn never_panics_on_odd_values() {
    let odd = [
        json!(null),
        json!(true),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e300),
        json!(""),
        json!("x"),
        json!("9999999999999999999999"),
        json!([]),
        json!(["a", 1]),
        json!({}),
    ];
    let records: Vec<Value> = [array("rest_api.json"), lines("streaming.jsonl")].into_iter().flatten().collect();
    for base in &records {
        for key in base.as_object().unwrap().keys() {
            for value in &odd {
                let mut r = base.clone();
                r[key.as_str()] = value.clone();
                let _ = to_event(&r, raw(1, 1));
                let mut nested = base.clone();
                nested["data"] = json!({ key.as_str(): value.clone() });
                nested.as_object_mut().unwrap().remove(key);
                let _ = to_event(&nested, raw(1, 1));
            }
        }
    }
    for value in &odd {
        let _ = to_event(value, raw(1, 1));
    }
}
