//! End-to-end `keywatch detect` on CloudTrail files the test writes: an S3 delivery file
//! (gzip), JSON lines with a broken line, a key the inventory knows was deleted, and
//! `--revoked`.

use assert_cmd::Command;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

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
