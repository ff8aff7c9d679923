//! What counts as a secret in HTTP traffic beyond what the detection rules find: the names of
//! secret-bearing fields, headers and cookies, and the small parsers (URLs, cookie headers,
//! form and multipart bodies) that find the values under those names.

use std::collections::HashSet;
use std::ops::Range;

/// The marker prefix every redaction starts with; a value holding one is already sanitised.
pub const MARKER_PREFIX: &str = "[REDACTED:";

/// How sensitive a named field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// A credential: reported by `har scan`, redacted by `har sanitize`.
    Secret,
    /// Ties requests to a session or flow (`state`, `nonce`, CSRF tokens): not a credential
    /// on its own, so not reported, but redacted.
    Correlation,
}

/// Field names (query parameters, form and JSON fields) whose values are redacted.
#[derive(Debug, Clone)]
pub struct FieldNames {
    extra: HashSet<String>,
}

fn is_secret_name(n: &str) -> bool {
    matches!(
        n,
        "password"
            | "passwd"
            | "pwd"
            | "pass"
            | "passphrase"
            | "secret"
            | "token"
            | "accesstoken"
            | "idtoken"
            | "refreshtoken"
            | "code"
            | "codeverifier"
            | "clientsecret"
            | "clientassertion"
            | "apikey"
            | "apisecret"
            | "apitoken"
            | "authtoken"
            | "authkey"
            | "samlresponse"
            | "session"
            | "sessionid"
            | "sessiontoken"
            | "sessionkey"
            | "sid"
            | "privatekey"
            | "secretkey"
            | "secretaccesskey"
            | "awssecretaccesskey"
            | "bearertoken"
            | "authorization"
            | "jwt"
            | "signature"
            | "sig"
            | "assertion"
            | "subjecttoken"
            | "devicecode"
            | "otp"
    )
}

fn is_correlation_name(n: &str) -> bool {
    matches!(
        n,
        "state"
            | "nonce"
            | "relaystate"
            | "samlrequest"
            | "csrf"
            | "xsrf"
            | "csrftoken"
            | "xsrftoken"
            | "csrfmiddlewaretoken"
            | "authenticitytoken"
            | "requestverificationtoken"
    )
}

/// Names that end like a secret's but are not one.
fn is_not_secret_name(n: &str) -> bool {
    matches!(
        n,
        "tokentype"
            | "tokentypehint"
            | "tokenendpoint"
            | "tokenurl"
            | "nexttoken"
            | "pagetoken"
            | "nextpagetoken"
            | "continuationtoken"
    )
}

impl FieldNames {
    /// The built-in list plus the user's own (`--redact-name`), matched the same way.
    pub fn new(extra: &[String]) -> Self {
        FieldNames { extra: extra.iter().map(|n| normalise(n)).collect() }
    }

    /// The tier of a field, or `None` if its name says nothing.
    pub fn tier(&self, name: &str) -> Option<Tier> {
        let normalised = Normalised::new(name);
        let n = normalised.as_str();
        if n.is_empty() {
            return None;
        }
        if !self.extra.is_empty() && self.extra.contains(n) {
            return Some(Tier::Secret);
        }
        if is_correlation_name(n) || n.ends_with("csrftoken") || n.ends_with("xsrftoken") {
            return Some(Tier::Correlation);
        }
        if is_not_secret_name(n) {
            return None;
        }
        if is_secret_name(n)
            || ["token", "secret", "password", "apikey", "signature", "sessionid", "privatekey"]
                .iter()
                .any(|s| n.ends_with(s))
        {
            return Some(Tier::Secret);
        }
        None
    }

