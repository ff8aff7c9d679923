use keywatch_activity::google::{recognise, to_event};
use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde_json::{json, Value};

fn fixture_text(name: &str) -> String {
    let path = format!("{}/tests/fixtures/google/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// The token audit page's `items`.
fn token_records() -> Vec<Value> {
    let page: Value = serde_json::from_str(&fixture_text("token-activities.json")).unwrap();
    page["items"].as_array().unwrap().clone()
}

/// The JSON-lines file of login and admin activities.
fn other_records() -> Vec<Value> {
    fixture_text("other-applications.jsonl").lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn raw(record: u64) -> RawRef {
    RawRef { file: "activities.json".into(), line: 0, record }
}

fn convert(records: &[Value]) -> Vec<Event> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| to_event(r, raw(i as u64 + 1)).unwrap_or_else(|e| panic!("record {}: {e}", i + 1)))
        .collect()
}

const CLIENT: &str = "923474483785-sqf6uk8vq1rqe853il0g2h4m98ji2fq6.apps.googleusercontent.com";

#[test]
fn token_authorize_is_a_new_grant_for_the_client() {
    let events = convert(&token_records());
    let grant = &events[0];
    assert_eq!(grant.time, 1_714_636_877);
    assert_eq!(grant.platform, "google");
    assert_eq!(grant.event_id.as_deref(), Some("-6709442587437772138"));
    assert_eq!(grant.identity.as_deref(), Some("alice@example.com"));
    assert_eq!(grant.credential.as_deref(), Some(CLIENT));
    assert_eq!(grant.session, None);
    assert_eq!(grant.source_ip.as_deref(), Some("203.0.113.50"));
    assert_eq!(grant.action, "token:authorize");
    assert_eq!(grant.resource.as_deref(), Some("Mail Merge Pro"));
    assert_eq!(grant.outcome, Outcome::Success);
    assert_eq!(grant.error, None);
    assert_eq!(grant.read_only, Some(false));
    assert_eq!(grant.category, Some(Category::PrivilegeChange));
    assert_eq!(grant.raw, raw(1));
}

#[test]
fn token_activity_reads_through_the_grant_and_one_record_makes_one_event() {
    let records = token_records();
    assert_eq!(records[1]["events"].as_array().unwrap().len(), 2);
    let events = convert(&records);
    assert_eq!(events.len(), 3);
    let activity = &events[1];
    assert_eq!(activity.action, "token:activity");
    assert_eq!(activity.credential.as_deref(), Some(CLIENT));
    assert_eq!(activity.resource.as_deref(), Some("gmail.users.messages.list"));
    assert_eq!(activity.read_only, Some(true));
    assert_eq!(activity.category, None);
    assert_eq!(activity.source_ip.as_deref(), Some("192.0.2.200"));
}

#[test]
fn token_revoke_names_the_client_it_revokes() {
    let events = convert(&token_records());
    let revoke = &events[2];
    assert_eq!(revoke.action, "token:revoke");
    assert_eq!(revoke.category, Some(Category::Revocation));
    assert_eq!(revoke.resource.as_deref(), Some(CLIENT));
    assert_eq!(revoke.resource, events[1].credential);
}

#[test]
fn other_applications() {
    let events = convert(&other_records());
    let failure = &events[0];
    assert_eq!(failure.action, "login:login_failure");
    assert_eq!(failure.outcome, Outcome::Failure);
    assert_eq!(failure.error.as_deref(), Some("login_failure_invalid_password"));
    assert_eq!(failure.credential, None);
    assert_eq!(failure.category, None);

    let role = &events[1];
    assert_eq!(role.action, "admin:ASSIGN_ROLE");
    assert_eq!(role.identity.as_deref(), Some("bob.admin@example.com"));
    assert_eq!(role.resource.as_deref(), Some("alice@example.com"));
    assert_eq!(role.category, Some(Category::PrivilegeChange));
    assert_eq!(role.read_only, Some(false));

    // Domain-wide delegation granted through the API by an OAuth client acting for an admin.
    let delegation = &events[2];
    assert_eq!(delegation.action, "admin:AUTHORIZE_API_CLIENT_ACCESS");
    assert_eq!(delegation.credential.as_deref(), Some("107712345678901234567"));
    assert_eq!(delegation.resource.as_deref(), Some("107799999999999999999"));
    assert_eq!(delegation.category, Some(Category::PrivilegeChange));

    let two_step = &events[3];
    assert_eq!(two_step.action, "login:2sv_disable");
    assert_eq!(two_step.category, Some(Category::DefenceEvasion));
}

#[test]
fn parameter_value_kinds() {
    let mut record = token_records()[0].clone();
    // intValue written as a string (int64 in JSON) or as a number; boolValue; an API key caller.
    record["id"]["applicationName"] = json!("admin");
    record["events"][0]["name"] = json!("ENFORCE_STRONG_AUTHENTICATION");
    record["events"][0]["parameters"] = json!([
        {"name": "ORG_UNIT_NAME", "value": "/"},
        {"name": "NEW_VALUE", "value": "false"},
        {"name": "OLD_VALUE", "value": "true"},
        {"name": "SETTING_NAME", "intValue": 17}
    ]);
    record["actor"] = json!({"callerType": "KEY", "key": "SYSTEM"});
    let event = to_event(&record, raw(1)).unwrap();
    assert_eq!(event.category, Some(Category::DefenceEvasion));
    assert_eq!(event.resource.as_deref(), Some("17"));
    assert_eq!(event.identity, None);
    assert_eq!(event.credential.as_deref(), Some("SYSTEM"));

    // Events shipped one at a time, as an object.
    let mut single = token_records()[2].clone();
    single["events"] = single["events"][0].clone();
    let event = to_event(&single, raw(1)).unwrap();
    assert_eq!(event.category, Some(Category::Revocation));

    // A profile id instead of an email; an address that is not an IP.
    let mut record = token_records()[1].clone();
    record["actor"] = json!({"callerType": "USER", "profileId": 114511147312345678901u128.to_string()});
    record["ipAddress"] = json!("unknown");
    let event = to_event(&record, raw(1)).unwrap();
    assert_eq!(event.identity.as_deref(), Some("114511147312345678901"));
    assert_eq!(event.source_ip, None);
}

#[test]
fn recognises_its_own_records_and_no_others() {
    for record in token_records().iter().chain(other_records().iter()) {
        assert!(recognise(record.as_object().unwrap()), "{record}");
    }
    let page: Value = serde_json::from_str(&fixture_text("token-activities.json")).unwrap();
    assert!(!recognise(page.as_object().unwrap()));
    let cloudtrail = json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "eventID": "11111111-1111-1111-1111-111111111111"
    });
    let okta = json!({
        "uuid": "dc9fd3c0-598c-11ef-8478-2b7584bf8d5a",
        "published": "2024-05-01T12:00:00.000Z",
        "eventType": "user.session.start",
        "actor": {"id": "00u1qw1mqitPHM8AJ0g7", "type": "User", "alternateId": "alice@example.com"},
        "outcome": {"result": "SUCCESS"}
    });
    let github = json!({"@timestamp": 1714564800000u64, "action": "oauth_access.create", "actor": "octocat", "created_at": 1714564800000u64});
    let atlassian = json!({
        "id": "6a1c52d3", "type": "events",
        "attributes": {"time": "2024-05-02T09:14:31.402Z", "action": "user_granted_role", "actor": {"id": "5b10"}}
    });
    for other in [cloudtrail, okta, github, atlassian] {
        assert!(!recognise(other.as_object().unwrap()), "{other}");
    }
}

