//! Typed access to a record's fields for the readers: an absent or null field is `None`, a
//! field of another type is an error naming it (with the path to it, `userIdentity.arn`).

use serde_json::{Map, Value};
use std::fmt::Display;

pub(crate) fn opt_str<'v>(
    map: &'v Map<String, Value>,
    key: &str,
    path: impl Display,
) -> Result<Option<&'v str>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(format!("{path}{key} is not a string ({})", type_name(other))),
    }
}

pub(crate) fn opt_obj<'v>(
    map: &'v Map<String, Value>,
    key: &str,
    path: impl Display,
) -> Result<Option<&'v Map<String, Value>>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(format!("{path}{key} is not an object ({})", type_name(other))),
    }
}

pub(crate) fn opt_arr<'v>(
    map: &'v Map<String, Value>,
    key: &str,
    path: impl Display,
) -> Result<Option<&'v [Value]>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a.as_slice())),
        Some(other) => Err(format!("{path}{key} is not an array ({})", type_name(other))),
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Trimmed, and `None` when empty.
pub(crate) fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

/// A platform's action names for each category, checked in this order.
pub(crate) struct Vocabulary {
    pub privilege_changes: &'static [&'static str],
    pub secret_reads: &'static [&'static str],
    pub defence_evasion: &'static [&'static str],
    pub exposure_changes: &'static [&'static str],
    pub revocations: &'static [&'static str],
}

impl Vocabulary {
    pub(crate) fn category(&self, action: &str) -> Option<keywatch_model::event::Category> {
        use keywatch_model::event::Category;
        let lists = [
            (self.privilege_changes, Category::PrivilegeChange),
            (self.secret_reads, Category::SecretRead),
            (self.defence_evasion, Category::DefenceEvasion),
            (self.exposure_changes, Category::ExposureChange),
            (self.revocations, Category::Revocation),
        ];
        lists.into_iter().find(|(names, _)| names.contains(&action)).map(|(_, category)| category)
    }
}
