//! Filters that separate secrets from things shaped like them, and the redacted forms in
//! which secrets are shown.

use sha2::{Digest, Sha256};

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[b as usize] += 1;
    }
    let len = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum()
}

/// Hex SHA-256 of the exact bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in digest {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

/// At most the first 4 and last 2 characters of the secret, fewer for short ones, so a
/// redacted value never reveals more than a third of the secret.
pub fn redact(secret: &[u8]) -> String {
    let text = String::from_utf8_lossy(secret);
    let chars: Vec<char> = text.chars().filter(|c| !c.is_control()).collect();
    let n = chars.len();
    let (head, tail) = match n {
        0..=5 => (0, 0),
        6..=11 => (2, 0),
        12..=17 => (4, 0),
        _ => (4, 2),
    };
    let mut out: String = chars[..head].iter().collect();
    out.push_str("***");
    out.extend(&chars[n - tail..]);
    out
}

/// A documented example key (AWS's `AKIAIOSFODNN7EXAMPLE`, and everyone who copied the
/// convention) or a value made of one repeated character.
pub fn is_documented_example(secret: &[u8], generic: bool) -> bool {
    if generic {
        if contains_ignore_case(secret, b"example") {
            return true;
        }
    } else if memchr::memmem::find(secret, b"EXAMPLE").is_some() {
        return true;
    }
    match secret.first() {
        Some(&first) => secret.len() > 1 && secret.iter().all(|&b| b == first),
        None => true,
    }
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// Words that mark a value as a stand-in for a secret rather than a secret.
const PLACEHOLDER_WORDS: &[&[u8]] = &[
    b"changeme",
    b"change_me",
    b"change-me",
    b"placeholder",
    b"dummy",
    b"sample",
    b"redacted",
    b"your_",
    b"your-",
    b"yourkey",
    b"yourtoken",
    b"yourpassword",
    b"yoursecret",
    b"insert",
    b"replace",
    b"xxxx",
    // Also Keywatch's own redaction marker: a report scanned again finds nothing new.
    b"***",
    b"....",
    b"todo",
    b"fixme",
    b"notreal",
    b"not_real",
    b"not-a-real",
    b"fake",
    b"mock",
    b"foobar",
    b"secret123",
    b"password123",
    b"passw0rd",
    b"p@ssw0rd",
    b"123456",
    b"abcdef",
    b"qwerty",
    b"letmein",
    b"hunter2",
    b"<",
    b"${",
    b"{{",
    b"#{",
    b"%(",
    b"%s",
    b"$(",
];

/// Exact values (compared case-insensitively) that are never a real secret.
const PLACEHOLDER_VALUES: &[&[u8]] = &[
    b"password",
    b"passwd",
    b"secret",
    b"token",
    b"apikey",
    b"api_key",
    b"null",
    b"none",
    b"nil",
    b"undefined",
    b"true",
    b"false",
    b"test",
    b"testing",
    b"admin",
    b"root",
    b"default",
    b"empty",
    b"string",
    b"value",
    b"required",
    b"optional",
    b"unknown",
    b"hidden",
    b"masked",
    b"example",
    b"guest",
    b"pass",
    b"demo",
];

/// Whether a value caught by a generic rule (`password = "..."`) is a placeholder, a
/// reference to where the real secret lives, or code rather than a literal.
pub fn looks_like_placeholder(secret: &[u8]) -> bool {
    let lower = secret.to_ascii_lowercase();
    if PLACEHOLDER_VALUES.iter().any(|v| lower == *v) {
        return true;
    }
    if PLACEHOLDER_WORDS.iter().any(|w| memchr::memmem::find(&lower, w).is_some()) {
        return true;
    }
    // The name of the thing with a short decoration (`secret1`, `password!`, `pass%5B%7F`).
    for word in [&b"password"[..], b"passwd", b"secret", b"token", b"pass", b"pwd"] {
        if lower.starts_with(word) && lower.len() - word.len() <= 6 {
            return true;
        }
    }
    // Shell and template references: $VAR, %VAR%, @var@.
    if secret.first() == Some(&b'$')
        || (secret.first() == Some(&b'%') && secret.last() == Some(&b'%'))
        || (secret.first() == Some(&b'@') && secret.last() == Some(&b'@'))
    {
        return true;
    }
    // Code, not a literal: env lookups, calls, member access on identifiers.
    const CODE_MARKERS: &[&[u8]] =
        &[b"os.environ", b"process.env", b"getenv", b"env(", b"env[", b"vault:", b"secrets."];
    if CODE_MARKERS.iter().any(|m| memchr::memmem::find(&lower, m).is_some()) {
        return true;
    }
    if secret.ends_with(b")") && secret.contains(&b'(') {
        return true;
    }
    // An identifier in one case (`db_password`, `API_TOKEN`, `myPassword` are names, not
    // values): no digits and no mix that a random string would have.
    let has_digit = secret.iter().any(u8::is_ascii_digit);
    let all_ident = secret.iter().all(|&b| b.is_ascii_alphabetic() || b == b'_' || b == b'-' || b == b'.');
    if all_ident && !has_digit {
        let upper = secret.iter().filter(|b| b.is_ascii_uppercase()).count();
        let lower_count = secret.iter().filter(|b| b.is_ascii_lowercase()).count();
        let separators = secret.iter().filter(|&&b| b == b'_' || b == b'-' || b == b'.').count();
        if upper == 0 || lower_count == 0 || separators > 0 {
            return true;
        }
        // camelCase words (`getAuthToken`) have few capitals, each starting a word.
        if upper * 4 <= secret.len() && secret[0].is_ascii_lowercase() {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_bounds() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn redaction_never_shows_much() {
        assert_eq!(redact(b"ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "ghp_***89");
        assert_eq!(redact(b"hunter22"), "hu***");
        assert_eq!(redact(b"abc"), "***");
    }

    #[test]
    fn placeholders() {
        for p in [
            "${DB_PASSWORD}",
            "{{ .Values.token }}",
            "<your-api-key>",
            "changeme",
            "xxxxxxxxxxxx",
            "os.environ['X']",
            "get_token()",
            "db_password",
            "API_TOKEN",
            "getAuthToken",
            "$SECRET",
            "secret1",
            "pass%5B%7F",
            "e4i1***wK",
        ] {
            assert!(looks_like_placeholder(p.as_bytes()), "{p}");
        }
        for s in ["hQ7vR2mX9pL4kT8w", "Zt9#kL2$vB7q", "correcthorsebatterystaple1"] {
            assert!(!looks_like_placeholder(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn examples() {
        assert!(is_documented_example(b"AKIAIOSFODNN7EXAMPLE", false));
        assert!(is_documented_example(b"aaaaaaaaaaaa", false));
        assert!(!is_documented_example(b"AKIAIOSFODNN7ABCDEFG", false)); // keywatch:allow
        assert!(is_documented_example(b"my-example-token", true));
    }
}
