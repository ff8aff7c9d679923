//! End-to-end `keywatch inventory sync`: the binary, a config file, a real SQLite store, and
//! a loopback HTTP server answering like the GitHub REST API.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghp_E2eTestOnlyTokenValue0123456789abcdef";

/// Runs the binary off the async runtime, so the mock server keeps answering meanwhile.
async fn keywatch(data: &Path, config: Option<&Path>, args: &[&str]) -> Output {
    let data = data.to_path_buf();
    let config = config.map(Path::to_path_buf);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("keywatch"));
        cmd.env("KEYWATCH_DATA_DIR", &data).env("NO_COLOR", "1").env("KW_E2E_GITHUB_TOKEN", TOKEN);
        match config {
            Some(c) => cmd.env("KEYWATCH_CONFIG", c),
            None => cmd.env_remove("KEYWATCH_CONFIG"),
        };
        cmd.args(&args).output().unwrap()
    })
    .await
    .unwrap()
}

fn installation(id: u64, slug: &str, permissions: Value) -> Value {
    json!({"id": id, "account": {"login": "acme", "id": 1, "type": "Organization"}, "app_id": id * 10, "app_slug": slug,
        "target_type": "Organization", "repository_selection": "all", "permissions": permissions, "events": [],
        "created_at": "2023-04-01T10:00:00Z", "updated_at": "2023-04-01T10:00:00Z", "suspended_at": null})
}

async fn serve(server: &MockServer, installations: Vec<Value>, pats_fail: bool) {
    server.reset().await;
    let total = installations.len();
    Mock::given(method("GET"))
        .and(path("/orgs/acme/installations"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"total_count": total, "installations": installations})),
        )
        .mount(server)
        .await;
    let pats = if pats_fail {
        ResponseTemplate::new(500).set_body_string("internal error")
    } else {
        ResponseTemplate::new(200).set_body_json(json!([]))
    };
    Mock::given(method("GET")).and(path("/orgs/acme/personal-access-tokens")).respond_with(pats).mount(server).await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme/personal-access-token-requests"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme/hooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": 5, "name": "web", "active": true, "events": ["push"],
            "config": {"url": "https://hooks.zapier.com/hooks/catch/1/x/", "content_type": "json", "secret": "********"},
            "ping_url": "https://api.github.com/orgs/acme/hooks/5/pings", "created_at": "2023-09-06T17:26:27Z",
            "updated_at": "2023-09-06T17:26:27Z", "type": "Organization"}])))
        .mount(server)
        .await;
}

fn write_config(dir: &Path, server: &MockServer) -> std::path::PathBuf {
    let file = dir.join("keywatch.toml");
    std::fs::write(
        &file,
        format!(
            "[inventory]\ninitial_backoff_ms = 1\nmax_retries = 1\n\n[inventory.github]\norg = \"acme\"\nbase_url = \"{}\"\ntoken_env = \"KW_E2E_GITHUB_TOKEN\"\nrepos = []\n",
            server.uri()
        ),
    )
    .unwrap();
    file
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test]
async fn sync_stores_each_endpoint_and_marks_what_disappeared() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = MockServer::start().await;
    let config = write_config(dir.path(), &server);
    serve(
        &server,
        vec![
            installation(11, "zapier", json!({"contents": "read"})),
            installation(12, "moveworks", json!({"members": "write"})),
        ],
        true,
    )
    .await;

    let out = keywatch(&data, Some(&config), &["inventory", "sync", "--format", "json"]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "one failed endpoint among several: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout_json(&out);
    let endpoints = report["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 4);
    assert_eq!(endpoints[0]["endpoint"], "installations");
    assert_eq!(endpoints[0]["new"], 2);
    assert_eq!(endpoints[1]["ok"], false);
    assert!(endpoints[1]["error"].as_str().unwrap().contains("HTTP 500"), "{}", endpoints[1]);
    assert_eq!(report["stats"]["failed"], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("personal-access-tokens") && !stderr.contains(TOKEN), "{stderr}");

    // The vendor answer joins what the two endpoints found.
    let out = keywatch(&data, Some(&config), &["vendor", "exposure", "zapier", "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let kinds: Vec<String> = stdout_json(&out)["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"api_token".to_string()) || kinds.len() == 2, "{kinds:?}");
    assert_eq!(kinds.len(), 2, "the installation and the webhook: {kinds:?}");

    // Moveworks is uninstalled; the next sync marks it deleted, and --strict fails on the 500.
    serve(&server, vec![installation(11, "zapier", json!({"contents": "read"}))], true).await;
    let out = keywatch(&data, Some(&config), &["inventory", "sync", "--strict", "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(2), "--strict: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout_json(&out)["endpoints"][0]["disappeared"], 1);
    let out = keywatch(&data, Some(&config), &["inventory", "list", "--status", "deleted", "--format", "json"]).await;
    let deleted = stdout_json(&out);
    let names: Vec<&str> =
        deleted["credentials"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 1, "{deleted}");
    assert!(names[0].contains("moveworks"), "{names:?}");

    // Nothing in the store holds the token.
    let db = std::fs::read(data.join("keywatch.db")).unwrap();
    assert!(!db.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()));
}

#[tokio::test]
async fn dry_run_stores_nothing_and_no_config_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = MockServer::start().await;
    let config = write_config(dir.path(), &server);
    serve(&server, vec![installation(11, "zapier", json!({"contents": "read"}))], false).await;
    let out = keywatch(&data, Some(&config), &["inventory", "sync", "--dry-run", "--format", "human"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("github installations: 1 credentials; not stored (dry run)"), "{text}");
    assert!(!data.join("keywatch.db").exists(), "a dry run creates no store");

    // The config's own vendor catalogue is read by every command, relative to the config file.
    std::fs::write(
        dir.path().join("ours.toml"),
        "[[vendor]]\nid = \"acme-etl\"\nname = \"Acme ETL\"\ndomains = [\"acme-etl.example\"]\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("[vendors]\ncatalogue = [\"ours.toml\"]\n\n{text}")).unwrap();
    let out = keywatch(&data, Some(&config), &["vendor", "list", "--format", "json"]).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"acme-etl\""), "{}", String::from_utf8_lossy(&out.stderr));

    let out = keywatch(&data, None, &["inventory", "sync"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no connector is configured"));

    // Every endpoint unreachable (a port nobody listens on): nothing could be read, exit 2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(&server.uri(), &format!("http://{closed}"));
    std::fs::write(&config, text).unwrap();
    let out = keywatch(&data, Some(&config), &["inventory", "sync", "--format", "json"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed"), "{}", String::from_utf8_lossy(&out.stderr));
}
