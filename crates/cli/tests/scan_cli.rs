//! End-to-end tests of `keywatch scan` on real files, archives and git repositories made in
//! temporary directories.

use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::Path;

/// A GitHub classic token with a correct CRC32 checksum, derived from `seed`.
fn github_token(seed: &str) -> String {
    let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = Sha256::digest(seed.as_bytes());
    let random: String = digest.iter().cycle().take(30).map(|b| alphabet[(*b % 62) as usize] as char).collect();
    let checksum = keywatch_scan::validate::base62(crc32fast_hash(random.as_bytes()) as u64, 6);
    format!("ghp_{random}{checksum}")
}

fn crc32fast_hash(data: &[u8]) -> u32 {
    // The IEEE CRC32 GitHub uses, written out so the test does not trust the code under test.
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// An AWS access key id made of a seed (base32 alphabet, no EXAMPLE).
fn aws_key_id(seed: &str) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = Sha256::digest(seed.as_bytes());
    let body: String = digest.iter().take(16).map(|b| alphabet[(*b % 32) as usize] as char).collect();
    format!("AKIA{body}")
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn keywatch() -> Command {
    let mut cmd = Command::cargo_bin("keywatch").expect("binary builds");
    cmd.env_remove("KEYWATCH_CONFIG").env_remove("KEYWATCH_DATA_DIR").env("NO_COLOR", "1");
    cmd
}

struct Run {
    code: i32,
    json: Value,
    stdout: String,
    stderr: String,
}

fn scan_json(args: &[&str], dir: &Path) -> Run {
    let out = keywatch().current_dir(dir).arg("scan").args(args).arg("--format").arg("json").output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        json,
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn findings(run: &Run) -> &Vec<Value> {
    run.json["findings"].as_array().expect("findings list")
}

fn finding_for<'a>(run: &'a Run, secret: &str) -> Vec<&'a Value> {
    let sha = sha256_hex(secret);
    findings(run).iter().filter(|f| f["secret_sha256"] == sha.as_str()).collect()
}

