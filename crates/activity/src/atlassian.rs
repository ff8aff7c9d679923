//! Atlassian audit records, three shapes, all with platform `atlassian`:
//!
//! - **Organization audit events** (Admin API `GET /admin/v1/orgs/{orgId}/events`, one element of
//!   its `data` array): `{"id", "type":"events", "attributes":{"time", "action", "actor":{"id",
//!   "name", "email", "auth":{"authType", "tokenId", "tokenLabel"}}, "context":[...],
//!   "container":[...], "location":{"ip", ...}}, "message":{"content"}}`. The action is kept as
//!   is (`user_granted_role`); the credential is `actor.auth.tokenId`, the API token behind the
//!   call when one was used; the source IP is `attributes.location.ip`.
//! - **Confluence Cloud audit records** (`GET /wiki/rest/api/audit`, one element of `results`):
//!   `author{type, displayName, accountId}`, `remoteAddress`, `creationDate` (Unix
//!   milliseconds), `summary`, `category`, `affectedObject{name, objectType}`, `changedValues`,
//!   `associatedObjects`. Action `confluence:<category>:<summary>`; no record id.
//! - **Jira Cloud audit records** (`GET /rest/api/3/auditing/record`, one element of
//!   `records`): `id` (a number), `summary`, `remoteAddress`, `authorAccountId`/`authorKey`,
//!   `created` (`2014-03-19T18:45:42.967+0000`), `category`, `objectItem`, `changedValues`,
//!   `associatedItems`. Action `jira:<category>:<summary>`.
//!
//! The identity is the Atlassian account id in all three shapes (`actor.id`, `author.accountId`,
//! `authorAccountId`), so one person's events line up across them; the email, name or user key
//! stand in when the id is missing.
//!
//! Categories come from the words of the action or summary (see [`classify`]), because the
//! organization audit vocabulary is large, grows, and is only partly documented.

use crate::fields::{nonempty, opt_obj, opt_str, type_name};
use std::net::IpAddr;

use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde_json::{Map, Value};

const PLATFORM: &str = "atlassian";

/// Whether one record has one of the three Atlassian shapes: a few key lookups.
pub fn recognise(record: &Map<String, Value>) -> bool {
    is_org_event(record) || is_confluence(record) || is_jira(record)
}

fn is_org_event(record: &Map<String, Value>) -> bool {
    if !record.contains_key("id") {
        return false;
    }
    match record.get("attributes") {
        Some(Value::Object(attributes)) => attributes.contains_key("action") || is_events_type(record),
        Some(_) => is_events_type(record),
        None => false,
    }
}

fn is_events_type(record: &Map<String, Value>) -> bool {
    matches!(record.get("type").and_then(Value::as_str), Some("events" | "event"))
}

fn is_confluence(record: &Map<String, Value>) -> bool {
    record.contains_key("creationDate")
        && record.contains_key("summary")
        && (record.contains_key("remoteAddress") || record.contains_key("author") || record.contains_key("category"))
}

fn is_jira(record: &Map<String, Value>) -> bool {
    record.contains_key("created")
        && record.contains_key("summary")
        && (record.contains_key("category")
            || record.contains_key("authorAccountId")
            || record.contains_key("authorKey")
            || record.contains_key("objectItem"))
}

/// One Atlassian record into an [`Event`], or a short message saying what is wrong with it.
pub fn to_event(record: &Value, raw: RawRef) -> Result<Event, String> {
    let Value::Object(map) = record else {
        return Err(format!("record is not a JSON object ({})", type_name(record)));
    };
    if map.contains_key("attributes") {
        org_event(map, raw)
    } else if map.contains_key("creationDate") {
        confluence(map, raw)
    } else if map.contains_key("created") {
        jira(map, raw)
    } else {
        Err("not an Atlassian audit record (no attributes, creationDate or created)".into())
    }
}

