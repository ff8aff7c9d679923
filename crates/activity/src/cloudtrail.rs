//! AWS CloudTrail records: S3 delivery files (`{"Records":[...]}`), JSON lines (also
//! Logstash-shipped lines with `@timestamp`), and `aws cloudtrail lookup-events` output
//! (`{"Events":[{"CloudTrailEvent":"..."}]}`). [`crate::read`] finds the records; this module
//! turns each into an [`Event`].
//!
//! Two paths give the same result: [`fast_event`] deserialises a line straight into borrowed
//! fields, skipping the rest of the record, and [`to_event`] works on a parsed
//! [`serde_json::Value`] and words every problem. Anything the fast path does not accept (a
//! wrong type, a wrapper, another platform) goes to the slow path, which decides. In fields it
//! does not read, the fast path accepts what the JSON grammar allows and `Value` refuses (a
//! lone surrogate escape, a number beyond f64, nesting past 128): such a record is read, not
//! lost.

use crate::fields::{opt_str, type_name, Vocabulary};
use std::borrow::Cow;
use std::net::IpAddr;

use keywatch_model::event::{Category, Event, Outcome, RawRef};
use serde::de::{Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Whether a record is a CloudTrail event.
pub fn recognise(record: &Map<String, Value>) -> bool {
    record.contains_key("eventName") && record.contains_key("eventSource")
}

/// The fields of one record that an [`Event`] is made of, borrowed from either path.
#[derive(Default)]
struct Fields<'a> {
    time: Option<(&'static str, &'a str)>,
    source: Option<&'a str>,
    name: Option<&'a str>,
    event_id: Option<&'a str>,
    identity_type: Option<&'a str>,
    arn: Option<&'a str>,
    issuer: Option<&'a str>,
    access_key: Option<&'a str>,
    invoked_by: Option<&'a str>,
    source_ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    error: Option<&'a str>,
    read_only: Option<bool>,
    /// The first of `resources[].ARN`, the named request parameters, an instance id.
    resource: Option<Cow<'a, str>>,
    /// `requestParameters.accessKeyId` unless `status` says the key stays active.
    revoked_key: Option<&'a str>,
    /// `responseElements.ConsoleLogin` (`Success`, `Failure`): a failed console sign-in has no
    /// `errorCode`.
    console_login: Option<&'a str>,
    /// `additionalEventData.MFAUsed` (`Yes`, `No`).
    mfa_used: Option<&'a str>,
}

fn nonempty_str(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

impl Fields<'_> {
    fn build(self, raw: RawRef) -> Result<Event, String> {
        let (time_key, time_text) = self.time.ok_or("missing eventTime")?;
        let time = keywatch_model::time::parse_rfc3339(time_text)
            .ok_or_else(|| format!("{time_key} is not an RFC 3339 time: {time_text:?}"))?;
        let source = self.source.ok_or("missing eventSource")?;
        let name = self.name.ok_or("missing eventName")?;
        let arn = nonempty_str(self.arn).map(str::to_string);
        let (identity, session) = match (self.identity_type, self.issuer.filter(|s| !s.is_empty())) {
            (Some("AssumedRole"), Some(role)) => (Some(role.to_string()), arn),
            _ => (arn, None),
        };
        let (source_ip, via_ip) = match nonempty_str(self.source_ip) {
            Some(ip) if ip.parse::<IpAddr>().is_ok() => (Some(ip.to_string()), None),
            Some(host) => (None, Some(host.to_string())),
            None => (None, None),
        };
        let user_agent = nonempty_str(self.user_agent.map(|ua| {
            let ua = ua.trim();
            ua.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(ua)
        }));
        let failed_login = self.console_login == Some("Failure");
        let error = nonempty_str(self.error).or(failed_login.then_some("ConsoleLoginFailure")).map(str::to_string);
        let category = if name == "ConsoleLogin" && self.mfa_used == Some("No") {
            Some(Category::LoginWithoutMfa)
        } else {
            category(name, self.revoked_key.is_some())
        };
        let resource = if category == Some(Category::Revocation) {
            self.revoked_key.map(str::to_string)
        } else {
            self.resource.map(Cow::into_owned)
        };
        Ok(Event {
            time,
            platform: "aws".into(),
            event_id: nonempty_str(self.event_id).map(str::to_string),
            identity,
            credential: nonempty_str(self.access_key).map(str::to_string),
            session,
            source_ip,
            via_service: via_ip.or_else(|| nonempty_str(self.invoked_by).map(str::to_string)),
            user_agent: user_agent.map(str::to_string),
            action: format!("{source}:{name}"),
            resource,
            outcome: if error.is_some() { Outcome::Failure } else { Outcome::Success },
            error,
            read_only: self.read_only,
            category,
            raw,
        })
    }
}

