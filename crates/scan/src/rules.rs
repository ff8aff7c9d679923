//! Rule files: the Keywatch format (`docs/rules.md`), gitleaks configs, and compilation into
//! a [`RuleSet`] the matcher can run.
//!
//! Loading is strict about structure (unknown severities, patterns without a secret, invalid
//! regexes are errors naming the file and rule) because a silently dropped rule is a silently
//! missed leak.

use anyhow::{anyhow, bail, Context, Result};
use keywatch_model::Severity;
use regex::bytes::{Regex, RegexBuilder};
use serde::Deserialize;
use std::path::Path;
use std::sync::OnceLock;

use crate::validate::Validator;

/// The built-in rules, embedded so the binary needs no files at run time.
pub const DEFAULT_RULES: &str = include_str!("../../../data/rules/default.toml");

/// Largest compiled program one rule may produce; keeps a hostile rule file from eating memory.
const REGEX_SIZE_LIMIT: usize = 8 << 20;
const MAX_RULES_PER_FILE: usize = 10_000;

/// One rule as written in a Keywatch rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    pub id: String,
    pub provider: String,
    pub description: String,
    pub severity: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub pattern: String,
    #[serde(default)]
    pub min_entropy: Option<f64>,
    #[serde(default)]
    pub validator: Option<String>,
    #[serde(default)]
    pub multiline: bool,
    #[serde(default)]
    pub generic: bool,
    #[serde(default)]
    pub allow: Vec<String>,
    /// Regexes on the whole match (not just the secret): `user:pass@host.example.com`.
    #[serde(default)]
    pub allow_match: Vec<String>,
    #[serde(default)]
    pub examples: Vec<String>,
    #[serde(default)]
    pub negative_examples: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeywatchFile {
    #[serde(default)]
    rules: Vec<RuleDef>,
}

/// Where in the match an allow-list regex looks (gitleaks' `regexTarget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowTarget {
    Secret,
    Match,
    Line,
}

/// Conditions that suppress a candidate of one rule (or of every rule, for global lists).
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    pub regexes: Vec<(AllowTarget, AllowRegex)>,
    /// Lowercase words; a secret containing one is dropped.
    pub stopwords: Vec<String>,
    /// Regexes on the path of the scanned file.
    pub paths: Vec<Regex>,
}

impl Allowlist {
    pub fn is_empty(&self) -> bool {
        self.regexes.is_empty() && self.stopwords.is_empty() && self.paths.is_empty()
    }

    pub fn merge(&mut self, other: Allowlist) {
        self.regexes.extend(other.regexes);
        self.stopwords.extend(other.stopwords);
        self.paths.extend(other.paths);
    }
}

/// An allow-list regex; like [`RulePattern`], compiled on first use for the built-in set.
#[derive(Debug, Clone)]
pub struct AllowRegex {
    source: String,
    regex: OnceLock<Regex>,
}

impl AllowRegex {
    pub fn compiled(regex: Regex) -> Self {
        AllowRegex { source: regex.as_str().to_string(), regex: OnceLock::from(regex) }
    }

    pub fn deferred(source: &str) -> Self {
        AllowRegex { source: source.to_string(), regex: OnceLock::new() }
    }

    pub fn get(&self) -> &Regex {
        self.regex.get_or_init(|| {
            compile_regex(&self.source)
                .unwrap_or_else(|e| panic!("built-in allow regex {:?} does not compile: {e:#}", self.source))
        })
    }

    /// Compiles now, reporting instead of panicking; the rule tests use it.
    pub fn try_get(&self) -> Result<&Regex> {
        if let Some(regex) = self.regex.get() {
            return Ok(regex);
        }
        let regex = compile_regex(&self.source)?;
        Ok(self.regex.get_or_init(|| regex))
    }
}

/// How the secret is found within a match.
#[derive(Debug, Clone, Copy)]
pub enum SecretGroup {
    Index(usize),
    Whole,
}

/// A rule's regex and where its secret is, compiled on first use for the built-in set.
///
/// Compiling all 351 built-in regexes took more time than sanitising a 20 MB HAR, yet a
/// typical input wakes only a few dozen of them (a rule's regex runs only where one of its
/// keywords occurs). User rule files are still compiled on load, so an invalid regex is an
/// error naming the file and rule before any scanning starts; the built-in set's regexes are
/// all compiled by its tests.
#[derive(Debug, Clone)]
pub struct RulePattern {
    source: String,
    program: OnceLock<Program>,
}

