//! GitHub audit log reader: one event of the organisation or enterprise audit log into an
//! [`Event`]. The same objects come from the REST API (`/orgs/{org}/audit-log`,
//! `/enterprises/{enterprise}/audit-log`: a top-level array), the JSON export of the web
//! interface (a top-level array; older exports nest some fields under `data`), the Git events
//! export (gzip JSON) and audit log streaming (gzip files of one object per line).
//!
//! Times are `@timestamp` or `created_at`, milliseconds since the epoch; a few tools re-emit them
//! as numeric strings or RFC 3339 text, which are read too. The credential is `token_id`, the
//! id that revocation events and the inventory's token lists use too, else `hashed_token`
//! (base64 of the SHA-256 of the token); on token management events `token_id` is the token
//! granted, authorised or revoked, so there only `hashed_token` names the actor's own.
//!
//! Action names come from GitHub's "Audit log events for your organization", "... for your
//! enterprise" and "Security log events" references.

use crate::fields::{nonempty, opt_str, type_name, Vocabulary};
use std::net::IpAddr;

use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde_json::{Map, Value};

/// Whether one record has the audit log's shape: a dotted `action` (`repo.create`), a time
/// (`@timestamp` or `created_at`) and something naming who or where. CloudTrail and Okta
/// records have no `action`; Atlassian's sits under `attributes`.
pub fn recognise(record: &Map<String, Value>) -> bool {
    matches!(record.get("action"), Some(Value::String(a)) if a.contains('.'))
        && (record.contains_key("@timestamp") || record.contains_key("created_at"))
        && ["actor", "actor_id", "_document_id", "org", "business", "repo", "repository"]
            .iter()
            .any(|k| record.contains_key(*k))
        && !record.contains_key("eventName")
        && !record.contains_key("eventType")
}

/// Turns one audit log event into an [`Event`], or says what is wrong with it.
pub fn to_event(record: &Value, raw: RawRef) -> Result<Event, String> {
    let Value::Object(map) = record else {
        return Err(format!("record is not a JSON object ({})", type_name(record)));
    };
    let time = time(map)?;
    let action = nonempty(opt_str(map, "action", "")?).ok_or("missing action")?;
    let event_id = nonempty(opt_str(map, "_document_id", "")?);
    let identity = nonempty(opt_str(map, "actor", "")?);
    let token_id = id_text(map, "token_id")?;
    // On token management events `token_id` is the token managed, not the one the actor used.
    let token_id = token_id.filter(|_| !SUBJECT_TOKEN.iter().any(|p| action.starts_with(p)));
    let credential = token_id.or(nonempty(opt_str(map, "hashed_token", "")?));
    let source_ip = nonempty(opt_str(map, "actor_ip", "")?).filter(|ip| ip.parse::<IpAddr>().is_ok());
    let user_agent = nonempty(opt_str(map, "user_agent", "")?);

    let status = match map.get("status_code") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(other) => return Err(format!("status_code is not a number ({})", type_name(other))),
    };
    let (outcome, error) = if let Some(code) = status.filter(|c| *c >= 400.0) {
        (Outcome::Failure, Some(format!("{code}")))
    } else if FAILURES.contains(&action.as_str()) {
        let reason = nonempty(opt_str(map, "reason", "")?);
        (Outcome::Failure, reason.or_else(|| action.split_once('.').map(|(_, op)| op.to_string())))
    } else {
        (Outcome::Success, None)
    };

    let category = category(map, &action);
    let resource =
        if category == Some(Category::Revocation) { revoked_credential(map, &action)? } else { resource(map)? };
    let read_only = read_only(map, &action)?;
    Ok(Event {
        time,
        platform: "github".into(),
        event_id,
        identity,
        credential,
        session: None,
        source_ip,
        via_service: None,
        user_agent,
        action,
        resource,
        outcome,
        error,
        read_only,
        category,
        raw,
    })
}

/// The latest plausible time, year 9999, in seconds.
const MAX_SECS: f64 = 253_402_300_799.0;

/// `@timestamp`, else `created_at`: milliseconds since the epoch (a number, or a numeric
/// string), or RFC 3339 text. A number too small to be milliseconds after 1973 is taken as
/// seconds.
fn time(map: &Map<String, Value>) -> Result<i64, String> {
    for key in ["@timestamp", "created_at"] {
        let value = match map.get(key) {
            None | Some(Value::Null) => continue,
            Some(v) => v,
        };
        let secs = match value {
            Value::Number(n) => n.as_f64().map(epoch_seconds),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Some(epoch_seconds(n)),
                _ => match keywatch_model::time::parse_rfc3339(s) {
                    Some(t) => return Ok(t),
                    None => {
                        return Err(format!(
                            "{key} is neither milliseconds since the epoch nor an RFC 3339 time: {s:?}"
                        ))
                    }
                },
            },
            other => return Err(format!("{key} is not a number ({})", type_name(other))),
        };
        return match secs {
            Some(t) if (0.0..=MAX_SECS).contains(&t) => Ok(t as i64),
            _ => Err(format!("{key} is out of range: {value}")),
        };
    }
    Err("missing @timestamp and created_at".into())
}

