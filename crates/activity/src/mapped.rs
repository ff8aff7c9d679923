//! A reader for any JSON-lines audit log (Vault audit devices, Kubernetes audit, Cloudflare
//! logs, ...), driven by a mapping file in TOML that says where each [`Event`] field is:
//!
//! ```toml
//! platform = "vault"                            # the events' platform
//! recognise = ["type", "request.operation"]     # paths that must all be present
//!
//! [[skip]]                                      # optional: records of this source to pass over
//! path = "type"
//! values = ["request"]                          # glob patterns, as for categories
//!
//! [fields]
//! time = "time"                                 # required
//! time_format = "rfc3339"                       # rfc3339 (default) | unix | unix_ms | unix_ns
//! action = ["request.operation", "request.path"]  # required; several paths joined by ':'
//! event_id = "request.id"
//! identity = "auth.display_name"
//! credential = "auth.accessor"
//! session = "..."
//! source_ip = "request.remote_address"          # kept only if it is an IP (a port is dropped)
//! via_service = "..."
//! user_agent = 'request.headers."user-agent"'
//! resource = "request.path"
//! error = "error"
//! outcome = "..."                               # see below
//! success_values = ["..."]
//! failure_values = ["..."]
//! revoked_credential = "request.data.accessor"  # the resource of revocations
//!
//! [categories]                                  # optional: glob patterns on the action
//! privilege_change = ["update:sys/policy/*"]
//! secret_read = ["read:secret/*"]
//! defence_evasion = ["delete:sys/audit/*"]
//! exposure_change = []
//! revocation = ["update:auth/token/revoke*"]
//! read_only = ["read:*", "list:*"]
//! ```
//!
//! **Paths.** A path is a string of keys separated by dots (`request.headers.user-agent`); a key
//! holding dots is written in double quotes (`annotations."authorization.k8s.io/decision"`,
//! with `\"` and `\\` inside); a key that is a number indexes an array (`sourceIPs.0`). A path
//! may also be an array of keys taken literally (`["request", "headers", "user-agent"]`), except
//! for `action`, where an array lists several paths whose values are joined by `:` (each a
//! string, or itself an array of keys). A value that is absent or null counts as missing.
//!
//! **Values.** Text fields take strings (trimmed; empty counts as missing), numbers and booleans
//! (written out, so numeric ids work), and an array's first element (Vault audit writes header
//! values as arrays); an object, or an array of objects, is an error naming the field and path.
//! `source_ip` keeps only an IP address, taken from `ip`, `ip:port` or `[ip]:port`.
//!
//! **Time.** `rfc3339` takes a string; `unix`, `unix_ms` and `unix_ns` take a number (whole or
//! fractional) or a string holding one, in seconds, milliseconds or nanoseconds since the epoch.
//!
//! **Outcome.**
//! - Without `outcome`: the event failed when `error` has a value.
//! - With `outcome` and neither list: the event failed when the `outcome` value is present and
//!   is not `false` or an empty string (present means failure, for fields such as Vault's
//!   `error`).
//! - With `failure_values` and/or `success_values` (glob patterns, matched case-insensitively
//!   against the value as text: `"4*"` matches HTTP status 403): a value matching
//!   `failure_values` failed; one matching `success_values` succeeded; any other present value
//!   failed if `success_values` is given and succeeded otherwise; an absent value succeeded.
//!
//! **Categories.** Patterns are globs on the whole action (`*` any run of characters, `?` one
//! character), case-insensitive. The first list that matches, in the order revocation,
//! defence_evasion, exposure_change, privilege_change, secret_read, gives the category; a
//! revocation's resource is `revoked_credential` when that has a value. With `read_only`
//! patterns, `read_only` is whether the action matches one; without, it is left unknown.
//!
//! **Skip.** Records of this source that carry nothing new (Vault writes one line for the
//! request and one for the response to it) are listed under `[[skip]]`: a record is skipped
//! when the value at `path` matches one of `values`. [`Mapping::recognise`] still recognises
//! them; callers ask [`Mapping::skips`] and pass over those (reading them does no harm but
//! counts each call twice).

