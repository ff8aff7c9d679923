//! Git history: every blob reachable from the chosen refs is searched once, and each secret
//! is reported where it was introduced: the first commit (oldest first, parents before
//! children) that added it at that path.
//!
//! One thread walks commits and diffs each commit's tree against its first parent (trees
//! only, no content) to learn where each blob first appeared; then the distinct blobs are
//! searched in parallel, each worker with its own repository handle.

use anyhow::{anyhow, Context, Result};
use git2::{Delta, DiffOptions, ObjectType, Oid, Repository, Sort};
use keywatch_model::{CommitInfo, Finding};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use crate::content::{ContentScanner, Limits};
use crate::matcher::Matcher;
use crate::searcher::{fingerprint, FindingOptions, Searcher};
use crate::sink::Sink;

#[derive(Debug, Clone, Default)]
pub struct GitOptions {
    /// Only history reachable from this branch (or any revision), instead of all refs.
    pub branch: Option<String>,
    /// Only commits after this one.
    pub since_commit: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GitSummary {
    pub commits: u64,
    pub blobs: u64,
}

/// Where a blob first appeared, per path.
struct BlobIntro {
    order: usize,
    places: Vec<(usize, String)>,
}

pub fn scan_git(
    repo_path: &Path,
    options: &GitOptions,
    matcher: &Matcher,
    finding_options: FindingOptions,
    limits: Limits,
    sink: &dyn Sink,
) -> Result<GitSummary> {
    configure_libgit2();
    let repo =
        Repository::discover(repo_path).with_context(|| format!("{}: not a git repository", repo_path.display()))?;
    let mut walk = repo.revwalk()?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)?;
    match &options.branch {
        Some(name) => {
            let oid = resolve_commit(&repo, name).with_context(|| format!("--branch {name}"))?;
            walk.push(oid)?;
        }
        None => push_all_refs(&repo, &mut walk, sink)?,
    }
    if let Some(rev) = &options.since_commit {
        let oid = resolve_commit(&repo, rev).with_context(|| format!("--since-commit {rev}"))?;
        walk.hide(oid)?;
    }

    let mut commits: Vec<CommitInfo> = Vec::new();
    let mut blobs: HashMap<Oid, BlobIntro> = HashMap::new();
    for next in walk {
        let oid = match next {
            Ok(oid) => oid,
            Err(e) => {
                sink.error(&repo_label(repo_path), format!("broken history: {}", e.message()));
                continue;
            }
        };
        if let Err(e) = record_commit(&repo, oid, &mut commits, &mut blobs) {
            sink.error(&format!("{}@{}", repo_label(repo_path), short(oid)), format!("unreadable commit: {e}"));
        }
    }

    let mut ordered: Vec<(Oid, BlobIntro)> = blobs.into_iter().collect();
    ordered.sort_by_key(|(_, intro)| intro.order);
    let summary = GitSummary { commits: commits.len() as u64, blobs: ordered.len() as u64 };
    let results: Mutex<Vec<(usize, Vec<Finding>)>> = Mutex::new(Vec::new());
    let repo_dir = repo.path().to_path_buf();
    drop(repo);
    ordered.par_iter().for_each_init(
        || Repository::open(&repo_dir).ok(),
        |worker_repo, (oid, intro)| {
            let Some(worker_repo) = worker_repo.as_ref() else {
                sink.error(&repo_label(repo_path), "cannot reopen repository in worker".into());
                return;
            };
            let found = scan_blob(worker_repo, *oid, intro, &commits, matcher, finding_options, limits, sink);
            if !found.is_empty() {
                results.lock().unwrap_or_else(|e| e.into_inner()).push((intro.order, found));
            }
        },
    );

    // Keep each secret's first appearance per path.
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(order, _)| *order);
    let mut seen = HashSet::new();
    let mut findings = Vec::new();
    for (_, group) in results {
        for f in group {
            if seen.insert((f.rule_id.clone(), f.secret_sha256.clone(), f.path.clone())) {
                findings.push(f);
            }
        }
    }
    sink.findings(findings);
    Ok(summary)
}

/// Most bytes of pack files libgit2 keeps mapped at once. Its default (8 GiB on 64-bit) lets
/// resident memory grow with the repository; mapped windows are reused, so a modest limit
/// costs little speed.
const PACK_MAPPING_LIMIT: usize = 96 << 20;

/// libgit2 settings for reading a whole history once: bounded pack mapping, and no SHA-1
/// re-hash of every object read (a fifth of the CPU of a history scan). Corrupt objects
/// still fail to inflate and are reported; what is lost is detecting a valid-looking object
/// stored under the wrong name, which cannot hide a secret from the scan.
fn configure_libgit2() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        git2::opts::strict_hash_verification(false);
        // SAFETY: libgit2 global options are set once, before any repository is opened here.
        if let Err(e) = unsafe { git2::opts::set_mwindow_mapped_limit(PACK_MAPPING_LIMIT) } {
            eprintln!("warning: cannot limit libgit2 pack mapping: {}", e.message());
        }
    });
}