/// Turns one CloudTrail record into an [`Event`], or says what is wrong with it.
pub fn to_event(value: &Value, raw: RawRef) -> Result<Event, String> {
    let Value::Object(map) = value else {
        return Err(format!("record is not a JSON object ({})", type_name(value)));
    };
    let time = match opt_str(map, "eventTime", "")? {
        Some(t) => Some(("eventTime", t)),
        None => opt_str(map, "@timestamp", "")?.map(|t| ("@timestamp", t)),
    };
    let empty = Map::new();
    let ui = match map.get("userIdentity") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(ui)) => ui,
        Some(other) => return Err(format!("userIdentity is not an object ({})", type_name(other))),
    };
    let params = map.get("requestParameters").and_then(Value::as_object);
    let fields = Fields {
        time,
        source: opt_str(map, "eventSource", "")?,
        name: opt_str(map, "eventName", "")?,
        event_id: opt_str(map, "eventID", "")?,
        identity_type: opt_str(ui, "type", "userIdentity.")?,
        arn: opt_str(ui, "arn", "userIdentity.")?,
        issuer: ui
            .get("sessionContext")
            .and_then(|s| s.get("sessionIssuer"))
            .and_then(|s| s.get("arn"))
            .and_then(Value::as_str),
        access_key: opt_str(ui, "accessKeyId", "userIdentity.")?,
        invoked_by: opt_str(ui, "invokedBy", "userIdentity.")?,
        source_ip: opt_str(map, "sourceIPAddress", "")?,
        user_agent: opt_str(map, "userAgent", "")?,
        error: opt_str(map, "errorCode", "")?,
        console_login: map.get("responseElements").and_then(|r| r.get("ConsoleLogin")).and_then(Value::as_str),
        mfa_used: map.get("additionalEventData").and_then(|a| a.get("MFAUsed")).and_then(Value::as_str),
        read_only: map.get("readOnly").and_then(flag),
        resource: resource(map).map(Cow::Owned),
        revoked_key: params.and_then(|p| revoked_key(p.get("status"), p.get("accessKeyId"))),
    };
    fields.build(raw)
}

/// `true`/`false`, also as a string in any case; anything else is unknown.
fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => text_flag(s),
        _ => None,
    }
}

fn text_flag(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The operations that give a principal more power, or a new way in.
const PRIVILEGE_CHANGES: &[&str] = &[
    "AddUserToGroup",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "AttachGroupPolicy",
    "PutUserPolicy",
    "PutRolePolicy",
    "PutGroupPolicy",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "UpdateAssumeRolePolicy",
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "CreateUser",
    "CreateRole",
];

/// Operations that blind the defenders: audit logging, flow logs, organisation guardrails.
const DEFENCE_EVASION: &[&str] = &[
    "StopLogging",
    "DeleteTrail",
    "UpdateTrail",
    "PutEventSelectors",
    "PutBucketLifecycle",
    "DeleteFlowLogs",
    "LeaveOrganization",
    "DeleteDetector",
    "DisableSecurityHub",
    "DeleteConfigurationRecorder",
    "StopConfigurationRecorder",
];

/// Operations that hand data or a way in to another account or the internet: sharing
/// snapshots and images, opening bucket policies and security groups, replacing code that
/// runs with the account's privileges, trusting outside certificate authorities.
const EXPOSURE_CHANGES: &[&str] = &[
    "ModifySnapshotAttribute",
    "ModifyImageAttribute",
    "ModifyDBSnapshotAttribute",
    "ModifyDBClusterSnapshotAttribute",
    "PutBucketPolicy",
    "PutBucketAcl",
    "AuthorizeSecurityGroupIngress",
    "UpdateFunctionCode",
    "UpdateFunctionCode20150331v2",
    "AddPermission",
    "AddPermission20150331v2",
    "CreateTrustAnchor",
    "CreateProfile",
];

/// Reads of stored secrets.
const SECRET_READS: &[&str] = &[
    "GetSecretValue",
    "ListSecrets",
    "BatchGetSecretValue",
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "GetPasswordData",
];

/// What a call means for security. A deleted or deactivated access key is a revocation of
/// that key, which the event's resource then names.
fn category(name: &str, names_revoked_key: bool) -> Option<Category> {
    if matches!(name, "DeleteAccessKey" | "UpdateAccessKey") {
        return names_revoked_key.then_some(Category::Revocation);
    }
    VOCABULARY.category(name)
}

const VOCABULARY: Vocabulary = Vocabulary {
    privilege_changes: PRIVILEGE_CHANGES,
    secret_reads: SECRET_READS,
    defence_evasion: DEFENCE_EVASION,
    exposure_changes: EXPOSURE_CHANGES,
    revocations: &[],
};

/// The key an `UpdateAccessKey` call set inactive, or a `DeleteAccessKey` call deleted.
fn revoked_key<'a>(status: Option<&Value>, key: Option<&'a Value>) -> Option<&'a str> {
    if status.and_then(Value::as_str).is_some_and(|s| s != "Inactive") {
        return None;
    }
    key.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Request parameters that name the resource acted on, in order of preference.