fn epoch_seconds(n: f64) -> f64 {
    if n.abs() >= 1e11 {
        (n / 1000.0).floor()
    } else {
        n.floor()
    }
}

/// The main resource: the repository, else the user or team acted on, else the organisation
/// or enterprise.
fn resource(map: &Map<String, Value>) -> Result<Option<String>, String> {
    let mut found = None;
    for key in ["repo", "repository", "user", "team"] {
        let value = nonempty(opt_str(map, key, "")?).or_else(|| data_str(map, key));
        found = found.or(value);
    }
    let org = org(map)?;
    let business = nonempty(opt_str(map, "business", "")?);
    Ok(found.or(org).or(business))
}

/// `org`: a login, or in some enterprise events a list of them (the first is taken).
fn org(map: &Map<String, Value>) -> Result<Option<String>, String> {
    match map.get("org") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(nonempty(Some(s))),
        Some(Value::Array(items)) => Ok(nonempty(items.iter().find_map(Value::as_str))),
        Some(other) => Err(format!("org is not a string ({})", type_name(other))),
    }
}

/// The credential a revocation took away, as other events name it: the token's `token_id`
/// (GitHub sets it to the revoked token on these events), or the fingerprint of a deleted key.
fn revoked_credential(map: &Map<String, Value>, action: &str) -> Result<Option<String>, String> {
    if action == "public_key.delete" {
        return Ok(nonempty(opt_str(map, "fingerprint", "")?));
    }
    match id_text(map, "token_id")? {
        Some(id) => Ok(Some(id)),
        None => id_text(map, "user_programmatic_access_id"),
    }
}