#[derive(Debug, Clone)]
pub struct Program {
    pub regex: Regex,
    pub secret_group: SecretGroup,
}

impl RulePattern {
    /// Compiles now: for user rule files, whose errors must surface at load time.
    pub fn eager(source: &str) -> Result<Self> {
        let pattern = RulePattern::deferred(source);
        pattern.try_program()?;
        Ok(pattern)
    }

    /// Compiles on first use: for the built-in rules, which their tests prove valid.
    pub fn deferred(source: &str) -> Self {
        RulePattern { source: source.to_string(), program: OnceLock::new() }
    }

    /// A user (gitleaks) rule's compiled pattern with the secret group its file names.
    pub(crate) fn user(regex: Regex, secret_group: SecretGroup, source: &str) -> Self {
        RulePattern { source: source.to_string(), program: OnceLock::from(Program { regex, secret_group }) }
    }

    /// The compiled program. A deferred pattern that does not compile is a defect of the
    /// built-in rule set, which the rule tests rule out.
    pub fn program(&self) -> &Program {
        self.program.get_or_init(|| {
            self.compile().unwrap_or_else(|e| panic!("built-in rule pattern {:?} does not compile: {e:#}", self.source))
        })
    }

    /// The secret is the group named `secret`, else the first group, else the whole match.
    fn compile(&self) -> Result<Program> {
        let regex = compile_regex(&self.source)?;
        let secret_group = match regex.capture_names().position(|n| n == Some("secret")) {
            Some(i) => SecretGroup::Index(i),
            None if regex.captures_len() > 1 => SecretGroup::Index(1),
            None => SecretGroup::Whole,
        };
        Ok(Program { regex, secret_group })
    }

    /// Compiles a deferred pattern now, reporting instead of panicking; the rule tests use it.
    pub fn try_program(&self) -> Result<&Program> {
        if let Some(program) = self.program.get() {
            return Ok(program);
        }
        let program = self.compile()?;
        Ok(self.program.get_or_init(|| program))
    }
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub id: String,
    pub provider: String,
    pub description: String,
    pub severity: Severity,
    pub keywords: Vec<String>,
    pub pattern: RulePattern,
    pub min_entropy: Option<f64>,
    pub validator: Option<Validator>,
    pub multiline: bool,
    pub generic: bool,
    pub allowlist: Allowlist,
    /// Only files whose path matches are scanned with this rule (gitleaks `path`).
    pub path_filter: Option<Regex>,
    pub examples: Vec<String>,
    pub negative_examples: Vec<String>,
    /// Where the rule came from, for error messages: `built-in` or a file path.
    pub origin: String,
}

fn compile_regex(pattern: &str) -> Result<Regex> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| anyhow!("{e}"))
}

/// When a rule file's main patterns are compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compile {
    OnLoad,
    OnFirstUse,
}

impl CompiledRule {
    pub fn from_def(def: RuleDef, origin: &str, when: Compile) -> Result<Self> {
        let ctx = || format!("{origin}: rule {:?}", def.id);
        if def.id.trim().is_empty() {
            bail!("{origin}: a rule has an empty id");
        }
        let severity: Severity = def.severity.parse().map_err(|e: String| anyhow!(e)).with_context(ctx)?;
        let pattern = match when {
            Compile::OnLoad => {
                RulePattern::eager(&def.pattern).with_context(|| format!("{}: invalid pattern", ctx()))?
            }
            Compile::OnFirstUse => RulePattern::deferred(&def.pattern),
        };
        let validator = match def.validator.as_deref() {
            None => None,
            Some(name) => Some(Validator::from_name(name).with_context(ctx)?),
        };
        if let Some(e) = def.min_entropy {
            if !(0.0..=8.0).contains(&e) {
                bail!("{}: min_entropy {e} is outside 0..8 bits per byte", ctx());
            }
        }
        let mut allowlist = Allowlist::default();
        let allow = def.allow.iter().map(|a| (AllowTarget::Secret, a, "allow"));
        for (target, source, field) in
            allow.chain(def.allow_match.iter().map(|a| (AllowTarget::Match, a, "allow_match")))
        {
            let regex = match when {
                Compile::OnLoad => AllowRegex::compiled(
                    compile_regex(source).with_context(|| format!("{}: invalid {field} regex", ctx()))?,
                ),
                Compile::OnFirstUse => AllowRegex::deferred(source),
            };
            allowlist.regexes.push((target, regex));
        }
        let keywords = normalise_keywords(&def.keywords).with_context(ctx)?;
        Ok(CompiledRule {
            id: def.id,
            provider: def.provider,
            description: def.description,
            severity,
            keywords,
            pattern,
            min_entropy: def.min_entropy,
            validator,
            multiline: def.multiline,
            generic: def.generic,
            allowlist,
            path_filter: None,
            examples: def.examples,
            negative_examples: def.negative_examples,
            origin: origin.to_string(),
        })
    }
}

