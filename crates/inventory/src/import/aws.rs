//! AWS IAM: the credential report CSV and `aws iam list-access-keys` output.

use super::{empty_batch, normalise_time, records, Record};
use anyhow::{bail, Context, Result};
use keywatch_model::inventory::{
    Credential, CredentialKind, CredentialStatus, Identity, IdentityKind, InventoryBatch, Privilege,
};
use serde_json::Value;
use std::collections::HashMap;

/// Report columns this reader needs; the report has more, and AWS adds some over time.
const REPORT_COLUMNS: [&str; 3] = ["user", "arn", "user_creation_time"];

/// The credential report: one row per IAM user (and `<root_account>`), with up to two
/// access keys each. The report does not show key ids, so a key is named by its user's ARN
/// and slot (`arn:aws:iam::123456789012:user/ci#access_key_1`).
pub(super) fn credential_report(bytes: &[u8]) -> Result<InventoryBatch> {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let headers = reader.headers().context("cannot read the header row")?.clone();
    let column: HashMap<&str, usize> = headers.iter().enumerate().map(|(i, h)| (h, i)).collect();
    for needed in REPORT_COLUMNS {
        if !column.contains_key(needed) {
            bail!("the header row has no {needed:?} column");
        }
    }
    let mut batch = empty_batch("aws:credential-report");
    let mut account: Option<String> = None;
    for (index, row) in reader.records().enumerate() {
        let line = index + 2;
        let row = row.with_context(|| format!("line {line}: malformed CSV row"))?;
        let get = |name: &str| column.get(name).and_then(|&i| row.get(i)).map(str::trim).unwrap_or("");
        let user = get("user");
        let arn = get("arn");
        let Some(row_account) = account_of(arn) else {
            bail!("line {line}: {arn:?} is not an IAM ARN");
        };
        match &account {
            Some(a) if a != row_account => bail!("line {line}: account {row_account} in a report of account {a}"),
            None => account = Some(row_account.to_string()),
            _ => {}
        }
        let root = user == "<root_account>";
        batch.identities.push(Identity {
            platform: "aws".into(),
            external_id: arn.to_string(),
            kind: IdentityKind::IamUser,
            name: user.to_string(),
            owner: None,
        });
        for slot in ["access_key_1", "access_key_2"] {
            let active = get(&format!("{slot}_active"));
            let rotated = report_time(get(&format!("{slot}_last_rotated")), line, slot)?;
            let last_used = report_time(get(&format!("{slot}_last_used_date")), line, slot)?;
            let status = match active {
                "true" => CredentialStatus::Active,
                // An unused slot reads false with N/A dates: there is no key there.
                "false" if rotated.is_none() => continue,
                "false" => CredentialStatus::Inactive,
                "" => continue,
                other => bail!("line {line}: {slot}_active is {other:?}, expected true or false"),
            };
            let service = get(&format!("{slot}_last_used_service"));
            let match_key = access_key_match_key(user, rotated.as_deref());
            batch.credentials.push(Credential {
                platform: "aws".into(),
                external_id: format!("{arn}#{slot}"),
                kind: CredentialKind::AccessKey,
                name: format!("{user} {slot}"),
                identity: Some(arn.to_string()),
                owner: None,
                scopes: if service.is_empty() || service == "N/A" {
                    vec![]
                } else {
                    vec![format!("last used with {service}")]
                },
                // The root account's keys can do anything; a user's depend on policies the
                // report does not show.
                privilege: if root { Privilege::Admin } else { Privilege::Unknown },
                created: rotated.clone(),
                expires: None,
                last_rotated: rotated,
                last_used,
                status,
                fingerprint: None,
                match_key,
            });
        }
    }
    let Some(account) = account else { bail!("the report has no rows") };
    batch.complete_scope = Some(format!("aws:{account}:credential-report"));
    Ok(batch)
}

/// What both exports know of one access key, so the store can tell that a report slot and a
/// key id are the same key: the user's name and the key's creation to the second (a slot's
/// `last_rotated` is its key's `CreateDate`; keys are never rotated in place). The report
/// does not show key ids and `list-access-keys` does not show the account, so neither can be
/// part of it.
fn access_key_match_key(user: &str, created: Option<&str>) -> Option<String> {
    created.map(|created| format!("aws-access-key:{user}:{created}"))
}

