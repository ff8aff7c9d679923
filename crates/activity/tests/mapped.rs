use std::path::PathBuf;

use keywatch_activity::mapped::Mapping;
use keywatch_model::event::{Category, Outcome, RawRef};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mapped").join(name)
}

fn vault() -> Mapping {
    Mapping::load(&fixture("vault.toml")).unwrap()
}

fn vault_lines() -> Vec<Value> {
    std::fs::read_to_string(fixture("vault-audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn raw(line: u64) -> RawRef {
    RawRef { file: "vault-audit.log".into(), line, record: line }
}

const PAYMENTS_ACCESSOR: &str = "hmac-sha256:8fa4f7f3d1fd812064950025cde2b1565829a9dc5075253399e5ede8f8a1d98e";

#[test]
fn vault_audit_log() {
    let mapping = vault();
    assert_eq!(mapping.platform(), "vault");
    let lines = vault_lines();
    for line in &lines {
        assert!(mapping.recognise(line.as_object().unwrap()), "{line}");
    }
    // The request entry is recognised but passed over: its response follows.
    assert!(mapping.skips(&lines[0]));
    assert!(lines[1..].iter().all(|l| !mapping.skips(l)));

    let events: Vec<_> =
        lines[1..].iter().enumerate().map(|(i, l)| mapping.to_event(l, raw(i as u64 + 2)).unwrap()).collect();

    let read = &events[0];
    assert_eq!(read.time, 1_714_647_603);
    assert_eq!(read.platform, "vault");
    assert_eq!(read.event_id.as_deref(), Some("0042ad1b-1400-7eb7-5e25-1dfc898c1998"));
    assert_eq!(read.identity.as_deref(), Some("approle-payments-api"));
    assert_eq!(read.credential.as_deref(), Some(PAYMENTS_ACCESSOR));
    assert_eq!(read.session, None);
    assert_eq!(read.source_ip.as_deref(), Some("10.6.8.36"));
    assert_eq!(read.user_agent.as_deref(), Some("Go-http-client/1.1"));
    assert_eq!(read.action, "read:secret/data/apps/payments/stripe");
    assert_eq!(read.resource.as_deref(), Some("secret/data/apps/payments/stripe"));
    assert_eq!(read.outcome, Outcome::Success);
    assert_eq!(read.error, None);
    assert_eq!(read.read_only, Some(true));
    assert_eq!(read.category, Some(Category::SecretRead));
    assert_eq!(read.raw, raw(2));

    let policy = &events[1];
    assert_eq!(policy.action, "update:sys/policy/ci-admin");
    assert_eq!(policy.identity.as_deref(), Some("oidc-dana@example.com"));
    assert_eq!(policy.category, Some(Category::PrivilegeChange));
    assert_eq!(policy.read_only, Some(false));
    assert_eq!(policy.user_agent, None);

    let denied = &events[2];
    assert_eq!(denied.outcome, Outcome::Failure);
    assert_eq!(denied.error.as_deref(), Some("1 error occurred:\n\t* permission denied"));
    assert_eq!(denied.category, Some(Category::SecretRead));

    // revoke-accessor names the payments token by the same hashed accessor its calls carry.
    let revoke = &events[3];
    assert_eq!(revoke.action, "update:auth/token/revoke-accessor");
    assert_eq!(revoke.category, Some(Category::Revocation));
    assert_eq!(revoke.resource.as_deref(), Some(PAYMENTS_ACCESSOR));

    let audit_off = &events[4];
    assert_eq!(audit_off.time, 1_714_648_350);
    assert_eq!(audit_off.action, "delete:sys/audit/file");
    assert_eq!(audit_off.category, Some(Category::DefenceEvasion));
    assert_eq!(audit_off.read_only, Some(false));
}

#[test]
fn vault_mapping_recognises_no_other_platform() {
    let mapping = vault();
    let others = [
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
            "eventTime": "2024-05-01T12:00:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateAccessKey",
            "eventID": "11111111-1111-1111-1111-111111111111"
        }),
        json!({
            "uuid": "dc9fd3c0-598c-11ef-8478-2b7584bf8d5a",
            "published": "2024-05-01T12:00:00.000Z",
            "eventType": "user.session.start",
            "actor": {"id": "00u1qw1mqitPHM8AJ0g7", "type": "User", "alternateId": "alice@example.com"},
            "outcome": {"result": "SUCCESS"}
        }),
        json!({"@timestamp": 1714564800000u64, "action": "org.add_member", "actor": "octocat"}),
        // `request` present but no operation: not enough.
        json!({"time": "2024-05-02T11:00:03Z", "type": "response", "request": {"path": "x"}}),
    ];
    for other in others {
        assert!(!mapping.recognise(other.as_object().unwrap()), "{other}");
    }
}