fn write(dir: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

#[test]
fn finds_secrets_redacts_them_and_sets_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token("one");
    let key = aws_key_id("one");
    write(dir.path(), "app/.env", format!("# deploy settings\nGITHUB_TOKEN={token}\nAWS_ACCESS_KEY_ID={key}\n"));
    write(dir.path(), "app/copy.yaml", format!("github:\n  token: \"{token}\"\n"));
    write(dir.path(), "README.md", "Nothing to see here.\n");

    let run = scan_json(&["."], dir.path());
    assert_eq!(run.code, 1, "secrets found means exit 1; stderr: {}", run.stderr);
    let gh = finding_for(&run, &token);
    assert_eq!(gh.len(), 2, "one token, two places: {}", run.stdout);
    let env = gh.iter().find(|f| f["path"] == "app/.env").expect("found in .env");
    assert_eq!(env["line"], 2);
    assert_eq!(env["column"], 14);
    assert_eq!(env["provider"], "GitHub");
    assert_eq!(env["validation"], "checksum_valid");
    assert_eq!(env["redacted"].as_str().unwrap(), format!("ghp_***{}", &token[token.len() - 2..]));
    assert!(env["fingerprint"].as_str().unwrap().len() >= 32);
    assert_ne!(gh[0]["fingerprint"], gh[1]["fingerprint"], "fingerprints include the location");
    assert_eq!(finding_for(&run, &key).len(), 1);
    // The full secret never appears anywhere in the default output.
    assert!(!run.stdout.contains(&token) && !run.stdout.contains(&key));
    assert_eq!(run.json["stats"]["files"], 3);
    assert!(run.json["stats"]["seconds"].as_f64().is_some());

    // --show-secrets is the explicit way to see them.
    let shown = scan_json(&[".", "--show-secrets"], dir.path());
    assert!(shown.stdout.contains(&token));

    // Clean input: exit 0. Missing input: exit 2.
    let clean = tempfile::tempdir().unwrap();
    write(clean.path(), "a.txt", "hello\n");
    assert_eq!(scan_json(&["."], clean.path()).code, 0);
    let missing = scan_json(&["does-not-exist"], clean.path());
    assert_eq!(missing.code, 2);
    assert!(missing.json["errors"][0]["path"].as_str().unwrap().contains("does-not-exist"));
    // Usage errors exit 2 as well.
    let usage = keywatch().args(["scan", "--format", "nope"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn human_output_groups_one_secret_and_hides_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token("human");
    write(dir.path(), "a.env", format!("TOKEN={token}\n"));
    write(dir.path(), "b.env", format!("OTHER={token}\n"));
    let out = keywatch().current_dir(dir.path()).args(["scan", ".", "--format", "human"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(&token));
    assert_eq!(text.matches("GitHub personal access token").count(), 1, "{text}");
    assert!(text.contains("a.env:1:7") && text.contains("b.env:1:7"), "{text}");
    assert!(text.contains("1 secret in 2 places"), "{text}");
    assert!(!text.contains("\x1b["), "no colour when piped or NO_COLOR");
    let quiet = keywatch().current_dir(dir.path()).args(["-q", "scan", ".", "--format", "human"]).output().unwrap();
    let quiet = String::from_utf8(quiet.stdout).unwrap();
    assert!(quiet.contains("a.env:1:7") && !quiet.contains("places"), "-q drops the summary: {quiet}");
}

#[test]
fn checksum_failures_are_dropped_unless_kept() {
    let dir = tempfile::tempdir().unwrap();
    let good = github_token("good");
    let mut bad = github_token("bad");
    bad.replace_range(bad.len() - 6.., "AAAAAA");
    write(dir.path(), "t.env", format!("A={good}\nB={bad}\n"));
    let run = scan_json(&["."], dir.path());
    assert_eq!(finding_for(&run, &good).len(), 1);
    assert!(finding_for(&run, &bad).is_empty(), "bad checksum dropped");
    let kept = scan_json(&[".", "--keep-invalid"], dir.path());
    assert_eq!(finding_for(&kept, &bad)[0]["validation"], "checksum_invalid");
}

#[test]
fn placeholders_examples_and_allow_comments_are_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token("allowed");
    write(
        dir.path(),
        "settings.py",
        format!(
            "AWS_ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE'\n\
             password = \"${{DB_PASSWORD}}\"\n\
             api_key = \"<your-api-key>\"\n\
             secret = \"{{{{ vault_secret }}}}\"\n\
             token = os.environ[\"TOKEN\"]\n\
             password = \"changeme\"\n\
             TEST_TOKEN = \"{token}\"  # keywatch:allow\n"
        ),
    );
    let run = scan_json(&["."], dir.path());
    assert_eq!(run.code, 0, "nothing real here: {}", run.stdout);
}

#[test]
fn gitignore_exclude_and_no_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let t1 = github_token("ignored");
    let t2 = github_token("excluded");
    let t3 = github_token("kept");
    write(dir.path(), ".gitignore", "build/\n");
    write(dir.path(), "build/out.env", format!("T={t1}\n"));
    write(dir.path(), "vendor/lib/x.env", format!("T={t2}\n"));
    write(dir.path(), "src/main.env", format!("T={t3}\n"));
    let run = scan_json(&[".", "--exclude", "vendor"], dir.path());
    assert!(finding_for(&run, &t1).is_empty(), ".gitignore honoured");
    assert!(finding_for(&run, &t2).is_empty(), "--exclude honoured");
    assert_eq!(finding_for(&run, &t3).len(), 1);
    let all = scan_json(&[".", "--no-ignore"], dir.path());
    assert_eq!(finding_for(&all, &t1).len(), 1, "--no-ignore scans ignored files");
    assert_eq!(finding_for(&all, &t2).len(), 1);
}

#[test]
fn binary_utf16_and_invalid_utf8_files() {
    let dir = tempfile::tempdir().unwrap();
    let t_bin = github_token("binary");
    let t_utf16 = github_token("utf16");
    let t_latin = github_token("latin1");
    let mut binary = vec![0u8, 1, 2, 3, 0, 0, 0x7f, b'E', b'L', b'F'];
    binary.extend_from_slice(format!("T={t_bin}").as_bytes());
    write(dir.path(), "tool.bin", binary);
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(format!("line one\r\nTOKEN={t_utf16}\r\n").encode_utf16().flat_map(|u| u.to_le_bytes()))
        .collect();
    write(dir.path(), "win.txt", utf16);
    let mut latin = b"caf\xe9 \xff\xfe broken utf-8\n".to_vec();
    latin.extend_from_slice(format!("T={t_latin}\n").as_bytes());
    write(dir.path(), "latin.txt", latin);
    let mut bad16 = vec![0xFF, 0xFE];
    bad16.extend(
        "a=1\n".encode_utf16().flat_map(|u| u.to_le_bytes()).chain([0x00, 0xD8, b'x', 0]), // lone high surrogate
    );
    write(dir.path(), "bad16.txt", bad16);

    let run = scan_json(&["."], dir.path());
    assert!(finding_for(&run, &t_bin).is_empty(), "binary skipped");
    assert!(run.json["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["path"] == "tool.bin" && s["reason"] == "binary file"));
    let f = finding_for(&run, &t_utf16);
    assert_eq!(f.len(), 1, "UTF-16 decoded: {}", run.stdout);
    assert_eq!(f[0]["line"], 2);
    assert_eq!(finding_for(&run, &t_latin)[0]["line"], 2);
    let err =
        run.json["errors"].as_array().unwrap().iter().find(|e| e["path"] == "bad16.txt").expect("bad UTF-16 reported");
    assert!(err["message"].as_str().unwrap().contains("UTF-16"));
    assert_eq!(run.code, 1, "a bad file does not change the exit code");
    assert_eq!(scan_json(&[".", "--strict"], dir.path()).code, 2, "--strict does");
}

#[test]
fn oversized_files_are_skipped_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token("big");
    let path = dir.path().join("huge.log");
    let mut f = fs::File::create(&path).unwrap();
    writeln!(f, "T={token}").unwrap();
    f.set_len(1 << 30).unwrap(); // 1 GiB, sparse
    drop(f);
    write(dir.path(), "small.env", format!("T={token}\n"));
    let run = scan_json(&["."], dir.path());
    let skipped = run.json["skipped"].as_array().unwrap();
    assert!(skipped
        .iter()
        .any(|s| s["path"] == "huge.log" && s["reason"].as_str().unwrap().contains("--max-file-size")));
    assert_eq!(finding_for(&run, &token).len(), 1);
    let small_limit = scan_json(&[".", "--max-file-size", "10"], dir.path());
    assert_eq!(small_limit.code, 0);
}

#[test]
fn stdin_is_scanned() {
    let token = github_token("stdin");
    let out = keywatch()
        .args(["scan", "-", "--format", "json"])
        .write_stdin(format!("first\nexport GH={token}\n"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["findings"][0]["path"], "<stdin>");
    assert_eq!(json["findings"][0]["line"], 2);
}

#[test]
fn baseline_suppresses_known_findings() {
    let dir = tempfile::tempdir().unwrap();
    let old = github_token("old");
    write(dir.path(), "a.env", format!("T={old}\n"));
    let report = dir.path().join("baseline.json");
    let first = keywatch()
        .current_dir(dir.path())
        .args(["scan", "a.env", "--format", "json", "--output"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(1));
    assert!(first.stdout.is_empty(), "--output writes the file, not stdout");
    let again = scan_json(&["a.env", "--baseline", report.to_str().unwrap()], dir.path());
    assert_eq!(again.code, 0);
    assert_eq!(again.json["stats"]["suppressed"], 1);
    let new = github_token("new");
    write(dir.path(), "a.env", format!("T={old}\nU={new}\n"));
    let third = scan_json(&["a.env", "--baseline", report.to_str().unwrap()], dir.path());
    assert_eq!(findings(&third).len(), 1);
    assert_eq!(finding_for(&third, &new).len(), 1);
    // A baseline that is not a report is a usage error.
    write(dir.path(), "junk.json", "{\"nope\": 1}");
    assert_eq!(scan_json_code(&["a.env", "--baseline", "junk.json"], dir.path()), 2);
}

fn scan_json_code(args: &[&str], dir: &Path) -> i32 {
    keywatch().current_dir(dir).arg("scan").args(args).output().unwrap().status.code().unwrap()
}

#[test]
fn gitleaks_config_rules_work() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "gitleaks.toml",
        r#"
title = "team rules"
[extend]
useDefault = true

[[rules]]
id = "acme-internal-token"
description = "ACME internal API token"
regex = '''acme_(?:live|test)_([a-z0-9]{24})'''
secretGroup = 1
entropy = 3.0
keywords = ["acme_"]
[rules.allowlist]
stopwords = ["dontcare"]

[allowlist]
paths = ['''fixtures/''']
"#,
    );
    write(
        dir.path(),
        "src/client.go",
        "var tok = \"acme_live_q7x2k9m4p1z8w3v6b5n0c4d7\"\nvar other = \"acme_live_dontcare00000000000000000\"\n",
    );
    write(dir.path(), "fixtures/sample.go", "var tok = \"acme_live_a1b2c3d4e5f6g7h8i9j0k1l2\"\n");
    let run = scan_json(&["src", "fixtures", "--rules", "gitleaks.toml", "--no-default-rules"], dir.path());
    let f = findings(&run);
    assert_eq!(f.len(), 1, "{}", run.stdout);
    assert_eq!(f[0]["rule_id"], "acme-internal-token");
    assert_eq!(f[0]["secret_sha256"], sha256_hex("q7x2k9m4p1z8w3v6b5n0c4d7"));
    // A broken rule file is an error naming the file.
    write(dir.path(), "broken.toml", "[[rules]]\nid = \"x\"\nregex = '''(unclosed'''\n");
    let out = keywatch().current_dir(dir.path()).args(["scan", "src", "--rules", "broken.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.toml"));
}

#[test]
fn sarif_output_is_valid_2_1_0() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token("sarif");
    write(dir.path(), "conf/app.env", format!("\nT={token}\n"));
    let out = keywatch().current_dir(dir.path()).args(["scan", ".", "--format", "sarif"]).output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "keywatch");
    let result = &run["results"][0];
    let rule_index = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(run["tool"]["driver"]["rules"][rule_index]["id"], result["ruleId"]);
    let loc = &result["locations"][0]["physicalLocation"];
    assert_eq!(loc["artifactLocation"]["uri"], "conf/app.env");
    assert_eq!(loc["region"]["startLine"], 2);
    assert!(result["partialFingerprints"]["keywatch/v1"].is_string());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&token));
}