    /// Whether `value`, under a field called `name`, is a value worth redacting.
    pub fn value_qualifies(name: &str, value: &str) -> bool {
        let v = value.trim();
        if trivial_value(v) {
            return false;
        }
        // Documented examples (`...EXAMPLE`) and templates (`<token>`, `${TOKEN}`, `{{ token }}`)
        // are not secrets under any name.
        let template = (v.starts_with('<') && v.ends_with('>'))
            || v.starts_with("${")
            || v.starts_with("{{")
            || (v.starts_with('%') && v.ends_with('%'));
        if template || crate::filters::is_documented_example(v.as_bytes(), true) {
            return false;
        }
        let normalised = Normalised::new(name);
        let n = normalised.as_str();
        let password_like = n.contains("pass") || n == "pwd" || n == "otp";
        let min = if n == "code" {
            // Error codes (`"code": "invalid_grant"`, `code=404`) share the name with OAuth
            // authorisation codes, which are long random strings.
            10
        } else if password_like {
            1
        } else {
            6
        };
        if v.len() < min {
            return false;
        }
        // A number under a token or session name is an id or a timestamp (analytics `sid`);
        // `YOUR_API_KEY` and the like are placeholders. Passwords are exempt from the second
        // test: a real one can be a plain word.
        // A long random value is never a placeholder, whatever characters it happens to lack.
        let random = v.len() >= 24 && crate::filters::shannon_entropy(v.as_bytes()) >= 3.5;
        if !password_like
            && (v.bytes().all(|b| b.is_ascii_digit())
                || (!random && crate::filters::looks_like_placeholder(v.as_bytes())))
        {
            return false;
        }
        !(n == "code" && v.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_lowercase() || b == b'_'))
    }
}

/// Lower case without separators, so `access_token`, `accessToken`, `Access-Token` and
/// `access.token` are one name.
pub fn normalise(name: &str) -> String {
    name.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// [`normalise`] without allocating for the short ASCII names that nearly every header, field
/// and JSON key has; this runs for every key of every JSON body.
pub struct Normalised {
    inline: [u8; 48],
    len: usize,
    heap: Option<String>,
}

impl Normalised {
    pub fn new(name: &str) -> Self {
        let mut n = Normalised { inline: [0; 48], len: 0, heap: None };
        if name.is_ascii() {
            for b in name.bytes().filter(u8::is_ascii_alphanumeric) {
                if n.len == n.inline.len() {
                    n.heap = Some(normalise(name));
                    return n;
                }
                n.inline[n.len] = b.to_ascii_lowercase();
                n.len += 1;
            }
        } else {
            n.heap = Some(normalise(name));
        }
        n
    }

    pub fn as_str(&self) -> &str {
        match &self.heap {
            Some(s) => s,
            // Only ASCII alphanumerics were copied in.
            None => std::str::from_utf8(&self.inline[..self.len]).unwrap_or(""),
        }
    }
}

/// Lower case ASCII of a short name, without allocating.
struct Lower {
    inline: [u8; 64],
    len: usize,
}

impl Lower {
    fn new(name: &str) -> Option<Self> {
        let t = name.trim();
        if t.len() > 64 || !t.is_ascii() {
            return None;
        }
        let mut l = Lower { inline: [0; 64], len: t.len() };
        for (i, b) in t.bytes().enumerate() {
            l.inline[i] = b.to_ascii_lowercase();
        }
        Some(l)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.inline[..self.len]).unwrap_or("")
    }
}

/// Empty, a literal like `null`, a mask such as `********`, or already redacted.
pub fn trivial_value(v: &str) -> bool {
    if v.is_empty() || v.contains(MARKER_PREFIX) {
        return true;
    }
    if matches!(v.to_ascii_lowercase().as_str(), "null" | "undefined" | "none" | "true" | "false" | "nil" | "[]" | "{}")
    {
        return true;
    }
    let first = v.chars().next().unwrap_or(' ');
    v.chars().all(|c| c == first)
}

/// What a header's name says about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderClass {
    /// `Authorization`, `Proxy-Authorization`: a scheme and credentials.
    Auth,
    Cookie,
    SetCookie,
    /// A header whose whole value is a credential (`X-API-Key`).
    Credential(Tier),
    /// A header holding a URL (`Location`, `Referer`, HTTP/2's `:path`).
    Url,
    Plain,
}

