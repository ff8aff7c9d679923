//! End-to-end `keywatch ingest`: events stored once, baselines carried from run to run, alerts
//! that grow instead of repeating, damaged lines, and `--follow` on a growing file and on
//! standard input. The store is checked by opening `<data-dir>/keywatch.db` afterwards.

use assert_cmd::Command;
use keywatch_store::Store;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn keywatch(data: &Path) -> Command {
    let mut cmd = Command::cargo_bin("keywatch").expect("binary builds");
    cmd.env_remove("KEYWATCH_CONFIG").env("KEYWATCH_DATA_DIR", data).env("NO_COLOR", "1");
    cmd
}

const CI_KEY: &str = "AKIAEXAMPLECIKEY0001";
const CI_IP: &str = "3.225.16.109";
const CI_AGENT: &str = "aws-cli/2.15.0 Python/3.11.6 Linux/6.1";
const BROWSER: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

fn record(id: &str, time: &str, ip: &str, ua: &str) -> Value {
    json!({"eventVersion": "1.08", "eventID": id, "eventTime": time, "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances", "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": ua,
        "readOnly": true, "eventType": "AwsApiCall", "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/ci-deployer",
            "accountId": "123456789012", "accessKeyId": CI_KEY, "userName": "ci-deployer"}})
}

/// The CI job's key, `n` calls a minute apart from its runner, from 10:00.
fn ci_calls(n: usize) -> Vec<Value> {
    (0..n).map(|i| record(&format!("ci-{i}"), &format!("2024-05-01T10:{i:02}:00Z"), CI_IP, CI_AGENT)).collect()
}

fn laptop(id: &str, time: &str) -> Value {
    record(id, time, "203.0.113.50", BROWSER)
}

fn lines_of(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// `keywatch ingest --format json ARGS...`: exit code and report.
fn ingest(data: &Path, args: &[&Path]) -> (Option<i32>, Value) {
    let out = keywatch(data).args(["ingest", "--format", "json"]).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{stderr}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), report)
}

fn kinds(alerts: &Value) -> BTreeSet<String> {
    alerts.as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap().to_string()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Rows of activity_event, activity_baseline and activity_alert in the data directory's store.
fn rows(data: &Path) -> (u64, u64, u64) {
    assert!(data.join(keywatch_store::DATABASE_FILE).is_file(), "no store in {}", data.display());
    let counts = Store::open_in(data).unwrap().activity_counts().unwrap();
    (counts.events, counts.baselines, counts.alerts)
}

/// Stored alerts by kind: (event count, evidence).
fn stored_alerts(data: &Path) -> Vec<(String, u64, Value)> {
    let mut alerts: Vec<(String, u64, Value)> = Store::open_in(data)
        .unwrap()
        .alerts()
        .unwrap()
        .into_iter()
        .map(|a| {
            let data: Value = serde_json::from_str(&a.data).unwrap();
            assert_eq!(data["kind"], a.kind.as_str());
            (a.kind, data["event_count"].as_u64().unwrap(), data["evidence"].clone())
        })
        .collect();
    alerts.sort_by(|a, b| a.0.cmp(&b.0));
    alerts
}

#[test]
fn ingest_stores_events_once_and_a_second_run_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut records = ci_calls(12);
    records.push(laptop("laptop-1", "2024-05-01T11:00:00Z"));
    // A record without an event id: stored once all the same (by a hash of its fields).
    let mut anonymous = record("", "2024-05-01T10:30:00Z", CI_IP, CI_AGENT);
    anonymous.as_object_mut().unwrap().remove("eventID");
    records.insert(12, anonymous);
    let file = dir.path().join("trail.jsonl");
    std::fs::write(&file, lines_of(&records)).unwrap();

    let (code, report) = ingest(&data, &[&file]);
    assert_eq!(code, Some(1), "{report:#}");
    let stats = &report["stats"];
    assert_eq!((stats["events"].as_u64(), stats["new_events"].as_u64()), (Some(14), Some(14)), "{stats}");
    assert_eq!(stats["duplicate_events"], 0);
    assert_eq!(stats["alerts_raised_or_grown"], 2);
    assert_eq!(stats["stored"], json!({"events": 14, "baselines": 1, "alerts": 2}));
    assert_eq!(kinds(&report["alerts"]), set(&["new_network", "new_user_agent"]));
    assert_eq!(rows(&data), (14, 1, 2));
    let before = stored_alerts(&data);
    assert_eq!(before[0], ("new_network".into(), 1, json!(["laptop-1"])));

    // The same file again, and the same events gzipped under another name: nothing is new.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(lines_of(&records).as_bytes()).unwrap();
    let copy = dir.path().join("trail-copy.jsonl.gz");
    std::fs::write(&copy, gz.finish().unwrap()).unwrap();
    for (again, files) in [("same file", vec![file.as_path()]), ("a copy", vec![copy.as_path()])] {
        let (code, report) = ingest(&data, &files);
        assert_eq!(code, Some(0), "{again}: {report:#}");
        let stats = &report["stats"];
        assert_eq!(stats["events"], 14, "{again}");
        assert_eq!(stats["new_events"], 0, "{again}");
        assert_eq!(stats["duplicate_events"], 14, "{again}");
        assert_eq!(stats["alerts_raised_or_grown"], 0, "{again}");
        assert_eq!(report["alerts"], json!([]), "{again}");
        assert_eq!(stats["stored"], json!({"events": 14, "baselines": 1, "alerts": 2}), "{again}");
        assert_eq!(rows(&data), (14, 1, 2), "{again}");
        assert_eq!(stored_alerts(&data), before, "{again}: alerts neither grown nor repeated");
    }
}