#[test]
fn wrong_types_are_errors_naming_the_field() {
    let base = token_records()[0].clone();
    let set = |f: &dyn Fn(&mut Value)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!(["not", "a", "record"]), "record is not a JSON object (array)"),
        (set(&|r| r["id"] = json!("x")), "id is not an object (string)"),
        (set(&|r| r["id"]["time"] = json!("last tuesday")), "id.time is not an RFC 3339 time"),
        (set(&|r| r["id"]["time"] = json!(1714636877)), "id.time is not a string (number)"),
        (set(&|r| r["id"].as_object_mut().unwrap().clear()), "missing id.time"),
        (set(&|r| r["id"]["applicationName"] = Value::Null), "missing id.applicationName"),
        (set(&|r| r["events"] = json!("authorize")), "events is not an array (string)"),
        (set(&|r| r["events"] = json!([])), "events is empty"),
        (set(&|r| r["events"] = json!([7])), "events[0] is not an object (number)"),
        (set(&|r| r["events"][0]["name"] = json!(false)), "events[0].name is not a string (boolean)"),
        (
            set(&|r| r["events"][0]["parameters"] = json!({"client_id": "x"})),
            "events[0].parameters is not an array (object)",
        ),
        (
            set(&|r| r["events"][0]["parameters"][0] = json!("client_id")),
            "events[0].parameters[0] is not an object (string)",
        ),
        (
            set(&|r| r["events"][0]["parameters"][0]["value"] = json!({})),
            "events[0].parameters[0].value is not a string (object)",
        ),
        (set(&|r| r["actor"] = json!("alice")), "actor is not an object (string)"),
        (set(&|r| r["actor"]["email"] = json!(1)), "actor.email is not a string (number)"),
        (set(&|r| r["ipAddress"] = json!([1])), "ipAddress is not a string (array)"),
    ];
    for (record, expected) in cases {
        let err = to_event(&record, raw(1)).expect_err(expected);
        assert!(err.contains(expected), "{err:?} does not contain {expected:?}");
    }
}

/// Every field of every fixture record replaced by values of every JSON type: an event or an
/// error, never a panic.
#[test]
fn never_panics_on_any_value() {
    let odd =
        [Value::Null, json!(true), json!(-1), json!(1e300), json!(""), json!("x"), json!([]), json!([{}]), json!({})];
    let mut checked = 0;
    for record in token_records().iter().chain(other_records().iter()) {
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

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(v: &Value) -> Vec<Vec<Step>> {
    fn walk(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        let children: Vec<(Step, &Value)> = match v {
            Value::Object(m) => m.iter().map(|(k, c)| (Step::Key(k.clone()), c)).collect(),
            Value::Array(a) => a.iter().enumerate().map(|(i, c)| (Step::Index(i), c)).collect(),
            _ => Vec::new(),
        };
        for (step, child) in children {
            prefix.push(step);
            out.push(prefix.clone());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
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