use crate::fields::type_name;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{anyhow, Context as _};
use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A parsed, checked mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    origin: String,
    platform: String,
    recognise: Vec<KeyPath>,
    skip: Vec<(KeyPath, Vec<Glob>)>,
    time: KeyPath,
    time_format: TimeFormat,
    action: Vec<KeyPath>,
    event_id: Option<KeyPath>,
    identity: Option<KeyPath>,
    credential: Option<KeyPath>,
    session: Option<KeyPath>,
    source_ip: Option<KeyPath>,
    via_service: Option<KeyPath>,
    user_agent: Option<KeyPath>,
    resource: Option<KeyPath>,
    error: Option<KeyPath>,
    outcome: Option<KeyPath>,
    success_values: Vec<Glob>,
    failure_values: Vec<Glob>,
    revoked_credential: Option<KeyPath>,
    /// In the order they are tried.
    categories: Vec<(Category, Vec<Glob>)>,
    read_only: Option<Vec<Glob>>,
}

/// How the time field is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    #[default]
    Rfc3339,
    Unix,
    UnixMs,
    UnixNs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    platform: String,
    recognise: Vec<PathSpec>,
    #[serde(default)]
    skip: Vec<SkipSpec>,
    fields: FieldsSpec,
    #[serde(default)]
    categories: CategoriesSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipSpec {
    path: PathSpec,
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsSpec {
    time: PathSpec,
    #[serde(default)]
    time_format: TimeFormat,
    action: ActionSpec,
    event_id: Option<PathSpec>,
    identity: Option<PathSpec>,
    credential: Option<PathSpec>,
    session: Option<PathSpec>,
    source_ip: Option<PathSpec>,
    via_service: Option<PathSpec>,
    user_agent: Option<PathSpec>,
    resource: Option<PathSpec>,
    error: Option<PathSpec>,
    outcome: Option<PathSpec>,
    #[serde(default)]
    success_values: Vec<String>,
    #[serde(default)]
    failure_values: Vec<String>,
    revoked_credential: Option<PathSpec>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CategoriesSpec {
    #[serde(default)]
    privilege_change: Vec<String>,
    #[serde(default)]
    secret_read: Vec<String>,
    #[serde(default)]
    defence_evasion: Vec<String>,
    #[serde(default)]
    exposure_change: Vec<String>,
    #[serde(default)]
    revocation: Vec<String>,
    read_only: Option<Vec<String>>,
}

/// A path as written: a dotted string, or an array of keys.
enum PathSpec {
    Dotted(String),
    Keys(Vec<String>),
}

impl<'de> Deserialize<'de> for PathSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PathSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a dotted path string or an array of key strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PathSpec, E> {
                Ok(PathSpec::Dotted(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PathSpec, A::Error> {
                let mut keys = Vec::new();
                while let Some(k) = seq.next_element::<String>()? {
                    keys.push(k);
                }
                Ok(PathSpec::Keys(keys))
            }
        }
        d.deserialize_any(V)
    }
}

/// The action: one path, or several joined by `:`.
struct ActionSpec(Vec<PathSpec>);

impl<'de> Deserialize<'de> for ActionSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ActionSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path, or an array of paths to join with ':'")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ActionSpec, E> {
                Ok(ActionSpec(vec![PathSpec::Dotted(s.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ActionSpec, A::Error> {
                let mut paths = Vec::new();
                while let Some(p) = seq.next_element::<PathSpec>()? {
                    paths.push(p);
                }
                Ok(ActionSpec(paths))
            }
        }
        d.deserialize_any(V)
    }
}

/// A checked path: its keys, and how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyPath {
    shown: String,
    keys: Vec<String>,
}

impl KeyPath {
    fn from_spec(spec: PathSpec) -> Result<KeyPath, String> {
        match spec {
            PathSpec::Dotted(text) => {
                let keys = split_path(&text)?;
                Ok(KeyPath { shown: text, keys })
            }
            PathSpec::Keys(keys) => {
                if keys.is_empty() {
                    return Err("a path given as an array needs at least one key".into());
                }
                let shown = keys
                    .iter()
                    .map(|k| {
                        if k.is_empty() || k.contains(['.', '"', '\\']) {
                            format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))
                        } else {
                            k.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(".");
                Ok(KeyPath { shown, keys })
            }
        }
    }

    /// The value at this path in `root`; absent or null → `None`.
    fn lookup<'v>(&self, root: &'v Map<String, Value>) -> Option<&'v Value> {
        let (first, rest) = self.keys.split_first()?;
        let mut current = root.get(first)?;
        for key in rest {
            current = match current {
                Value::Object(m) => m.get(key)?,
                Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        (!current.is_null()).then_some(current)
    }
}

/// Splits `a.b."c.d".e` into its keys.
fn split_path(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Err("empty path".into());
    }
    let mut keys = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut key = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => key.push(c),
                        None => return Err(format!("path {text:?}: unterminated quoted key")),
                    },
                    Some(c) => key.push(c),
                    None => return Err(format!("path {text:?}: unterminated quoted key")),
                }
            }
            keys.push(key);
            match chars.next() {
                None => return Ok(keys),
                Some('.') => {}
                Some(c) => return Err(format!("path {text:?}: {c:?} after a quoted key (expected '.')")),
            }
        } else {
            loop {
                match chars.next() {
                    None | Some('.') if key.is_empty() => return Err(format!("path {text:?}: empty key")),
                    None => {
                        keys.push(key);
                        return Ok(keys);
                    }
                    Some('.') => break,
                    Some('"') => return Err(format!("path {text:?}: a quote inside a key (quote the whole key)")),
                    Some(c) => key.push(c),
                }
            }
            keys.push(key);
        }
        if chars.peek().is_none() {
            return Err(format!("path {text:?}: empty key at the end"));
        }
    }
}

