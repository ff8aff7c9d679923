//! End-to-end tests of `keywatch har scan` and `keywatch har sanitize` on HARs captured from
//! a real headless Chromium (and Firefox- and Charles-shaped ones) committed under
//! tests/fixtures/har, and on broken files made here.

use assert_cmd::Command;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

fn keywatch() -> Command {
    let mut cmd = Command::cargo_bin("keywatch").expect("binary builds");
    cmd.env_remove("KEYWATCH_CONFIG").env_remove("KEYWATCH_DATA_DIR").env("NO_COLOR", "1");
    cmd
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/har")
}

const FIXTURES: [&str; 4] = ["chromium-login.har", "firefox-flavoured.har", "charles-flavoured.har", "minimal.har"];

/// Kinds the fixtures plant that are redacted but, by design, not reported: they tie
/// requests together without granting access.
const CORRELATION_KINDS: [&str; 2] = ["csrf-token", "xsrf-header"];

struct Planted {
    kind: String,
    sha256: String,
}

fn manifest(fixture: &str) -> Vec<Planted> {
    let text = fs::read_to_string(fixtures().join("MANIFEST.json")).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap();
    let entry = m["fixtures"].as_array().unwrap().iter().find(|f| f["fixture"] == fixture).unwrap();
    entry["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Planted { kind: s["kind"].as_str().unwrap().into(), sha256: s["sha256"].as_str().unwrap().into() })
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn scan_json(path: &Path, extra: &[&str]) -> (i32, Value) {
    let (code, stdout, stderr) = run(keywatch().args(["har", "scan", "--format", "json"]).args(extra).arg(path));
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, report)
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().unwrap()
}

/// Every token-like piece of every string in a HAR, also percent-decoded and base64-decoded
/// (bodies, Basic credentials), so a planted secret is seen however it was written.
fn token_hashes(har: &Value) -> HashSet<String> {
    fn tokens(text: &str, depth: u8, out: &mut HashSet<String>) {
        for t in text.split(|c: char| !(c.is_ascii_alphanumeric() || "_-.~+/=%".contains(c))) {
            let t = t.trim_end_matches('.');
            if t.len() < 4 {
                continue;
            }
            out.insert(sha256_hex(t.as_bytes()));
            for piece in t.split('=').filter(|p| p.len() >= 4) {
                out.insert(sha256_hex(piece.as_bytes()));
            }
            if t.contains('%') || t.contains('+') {
                if let Ok(decoded) = percent_decode(t) {
                    out.insert(sha256_hex(decoded.as_bytes()));
                    for part in decoded.split('=') {
                        out.insert(sha256_hex(part.as_bytes()));
                    }
                }
            }
            if depth < 2 {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(t) {
                    if let Ok(inner) = String::from_utf8(bytes) {
                        tokens(&inner, depth + 1, out);
                    }
                }
            }
        }
    }
    fn walk(v: &Value, out: &mut HashSet<String>) {
        match v {
            Value::String(s) => {
                out.insert(sha256_hex(s.trim().as_bytes()));
                tokens(s, 0, out);
                if let Ok(inner) = serde_json::from_str::<Value>(s) {
                    if inner.is_object() || inner.is_array() {
                        walk(&inner, out);
                    }
                }
                let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) {
                    if let Ok(inner) = String::from_utf8(bytes) {
                        tokens(&inner, 1, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = HashSet::new();
    walk(har, &mut out);
    out
}

fn percent_decode(t: &str) -> Result<String, ()> {
    let b = t.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

#[test]
fn scan_reports_every_planted_credential_with_its_place() {
    for fixture in FIXTURES {
        let path = fixtures().join(fixture);
        let (code, report) = scan_json(&path, &[]);
        let found: HashSet<&str> = findings(&report).iter().map(|f| f["secret_sha256"].as_str().unwrap()).collect();
        let planted = manifest(fixture);
        let expected: Vec<&Planted> =
            planted.iter().filter(|p| !CORRELATION_KINDS.contains(&p.kind.as_str())).collect();
        let missed: Vec<&str> =
            expected.iter().filter(|p| !found.contains(p.sha256.as_str())).map(|p| p.kind.as_str()).collect();
        assert!(missed.is_empty(), "{fixture}: missed {missed:?}");
        assert_eq!(code, if expected.is_empty() { 0 } else { 1 }, "{fixture}");
        assert!(report["errors"].as_array().unwrap().is_empty(), "{fixture}: {}", report["errors"]);
        for f in findings(&report) {
            let har = &f["har"];
            let location = har["location"].as_str().unwrap();
            assert!(location.starts_with("/log/"), "{location}");
            if location.starts_with("/log/entries/") {
                let entry = har["entry"].as_u64().unwrap();
                assert!(location.starts_with(&format!("/log/entries/{entry}/")), "{location}");
                assert!(!har["method"].as_str().unwrap().is_empty());
                assert!(!har["host"].as_str().unwrap().is_empty());
                assert!(har["started"].is_string());
            }
            // Never the secret itself: not in the redacted form, the context or the URL.
            let shown = format!("{} {} {}", f["redacted"], f["context"], har["url"]);
            assert!(f.get("secret").is_none());
            for t in shown.split(|c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c))) {
                assert!(
                    t.len() < 8 || !found.contains(sha256_hex(t.as_bytes()).as_str()),
                    "{fixture}: {t} shown in full"
                );
            }
        }
    }
}

#[test]
fn scan_names_headers_cookies_and_decodes_jwts_at_capture_time() {
    let (_, report) = scan_json(&fixtures().join("chromium-login.har"), &[]);
    let all = findings(&report);
    let by_rule = |rule: &'static str| all.iter().filter(move |f| f["rule_id"] == rule);
    let session = by_rule("session-cookie").next().expect("session cookie reported");
    assert_eq!(session["har"]["name"], "session_id");
    assert_eq!(session["har"]["host"], "127.0.0.1");
    let bearer = by_rule("bearer-token").next().expect("opaque bearer token reported");
    assert_eq!(bearer["har"]["name"], "Authorization");
    assert_eq!(bearer["har"]["part"], "request header");
    assert!(by_rule("basic-auth").next().is_some());
    assert!(by_rule("okta-api-token").next().is_some(), "SSWS credential named by its provider rule");
    let code = all
        .iter()
        .find(|f| f["har"]["name"] == "code" && f["har"]["part"] == "query parameter")
        .expect("OAuth code in the callback's query");
    assert!(code["har"]["url"].as_str().unwrap().contains("code=[REDACTED:sensitive-field:"), "{}", code["har"]["url"]);
    let fragment = all.iter().find(|f| f["har"]["name"] == "access_token" && f["har"]["part"] == "response header");
    assert!(fragment.is_some(), "implicit-flow #access_token= in a Location header");
    let jwt = by_rule("jwt").next().expect("JWT reported");
    let claims = &jwt["jwt"];
    assert_eq!(claims["alg"], "HS256");
    assert!(claims["iss"].is_string() && claims["sub"].is_string());
    assert_eq!(claims["valid_at_capture"], true, "the fixtures' tokens expire an hour after capture");
    let expires = claims["expires"].as_str().unwrap();
    assert_eq!(claims["expired"], Value::Bool(expires < "2026-11-28T18:00:00Z" || is_past(expires)));
    // Base64 bodies and WebSocket frames are searched too.
    let (_, firefox) = scan_json(&fixtures().join("firefox-flavoured.har"), &[]);
    assert!(findings(&firefox).iter().any(|f| f["rule_id"] == "slack-bot-token"), "secret in a base64 body");
    let (_, charles) = scan_json(&fixtures().join("charles-flavoured.har"), &[]);
    assert!(findings(&charles).iter().any(|f| f["har"]["part"] == "WebSocket message"));
}

fn is_past(rfc3339: &str) -> bool {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    keywatch_scan::time::parse_rfc3339(rfc3339).unwrap() <= now
}

#[test]
fn sanitised_fixtures_are_valid_clean_idempotent_and_keep_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let once = dir.path().join("once");
    let twice = dir.path().join("twice");
    let (code, _, stderr) = run(keywatch().args(["har", "sanitize"]).arg(fixtures()).arg("-o").arg(&once));
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = run(keywatch().args(["har", "sanitize"]).arg(&once).arg("-o").arg(&twice));
    assert_eq!(code, 0, "{stderr}");
    for fixture in FIXTURES {
        let original_bytes = fs::read(fixtures().join(fixture)).unwrap();
        let sanitised_bytes = fs::read(once.join(fixture)).unwrap();
        assert_eq!(sanitised_bytes, fs::read(twice.join(fixture)).unwrap(), "{fixture}: sanitising is idempotent");
        let original: Value = serde_json::from_slice(&original_bytes).unwrap();
        let sanitised: Value = serde_json::from_slice(&sanitised_bytes).expect("sanitised output is JSON");

        // Clean: nothing for `har scan`, and no planted value left in any spelling.
        let (code, report) = scan_json(&once.join(fixture), &[]);
        assert!(findings(&report).is_empty(), "{fixture}: {:#}", report["findings"]);
        assert_eq!(code, 0);
        let before = token_hashes(&original);
        let after = token_hashes(&sanitised);
        let planted = manifest(fixture);
        let visible = planted.iter().filter(|p| before.contains(&p.sha256)).count();
        assert!(visible * 10 >= planted.len() * 9, "{fixture}: the token check sees {visible}/{}", planted.len());
        let left: Vec<&str> = planted.iter().filter(|p| after.contains(&p.sha256)).map(|p| p.kind.as_str()).collect();
        assert!(left.is_empty(), "{fixture}: still holds {left:?}");

        // Still a HAR worth debugging: same entries, methods, statuses, timings, sizes.
        let (a, b) = (&original["log"], &sanitised["log"]);
        assert_eq!(a["version"], b["version"]);
        assert_eq!(a["creator"], b["creator"]);
        let (ea, eb) = (a["entries"].as_array().unwrap(), b["entries"].as_array().unwrap());
        assert_eq!(ea.len(), eb.len());
        for (x, y) in ea.iter().zip(eb) {
            for key in ["startedDateTime", "time", "timings"] {
                assert_eq!(x[key], y[key], "{fixture}: {key}");
            }
            assert_eq!(x["request"]["method"], y["request"]["method"]);
            assert_eq!(x["response"]["status"], y["response"]["status"]);
            assert_eq!(x["response"]["content"]["size"], y["response"]["content"]["size"]);
            let names = |e: &Value| -> Vec<Value> {
                e["request"]["headers"]
                    .as_array()
                    .map(|h| h.iter().map(|h| h["name"].clone()).collect())
                    .unwrap_or_default()
            };
            assert_eq!(names(x), names(y), "{fixture}: header names kept");
            let host = |u: &Value| u.as_str().unwrap_or("").split('?').next().unwrap_or("").to_string();
            assert_eq!(host(&x["request"]["url"]), host(&y["request"]["url"]), "{fixture}: URL path kept");
        }
    }
    // A HAR without secrets comes out byte for byte.
    assert_eq!(fs::read(fixtures().join("minimal.har")).unwrap(), fs::read(once.join("minimal.har")).unwrap());
}

#[test]
fn markers_are_stable_per_secret_and_jwts_keep_their_claims() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clean.har");
    let (code, stdout, stderr) = run(keywatch()
        .args(["har", "sanitize", "--report", "--format", "json"])
        .arg(fixtures().join("chromium-login.har"))
        .arg("-o")
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let redactions = report["files"][0]["redactions"].as_array().unwrap();
    assert!(redactions.len() > 50);
    let marker_shape = regex_lite_marker();
    let mut marker_of_session = HashSet::new();
    for r in redactions {
        let marker = r["marker"].as_str().unwrap();
        assert!(marker_shape(marker), "{marker}");
        assert!(r["location"].as_str().unwrap().starts_with("/log/"));
        if r["kind"] == "session-cookie" {
            marker_of_session.insert(marker.to_string());
        }
    }
    assert_eq!(marker_of_session.len(), 1, "one session, one marker wherever it appears: {marker_of_session:?}");
    let text = fs::read_to_string(&out).unwrap();
    let session_marker = marker_of_session.iter().next().unwrap();
    assert!(text.matches(session_marker.as_str()).count() >= 10, "cookie arrays and Cookie headers share the marker");
    // A JWT keeps header and claims, loses its signature.
    let clean: Value = serde_json::from_str(&text).unwrap();
    let auth = clean["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["request"]["headers"].as_array().unwrap().clone())
        .find(|h| {
            h["name"].as_str().unwrap().eq_ignore_ascii_case("authorization")
                && h["value"].as_str().unwrap().contains("eyJ")
        })
        .expect("a bearer JWT");
    let value = auth["value"].as_str().unwrap();
    let token = value.strip_prefix("Bearer ").unwrap();
    let parts: Vec<&str> = token.splitn(3, '.').collect();
    assert!(parts[2].starts_with("[REDACTED:jwt:"), "{value}");
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    assert!(claims["sub"].is_string() && claims["exp"].is_number());
}

/// `[REDACTED:kind:hhhhhh]`, the marker shape, checked without a regex crate.
fn regex_lite_marker() -> impl Fn(&str) -> bool {
    |m: &str| {
        let Some(idx) = m.find("[REDACTED:") else { return false };
        let inner = &m[idx + 10..];
        let Some(inner) = inner.strip_suffix(']') else { return false };
        let Some((kind, hash)) = inner.rsplit_once(':') else { return false };
        !kind.is_empty() && hash.len() == 6 && hash.bytes().all(|b| b.is_ascii_hexdigit())
    }
}

#[test]
fn check_mode_gates_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.har");
    let raw = fixtures().join("charles-flavoured.har");
    let (code, stdout, _) = run(keywatch().args(["har", "sanitize", "--check"]).arg(&raw));
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("secret"), "{stdout}");
    assert!(!dir.path().join("clean.har").exists());
    let (code, _, stderr) = run(keywatch().args(["har", "sanitize"]).arg(&raw).arg("-o").arg(&clean));
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, _) = run(keywatch().args(["har", "sanitize", "--check", "--format", "json"]).arg(&clean));
    assert_eq!(code, 0, "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["files"][0]["status"], "clean");
    let (code, _, _) = run(keywatch().args(["har", "sanitize", "--check"]).arg(dir.path().join("nope.har")));
    assert_eq!(code, 2, "an unreadable file is not a clean one");
}

#[test]
fn extra_names_directory_mode_in_place_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    fs::create_dir_all(inputs.join("team/a")).unwrap();
    let har = minimal_har(&[entry(
        "GET",
        "https://app.acme.io/x?tenant=acme-42&page=2",
        &[("X-Tenant-Id", "acme-tenant-0042")],
        "",
    )]);
    fs::write(inputs.join("team/a/one.har"), &har).unwrap();
    fs::write(inputs.join("two.HAR"), &har).unwrap();
    fs::write(inputs.join("notes.txt"), "not a har").unwrap();
    let out = dir.path().join("out");
    let (code, _, stderr) = run(keywatch()
        .args(["har", "sanitize", "--redact-name", "X-Tenant-Id", "--redact-name", "tenant"])
        .arg(&inputs)
        .arg("-o")
        .arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let text = fs::read_to_string(out.join("team/a/one.har")).unwrap();
    assert!(!text.contains("acme-tenant-0042") && !text.contains("acme-42"), "{text}");
    assert!(text.contains("page=2"));
    assert!(out.join("two.HAR").exists() && !out.join("notes.txt").exists());

    // Without the extra names nothing in this file is secret: it stays as it was.
    let (code, stdout, _) = run(keywatch().args(["har", "sanitize", "-o", "-"]).arg(inputs.join("two.HAR")));
    assert_eq!(code, 0);
    assert_eq!(stdout, har);

    let target = inputs.join("team/a/one.har");
    let (code, _, stderr) =
        run(keywatch().args(["har", "sanitize", "--in-place", "--redact-name", "x-tenant-id"]).arg(&target));
    assert_eq!(code, 0, "{stderr}");
    assert!(!fs::read_to_string(&target).unwrap().contains("acme-tenant-0042"));

    let (code, _, stderr) = run(keywatch().args(["har", "sanitize"]).arg(&target));
    assert_eq!(code, 2);
    assert!(stderr.contains("-o OUT"), "{stderr}");

    // Standard input for scanning.
    let raw = fs::read(fixtures().join("charles-flavoured.har")).unwrap();
    let out = keywatch().args(["har", "scan", "--format", "json", "-"]).write_stdin(raw).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["path"], "<stdin>");
}

fn entry(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Value {
    let headers: Vec<Value> = headers.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect();
    serde_json::json!({
        "startedDateTime": "2026-11-28T10:00:00.000Z", "time": 12.5,
        "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1", "cookies": [], "headers": headers,
                    "queryString": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": [], "headers": [],
                     "content": {"size": body.len(), "mimeType": "application/json", "text": body},
                     "redirectURL": "", "headersSize": -1, "bodySize": body.len()},
        "cache": {}, "timings": {"send": 1, "wait": 10, "receive": 1.5}
    })
}

fn minimal_har(entries: &[Value]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "log": {"version": "1.2", "creator": {"name": "keywatch-test", "version": "1"}, "entries": entries}
    }))
    .unwrap()
}

