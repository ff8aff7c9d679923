//! Reads a gitleaks config (`gitleaks.toml`) into Keywatch rules, since that is the rule
//! format users already have. Supported: `[[rules]]` with `id`, `description`, `regex`,
//! `secretGroup`, `keywords`, `entropy`, `path`, per-rule `allowlist` / `[[rules.allowlists]]`,
//! and the global `[allowlist]` / `[[allowlists]]` (`regexes`, `regexTarget`, `stopwords`,
//! `paths`, `condition`).

use anyhow::{anyhow, bail, Context, Result};
use keywatch_model::Severity;
use serde::Deserialize;

use crate::rules::{
    compile_user_regex, AllowRegex, AllowTarget, Allowlist, CompiledRule, LoadedRules, RulePattern, SecretGroup,
};

#[derive(Debug, Deserialize)]
struct GitleaksFile {
    #[serde(default)]
    extend: Option<toml::Table>,
    #[serde(default)]
    rules: Vec<GitleaksRule>,
    #[serde(default)]
    allowlist: Option<GitleaksAllowlist>,
    #[serde(default)]
    allowlists: Vec<GitleaksAllowlist>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GitleaksRule {
    id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    secret_group: Option<usize>,
    #[serde(default)]
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    allowlist: Option<GitleaksAllowlist>,
    #[serde(default)]
    allowlists: Vec<GitleaksAllowlist>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GitleaksAllowlist {
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    regex_target: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    commits: Vec<String>,
}

fn convert_allowlist(a: &GitleaksAllowlist, origin: &str, notes: &mut Vec<String>) -> Result<Allowlist> {
    let target = match a.regex_target.as_deref().unwrap_or("secret") {
        "secret" => AllowTarget::Secret,
        "match" => AllowTarget::Match,
        "line" => AllowTarget::Line,
        other => bail!("{origin}: unknown allowlist regexTarget {other:?} (expected secret, match or line)"),
    };
    if matches!(a.condition.as_deref(), Some(c) if c.eq_ignore_ascii_case("and")) {
        notes.push(format!("{origin}: allowlist condition AND is applied as OR (any listed condition suppresses)"));
    }
    if !a.commits.is_empty() {
        notes.push(format!("{origin}: allowlist commits are not applied"));
    }
    let mut out = Allowlist::default();
    for r in &a.regexes {
        let re = compile_user_regex(r).with_context(|| format!("{origin}: invalid allowlist regex {r:?}"))?;
        out.regexes.push((target, AllowRegex::compiled(re)));
    }
    out.stopwords = a.stopwords.iter().map(|s| s.to_ascii_lowercase()).collect();
    for p in &a.paths {
        out.paths.push(compile_user_regex(p).with_context(|| format!("{origin}: invalid allowlist path {p:?}"))?);
    }
    Ok(out)
}

/// A provider name for a gitleaks rule, which has none: the first word of its id.
fn provider_from_id(id: &str) -> String {
    id.split(['-', '_']).next().filter(|s| !s.is_empty()).unwrap_or(id).to_string()
}

pub fn parse(text: &str, origin: &str) -> Result<LoadedRules> {
    let file: GitleaksFile = toml::from_str(text).map_err(|e| anyhow!("{origin}: invalid gitleaks config: {e}"))?;
    let mut loaded = LoadedRules::default();
    if file.extend.is_some() {
        loaded.notes.push(format!("{origin}: [extend] is ignored; Keywatch's built-in rules run alongside this file"));
    }
    let mut seen = std::collections::HashSet::new();
    for rule in file.rules {
        let rule_origin = format!("{origin}: rule {:?}", rule.id);
        if !seen.insert(rule.id.clone()) {
            bail!("{origin}: rule id {:?} is defined twice", rule.id);
        }
        let Some(pattern) = rule.regex.as_deref().filter(|p| !p.is_empty()) else {
            loaded.notes.push(format!("{rule_origin}: file-name-only rules (path without regex) are skipped"));
            continue;
        };
        let regex = compile_user_regex(pattern).with_context(|| format!("{rule_origin}: invalid regex"))?;
        let secret_group = match rule.secret_group {
            Some(0) => SecretGroup::Whole,
            Some(g) if g < regex.captures_len() => SecretGroup::Index(g),
            Some(g) => bail!("{rule_origin}: secretGroup {g} but the regex has {} groups", regex.captures_len() - 1),
            None if regex.captures_len() > 1 => SecretGroup::Index(1),
            None => SecretGroup::Whole,
        };
        let mut allowlist = Allowlist::default();
        for a in rule.allowlist.iter().chain(rule.allowlists.iter()) {
            allowlist.merge(convert_allowlist(a, &rule_origin, &mut loaded.notes)?);
        }
        let path_filter = match rule.path.as_deref() {
            Some(p) => Some(compile_user_regex(p).with_context(|| format!("{rule_origin}: invalid path regex"))?),
            None => None,
        };
        let keywords: Vec<String> =
            rule.keywords.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
        loaded.rules.push(CompiledRule {
            provider: provider_from_id(&rule.id),
            description: rule.description.unwrap_or_else(|| rule.id.clone()),
            id: rule.id,
            severity: Severity::Medium,
            keywords,
            pattern: RulePattern::user(regex, secret_group, pattern),
            min_entropy: rule.entropy,
            validator: None,
            multiline: true,
            generic: false,
            allowlist,
            path_filter,
            examples: Vec::new(),
            negative_examples: Vec::new(),
            origin: origin.to_string(),
        });
    }
    for a in file.allowlist.iter().chain(file.allowlists.iter()) {
        let g = convert_allowlist(a, origin, &mut loaded.notes)?;
        loaded.global_allowlist.merge(g);
    }
    Ok(loaded)
}