/// A glob pattern, lower case: `*` any run of characters, `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob(Vec<char>);

impl Glob {
    fn new(pattern: &str) -> Glob {
        Glob(pattern.to_lowercase().chars().collect())
    }

    /// Whether `text` (already lower case, as chars) matches.
    fn matches(&self, text: &[char]) -> bool {
        let p = &self.0;
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < text.len() {
            if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ti));
                pi += 1;
            } else if pi < p.len() && (p[pi] == '?' || p[pi] == text[ti]) {
                pi += 1;
                ti += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == '*')
    }
}

fn lower_chars(text: &str) -> Vec<char> {
    text.to_lowercase().chars().collect()
}

fn any_match(globs: &[Glob], text: &[char]) -> bool {
    globs.iter().any(|g| g.matches(text))
}

fn globs(patterns: Vec<String>) -> Vec<Glob> {
    patterns.iter().map(|p| Glob::new(p)).collect()
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> anyhow::Result<Mapping> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read mapping {}", path.display()))?;
        Mapping::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a mapping; `origin` (the file) starts every error message.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Mapping> {
        let spec: FileSpec = toml::from_str(text).map_err(|e| anyhow!("{origin}: {}", e.to_string().trim_end()))?;
        let fail = |what: &str, message: String| anyhow!("{origin}: {what}: {message}");
        let path = |what: &str, spec: PathSpec| KeyPath::from_spec(spec).map_err(|m| fail(what, m));
        let opt_path = |what: &str, spec: Option<PathSpec>| spec.map(|s| path(what, s)).transpose();

        let platform = spec.platform.trim().to_string();
        if platform.is_empty() {
            return Err(fail("platform", "is empty".into()));
        }
        if spec.recognise.is_empty() {
            return Err(fail("recognise", "must name at least one path".into()));
        }
        let recognise = spec.recognise.into_iter().map(|p| path("recognise", p)).collect::<anyhow::Result<Vec<_>>>()?;
        let mut skip = Vec::new();
        for (i, rule) in spec.skip.into_iter().enumerate() {
            let what = format!("skip[{i}]");
            if rule.values.is_empty() {
                return Err(fail(&what, "values is empty".into()));
            }
            skip.push((path(&what, rule.path)?, globs(rule.values)));
        }
        let f = spec.fields;
        if f.action.0.is_empty() {
            return Err(fail("fields.action", "names no path".into()));
        }
        let action = f.action.0.into_iter().map(|p| path("fields.action", p)).collect::<anyhow::Result<Vec<_>>>()?;
        if f.outcome.is_none() && !(f.success_values.is_empty() && f.failure_values.is_empty()) {
            return Err(fail("fields", "success_values and failure_values need fields.outcome".into()));
        }
        let c = spec.categories;
        Ok(Mapping {
            origin: origin.to_string(),
            platform,
            recognise,
            skip,
            time: path("fields.time", f.time)?,
            time_format: f.time_format,
            action,
            event_id: opt_path("fields.event_id", f.event_id)?,
            identity: opt_path("fields.identity", f.identity)?,
            credential: opt_path("fields.credential", f.credential)?,
            session: opt_path("fields.session", f.session)?,
            source_ip: opt_path("fields.source_ip", f.source_ip)?,
            via_service: opt_path("fields.via_service", f.via_service)?,
            user_agent: opt_path("fields.user_agent", f.user_agent)?,
            resource: opt_path("fields.resource", f.resource)?,
            error: opt_path("fields.error", f.error)?,
            outcome: opt_path("fields.outcome", f.outcome)?,
            success_values: globs(f.success_values),
            failure_values: globs(f.failure_values),
            revoked_credential: opt_path("fields.revoked_credential", f.revoked_credential)?,
            categories: vec![
                (Category::Revocation, globs(c.revocation)),
                (Category::DefenceEvasion, globs(c.defence_evasion)),
                (Category::ExposureChange, globs(c.exposure_change)),
                (Category::PrivilegeChange, globs(c.privilege_change)),
                (Category::SecretRead, globs(c.secret_read)),
            ],
            read_only: c.read_only.map(globs),
        })
    }

    /// The events' platform.
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// The file the mapping came from, as given to [`Mapping::parse`].
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether a record is from this source: every `recognise` path has a value.
    pub fn recognise(&self, record: &Map<String, Value>) -> bool {
        self.recognise.iter().all(|p| p.lookup(record).is_some())
    }

    /// Whether a record of this source is one to pass over (a `[[skip]]` rule matches it).
    pub fn skips(&self, record: &Value) -> bool {
        let Value::Object(map) = record else { return false };
        self.skip.iter().any(|(path, values)| {
            path.lookup(map).and_then(scalar_text).is_some_and(|text| any_match(values, &lower_chars(&text)))
        })
    }

    /// One record into an [`Event`], or a short message saying what is wrong with it.
    pub fn to_event(&self, record: &Value, raw: RawRef) -> Result<Event, String> {
        let Value::Object(map) = record else {
            return Err(format!("record is not a JSON object ({})", type_name(record)));
        };
        let time = self.time(map)?;
        let mut parts = Vec::with_capacity(self.action.len());
        for path in &self.action {
            parts.push(text(map, "action", path)?.unwrap_or_default());
        }
        if parts.iter().all(String::is_empty) {
            let shown: Vec<&str> = self.action.iter().map(|p| p.shown.as_str()).collect();
            return Err(format!("missing action ({})", shown.join(", ")));
        }
        let action = parts.join(":");
        let field = |name: &str, path: &Option<KeyPath>| match path {
            Some(path) => text(map, name, path),
            None => Ok(None),
        };
        let error = field("error", &self.error)?;
        let outcome = self.outcome(map, error.is_some())?;
        let action_chars = lower_chars(&action);
        let category =
            self.categories.iter().find(|(_, globs)| any_match(globs, &action_chars)).map(|(category, _)| *category);
        let revoked = match category {
            Some(Category::Revocation) => field("revoked_credential", &self.revoked_credential)?,
            _ => None,
        };
        let resource = match revoked {
            Some(credential) => Some(credential),
            None => field("resource", &self.resource)?,
        };
        let source_ip = field("source_ip", &self.source_ip)?.and_then(|s| ip_of(&s));
        Ok(Event {
            time,
            platform: self.platform.clone(),
            event_id: field("event_id", &self.event_id)?,
            identity: field("identity", &self.identity)?,
            credential: field("credential", &self.credential)?,
            session: field("session", &self.session)?,
            source_ip,
            via_service: field("via_service", &self.via_service)?,
            user_agent: field("user_agent", &self.user_agent)?,
            read_only: self.read_only.as_ref().map(|globs| any_match(globs, &action_chars)),
            action,
            resource,
            outcome,
            error,
            category,
            raw,
        })
    }

    /// The record's time, within years 0 to 9999.
    fn time(&self, map: &Map<String, Value>) -> Result<i64, String> {
        let secs = self.raw_time(map)?;
        if !(MIN_TIME..=MAX_TIME).contains(&secs) {
            return Err(format!("time ({}) is out of range (before year 0 or after 9999)", self.time.shown));
        }
        Ok(secs)
    }

    fn raw_time(&self, map: &Map<String, Value>) -> Result<i64, String> {
        let path = &self.time;
        let shown = &path.shown;
        let value = path.lookup(map).ok_or_else(|| format!("missing time ({shown})"))?;
        let divisor: i64 = match self.time_format {
            TimeFormat::Rfc3339 => {
                let Value::String(s) = value else {
                    return Err(format!(
                        "time ({shown}) is not a string ({}); time_format is rfc3339",
                        type_name(value)
                    ));
                };
                return keywatch_model::time::parse_rfc3339(s)
                    .ok_or_else(|| format!("time ({shown}) is not an RFC 3339 time: {s:?}"));
            }
            TimeFormat::Unix => 1,
            TimeFormat::UnixMs => 1_000,
            TimeFormat::UnixNs => 1_000_000_000,
        };
        let not_a_time = || format!("time ({shown}) is not a number of {}: {value}", unit(self.time_format));
        let number = match value {
            Value::Number(n) => n.clone(),
            Value::String(s) => serde_json::from_str::<serde_json::Number>(s.trim()).map_err(|_| not_a_time())?,
            other => return Err(format!("time ({shown}) is not a number ({})", type_name(other))),
        };
        if let Some(i) = number.as_i64() {
            return Ok(i.div_euclid(divisor));
        }
        // Too large for an i64: out of range, which the caller reports.
        if let Some(u) = number.as_u64() {
            return Ok(i64::try_from(u / divisor as u64).unwrap_or(i64::MAX));
        }
        let secs = number.as_f64().map(|f| (f / divisor as f64).floor()).filter(|s| s.is_finite());
        let secs = secs.ok_or_else(not_a_time)?;
        Ok(secs.clamp(-1e18, 1e18) as i64)
    }

    fn outcome(&self, map: &Map<String, Value>, has_error: bool) -> Result<Outcome, String> {
        let Some(path) = &self.outcome else {
            return Ok(if has_error { Outcome::Failure } else { Outcome::Success });
        };
        let value = path.lookup(map);
        if self.success_values.is_empty() && self.failure_values.is_empty() {
            let failed = match value {
                None | Some(Value::Bool(false)) => false,
                Some(Value::String(s)) => !s.trim().is_empty(),
                Some(_) => true,
            };
            return Ok(if failed { Outcome::Failure } else { Outcome::Success });
        }
        let Some(value) = value else { return Ok(Outcome::Success) };
        let text = scalar_text(value).ok_or_else(|| {
            format!("outcome ({}) is not text, a number or a boolean ({})", path.shown, type_name(value))
        })?;
        let text = lower_chars(&text);
        Ok(if any_match(&self.failure_values, &text) {
            Outcome::Failure
        } else if any_match(&self.success_values, &text) || self.success_values.is_empty() {
            Outcome::Success
        } else {
            Outcome::Failure
        })
    }
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const MIN_TIME: i64 = -62_167_219_200;
const MAX_TIME: i64 = 253_402_300_799;

fn unit(format: TimeFormat) -> &'static str {
    match format {
        TimeFormat::Rfc3339 | TimeFormat::Unix => "seconds",
        TimeFormat::UnixMs => "milliseconds",
        TimeFormat::UnixNs => "nanoseconds",
    }
}

/// A string, number or boolean as text.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A text field's value: a string, number or boolean, or an array's first element; empty →
/// `None`; an object → error.
fn text(map: &Map<String, Value>, name: &str, path: &KeyPath) -> Result<Option<String>, String> {
    let Some(value) = path.lookup(map) else { return Ok(None) };
    let value = match value {
        Value::Array(items) => match items.first() {
            None | Some(Value::Null) => return Ok(None),
            Some(first) => first,
        },
        other => other,
    };
    match scalar_text(value) {
        Some(text) => Ok((!text.is_empty()).then_some(text)),
        None => Err(format!("{name} ({}) is not text ({})", path.shown, type_name(value))),
    }
}

/// The IP address in `ip`, `ip:port` or `[ip]:port`.
fn ip_of(text: &str) -> Option<String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip().to_string());
    }
    text.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse::<IpAddr>().ok())
        .map(|ip| ip.to_string())
}