#[test]
fn a_broken_entry_is_reported_and_the_rest_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let good = minimal_har(&[
        entry("GET", "https://a.example/1", &[], "{}"),
        entry("GET", "https://a.example/2", &[], "{}"),
        entry("GET", "https://a.example/3", &[("Authorization", "Bearer q8Zr2mLx9TvB4nPw7KcY3sDf")], "{}"),
    ]);
    // Break the second entry's JSON without touching the structure around it.
    let broken = good.replacen("\"https://a.example/2\"", "\"https://a.example/2\" oops", 1);
    let path = dir.path().join("broken.har");
    fs::write(&path, &broken).unwrap();
    let (code, report) = scan_json(&path, &[]);
    assert_eq!(code, 1, "the third entry's token is still found");
    assert_eq!(findings(&report)[0]["har"]["location"], "/log/entries/2/request/headers/0/value");
    let error = report["errors"][0]["message"].as_str().unwrap();
    assert!(error.contains("/log/entries/1/request/url") || error.contains("/log/entries/1/request"), "{error}");
    let line = broken.lines().position(|l| l.contains("oops")).unwrap() + 1;
    assert!(error.contains(&format!("line {line}")), "{error} (expected line {line})");
    assert_eq!(report["errors"][0]["path"], path.display().to_string());

    // The sanitiser refuses it: no output, and an existing output file is left as it was.
    let out = dir.path().join("out.har");
    fs::write(&out, "previous contents").unwrap();
    let (code, _, stderr) = run(keywatch().args(["har", "sanitize"]).arg(&path).arg("-o").arg(&out));
    assert_eq!(code, 2);
    assert!(stderr.contains("broken.har") && stderr.contains("/log/entries/1"), "{stderr}");
    assert_eq!(fs::read_to_string(&out).unwrap(), "previous contents");
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temporary file left behind: {leftovers:?}");
}