/// The report's dates: RFC 3339, or `N/A`, `no_information`, `not_supported` for none.
fn report_time(text: &str, line: usize, slot: &str) -> Result<Option<String>> {
    match text {
        "" | "N/A" | "no_information" | "not_supported" => Ok(None),
        t => normalise_time(t).map(Some).ok_or_else(|| anyhow::anyhow!("line {line}: {slot} date {t:?} is not a date")),
    }
}

/// The account of an IAM ARN (`arn:aws:iam::123456789012:user/x`).
fn account_of(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    let iam = parts.next() == Some("arn")
        && parts.next().is_some()
        && parts.next() == Some("iam")
        && parts.next() == Some("");
    iam.then(|| account_of_any(arn)).flatten()
}

/// `aws iam list-access-keys [--user-name U] --output json`: `{"AccessKeyMetadata": [...]}`.
/// Complete for its user(s) unless the output says it was truncated.
pub(super) fn list_access_keys(pages: &[Value]) -> Result<InventoryBatch> {
    let truncated = pages.iter().any(|p| p.get("IsTruncated").and_then(Value::as_bool) == Some(true));
    let mut batch = empty_batch("aws:list-access-keys");
    let mut users: Vec<String> = Vec::new();
    for (index, value) in records(pages, Some("AccessKeyMetadata"))?.into_iter().enumerate() {
        let r = Record::new(value, index + 1)?;
        let user = r.required_str("UserName")?;
        let key_id = r.required_str("AccessKeyId")?;
        if !(key_id.len() == 20 && (key_id.starts_with("AKIA") || key_id.starts_with("ASIA"))) {
            bail!("record {}: {key_id:?} is not an access key id", index + 1);
        }
        let status = match r.required_str("Status")? {
            "Active" => CredentialStatus::Active,
            "Inactive" => CredentialStatus::Inactive,
            other => bail!("record {}: Status {other:?} is neither Active nor Inactive", index + 1),
        };
        let created = r.optional_time("CreateDate")?;
        let identity = format!("user/{user}");
        if !users.contains(&identity) {
            users.push(identity.clone());
            batch.identities.push(Identity {
                platform: "aws".into(),
                external_id: identity.clone(),
                kind: IdentityKind::IamUser,
                name: user.to_string(),
                owner: None,
            });
        }
        batch.credentials.push(Credential {
            platform: "aws".into(),
            external_id: key_id.to_string(),
            kind: CredentialKind::AccessKey,
            name: format!("{user} {key_id}"),
            identity: Some(identity),
            owner: None,
            scopes: vec![],
            privilege: Privilege::Unknown,
            created: created.clone(),
            expires: None,
            match_key: access_key_match_key(user, created.as_deref()),
            last_rotated: created,
            last_used: None,
            status,
            fingerprint: Some(key_id.to_string()),
        });
    }
    if !truncated && users.len() == 1 {
        batch.complete_scope = Some(format!("aws:{}:access-keys", users[0]));
    }
    Ok(batch)
}

