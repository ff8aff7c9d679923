//! End-to-end tests of the inventory's relations (identities, owners, vendors) and of one AWS
//! access key reported by two exports, on a real SQLite file in a temp data directory.

use assert_cmd::Command;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

fn keywatch(data: &Path) -> Command {
    let mut cmd = Command::cargo_bin("keywatch").expect("binary builds");
    cmd.env_remove("KEYWATCH_CONFIG").env("KEYWATCH_DATA_DIR", data).env("NO_COLOR", "1");
    cmd
}

const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
const ACCOUNT: &str = "123456789012";
const KEY: &str = "AKIAIOSFODNN7EXAMPL1";
const SLOT: &str = "aws:arn:aws:iam::123456789012:user/ci-deployer#access_key_1";

/// A credential report where `ci-deployer`'s first key was made at `created` and last used
/// at `last_used`.
fn report(dir: &Path, name: &str, created: &str, last_used: &str) -> PathBuf {
    let path = dir.join(name);
    let row = format!(
        "ci-deployer,arn:aws:iam::{ACCOUNT}:user/ci-deployer,2021-06-01T12:00:00+00:00,false,N/A,N/A,N/A,false,true,{created},{last_used},us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
    );
    fs::write(&path, format!("{HEADER}\n{row}\n")).unwrap();
    path
}

