//! End-to-end tests of `keywatch inventory import/list/show` on a real SQLite file in a temp
//! data directory, with exports shaped like the platforms' documented responses.

use assert_cmd::Command;
use serde_json::Value;
use std::fs;
use std::path::Path;

fn keywatch(data: &Path) -> Command {
    let mut cmd = Command::cargo_bin("keywatch").expect("binary builds");
    cmd.env_remove("KEYWATCH_CONFIG").env("KEYWATCH_DATA_DIR", data).env("NO_COLOR", "1");
    cmd
}

const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

fn report_row(user: &str, active: bool, last_used: &str) -> String {
    format!(
        "{user},arn:aws:iam::123456789012:user/{user},2021-06-01T12:00:00+00:00,false,N/A,N/A,N/A,false,{active},2021-06-01T12:05:00+00:00,{last_used},us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
    )
}

fn installations(slugs: &[(&str, &str)]) -> String {
    let items: Vec<String> = slugs
        .iter()
        .enumerate()
        .map(|(i, (slug, perms))| {
            format!(
                r#"{{"id": {}, "account": {{"login": "acme"}}, "app_slug": "{slug}", "repository_selection": "all",
                "permissions": {perms}, "created_at": "2023-04-01T10:00:00Z", "suspended_at": null}}"#,
                100 + i
            )
        })
        .collect();
    format!(r#"{{"total_count": {}, "installations": [{}]}}"#, slugs.len(), items.join(","))
}

fn list_json(data: &Path, args: &[&str]) -> Vec<Value> {
    let out = keywatch(data).args(["inventory", "list", "--format", "json"]).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["credentials"].as_array().unwrap().clone()
}

#[test]
fn import_list_show_and_history_across_imports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let report1 = dir.path().join("report-1.csv");
    fs::write(
        &report1,
        format!(
            "{HEADER}\n{}\n{}\n",
            report_row("ci-deployer", true, "2024-02-10T08:00:00+00:00"),
            report_row("snowflake-etl", true, "N/A")
        ),
    )
    .unwrap();
    let apps = dir.path().join("installations.json");
    fs::write(&apps, installations(&[("zapier", r#"{"contents": "read"}"#), ("moveworks", r#"{"members": "write"}"#)]))
        .unwrap();

    let out = keywatch(&data).args(["inventory", "import"]).arg(&report1).arg(&apps).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("recognised as AWS IAM credential report (CSV)"), "{stderr}");
    assert!(stderr.contains("recognised as GitHub GET /orgs/{org}/installations"), "{stderr}");
    assert!(stderr.contains("2 credentials: 2 new"), "{stderr}");
    assert!(data.join("keywatch.db").exists());

    let all = list_json(&data, &[]);
    assert_eq!(all.len(), 4);
    // Active admin first: the installation that can manage members.
    assert_eq!(all[0]["name"], "moveworks app installation");
    assert_eq!(all[0]["privilege"], "admin");
    let github = list_json(&data, &["--platform", "github", "--privilege", "read"]);
    assert_eq!(github.len(), 1);
    assert_eq!(github[0]["identity_name"], "zapier");

    // Unused for 30 days as of March 2024: the key never used and the ones not used since
    // February 10th are not; installations have no last use, so they count as unused.
    let unused = list_json(&data, &["--platform", "aws", "--unused-days", "30", "--as-of", "2024-03-01T00:00:00Z"]);
    let names: Vec<&str> = unused.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["snowflake-etl access_key_1"]);

    // The next report: ci-deployer's key was used again, snowflake-etl's key is gone.
    let report2 = dir.path().join("report-2.csv");
    fs::write(&report2, format!("{HEADER}\n{}\n", report_row("ci-deployer", true, "2024-03-05T09:00:00Z"))).unwrap();
    let out = keywatch(&data).args(["inventory", "import"]).arg(&report2).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 new, 1 changed, 0 unchanged, 1 disappeared"), "{stderr}");
    let deleted = list_json(&data, &["--status", "deleted"]);
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["name"], "snowflake-etl access_key_1");
    assert!(deleted[0]["deleted_at"].is_string());
    assert_eq!(list_json(&data, &[]).len(), 3, "deleted credentials are not listed by default");

    let out = keywatch(&data)
        .args(["inventory", "show", "aws:arn:aws:iam::123456789012:user/ci-deployer#access_key_1", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history[0]["change"], "new");
    assert_eq!(history[1]["field"], "last_used");
    assert_eq!(history[1]["old"], "2024-02-10T08:00:00Z");
    assert_eq!(history[1]["new"], "2024-03-05T09:00:00Z");
    let human =
        keywatch(&data).args(["inventory", "show", &shown["id"].to_string(), "--format", "human"]).output().unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("last_used: 2024-02-10T08:00:00Z -> 2024-03-05T09:00:00Z"), "{text}");

    let csv = keywatch(&data).args(["inventory", "list", "--format", "csv"]).output().unwrap();
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(csv.starts_with("id,platform,kind,external_id,"), "{csv}");
    assert_eq!(csv.lines().count(), 4);
}