fn repo_label(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn short(oid: Oid) -> String {
    oid.to_string()[..12].to_string()
}

fn resolve_commit(repo: &Repository, name: &str) -> Result<Oid> {
    let object = repo
        .revparse_single(name)
        .or_else(|_| repo.revparse_single(&format!("refs/heads/{name}")))
        .map_err(|e| anyhow!("no such revision: {}", e.message()))?;
    Ok(object.peel_to_commit().map_err(|e| anyhow!("not a commit: {}", e.message()))?.id())
}

fn push_all_refs(repo: &Repository, walk: &mut git2::Revwalk<'_>, sink: &dyn Sink) -> Result<()> {
    let mut pushed = 0;
    for reference in repo.references()? {
        let reference = match reference {
            Ok(r) => r,
            Err(e) => {
                sink.error("git refs", format!("unreadable ref: {}", e.message()));
                continue;
            }
        };
        let name = reference.name().unwrap_or("?").to_string();
        match reference.peel_to_commit() {
            Ok(commit) => {
                walk.push(commit.id())?;
                pushed += 1;
            }
            // Tags of trees or blobs point at no commit: nothing to walk, nothing wrong.
            Err(e) => {
                if reference.peel(ObjectType::Any).is_err() {
                    sink.error(&name, format!("ref points at a missing or broken object: {}", e.message()));
                }
            }
        }
    }
    if pushed == 0 {
        if let Ok(head) = repo.head().and_then(|h| h.peel_to_commit()) {
            walk.push(head.id())?;
        }
    }
    Ok(())
}

fn record_commit(
    repo: &Repository,
    oid: Oid,
    commits: &mut Vec<CommitInfo>,
    blobs: &mut HashMap<Oid, BlobIntro>,
) -> Result<(), git2::Error> {
    let commit = repo.find_commit(oid)?;
    let tree = commit.tree()?;
    let parent_tree = if commit.parent_count() > 0 { Some(commit.parent(0)?.tree()?) } else { None };
    let mut diff_options = DiffOptions::new();
    diff_options.ignore_submodules(true).skip_binary_check(true);
    let diff = repo.diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), Some(&mut diff_options))?;
    let author = commit.author();
    let index = commits.len();
    commits.push(CommitInfo {
        commit: oid.to_string(),
        author_name: String::from_utf8_lossy(author.name_bytes()).into_owned(),
        author_email: String::from_utf8_lossy(author.email_bytes()).into_owned(),
        date: crate::time::rfc3339_utc(author.when().seconds()),
        summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned(),
    });
    for delta in diff.deltas() {
        if !matches!(
            delta.status(),
            Delta::Added | Delta::Modified | Delta::Renamed | Delta::Copied | Delta::Typechange
        ) {
            continue;
        }
        let new = delta.new_file();
        if new.id().is_zero() || !matches!(new.mode(), git2::FileMode::Blob | git2::FileMode::BlobExecutable) {
            continue;
        }
        let Some(path) = new.path_bytes() else { continue };
        let path = String::from_utf8_lossy(path).into_owned();
        let next_order = blobs.len();
        let intro = blobs.entry(new.id()).or_insert_with(|| BlobIntro { order: next_order, places: Vec::new() });
        if !intro.places.iter().any(|(_, p)| *p == path) {
            intro.places.push((index, path));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn scan_blob(
    repo: &Repository,
    oid: Oid,
    intro: &BlobIntro,
    commits: &[CommitInfo],
    matcher: &Matcher,
    finding_options: FindingOptions,
    limits: Limits,
    sink: &dyn Sink,
) -> Vec<Finding> {
    let (first_commit, first_path) = &intro.places[0];
    let label = format!("{first_path}@{}", &commits[*first_commit].commit[..12]);
    match repo.odb().and_then(|odb| odb.read_header(oid)) {
        Ok((size, _)) if size as u64 > limits.max_file_size => {
            sink.skipped(&label, format!("blob of {size} bytes, larger than --max-file-size"));
            return Vec::new();
        }
        Ok(_) => {}
        Err(e) => {
            sink.error(&label, format!("unreadable git object {oid}: {}", e.message()));
            return Vec::new();
        }
    }
    let blob = match repo.find_blob(oid) {
        Ok(blob) => blob,
        Err(e) => {
            sink.error(&label, format!("unreadable git object {oid}: {}", e.message()));
            return Vec::new();
        }
    };
    let capture = BlobSink { outer: sink, findings: Mutex::new(Vec::new()), label: &label };
    let mut scanner = ContentScanner::new(Searcher::new(matcher, finding_options), limits, &capture);
    scanner.scan_bytes(blob.content(), first_path);
    let found = capture.findings.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::with_capacity(found.len() * intro.places.len());
    for (commit_index, path) in &intro.places {
        for f in &found {
            let mut f = f.clone();
            // Archive entries inside the blob keep their `!inner` suffix.
            f.path = format!("{path}{}", &f.path[first_path.len()..]);
            f.fingerprint = fingerprint(&f.rule_id, &f.secret_sha256, &f.path, f.line);
            f.commit = Some(commits[*commit_index].clone());
            out.push(f);
        }
    }
    out
}

/// Captures one blob's findings (to attach commits) and passes everything else on, labelled
/// with the commit so the user can find the object.
struct BlobSink<'a> {
    outer: &'a dyn Sink,
    findings: Mutex<Vec<Finding>>,
    label: &'a str,
}

impl Sink for BlobSink<'_> {
    fn findings(&self, findings: Vec<Finding>) {
        self.findings.lock().unwrap_or_else(|e| e.into_inner()).extend(findings);
    }
    fn error(&self, path: &str, message: String) {
        self.outer.error(&relabel(path, self.label), message);
    }
    fn skipped(&self, path: &str, reason: String) {
        self.outer.skipped(&relabel(path, self.label), reason);
    }
    fn scanned(&self, bytes: u64) {
        self.outer.scanned(bytes);
    }
    fn archive(&self) {
        self.outer.archive();
    }
}

/// `path!inner` of a blob becomes `path@commit!inner`.
fn relabel(path: &str, label: &str) -> String {
    match path.find('!') {
        Some(i) => format!("{label}{}", &path[i..]),
        None => label.to_string(),
    }
}