/// Kubernetes audit events: a quoted key holding dots, an array index, outcome values.
const KUBERNETES: &str = r#"
platform = "kubernetes"
recognise = ["auditID", "verb", "stage"]

[[skip]]
path = "stage"
values = ["RequestReceived", "ResponseStarted"]

[fields]
time = "stageTimestamp"
event_id = "auditID"
identity = "user.username"
source_ip = "sourceIPs.0"
user_agent = "userAgent"
action = ["verb", "objectRef.resource"]
resource = ["objectRef", "name"]
error = "responseStatus.reason"
outcome = 'annotations."authorization.k8s.io/decision"'
success_values = ["allow"]

[categories]
secret_read = ["get:secrets", "list:secrets", "watch:secrets"]
privilege_change = ["create:*rolebindings", "update:*rolebindings", "patch:*rolebindings"]
read_only = ["get:*", "list:*", "watch:*"]
"#;

fn kubernetes_event(decision: &str) -> Value {
    json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "6c1f9d1e-3b0a-4c4e-9c5a-2f6b7d8e9f01",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/payments/secrets/stripe",
        "verb": "get",
        "user": {"username": "system:serviceaccount:ci:deployer", "uid": "1b2c", "groups": ["system:serviceaccounts"]},
        "sourceIPs": ["10.20.30.40", "10.0.0.1"],
        "userAgent": "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625",
        "objectRef": {"resource": "secrets", "namespace": "payments", "name": "stripe", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2024-05-02T11:00:03.101010Z",
        "stageTimestamp": "2024-05-02T11:00:03.117771Z",
        "annotations": {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": ""}
    })
}

#[test]
fn kubernetes_mapping_with_quoted_keys_indexes_and_outcome_values() {
    let mapping = Mapping::parse(KUBERNETES, "kubernetes.toml").unwrap();
    let allowed = kubernetes_event("allow");
    assert!(mapping.recognise(allowed.as_object().unwrap()));
    assert!(!mapping.skips(&allowed));
    let event = mapping.to_event(&allowed, raw(1)).unwrap();
    assert_eq!(event.time, 1_714_647_603);
    assert_eq!(event.platform, "kubernetes");
    assert_eq!(event.identity.as_deref(), Some("system:serviceaccount:ci:deployer"));
    assert_eq!(event.source_ip.as_deref(), Some("10.20.30.40"));
    assert_eq!(event.action, "get:secrets");
    assert_eq!(event.resource.as_deref(), Some("stripe"));
    assert_eq!(event.outcome, Outcome::Success);
    assert_eq!(event.category, Some(Category::SecretRead));
    assert_eq!(event.read_only, Some(true));

    let mut denied = kubernetes_event("forbid");
    denied["responseStatus"] = json!({"code": 403, "reason": "Forbidden", "status": "Failure"});
    let event = mapping.to_event(&denied, raw(1)).unwrap();
    assert_eq!(event.outcome, Outcome::Failure);
    assert_eq!(event.error.as_deref(), Some("Forbidden"));

    // No decision annotation at all: nothing says it failed.
    let mut silent = kubernetes_event("allow");
    silent["annotations"] = json!({});
    assert_eq!(mapping.to_event(&silent, raw(1)).unwrap().outcome, Outcome::Success);

    let mut started = kubernetes_event("allow");
    started["stage"] = json!("RequestReceived");
    assert!(mapping.skips(&started));
}

