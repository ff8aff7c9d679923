//! Files and directories: a parallel walk (the `ignore` crate, as in ripgrep) that honours
//! `.gitignore` and `.keywatchignore`, never descends into `.git`, does not follow symlinks,
//! and hands each regular file to a per-thread [`ContentScanner`].

use globset::GlobSet;
use ignore::{WalkBuilder, WalkState};
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::content::{ContentScanner, Limits};
use crate::matcher::Matcher;
use crate::searcher::{FindingOptions, Searcher};
use crate::sink::Sink;

#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Do not honour `.gitignore`, `.ignore` and `.keywatchignore` files.
    pub no_ignore: bool,
    /// Paths (relative to the scanned root) matching these are skipped.
    pub exclude: Option<GlobSet>,
    /// Worker threads; 0 means one per core.
    pub threads: usize,
}

/// A path for display: `./a/b` becomes `a/b`.
fn display_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    s.strip_prefix("./").unwrap_or(&s).to_string()
}

fn is_excluded(exclude: &Option<GlobSet>, roots: &[PathBuf], path: &Path) -> bool {
    let Some(set) = exclude else { return false };
    if set.is_match(path) {
        return true;
    }
    roots
        .iter()
        .filter_map(|root| path.strip_prefix(root).ok())
        .any(|rel| !rel.as_os_str().is_empty() && set.is_match(rel))
}

pub fn scan_paths(
    roots: &[PathBuf],
    matcher: &Matcher,
    finding_options: FindingOptions,
    limits: Limits,
    options: &WalkOptions,
    sink: &dyn Sink,
) {
    let Some((first, rest)) = roots.split_first() else { return };
    let mut builder = WalkBuilder::new(first);
    for root in rest {
        builder.add(root);
    }
    let respect = !options.no_ignore;
    builder
        .hidden(false)
        .ignore(respect)
        .git_ignore(respect)
        .git_global(respect)
        .git_exclude(respect)
        .parents(respect)
        .require_git(false)
        .follow_links(false)
        .threads(options.threads)
        .filter_entry(|entry| entry.file_name() != ".git");
    if respect {
        builder.add_custom_ignore_filename(".keywatchignore");
    }
    let canonical_roots: Vec<PathBuf> = roots.iter().filter_map(|r| r.canonicalize().ok()).collect();
    builder.build_parallel().run(|| {
        let mut scanner = ContentScanner::new(Searcher::new(matcher, finding_options), limits, sink);
        let canonical_roots = &canonical_roots;
        Box::new(move |result| {
            let entry = match result {
                Ok(entry) => entry,
                Err(err) => {
                    let path = walk_error_path(&err);
                    sink.error(&path, format!("cannot read: {}", strip_path(&err.to_string(), &path)));
                    return WalkState::Continue;
                }
            };
            let path = entry.path();
            if entry.depth() > 0 && is_excluded(&options.exclude, roots, path) {
                return if entry.file_type().is_some_and(|t| t.is_dir()) {
                    WalkState::Skip
                } else {
                    WalkState::Continue
                };
            }
            let Some(file_type) = entry.file_type() else {
                // Standard input is scanned by the caller, never named to the walker.
                return WalkState::Continue;
            };
            let display = display_path(path);
            if file_type.is_symlink() {
                report_symlink(path, &display, canonical_roots, sink);
                return WalkState::Continue;
            }
            if !file_type.is_file() {
                return WalkState::Continue;
            }
            scan_file(&mut scanner, path, &display, limits);
            WalkState::Continue
        })
    });
}

fn scan_file(scanner: &mut ContentScanner<'_>, path: &Path, display: &str, limits: Limits) {
    let sink = scanner.sink;
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            sink.error(display, format!("cannot open: {e}"));
            return;
        }
    };
    match file.metadata() {
        Ok(meta) if meta.len() > limits.max_file_size => {
            sink.skipped(
                display,
                format!("{} bytes, larger than --max-file-size ({} bytes)", meta.len(), limits.max_file_size),
            );
            return;
        }
        Ok(_) => {}
        Err(e) => {
            sink.error(display, format!("cannot stat: {e}"));
            return;
        }
    }
    scanner.scan_top(&mut file, display, Some(path));
}

/// Symlinks are never followed: their targets inside the tree are scanned on their own, and
/// those outside it are reported, since following them would read beyond what was asked.
fn report_symlink(path: &Path, display: &str, roots: &[PathBuf], sink: &dyn Sink) {
    match path.canonicalize() {
        Ok(target) if !roots.iter().any(|r| target.starts_with(r)) => {
            sink.skipped(display, format!("symlink to {} outside the scanned tree, not followed", target.display()));
        }
        Ok(_) => {}
        Err(_) => sink.skipped(display, "dangling symlink".into()),
    }
}

fn walk_error_path(err: &ignore::Error) -> String {
    match err {
        ignore::Error::WithPath { path, .. } => display_path(path),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => walk_error_path(err),
        ignore::Error::Loop { child, .. } => display_path(child),
        ignore::Error::Partial(errs) => errs.first().map(walk_error_path).unwrap_or_default(),
        _ => String::new(),
    }
}

fn strip_path(message: &str, path: &str) -> String {
    message
        .strip_prefix(&format!("{path}: "))
        .or_else(|| message.strip_prefix(&format!("./{path}: ")))
        .unwrap_or(message)
        .to_string()
}