pub fn header_class(name: &str) -> HeaderClass {
    let Some(lower) = Lower::new(name) else { return HeaderClass::Plain };
    let lower = lower.as_str();
    match lower {
        "authorization" | "proxy-authorization" => return HeaderClass::Auth,
        "cookie" => return HeaderClass::Cookie,
        "set-cookie" | "set-cookie2" => return HeaderClass::SetCookie,
        "location" | "referer" | "origin" | "content-location" | ":path" | "link" | "refresh" => {
            return HeaderClass::Url
        }
        // Handshake nonces and digests, public by design.
        "sec-websocket-key" | "sec-websocket-accept" | "x-amz-content-sha256" | "x-content-type-options" => {
            return HeaderClass::Plain
        }
        _ => {}
    }
    let normalised = Normalised::new(lower);
    let n = normalised.as_str();
    if n.contains("csrf") || n.contains("xsrf") || n == "xrequestverificationtoken" {
        return HeaderClass::Credential(Tier::Correlation);
    }
    let credential = [
        "xapikey",
        "apikey",
        "xauthtoken",
        "xaccesstoken",
        "privatetoken",
        "xvaulttoken",
        "xamzsecuritytoken",
        "xgoogapikey",
        "ocpapimsubscriptionkey",
        "xfunctionskey",
        "xhasuraadminsecret",
        "xjfrogartapi",
        "xauthkey",
        "xsessionid",
        "xsessiontoken",
    ];
    if credential.contains(&n)
        || ["token", "secret", "apikey", "password", "sessionid", "authkey"].iter().any(|s| n.ends_with(s))
    {
        return HeaderClass::Credential(Tier::Secret);
    }
    HeaderClass::Plain
}

/// Cookies that hold state, not a credential: analytics and consent identifiers.
const BENIGN_COOKIE_PREFIXES: &[&str] = &[
    "_ga",
    "_gid",
    "_gat",
    "_gcl",
    "_fbp",
    "_fbc",
    "_hj",
    "ajs_",
    "amplitude",
    "mp_",
    "optanon",
    "__utm",
    "_clck",
    "_clsk",
    "__cf_bm",
    "_cfuvid",
    "cf_clearance",
    "_uetsid",
    "_uetvid",
    "intercom-id",
    "hubspotutk",
    "__hs",
    "_pk_",
    "lang",
    "locale",
    "theme",
    "tz",
    "timezone",
];

/// Whether a cookie is a session credential: a session-like name with a real value, or a
/// long random value under any name but the analytics ones.
pub fn is_session_cookie(name: &str, value: &str) -> bool {
    let v = value.trim().trim_matches('"');
    if trivial_value(v) || v.len() < 8 {
        return false;
    }
    let lower = name.to_ascii_lowercase();
    if BENIGN_COOKIE_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return false;
    }
    let n = normalise(&lower);
    if n.contains("csrf") || n.contains("xsrf") {
        return false;
    }
    let named =
        ["sess", "sid", "auth", "token", "jwt", "login", "remember", "identity", "credential", "secret", "saml"]
            .iter()
            .any(|w| n.contains(w));
    if named {
        return true;
    }
    let tokenish = v.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-.%:|~".contains(&b));
    let classes = [
        v.bytes().any(|b| b.is_ascii_lowercase()),
        v.bytes().any(|b| b.is_ascii_uppercase()),
        v.bytes().any(|b| b.is_ascii_digit()),
    ];
    v.len() >= 24
        && tokenish
        && classes.iter().filter(|&&c| c).count() >= 2
        && crate::filters::shannon_entropy(v.as_bytes()) >= 3.5
}

/// One `name=value` pair found in some text; ranges are into that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub name: String,
    pub value: Range<usize>,
}

/// `name=value` pairs separated by `sep` (cookie headers: `;`, forms and queries: `&`).
pub fn pairs(text: &str, within: Range<usize>, sep: u8) -> Vec<Pair> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = within.start;
    while start < within.end {
        let end = memchr::memchr(sep, &bytes[start..within.end]).map_or(within.end, |i| start + i);
        if let Some(eq) = memchr::memchr(b'=', &bytes[start..end]) {
            let name = percent_decode(text[start..start + eq].trim());
            let mut value = start + eq + 1..end;
            while value.start < value.end && bytes[value.start] == b' ' {
                value.start += 1;
            }
            while value.end > value.start && matches!(bytes[value.end - 1], b' ' | b'\r' | b'\n') {
                value.end -= 1;
            }
            out.push(Pair { name, value });
        }
        start = end + 1;
    }
    out
}