fn normalise_keywords(keywords: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(keywords.len());
    for k in keywords {
        // Spaces are kept: `"pass "` is a different keyword from `"pass"`.
        if k.trim().is_empty() {
            bail!("empty keyword");
        }
        out.push(k.clone());
    }
    Ok(out)
}

/// Rules plus the global allow-list of a set of rule files.
#[derive(Debug, Clone, Default)]
pub struct LoadedRules {
    pub rules: Vec<CompiledRule>,
    pub global_allowlist: Allowlist,
    /// Things the loader understood but did not apply (e.g. gitleaks `[extend]`).
    pub notes: Vec<String>,
}

impl LoadedRules {
    pub fn builtin() -> Result<Self> {
        parse_rules(DEFAULT_RULES, "built-in rules", Compile::OnFirstUse)
    }

    pub fn load_file(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).with_context(|| format!("{}: cannot read rule file", path.display()))?;
        let text = String::from_utf8(text).map_err(|e| {
            anyhow!("{}: rule file is not UTF-8 (byte {})", path.display(), e.utf8_error().valid_up_to())
        })?;
        parse_rule_text(&text, &path.display().to_string())
    }

    pub fn extend(&mut self, other: LoadedRules) -> Result<()> {
        for r in other.rules {
            if let Some(existing) = self.rules.iter().find(|e| e.id == r.id) {
                bail!("{}: rule id {:?} is already defined by {}", r.origin, r.id, existing.origin);
            }
            self.rules.push(r);
        }
        self.global_allowlist.merge(other.global_allowlist);
        self.notes.extend(other.notes);
        Ok(())
    }
}

/// Parses a rule file's text, recognising gitleaks configs by their `regex` fields.
pub fn parse_rule_text(text: &str, origin: &str) -> Result<LoadedRules> {
    parse_rules(text, origin, Compile::OnLoad)
}

fn parse_rules(text: &str, origin: &str, when: Compile) -> Result<LoadedRules> {
    let value: toml::Table = toml::from_str(text).map_err(|e| anyhow!("{origin}: invalid TOML: {e}"))?;
    let rules = value.get("rules").and_then(|r| r.as_array());
    let looks_gitleaks = value.contains_key("allowlist")
        || value.contains_key("allowlists")
        || value.contains_key("extend")
        || value.contains_key("title")
        || rules.is_some_and(|rs| rs.iter().any(|r| r.get("regex").is_some() || r.get("path").is_some()));
    if looks_gitleaks {
        return crate::gitleaks::parse(text, origin);
    }
    let file: KeywatchFile = toml::from_str(text).map_err(|e| anyhow!("{origin}: {e}"))?;
    if file.rules.len() > MAX_RULES_PER_FILE {
        bail!("{origin}: {} rules is more than the limit of {MAX_RULES_PER_FILE}", file.rules.len());
    }
    let mut loaded = LoadedRules::default();
    let mut seen = std::collections::HashSet::new();
    for def in file.rules {
        if !seen.insert(def.id.clone()) {
            bail!("{origin}: rule id {:?} is defined twice", def.id);
        }
        loaded.rules.push(CompiledRule::from_def(def, origin, when)?);
    }
    Ok(loaded)
}

/// Compiles a regex from a user's (gitleaks) rule file. Go's RE2 and Rust's regex share
/// their syntax for what rule files use; patterns with Unicode classes (`\p{L}`) are only
/// valid in Unicode mode, so they get it.
pub(crate) fn compile_user_regex(pattern: &str) -> Result<Regex> {
    compile_regex(pattern).or_else(|first| {
        RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|_| first)
    })
}