#[test]
fn jsonl_and_csv_outputs() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.env", format!("A={}\nB={}\n", github_token("l1"), github_token("l2")));
    let out = keywatch().current_dir(dir.path()).args(["scan", ".", "--format", "jsonl"]).output().unwrap();
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    let out = keywatch().current_dir(dir.path()).args(["scan", ".", "--format", "csv"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("rule_id,provider,severity,path,line"));
    assert_eq!(text.lines().count(), 3);
}

#[test]
fn config_file_supplies_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token("cfg");
    write(dir.path(), "skip/x.env", format!("T={token}\n"));
    write(dir.path(), "keywatch.toml", "[scan]\nexclude = [\"skip\"]\n");
    let run = scan_json(&[".", "--config", "keywatch.toml"], dir.path());
    assert_eq!(run.code, 0, "{}", run.stdout);
    write(dir.path(), "bad.toml", "[scan]\nunknown_option = 1\n");
    let out = keywatch().current_dir(dir.path()).args(["--config", "bad.toml", "scan", "."]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
}

#[test]
fn unreadable_input_is_reported_and_the_rest_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let token = github_token("readable");
    write(dir.path(), "ok.env", format!("T={token}\n"));
    // /proc/self/mem opens but fails to read at offset 0: a real I/O error, even as root.
    let run = scan_json(&["ok.env", "/proc/self/mem"], dir.path());
    assert_eq!(finding_for(&run, &token).len(), 1);
    let err =
        run.json["errors"].as_array().unwrap().iter().find(|e| e["path"] == "/proc/self/mem").expect("error reported");
    assert!(err["message"].as_str().unwrap().contains("read"), "{err}");
    assert_eq!(run.code, 1);
}