/// The query and fragment parameters of a URL, and the password of its userinfo.
pub fn url_parts(url: &str) -> (Vec<Pair>, Option<Range<usize>>) {
    let bytes = url.as_bytes();
    let mut params = Vec::new();
    let hash = memchr::memchr(b'#', bytes);
    let query_end = hash.unwrap_or(bytes.len());
    if let Some(q) = memchr::memchr(b'?', &bytes[..query_end]) {
        params.extend(pairs(url, q + 1..query_end, b'&'));
    }
    if let Some(h) = hash {
        // Fragments carry implicit-flow tokens: `#access_token=...&id_token=...`.
        let frag_start = h + 1;
        let frag_query = memchr::memchr(b'?', &bytes[frag_start..]).map_or(frag_start, |i| frag_start + i + 1);
        params.extend(pairs(url, frag_query..bytes.len(), b'&'));
    }
    let mut password = None;
    if let Some(scheme_end) = memchr::memmem::find(bytes, b"://") {
        let auth_start = scheme_end + 3;
        let auth_end = bytes[auth_start..]
            .iter()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .map_or(bytes.len(), |i| auth_start + i);
        if let Some(at) = memchr::memrchr(b'@', &bytes[auth_start..auth_end]) {
            if let Some(colon) = memchr::memchr(b':', &bytes[auth_start..auth_start + at]) {
                let range = auth_start + colon + 1..auth_start + at;
                if !range.is_empty() {
                    password = Some(range);
                }
            }
        }
    }
    (params, password)
}

/// The host of an absolute URL, lower case, without userinfo or port.
pub fn host_of(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return String::new() };
    let rest = &url[scheme_end + 3..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if host_port.starts_with('[') {
        host_port.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or("").to_string()
    };
    host.to_ascii_lowercase()
}