#[test]
fn bad_inputs_get_clear_errors_with_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let body_b64 = |text: &str| {
        let mut e = entry("GET", "https://a.example/", &[], "");
        e["response"]["content"]["text"] = Value::String(text.into());
        e["response"]["content"]["encoding"] = Value::String("base64".into());
        e
    };
    let deep = format!("{{\"log\": {{\"entries\": [{}{}]}}}}", "[".repeat(5000), "]".repeat(5000));
    let truncated = {
        let full = minimal_har(&[entry("GET", "https://a.example/", &[], "{}")]);
        full[..full.len() * 2 / 3].to_string()
    };
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(minimal_har(&[]).encode_utf16().flat_map(|u| u.to_le_bytes()));
    let mut bad_utf8 = minimal_har(&[entry("GET", "https://a.example/XX", &[], "")]).into_bytes();
    let at = bad_utf8.windows(2).position(|w| w == b"XX").unwrap();
    bad_utf8[at] = 0xC3;
    bad_utf8[at + 1] = 0x28;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("text.har", b"hello, world".to_vec(), "not JSON"),
        ("empty.har", Vec::new(), "empty file"),
        ("not-har.har", br#"{"name": "package.json", "version": "1.0.0"}"#.to_vec(), "not a HAR"),
        ("array.har", b"[1, 2, 3]".to_vec(), "array"),
        ("truncated.har", truncated.into_bytes(), "truncated"),
        ("utf16.har", utf16, "UTF-16"),
        ("bad-utf8.har", bad_utf8, "invalid UTF-8 in a string at /log/entries/0/request/url"),
        ("deep.har", deep.into_bytes(), "nested deeper than"),
        ("base64.har", minimal_har(&[body_b64("not base64 at all!!")]).into_bytes(), "invalid base64"),
        ("binary.har", vec![0x00, 0x01, 0x02, 0xFF, 0x7F, 0x00], "not JSON"),
    ];
    for (name, bytes, expected) in &cases {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        let (code, report) = scan_json(&path, &[]);
        let errors = report["errors"].as_array().unwrap();
        assert!(!errors.is_empty(), "{name}: no error reported");
        let message = errors[0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{name}: {message}");
        assert_eq!(errors[0]["path"], path.display().to_string(), "{name}");
        assert!(code == 0 || code == 2, "{name}: {code}");
        let out = dir.path().join(format!("{name}.out"));
        let (code, _, stderr) = run(keywatch().args(["har", "sanitize"]).arg(&path).arg("-o").arg(&out));
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert!(!out.exists(), "{name}: partial output written");
    }
}