fn org_event(map: &Map<String, Value>, raw: RawRef) -> Result<Event, String> {
    let attributes = opt_obj(map, "attributes", "")?.ok_or("missing attributes")?;
    let time_text = opt_str(attributes, "time", "attributes.")?.ok_or("missing attributes.time")?;
    let time = keywatch_model::time::parse_rfc3339(time_text)
        .ok_or_else(|| format!("attributes.time is not an RFC 3339 time: {time_text:?}"))?;
    let action = nonempty(opt_str(attributes, "action", "attributes.")?).ok_or("missing attributes.action")?;
    let event_id = opt_id(map, "id", "")?;

    let empty = Map::new();
    let actor = opt_obj(attributes, "actor", "attributes.")?.unwrap_or(&empty);
    let identity = first_nonempty(&[
        opt_str(actor, "id", "attributes.actor.")?,
        opt_str(actor, "email", "attributes.actor.")?,
        opt_str(actor, "name", "attributes.actor.")?,
    ]);
    let auth = opt_obj(actor, "auth", "attributes.actor.")?.unwrap_or(&empty);
    let credential = nonempty(opt_str(auth, "tokenId", "attributes.actor.auth.")?);
    let location = opt_obj(attributes, "location", "attributes.")?.unwrap_or(&empty);
    let source_ip = valid_ip(opt_str(location, "ip", "attributes.location.")?);

    let context = items(attributes, "context", "attributes.")?;
    let container = items(attributes, "container", "attributes.")?;
    let message = map.get("message").and_then(|m| m.get("content")).and_then(Value::as_str).unwrap_or("");

    // Groups the event is about, by name: context items whose type names groups.
    let groups: Vec<&str> =
        context.iter().filter(|item| item_type(item).contains("group")).filter_map(|item| item_name(item)).collect();
    let clues = Clues {
        admin_group: groups.iter().any(|g| is_admin_group(g)) || is_admin_group(message),
        any_group: false,
        opened: context.iter().filter_map(|item| item_name(item)).any(mentions_anyone),
    };
    let words = words(&action);
    let category = classify(&words, &clues);
    let resource = if category == Some(Category::Revocation) {
        revoked_token(context).or_else(|| context.first().and_then(item_id))
    } else {
        groups
            .first()
            .map(|g| g.to_string())
            .or_else(|| context.first().and_then(|i| item_name(i).map(str::to_string).or_else(|| item_id(i))))
            .or_else(|| container.first().and_then(|i| item_name(i).map(str::to_string).or_else(|| item_id(i))))
    };
    let failed = failed(&words);
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
        error: failed.then(|| action.clone()),
        action,
        resource,
        outcome: if failed { Outcome::Failure } else { Outcome::Success },
        read_only: read_only(&words, category),
        category,
        raw,
    })
}

fn confluence(map: &Map<String, Value>, raw: RawRef) -> Result<Event, String> {
    let time = match map.get("creationDate") {
        Some(Value::Number(n)) => {
            let ms = n.as_i64().ok_or_else(|| format!("creationDate is not a whole number of milliseconds: {n}"))?;
            ms.div_euclid(1000)
        }
        None | Some(Value::Null) => return Err("missing creationDate".into()),
        Some(other) => return Err(format!("creationDate is not a number ({})", type_name(other))),
    };
    let summary = nonempty(opt_str(map, "summary", "")?).ok_or("missing summary")?;
    let category_name = opt_str(map, "category", "")?.map(str::trim).unwrap_or("");

    let empty = Map::new();
    let author = opt_obj(map, "author", "")?.unwrap_or(&empty);
    let identity = first_nonempty(&[
        opt_str(author, "accountId", "author.")?,
        opt_str(author, "username", "author.")?,
        opt_str(author, "userKey", "author.")?,
        opt_str(author, "displayName", "author.")?,
    ]);
    let source_ip = valid_ip(opt_str(map, "remoteAddress", "")?);
    let affected = opt_obj(map, "affectedObject", "")?.unwrap_or(&empty);
    let affected_name = nonempty(opt_str(affected, "name", "affectedObject.")?);
    let changed = items(map, "changedValues", "")?;
    let associated = items(map, "associatedObjects", "")?;

    let is_group = |o: &Map<String, Value>| {
        o.get("objectType").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("group"))
    };
    let admin_group = associated
        .iter()
        .filter_map(Value::as_object)
        .chain(std::iter::once(affected))
        .filter(|o| is_group(o))
        .filter_map(|o| o.get("name").and_then(Value::as_str))
        .any(is_admin_group);
    let opened = affected_name.as_deref().is_some_and(mentions_anyone)
        || associated.iter().filter_map(|o| o.get("name").and_then(Value::as_str)).any(mentions_anyone)
        || changed.iter().any(|c| {
            ["name", "newValue", "hiddenNewValue"]
                .iter()
                .filter_map(|k| c.get(*k).and_then(Value::as_str))
                .any(mentions_anyone)
        });
    let clues = Clues {
        admin_group,
        // Any group membership added in Confluence counts: groups carry space and product access.
        any_group: true,
        opened,
    };
    let words = words(&summary);
    let category = classify(&words, &clues);
    Ok(Event {
        time,
        platform: PLATFORM.into(),
        event_id: None,
        identity,
        credential: None,
        session: None,
        source_ip,
        via_service: None,
        user_agent: None,
        action: format!("confluence:{category_name}:{summary}"),
        resource: affected_name,
        outcome: Outcome::Success,
        error: None,
        read_only: read_only(&words, category),
        category,
        raw,
    })
}

