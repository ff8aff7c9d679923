//! Every built-in rule's `examples` must produce a finding of that rule, and its
//! `negative_examples` must not; the rule set must cover what the project promises.

use keywatch_scan::searcher::{FindingOptions, Searcher};
use keywatch_scan::{LoadedRules, Matcher};
use std::collections::HashSet;

fn rule_ids_found(searcher: &mut Searcher<'_>, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    searcher.search_slice(text.as_bytes(), "example.txt", &mut out);
    out.into_iter().map(|f| f.rule_id).collect()
}

#[test]
fn every_rule_matches_its_examples_and_not_its_negatives() {
    let rules = LoadedRules::builtin().expect("built-in rules load");
    let matcher = Matcher::new(rules, false).expect("matcher builds");
    let mut searcher = Searcher::new(&matcher, FindingOptions::default());
    let mut failures = Vec::new();
    for rule in matcher.rules() {
        if rule.examples.is_empty() {
            failures.push(format!("{}: has no examples", rule.id));
        }
        if rule.negative_examples.is_empty() {
            failures.push(format!("{}: has no negative_examples", rule.id));
        }
        if rule.keywords.is_empty() {
            failures.push(format!("{}: has no keywords (it would run on every byte)", rule.id));
        }
        for example in &rule.examples {
            if !rule_ids_found(&mut searcher, example).contains(&rule.id) {
                failures.push(format!("{}: example not found: {example}", rule.id));
            }
        }
        for example in &rule.negative_examples {
            if rule_ids_found(&mut searcher, example).contains(&rule.id) {
                failures.push(format!("{}: negative example matched: {example}", rule.id));
            }
        }
    }
    assert!(failures.is_empty(), "{} rule example failures:\n{}", failures.len(), failures.join("\n"));
}

/// The built-in set compiles its regexes on first use, so this is where an invalid one shows.
#[test]
fn every_builtin_pattern_compiles_within_limits() {
    let rules = LoadedRules::builtin().expect("built-in rules load");
    let failures: Vec<String> = rules
        .rules
        .iter()
        .flat_map(|rule| {
            let allow = rule.allowlist.regexes.iter().filter_map(|(_, re)| re.try_get().err());
            rule.pattern.try_program().err().into_iter().chain(allow).map(|e| format!("{}: {e:#}", rule.id))
        })
        .collect();
    assert!(failures.is_empty(), "built-in patterns that do not compile:\n{}", failures.join("\n"));
}

#[test]
fn rule_set_is_large_and_unique() {
    let rules = LoadedRules::builtin().expect("built-in rules load");
    let ids: HashSet<&str> = rules.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), rules.rules.len(), "duplicate rule ids");
    assert!(rules.rules.len() >= 200, "only {} built-in rules", rules.rules.len());
    let providers: HashSet<String> = rules.rules.iter().map(|r| r.provider.to_ascii_lowercase()).collect();
    for required in [
        "aws",
        "github",
        "gitlab",
        "slack",
        "stripe",
        "okta",
        "atlassian",
        "google cloud",
        "azure",
        "openai",
        "anthropic",
        "twilio",
        "sendgrid",
        "npm",
        "pypi",
        "hashicorp vault",
        "terraform cloud",
        "datadog",
    ] {
        assert!(
            providers.iter().any(|p| p.contains(required)),
            "no rule for provider {required:?}; providers: {providers:?}"
        );
    }
}