#[test]
fn a_bad_file_is_reported_and_the_rest_imported_and_nothing_half_stored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = dir.path().join("good.json");
    fs::write(&good, installations(&[("zapier", r#"{"contents": "read"}"#)])).unwrap();
    keywatch(&data).args(["inventory", "import"]).arg(&good).assert().success();
    let before = list_json(&data, &[]);

    // The second record is broken: the whole file is refused, the first record not stored.
    let broken = dir.path().join("broken.json");
    let text = installations(&[("snowflake", r#"{"contents": "read"}"#), ("x", r#"{"contents": "sometimes"}"#)]);
    fs::write(&broken, text).unwrap();
    let unknown = dir.path().join("unknown.json");
    fs::write(&unknown, r#"{"users": [{"id": 1}]}"#).unwrap();
    let truncated = dir.path().join("truncated.json");
    fs::write(&truncated, r#"{"installations": [{"id": 1,"#).unwrap();

    let out = keywatch(&data)
        .args(["inventory", "import"])
        .arg(&broken)
        .arg(&unknown)
        .arg(&truncated)
        .arg(&good)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "one good file among bad ones exits 0: {stderr}");
    assert!(stderr.contains("broken.json") && stderr.contains("record 2") && stderr.contains("sometimes"), "{stderr}");
    assert!(stderr.contains("unknown.json") && stderr.contains("no known endpoint"), "{stderr}");
    assert!(stderr.contains("truncated.json") && stderr.contains("invalid JSON"), "{stderr}");
    let after = list_json(&data, &[]);
    let strip = |v: &[Value]| -> Vec<Value> {
        v.iter()
            .map(|c| {
                let mut c = c.clone();
                c["last_seen"] = Value::Null;
                c
            })
            .collect()
    };
    assert_eq!(strip(&after), strip(&before), "no record of the broken file was stored");

    keywatch(&data).args(["inventory", "import"]).arg(&broken).assert().code(2);
    keywatch(&data).args(["inventory", "import", "--strict"]).arg(&broken).arg(&good).assert().code(2);
}

#[test]
fn listing_without_an_inventory_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = keywatch(dir.path()).args(["inventory", "list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keywatch inventory import"));
    assert!(!dir.path().join("keywatch.db").exists(), "listing must not create a store");
}

#[test]
fn vendor_exposure_finds_what_a_vendor_holds_on_every_platform() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let report = dir.path().join("report.csv");
    fs::write(
        &report,
        format!(
            "{HEADER}\n{}\n{}\n",
            report_row("moveworks-sync", true, "2024-02-10T08:00:00+00:00"),
            report_row("ci-deployer", true, "2024-02-11T08:00:00+00:00")
        ),
    )
    .unwrap();
    let apps = dir.path().join("installations.json");
    fs::write(&apps, installations(&[("moveworks", r#"{"members": "write"}"#), ("zapier", r#"{"contents": "read"}"#)]))
        .unwrap();
    keywatch(&data).args(["inventory", "import"]).arg(&report).arg(&apps).assert().success();

    let out = keywatch(&data).args(["vendor", "exposure", "MOVEWORKS", "--format", "json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "found something: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["vendor"], "Moveworks");
    let creds = v["credentials"].as_array().unwrap();
    let platforms: Vec<&str> = creds.iter().map(|c| c["platform"].as_str().unwrap()).collect();
    assert_eq!(platforms, ["github", "aws"], "admin installation first, then the AWS key: {creds:#?}");
    for c in creds {
        assert!(c["confidence"].as_f64().unwrap() > 0.5);
        assert!(c["evidence"][0].as_str().unwrap().to_lowercase().contains("moveworks"), "{c}");
    }
    assert_eq!(creds[1]["identity"], "moveworks-sync");

    let out = keywatch(&data).args(["vendor", "exposure", "no-such-vendor"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keywatch vendor list"));

    let list = keywatch(&data).args(["vendor", "list", "--format", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(v["stats"]["count"].as_u64().unwrap() >= 150);
}

#[test]
fn links_are_stored_at_import_and_relinked_with_a_users_vendor_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let apps = dir.path().join("installations.json");
    fs::write(&apps, installations(&[("acme-sync-bot", r#"{"contents": "write"}"#)])).unwrap();
    keywatch(&data).args(["inventory", "import"]).arg(&apps).assert().success();
    let vendors = dir.path().join("vendors.toml");
    fs::write(&vendors, "[[vendor]]\nid = \"acme-sync\"\nname = \"Acme Sync\"\ndomains = [\"acme-sync.example\"]\n")
        .unwrap();

    // Not in the built-in catalogue: nothing was linked at import.
    let out = keywatch(&data)
        .args(["vendor", "exposure", "acme sync", "--format", "json"])
        .arg("--vendors")
        .arg(&vendors)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    keywatch(&data).args(["vendor", "relink", "--vendors"]).arg(&vendors).assert().success();
    let out = keywatch(&data)
        .args(["vendor", "exposure", "Acme Sync", "--format", "json"])
        .arg("--vendors")
        .arg(&vendors)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["credentials"][0]["identity"], "acme-sync-bot");
    assert_eq!(v["credentials"][0]["privilege"], "write");

    // A broken vendor file is an error naming it, and the store is untouched.
    fs::write(&vendors, "[[vendor]]\nid = \"Bad Id\"\n").unwrap();
    let out = keywatch(&data).args(["vendor", "relink", "--vendors"]).arg(&vendors).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vendors.toml"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn link_and_unlink_decisions_survive_later_imports() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let apps = dir.path().join("installations.json");
    fs::write(&apps, installations(&[("zapier-legacy", r#"{"contents": "write"}"#)])).unwrap();
    let report = dir.path().join("report.csv");
    fs::write(&report, format!("{HEADER}\n{}\n", report_row("etl-runner", true, "2024-02-10T08:00:00+00:00"))).unwrap();
    keywatch(&data).args(["inventory", "import"]).arg(&apps).arg(&report).assert().success();
    let exposure = |vendor: &str| -> Vec<Value> {
        let out = keywatch(&data).args(["vendor", "exposure", vendor, "--format", "json"]).output().unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["credentials"].as_array().unwrap().clone()
    };
    assert_eq!(exposure("zapier").len(), 1);
    assert!(exposure("snowflake").is_empty());

    // The installation turns out not to be Zapier's; the AWS key is Snowflake's.
    keywatch(&data)
        .args(["vendor", "unlink", "zapier", "github:installation/100/grant", "--by", "ana"])
        .assert()
        .success();
    let key = "aws:arn:aws:iam::123456789012:user/etl-runner#access_key_1";
    keywatch(&data).args(["vendor", "link", "Snowflake", key, "--by", "ana"]).assert().success();
    for round in 0..2 {
        assert!(exposure("zapier").is_empty(), "round {round}");
        let held = exposure("snowflake");
        assert_eq!(held.len(), 1, "round {round}");
        assert_eq!(held[0]["confidence"], 1.0);
        assert!(held[0]["evidence"][0].as_str().unwrap().starts_with("confirmed by ana at "), "{held:?}");
        // Importing the same files again, and relinking, must not undo either decision.
        keywatch(&data).args(["inventory", "import"]).arg(&apps).arg(&report).assert().success();
        keywatch(&data).args(["vendor", "relink"]).assert().success();
    }
    let out = keywatch(&data).args(["vendor", "link", "snowflake", "no-such-credential"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_role_trusting_a_known_vendor_account_is_that_vendors_exposure() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let roles = dir.path().join("roles.json");
    fs::write(
        &roles,
        r#"{"Roles": [{"RoleName": "DatadogIntegrationRole", "Arn": "arn:aws:iam::123456789012:role/DatadogIntegrationRole",
            "CreateDate": "2022-03-01T10:00:00Z", "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::464622532012:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": "abc"}}}]}}]}"#,
    )
    .unwrap();
    keywatch(&data).args(["inventory", "import"]).arg(&roles).assert().success();
    let out = keywatch(&data).args(["vendor", "exposure", "datadog", "--format", "json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let creds = v["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 1, "{v:#}");
    assert_eq!(creds[0]["kind"], "role_trust");
    assert_eq!(creds[0]["confidence"], 0.9);
    assert!(creds[0]["evidence"][0].as_str().unwrap().contains("464622532012"), "{v:#}");
}