const RESOURCE_PARAMETERS: [&str; 7] =
    ["bucketName", "userName", "roleName", "secretId", "instanceId", "functionName", "name"];

fn resource(map: &Map<String, Value>) -> Option<String> {
    if let Some(Value::Array(resources)) = map.get("resources") {
        let arn = resources
            .iter()
            .find_map(|r| r.get("ARN").or_else(|| r.get("arn")).and_then(Value::as_str).filter(|s| !s.is_empty()));
        if let Some(arn) = arn {
            return Some(arn.to_string());
        }
    }
    let params = map.get("requestParameters")?.as_object()?;
    for key in RESOURCE_PARAMETERS {
        if let Some(v) = params.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()) {
            return Some(v.to_string());
        }
    }
    first_instance(params.get("instancesSet")?)
}

fn first_instance(instances: &Value) -> Option<String> {
    instances
        .get("items")
        .and_then(Value::as_array)
        .and_then(|items| items.iter().find_map(|i| i.get("instanceId").and_then(Value::as_str)))
        .map(str::to_string)
}

// The fast path: the same fields, deserialised from the line's bytes without building a
// `Value`. Strict where `to_event` is strict (a failure falls back to it for the message),
// lenient where it is lenient.

/// A field read the way `Value::get(..).and_then(Value::as_str)` reads it: present or not, and
/// a string or not.
#[derive(Default)]
enum Loose<'a> {
    #[default]
    Absent,
    Text(Cow<'a, str>),
    Bool(bool),
    Other,
}

impl<'a> Loose<'a> {
    fn text(&self) -> Option<&str> {
        match self {
            Loose::Text(s) => Some(s),
            _ => None,
        }
    }
    fn present(&self) -> bool {
        !matches!(self, Loose::Absent)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Loose<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Loose::Text(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Loose::Bool(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Loose::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// A struct read only from a JSON object: serde's derived structs also accept an array of
/// the fields in order, which the slow path rightly refuses.
struct MapOnly<T>(T);

impl<T> std::ops::Deref for MapOnly<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData)).map(MapOnly)
    }
}

#[derive(Deserialize)]
struct FastRecord<'a> {
    #[serde(rename = "eventTime", borrow)]
    event_time: Option<Cow<'a, str>>,
    #[serde(rename = "@timestamp", borrow)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "eventSource", borrow)]
    event_source: Option<Cow<'a, str>>,
    #[serde(rename = "eventName", borrow)]
    event_name: Option<Cow<'a, str>>,
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(rename = "sourceIPAddress", borrow)]
    source_ip: Option<Cow<'a, str>>,
    #[serde(rename = "userAgent", borrow)]
    user_agent: Option<Cow<'a, str>>,
    #[serde(rename = "errorCode", borrow)]
    error_code: Option<Cow<'a, str>>,
    #[serde(rename = "readOnly", default, borrow)]
    read_only: Loose<'a>,
    #[serde(rename = "userIdentity", borrow)]
    user_identity: Option<MapOnly<FastIdentity<'a>>>,
    #[serde(rename = "requestParameters", default, borrow)]
    request_parameters: Option<MapOnly<FastParameters<'a>>>,
    #[serde(default, borrow)]
    resources: Option<Vec<MapOnly<FastResource<'a>>>>,
    #[serde(rename = "responseElements", default, borrow)]
    response_elements: Option<MapOnly<FastResponse<'a>>>,
    #[serde(rename = "additionalEventData", default, borrow)]
    additional: Option<MapOnly<FastAdditional<'a>>>,
}

#[derive(Deserialize)]
struct FastResponse<'a> {
    #[serde(rename = "ConsoleLogin", default, borrow)]
    console_login: Loose<'a>,
}

#[derive(Deserialize)]
struct FastAdditional<'a> {
    #[serde(rename = "MFAUsed", default, borrow)]
    mfa_used: Loose<'a>,
}

#[derive(Deserialize)]
struct FastIdentity<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(rename = "accessKeyId", borrow)]
    access_key: Option<Cow<'a, str>>,
    #[serde(rename = "invokedBy", borrow)]
    invoked_by: Option<Cow<'a, str>>,
    #[serde(rename = "sessionContext", borrow)]
    session_context: Option<MapOnly<FastSessionContext<'a>>>,
}

#[derive(Deserialize)]
struct FastSessionContext<'a> {
    #[serde(rename = "sessionIssuer", borrow)]
    session_issuer: Option<MapOnly<FastIssuer<'a>>>,
}