#[test]
fn ingest_carries_baselines_over_from_run_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let monday = dir.path().join("monday.jsonl");
    std::fs::write(&monday, lines_of(&ci_calls(12))).unwrap();
    let tuesday = dir.path().join("tuesday.jsonl");
    let later = [
        record("tue-1", "2024-05-02T10:00:00Z", CI_IP, CI_AGENT),
        record("tue-2", "2024-05-02T10:01:00Z", CI_IP, CI_AGENT),
        laptop("laptop-1", "2024-05-02T13:00:00Z"),
    ];
    std::fs::write(&tuesday, lines_of(&later)).unwrap();

    let (code, report) = ingest(&data, &[&monday]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["stats"]["stored"], json!({"events": 12, "baselines": 1, "alerts": 0}));

    // The laptop is new against Monday's baseline, read from the store.
    let (code, report) = ingest(&data, &[&tuesday]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["stats"]["new_events"], 3);
    assert_eq!(kinds(&report["alerts"]), set(&["new_network", "new_user_agent"]));
    for alert in report["alerts"].as_array().unwrap() {
        assert_eq!(alert["credential"], CI_KEY);
        assert_eq!(alert["source_ips"], json!(["203.0.113.50"]));
        assert_eq!(alert["evidence"], json!(["laptop-1"]));
        assert!(alert["explanation"].as_str().unwrap().contains("baseline of 10 events"), "{alert}");
    }
    assert_eq!(rows(&data), (15, 1, 2));

    // Tuesday alone, in a store of its own, is its own baseline: nothing to say.
    let fresh = dir.path().join("fresh");
    let (code, report) = ingest(&fresh, &[&tuesday]);
    assert_eq!((code, &report["alerts"]), (Some(0), &json!([])), "{report:#}");

    // The laptop again: the same two alerts grow, none is added.
    let wednesday = dir.path().join("wednesday.jsonl");
    std::fs::write(&wednesday, lines_of(&[laptop("laptop-2", "2024-05-03T09:00:00Z")])).unwrap();
    let (code, report) = ingest(&data, &[&wednesday]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["stats"]["alerts_raised_or_grown"], 2);
    for alert in report["alerts"].as_array().unwrap() {
        assert_eq!(alert["event_count"], 2, "{alert}");
        assert_eq!(alert["first_seen"], "2024-05-02T13:00:00Z");
        assert_eq!(alert["last_seen"], "2024-05-03T09:00:00Z");
    }
    assert_eq!(rows(&data), (16, 1, 2));
    assert_eq!(
        stored_alerts(&data),
        [
            ("new_network".into(), 2, json!(["laptop-1", "laptop-2"])),
            ("new_user_agent".into(), 2, json!(["laptop-1", "laptop-2"]))
        ]
    );
}