fn mapping_with(fields: &str, categories: &str) -> Mapping {
    let text = format!("platform = \"test\"\nrecognise = [\"id\"]\n[fields]\n{fields}\n{categories}");
    Mapping::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn time_formats() {
    let cases = [
        ("unix", json!(1_714_647_603)),
        ("unix", json!(1_714_647_603.987)),
        ("unix", json!("1714647603")),
        ("unix_ms", json!(1_714_647_603_456u64)),
        ("unix_ms", json!("1714647603456")),
        ("unix_ns", json!(1_714_647_603_456_789_012u64)),
        ("unix_ns", json!(1.714_647_603_456_789e18)),
        ("rfc3339", json!("2024-05-02T13:00:03.5+02:00")),
    ];
    for (format, value) in cases {
        let mapping = mapping_with(&format!("time = \"ts\"\ntime_format = \"{format}\"\naction = \"op\""), "");
        let event = mapping.to_event(&json!({"id": 1, "ts": value, "op": "x"}), raw(1)).unwrap();
        assert_eq!(event.time, 1_714_647_603, "{format} {value}");
    }
    // Before the epoch, in milliseconds: rounded down.
    let mapping = mapping_with("time = \"ts\"\ntime_format = \"unix_ms\"\naction = \"op\"", "");
    assert_eq!(mapping.to_event(&json!({"ts": -1500, "op": "x"}), raw(1)).unwrap().time, -2);
}

#[test]
fn values_of_other_types_become_text() {
    let mapping = mapping_with(
        "time = \"ts\"\ntime_format = \"unix\"\naction = [\"op\", [\"path.with.dots\"]]\nevent_id = \"id\"\n\
         identity = \"who\"\nsource_ip = \"ip\"\ncredential = \"key.0\"",
        "",
    );
    let record = json!({
        "id": 981_234,
        "ts": 1_714_647_603,
        "op": "write",
        "path.with.dots": true,
        "who": ["first", "second"],
        "ip": "[2001:db8::7]:8200",
        "key": ["AKIAIOSFODNN7EXAMPLE"]
    });
    let event = mapping.to_event(&record, raw(1)).unwrap();
    assert_eq!(event.event_id.as_deref(), Some("981234"));
    assert_eq!(event.action, "write:true");
    assert_eq!(event.identity.as_deref(), Some("first"));
    assert_eq!(event.source_ip.as_deref(), Some("2001:db8::7"));
    assert_eq!(event.credential.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
    assert_eq!(event.read_only, None);
    assert_eq!(event.category, None);

    // A host name is not an IP; an empty string is missing.
    let event = mapping.to_event(&json!({"ts": 0, "op": "w", "ip": "vault.internal:8200", "who": ""}), raw(1)).unwrap();
    assert_eq!(event.source_ip, None);
    assert_eq!(event.identity, None);
    assert_eq!(event.action, "w:");
}

#[test]
fn outcome_rules() {
    let base = "time = \"ts\"\ntime_format = \"unix\"\naction = \"op\"\nerror = \"err\"";
    let record = |extra: Value| {
        let mut r = json!({"ts": 0, "op": "x"});
        r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        r
    };
    // Without `outcome`: an error means failure.
    let m = mapping_with(base, "");
    assert_eq!(m.to_event(&record(json!({})), raw(1)).unwrap().outcome, Outcome::Success);
    assert_eq!(m.to_event(&record(json!({"err": "denied"})), raw(1)).unwrap().outcome, Outcome::Failure);
    assert_eq!(m.to_event(&record(json!({"err": ""})), raw(1)).unwrap().outcome, Outcome::Success);

    // `outcome` alone: present means failure.
    let m = mapping_with(&format!("{base}\noutcome = \"failed\""), "");
    for (value, expected) in [
        (json!(true), Outcome::Failure),
        (json!("boom"), Outcome::Failure),
        (json!(false), Outcome::Success),
        (json!(""), Outcome::Success),
        (Value::Null, Outcome::Success),
    ] {
        assert_eq!(m.to_event(&record(json!({"failed": value})), raw(1)).unwrap().outcome, expected, "{value}");
    }
    assert_eq!(m.to_event(&record(json!({"err": "ignored"})), raw(1)).unwrap().outcome, Outcome::Success);

    // Failure values only, as globs on numbers: anything else succeeds.
    let m = mapping_with(&format!("{base}\noutcome = \"status\"\nfailure_values = [\"4*\", \"5*\"]"), "");
    for (status, expected) in
        [(200, Outcome::Success), (302, Outcome::Success), (403, Outcome::Failure), (503, Outcome::Failure)]
    {
        assert_eq!(m.to_event(&record(json!({"status": status})), raw(1)).unwrap().outcome, expected, "{status}");
    }

    // Success values: anything else present fails; matched case-insensitively.
    let m = mapping_with(&format!("{base}\noutcome = \"result\"\nsuccess_values = [\"success\", \"allow*\"]"), "");
    for (value, expected) in [("SUCCESS", Outcome::Success), ("allowed", Outcome::Success), ("DENY", Outcome::Failure)]
    {
        assert_eq!(m.to_event(&record(json!({"result": value})), raw(1)).unwrap().outcome, expected, "{value}");
    }
    let err = m.to_event(&record(json!({"result": {"ok": true}})), raw(1)).unwrap_err();
    assert!(err.contains("outcome (result)"), "{err}");
}

#[test]
fn categories_and_their_order() {
    let m = mapping_with(
        "time = \"ts\"\ntime_format = \"unix\"\naction = \"op\"\nresource = \"target\"\nrevoked_credential = \"key\"",
        "[categories]\nprivilege_change = [\"iam:*\"]\nrevocation = [\"iam:DeleteKey\"]\nsecret_read = [\"secrets:Get?\"]\n\
         read_only = [\"*:get*\", \"*:list*\"]",
    );
    let event = |op: &str| m.to_event(&json!({"ts": 0, "op": op, "target": "t", "key": "k-1"}), raw(1)).unwrap();
    // Revocation comes before privilege change; its resource is the revoked credential.
    let revoke = event("iam:DeleteKey");
    assert_eq!(revoke.category, Some(Category::Revocation));
    assert_eq!(revoke.resource.as_deref(), Some("k-1"));
    assert_eq!(event("IAM:AttachPolicy").category, Some(Category::PrivilegeChange));
    assert_eq!(event("iam:AttachPolicy").resource.as_deref(), Some("t"));
    assert_eq!(event("secrets:GetX").category, Some(Category::SecretRead));
    assert_eq!(event("secrets:GetXY").category, None);
    assert_eq!(event("secrets:GetX").read_only, Some(true));
    assert_eq!(event("iam:AttachPolicy").read_only, Some(false));
}

#[test]
fn record_errors_name_the_field() {
    let m = vault();
    let base = vault_lines()[1].clone();
    let set = |f: &dyn Fn(&mut Value)| {
        let mut r = base.clone();
        f(&mut r);
        r
    };
    let cases: Vec<(Value, &str)> = vec![
        (json!("a string"), "record is not a JSON object (string)"),
        (set(&|r| r.as_object_mut().unwrap().remove("time").map(drop).unwrap_or(())), "missing time (time)"),
        (set(&|r| r["time"] = json!(1714647603)), "time (time) is not a string (number); time_format is rfc3339"),
        (set(&|r| r["time"] = json!("noon")), "time (time) is not an RFC 3339 time: \"noon\""),
        (set(&|r| r["auth"]["display_name"] = json!({"a": 1})), "identity (auth.display_name) is not text (object)"),
        (set(&|r| r["auth"]["accessor"] = json!([{"a": 1}])), "credential (auth.accessor) is not text (object)"),
        (set(&|r| r["request"]["operation"] = json!({})), "action (request.operation) is not text (object)"),
        (
            set(&|r| {
                r["request"]["operation"] = Value::Null;
                r["request"]["path"] = json!("");
            }),
            "missing action (request.operation, request.path)",
        ),
    ];
    for (record, expected) in cases {
        let err = m.to_event(&record, raw(1)).expect_err(expected);
        assert!(err.contains(expected), "{err:?} does not contain {expected:?}");
    }
    let unix = mapping_with("time = \"ts\"\ntime_format = \"unix_ms\"\naction = \"op\"", "");
    for (ts, expected) in [
        (json!("soon"), "time (ts) is not a number of milliseconds"),
        (json!([1]), "time (ts) is not a number (array)"),
        (json!(1e300), "time (ts) is out of range"),
        (json!(u64::MAX), "time (ts) is out of range"),
    ] {
        let err = unix.to_event(&json!({"ts": ts, "op": "x"}), raw(1)).unwrap_err();
        assert!(err.contains(expected), "{err:?} does not contain {expected:?}");
    }
}

#[test]
fn mapping_file_errors_name_the_file_and_the_problem() {
    let good_fields = "time = \"t\"\naction = \"a\"";
    let cases = [
        (
            format!("platform = \"x\"\nrecognise = [\"a\"]\ncolour = \"red\"\n[fields]\n{good_fields}"),
            "unknown field `colour`",
        ),
        (
            format!("platform = \"x\"\nrecognise = [\"a\"]\n[fields]\n{good_fields}\nidentiy = \"u\""),
            "unknown field `identiy`",
        ),
        ("platform = \"x\"\nrecognise = [\"a\"]\n[fields]\naction = \"a\"".to_string(), "missing field `time`"),
        ("platform = \"x\"\nrecognise = [\"a\"]\n[fields]\ntime = \"t\"".to_string(), "missing field `action`"),
        (format!("recognise = [\"a\"]\n[fields]\n{good_fields}"), "missing field `platform`"),
        (
            format!("platform = \"x\"\nrecognise = [\"a\"]\n[fields]\n{good_fields}\ntime_format = \"epoch\""),
            "unknown variant `epoch`",
        ),
        (
            format!("platform = \"x\"\nrecognise = [\"a\"]\n[fields]\n{good_fields}\n[categories]\nsecrets = []"),
            "unknown field `secrets`",
        ),
        (
            format!("platform = \"x\"\nrecognise = []\n[fields]\n{good_fields}"),
            "recognise: must name at least one path",
        ),
        (format!("platform = \" \"\nrecognise = [\"a\"]\n[fields]\n{good_fields}"), "platform: is empty"),
        (
            format!("platform = \"x\"\nrecognise = [\"a\"]\n[fields]\n{good_fields}\nidentity = 'user.\"name'"),
            "fields.identity: path \"user.\\\"name\": unterminated quoted key",
        ),
        (
            format!("platform = \"x\"\nrecognise = [\"a..b\"]\n[fields]\n{good_fields}"),
            "recognise: path \"a..b\": empty key",
        ),
        (
            format!("platform = \"x\"\nrecognise = [\"a\"]\n[fields]\n{good_fields}\nresource = []"),
            "fields.resource: a path given as an array",
        ),
        (
            format!("platform = \"x\"\nrecognise = [\"a\"]\n[fields]\n{good_fields}\nsuccess_values = [\"ok\"]"),
            "success_values and failure_values need fields.outcome",
        ),
        (
            format!("platform = \"x\"\nrecognise = [\"a\"]\n[fields]\n{good_fields}\nidentity = 5"),
            "a dotted path string or an array",
        ),
        (
            format!(
                "platform = \"x\"\nrecognise = [\"a\"]\n[[skip]]\npath = \"t\"\nvalues = []\n[fields]\n{good_fields}"
            ),
            "skip[0]: values is empty",
        ),
        ("platform = \"x\"\nrecognise = [\"a\"\n".to_string(), "TOML parse error"),
    ];
    for (text, expected) in cases {
        let err = format!("{:#}", Mapping::parse(&text, "maps/broken.toml").expect_err(expected));
        assert!(err.starts_with("maps/broken.toml: "), "{err}");
        assert!(err.contains(expected), "{err:?} does not contain {expected:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = format!("{:#}", Mapping::load(&missing).unwrap_err());
    assert!(err.contains("nope.toml"), "{err}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "platform = 1").unwrap();
    let err = format!("{:#}", Mapping::load(&bad).unwrap_err());
    assert!(err.starts_with(&bad.display().to_string()), "{err}");
}

/// Every field of every Vault line replaced by values of every JSON type: an event or an
/// error, never a panic.
#[test]
fn never_panics_on_any_value() {
    let mappings = [vault(), Mapping::parse(KUBERNETES, "kubernetes.toml").unwrap()];
    let odd = [
        Value::Null,
        json!(true),
        json!(-1),
        json!(1e300),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!([]),
        json!([{}]),
        json!({}),
    ];
    let mut records = vault_lines();
    records.push(kubernetes_event("allow"));
    let mut checked = 0;
    for record in &records {
        for path in paths(record) {
            for value in &odd {
                let mutated = replace(record, &path, value.clone());
                for m in &mappings {
                    let _ = m.to_event(&mutated, raw(1));
                    let _ = m.skips(&mutated);
                    let _ = mutated.as_object().map(|o| m.recognise(o));
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "{checked}");
    for value in odd {
        for m in &mappings {
            let _ = m.to_event(&value, raw(1));
            let _ = m.skips(&value);
        }
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