#[derive(Deserialize)]
struct FastIssuer<'a> {
    #[serde(default, borrow)]
    arn: Loose<'a>,
}

#[derive(Deserialize)]
struct FastResource<'a> {
    #[serde(rename = "ARN", default, borrow)]
    upper: Loose<'a>,
    #[serde(default, borrow)]
    arn: Loose<'a>,
}

#[derive(Deserialize)]
struct FastParameters<'a> {
    #[serde(rename = "bucketName", default, borrow)]
    bucket_name: Loose<'a>,
    #[serde(rename = "userName", default, borrow)]
    user_name: Loose<'a>,
    #[serde(rename = "roleName", default, borrow)]
    role_name: Loose<'a>,
    #[serde(rename = "secretId", default, borrow)]
    secret_id: Loose<'a>,
    #[serde(rename = "instanceId", default, borrow)]
    instance_id: Loose<'a>,
    #[serde(rename = "functionName", default, borrow)]
    function_name: Loose<'a>,
    #[serde(default, borrow)]
    name: Loose<'a>,
    #[serde(default, borrow)]
    status: Loose<'a>,
    #[serde(rename = "accessKeyId", default, borrow)]
    access_key: Loose<'a>,
    #[serde(rename = "instancesSet", borrow)]
    instances: Option<&'a serde_json::value::RawValue>,
}

/// The fast path for one JSON-lines record: `None` when it is not a plain CloudTrail record
/// this path can read (the caller then uses [`to_event`], which has the final word).
pub fn fast_event(line: &[u8], raw: RawRef) -> Option<Event> {
    // One UTF-8 check of the whole line is cheaper than serde_json's check of every string.
    let text = std::str::from_utf8(line).ok()?;
    let MapOnly(record): MapOnly<FastRecord> = serde_json::from_str(text).ok()?;
    record.event_source.as_ref()?;
    record.event_name.as_ref()?;
    let identity = record.user_identity.as_ref();
    let params = record.request_parameters.as_ref();
    let resource = fast_resource(&record)?;
    let fields = Fields {
        time: match (&record.event_time, &record.timestamp) {
            (Some(t), _) => Some(("eventTime", t)),
            (None, Some(t)) => Some(("@timestamp", t)),
            (None, None) => None,
        },
        source: record.event_source.as_deref(),
        name: record.event_name.as_deref(),
        event_id: record.event_id.as_deref(),
        identity_type: identity.and_then(|i| i.kind.as_deref()),
        arn: identity.and_then(|i| i.arn.as_deref()),
        issuer: identity
            .and_then(|i| i.session_context.as_ref())
            .and_then(|c| c.session_issuer.as_ref())
            .and_then(|i| i.arn.text()),
        access_key: identity.and_then(|i| i.access_key.as_deref()),
        invoked_by: identity.and_then(|i| i.invoked_by.as_deref()),
        source_ip: record.source_ip.as_deref(),
        user_agent: record.user_agent.as_deref(),
        error: record.error_code.as_deref(),
        console_login: record.response_elements.as_ref().and_then(|r| r.console_login.text()),
        mfa_used: record.additional.as_ref().and_then(|a| a.mfa_used.text()),
        read_only: match &record.read_only {
            Loose::Text(s) => text_flag(s),
            Loose::Bool(b) => Some(*b),
            _ => None,
        },
        resource,
        revoked_key: params.and_then(|p| {
            if p.status.text().is_some_and(|s| s != "Inactive") {
                return None;
            }
            p.access_key.text().filter(|s| !s.is_empty())
        }),
    };
    fields.build(raw).ok()
}

/// `resource()` on the fast fields; `None` when the instance set must be parsed and cannot be
/// (the slow path then decides).
fn fast_resource<'a>(record: &'a FastRecord<'a>) -> Option<Option<Cow<'a, str>>> {
    if let Some(resources) = &record.resources {
        let arn = resources.iter().find_map(|r| {
            let value = if r.upper.present() { &r.upper } else { &r.arn };
            value.text().filter(|s| !s.is_empty())
        });
        if let Some(arn) = arn {
            return Some(Some(Cow::Borrowed(arn)));
        }
    }
    let Some(p) = &record.request_parameters else { return Some(None) };
    let named = [&p.bucket_name, &p.user_name, &p.role_name, &p.secret_id, &p.instance_id, &p.function_name, &p.name];
    if let Some(v) = named.iter().find_map(|v| v.text().filter(|s| !s.is_empty())) {
        return Some(Some(Cow::Borrowed(v)));
    }
    match p.instances {
        None => Some(None),
        Some(raw) => {
            let value: Value = serde_json::from_str(raw.get()).ok()?;
            Some(first_instance(&value).map(Cow::Owned))
        }
    }
}
