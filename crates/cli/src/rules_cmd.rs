//! `keywatch rules`: list the rules a scan would use, or check a rule file by loading it and
//! running its examples.

use anyhow::Result;
use clap::Subcommand;
use keywatch_scan::searcher::{FindingOptions, Searcher};
use keywatch_scan::{LoadedRules, Matcher};
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::{exit, Global};

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// List rules: id, provider, severity, description
    List {
        /// Also list the rules of these files (Keywatch or gitleaks format)
        #[arg(long = "rules", value_name = "FILE")]
        rules: Vec<PathBuf>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Load rule files and run each rule's examples; exit 1 if any example fails
    Check {
        /// Rule files to check (the built-in set when none is given)
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(_global: &Global, cmd: &RulesCommand) -> Result<u8> {
    match cmd {
        RulesCommand::List { rules, json } => {
            let mut loaded = LoadedRules::builtin()?;
            for file in rules {
                loaded.extend(LoadedRules::load_file(file)?)?;
            }
            let mut out = String::new();
            if *json {
                let list: Vec<_> = loaded
                    .rules
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.id, "provider": r.provider, "severity": r.severity,
                            "description": r.description, "keywords": r.keywords,
                            "validator": r.validator.map(|v| format!("{v:?}")), "origin": r.origin,
                        })
                    })
                    .collect();
                out = serde_json::to_string_pretty(&serde_json::json!({ "rules": list }))? + "\n";
            } else {
                for r in &loaded.rules {
                    let _ = writeln!(out, "{:<40} {:<22} {:<8} {}", r.id, r.provider, r.severity, r.description);
                }
                let _ = writeln!(out, "{} rules", loaded.rules.len());
            }
            crate::output::write_stdout(out.as_bytes())?;
            Ok(exit::CLEAN)
        }
        RulesCommand::Check { files } => {
            let loaded = if files.is_empty() {
                LoadedRules::builtin()?
            } else {
                let mut all = LoadedRules::default();
                for file in files {
                    all.extend(LoadedRules::load_file(file)?)?;
                }
                all
            };
            for note in &loaded.notes {
                eprintln!("note: {note}");
            }
            let count = loaded.rules.len();
            let matcher = Matcher::new(loaded, false)?;
            let mut searcher = Searcher::new(&matcher, FindingOptions::default());
            let mut failures = 0;
            for rule in matcher.rules() {
                let cases =
                    rule.examples.iter().map(|e| (e, true)).chain(rule.negative_examples.iter().map(|e| (e, false)));
                for (example, should_match) in cases {
                    let mut found = Vec::new();
                    searcher.search_slice(example.as_bytes(), "example", &mut found);
                    if found.iter().any(|f| f.rule_id == rule.id) != should_match {
                        failures += 1;
                        let what = if should_match { "example not matched" } else { "negative example matched" };
                        eprintln!("{}: {what}: {example}", rule.id);
                    }
                }
            }
            println!("{count} rules loaded, {failures} example failures");
            Ok(if failures == 0 { exit::CLEAN } else { exit::FOUND })
        }
    }
}
