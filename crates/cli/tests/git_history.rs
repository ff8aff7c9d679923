//! `keywatch scan --git` on real repositories built with libgit2 in temporary directories.

use assert_cmd::Command;
use git2::{Oid, Repository, Signature, Time};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;

fn token(seed: &str) -> String {
    // A Stripe live secret key shape.
    let digest = Sha256::digest(seed.as_bytes());
    let alnum = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let body: String = digest.iter().cycle().take(99).map(|b| alnum[(*b % 62) as usize] as char).collect();
    format!("sk_live_{body}")
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

struct Repo {
    dir: tempfile::TempDir,
    repo: Repository,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        Repo { dir, repo }
    }

    /// Writes files (None deletes) and commits them on HEAD's branch, at time `t`.
    fn commit(&self, author: &str, t: i64, message: &str, files: &[(&str, Option<&str>)]) -> Oid {
        let mut index = self.repo.index().unwrap();
        for (path, content) in files {
            let full = self.dir.path().join(path);
            match content {
                Some(text) => {
                    fs::create_dir_all(full.parent().unwrap()).unwrap();
                    fs::write(&full, text).unwrap();
                    index.add_path(Path::new(path)).unwrap();
                }
                None => {
                    fs::remove_file(&full).unwrap();
                    index.remove_path(Path::new(path)).unwrap();
                }
            }
        }
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::new(author, &format!("{}@example.org", author.to_lowercase()), &Time::new(t, 0)).unwrap();
        let parents: Vec<git2::Commit> =
            self.repo.head().ok().and_then(|h| h.peel_to_commit().ok()).into_iter().collect();
        let parent_refs: Vec<&git2::Commit> = parents.iter().collect();
        self.repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parent_refs).unwrap()
    }
}

fn scan_git(repo: &Path, extra: &[&str]) -> (i32, Value) {
    let out = Command::cargo_bin("keywatch")
        .unwrap()
        .args(["scan", "--git", "--format", "json"])
        .arg(repo)
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {} {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code().unwrap(), json)
}

fn for_secret<'a>(report: &'a Value, secret: &str) -> Vec<&'a Value> {
    let sha = sha256_hex(secret);
    report["findings"].as_array().unwrap().iter().filter(|f| f["secret_sha256"] == sha.as_str()).collect()
}

#[test]
fn reports_the_commit_that_introduced_each_secret() {
    let r = Repo::new();
    let (old, later, branch_only) = (token("old"), token("later"), token("branch"));
    r.commit("Alice", 1_700_000_000, "initial", &[("README.md", Some("hello\n"))]);
    let introduced =
        r.commit("Bob", 1_700_000_100, "add payment config", &[("config/pay.env", Some(&format!("STRIPE={old}\n")))]);
    // The secret survives an unrelated edit of the same file and is then deleted.
    r.commit("Carol", 1_700_000_200, "tweak", &[("config/pay.env", Some(&format!("# payments\nSTRIPE={old}\n")))]);
    let removed = r.commit("Carol", 1_700_000_300, "remove secret", &[("config/pay.env", None)]);
    r.commit("Dan", 1_700_000_400, "another", &[("src/app.py", Some(&format!("KEY = '{later}'\n")))]);
    // A branch that was never merged.
    let main_head = r.repo.head().unwrap().peel_to_commit().unwrap();
    r.repo.branch("feature", &main_head, false).unwrap();
    r.repo.set_head("refs/heads/feature").unwrap();
    r.commit("Eve", 1_700_000_500, "wip", &[("wip.txt", Some(&format!("try {branch_only}\n")))]);
    r.repo.set_head("refs/heads/master").or_else(|_| r.repo.set_head("refs/heads/main")).unwrap();

    let (code, report) = scan_git(r.dir.path(), &[]);
    assert_eq!(code, 1);
    let found = for_secret(&report, &old);
    assert_eq!(found.len(), 1, "one secret at one path is reported once: {report}");
    let f = found[0];
    assert_eq!(f["path"], "config/pay.env");
    assert_eq!(f["line"], 1);
    assert_eq!(f["commit"]["commit"], introduced.to_string());
    assert_eq!(f["commit"]["author_name"], "Bob");
    assert_eq!(f["commit"]["author_email"], "bob@example.org");
    assert_eq!(f["commit"]["date"], "2023-11-14T22:15:00Z");
    assert_eq!(f["commit"]["summary"], "add payment config");
    assert_eq!(for_secret(&report, &branch_only).len(), 1, "all refs are scanned");
    assert_eq!(report["stats"]["commits"], 6);
    // Each distinct blob is scanned once: README, two versions of pay.env, app.py, wip.txt.
    assert_eq!(report["stats"]["blobs"], 5);

    // --branch limits history to one branch; --since-commit to newer commits.
    let (_, master_only) = scan_git(r.dir.path(), &["--branch", r.repo.head().unwrap().shorthand().unwrap()]);
    assert!(for_secret(&master_only, &branch_only).is_empty());
    assert_eq!(for_secret(&master_only, &later).len(), 1);
    let (_, recent) = scan_git(r.dir.path(), &["--since-commit", &removed.to_string()]);
    assert!(for_secret(&recent, &old).is_empty(), "introduced before --since-commit");
    assert_eq!(for_secret(&recent, &later).len(), 1);
    assert_eq!(for_secret(&recent, &branch_only).len(), 1);
}

#[test]
fn broken_objects_are_reported_and_the_rest_scanned() {
    let r = Repo::new();
    let (lost, kept) = (token("lost"), token("kept"));
    r.commit("Alice", 1_700_000_000, "one", &[("a.env", Some(&format!("A={lost}\n")))]);
    r.commit("Alice", 1_700_000_100, "two", &[("b.env", Some(&format!("B={kept}\n")))]);
    // Corrupt the loose object of a.env's blob.
    let blob = r.repo.blob(format!("A={lost}\n").as_bytes()).unwrap().to_string();
    let object = r.dir.path().join(".git/objects").join(&blob[..2]).join(&blob[2..]);
    let mut perms = fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&object, perms).unwrap();
    fs::write(&object, b"this is not zlib data").unwrap();

    let (code, report) = scan_git(r.dir.path(), &[]);
    assert_eq!(code, 1);
    assert_eq!(for_secret(&report, &kept).len(), 1);
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(
            |e| e["path"].as_str().unwrap().starts_with("a.env@") && e["message"].as_str().unwrap().contains(&blob)
        ),
        "{errors:?}"
    );
}

#[test]
fn not_a_repository_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("keywatch").unwrap().args(["scan", "--git"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a git repository"));
}
