//! Okta System Log reader: one `LogEvent` of `/api/v1/logs` (a top-level array, or one object
//! per line as log streams and exports write them) into an [`Event`].
//!
//! The credential behind an event is the SSWS API token (`transaction.detail.requestApiTokenId`)
//! when one was used, else the OAuth client of a service app (the actor when Okta names an app
//! as the actor, or `client.id` of a request authorised by an OAuth access token). People
//! signing in through a browser use no credential Keywatch tracks: their events have none.
//!
//! Event type names come from Okta's event types catalog
//! (<https://developer.okta.com/docs/reference/api/event-types/>).

use crate::fields::{nonempty, opt_arr, opt_obj, opt_str, type_name, Vocabulary};
use std::fmt;
use std::net::IpAddr;

use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde_json::{Map, Value};

/// Whether one record has the System Log's shape: `eventType` and `published` (CloudTrail,
/// Google, Atlassian and GitHub records have neither).
pub fn recognise(record: &Map<String, Value>) -> bool {
    record.contains_key("eventType") && record.contains_key("published") && !record.contains_key("eventSource")
}

/// Turns one System Log event into an [`Event`], or says what is wrong with it.
pub fn to_event(record: &Value, raw: RawRef) -> Result<Event, String> {
    let Value::Object(map) = record else {
        return Err(format!("record is not a JSON object ({})", type_name(record)));
    };
    let top = At::Top;
    let published = opt_str(map, "published", top)?.ok_or("missing published")?;
    let time = keywatch_model::time::parse_rfc3339(published)
        .ok_or_else(|| format!("published is not an RFC 3339 time: {published:?}"))?;
    let event_type = nonempty(opt_str(map, "eventType", top)?).ok_or("missing eventType")?;
    let event_id = nonempty(opt_str(map, "uuid", top)?);

    let actor = opt_obj(map, "actor", top)?;
    let (actor_id, actor_alternate, actor_type) = match actor {
        Some(a) => {
            let at = At::In("actor");
            (known(opt_str(a, "id", at)?), known(opt_str(a, "alternateId", at)?), opt_str(a, "type", at)?)
        }
        None => (None, None, None),
    };
    let identity = actor_alternate.or(actor_id).map(str::to_string);

    let client = opt_obj(map, "client", top)?;
    let (client_ip, client_id, user_agent) = match client {
        Some(c) => {
            let at = At::In("client");
            let agent = match opt_obj(c, "userAgent", at)? {
                Some(ua) => opt_str(ua, "rawUserAgent", At::In("client.userAgent"))?,
                None => None,
            };
            (nonempty(opt_str(c, "ipAddress", at)?), nonempty(opt_str(c, "id", at)?), agent)
        }
        None => (None, None, None),
    };
    let user_agent = nonempty(user_agent).filter(|ua| !ua.eq_ignore_ascii_case("UNKNOWN-UNKNOWN"));
    let chain_ip = first_chain_ip(map)?;
    let source_ip = client_ip.filter(|ip| ip.parse::<IpAddr>().is_ok()).or(chain_ip);

    let token_id = match opt_obj(map, "transaction", top)? {
        Some(tx) => match opt_obj(tx, "detail", At::In("transaction"))? {
            Some(detail) => nonempty(opt_str(detail, "requestApiTokenId", At::In("transaction.detail"))?),
            None => None,
        },
        None => None,
    };
    let oauth_request = match opt_obj(map, "debugContext", top)? {
        Some(debug) => match opt_obj(debug, "debugData", At::In("debugContext"))? {
            Some(data) => data.get("grantedScopes").is_some_and(|s| !s.is_null()),
            None => false,
        },
        None => false,
    };
    let credential = token_id.or_else(|| match actor_type {
        Some(t) if APP_ACTORS.contains(&t) => actor_id.map(str::to_string),
        _ if oauth_request => client_id,
        _ => None,
    });

    let (outcome, error) = match opt_obj(map, "outcome", top)? {
        Some(o) => {
            let at = At::In("outcome");
            let result = nonempty(opt_str(o, "result", at)?);
            let reason = nonempty(opt_str(o, "reason", at)?);
            let failed =
                result.as_deref().is_some_and(|r| r.eq_ignore_ascii_case("FAILURE") || r.eq_ignore_ascii_case("DENY"));
            if failed {
                (Outcome::Failure, reason.or(result))
            } else {
                (Outcome::Success, None)
            }
        }
        None => (Outcome::Success, None),
    };

    let targets = targets(map)?;
    let category = category(&event_type);
    let resource = if category == Some(Category::Revocation) {
        revoked_credential(&event_type, &targets)
    } else {
        targets.first().and_then(|t| t.alternate_id.or(t.id)).map(str::to_string)
    };
    let read_only = READS.contains(&event_type.as_str()).then_some(true);
    Ok(Event {
        time,
        platform: "okta".into(),
        event_id,
        identity,
        credential,
        session: None,
        source_ip,
        via_service: None,
        user_agent,
        action: event_type,
        resource,
        outcome,
        error,
        read_only,
        category,
        raw,
    })
}

/// Actor types Okta gives an OAuth client acting for itself (client credentials), whose id is
/// the client id.
const APP_ACTORS: &[&str] = &["PublicClientApp", "AppInstance"];

/// The first valid address of `request.ipChain`, for events whose `client.ipAddress` is absent.
fn first_chain_ip(map: &Map<String, Value>) -> Result<Option<String>, String> {
    let Some(request) = opt_obj(map, "request", At::Top)? else { return Ok(None) };
    let Some(chain) = opt_arr(request, "ipChain", At::In("request"))? else { return Ok(None) };
    Ok(chain
        .iter()
        .filter_map(|hop| hop.get("ip").and_then(Value::as_str))
        .map(str::trim)
        .find(|ip| ip.parse::<IpAddr>().is_ok())
        .map(str::to_string))
}