fn jira(map: &Map<String, Value>, raw: RawRef) -> Result<Event, String> {
    let created = opt_str(map, "created", "")?.ok_or("missing created")?;
    let time = keywatch_model::time::parse_rfc3339(created)
        .ok_or_else(|| format!("created is not an RFC 3339 time: {created:?}"))?;
    let summary = nonempty(opt_str(map, "summary", "")?).ok_or("missing summary")?;
    let category_name = opt_str(map, "category", "")?.map(str::trim).unwrap_or("");
    let event_id = opt_id(map, "id", "")?;
    let identity = first_nonempty(&[opt_str(map, "authorAccountId", "")?, opt_str(map, "authorKey", "")?]);
    let source_ip = valid_ip(opt_str(map, "remoteAddress", "")?);

    let empty = Map::new();
    let object = opt_obj(map, "objectItem", "")?.unwrap_or(&empty);
    let object_name = nonempty(opt_str(object, "name", "objectItem.")?);
    let changed = items(map, "changedValues", "")?;
    let associated = items(map, "associatedItems", "")?;

    let is_group = |o: &Map<String, Value>| {
        o.get("typeName").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("group"))
    };
    let mut groups: Vec<&str> = associated
        .iter()
        .filter_map(Value::as_object)
        .filter(|o| is_group(o))
        .filter_map(|o| o.get("name").and_then(Value::as_str))
        .collect();
    // "User added to group": the group is the object, the user the associated item.
    if is_group(object) || object.get("typeName").is_none() {
        groups.extend(object_name.as_deref());
    }
    let opened = object_name.as_deref().is_some_and(mentions_anyone)
        || associated.iter().filter_map(|o| o.get("name").and_then(Value::as_str)).any(mentions_anyone)
        || changed.iter().any(|c| {
            ["fieldName", "changedTo"].iter().filter_map(|k| c.get(*k).and_then(Value::as_str)).any(mentions_anyone)
        });
    let clues = Clues { admin_group: groups.iter().any(|g| is_admin_group(g)), any_group: false, opened };
    let words = words(&summary);
    let category = classify(&words, &clues);
    Ok(Event {
        time,
        platform: PLATFORM.into(),
        event_id,
        identity,
        credential: None,
        session: None,
        source_ip,
        via_service: None,
        user_agent: None,
        action: format!("jira:{category_name}:{summary}"),
        resource: object_name,
        outcome: Outcome::Success,
        error: None,
        read_only: read_only(&words, category),
        category,
        raw,
    })
}

/// What the record says beyond its action words.
struct Clues {
    /// A group the record is about is an admin group (its name holds `admin`: `org-admins`,
    /// `site-admins`, `jira-administrators`, `confluence-admins-acme`).
    admin_group: bool,
    /// Any group membership added counts as a privilege change, not only admin groups.
    any_group: bool,
    /// Objects or new values name anonymous users, "anyone" or the public.
    opened: bool,
}

/// The security meaning of an action or summary, from its words (lower case, split on anything
/// not a letter or digit, so `user_added_to_group` and "User added to group" read alike):
///
/// 1. A token or API key revoked, deleted, removed, disabled or deactivated: `Revocation`.
/// 2. Nothing else for a failure (`failed`, `failure`).
/// 3. Two-step verification, MFA, SSO/SAML, an authentication or password policy, or audit
///    logging disabled, deleted, removed or deactivated: `DefenceEvasion`.
/// 4. A content restriction removed; or public, anonymous or "anyone" access (in the words or,
///    through [`Clues::opened`], in the objects and new values) enabled, added, granted,
///    created, made, allowed, published or updated: `ExposureChange`.
/// 5. Nothing else for removals and revocations.
/// 6. A token or API key created; a user added to an admin group (any group with
///    [`Clues::any_group`]); admin added, granted or assigned; a role, access or permission
///    granted; roles added, assigned, changed or created; permissions added, granted, updated or
///    changed; a user created; an app installed, authorised or consented to:
///    `PrivilegeChange`.
fn classify(w: &str, clues: &Clues) -> Option<Category> {
    let credential = has_any(w, &["token", "tokens", "api key", "api keys", "apikey"]);
    let removal = ["revoked", "revoke", "deleted", "delete", "removed", "remove", "disabled", "disable", "deactivated"];
    if credential && has_any(w, &removal) {
        return Some(Category::Revocation);
    }
    if failed(w) {
        return None;
    }
    let guard = [
        "twosv",
        "2sv",
        "2fa",
        "two step",
        "two factor",
        "mfa",
        "sso",
        "saml",
        "idp",
        "authentication policy",
        "password policy",
        "audit log",
        "audit logging",
    ];
    let weakened = ["disabled", "disable", "deleted", "removed", "turned off", "deactivated", "unenforced"];
    if has_any(w, &guard) && has_any(w, &weakened) {
        return Some(Category::DefenceEvasion);
    }
    if has_any(w, &["restriction", "restrictions"]) && has_any(w, &["removed", "deleted"]) {
        return Some(Category::ExposureChange);
    }
    if has_any(w, &removal) {
        return None;
    }
    let opened = clues.opened || has_any(w, &["public", "anonymous", "anyone"]);
    let opening = [
        "enabled",
        "enable",
        "added",
        "granted",
        "created",
        "made",
        "allowed",
        "published",
        "turned on",
        "updated",
        "changed",
    ];
    if opened && has_any(w, &opening) {
        return Some(Category::ExposureChange);
    }
    let privilege = (credential && has_any(w, &["created", "added", "generated", "issued"]))
        || (has_any(w, &["added to group", "added to groups", "group membership added"])
            && (clues.admin_group || clues.any_group))
        || (has_any(w, &["admin", "admins", "administrator"]) && has_any(w, &["added", "granted", "assigned"]))
        || (has_any(w, &["granted", "grant"])
            && has_any(w, &["role", "roles", "access", "permission", "permissions", "admin"]))
        || (has_any(w, &["role", "roles"]) && has_any(w, &["added", "assigned", "changed", "created"]))
        || (has_any(w, &["permission", "permissions"]) && has_any(w, &["added", "granted", "updated", "changed"]))
        || has_any(w, &["user created", "created user", "account created"])
        || (has_any(w, &["app", "application"])
            && has_any(w, &["installation", "installed", "authorized", "authorised", "consent", "consented"]));
    privilege.then_some(Category::PrivilegeChange)
}