pub fn looks_like_url(text: &str) -> bool {
    let t = text.trim_start();
    let t = t.as_bytes();
    ["http://", "https://", "ws://", "wss://"]
        .iter()
        .any(|p| t.len() > p.len() && t[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
}

/// Decodes `%XX` escapes and `+` (as in form bodies); invalid escapes stay as they are.
pub fn percent_decode(text: &str) -> String {
    if !text.contains(['%', '+']) {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi * 16 + lo);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The body of each `multipart/form-data` part, with its field name.
pub fn multipart_fields(text: &str, mime: &str) -> Vec<Pair> {
    let Some(boundary) = mime
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary=").or_else(|| p.strip_prefix("BOUNDARY=")))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
    else {
        return Vec::new();
    };
    let delimiter = format!("--{boundary}");
    let bytes = text.as_bytes();
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let starts: Vec<usize> = finder.find_iter(bytes).collect();
    let mut out = Vec::new();
    for pair in starts.windows(2) {
        let part = pair[0] + delimiter.len()..pair[1];
        let Some(blank) = memchr::memmem::find(&bytes[part.clone()], b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| memchr::memmem::find(&bytes[part.clone()], b"\n\n").map(|i| (i, 2)))
        else {
            continue;
        };
        let headers = &text[part.start..part.start + blank.0];
        if headers.to_ascii_lowercase().contains("filename=") {
            continue;
        }
        let Some(name) = headers.split(';').map(str::trim).find_map(|p| p.strip_prefix("name=")) else { continue };
        let name = name.split(['\r', '\n']).next().unwrap_or("").trim_matches('"').to_string();
        let mut value = part.start + blank.0 + blank.1..part.end;
        while value.end > value.start && matches!(bytes[value.end - 1], b'\r' | b'\n') {
            value.end -= 1;
        }
        out.push(Pair { name, value });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_match_across_spellings() {
        let names = FieldNames::new(&["X-Internal-Key".to_string()]);
        for n in [
            "access_token",
            "accessToken",
            "Access-Token",
            "client_secret",
            "SAMLResponse",
            "password",
            "x-amz-security-token",
            "github_token",
        ] {
            assert_eq!(names.tier(n), Some(Tier::Secret), "{n}");
        }
        for n in ["state", "nonce", "RelayState", "csrfmiddlewaretoken", "SAMLRequest"] {
            assert_eq!(names.tier(n), Some(Tier::Correlation), "{n}");
        }
        for n in ["token_type", "page", "next_page_token", "username"] {
            assert_eq!(names.tier(n), None, "{n}");
        }
        assert_eq!(names.tier("x_internal_key"), Some(Tier::Secret));
        assert!(!FieldNames::value_qualifies("code", "invalid_grant"));
        assert!(!FieldNames::value_qualifies("code", "404"));
        assert!(FieldNames::value_qualifies("code", "4/0AX4XfWj3kQ9c8Hh2b"));
        assert!(FieldNames::value_qualifies("password", "hunter2"));
        assert!(!FieldNames::value_qualifies("password", "********"));
        assert!(!FieldNames::value_qualifies("token", "[REDACTED:bearer-token:abc123]"));
        assert!(!FieldNames::value_qualifies("sid", "1702999285"), "analytics session start time");
        assert!(!FieldNames::value_qualifies("access_token", "<redacted>"));
        assert!(!FieldNames::value_qualifies("github_token", "ghp_EXAMPLEEXAMPLEEXAMPLE"));
        assert!(FieldNames::value_qualifies("otp", "492817"));
        assert!(!FieldNames::value_qualifies("api_key", "YOUR_API_KEY"));
        assert!(
            FieldNames::value_qualifies("access_token", "XztKKbSO_XgGwEmFUNavLAYOPaJSDggktLxZ-QwVSyn"),
            "no digits"
        );
    }

    #[test]
    fn cookies_sessions_and_analytics() {
        assert!(is_session_cookie("JSESSIONID", "9F1A2B3C4D5E6F70"));
        assert!(is_session_cookie("tenant.session.token", "eyJraWQiOiJzZXNzaW9u"));
        assert!(is_session_cookie("x", "a8Fk29sLq0ZmXw71PcVb3NtYe5RuGh4J"));
        assert!(!is_session_cookie("_ga", "GA1.1.1234567890.1700000000"));
        assert!(!is_session_cookie("theme", "dark"));
        assert!(!is_session_cookie("csrftoken", "a8Fk29sLq0ZmXw71PcVb3NtYe5RuGh4J"));
    }

    #[test]
    fn urls_split_into_params_fragment_and_userinfo() {
        let url = "https://user:pa55@Example.com:8443/cb?code=abc&state=xyz#access_token=t0k&token_type=bearer";
        let (params, password) = url_parts(url);
        let found: Vec<(&str, &str)> = params.iter().map(|p| (p.name.as_str(), &url[p.value.clone()])).collect();
        assert_eq!(found, [("code", "abc"), ("state", "xyz"), ("access_token", "t0k"), ("token_type", "bearer")]);
        assert_eq!(&url[password.unwrap()], "pa55");
        assert_eq!(host_of(url), "example.com");
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b c%zz%4");
        assert!(!looks_like_url("Kraków"), "non-ASCII text is not cut inside a character");
        assert!(looks_like_url("HTTPS://example.com/"));
    }

    #[test]
    fn header_classes() {
        assert_eq!(header_class("Authorization"), HeaderClass::Auth);
        assert_eq!(header_class("X-API-Key"), HeaderClass::Credential(Tier::Secret));
        assert_eq!(header_class("X-CSRF-Token"), HeaderClass::Credential(Tier::Correlation));
        assert_eq!(header_class("Sec-WebSocket-Key"), HeaderClass::Plain);
        assert_eq!(header_class(":authority"), HeaderClass::Plain);
        assert_eq!(header_class("Location"), HeaderClass::Url);
    }

    #[test]
    fn multipart_text_fields() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nk3y-v4lue\r\n--XyZ\r\n\
                    Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nfile body\r\n--XyZ--\r\n";
        let fields = multipart_fields(body, "multipart/form-data; boundary=XyZ");
        assert_eq!(fields.len(), 1);
        assert_eq!((fields[0].name.as_str(), &body[fields[0].value.clone()]), ("api_key", "k3y-v4lue"));
    }
}