/// `aws iam list-access-keys --user-name ci-deployer` with one key made at `created` (the
/// API's own format, which differs from the report's) and, if given, a second record.
fn list_access_keys(dir: &Path, name: &str, created: &str, second: Option<&str>) -> PathBuf {
    let path = dir.join(name);
    let first = format!(
        r#"{{"UserName": "ci-deployer", "AccessKeyId": "{KEY}", "Status": "Active", "CreateDate": "{created}"}}"#
    );
    let records = match second {
        Some(record) => format!("{first}, {record}"),
        None => first,
    };
    fs::write(&path, format!(r#"{{"AccessKeyMetadata": [{records}], "IsTruncated": false}}"#)).unwrap();
    path
}

fn json(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn list(data: &Path, args: &[&str]) -> Vec<Value> {
    let v = json(keywatch(data).args(["inventory", "list", "--format", "json"]).args(args));
    v["credentials"].as_array().unwrap().clone()
}

fn show(data: &Path, id: &str) -> Value {
    json(keywatch(data).args(["inventory", "show", id, "--format", "json"]))
}

#[test]
fn one_access_key_in_two_exports_is_one_credential_in_either_order() {
    let dir = tempfile::tempdir().unwrap();
    // CreateDate as the API prints it, with fractions and an offset; the report in UTC.
    let keys = list_access_keys(dir.path(), "keys.json", "2021-06-01T14:05:00.000+02:00", None);
    let report = report(dir.path(), "report.csv", "2021-06-01T12:05:00+00:00", "2024-02-10T08:00:00+00:00");
    let mut results = Vec::new();
    for (order, files) in [("report first", [&report, &keys]), ("keys first", [&keys, &report])] {
        let data = dir.path().join(order.replace(' ', "-"));
        for file in files {
            let out = keywatch(&data).args(["inventory", "import"]).arg(file).output().unwrap();
            assert!(out.status.success(), "{order}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let all = list(&data, &[]);
        assert_eq!(all.len(), 1, "{order}: {all:#?}");
        let key = &all[0];
        assert_eq!(key["external_id"], KEY, "{order}");
        assert_eq!(key["last_used"], "2024-02-10T08:00:00Z", "{order}: the report's last use");
        assert_eq!(key["fingerprint"], KEY, "{order}");

        let shown = show(&data, KEY);
        let history = shown["history"].as_array().unwrap();
        let merged: Vec<&Value> = history.iter().filter(|h| h["change"] == "merged").collect();
        assert_eq!(merged.len(), 1, "{order}: {history:#?}");
        assert_eq!(merged[0]["old"], SLOT.trim_start_matches("aws:"));
        assert_eq!(merged[0]["new"], KEY);
        assert_eq!(shown["merged"][0]["external_id"], SLOT.trim_start_matches("aws:"));
        assert_eq!(shown["merged"][0]["source"], "aws:credential-report");
        let identities: Vec<&str> =
            shown["identities"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(identities, ["user/ci-deployer", "arn:aws:iam::123456789012:user/ci-deployer"], "{order}");
        // The slot's name still finds the key.
        assert_eq!(show(&data, SLOT)["id"], shown["id"], "{order}");

        // Importing both again changes nothing.
        let out = keywatch(&data).args(["inventory", "import"]).arg(&report).arg(&keys).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.matches("0 new, 0 changed, 1 unchanged, 0 disappeared").count(), 2, "{order}: {stderr}");
        let mut key = list(&data, &[]).remove(0);
        for bookkeeping in ["id", "first_seen", "last_seen", "source"] {
            key[bookkeeping] = Value::Null;
        }
        results.push(key);
    }
    assert_eq!(results[0], results[1], "both orders give the same credential");
}

#[test]
fn a_broken_export_merges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let report = report(dir.path(), "report.csv", "2021-06-01T12:05:00+00:00", "2024-02-10T08:00:00+00:00");
    keywatch(&data).args(["inventory", "import"]).arg(&report).assert().success();
    let before = show(&data, SLOT);
    // The matching key comes first, the broken record second: the file is refused whole.
    let broken = r#"{"UserName": "ci-deployer", "AccessKeyId": "AKIAIOSFODNN7EXAMPL2", "Status": "Expired"}"#;
    let keys = list_access_keys(dir.path(), "keys.json", "2021-06-01T12:05:00Z", Some(broken));
    keywatch(&data).args(["inventory", "import"]).arg(&keys).assert().code(2);
    assert_eq!(show(&data, SLOT), before);
    assert_eq!(list(&data, &[]).len(), 1);
}

/// GitHub installations of Zapier's app and another one, and a fine-grained token whose name
/// says Snowflake.
fn github_exports(dir: &Path) -> (PathBuf, PathBuf) {
    let apps = dir.join("installations.json");
    fs::write(
        &apps,
        r#"{"total_count": 2, "installations": [
          {"id": 100, "account": {"login": "acme"}, "app_slug": "zapier", "repository_selection": "all",
           "permissions": {"contents": "read"}, "created_at": "2023-04-01T10:00:00Z", "suspended_at": null},
          {"id": 101, "account": {"login": "acme"}, "app_slug": "house-bot", "repository_selection": "all",
           "permissions": {"contents": "write"}, "created_at": "2023-04-01T10:00:00Z", "suspended_at": null}]}"#,
    )
    .unwrap();
    let pats = dir.join("pats.json");
    fs::write(
        &pats,
        r#"[{"id": 25381, "owner": {"login": "octocat", "id": 1}, "repository_selection": "all",
        "permissions": {"repository": {"contents": "write"}},
        "access_granted_at": "2023-05-16T08:47:09.000-07:00", "token_id": 98716, "token_name": "snowflake etl",
        "token_expired": false, "token_expires_at": "2023-11-16T08:47:09.000-07:00", "token_last_used_at": null}]"#,
    )
    .unwrap();
    (apps, pats)
}

