//! Okta: `GET /api/v1/api-tokens`.

use super::{empty_batch, records, Record};
use anyhow::Result;
use keywatch_model::inventory::{
    Credential, CredentialKind, CredentialStatus, Identity, IdentityKind, InventoryBatch, Privilege,
};
use keywatch_model::time::{parse_rfc3339, rfc3339_utc};
use serde_json::Value;

/// API tokens (SSWS): one per record. A token acts with every permission of the admin who
/// made it, so its scope is that user. Okta does not list a last use, but it moves
/// `expiresAt` to `last use + tokenWindow` each time the token is used, so the last use is
/// `expiresAt - tokenWindow` when that falls after creation.
pub(super) fn api_tokens(pages: &[Value], org: Option<&str>) -> Result<InventoryBatch> {
    let mut batch = empty_batch("okta:api-tokens");
    batch.complete_scope = org.map(|o| format!("okta:{o}:api-tokens"));
    for (index, value) in records(pages, None)?.iter().enumerate() {
        let r = Record::new(value, index + 1)?;
        let id = r.required_id("id")?;
        let user = r.required_str("userId")?;
        let created = r.optional_time("created")?;
        let expires = r.optional_time("expiresAt")?;
        let window = match r.optional_str("tokenWindow")? {
            None => None,
            Some(w) => Some(duration_secs(w).ok_or_else(|| {
                anyhow::anyhow!("record {}: tokenWindow {w:?} is not an ISO 8601 duration", index + 1)
            })?),
        };
        let last_used = match (&expires, window, &created) {
            (Some(e), Some(w), Some(c)) => {
                let (e, c) = (parse_rfc3339(e).unwrap_or(0), parse_rfc3339(c).unwrap_or(0));
                // Within a minute of creation is the creation itself, not a use.
                (e - w > c + 60).then(|| rfc3339_utc(e - w))
            }
            _ => None,
        };
        if !batch.identities.iter().any(|i| i.external_id == user) {
            batch.identities.push(Identity {
                platform: "okta".into(),
                external_id: user.to_string(),
                kind: IdentityKind::User,
                name: user.to_string(),
                owner: Some(user.to_string()),
            });
        }
        let mut scopes = vec![format!("every API user {user} may call")];
        if let Some(connection) = value.get("network").and_then(|n| n.get("connection")).and_then(Value::as_str) {
            scopes.push(format!("network:{}", connection.to_ascii_lowercase()));
        }
        batch.credentials.push(Credential {
            platform: "okta".into(),
            external_id: id.clone(),
            kind: CredentialKind::ApiToken,
            name: r.optional_str("name")?.unwrap_or("(unnamed token)").to_string(),
            identity: Some(user.to_string()),
            owner: Some(user.to_string()),
            scopes,
            // Only administrators can make API tokens, but a read-only administrator's token
            // can only read: the level is the user's, which this export does not show.
            privilege: Privilege::Unknown,
            created,
            expires,
            last_rotated: None,
            last_used,
            status: CredentialStatus::Active,
            fingerprint: Some(id),
        });
    }
    Ok(batch)
}

/// `P30D`, `PT12H`, `P1DT30M`, `P2W` in seconds (no years or months: their length varies).
fn duration_secs(text: &str) -> Option<i64> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = 0i64;
    let mut add = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                number.push(c);
            } else {
                let scale = units.iter().find(|(u, _)| *u == c)?.1;
                total += number.parse::<i64>().ok()?.checked_mul(scale)?;
                number.clear();
            }
        }
        number.is_empty().then_some(())
    };
    add(date, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        add(t, &[('H', 3_600), ('M', 60), ('S', 1)])?;
    }
    (rest != "T" && !rest.is_empty()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::duration_secs;

    #[test]
    fn iso_durations() {
        assert_eq!(duration_secs("P30D"), Some(30 * 86_400));
        assert_eq!(duration_secs("PT12H"), Some(12 * 3_600));
        assert_eq!(duration_secs("P1DT30M"), Some(86_400 + 1_800));
        assert_eq!(duration_secs("P2W"), Some(2 * 604_800));
        for bad in ["", "P", "30D", "P1Y", "PT", "P3X", "P1DT"] {
            assert_eq!(duration_secs(bad), None, "{bad}");
        }
    }
}