/// Exports, downloads and views read; categorised actions change something.
fn read_only(w: &str, category: Option<Category>) -> Option<bool> {
    if category.is_some() {
        Some(false)
    } else if has_any(w, &["exported", "export", "downloaded", "download", "viewed", "view"]) {
        Some(true)
    } else {
        None
    }
}

fn failed(w: &str) -> bool {
    has_any(w, &["failed", "failure"])
}

/// `text` lower-cased, every run of characters that are not letters or digits turned into one
/// space, with a space at both ends so [`has_any`] matches whole words.
fn words(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

/// Whether the words hold one of the phrases (each one or more lower-case words).
fn has_any(words: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| {
        words.match_indices(p).any(|(i, _)| {
            words.as_bytes().get(i.wrapping_sub(1)) == Some(&b' ') && words.as_bytes().get(i + p.len()) == Some(&b' ')
        })
    })
}

fn is_admin_group(name: &str) -> bool {
    name.to_ascii_lowercase().contains("admin")
}

fn mentions_anyone(text: &str) -> bool {
    has_any(&words(text), &["anonymous", "anyone", "public"])
}

/// The id of the token a revocation names: a context item whose type names tokens or keys.
fn revoked_token(context: &[Value]) -> Option<String> {
    context.iter().find_map(|item| {
        let kind = item_type(item);
        if kind.contains("token") || kind.contains("key") {
            item_id(item).or_else(|| {
                let attributes = item.get("attributes")?;
                ["tokenId", "id"].iter().find_map(|k| attributes.get(*k).and_then(Value::as_str).map(str::to_string))
            })
        } else {
            None
        }
    })
}

fn item_type(item: &Value) -> String {
    item.get("type").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase()
}

fn item_id(item: &Value) -> Option<String> {
    match item.get("id")? {
        Value::String(s) => nonempty(Some(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A context or container item's name: `attributes.email` (users), else `name`, `displayName`,
/// `groupName` or `siteName`.
fn item_name(item: &Value) -> Option<&str> {
    let attributes = item.get("attributes")?;
    ["email", "name", "displayName", "groupName", "siteName"]
        .iter()
        .find_map(|k| attributes.get(*k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()))
}

/// An optional array of objects: absent or null → empty; not an array, or an element not an
/// object → error.
fn items<'v>(map: &'v Map<String, Value>, key: &str, path: &str) -> Result<&'v [Value], String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => {
            if let Some((i, bad)) = a.iter().enumerate().find(|(_, v)| !v.is_object()) {
                return Err(format!("{path}{key}[{i}] is not an object ({})", type_name(bad)));
            }
            Ok(a)
        }
        Some(other) => Err(format!("{path}{key} is not an array ({})", type_name(other))),
    }
}

/// An id that may be a string or a number.
fn opt_id(map: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(nonempty(Some(s))),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{path}{key} is not a string or number ({})", type_name(other))),
    }
}

fn first_nonempty(candidates: &[Option<&str>]) -> Option<String> {
    candidates.iter().find_map(|c| nonempty(*c))
}

fn valid_ip(s: Option<&str>) -> Option<String> {
    s.map(str::trim).and_then(|s| s.parse::<IpAddr>().ok()).map(|ip| ip.to_string())
}