#[test]
fn show_exposure_and_list_follow_identities_owners_and_vendors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (apps, pats) = github_exports(dir.path());
    keywatch(&data).args(["inventory", "import", "--owner", "acme"]).arg(&apps).arg(&pats).assert().success();

    let grant = show(&data, "github:installation/100/grant");
    assert_eq!(grant["identity"], "installation/100", "existing fields stay as they were");
    let identity = &grant["identities"][0];
    assert_eq!((identity["name"].as_str(), identity["kind"].as_str()), (Some("zapier"), Some("integration")));
    assert_eq!(identity["confidence"], 1.0);
    assert_eq!(identity["source"], "github:installations");
    assert_eq!(identity["vendors"][0]["vendor_id"], "zapier");
    assert_eq!(identity["vendors"][0]["name"], "Zapier");
    assert_eq!(identity["vendors"][0]["confidence"], 0.6, "Zapier's name in the app slug");
    assert!(identity["vendors"][0]["evidence"][0].as_str().unwrap().starts_with("through credential"), "{grant:#}");
    assert_eq!(grant["vendors"][0]["vendor_id"], "zapier");
    assert_eq!(grant["merged"], Value::Array(vec![]));

    let token = list(&data, &["--kind", "personal_access_token"]).remove(0);
    let token = show(&data, &token["id"].to_string());
    assert_eq!(token["owners"][0]["key"], "github:octocat");
    assert_eq!(token["identities"][0]["owners"][0]["key"], "github:octocat");
    let text = keywatch(&data)
        .args(["inventory", "show", "github:installation/100/grant", "--format", "human"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("identities:\n  github integration zapier (installation/100)"), "{text}");
    assert!(text.contains("held by vendor Zapier (zapier)  [0.60: through credential"), "{text}");

    // `vendor exposure` keeps its shape and adds the identities.
    let plain = json(keywatch(&data).args(["vendor", "exposure", "zapier", "--format", "json"]));
    assert!(plain.get("identities").is_none(), "the issue's shape unless --identities is asked");
    let exposure = json(keywatch(&data).args(["vendor", "exposure", "zapier", "--identities", "--format", "json"]));
    assert_eq!(exposure["credentials"].as_array().unwrap().len(), 1);
    assert_eq!(exposure["stats"]["count"], 1);
    let identities = exposure["identities"].as_array().unwrap();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0]["platform"], "github");
    assert_eq!(identities[0]["id"], "installation/100");
    assert_eq!(identities[0]["kind"], "integration");
    assert_eq!(identities[0]["confidence"], 0.6);

    // --vendor takes an id, a name or an alias in any case.
    let zapier: Vec<String> =
        list(&data, &["--vendor", "ZAPIER"]).iter().map(|c| c["external_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(zapier, ["installation/100/grant"]);
    assert_eq!(list(&data, &["--vendor", "Zapier Inc"]).len(), 1, "an alias");
    assert_eq!(list(&data, &["--vendor", "Snowflake", "--platform", "github"]).len(), 1);
    assert!(list(&data, &["--vendor", "datadog"]).is_empty());
    let out = keywatch(&data).args(["inventory", "list", "--vendor", "no-such-vendor"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no vendor \"no-such-vendor\"") && stderr.contains("keywatch vendor list"), "{stderr}");
    // A vendor of the user's own file is found too.
    let vendors = dir.path().join("vendors.toml");
    fs::write(&vendors, "[[vendor]]\nid = \"house-bot\"\nname = \"House Bot\"\ndomains = [\"house-bot.example\"]\n")
        .unwrap();
    keywatch(&data).args(["vendor", "relink", "--vendors"]).arg(&vendors).assert().success();
    let house: Vec<Value> = list(&data, &["--vendor", "house bot", "--vendors", vendors.to_str().unwrap()]);
    assert_eq!(house.len(), 1);
    assert_eq!(show(&data, "github:installation/101/grant")["identities"][0]["vendors"][0]["name"], "House Bot");

    // Unlinking the grant removes Zapier's hold on the identity; linking it to another
    // vendor makes that vendor hold it, confirmed.
    keywatch(&data).args(["vendor", "unlink", "zapier", "github:installation/100/grant"]).assert().success();
    let exposure = json(keywatch(&data).args(["vendor", "exposure", "zapier", "--identities", "--format", "json"]));
    assert_eq!(exposure["identities"], Value::Array(vec![]));
    keywatch(&data).args(["vendor", "link", "make", "github:installation/100/grant", "--by", "ana"]).assert().success();
    let grant = show(&data, "github:installation/100/grant");
    let held = &grant["identities"][0]["vendors"][0];
    assert_eq!((held["vendor_id"].as_str(), held["confidence"].as_f64()), (Some("make"), Some(1.0)));
    assert!(held["evidence"][1].as_str().unwrap().starts_with("confirmed by ana"), "{held:#}");
}
