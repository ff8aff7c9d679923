//! End-to-end `keywatch detect`: CloudTrail files the test writes (an S3 delivery file, JSON
//! lines with a broken line, a key the inventory knows was deleted, `--revoked`); a directory
//! of every supported platform at once (the reader fixtures in `tests/fixtures/activity/mixed`);
//! damaged input; stolen tokens on Okta and GitHub; blocklists in every format; training
//! windows; the `[detect]` allow lists; and IP databases.

use assert_cmd::Command;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

fn keywatch(data: &Path) -> Command {
    let mut cmd = Command::cargo_bin("keywatch").expect("binary builds");
    cmd.env_remove("KEYWATCH_CONFIG").env("KEYWATCH_DATA_DIR", data).env("NO_COLOR", "1");
    cmd
}

fn record(id: &str, time: &str, key: &str, ip: &str, ua: &str, name: &str) -> Value {
    json!({"eventVersion": "1.08", "eventID": id, "eventTime": time, "eventSource": "ec2.amazonaws.com",
        "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": ua, "readOnly": true,
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/ci-deployer",
            "accountId": "123456789012", "accessKeyId": key, "userName": "ci-deployer"},
        "eventType": "AwsApiCall", "recipientAccountId": "123456789012"})
}

#[test]
fn detect_reads_mixed_files_and_flags_a_copied_key_and_a_deleted_one() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // Twelve calls of the CI job, then its key from a laptop with a browser.
    let mut records: Vec<Value> = (0..12)
        .map(|n| {
            record(
                &format!("ev-{n}"),
                &format!("2024-05-01T10:{:02}:00Z", n),
                "AKIAEXAMPLECIKEY0001",
                "3.225.16.109",
                "aws-cli/2.15.0 Python/3.11.6 Linux/6.1",
                "DescribeInstances",
            )
        })
        .collect();
    records.push(record(
        "ev-100",
        "2024-05-01T11:00:00Z",
        "AKIAEXAMPLECIKEY0001",
        "203.0.113.50",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0",
        "DescribeInstances",
    ));
    let delivery = serde_json::to_vec(&json!({"Records": records})).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&delivery).unwrap();
    std::fs::write(logs.join("123456789012_CloudTrail_us-east-1_20240501T1100Z_x.json.gz"), gz.finish().unwrap())
        .unwrap();
    // JSON lines: a deleted key used again, a broken line, and a key named in --revoked. The
    // inventory marks the key deleted when an import stops listing it (now, in this test), so
    // its use must come later than that to be certain.
    let lines = [
        record(
            "ev-200",
            "2099-05-02T09:00:00Z",
            "AKIADELETEDKEY000001",
            "198.51.100.7",
            "aws-sdk-go-v2/1.17.0",
            "ListBuckets",
        )
        .to_string(),
        "{\"eventTime\": \"2024-05-02T09:00:01Z\", \"eventSource\": ".to_string(),
        record(
            "ev-201",
            "2024-05-02T09:00:02Z",
            "AKIAREVOKEDKEY000001",
            "198.51.100.7",
            "aws-sdk-go-v2/1.17.0",
            "ListBuckets",
        )
        .to_string(),
    ];
    std::fs::write(logs.join("more.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(
        dir.path().join("revoked.txt"),
        "# rotated after the incident\nAKIAREVOKEDKEY000001 2024-05-01T00:00:00Z\n",
    )
    .unwrap();

    // The inventory knows AKIADELETEDKEY000001, and a later complete list no longer has it.
    let data = dir.path().join("data");
    let keys = |with: bool| {
        let mut list = vec![
            json!({"UserName": "ci", "AccessKeyId": "AKIAOTHERKEY00000001", "Status": "Active", "CreateDate": "2023-01-01T00:00:00Z"}),
        ];
        if with {
            list.push(json!({"UserName": "ci", "AccessKeyId": "AKIADELETEDKEY000001", "Status": "Active", "CreateDate": "2023-01-01T00:00:00Z"}));
        }
        json!({"AccessKeyMetadata": list}).to_string()
    };
    for with in [true, false] {
        let file = dir.path().join("keys.json");
        std::fs::write(&file, keys(with)).unwrap();
        let out = keywatch(&data).args(["inventory", "import"]).arg(&file).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    let out = keywatch(&data)
        .args(["detect", "--format", "json", "--revoked"])
        .arg(dir.path().join("revoked.txt"))
        .arg(&logs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "alerts found: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stats"]["files"], 2);
    assert_eq!(report["stats"]["events"], 15);
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0]["file"].as_str().unwrap().ends_with("more.jsonl") && errors[0]["line"] == 2, "{errors:?}");

    let alerts = report["alerts"].as_array().unwrap();
    let find = |kind: &str, credential: &str| {
        alerts
            .iter()
            .find(|a| a["kind"] == kind && a["credential"] == credential)
            .unwrap_or_else(|| panic!("no {kind} for {credential}: {alerts:#?}"))
    };
    let after = find("use_after_revocation", "AKIADELETEDKEY000001");
    assert_eq!(after["severity"], "critical");
    assert_eq!(after["evidence"], json!(["ev-200"]));
    find("use_after_revocation", "AKIAREVOKEDKEY000001");
    let browser = find("new_user_agent", "AKIAEXAMPLECIKEY0001");
    assert_eq!(browser["severity"], "high");
    assert!(browser["explanation"].as_str().unwrap().contains("browser"));
    let network = find("new_network", "AKIAEXAMPLECIKEY0001");
    assert_eq!(network["source_ips"], json!(["203.0.113.50"]));
    for key in [
        "id",
        "kind",
        "severity",
        "platform",
        "identity",
        "credential",
        "first_seen",
        "last_seen",
        "event_count",
        "source_ips",
        "user_agents",
        "explanation",
        "evidence",
    ] {
        assert!(network.get(key).is_some(), "alert field {key}");
    }

    // Not a log at all: exit 2 naming the file.
    let bad = dir.path().join("notes.json");
    std::fs::write(&bad, b"\x00\x01binary").unwrap();
    let out = keywatch(&data).args(["detect"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notes.json"));
}

// ---------------------------------------------------------------------------------------------
// Helpers of the tests below.

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/activity")
}

/// Runs the command: its exit code, its standard output as JSON, and its standard error.
fn run_json(cmd: &mut Command) -> (Option<i32>, Value, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}): {}\nstderr: {stderr}", String::from_utf8_lossy(&out.stdout))
    });
    (out.status.code(), report, stderr)
}

/// `keywatch detect --format json ARGS...`, with an empty data directory in `dir`.
fn detect_json<I, S>(dir: &Path, args: I) -> (Option<i32>, Value, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_json(keywatch(&dir.join("data")).args(["detect", "--format", "json"]).args(args))
}

fn alerts(report: &Value) -> &Vec<Value> {
    report["alerts"].as_array().expect("an alerts array")
}

fn errors(report: &Value) -> &Vec<Value> {
    report["errors"].as_array().expect("an errors array")
}

fn find<'r>(report: &'r Value, kind: &str, credential: &str) -> &'r Value {
    alerts(report)
        .iter()
        .find(|a| a["kind"] == kind && a["credential"] == credential)
        .unwrap_or_else(|| panic!("no {kind} alert for {credential}: {:#}", report["alerts"]))
}