/// One element of `target[]`.
struct Target<'v> {
    id: Option<&'v str>,
    alternate_id: Option<&'v str>,
    kind: Option<&'v str>,
}

fn targets(map: &Map<String, Value>) -> Result<Vec<Target<'_>>, String> {
    let Some(items) = opt_arr(map, "target", At::Top)? else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Null => {}
            Value::Object(t) => {
                let at = At::Item("target", i);
                out.push(Target {
                    id: known(opt_str(t, "id", at)?),
                    alternate_id: known(opt_str(t, "alternateId", at)?),
                    kind: opt_str(t, "type", at)?,
                });
            }
            other => return Err(format!("target[{i}] is not an object ({})", type_name(other))),
        }
    }
    Ok(out)
}

/// The credential a revocation event took away, as other events name it: the API token's id
/// (`00T…`, the `requestApiTokenId` of the requests it made) or the OAuth client's id.
fn revoked_credential(event_type: &str, targets: &[Target<'_>]) -> Option<String> {
    let kinds: &[&str] = if event_type == "system.api_token.revoke" { &["Token"] } else { APP_ACTORS };
    targets
        .iter()
        .find(|t| t.kind.is_some_and(|k| kinds.contains(&k)))
        .or_else(|| targets.first())
        .and_then(|t| t.id)
        .map(str::to_string)
}

/// More power or a new way in: admin roles, group and app assignments, API tokens, OAuth
/// clients, their secrets, keys, scopes and consents, new users and identity providers.
const PRIVILEGE_CHANGES: &[&str] = &[
    "user.account.privilege.grant",
    "group.privilege.grant",
    "group.user_membership.add",
    "group.application_assignment.add",
    "application.user_membership.add",
    "iam.resourceset.bindings.add",
    "iam.role.permissions.add",
    "system.api_token.create",
    "app.oauth2.client.lifecycle.create",
    "app.oauth2.client.privilege.grant",
    "app.oauth2.credentials.lifecycle.create",
    "app.oauth2.credentials.lifecycle.activate",
    "app.oauth2.as.consent.grant",
    "app.oauth2.consent.grant",
    "app.oauth2.admin.consent.grant",
    "user.lifecycle.create",
    "user.session.impersonation.grant",
    "system.idp.lifecycle.create",
    "system.idp.lifecycle.activate",
];

/// Logging, sign-on and MFA policies, authenticators and network zones weakened.
const DEFENCE_EVASION: &[&str] = &[
    "system.log_stream.lifecycle.deactivate",
    "system.log_stream.lifecycle.delete",
    "event_hook.deactivated",
    "event_hook.deleted",
    "workflows.user.execution_log_stream_connection.deactivate",
    "policy.lifecycle.deactivate",
    "policy.lifecycle.delete",
    "policy.rule.deactivate",
    "policy.rule.delete",
    "system.mfa.factor.deactivate",
    "security.authenticator.lifecycle.deactivate",
    "user.mfa.factor.reset_all",
    "zone.update",
    "zone.deactivate",
    "zone.delete",
    "zone.remove_blacklist",
    "security.zone.remove_blacklist",
    "network_zone.rule.disabled",
    "security.threat.configuration.update",
];

/// An outside origin trusted to call Okta with its users' sessions.
const EXPOSURE_CHANGES: &[&str] = &["security.trusted_origin.create"];

/// A stored secret shown to the actor.
const SECRET_READS: &[&str] = &[
    "app.oauth2.client.read_client_secret",
    "application.configuration.read_client_secret",
    "system.idp.lifecycle.read_client_secret",
    "application.user_membership.show_password",
    "pam.secret.reveal",
    "pam.service_account.password.reveal",
];

/// A credential taken away: an API token revoked (by an admin, or by Okta when unused for 30
/// days), an OAuth client deactivated or deleted, an API service integration revoked.
const REVOCATIONS: &[&str] = &[
    "system.api_token.revoke",
    "app.oauth2.client.lifecycle.deactivate",
    "app.oauth2.client.lifecycle.delete",
    "integration.api_service.lifecycle.revoke",
];

/// The few System Log events that record a read (Okta logs no event for most GETs).
const READS: &[&str] = &[
    "app.oauth2.client.read_client_secret",
    "application.configuration.read_client_secret",
    "system.idp.lifecycle.read_client_secret",
    "application.user_membership.show_password",
    "pam.secret.reveal",
    "pam.service_account.password.reveal",
    "system.ldapi.search",
    "support.org.view",
    "analytics.reports.export.download",
    "mim.streamDevicesCSVDownload",
    "workflows.user.table.view",
];

fn category(event_type: &str) -> Option<Category> {
    VOCABULARY.category(event_type)
}

const VOCABULARY: Vocabulary = Vocabulary {
    privilege_changes: PRIVILEGE_CHANGES,
    secret_reads: SECRET_READS,
    defence_evasion: DEFENCE_EVASION,
    exposure_changes: EXPOSURE_CHANGES,
    revocations: REVOCATIONS,
};

/// Where a field sits, for error messages: top level, in an object, or in an array element.
#[derive(Clone, Copy)]
enum At<'a> {
    Top,
    In(&'a str),
    Item(&'a str, usize),
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Top => Ok(()),
            At::In(path) => write!(f, "{path}."),
            At::Item(path, i) => write!(f, "{path}[{i}]."),
        }
    }
}

/// An identifier, unless empty or Okta's `"unknown"` placeholder.
fn known(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("unknown"))
}