/// `aws iam list-roles --output json` (or `get-account-authorization-details`'
/// `RoleDetailList`): each role is an identity; each principal of another account that its
/// trust policy allows to assume it is a `role_trust` credential, because that account holds
/// a way in. The principal is kept as a `principal:ARN` scope for attribution; an `sts:ExternalId`
/// condition is noted, never its value.
pub(super) fn roles(pages: &[Value]) -> Result<InventoryBatch> {
    let truncated = pages.iter().any(|p| p.get("IsTruncated").and_then(Value::as_bool) == Some(true));
    let field =
        if pages.first().is_some_and(|p| p.get("RoleDetailList").is_some()) { "RoleDetailList" } else { "Roles" };
    let mut batch = empty_batch("aws:roles");
    let mut account: Option<String> = None;
    for (index, value) in records(pages, Some(field))?.into_iter().enumerate() {
        let record = index + 1;
        let r = Record::new(value, record)?;
        let arn = r.required_str("Arn")?;
        let name = r.required_str("RoleName")?;
        let Some(own) = account_of(arn) else { bail!("record {record}: {arn:?} is not an IAM role ARN") };
        account.get_or_insert_with(|| own.to_string());
        let created = r.optional_time("CreateDate")?;
        let last_used = match value.get("RoleLastUsed").and_then(|u| u.get("LastUsedDate")) {
            Some(Value::String(t)) => Some(
                normalise_time(t)
                    .ok_or_else(|| anyhow::anyhow!("record {record}: RoleLastUsed.LastUsedDate {t:?} is not a date"))?,
            ),
            _ => None,
        };
        batch.identities.push(Identity {
            platform: "aws".into(),
            external_id: arn.to_string(),
            kind: IdentityKind::IamRole,
            name: name.to_string(),
            owner: None,
        });
        let policy =
            trust_policy(value.get("AssumeRolePolicyDocument")).map_err(|e| anyhow::anyhow!("record {record}: {e}"))?;
        for (principal, external_id) in
            cross_account_principals(&policy, own).map_err(|e| anyhow::anyhow!("record {record}: {e}"))?
        {
            let mut scopes = vec!["sts:AssumeRole".to_string(), format!("principal:{principal}")];
            if external_id {
                scopes.push("requires sts:ExternalId".into());
            }
            batch.credentials.push(Credential {
                platform: "aws".into(),
                external_id: format!("{arn}#trust/{principal}"),
                kind: CredentialKind::RoleTrust,
                name: format!("{name} assumable by {principal}"),
                identity: Some(arn.to_string()),
                owner: None,
                scopes,
                privilege: Privilege::Unknown,
                created: created.clone(),
                expires: None,
                last_rotated: None,
                last_used: last_used.clone(),
                status: CredentialStatus::Active,
                fingerprint: None,
                match_key: None,
            });
        }
    }
    if let (Some(account), false) = (account, truncated) {
        batch.complete_scope = Some(format!("aws:{account}:roles"));
    }
    Ok(batch)
}

/// The trust policy as JSON: the CLI prints it decoded, the raw API URL-encodes it.
fn trust_policy(document: Option<&Value>) -> Result<Value> {
    match document {
        Some(Value::Object(_)) => Ok(document.cloned().unwrap_or_default()),
        Some(Value::String(encoded)) => {
            let decoded = percent_decode(encoded)
                .ok_or_else(|| anyhow::anyhow!("AssumeRolePolicyDocument is not URL-encoded JSON"))?;
            serde_json::from_str(&decoded).map_err(|e| anyhow::anyhow!("AssumeRolePolicyDocument is not JSON: {e}"))
        }
        None | Some(Value::Null) => bail!("missing \"AssumeRolePolicyDocument\""),
        Some(_) => bail!("AssumeRolePolicyDocument has the wrong type"),
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// AWS principals of other accounts that an Allow statement lets assume the role, as ARNs
/// (a bare account id becomes `arn:aws:iam::ID:root`), each with whether the statement
/// requires an `sts:ExternalId`. `*` is reported as itself: anyone.
fn cross_account_principals(policy: &Value, own_account: &str) -> Result<Vec<(String, bool)>> {
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => bail!("the trust policy has no Statement"),
    };
    let mut out: Vec<(String, bool)> = Vec::new();
    for statement in statements {
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let external_id = statement
            .get("Condition")
            .and_then(Value::as_object)
            .is_some_and(|conditions| conditions.values().any(|c| c.get("sts:ExternalId").is_some()));
        let principals: Vec<&str> = match statement.get("Principal") {
            Some(Value::String(s)) if s == "*" => vec!["*"],
            Some(Value::Object(map)) => match map.get("AWS") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        for p in principals {
            let arn = if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
                format!("arn:aws:iam::{p}:root")
            } else {
                p.to_string()
            };
            let other = p == "*" || account_of_any(&arn).is_some_and(|a| a != own_account);
            if other && !out.iter().any(|(a, _)| *a == arn) {
                out.push((arn, external_id));
            }
        }
    }
    Ok(out)
}

/// The account of any IAM or STS ARN (`arn:aws:iam::123456789012:role/x`, `...:root`).
fn account_of_any(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}
