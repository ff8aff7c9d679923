//! Structural checks on candidate secrets. A checksum that fails means the string is not a
//! token the provider issued (a typo, a truncated paste, a made-up test value), so the match
//! is dropped unless the user asks to keep invalid ones.

use anyhow::{bail, Result};
use base64::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// GitHub's token format: `<prefix>_<30 base62><6 base62 CRC32 of the 30>`.
    GithubCrc32,
    /// A JWT whose header decodes to a JSON object with `alg`.
    Jwt,
}

/// What a validator concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    ChecksumValid,
    /// The secret has the right structure; there is no checksum to check.
    StructureValid,
    Invalid,
}

impl Validator {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "github-crc32" => Ok(Validator::GithubCrc32),
            "jwt" => Ok(Validator::Jwt),
            other => bail!("unknown validator {other:?} (known: github-crc32, jwt)"),
        }
    }

    pub fn check(self, secret: &[u8]) -> Outcome {
        let ok = match self {
            Validator::GithubCrc32 => return github_crc32(secret),
            Validator::Jwt => jwt_header_is_json(secret),
        };
        if ok {
            Outcome::StructureValid
        } else {
            Outcome::Invalid
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Encodes `n` in base62, left-padded with `0` to `width` characters.
pub fn base62(mut n: u64, width: usize) -> String {
    let mut digits = Vec::with_capacity(width);
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

fn github_crc32(secret: &[u8]) -> Outcome {
    let Some(underscore) = secret.iter().rposition(|&b| b == b'_') else {
        return Outcome::Invalid;
    };
    let body = &secret[underscore + 1..];
    if body.len() != 36 || !body.iter().all(u8::is_ascii_alphanumeric) {
        return Outcome::Invalid;
    }
    let (random, checksum) = body.split_at(30);
    let expected = base62(crc32fast::hash(random) as u64, 6);
    if expected.as_bytes() == checksum {
        Outcome::ChecksumValid
    } else {
        Outcome::Invalid
    }
}

/// Decodes a JWT's header and claims (never verifying it). `now` and `captured` (when the
/// token was seen in use, if known) are Unix seconds.
pub fn decode_jwt(token: &[u8], now: i64, captured: Option<i64>) -> Option<keywatch_model::JwtClaims> {
    let mut parts = token.split(|&b| b == b'.');
    let (header, payload) = (parts.next()?, parts.next()?);
    let decode = |segment: &[u8]| -> Option<serde_json::Value> {
        let trimmed: Vec<u8> = segment.iter().copied().filter(|&b| b != b'=').collect();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header = decode(header)?;
    let claims = decode(payload)?;
    let text = |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_str()).map(str::to_string);
    let time = |key: &str| claims.get(key).and_then(|x| x.as_f64()).map(|t| t as i64);
    let aud = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => vec![a.clone()],
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(|a| a.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    let exp = time("exp");
    let nbf = time("nbf");
    let valid_at_capture = match (captured, exp.is_some() || nbf.is_some()) {
        (Some(at), true) => Some(exp.is_none_or(|e| at < e) && nbf.is_none_or(|n| n <= at)),
        _ => None,
    };
    Some(keywatch_model::JwtClaims {
        alg: text(&header, "alg")?,
        iss: text(&claims, "iss"),
        sub: text(&claims, "sub"),
        aud,
        expires: exp.map(crate::time::rfc3339_utc),
        issued: time("iat").map(crate::time::rfc3339_utc),
        expired: exp.map(|e| e <= now),
        valid_at_capture,
    })
}

fn jwt_header_is_json(secret: &[u8]) -> bool {
    let Some(header) = secret.split(|&b| b == b'.').next() else {
        return false;
    };
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let trimmed: Vec<u8> = header.iter().copied().filter(|&b| b != b'=').collect();
    let Ok(decoded) = engine.decode(trimmed) else {
        return false;
    };
    let decoded = String::from_utf8_lossy(&decoded);
    let t = decoded.trim_start();
    t.starts_with('{') && decoded.contains("\"alg\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github_token(prefix: &str, random: &str) -> String {
        format!("{prefix}_{random}{}", base62(crc32fast::hash(random.as_bytes()) as u64, 6))
    }

    #[test]
    fn github_checksum_round_trip() {
        let t = github_token("ghp", "Zq8mV1xR4tK0pLw2Yc7Hn3Ub6Js9Ad");
        assert_eq!(Validator::GithubCrc32.check(t.as_bytes()), Outcome::ChecksumValid);
        let mut broken = t.into_bytes();
        let last = broken.len() - 1;
        broken[last] = if broken[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(Validator::GithubCrc32.check(&broken), Outcome::Invalid);
    }

    #[test]
    fn base62_pads() {
        assert_eq!(base62(0, 6), "000000");
        assert_eq!(base62(61, 2), "0z");
        assert_eq!(base62(62, 1), "10");
    }

    #[test]
    fn jwt_claims() {
        // {"alg":"HS256","typ":"JWT"} . {"iss":"https://auth.acme.io","sub":"svc-ci","aud":["api"],"exp":1700000000,"iat":1690000000}
        let token = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJodHRwczovL2F1dGguYWNtZS5pbyIsInN1YiI6InN2Yy1jaSIsImF1ZCI6WyJhcGkiXSwiZXhwIjoxNzAwMDAwMDAwLCJpYXQiOjE2OTAwMDAwMDB9.c2ln";
        let c = decode_jwt(token, 1_800_000_000, Some(1_600_000_000)).unwrap();
        assert_eq!(c.alg, "HS256");
        assert_eq!(c.iss.as_deref(), Some("https://auth.acme.io"));
        assert_eq!(c.sub.as_deref(), Some("svc-ci"));
        assert_eq!(c.aud, vec!["api".to_string()]);
        assert_eq!(c.expires.as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(c.expired, Some(true));
        assert_eq!(c.valid_at_capture, Some(true), "captured before exp");
        let late = decode_jwt(token, 1_800_000_000, Some(1_750_000_000)).unwrap();
        assert_eq!(late.valid_at_capture, Some(false), "captured after exp");
        assert_eq!(decode_jwt(token, 1_600_000_000, None).unwrap().expired, Some(false));
        assert!(decode_jwt(b"eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxIn0.sig", 0, None).is_none(), "no alg, not a JWT");
    }

    #[test]
    fn jwt_header() {
        assert!(jwt_header_is_json(b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"));
        assert!(!jwt_header_is_json(b"eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxIn0.sig"));
        assert!(!jwt_header_is_json(b"!!!.x.y"));
    }
}