#[test]
fn ingest_reports_a_corrupt_line_and_stores_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut lines: Vec<String> = ci_calls(12).iter().map(Value::to_string).collect();
    lines[5] = lines[5][..lines[5].len() / 2].to_string();
    lines.push(laptop("laptop-1", "2024-05-01T11:00:00Z").to_string());
    let file = dir.path().join("trail.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let (code, report) = ingest(&data, &[&file]);
    assert_eq!(code, Some(1), "{report:#}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0]["file"].as_str().unwrap().ends_with("trail.jsonl"));
    assert_eq!(errors[0]["line"], 6);
    assert!(errors[0]["message"].as_str().unwrap().starts_with("invalid JSON"), "{errors:#?}");
    assert_eq!(report["stats"]["new_events"], 12);
    assert_eq!(kinds(&report["alerts"]), set(&["new_network", "new_user_agent"]));
    assert_eq!(rows(&data), (12, 1, 2));

    // Under --strict the same: stored, and exit 2.
    let mut more: Vec<String> = (0..3)
        .map(|i| record(&format!("ci-late-{i}"), &format!("2024-05-01T12:0{i}:00Z"), CI_IP, CI_AGENT).to_string())
        .collect();
    more.insert(1, "{\"eventVersion\": \"1.08\", \"eventTime\": ".into());
    let late = dir.path().join("late.jsonl");
    std::fs::write(&late, more.join("\n")).unwrap();
    let out = keywatch(&data).args(["ingest", "--strict", "--format", "jsonl"]).arg(&late).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("late.jsonl:2 (record 2): invalid JSON"), "{stderr}");
    assert!(stderr.contains("3 events read, 3 new"), "{stderr}");
    assert_eq!(rows(&data), (15, 1, 2));

    // Standard input is for --follow; SARIF is for scan.
    let out = keywatch(&data).args(["ingest", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--follow"));
    let out = keywatch(&data).args(["ingest", "--format", "sarif"]).arg(&late).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format sarif is not supported"));
}

/// Lines of a child's standard output, as they come.
fn lines_in_background(stdout: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Alerts read from `rx` until one of `kind` comes, for at most `limit`.
fn wait_for(rx: &mpsc::Receiver<String>, kind: &str, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let alert: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                let done = alert["kind"] == kind;
                seen.push(alert);
                if done {
                    return seen;
                }
            }
            Err(_) => break,
        }
    }
    panic!("no {kind} alert within {limit:?}; saw {seen:#?}");
}

