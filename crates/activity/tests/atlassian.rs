use keywatch_activity::atlassian::{recognise, to_event};
use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/atlassian/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The records of a fixture page, from its wrapper key.
fn records(name: &str, key: &str) -> Vec<Value> {
    fixture(name)[key].as_array().unwrap().clone()
}

fn raw(record: u64) -> RawRef {
    RawRef { file: "audit.json".into(), line: 0, record }
}

fn events(name: &str, key: &str) -> Vec<Event> {
    records(name, key)
        .iter()
        .enumerate()
        .map(|(i, r)| to_event(r, raw(i as u64 + 1)).unwrap_or_else(|e| panic!("{name} record {}: {e}", i + 1)))
        .collect()
}

fn cloudtrail_record() -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"},
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "sourceIPAddress": "203.0.113.7",
        "eventID": "11111111-1111-1111-1111-111111111111"
    })
}

fn okta_record() -> Value {
    json!({
        "uuid": "dc9fd3c0-598c-11ef-8478-2b7584bf8d5a",
        "published": "2024-05-01T12:00:00.000Z",
        "eventType": "user.session.start",
        "actor": {"id": "00u1qw1mqitPHM8AJ0g7", "type": "User", "alternateId": "alice@example.com"},
        "client": {"ipAddress": "203.0.113.7", "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
        "outcome": {"result": "SUCCESS"},
        "target": []
    })
}

fn github_record() -> Value {
    json!({
        "@timestamp": 1714564800000u64,
        "action": "org.add_member",
        "actor": "octocat",
        "actor_ip": "203.0.113.7",
        "created_at": 1714564800000u64,
        "org": "example"
    })
}

fn google_record() -> Value {
    json!({
        "kind": "admin#reports#activity",
        "id": {"time": "2024-05-02T08:01:17.523Z", "uniqueQualifier": "1", "applicationName": "token", "customerId": "C0"},
        "actor": {"email": "alice@example.com"},
        "events": [{"type": "auth", "name": "authorize", "parameters": []}]
    })
}

#[test]
fn org_events_map_actor_token_and_location() {
    let events = events("org-events.json", "data");
    assert_eq!(events.len(), 5);
    let granted = &events[0];
    assert_eq!(granted.time, 1_714_641_271);
    assert_eq!(granted.platform, "atlassian");
    assert_eq!(granted.event_id.as_deref(), Some("6a1c52d3-0f0e-4c1b-9d39-5bb1d1f2c0a1"));
    assert_eq!(granted.identity.as_deref(), Some("5b10ac8d82e05b22cc7d4ef5"));
    assert_eq!(granted.credential.as_deref(), Some("c3f1d7c2-8e2a-4b61-9e1a-0f27d9a4a8b3"));
    assert_eq!(granted.source_ip.as_deref(), Some("203.0.113.24"));
    assert_eq!(granted.action, "user_granted_role");
    assert_eq!(granted.resource.as_deref(), Some("mallory@example.com"));
    assert_eq!(granted.outcome, Outcome::Success);
    assert_eq!(granted.category, Some(Category::PrivilegeChange));
    assert_eq!(granted.read_only, Some(false));
    assert_eq!(granted.raw, raw(1));
}

#[test]
fn org_events_are_classified() {
    let events = events("org-events.json", "data");
    // Added to org-admins: a privilege change on that group; made in the browser, no token.
    assert_eq!(events[1].action, "user_added_to_group");
    assert_eq!(events[1].category, Some(Category::PrivilegeChange));
    assert_eq!(events[1].resource.as_deref(), Some("org-admins"));
    assert_eq!(events[1].credential, None);
    // Two-step verification turned off.
    assert_eq!(events[2].category, Some(Category::DefenceEvasion));
    assert_eq!(events[2].source_ip.as_deref(), Some("2001:db8:85a3::8a2e:370:7334"));
    // The revoked token is named as the first event's credential, so its later use is flagged.
    assert_eq!(events[3].category, Some(Category::Revocation));
    assert_eq!(events[3].resource, events[0].credential);
    // Impersonation: no category; no location in the record.
    assert_eq!(events[4].category, None);
    assert_eq!(events[4].source_ip, None);
    assert_eq!(events[4].read_only, None);
    assert_eq!(events[4].resource.as_deref(), Some("example.user@example.io"));
}

#[test]
fn org_event_added_to_an_ordinary_group_is_not_a_privilege_change() {
    let mut record = records("org-events.json", "data")[1].clone();
    record["attributes"]["context"][1]["attributes"]["name"] = json!("marketing");
    record["message"]["content"] = json!("Added Mallory to marketing");
    let event = to_event(&record, raw(1)).unwrap();
    assert_eq!(event.category, None);
    assert_eq!(event.resource.as_deref(), Some("marketing"));
}

#[test]
fn org_event_failures_and_exports() {
    let mut record = records("org-events.json", "data")[4].clone();
    record["attributes"]["action"] = json!("app_failed_installation");
    let event = to_event(&record, raw(1)).unwrap();
    assert_eq!(event.outcome, Outcome::Failure);
    assert_eq!(event.error.as_deref(), Some("app_failed_installation"));
    assert_eq!(event.category, None);

    record["attributes"]["action"] = json!("audit_log_exported");
    let event = to_event(&record, raw(1)).unwrap();
    assert_eq!(event.outcome, Outcome::Success);
    assert_eq!(event.read_only, Some(true));
    assert_eq!(event.category, None);

    record["attributes"]["action"] = json!("api_token_created");
    assert_eq!(to_event(&record, raw(1)).unwrap().category, Some(Category::PrivilegeChange));
}

#[test]
fn confluence_records_map_and_classify() {
    let events = events("confluence-audit.json", "results");
    assert_eq!(events.len(), 5);
    let added = &events[0];
    assert_eq!(added.time, 1_714_641_391);
    assert_eq!(added.platform, "atlassian");
    assert_eq!(added.event_id, None);
    assert_eq!(added.identity.as_deref(), Some("5b10ac8d82e05b22cc7d4ef5"));
    assert_eq!(added.credential, None);
    assert_eq!(added.source_ip.as_deref(), Some("203.0.113.24"));
    assert_eq!(added.action, "confluence:Users and groups:User added to group");
    assert_eq!(added.resource.as_deref(), Some("mallory"));
    assert_eq!(added.category, Some(Category::PrivilegeChange));

    // Anonymous access to a space: exposure, not just a new permission.
    assert_eq!(events[1].action, "confluence:Permissions:Space permission added");
    assert_eq!(events[1].category, Some(Category::ExposureChange));
    assert_eq!(events[1].resource.as_deref(), Some("Engineering"));
    // A permission for a group inside the organisation.
    assert_eq!(events[2].category, Some(Category::PrivilegeChange));
    // An export reads.
    assert_eq!(events[3].action, "confluence:Spaces:Space exported");
    assert_eq!(events[3].read_only, Some(true));
    assert_eq!(events[3].category, None);
    // A removal, and an address that is not an IP.
    assert_eq!(events[4].category, None);
    assert_eq!(events[4].source_ip, None);
}

#[test]
fn jira_records_map_and_classify() {
    let events = events("jira-audit.json", "records");
    assert_eq!(events.len(), 5);
    let admin = &events[0];
    assert_eq!(admin.time, 1_714_642_212);
    assert_eq!(admin.event_id.as_deref(), Some("174021"));
    assert_eq!(admin.identity.as_deref(), Some("712020:0e4a5f6b-1c2d-4e3f-9a8b-7c6d5e4f3a2b"));
    assert_eq!(admin.source_ip.as_deref(), Some("198.51.100.77"));
    assert_eq!(admin.action, "jira:group management:User added to group");
    assert_eq!(admin.resource.as_deref(), Some("site-admins"));
    assert_eq!(admin.category, Some(Category::PrivilegeChange));

    // Every new user joins jira-software-users: not a privilege change.
    assert_eq!(events[1].category, None);
    assert_eq!(events[1].resource.as_deref(), Some("jira-software-users"));
    assert_eq!(events[2].action, "jira:projects:Project roles changed");
    assert_eq!(events[2].category, Some(Category::PrivilegeChange));
    // Browse permission for anyone on the web; the offset is honoured.
    assert_eq!(events[3].time, 1_714_657_470);
    assert_eq!(events[3].category, Some(Category::ExposureChange));
    // A new user, by user key.
    assert_eq!(events[4].identity.as_deref(), Some("admin"));
    assert_eq!(events[4].category, Some(Category::PrivilegeChange));
}

#[test]
fn recognises_its_own_records_and_no_others() {
    for (name, key) in
        [("org-events.json", "data"), ("confluence-audit.json", "results"), ("jira-audit.json", "records")]
    {
        for record in records(name, key) {
            assert!(recognise(record.as_object().unwrap()), "{name}: {record}");
        }
    }
    for other in [cloudtrail_record(), okta_record(), github_record(), google_record()] {
        assert!(!recognise(other.as_object().unwrap()), "{other}");
    }
    // The page wrappers themselves are not records.
    for name in ["org-events.json", "confluence-audit.json", "jira-audit.json"] {
        assert!(!recognise(fixture(name).as_object().unwrap()), "{name}");
    }
}

#[test]
fn wrong_types_are_errors_naming_the_field() {
    let org = records("org-events.json", "data")[0].clone();
    let confluence = records("confluence-audit.json", "results")[0].clone();
    let jira = records("jira-audit.json", "records")[0].clone();
    let cases: Vec<(Value, &str)> = vec![
        (json!("not a record"), "record is not a JSON object (string)"),
        (json!([1, 2]), "record is not a JSON object (array)"),
        (json!({"summary": "x"}), "not an Atlassian audit record"),
        (with(&org, &["attributes"], json!("oops")), "attributes is not an object (string)"),
        (with(&org, &["attributes", "time"], Value::Null), "missing attributes.time"),
        (with(&org, &["attributes", "time"], json!("yesterday")), "attributes.time is not an RFC 3339 time"),
        (with(&org, &["attributes", "action"], json!(7)), "attributes.action is not a string (number)"),
        (with(&org, &["attributes", "actor"], json!("dana")), "attributes.actor is not an object (string)"),
        (
            with(&org, &["attributes", "actor", "auth", "tokenId"], json!(["t"])),
            "attributes.actor.auth.tokenId is not a string (array)",
        ),
        (with(&org, &["attributes", "context"], json!({})), "attributes.context is not an array (object)"),
        (with(&org, &["attributes", "context"], json!(["users"])), "attributes.context[0] is not an object (string)"),
        (with(&org, &["attributes", "location"], json!("NL")), "attributes.location is not an object (string)"),
        (with(&confluence, &["creationDate"], json!("1714641391402")), "creationDate is not a number (string)"),
        (with(&confluence, &["creationDate"], json!(1.5e300)), "creationDate is not a whole number of milliseconds"),
        (with(&confluence, &["summary"], Value::Null), "missing summary"),
        (with(&confluence, &["author"], json!(42)), "author is not an object (number)"),
        (with(&confluence, &["changedValues"], json!("none")), "changedValues is not an array (string)"),
        (with(&jira, &["created"], json!(1714642212)), "created is not a string (number)"),
        (with(&jira, &["created"], json!("2024-05-02")), "created is not an RFC 3339 time"),
        (with(&jira, &["id"], json!({"n": 1})), "id is not a string or number (object)"),
        (with(&jira, &["objectItem"], json!("site-admins")), "objectItem is not an object (string)"),
    ];
    for (record, expected) in cases {
        let err = to_event(&record, raw(1)).expect_err(expected);
        assert!(err.contains(expected), "{err:?} does not contain {expected:?}");
    }
}

/// `value` with the field at `path` replaced (created if missing).
fn with(value: &Value, path: &[&str], new: Value) -> Value {
    let mut out = value.clone();
    let mut cur = &mut out;
    for key in &path[..path.len() - 1] {
        cur = &mut cur[*key];
    }
    cur[path[path.len() - 1]] = new;
    out
}

/// Every field of every fixture record, at any depth, replaced by values of every JSON type:
/// the reader returns an event or an error, and never panics.
#[test]
fn never_panics_on_any_value() {
    let odd =
        [Value::Null, json!(true), json!(-1), json!(1e300), json!(""), json!("x"), json!([]), json!([{}]), json!({})];
    let mut all = Vec::new();
    for (name, key) in
        [("org-events.json", "data"), ("confluence-audit.json", "results"), ("jira-audit.json", "records")]
    {
        all.extend(records(name, key));
    }
    let mut checked = 0;
    for record in &all {
        for path in paths(record) {
            for value in &odd {
                let mutated = replace(record, &path, value.clone());
                let _ = to_event(&mutated, raw(1));
                let _ = mutated.as_object().map(recognise);
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "{checked}");
    for value in odd {
        let _ = to_event(&value, raw(1));
    }
}

/// Paths to every value inside `v`, as object keys and array indexes.
fn paths(v: &Value) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn walk(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Step::Key(k.clone()));
                out.push(prefix.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                out.push(prefix.clone());
                walk(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn replace(v: &Value, path: &[Step], new: Value) -> Value {
    let mut out = v.clone();
    let mut cur = &mut out;
    for step in path {
        cur = match step {
            Step::Key(k) => &mut cur[k.as_str()],
            Step::Index(i) => &mut cur[*i],
        };
    }
    *cur = new;
    out
}