fn kinds_of(report: &Value, credential: &str) -> BTreeSet<String> {
    alerts(report)
        .iter()
        .filter(|a| a["credential"] == credential)
        .map(|a| a["kind"].as_str().unwrap().into())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn lines_of(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn logs_dir(dir: &Path) -> PathBuf {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    logs
}

const CI_KEY: &str = "AKIAEXAMPLECIKEY0001";
const CI_IP: &str = "3.225.16.109";
const CI_AGENT: &str = "aws-cli/2.15.0 Python/3.11.6 Linux/6.1";
const BROWSER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// The CI job's key making `n` calls a minute apart from its runner, from 10:00.
fn ci_calls(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let time = format!("2024-05-01T10:{i:02}:00Z");
            record(&format!("ci-{i}"), &time, CI_KEY, CI_IP, CI_AGENT, "DescribeInstances")
        })
        .collect()
}

/// The CI key from a laptop with a browser, an hour after its baseline.
fn laptop(time: &str) -> Value {
    record("ci-laptop", time, CI_KEY, "203.0.113.50", BROWSER, "DescribeInstances")
}

// ---------------------------------------------------------------------------------------------
// Every platform in one directory.

#[test]
fn detect_reads_a_directory_of_every_platform_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    // The project's reader fixtures (Okta, GitHub, Atlassian, Google, Vault) and CloudTrail lines.
    for entry in std::fs::read_dir(fixtures().join("mixed")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, logs.join(path.file_name().unwrap())).unwrap();
    }
    // An S3 delivery file: the CI key twelve times from its runner, then from a laptop.
    let mut delivery = ci_calls(12);
    delivery.push(laptop("2024-05-01T11:00:00Z"));
    let name = "123456789012_CloudTrail_us-east-1_20240501T1100Z_AbCd.json.gz";
    std::fs::write(logs.join(name), gzip(&serde_json::to_vec(&json!({"Records": delivery})).unwrap())).unwrap();
    // Not a log, under a log's name; and a file that is not read at all.
    std::fs::write(logs.join("zz-app.log"), "2024-05-01 10:00:00 INFO payments-api started\nGET /health 200\n")
        .unwrap();
    std::fs::write(logs.join("README.md"), "# audit logs\n").unwrap();

    let mapping = fixtures().join("vault.toml");
    let (code, report, stderr) =
        detect_json(dir.path(), [OsStr::new("--mapping"), mapping.as_os_str(), logs.as_os_str()]);
    assert_eq!(code, Some(1), "alerts found; stderr: {stderr}");
    let stats = &report["stats"];
    // gzip 13 + CloudTrail lines 4 + Okta 8 + GitHub 7 + Atlassian 5 + Google 3 + Vault 5.
    assert_eq!(stats["events"], 13 + 4 + 8 + 7 + 5 + 3 + 5, "{stats}");
    assert_eq!(stats["files"], 8, "{stats}");
    assert_eq!(stats["unreadable_files"], 1, "{stats}");
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0]["file"].as_str().unwrap().ends_with("zz-app.log"), "{errs:#?}");
    assert!(errs[0]["message"].as_str().unwrap().contains("not a JSON log"), "{errs:#?}");

    let platforms: BTreeSet<String> = alerts(&report).iter().map(|a| a["platform"].as_str().unwrap().into()).collect();
    assert_eq!(platforms, set(&["atlassian", "aws", "github", "google", "okta", "vault"]), "{:#}", report["alerts"]);
    // Alerts of each file, by what it holds.
    assert_eq!(find(&report, "new_network", CI_KEY)["source_ips"], json!(["203.0.113.50"]));
    assert_eq!(find(&report, "new_user_agent", CI_KEY)["subject"], "browser");
    assert_eq!(find(&report, "privilege_change", "AKIAEXAMPLEOPSAUTO01")["subject"], "CreateAccessKey");
    assert_eq!(find(&report, "defence_evasion", "AKIAEXAMPLEOPSAUTO01")["subject"], "StopLogging");
    assert_eq!(find(&report, "privilege_change", "00T1b2c3d4E5f6G7h8i9")["platform"], "okta");
    assert_eq!(find(&report, "defence_evasion", "temp-ops")["platform"], "github");
    assert_eq!(find(&report, "privilege_change", "c3f1d7c2-8e2a-4b61-9e1a-0f27d9a4a8b3")["platform"], "atlassian");
    let vault: Vec<&str> =
        alerts(&report).iter().filter(|a| a["platform"] == "vault").map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(vault.len(), 2, "{:#}", report["alerts"]);

    // Without the mapping the Vault records are of no known format: each is reported with its
    // line, and everything else is read as before.
    let (code, report, _) = detect_json(dir.path(), [&logs]);
    assert_eq!(code, Some(1));
    assert_eq!(report["stats"]["events"], 13 + 4 + 8 + 7 + 5 + 3);
    let vault_errors: Vec<&Value> =
        errors(&report).iter().filter(|e| e["file"].as_str().unwrap().ends_with("vault-audit.log")).collect();
    assert_eq!(vault_errors.len(), 6, "{:#}", report["errors"]);
    for (i, e) in vault_errors.iter().enumerate() {
        assert_eq!(e["line"], i + 1, "{e}");
        assert!(e["message"].as_str().unwrap().starts_with("unrecognised record"), "{e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged input.

#[test]
fn detect_keeps_what_comes_before_the_cut_of_a_truncated_gzip_file() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    // The baseline, the laptop, then a long tail of the CI job: cut in the middle of the tail.
    let mut records = ci_calls(10);
    records.push(laptop("2024-05-01T10:30:00Z"));
    for i in 0..389 {
        let time = format!("2024-05-01T11:{:02}:{:02}Z", i / 60, i % 60);
        records.push(record(&format!("ci-tail-{i}"), &time, CI_KEY, CI_IP, CI_AGENT, "DescribeInstances"));
    }
    let lines = gzip(lines_of(&records).as_bytes());
    let delivery = gzip(&serde_json::to_vec(&json!({"Records": records})).unwrap());
    for (name, bytes) in [("cut-lines.jsonl.gz", lines), ("cut-delivery.json.gz", delivery)] {
        let file = logs.join(name);
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let (code, report, stderr) = detect_json(dir.path(), [&file]);
        assert_eq!(code, Some(1), "{name}: the laptop, before the cut, is found; stderr: {stderr}");
        let events = report["stats"]["events"].as_u64().unwrap();
        assert!((11..400).contains(&events), "{name}: {events} events before the cut");
        let errs = errors(&report);
        assert_eq!(errs.len(), 1, "{name}: {errs:#?}");
        assert!(errs[0]["file"].as_str().unwrap().ends_with(name), "{errs:#?}");
        assert!(errs[0]["message"].as_str().unwrap().contains("rest of the file skipped"), "{errs:#?}");
        assert_eq!(errs[0]["record"], events + 1, "{name}: the record after the last one read: {errs:#?}");
        if name.ends_with(".jsonl.gz") {
            assert_eq!(errs[0]["line"], events + 1, "{errs:#?}");
        }
        assert_eq!(report["stats"]["unreadable_files"], 0);
        assert_eq!(find(&report, "new_network", CI_KEY)["evidence"], json!(["ci-laptop"]));
    }
}

#[test]
fn detect_reports_broken_lines_by_file_and_line_and_reads_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    let calls = ci_calls(12);
    let mut lines: Vec<String> = calls[..2].iter().map(Value::to_string).collect();
    lines.push(r#"{"eventVersion":"1.08","eventID":"ci-x","eventTime":"2024-05-01T10:02:00Z","eventSource":"#.into());
    lines.push(String::new());
    lines.push(calls[2].to_string());
    lines.push("<html><body><h1>502 Bad Gateway</h1></body></html>".into());
    lines.push(calls[3].to_string());
    lines.push(format!("{}}}", calls[4]));
    lines.extend(calls[5..].iter().map(Value::to_string));
    lines.push(laptop("2024-05-01T11:00:00Z").to_string());
    std::fs::write(logs.join("trail.jsonl"), lines.join("\n") + "\n").unwrap();

    let (code, report, stderr) = detect_json(dir.path(), [&logs]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert_eq!(report["stats"]["events"], 2 + 1 + 1 + 7 + 1);
    let at: Vec<(u64, u64)> =
        errors(&report).iter().map(|e| (e["line"].as_u64().unwrap(), e["record"].as_u64().unwrap())).collect();
    // The blank line 4 is no record.
    assert_eq!(at, [(3, 3), (6, 5), (8, 7)], "{:#}", report["errors"]);
    for e in errors(&report) {
        assert!(e["file"].as_str().unwrap().ends_with("trail.jsonl"), "{e}");
        assert!(e["message"].as_str().unwrap().starts_with("invalid JSON"), "{e}");
    }
    assert_eq!(report["stats"]["errors"], 3);
    // The laptop, after every broken line, is still found.
    find(&report, "new_network", CI_KEY);
    // The summary on standard error names file and line too (not in --format json).
    let out = keywatch(&dir.path().join("data")).args(["detect", "--format", "jsonl"]).arg(&logs).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("trail.jsonl:3 (record 3): invalid JSON"), "{stderr}");
    assert!(stderr.contains("3 unreadable records"), "{stderr}");
}

#[test]
fn detect_reads_json_lines_whose_first_line_is_cut() {
    // A file copied from the middle of a growing log starts with half a line; a shipper that
    // crashed mid-write leaves a broken first line. The lines after it are still JSON lines.
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    let mut calls = ci_calls(12);
    calls.push(laptop("2024-05-01T11:00:00Z"));
    for (name, first) in [
        ("starts-mid-line.jsonl", r#"ventTime":"2024-05-01T09:59:00Z","eventSource":"ec2.amazonaws.com"}"#),
        ("starts-cut.jsonl", r#"{"eventVersion":"1.08","eventID":"ci-x","eventTime":"2024-05-01T09:59:00Z","#),
    ] {
        std::fs::write(logs.join(name), format!("{first}\n{}", lines_of(&calls))).unwrap();
        let (code, report, stderr) = detect_json(dir.path(), [logs.join(name)]);
        assert_eq!(report["stats"]["events"], 13, "{name}: {:#}\n{stderr}", report["errors"]);
        assert_eq!(code, Some(1), "{name}");
        let errs = errors(&report);
        assert_eq!(errs.len(), 1, "{name}: {errs:#?}");
        assert_eq!(errs[0]["line"], 1, "{name}: {errs:#?}");
    }
}

#[test]
fn detect_names_the_field_of_the_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    // Okta: an array whose second event has a number for an address.
    let mut okta: Vec<Value> = (0..3)
        .map(|i| okta_event(i, &format!("2024-05-06T09:0{i}:00.000Z"), "00Tsvc0provision0001", OKTA_IP, OKTA_AGENT))
        .collect();
    okta[1]["client"]["ipAddress"] = json!(3232235777u32);
    std::fs::write(logs.join("okta.json"), serde_json::to_string_pretty(&okta).unwrap()).unwrap();
    // CloudTrail lines: a numeric access key id, a numeric time.
    let calls = ci_calls(4);
    let mut bad_key = calls[1].clone();
    bad_key["userIdentity"]["accessKeyId"] = json!(12345);
    let mut bad_time = calls[2].clone();
    bad_time["eventTime"] = json!(1714557720);
    std::fs::write(logs.join("trail.jsonl"), lines_of(&[calls[0].clone(), bad_key, bad_time, calls[3].clone()]))
        .unwrap();
    // GitHub: a list where the address goes.
    let mut clone = github_event("d1", 1_715_040_000_000, 5_550_001, "140.82.112.3", "git/2.43.0", "git.clone");
    clone["actor_ip"] = json!(["140.82.112.3"]);
    let fine = github_event("d2", 1_715_040_060_000, 5_550_001, "140.82.112.3", "git/2.43.0", "git.fetch");
    std::fs::write(logs.join("github.jsonl"), lines_of(&[fine, clone])).unwrap();

    let (code, report, stderr) = detect_json(dir.path(), [&logs]);
    assert_eq!(code, Some(0), "no alerts; stderr: {stderr}");
    assert_eq!(report["stats"]["events"], 1 + 2 + 2);
    let got: BTreeSet<(String, u64, u64, String)> = errors(&report)
        .iter()
        .map(|e| {
            let file = Path::new(e["file"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned();
            (file, e["line"].as_u64().unwrap(), e["record"].as_u64().unwrap(), e["message"].as_str().unwrap().into())
        })
        .collect();
    let want: BTreeSet<(String, u64, u64, String)> = [
        ("github.jsonl", 2, 2, "actor_ip is not a string (array)"),
        ("okta.json", 0, 2, "client.ipAddress is not a string (number)"),
        ("trail.jsonl", 2, 2, "userIdentity.accessKeyId is not a string (number)"),
        ("trail.jsonl", 3, 3, "eventTime is not a string (number)"),
    ]
    .into_iter()
    .map(|(f, l, r, m)| (f.to_string(), l, r, m.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn detect_reports_binary_files_and_reads_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    std::fs::write(logs.join("a-screenshot.json"), b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x02\x80").unwrap();
    std::fs::write(logs.join("b-core.log"), b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00")
        .unwrap();
    std::fs::write(logs.join("c-corrupt.json.gz"), b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage, not deflate")
        .unwrap();
    let mut calls = ci_calls(12);
    calls.push(laptop("2024-05-01T11:00:00Z"));
    std::fs::write(logs.join("d-trail.jsonl"), lines_of(&calls)).unwrap();

    let (code, report, stderr) = detect_json(dir.path(), [&logs]);
    assert_eq!(code, Some(1), "stderr: {stderr}");
    assert_eq!(report["stats"]["events"], 13);
    assert_eq!(report["stats"]["files"], 4);
    assert_eq!(report["stats"]["unreadable_files"], 3);
    let errs: Vec<(String, String)> = errors(&report)
        .iter()
        .map(|e| {
            assert_eq!((e["line"].as_u64(), e["record"].as_u64()), (Some(0), Some(0)), "{e}");
            let file = e["file"].as_str().unwrap();
            let message = e["message"].as_str().unwrap();
            assert!(!message.contains(file), "the file is named once, not again in the message: {e}");
            (Path::new(file).file_name().unwrap().to_string_lossy().into_owned(), message.to_string())
        })
        .collect();
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_eq!(errs[0].0, "a-screenshot.json");
    assert!(errs[0].1.starts_with("not a JSON log"), "{errs:#?}");
    assert_eq!(errs[1].0, "b-core.log");
    assert!(errs[1].1.starts_with("not a JSON log (binary data"), "{errs:#?}");
    assert_eq!(errs[2].0, "c-corrupt.json.gz");
    assert!(errs[2].1.starts_with("read error (gzip)"), "{errs:#?}");
    find(&report, "new_network", CI_KEY);

    // Nothing readable at all: a failure naming every file, each once per line.
    std::fs::remove_file(logs.join("d-trail.jsonl")).unwrap();
    let out = keywatch(&dir.path().join("data")).args(["detect", "--format", "json"]).arg(&logs).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("none of the 3 log files could be read"), "{stderr}");
    for name in ["a-screenshot.json", "b-core.log", "c-corrupt.json.gz"] {
        assert_eq!(stderr.matches(name).count(), 1, "{stderr}");
    }
}

#[test]
fn detect_flags_novelty_among_events_out_of_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    // Batches of a shipper interleaved: the times jump back and forth, and the laptop's call,
    // read last, happened in the middle of the baseline (so within minutes of the runner's).
    let calls = ci_calls(12);
    let mut shuffled: Vec<Value> = [5, 0, 9, 2, 11, 7, 1, 4, 10, 3, 8, 6].iter().map(|&i| calls[i].clone()).collect();
    shuffled.push(laptop("2024-05-01T10:04:30Z"));
    std::fs::write(logs.join("shuffled.jsonl"), lines_of(&shuffled)).unwrap();
    let (code, report, _) = detect_json(dir.path(), [logs.join("shuffled.jsonl")]);
    assert_eq!(code, Some(1));
    assert_eq!(
        kinds_of(&report, CI_KEY),
        set(&["concurrent_networks", "new_network", "new_user_agent"]),
        "{:#}",
        report["alerts"]
    );
    let network = find(&report, "new_network", CI_KEY);
    assert_eq!(network["first_seen"], "2024-05-01T10:04:30Z");
    assert_eq!(network["last_seen"], "2024-05-01T10:04:30Z");
    assert_eq!(find(&report, "concurrent_networks", CI_KEY)["severity"], "high", "another client too");
}

#[test]
fn detect_flags_novelty_in_a_newest_first_file_with_train_until() {
    // Newest first (as audit-log APIs page by default), with the training window given as a
    // time: the baseline is what came before it, whatever the order in the file.
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    let mut newest_first = ci_calls(12);
    newest_first.push(laptop("2024-05-01T11:00:00Z"));
    newest_first.reverse();
    let file = logs.join("newest-first.json");
    std::fs::write(&file, serde_json::to_vec(&newest_first).unwrap()).unwrap();
    let (code, report, _) =
        detect_json(dir.path(), [OsStr::new("--train-until"), OsStr::new("2024-05-01T10:30:00Z"), file.as_os_str()]);
    assert_eq!(code, Some(1));
    let kinds = kinds_of(&report, CI_KEY);
    assert!(kinds.contains("new_network") && kinds.contains("new_user_agent"), "{:#}", report["alerts"]);
    assert_eq!(find(&report, "new_network", CI_KEY)["source_ips"], json!(["203.0.113.50"]));
}

#[test]
fn detect_does_not_call_uses_an_hour_apart_concurrent_when_read_out_of_order() {
    // The laptop's call came an hour before the runner's, but is read after them (a late
    // batch): one credential in two places an hour apart is not two places at once.
    let dir = tempfile::tempdir().unwrap();
    let mut records = ci_calls(12);
    records.push(laptop("2024-05-01T09:00:00Z"));
    let file = dir.path().join("late-batch.jsonl");
    std::fs::write(&file, lines_of(&records)).unwrap();
    let (_, report, _) = detect_json(dir.path(), [&file]);
    assert_eq!(kinds_of(&report, CI_KEY), set(&["new_network", "new_user_agent"]), "{:#}", report["alerts"]);
}

#[test]
fn detect_flags_use_after_revocation_in_a_newest_first_audit_log_page() {
    // GitHub's audit-log API lists the newest events first unless asked otherwise: a saved page
    // holds the stolen token's use before (in the file) the revocation it came after.
    let dir = tempfile::tempdir().unwrap();
    let t = 1_715_040_000_000i64;
    let page = vec![
        github_event("use", t + 7_200_000, 5_550_001, "45.155.205.233", "git/2.39.2", "git.clone"),
        revoke_event("revoke", t + 3_600_000, 5_550_001),
        github_event("ci", t, 5_550_001, "140.82.112.3", "git/2.43.0", "git.clone"),
    ];
    let file = dir.path().join("audit-log.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&page).unwrap()).unwrap();
    let (code, report, _) = detect_json(dir.path(), [&file]);
    assert_eq!(report["stats"]["events"], 3);
    let alert = find(&report, "use_after_revocation", "5550001");
    assert_eq!(alert["evidence"], json!(["use"]));
    assert_eq!(code, Some(1));
}

#[test]
fn detect_strict_turns_read_errors_into_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    // Clean CloudTrail lines (no alerts), and a record of no known format in its own file.
    std::fs::write(logs.join("a-trail.jsonl"), lines_of(&ci_calls(5))).unwrap();
    let unknown =
        json!({"level": "info", "ts": "2024-05-01T10:00:00Z", "msg": "token refreshed", "caller": "auth/token.go:88"});
    std::fs::write(logs.join("b-app.jsonl"), lines_of(&[unknown])).unwrap();

    let (code, report, _) = detect_json(dir.path(), [&logs]);
    assert_eq!(code, Some(0), "read errors alone are not findings");
    assert_eq!(report["stats"]["events"], 5);
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0]["file"].as_str().unwrap().ends_with("b-app.jsonl"));
    assert_eq!(errs[0]["line"], 1);
    assert!(errs[0]["message"].as_str().unwrap().starts_with("unrecognised record"), "{errs:#?}");

    let (code, report, _) = detect_json(dir.path(), [OsStr::new("--strict"), logs.as_os_str()]);
    assert_eq!(code, Some(2));
    assert_eq!(report["stats"]["events"], 5, "--strict still reads and reports everything");
    // With alerts too, --strict still says 2; without read errors it changes nothing.
    let mut calls = ci_calls(12);
    calls.push(laptop("2024-05-01T11:00:00Z"));
    std::fs::write(logs.join("a-trail.jsonl"), lines_of(&calls)).unwrap();
    let (code, report, _) = detect_json(dir.path(), [OsStr::new("--strict"), logs.as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(!alerts(&report).is_empty());
    std::fs::remove_file(logs.join("b-app.jsonl")).unwrap();
    let (code, _, _) = detect_json(dir.path(), [OsStr::new("--strict"), logs.as_os_str()]);
    assert_eq!(code, Some(1));
}

// ---------------------------------------------------------------------------------------------
// Stolen tokens on other platforms.

const OKTA_IP: &str = "3.90.18.207";
const OKTA_AGENT: &str = "okta-sdk-python/2.9.5 python/3.11.8 Linux/5.15.0-1057-aws";

/// A System Log event of the provisioning service's SSWS API token.
fn okta_event(n: usize, published: &str, token: &str, ip: &str, agent: &str) -> Value {
    json!({
        "actor": {"id": "00u5svcProvision01x7", "type": "User", "alternateId": "svc-provisioning@example.com",
            "displayName": "Provisioning Service", "detailEntry": null},
        "client": {"userAgent": {"rawUserAgent": agent, "os": "Linux", "browser": "UNKNOWN"}, "zone": "null",
            "device": "Unknown", "id": null, "ipAddress": ip,
            "geographicalContext": {"city": "Ashburn", "state": "Virginia", "country": "United States"}},
        "authenticationContext": {"authenticationProvider": null, "credentialProvider": null, "credentialType": null,
            "issuer": null, "interface": null, "authenticationStep": 0, "externalSessionId": "unknown"},
        "displayMessage": "Activate Okta user",
        "eventType": "user.lifecycle.activate",
        "outcome": {"result": "SUCCESS", "reason": null},
        "published": published,
        "securityContext": {"asNumber": null, "asOrg": null, "isp": null, "domain": null, "isProxy": null},
        "severity": "INFO",
        "debugContext": {"debugData": {"requestId": format!("Zjk{n:04}provisioning"), "requestUri": "/api/v1/users/00u1a2b3c4/lifecycle/activate"}},
        "legacyEventType": "core.user.config.user_activated",
        "transaction": {"type": "WEB", "id": format!("Zjk{n:04}provisioning"), "detail": {"requestApiTokenId": token}},
        "uuid": format!("5d0e8c1a-0b9d-11ef-9c3a-{n:012}"),
        "version": "0",
        "request": {"ipChain": [{"ip": ip, "version": "V4", "source": null}]},
        "target": [{"id": format!("00unewhire{n:04}"), "type": "User", "alternateId": format!("new.hire{n}@example.com"),
            "displayName": "New Hire", "detailEntry": null}]
    })
}

/// The join nobody else makes: an alert on a token names the inventory's record of it, with
/// its owner and the vendor that holds it.
#[test]
fn detect_alerts_name_the_inventory_record_and_the_vendor_holding_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = "00Tsvc0provision0001";
    let tokens = json!([{"clientName": "Okta API", "created": "2024-01-01T00:00:00.000Z",
        "expiresAt": "2024-08-01T00:00:00.000Z", "id": token, "lastUpdated": "2024-01-01T00:00:00.000Z",
        "name": "moveworks-integration", "network": {"connection": "ANYWHERE"}, "tokenWindow": "P30D",
        "userId": "00u5svcProvision01x7"}]);
    let export = dir.path().join("okta-api-tokens.json");
    std::fs::write(&export, tokens.to_string()).unwrap();
    let imported = keywatch(&dir.path().join("data"))
        .args(["inventory", "import", "--okta-org", "acme.okta.com"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));

    let mut events: Vec<Value> =
        (0..12).map(|i| okta_event(i, &format!("2024-05-06T09:{i:02}:00.000Z"), token, OKTA_IP, OKTA_AGENT)).collect();
    events.push(okta_event(12, "2024-05-06T14:21:09.000Z", token, "198.51.100.77", BROWSER));
    let other = "00Tnot0in0inventory1";
    events
        .extend((20..32).map(|i| okta_event(i, &format!("2024-05-06T10:{i:02}:00.000Z"), other, OKTA_IP, OKTA_AGENT)));
    events.push(okta_event(40, "2024-05-06T14:22:09.000Z", other, "198.51.100.77", BROWSER));
    let file = dir.path().join("okta-system-log.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&events).unwrap()).unwrap();

    let (code, report, stderr) = detect_json(dir.path(), [&file]);
    assert_eq!(code, Some(1), "{stderr}");
    let network = find(&report, "new_network", token);
    let inventory = &network["inventory"];
    assert_eq!(inventory["platform"], "okta", "{network:#}");
    assert_eq!(inventory["name"], "moveworks-integration");
    assert_eq!(inventory["status"], "active");
    assert!(
        inventory["vendors"].as_array().unwrap().iter().any(|v| v.as_str().unwrap().contains("Moveworks")),
        "{inventory}"
    );
    // A credential the inventory does not hold has no such field.
    assert!(find(&report, "new_network", other).get("inventory").is_none());
}

/// One line of GitHub audit log streaming: an action of a fine-grained token.
fn github_event(id: &str, ms: i64, token: u64, ip: &str, agent: &str, action: &str) -> Value {
    json!({"@timestamp": ms, "_document_id": id, "action": action, "actor": "ci-builder", "actor_id": 88112233,
        "actor_ip": ip, "actor_is_bot": false, "business": "acme-corp", "org": "acme", "org_id": 72561004,
        "hashed_token": "UjzOjsdZ7y2WcoKhdxE7z154XHWsJBrFrKHTzar7R/8=",
        "programmatic_access_type": "Fine-grained personal access token", "repo": "acme/payments-service",
        "repository": "acme/payments-service", "repository_public": false, "token_id": token,
        "transport_protocol": 1, "transport_protocol_name": "http", "user_agent": agent})
}

/// An owner revoking the token's access to the organisation, from the web interface.
fn revoke_event(id: &str, ms: i64, token: u64) -> Value {
    json!({"@timestamp": ms, "_document_id": id, "action": "personal_access_token.access_revoked",
        "actor": "octo-admin", "actor_id": 1000001, "actor_ip": "198.51.100.9", "business": "acme-corp",
        "org": "acme", "org_id": 72561004, "token_id": token, "user": "ci-builder",
        "user_agent": BROWSER, "operation_type": "remove"})
}

#[test]
fn detect_okta_api_token_used_from_a_new_network_with_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let token = "00Tsvc0provision0001";
    let mut events: Vec<Value> =
        (0..12).map(|i| okta_event(i, &format!("2024-05-06T09:{i:02}:00.000Z"), token, OKTA_IP, OKTA_AGENT)).collect();
    events.push(okta_event(12, "2024-05-06T14:21:09.000Z", token, "198.51.100.77", BROWSER));
    // Another token, busy from another address all along, raises nothing.
    events.extend((0..5).map(|i| {
        okta_event(20 + i, &format!("2024-05-06T10:{i:02}:00.000Z"), "00Tother0token000001", "54.2.3.4", OKTA_AGENT)
    }));
    let file = dir.path().join("okta-system-log.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&events).unwrap()).unwrap();

    let (code, report, stderr) = detect_json(dir.path(), [&file]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report["stats"]["events"], 18);
    assert!(errors(&report).is_empty(), "{:#}", report["errors"]);
    assert_eq!(kinds_of(&report, token), set(&["new_network", "new_user_agent"]), "{:#}", report["alerts"]);
    assert!(kinds_of(&report, "00Tother0token000001").is_empty());
    let network = find(&report, "new_network", token);
    assert_eq!(network["platform"], "okta");
    assert_eq!(network["identity"], "svc-provisioning@example.com");
    assert_eq!(network["source_ips"], json!(["198.51.100.77"]));
    assert_eq!(network["networks"], json!(["198.51.100.0/24"]));
    assert_eq!(network["evidence"], json!(["5d0e8c1a-0b9d-11ef-9c3a-000000000012"]));
    assert!(network["explanation"].as_str().unwrap().contains(OKTA_IP), "names the baseline: {network}");
    let agent = find(&report, "new_user_agent", token);
    assert_eq!(agent["severity"], "high");
    assert_eq!(agent["subject"], "browser");
    assert_eq!(agent["source_ips"], json!(["198.51.100.77"]));
    assert_eq!(agent["user_agents"], json!([BROWSER]));
}

#[test]
fn detect_github_token_used_after_its_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let t = 1_715_040_000_000i64;
    let mut lines: Vec<Value> = (0..5)
        .map(|i| github_event(&format!("ci-{i}"), t + i * 60_000, 5_550_001, "140.82.112.3", "git/2.43.0", "git.clone"))
        .collect();
    lines.push(revoke_event("revoke", t + 3_600_000, 5_550_001));
    lines.push(github_event("after", t + 7_200_000, 5_550_001, "45.155.205.233", "git/2.39.2", "git.clone"));
    // A different token of the same job, still valid: its use is fine.
    lines.push(github_event("other", t + 7_260_000, 5_550_002, "140.82.112.3", "git/2.43.0", "git.clone"));
    let file = dir.path().join("github-streaming.jsonl");
    std::fs::write(&file, lines_of(&lines)).unwrap();

    let (code, report, _) = detect_json(dir.path(), [&file]);
    assert_eq!(code, Some(1));
    let alert = find(&report, "use_after_revocation", "5550001");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["platform"], "github");
    assert_eq!(alert["evidence"], json!(["after"]), "only the use after the revocation");
    assert_eq!(alert["source_ips"], json!(["45.155.205.233"]));
    assert_eq!(alert["first_seen"], "2024-05-07T02:00:00Z");
    assert!(
        alert["explanation"].as_str().unwrap().contains("revoked, deleted or rotated at 2024-05-07T01:00:00Z"),
        "{alert}"
    );
    assert!(!kinds_of(&report, "5550002").contains("use_after_revocation"));
    // Critical alerts come first.
    assert_eq!(alerts(&report)[0]["kind"], "use_after_revocation");
}

// ---------------------------------------------------------------------------------------------
// Blocklists.

/// The CI key's baseline, then an attacker from every address of 198.51.100.0/24, from an
/// internal address (a VPN), from IPv6, and with an attack tool; meanwhile the CI job itself
/// grants a policy from its own runner (an alert, but its address is the credential's own).
fn blocklist_scenario(logs: &Path) {
    let mut records = ci_calls(10);
    let at = |i: usize| format!("2024-05-01T12:{:02}:{:02}Z", i / 60, i % 60);
    for host in 0..=255 {
        let ip = format!("198.51.100.{host}");
        records.push(record(&format!("spray-{host}"), &at(host), CI_KEY, &ip, CI_AGENT, "DescribeInstances"));
    }
    records.push(record("vpn", &at(300), CI_KEY, "10.20.30.40", CI_AGENT, "ListBuckets"));
    records.push(record("v6", &at(301), CI_KEY, "2001:db8:bad::1", CI_AGENT, "ListBuckets"));
    records.push(record("tool", &at(302), CI_KEY, "203.0.113.66", "stratus-red-team_5c1b2a", "ListBuckets"));
    records.push(record("own", &at(303), CI_KEY, CI_IP, CI_AGENT, "AttachUserPolicy"));
    std::fs::write(logs.join("trail.jsonl"), lines_of(&records)).unwrap();
}

fn detect_blocklist(dir: &Path, format: &str) -> (Value, String) {
    let file = dir.join(format!("blocklist.{format}"));
    let (code, report, stderr) = detect_json(
        dir,
        [OsStr::new("--blocklist"), file.as_os_str(), OsStr::new("--blocklist-format"), OsStr::new(format)]
            .into_iter()
            .chain([dir.join("logs").as_os_str()]),
    );
    assert_eq!(code, Some(1), "{format}: {stderr}");
    (report, std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{format}: no blocklist: {e}")))
}

#[test]
fn detect_writes_blocklists_of_the_attackers_only() {
    let dir = tempfile::tempdir().unwrap();
    blocklist_scenario(&logs_dir(dir.path()));

    let (report, plain) = detect_blocklist(dir.path(), "plain");
    // What the blocklist is made of: the alerts name the runner's address too.
    let privilege = find(&report, "privilege_change", CI_KEY);
    assert_eq!(privilege["source_ips"], json!([CI_IP]));
    find(&report, "concurrent_networks", CI_KEY);
    assert_eq!(find(&report, "attack_tool", CI_KEY)["source_ips"], json!(["203.0.113.66"]));
    let spray = alerts(&report).iter().filter(|a| a["kind"] == "new_network").count();
    assert_eq!(spray, 256 + 3, "one per new address");

    let entries: Vec<&str> = plain.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    assert_eq!(entries, ["198.51.100.0/24", "203.0.113.66", "2001:db8:bad::1"], "{plain}");
    assert!(plain.contains("1 private, loopback or other internal address left out"), "{plain}");
    assert!(plain.contains("258 addresses in 3 prefixes"), "{plain}");

    let (_, nft) = detect_blocklist(dir.path(), "nftables");
    assert!(nft.contains("table inet keywatch {"), "{nft}");
    assert!(nft.contains("\t\t\t198.51.100.0/24,\n\t\t\t203.0.113.66/32\n"), "{nft}");
    assert!(nft.contains("\t\t\t2001:db8:bad::1/128\n"), "{nft}");
    assert!(nft.contains("ip saddr @blocklist_v4 drop"), "{nft}");

    let (_, iptables) = detect_blocklist(dir.path(), "iptables");
    assert!(iptables.starts_with("#!/bin/sh\n"), "{iptables}");
    let rules: Vec<&str> = iptables.lines().filter(|l| l.contains(" -A keywatch ")).collect();
    assert_eq!(
        rules,
        [
            "iptables -w -A keywatch -s 198.51.100.0/24 -j DROP",
            "iptables -w -A keywatch -s 203.0.113.66/32 -j DROP",
            "ip6tables -w -A keywatch -s 2001:db8:bad::1/128 -j DROP",
        ],
        "{iptables}"
    );

    let (_, nginx) = detect_blocklist(dir.path(), "nginx");
    let denies: Vec<&str> = nginx.lines().filter(|l| l.starts_with("deny ")).collect();
    assert_eq!(denies, ["deny 198.51.100.0/24;", "deny 203.0.113.66/32;", "deny 2001:db8:bad::1/128;"], "{nginx}");

    for text in [&plain, &nft, &iptables, &nginx] {
        assert!(!text.contains(CI_IP), "the credential's own runner is never blocked: {text}");
        assert!(!text.contains("10.20.30.40"), "internal addresses stay out of firewalls: {text}");
    }

    let (report, json_text) = detect_blocklist(dir.path(), "json");
    let doc: Value = serde_json::from_str(&json_text).unwrap();
    assert!(doc["generated_at"].as_str().unwrap().ends_with('Z'), "{doc}");
    let entries = doc["entries"].as_array().unwrap();
    let cidrs: Vec<(&str, bool)> =
        entries.iter().map(|e| (e["cidr"].as_str().unwrap(), e["private"].as_bool().unwrap())).collect();
    assert_eq!(
        cidrs,
        [
            ("10.20.30.40/32", true),
            ("198.51.100.0/24", false),
            ("203.0.113.66/32", false),
            ("2001:db8:bad::1/128", false)
        ]
    );
    // The /24 carries the ids of all 256 alerts it aggregates; ids are those of the report.
    let ids: BTreeSet<&str> = alerts(&report).iter().map(|a| a["id"].as_str().unwrap()).collect();
    let spray = &entries[1];
    assert_eq!(spray["alerts"].as_array().unwrap().len(), 256);
    assert!(spray["alerts"].as_array().unwrap().iter().all(|id| ids.contains(id.as_str().unwrap())));
    assert_eq!(spray["reasons"], json!(["new_network"]));
    let tool = &entries[2];
    let reasons = tool["reasons"].as_array().unwrap();
    assert!(reasons.iter().any(|r| r.as_str().unwrap().contains("attack_tool")), "{tool}");
    assert!(!json_text.contains(CI_IP), "{json_text}");

    // Not a format: a usage error, and nothing written.
    let out = keywatch(&dir.path().join("data"))
        .args(["detect", "--blocklist"])
        .arg(dir.path().join("blocklist.pf"))
        .args(["--blocklist-format", "pf"])
        .arg(dir.path().join("logs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown blocklist format \"pf\""), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(!dir.path().join("blocklist.pf").exists());
}

// ---------------------------------------------------------------------------------------------
// Training windows.

/// Five calls from the runner in one file, eight later ones from a second runner in another:
/// with the first ten events as the baseline (the default), both runners are known.
fn training_scenario(logs: &Path) -> (PathBuf, PathBuf) {
    let first = logs.join("a-monday.jsonl");
    let second = logs.join("b-tuesday.jsonl");
    std::fs::write(&first, lines_of(&ci_calls(5))).unwrap();
    let later: Vec<Value> = (0..8)
        .map(|i| {
            let time = format!("2024-05-02T10:{i:02}:00Z");
            record(&format!("ci2-{i}"), &time, CI_KEY, "52.14.9.200", CI_AGENT, "DescribeInstances")
        })
        .collect();
    std::fs::write(&second, lines_of(&later)).unwrap();
    (first, second)
}

#[test]
fn detect_train_until_and_train_fraction_choose_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    let (first, second) = training_scenario(&logs);
    let run = |extra: &[&str]| {
        let (code, report, stderr) = detect_json(dir.path(), extra.iter().map(OsStr::new).chain([logs.as_os_str()]));
        assert!(errors(&report).is_empty(), "{stderr}");
        (code, kinds_of(&report, CI_KEY))
    };
    assert_eq!(run(&[]), (Some(0), BTreeSet::new()), "the first ten events know both runners");
    // Monday only.
    let novel = set(&["new_network"]);
    assert_eq!(run(&["--train-until", "2024-05-02T00:00:00Z"]), (Some(1), novel.clone()));
    let size = |p: &Path| std::fs::metadata(p).unwrap().len() as f64;
    let monday = (size(&first) + 1.0) / (size(&first) + size(&second));
    assert_eq!(run(&["--train-fraction", &monday.to_string()]), (Some(1), novel));
    // Everything.
    assert_eq!(run(&["--train-fraction", "1.0"]), (Some(0), BTreeSet::new()));
    assert_eq!(run(&["--train-until", "2024-05-03T00:00:00Z"]), (Some(0), BTreeSet::new()));
    // A smaller per-credential baseline: the first three events.
    assert_eq!(run(&["--baseline-events", "3"]), (Some(1), set(&["new_network"])));
}

#[test]
fn detect_train_fraction_splits_a_single_file() {
    // One day's file: its first nine tenths (by bytes) are the baseline, the laptop's call in
    // the last line is not.
    let dir = tempfile::tempdir().unwrap();
    let mut records = ci_calls(12);
    records.push(laptop("2024-05-01T11:00:00Z"));
    let file = dir.path().join("trail.jsonl");
    std::fs::write(&file, lines_of(&records)).unwrap();
    let (code, report, _) =
        detect_json(dir.path(), [OsStr::new("--train-fraction"), OsStr::new("0.9"), file.as_os_str()]);
    assert_eq!(kinds_of(&report, CI_KEY), set(&["new_network", "new_user_agent"]), "{:#}", report["alerts"]);
    assert_eq!(code, Some(1));
}

#[test]
fn detect_training_options_out_of_range_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    training_scenario(&logs);
    for (args, says) in [
        (vec!["--train-fraction", "2"], "--train-fraction 2 is not between 0 and 1"),
        (vec!["--train-fraction=-0.5"], "--train-fraction -0.5 is not between 0 and 1"),
        (vec!["--train-fraction", "half"], "half"),
        (vec!["--train-until", "yesterday"], "--train-until \"yesterday\" is not an RFC 3339 time"),
        (vec!["--train-until", "2024-05-02T00:00:00Z", "--train-fraction", "0.5"], "cannot be used with"),
    ] {
        let out = keywatch(&dir.path().join("data")).arg("detect").args(&args).arg(&logs).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// Allow lists.

#[test]
fn detect_config_allow_lists_silence_novelty_but_not_attack_tools() {
    let dir = tempfile::tempdir().unwrap();
    let logs = logs_dir(dir.path());
    let mut records = ci_calls(12);
    // The team's own bastion network and a browser-based admin console: known automation.
    records.push(record("console", "2024-05-01T12:00:00Z", CI_KEY, "198.51.100.20", BROWSER, "DescribeInstances"));
    // A red-team run from the same allowed network.
    records.push(record(
        "tool",
        "2024-05-01T13:00:00Z",
        CI_KEY,
        "198.51.100.21",
        "stratus-red-team_5c1b2a",
        "ListBuckets",
    ));
    // And a network nobody allowed.
    records.push(record("stranger", "2024-05-01T14:00:00Z", CI_KEY, "203.0.113.9", CI_AGENT, "ListBuckets"));
    std::fs::write(logs.join("trail.jsonl"), lines_of(&records)).unwrap();

    let (code, report, _) = detect_json(dir.path(), [&logs]);
    assert_eq!(code, Some(1));
    let ips = |report: &Value, kind: &str| -> BTreeSet<String> {
        alerts(report)
            .iter()
            .filter(|a| a["kind"] == kind)
            .flat_map(|a| a["source_ips"].as_array().unwrap().iter().map(|ip| ip.as_str().unwrap().to_string()))
            .collect()
    };
    assert_eq!(ips(&report, "new_network"), set(&["198.51.100.20", "198.51.100.21", "203.0.113.9"]));
    assert_eq!(ips(&report, "new_user_agent"), set(&["198.51.100.20"]));
    assert_eq!(ips(&report, "attack_tool"), set(&["198.51.100.21"]));

    let config = dir.path().join("keywatch.toml");
    std::fs::write(
        &config,
        "[detect]\nallow_networks = [\"198.51.100.0/24\", \"192.0.2.7\"]\nallow_user_agents = [\"chrome/\"]\n",
    )
    .unwrap();
    let (code, report, stderr) = run_json(
        keywatch(&dir.path().join("data")).arg("--config").arg(&config).args(["detect", "--format", "json"]).arg(&logs),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(ips(&report, "new_network"), set(&["203.0.113.9"]), "{:#}", report["alerts"]);
    assert_eq!(ips(&report, "new_user_agent"), BTreeSet::new(), "{:#}", report["alerts"]);
    let tool = find(&report, "attack_tool", CI_KEY);
    assert_eq!(tool["source_ips"], json!(["198.51.100.21"]));
    assert_eq!(tool["severity"], "high");

    // KEYWATCH_CONFIG works as --config does; a bad network in it is a usage error.
    std::fs::write(&config, "[detect]\nallow_networks = [\"198.51.100.0/33\"]\n").unwrap();
    let out =
        keywatch(&dir.path().join("data")).env("KEYWATCH_CONFIG", &config).arg("detect").arg(&logs).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[detect] allow_networks") && stderr.contains("198.51.100.0/33"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// IP databases (installed by .ci/setup-ipdb.sh into target/ipdb, as crates/activity's tests
// read them).

fn ipdb_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ipdb/node_modules/@ip-location-db")
}

/// The lines of the real ASN CSV whose ranges hold any of `ips`: the whole file takes seconds
/// to load in a debug build, and these lines are all a lookup of those addresses reads.
fn asn_excerpt(csv: &Path, ips: &[std::net::Ipv4Addr], out: &Path) {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut excerpt = String::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ',');
        let (Some(start), Some(end)) = (fields.next(), fields.next()) else { continue };
        let (Ok(start), Ok(end)) = (start.parse::<std::net::Ipv4Addr>(), end.parse::<std::net::Ipv4Addr>()) else {
            continue;
        };
        if ips.iter().any(|ip| (start..=end).contains(ip)) {
            excerpt.push_str(line);
            excerpt.push('\n');
        }
    }
    assert_eq!(excerpt.lines().count(), ips.len(), "one range per address in {}:\n{excerpt}", csv.display());
    std::fs::write(out, excerpt).unwrap();
}

#[test]
fn detect_with_ip_databases_labels_networks_by_asn_and_flags_a_new_country() {
    let country = ipdb_dir().join("geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb");
    let asn = ipdb_dir().join("asn/asn-ipv4.csv");
    assert!(
        country.is_file() && asn.is_file(),
        "IP databases missing under {}: run .ci/setup-ipdb.sh",
        ipdb_dir().display()
    );
    let dir = tempfile::tempdir().unwrap();
    // The runner in AWS us-east-1 (AS14618, US), then another runner of the same AS in another
    // /24, then a copy of the key on a Hetzner server (AS24940, DE).
    let (runner_2, hetzner) = ("3.225.17.5", "5.9.10.20");
    let excerpt = dir.path().join("asn-excerpt.csv");
    asn_excerpt(&asn, &[CI_IP.parse().unwrap(), hetzner.parse().unwrap()], &excerpt);
    let logs = logs_dir(dir.path());
    let mut records = ci_calls(12);
    records.push(record("runner-2", "2024-05-01T11:00:00Z", CI_KEY, runner_2, CI_AGENT, "DescribeInstances"));
    records.push(record("copy", "2024-05-01T12:00:00Z", CI_KEY, hetzner, CI_AGENT, "DescribeInstances"));
    std::fs::write(logs.join("trail.jsonl"), lines_of(&records)).unwrap();
    let by_ip = |report: &Value, ip: &str| -> Vec<(String, String, Value)> {
        alerts(report)
            .iter()
            .filter(|a| a["source_ips"].as_array().unwrap().iter().any(|s| s == ip))
            .map(|a| {
                (a["kind"].as_str().unwrap().into(), a["severity"].as_str().unwrap().into(), a["networks"].clone())
            })
            .collect()
    };

    let (code, report, stderr) = detect_json(
        dir.path(),
        [OsStr::new("--ip-database"), country.as_os_str(), OsStr::new("--ip-database"), excerpt.as_os_str()]
            .into_iter()
            .chain([logs.as_os_str()]),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        kinds_of(&report, CI_KEY),
        set(&["new_country", "new_network", "new_source_ip"]),
        "{:#}",
        report["alerts"]
    );
    let network = find(&report, "new_network", CI_KEY);
    assert_eq!(network["source_ips"], json!([hetzner]));
    assert_eq!(network["networks"], json!(["AS24940"]));
    assert_eq!(network["severity"], "high", "a hosting provider: {network}");
    let explanation = network["explanation"].as_str().unwrap();
    assert!(explanation.contains("Hetzner") && explanation.contains("DE"), "{explanation}");
    let moved = find(&report, "new_country", CI_KEY);
    assert_eq!(moved["subject"], "DE");
    assert_eq!(moved["source_ips"], json!([hetzner]));
    assert!(moved["explanation"].as_str().unwrap().contains("knew only US"), "{moved}");
    // The second runner is in the baseline's AS: a new address, not a new network.
    assert_eq!(by_ip(&report, runner_2), [("new_source_ip".into(), "low".into(), json!(["AS14618"]))]);

    // Without databases the second runner's /24 is a network of its own, and no country is known.
    let (_, report, _) = detect_json(dir.path(), [&logs]);
    assert_eq!(by_ip(&report, runner_2), [("new_network".into(), "medium".into(), json!(["3.225.17.0/24"]))]);
    assert!(!kinds_of(&report, CI_KEY).contains("new_country"));

    // `[detect] ip_databases` (relative to the config file) with the runners' AS allowed.
    let config = dir.path().join("keywatch.toml");
    let text = format!(
        "[detect]\nip_databases = [{:?}, \"asn-excerpt.csv\"]\nallow_networks = [\"AS14618\"]\n",
        country.display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    let mut cmd = keywatch(&dir.path().join("data"));
    let (code, report, stderr) =
        run_json(cmd.arg("--config").arg(&config).args(["detect", "--format", "json"]).arg(&logs));
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(by_ip(&report, runner_2), []);
    assert_eq!(kinds_of(&report, CI_KEY), set(&["new_country", "new_network"]), "{:#}", report["alerts"]);
    assert_eq!(find(&report, "new_network", CI_KEY)["networks"], json!(["AS24940"]));
}

#[test]
fn detect_refuses_output_formats_it_does_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trail.jsonl");
    std::fs::write(&file, lines_of(&ci_calls(3))).unwrap();
    for format in ["sarif", "csv"] {
        let out = keywatch(&dir.path().join("data")).args(["detect", "--format", format]).arg(&file).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{format}");
        assert!(out.stdout.is_empty(), "{format}: {}", String::from_utf8_lossy(&out.stdout));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("--format {format} is not supported")), "{stderr}");
    }
    for format in ["human", "json", "jsonl"] {
        let out = keywatch(&dir.path().join("data")).args(["detect", "--format", format]).arg(&file).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