#[test]
fn oversized_entries_and_huge_single_line_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let token = "Bearer Zq3xY7wK2mN9pL4vB8cR6tH1";
    // One 6 MB body on one line, then an entry with a credential.
    let big = "A".repeat(6 << 20);
    let har = minimal_har(&[
        entry("GET", "https://a.example/big", &[], &big),
        entry("GET", "https://a.example/after", &[("Authorization", token)], ""),
    ]);
    let path = dir.path().join("big.har");
    fs::write(&path, &har).unwrap();
    let (code, report) = scan_json(&path, &[]);
    assert_eq!(code, 1);
    assert_eq!(findings(&report).len(), 1);
    assert!(report["errors"].as_array().unwrap().is_empty());

    let (code, report) = scan_json(&path, &["--max-entry-size", "1M"]);
    assert_eq!(code, 1, "the small entry after the oversized one is still scanned");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("/log/entries/0") && message.contains("--max-entry-size"), "{message}");
    let out = dir.path().join("out.har");
    let (code, _, stderr) =
        run(keywatch().args(["har", "sanitize", "--max-entry-size", "1M"]).arg(&path).arg("-o").arg(&out));
    assert_eq!(code, 2, "{stderr}");
    assert!(!out.exists());
}

#[test]
fn second_pass_never_writes_markers_inside_markers() {
    // A "secret" that is also marker text (`REDACTED`, a kind id) must not be found again in
    // the markers of the first pass.
    let dir = tempfile::tempdir().unwrap();
    let har = minimal_har(&[
        entry("GET", "https://x.test/?password=REDACTED", &[("Authorization", "Bearer abcdefgh12345678")], ""),
        entry("GET", "https://x.test/?password=bearer-token", &[], ""),
    ]);
    let path = dir.path().join("p.har");
    fs::write(&path, har).unwrap();
    let out = dir.path().join("clean.har");
    let (code, _, stderr) = run(keywatch().args(["har", "sanitize"]).arg(&path).arg("-o").arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let text = fs::read_to_string(&out).unwrap();
    assert!(!text.contains("[["), "{text}");
    assert!(text.contains("Bearer [REDACTED:bearer-token:"), "{text}");
    assert!(!text.contains("abcdefgh12345678"));
}

#[test]
fn non_ascii_text_everywhere_is_searched_without_panicking() {
    // Found by the har_reader fuzz target: a URL check cut a string inside a character.
    let dir = tempfile::tempdir().unwrap();
    let mut e = entry("GET", "https://a.example/Kraków?q=日本語", &[("X-Note", "Montréal · 日本語テキスト")], "");
    e["comment"] = Value::String("日本語テキスト".into());
    e["response"]["content"]["text"] = Value::String(r#"{"city": "Malmö", "token": "ümlaut-tøken-9f8e7d6c"}"#.into());
    let path = dir.path().join("utf8.har");
    fs::write(&path, minimal_har(&[e])).unwrap();
    let (code, report) = scan_json(&path, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(report["errors"].as_array().unwrap().is_empty());
    assert_eq!(findings(&report)[0]["har"]["name"], "token");
    let out = dir.path().join("clean.har");
    let (code, _, stderr) = run(keywatch().args(["har", "sanitize"]).arg(&path).arg("-o").arg(&out));
    assert_eq!(code, 0, "{stderr}");
    let text = fs::read_to_string(&out).unwrap();
    assert!(text.contains("Malmö") && text.contains("日本語テキスト") && !text.contains("tøken"));
}