#[test]
fn symlinks_out_of_the_tree_are_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    let token = github_token("outside");
    write(outside.path(), "secret.env", format!("T={token}\n"));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "readme.txt", "hi\n");
    std::os::unix::fs::symlink(outside.path().join("secret.env"), dir.path().join("link.env")).unwrap();
    let run = scan_json(&["."], dir.path());
    assert!(finding_for(&run, &token).is_empty());
    let skipped = run.json["skipped"].as_array().unwrap();
    assert!(skipped.iter().any(|s| s["path"] == "link.env" && s["reason"].as_str().unwrap().contains("outside")));
}

#[test]
fn jwts_are_decoded_but_never_verified() {
    let dir = tempfile::tempdir().unwrap();
    // {"alg":"HS256","typ":"JWT"} . {"iss":"https://auth.acme.io","sub":"svc-ci","aud":["api"],"exp":1700000000,"iat":1690000000}
    let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2F1dGguYWNtZS5pbyIsInN1YiI6InN2Yy1jaSIsImF1ZCI6WyJhcGkiXSwiZXhwIjoxNzAwMDAwMDAwLCJpYXQiOjE2OTAwMDAwMDB9.Q7vZk2Lm9Xw4Rt8Yp1Ns6Ud3Hf5Jc0Gb";
    write(dir.path(), "ci.env", format!("CI_TOKEN={token}\n"));
    let run = scan_json(&["."], dir.path());
    let f = finding_for(&run, token);
    assert_eq!(f.len(), 1, "{}", run.stdout);
    let jwt = &f[0]["jwt"];
    assert_eq!(jwt["alg"], "HS256");
    assert_eq!(jwt["iss"], "https://auth.acme.io");
    assert_eq!(jwt["sub"], "svc-ci");
    assert_eq!(jwt["aud"][0], "api");
    assert_eq!(jwt["expires"], "2023-11-14T22:13:20Z");
    assert_eq!(jwt["expired"], true);
    let out = keywatch().current_dir(dir.path()).args(["scan", ".", "--format", "human"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("JWT HS256 · iss https://auth.acme.io · sub svc-ci · aud api · expired 2023-11-14T22:13:20Z"),
        "{text}"
    );
}
