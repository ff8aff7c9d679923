//! Google Workspace activity records from the Admin SDK Reports API
//! (`activities.list`, one element of its `items` array; `kind` `admin#reports#activity`):
//! `id{time, uniqueQualifier, applicationName, customerId}`, `actor{email, profileId,
//! callerType, key}`, `ipAddress`, `events[]{type, name, parameters[]{name, value | intValue |
//! boolValue | multiValue | ...}}`.
//!
//! One record becomes one [`Event`], named after its first event: action
//! `<applicationName>:<event name>` (`token:authorize`, `login:login_failure`,
//! `admin:ASSIGN_ROLE`). The identity is `actor.email` (else `actor.profileId`).
//!
//! For the OAuth token audit (`applicationName` `token`) the credential is the event's
//! `client_id`, the OAuth client whose grant is in use: `authorize` (a new grant) is a
//! `PrivilegeChange` on `app_name`, `revoke` a `Revocation` whose resource is the `client_id`,
//! and `activity` (an API call made with the grant) is read-only, on `method_name` (else
//! `api_name`, `app_name`). For other applications the credential is
//! `actor.applicationInfo.oauthClientId`, or `actor.key` when `callerType` is `KEY`.
//!
//! Records shipped one event at a time (`events` a single object, as some collectors split
//! them) are read too.

use crate::fields::{nonempty, opt_str, type_name};
use std::net::IpAddr;

use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde_json::{Map, Value};

const PLATFORM: &str = "google";

/// Whether one record has the Reports API activity shape: a few key lookups.
pub fn recognise(record: &Map<String, Value>) -> bool {
    if !record.contains_key("events") {
        return false;
    }
    match record.get("id") {
        Some(Value::Object(id)) => id.contains_key("applicationName") || id.contains_key("uniqueQualifier"),
        _ => record.get("kind").and_then(Value::as_str) == Some("admin#reports#activity"),
    }
}

/// One activity record into an [`Event`], or a short message saying what is wrong with it.
pub fn to_event(record: &Value, raw: RawRef) -> Result<Event, String> {
    let Value::Object(map) = record else {
        return Err(format!("record is not a JSON object ({})", type_name(record)));
    };
    let id = match map.get("id") {
        Some(Value::Object(id)) => id,
        None | Some(Value::Null) => return Err("missing id".into()),
        Some(other) => return Err(format!("id is not an object ({})", type_name(other))),
    };
    let time_text = opt_str(id, "time", "id.")?.ok_or("missing id.time")?;
    let time = keywatch_model::time::parse_rfc3339(time_text)
        .ok_or_else(|| format!("id.time is not an RFC 3339 time: {time_text:?}"))?;
    let app = nonempty(opt_str(id, "applicationName", "id.")?).ok_or("missing id.applicationName")?;
    let event_id = opt_scalar(id, "uniqueQualifier", "id.")?;

    let first = match map.get("events") {
        Some(Value::Array(events)) => events.first().ok_or("events is empty")?,
        Some(event @ Value::Object(_)) => event,
        None | Some(Value::Null) => return Err("missing events".into()),
        Some(other) => return Err(format!("events is not an array ({})", type_name(other))),
    };
    let Value::Object(first) = first else {
        return Err(format!("events[0] is not an object ({})", type_name(first)));
    };
    let name = nonempty(opt_str(first, "name", "events[0].")?).ok_or("missing events[0].name")?;
    let params = Params::of(first)?;

    let empty = Map::new();
    let actor = match map.get("actor") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(actor)) => actor,
        Some(other) => return Err(format!("actor is not an object ({})", type_name(other))),
    };
    let identity = match nonempty(opt_str(actor, "email", "actor.")?) {
        Some(email) => Some(email),
        None => opt_scalar(actor, "profileId", "actor.")?,
    };
    let client_id = params.get("client_id")?;
    let credential = match (app.as_str(), client_id.clone()) {
        ("token", Some(client)) => Some(client),
        _ => match actor.get("applicationInfo").and_then(|a| a.get("oauthClientId")).and_then(Value::as_str) {
            Some(client) if !client.trim().is_empty() => Some(client.trim().to_string()),
            _ if opt_str(actor, "callerType", "actor.")? == Some("KEY") => nonempty(opt_str(actor, "key", "actor.")?),
            _ => None,
        },
    };
    let source_ip =
        opt_str(map, "ipAddress", "")?.map(str::trim).and_then(|s| s.parse::<IpAddr>().ok()).map(|ip| ip.to_string());

    let meaning = meaning(&app, &name, &params, client_id)?;
    let failed = name.contains("failure") || name.ends_with("_failed");
    let error = if failed {
        Some(params.get("login_failure_type")?.or(params.get("failure_type")?).unwrap_or_else(|| name.clone()))
    } else {
        None
    };
    Ok(Event {
        time,
        platform: PLATFORM.into(),
        event_id,
        identity,
        credential,
        session: None,
        source_ip,
        via_service: None,
        user_agent: None,
        action: format!("{app}:{name}"),
        resource: meaning.resource,
        outcome: if failed { Outcome::Failure } else { Outcome::Success },
        error,
        read_only: meaning.read_only,
        category: meaning.category,
        raw,
    })
}