/// Kills the child when the test ends, pass or fail.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ingest_follow_reports_alerts_as_lines_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("trail.jsonl");
    std::fs::write(&file, lines_of(&ci_calls(12))).unwrap();

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("keywatch"))
        .env_remove("KEYWATCH_CONFIG")
        .env("KEYWATCH_DATA_DIR", &data)
        .env("NO_COLOR", "1")
        .args(["ingest", "--follow"])
        .arg(&file)
        .args(["--format", "jsonl"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = lines_in_background(child.stdout.take().unwrap());
    let mut child = Killed(child);

    // The baseline alone raises nothing.
    match rx.recv_timeout(Duration::from_millis(1500)) {
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        other => panic!("nothing expected yet, got {other:?}"),
    }
    assert!(child.0.try_wait().unwrap().is_none(), "--follow keeps running");

    // The attacker's call, appended in two writes (a line half written, then the rest).
    let attack = format!("{}\n", laptop("laptop-1", "2024-05-01T11:00:00Z"));
    let (head, tail) = attack.split_at(attack.len() / 2);
    let mut append = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
    append.write_all(head.as_bytes()).unwrap();
    append.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    append.write_all(tail.as_bytes()).unwrap();
    append.flush().unwrap();
    let seen = wait_for(&rx, "new_network", Duration::from_secs(30));
    let network = seen.last().unwrap();
    assert_eq!(network["credential"], CI_KEY);
    assert_eq!(network["source_ips"], json!(["203.0.113.50"]));
    assert_eq!(network["evidence"], json!(["laptop-1"]));

    // Rotated: a new, shorter file under the name is read from its start.
    std::fs::write(&file, lines_of(&[record("after-rotation", "2024-05-01T12:00:00Z", "198.51.100.99", CI_AGENT)]))
        .unwrap();
    let seen = wait_for(&rx, "new_network", Duration::from_secs(30));
    assert_eq!(seen.last().unwrap()["source_ips"], json!(["198.51.100.99"]));

    drop(child);
    let (events, baselines, alerts) = rows(&data);
    assert_eq!((events, baselines), (14, 1));
    assert!(alerts >= 3, "{alerts} alerts stored");
    let stored: BTreeSet<String> = stored_alerts(&data).into_iter().map(|a| a.0).collect();
    assert!(stored.contains("new_network") && stored.contains("new_user_agent"), "{stored:?}");
}

#[test]
fn ingest_follow_reads_standard_input_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut lines: Vec<String> = ci_calls(12).iter().map(Value::to_string).collect();
    lines.insert(4, "{\"eventVersion\": \"1.08\", \"eventTime\": ".into());
    lines.push(laptop("laptop-1", "2024-05-01T11:00:00Z").to_string());
    let input = lines.join("\n") + "\n";

    // `--format json` streams as JSON lines when following.
    let out = keywatch(&data)
        .args(["ingest", "--follow", "-", "--format", "json"])
        .write_stdin(input.clone())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exits by itself at the end of its input, with alerts: {stderr}");
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let kinds: BTreeSet<String> = alerts.iter().map(|a| a["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, set(&["new_network", "new_user_agent"]), "{alerts:#?}");
    assert!(alerts.iter().all(|a| a["evidence"] == json!(["laptop-1"])), "{alerts:#?}");
    assert!(stderr.contains("<stdin>:5 (record 5): invalid JSON"), "{stderr}");
    assert!(stderr.contains("14 lines read; 1 unreadable records"), "{stderr}");
    assert_eq!(rows(&data), (13, 1, 2));

    // The same input again: nothing new, nothing to report; --strict makes the bad line count.
    let out = keywatch(&data).args(["ingest", "--follow", "-"]).write_stdin(input.clone()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    let out = keywatch(&data).args(["ingest", "--follow", "--strict", "-"]).write_stdin(input).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(rows(&data), (13, 1, 2));
}

#[test]
fn ingest_follow_reports_alerts_while_standard_input_stays_open() {
    // `tail -F audit.log | keywatch ingest --follow -`: the pipe stays open and quiet after the
    // attacker's call; its alert must come out all the same.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("keywatch"))
        .env_remove("KEYWATCH_CONFIG")
        .env("KEYWATCH_DATA_DIR", &data)
        .env("NO_COLOR", "1")
        .args(["ingest", "--follow", "-", "--format", "jsonl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let rx = lines_in_background(child.stdout.take().unwrap());
    let mut child = Killed(child);
    let mut records = ci_calls(12);
    records.push(laptop("laptop-1", "2024-05-01T11:00:00Z"));
    stdin.write_all(lines_of(&records).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let seen = wait_for(&rx, "new_network", Duration::from_secs(30));
    assert_eq!(seen.last().unwrap()["evidence"], json!(["laptop-1"]));
    assert!(child.0.try_wait().unwrap().is_none(), "still following");
    // Closing the pipe ends it.
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after its input ended");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1));
    assert_eq!(rows(&data), (13, 1, 2));
}

#[test]
fn ingest_follow_reads_the_last_line_of_standard_input_without_a_newline() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut records = ci_calls(12);
    records.push(laptop("laptop-1", "2024-05-01T11:00:00Z"));
    let input = lines_of(&records).trim_end().to_string();
    let out = keywatch(&data)
        .args(["ingest", "--follow", "-", "--format", "jsonl"])
        .write_stdin(input)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("13 lines read"), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    assert_eq!(rows(&data), (13, 1, 2));
}

/// Alerts printed while following also name the inventory's record of the key.
#[test]
fn ingest_follow_alerts_name_the_inventory_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let keys = dir.path().join("list-access-keys.json");
    let export = json!({"AccessKeyMetadata": [{"UserName": "ci-deployer", "AccessKeyId": CI_KEY,
        "Status": "Active", "CreateDate": "2023-06-01T12:05:00Z"}], "IsTruncated": false});
    std::fs::write(&keys, export.to_string()).unwrap();
    let imported = keywatch(&data).args(["inventory", "import"]).arg(&keys).output().unwrap();
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));

    let mut records = ci_calls(12);
    records.push(laptop("laptop-1", "2024-05-01T11:00:00Z"));
    let out = keywatch(&data)
        .args(["ingest", "--follow", "-", "--format", "jsonl"])
        .write_stdin(lines_of(&records))
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let alerts: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!alerts.is_empty());
    for alert in &alerts {
        assert_eq!(alert["inventory"]["platform"], "aws", "{alert:#}");
        assert_eq!(alert["inventory"]["status"], "active", "{alert:#}");
    }
}