/// Read-style events: Git clones and fetches, archive and export downloads, API `GET`s, and
/// whatever GitHub files under `operation_type: access`.
fn read_only(map: &Map<String, Value>, action: &str) -> Result<Option<bool>, String> {
    let operation = opt_str(map, "operation_type", "")?;
    if READS.contains(&action) {
        return Ok(Some(true));
    }
    if action == "git.push" {
        return Ok(Some(false));
    }
    if action == "api.request" {
        if let Some(method) = nonempty(opt_str(map, "request_method", "")?) {
            return Ok(Some(method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD")));
        }
    }
    Ok(match operation {
        Some("access") => Some(true),
        Some("create" | "modify" | "remove" | "restore" | "transfer") => Some(false),
        _ => None,
    })
}

/// Categories whose events put the token they grant, authorise or revoke in `token_id`.
const SUBJECT_TOKEN: &[&str] =
    &["personal_access_token.", "org_credential_authorization.", "oauth_access.", "oauth_authorization."];

/// Events that record a read.
const READS: &[&str] = &[
    "git.clone",
    "git.fetch",
    "repo.download_zip",
    "migration.download",
    "org.audit_log_export",
    "org.audit_log_git_event_export",
    "business.audit_log_export",
    "org.recovery_codes_viewed",
    "org.recovery_codes_downloaded",
    "org.recovery_codes_printed",
];

/// Events that record an attempt GitHub refused or that failed.
const FAILURES: &[&str] = &[
    "protected_branch.rejected_ref_update",
    "org.recovery_code_failed",
    "public_key.verification_failure",
    "public_key.unverification_failure",
];

/// More power or a new way in: members, collaborators, teams and roles; tokens, OAuth and
/// GitHub App grants; SSH and deploy keys, client secrets, SSH certificate authorities.
/// (`org.update_member` counts only when it makes someone an owner.)
const PRIVILEGE_CHANGES: &[&str] = &[
    "org.add_member",
    "org.add_outside_collaborator",
    "org.add_security_manager",
    "org.integration_manager_added",
    "integration.manager_added",
    "business.add_admin",
    "organization_role.assign",
    "team.add_member",
    "team.add_repository",
    "team.promote_maintainer",
    "team.update_repository_permission",
    "repo.add_member",
    "repo.update_member",
    "oauth_authorization.create",
    "oauth_access.create",
    "org.oauth_app_access_approved",
    "personal_access_token.create",
    "personal_access_token.access_granted",
    "org_credential_authorization.grant",
    "integration_installation.create",
    "integration_installation.repositories_added",
    "integration_installation.version_updated",
    "oauth_application.generate_client_secret",
    "integration.generate_client_secret",
    "public_key.create",
    "ssh_certificate_authority.create",
];

/// Audit streaming, SSO and 2FA requirements, secret scanning, code scanning and branch
/// protection weakened; IP addresses hidden from the audit log. (`audit_log_streaming.update`
/// counts only when it leaves the stream disabled or paused.)
const DEFENCE_EVASION: &[&str] = &[
    "audit_log_streaming.destroy",
    "org.disable_source_ip_disclosure",
    "org.disable_two_factor_requirement",
    "business.disable_two_factor_requirement",
    "org.disable_saml",
    "business.disable_saml",
    "business.disable_oidc",
    "org.disable_oauth_app_restrictions",
    "ip_allow_list.disable",
    "ip_allow_list.disable_for_installed_apps",
    "ssh_certificate_requirement.disable",
    "secret_scanning.disable",
    "secret_scanning_new_repos.disable",
    "repository_secret_scanning.disable",
    "repository_secret_scanning_push_protection.disable",
    "org.secret_scanning_push_protection_disable",
    "org.secret_scanning_push_protection_new_repos_disable",
    "secret_scanning_push_protection.bypass",
    "org.advanced_security_disabled_on_all_repos",
    "org.advanced_security_disabled_for_new_repos",
    "repo.advanced_security_disabled",
    "org.codeql_disabled",
    "repo.codeql_disabled",
    "dependabot_alerts.disable",
    "repository_vulnerability_alerts.disable",
    "protected_branch.destroy",
    "protected_branch.policy_override",
    "repository_branch_protection_evaluation.disable",
    "repository_ruleset.destroy",
];

/// Code or access handed outside: a repository transferred away, forks of private
/// repositories allowed, a Pages site made public, an address added to the IP allow list.
/// (`repo.access` counts only when it makes the repository public.)
const EXPOSURE_CHANGES: &[&str] = &[
    "repo.transfer_outgoing",
    "private_repository_forking.enable",
    "repository_visibility_change.enable",
    "repo.pages_public",
    "ip_allow_list_entry.create",
];

/// A stored secret shown to the actor: the organisation's SSO recovery codes.
const SECRET_READS: &[&str] =
    &["org.recovery_codes_viewed", "org.recovery_codes_downloaded", "org.recovery_codes_printed"];

/// A credential revoked or deleted: a token's SSO authorisation or organisation access, the
/// token itself, an OAuth grant, an SSH or deploy key.
const REVOCATIONS: &[&str] = &[
    "personal_access_token.access_revoked",
    "personal_access_token.destroy",
    "oauth_authorization.destroy",
    "oauth_access.destroy",
    "org_credential_authorization.revoke",
    "org_credential_authorization.deauthorize",
    "org_credential_authorization.deauthorized",
    "public_key.delete",
];

fn category(map: &Map<String, Value>, action: &str) -> Option<Category> {
    match action {
        "org.update_member" => {
            let admin = ["permission", "new_role"]
                .iter()
                .filter_map(|k| field(map, k).and_then(Value::as_str))
                .any(|p| p.eq_ignore_ascii_case("admin") || p.eq_ignore_ascii_case("owner"));
            return admin.then_some(Category::PrivilegeChange);
        }
        "repo.access" => {
            let public =
                field(map, "visibility").and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case("public"));
            return public.then_some(Category::ExposureChange);
        }
        "audit_log_streaming.update" => {
            let off = field(map, "audit_log_stream_enabled").and_then(Value::as_bool) == Some(false);
            return off.then_some(Category::DefenceEvasion);
        }
        _ => {}
    }
    VOCABULARY.category(action)
}

const VOCABULARY: Vocabulary = Vocabulary {
    privilege_changes: PRIVILEGE_CHANGES,
    secret_reads: SECRET_READS,
    defence_evasion: DEFENCE_EVASION,
    exposure_changes: EXPOSURE_CHANGES,
    revocations: REVOCATIONS,
};

/// A field at the top level, else under `data` (older exports nest the event's details there).
fn field<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    match map.get(key) {
        Some(v) if !v.is_null() => Some(v),
        _ => map.get("data").and_then(Value::as_object).and_then(|d| d.get(key)).filter(|v| !v.is_null()),
    }
}

fn data_str(map: &Map<String, Value>, key: &str) -> Option<String> {
    nonempty(map.get("data").and_then(Value::as_object).and_then(|d| d.get(key)).and_then(Value::as_str))
}

/// An id GitHub writes as a number (or, after some shippers, as a string), as text.
fn id_text(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::String(s)) => Ok(nonempty(Some(s))),
        Some(other) => Err(format!("{key} is not a number or string ({})", type_name(other))),
    }
}
