//! AWS Signature Version 4: the canonical request, the string to sign, the signing key and
//! the `Authorization` header, for requests whose payload is known when they are built.
//!
//! See "Create a signed AWS API request" in the IAM user guide. The secret key only ever
//! enters an HMAC; it is in no header, message or `Debug` output.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// An access key pair, and the session token of temporary credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// `YYYYMMDDTHHMMSSZ`, the `X-Amz-Date` format.
pub fn amz_date(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    keywatch_model::time::rfc3339_utc(secs).chars().filter(|c| *c != '-' && *c != ':').collect()
}

/// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters as they are, every
/// other byte as `%XX` in upper case; `/` kept only in paths.
pub fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The canonical query string: each name and value encoded, sorted by name then value.
/// Sending exactly this string as the query keeps what is sent and what is signed the same.
pub fn canonical_query(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(k, v)| (uri_encode(k, false), uri_encode(v, false))).collect();
    encoded.sort();
    encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Canonical headers (lower-case names, trimmed values with inner runs of spaces collapsed,
/// sorted by name) and the signed-headers list.
fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut list: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    list.sort();
    let canonical = list.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed = list.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    (canonical, signed)
}

/// The canonical request and its signed-headers list. `path` is the URI path as sent
/// (already encoded), `query` the canonical query string.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> (String, String) {
    let (canonical, signed) = canonical_headers(headers);
    let path = if path.is_empty() { "/" } else { path };
    (format!("{method}\n{path}\n{query}\n{canonical}\n{signed}\n{}", sha256_hex(payload)), signed)
}

/// `DATE/REGION/SERVICE/aws4_request`.
pub fn credential_scope(amz_date: &str, region: &str, service: &str) -> String {
    format!("{}/{region}/{service}/aws4_request", &amz_date[..amz_date.len().min(8)])
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// The key derived from the secret for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// What a request is signed over.
pub struct SigningRequest<'a> {
    pub method: &'a str,
    /// The `Host` header as sent: host, and `:port` when not the scheme's default.
    pub host: &'a str,
    pub path: &'a str,
    /// The canonical query string ([`canonical_query`]).
    pub query: &'a str,
    /// Headers besides `host`, `x-amz-date` and `x-amz-security-token` to sign.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// The headers to add to the request: `x-amz-date`, `x-amz-security-token` when the
/// credentials are temporary, and `authorization`.
pub fn sign(
    request: &SigningRequest<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Vec<(&'static str, String)> {
    let mut headers: Vec<(&str, &str)> = vec![("host", request.host), ("x-amz-date", amz_date)];
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token", token));
    }
    headers.extend_from_slice(request.headers);
    let (canonical, signed) = canonical_request(request.method, request.path, request.query, &headers, request.payload);
    let scope = credential_scope(amz_date, region, service);
    let to_sign = string_to_sign(amz_date, &scope, &canonical);
    let key = signing_key(&credentials.secret_access_key, &amz_date[..amz_date.len().min(8)], region, service);
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    let mut out = vec![("x-amz-date", amz_date.to_string())];
    if let Some(token) = &credentials.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    out.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The worked example of the AWS General Reference ("Signature Version 4 signing process"):
    // GET https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08 at 20150830T123600Z.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const CONTENT_TYPE: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");

    #[test]
    fn documented_example_canonical_request() {
        let query = canonical_query(&[("Version", "2010-05-08"), ("Action", "ListUsers")]);
        assert_eq!(query, "Action=ListUsers&Version=2010-05-08");
        let (canonical, signed) = canonical_request(
            "GET",
            "/",
            &query,
            &[CONTENT_TYPE, ("Host", "iam.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            b"",
        );
        assert_eq!(
            canonical,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
             content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             content-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(signed, "content-type;host;x-amz-date");
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let scope = credential_scope("20150830T123600Z", "us-east-1", "iam");
        assert_eq!(scope, "20150830/us-east-1/iam/aws4_request");
        assert_eq!(
            string_to_sign("20150830T123600Z", &scope, &canonical),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
             f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
    }

    #[test]
    fn documented_example_signing_key_and_signature() {
        assert_eq!(
            hex(&signing_key(SECRET, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        let credentials =
            Credentials { access_key_id: "AKIDEXAMPLE".into(), secret_access_key: SECRET.into(), session_token: None };
        let request = SigningRequest {
            method: "GET",
            host: "iam.amazonaws.com",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &[CONTENT_TYPE],
            payload: b"",
        };
        let headers = sign(&request, &credentials, "us-east-1", "iam", "20150830T123600Z");
        assert_eq!(headers[0], ("x-amz-date", "20150830T123600Z".to_string()));
        assert_eq!(
            headers[1],
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, \
                 Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                    .to_string()
            )
        );
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let credentials = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: SECRET.into(),
            session_token: Some("token/with+chars".into()),
        };
        let request = SigningRequest {
            method: "GET",
            host: "iam.amazonaws.com",
            path: "/",
            query: "",
            headers: &[],
            payload: b"",
        };
        let headers = sign(&request, &credentials, "us-east-1", "iam", "20150830T123600Z");
        assert_eq!(headers[1], ("x-amz-security-token", "token/with+chars".to_string()));
        assert!(headers[2].1.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"));
        assert!(!format!("{credentials:?}").contains(SECRET));
        assert!(!format!("{credentials:?}").contains("token/with"));
    }

    #[test]
    fn encoding_and_dates() {
        assert_eq!(uri_encode("a b+c/d~e=f", false), "a%20b%2Bc%2Fd~e%3Df");
        assert_eq!(uri_encode("/a b/", true), "/a%20b/");
        assert_eq!(uri_encode("é", false), "%C3%A9");
        assert_eq!(canonical_query(&[("b", "2"), ("a", "x y"), ("a", "1")]), "a=1&a=x%20y&b=2");
        assert_eq!(amz_date(UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160)), "20150830T123600Z");
    }
}