struct Meaning {
    category: Option<Category>,
    read_only: Option<bool>,
    resource: Option<String>,
}

/// Admin console events that give power or a new way in: roles and privileges, super admin,
/// new users, and domain-wide delegation for an API client.
const ADMIN_PRIVILEGE_CHANGES: &[&str] = &[
    "ASSIGN_ROLE",
    "CREATE_ROLE",
    "ADD_PRIVILEGE",
    "GRANT_ADMIN_PRIVILEGE",
    "GRANT_DELEGATED_ADMIN_PRIVILEGES",
    "CHANGE_SUPER_ADMIN_STATUS",
    "AUTHORIZE_API_CLIENT_ACCESS",
    "ADD_TO_TRUSTED_OAUTH2_APPS",
    "CREATE_USER",
];

/// Parameters naming what an event acted on, most specific first.
const RESOURCE_PARAMETERS: &[&str] = &[
    "USER_EMAIL",
    "GROUP_EMAIL",
    "ROLE_NAME",
    "API_CLIENT_NAME",
    "OAUTH2_APP_NAME",
    "APPLICATION_NAME",
    "SETTING_NAME",
    "doc_id",
    "app_name",
];

fn meaning(app: &str, name: &str, params: &Params<'_>, client_id: Option<String>) -> Result<Meaning, String> {
    let (category, read_only, resource) = match (app, name) {
        ("token", "authorize") => (Some(Category::PrivilegeChange), Some(false), params.get("app_name")?.or(client_id)),
        ("token", "revoke") => (Some(Category::Revocation), Some(false), client_id.or(params.get("app_name")?)),
        ("token", "activity") => {
            (None, Some(true), params.get("method_name")?.or(params.get("api_name")?).or(params.get("app_name")?))
        }
        ("token", _) => (None, None, params.get("app_name")?.or(client_id)),
        ("login", "2sv_disable") => (Some(Category::DefenceEvasion), Some(false), None),
        ("admin", "REMOVE_API_CLIENT_ACCESS") => {
            (Some(Category::Revocation), Some(false), params.get("API_CLIENT_NAME")?)
        }
        ("admin", "ENFORCE_STRONG_AUTHENTICATION" | "ALLOW_STRONG_AUTHENTICATION")
            if params.get("NEW_VALUE")?.is_some_and(|v| v.eq_ignore_ascii_case("false")) =>
        {
            (Some(Category::DefenceEvasion), Some(false), params.first_of(RESOURCE_PARAMETERS)?)
        }
        ("admin", n) if ADMIN_PRIVILEGE_CHANGES.contains(&n) => {
            (Some(Category::PrivilegeChange), Some(false), params.first_of(RESOURCE_PARAMETERS)?)
        }
        ("admin", _) => (None, Some(false), params.first_of(RESOURCE_PARAMETERS)?),
        ("drive", "change_document_visibility")
            if params.get("visibility")?.is_some_and(|v| v == "public_on_the_web" || v == "people_with_link") =>
        {
            (Some(Category::ExposureChange), Some(false), params.first_of(RESOURCE_PARAMETERS)?)
        }
        ("drive", "view" | "download" | "preview" | "print") => (None, Some(true), params.get("doc_id")?),
        _ => (None, None, params.first_of(RESOURCE_PARAMETERS)?),
    };
    Ok(Meaning { category, read_only, resource })
}

/// The `parameters` of one event.
struct Params<'v> {
    list: &'v [Value],
}

impl<'v> Params<'v> {
    fn of(event: &'v Map<String, Value>) -> Result<Self, String> {
        match event.get("parameters") {
            None | Some(Value::Null) => Ok(Params { list: &[] }),
            Some(Value::Array(list)) => Ok(Params { list }),
            Some(other) => Err(format!("events[0].parameters is not an array ({})", type_name(other))),
        }
    }

    /// The named parameter's value as text: `value`, `intValue` or `boolValue`; a
    /// `multiValue` joined with commas. Absent or empty → `None`.
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        for (i, p) in self.list.iter().enumerate() {
            let Value::Object(p) = p else {
                return Err(format!("events[0].parameters[{i}] is not an object ({})", type_name(p)));
            };
            if p.get("name").and_then(Value::as_str) != Some(name) {
                continue;
            }
            let path = |key: &str| format!("events[0].parameters[{i}].{key}");
            for key in ["value", "intValue", "boolValue"] {
                match p.get(key) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => return Ok(nonempty(Some(s))),
                    Some(Value::Number(n)) => return Ok(Some(n.to_string())),
                    Some(Value::Bool(b)) => return Ok(Some(b.to_string())),
                    Some(other) => return Err(format!("{} is not a string ({})", path(key), type_name(other))),
                }
            }
            return match p.get("multiValue") {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(values)) => {
                    let texts: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                    Ok(nonempty(Some(&texts.join(","))))
                }
                Some(other) => Err(format!("{} is not an array ({})", path("multiValue"), type_name(other))),
            };
        }
        Ok(None)
    }

    fn first_of(&self, names: &[&str]) -> Result<Option<String>, String> {
        for name in names {
            if let Some(v) = self.get(name)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// An optional id that may be written as a string or a number.
fn opt_scalar(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(nonempty(Some(s))),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{path}{key} is not a string ({})", type_name(other))),
    }
}
