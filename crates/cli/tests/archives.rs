//! Archives made by the real zip, tar and gzip libraries: nesting, naming of findings inside
//! them, and hostile archives (bombs, traversal names, links, truncation).

use assert_cmd::Command;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Cursor, Write};
use std::path::Path;
use zip::write::SimpleFileOptions;

fn token(seed: &str) -> String {
    // Slack bot token shape: no checksum, distinctive prefix.
    let digest = Sha256::digest(seed.as_bytes());
    let alnum = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let digits = |n: usize, skip: usize| -> String {
        digest.iter().skip(skip).take(n).map(|b| (b'0' + b % 10) as char).collect()
    };
    let tail: String = digest.iter().cycle().skip(7).take(24).map(|b| alnum[(*b % 62) as usize] as char).collect();
    format!("xoxb-{}-{}-{tail}", digits(11, 0), digits(13, 11))
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, data) in entries {
        zip.start_file(*name, SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated))
            .unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

fn tar_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn scan(dir: &Path, extra: &[&str]) -> Value {
    let out = Command::cargo_bin("keywatch")
        .unwrap()
        .current_dir(dir)
        .args(["scan", ".", "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn paths_of(report: &Value, secret: &str) -> Vec<String> {
    let sha = sha256_hex(secret);
    let mut v: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["secret_sha256"] == sha.as_str())
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn has(list: &Value, path: &str, text: &str) -> bool {
    list.as_array().unwrap().iter().any(|e| {
        e["path"] == path && (e["message"].as_str().or(e["reason"].as_str()).unwrap_or_default()).contains(text)
    })
}

#[test]
fn nested_archives_are_opened_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, d) = (token("zip"), token("targz"), token("gz"), token("jar"));
    let inner_targz = gzip(&tar_bytes(&[("conf/prod.env", format!("SLACK={b}\n").as_bytes())]));
    let jar = zip_bytes(&[("META-INF/app.properties", format!("slack.token={d}\n").as_bytes())]);
    let outer = zip_bytes(&[
        ("deploy/settings.env", format!("# settings\nSLACK_TOKEN={a}\n").as_bytes()),
        ("bundle.tar.gz", &inner_targz),
        ("libs/app.jar", &jar),
        ("image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
    ]);
    fs::write(dir.path().join("release.zip"), outer).unwrap();
    fs::write(dir.path().join("notes.txt.gz"), gzip(format!("token {c}\n").as_bytes())).unwrap();

    let report = scan(dir.path(), &[]);
    assert_eq!(paths_of(&report, &a), ["release.zip!deploy/settings.env"]);
    assert_eq!(paths_of(&report, &b), ["release.zip!bundle.tar.gz!conf/prod.env"]);
    assert_eq!(paths_of(&report, &c), ["notes.txt.gz!notes.txt"]);
    assert_eq!(paths_of(&report, &d), ["release.zip!libs/app.jar!META-INF/app.properties"]);
    let f =
        report["findings"].as_array().unwrap().iter().find(|f| f["secret_sha256"] == sha256_hex(&a).as_str()).unwrap();
    assert_eq!(f["line"], 2);
    assert!(has(&report["skipped"], "release.zip!image.png", "binary"));

    // Depth 1 opens the outer zip only.
    let shallow = scan(dir.path(), &["--archive-depth", "1"]);
    assert_eq!(paths_of(&shallow, &a).len(), 1);
    assert!(paths_of(&shallow, &b).is_empty());
    assert!(has(&shallow["skipped"], "release.zip!bundle.tar.gz", "--archive-depth"));
}

#[test]
fn decompression_bombs_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let t = token("after-bomb");
    // 64 MiB of zeros compresses to ~64 KiB: far past a 1 MiB entry limit.
    let zeros = vec![b'0'; 64 << 20];
    let bomb = zip_bytes(&[("zeros.txt", &zeros), ("real.env", format!("T={t}\n").as_bytes())]);
    fs::write(dir.path().join("bomb.zip"), bomb).unwrap();
    fs::write(dir.path().join("bomb.gz"), gzip(&zeros)).unwrap();
    let report = scan(dir.path(), &["--max-file-size", "1M", "--max-archive-size", "4M"]);
    assert!(has(&report["skipped"], "bomb.zip!zeros.txt", "--max-file-size"), "{}", report["skipped"]);
    assert_eq!(paths_of(&report, &t), ["bomb.zip!real.env"], "the rest of the archive is still scanned");
    assert!(has(&report["errors"], "bomb.gz!bomb", "decompression bomb"), "{}", report["errors"]);
}

#[test]
fn traversal_names_links_and_truncation_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let t = token("safe");
    let evil =
        zip_bytes(&[("../../etc/cron.d/x", b"* * * * * root sh\n"), ("ok/app.env", format!("T={t}\n").as_bytes())]);
    fs::write(dir.path().join("evil.zip"), &evil).unwrap();

    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_cksum();
    builder.append_link(&mut header, "link-to-shadow", "/etc/shadow").unwrap();
    let data = format!("T={}\n", token("tar"));
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder.append_data(&mut header, "real.env", data.as_bytes()).unwrap();
    fs::write(dir.path().join("links.tar"), builder.into_inner().unwrap()).unwrap();

    let full = zip_bytes(&[("a.env", format!("T={}\n", token("trunc")).as_bytes())]);
    fs::write(dir.path().join("truncated.zip"), &full[..full.len() / 2]).unwrap();
    let targz = gzip(&tar_bytes(&[
        ("big.txt", &vec![b'x'; 200_000]),
        ("later.env", format!("T={}\n", token("lost")).as_bytes()),
    ]));
    fs::write(dir.path().join("truncated.tar.gz"), &targz[..targz.len() / 2]).unwrap();
    let good = token("good-file");
    fs::write(dir.path().join("good.env"), format!("T={good}\n")).unwrap();

    let report = scan(dir.path(), &[]);
    assert!(has(&report["errors"], "evil.zip!../../etc/cron.d/x", "path traversal"), "{}", report["errors"]);
    assert_eq!(paths_of(&report, &t), ["evil.zip!ok/app.env"]);
    assert!(has(&report["skipped"], "links.tar!link-to-shadow", "link"));
    assert_eq!(paths_of(&report, &token("tar")), ["links.tar!real.env"]);
    assert!(has(&report["errors"], "truncated.zip", "zip"), "{}", report["errors"]);
    let errors = report["errors"].as_array().unwrap();
    assert!(errors.iter().any(|e| e["path"].as_str().unwrap().starts_with("truncated.tar.gz")), "{errors:?}");
    assert_eq!(paths_of(&report, &good), ["good.env"], "the scan goes on after bad archives");
}
