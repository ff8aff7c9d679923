//! A JSON parser that remembers where every value is in its input.
//!
//! The sanitiser rewrites only the string values it redacts and copies every other byte, so
//! the output keeps the input's layout and a clean HAR comes out byte-identical. That needs
//! the byte span of each value, which general-purpose JSON libraries do not expose.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// Deepest nesting accepted; a HAR entry needs about eight levels, bodies a few more.
pub const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct Node<'a> {
    /// Bytes of the value in the parsed input (for strings, including the quotes).
    pub span: Range<usize>,
    pub value: Value<'a>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
    Array(Vec<Node<'a>>),
    String(Cow<'a, str>),
    Number,
    Bool(bool),
    Null,
}

impl<'a> Node<'a> {
    /// The member `key` of an object (the first, if the key repeats).
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match &self.value {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn str_of(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Node::as_str)
    }
}

/// Why and where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset in the parsed input.
    pub offset: usize,
    /// JSON pointer of the value being read, relative to the parsed input.
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() { "/" } else { &self.pointer };
        write!(f, "{} at {at} (byte {})", self.message, self.offset)
    }
}

enum Segment {
    Key(Range<usize>),
    Index(usize),
}

/// Parses one JSON value filling all of `input` (surrounding whitespace allowed).
pub fn parse(input: &[u8]) -> Result<Node<'_>, JsonError> {
    let mut parser = Parser { input, pos: 0, path: Vec::new() };
    parser.skip_ws();
    let node = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != input.len() {
        return Err(parser.error("unexpected data after the JSON value"));
    }
    Ok(node)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    path: Vec<Segment>,
}

impl<'a> Parser<'a> {
    fn error(&self, message: &str) -> JsonError {
        let mut pointer = String::new();
        for segment in &self.path {
            pointer.push('/');
            match segment {
                Segment::Key(range) => {
                    let raw = String::from_utf8_lossy(&self.input[range.clone()]);
                    push_pointer_token(&mut pointer, &unescape_lossy(&raw));
                }
                Segment::Index(i) => pointer.push_str(&i.to_string()),
            }
        }
        JsonError { offset: self.pos.min(self.input.len()), pointer, message: message.to_string() }
    }

    fn skip_ws(&mut self) {
        skip_ws(self.input, &mut self.pos);
    }

    /// After an object member or array item.
    fn separator(&mut self, close: u8, container: &str) -> Result<bool, JsonError> {
        self.skip_ws();
        separator(self.input, &mut self.pos, close, container).map_err(|m| self.error(&m))
    }

    fn value(&mut self, depth: usize) -> Result<Node<'a>, JsonError> {
        let start = self.pos;
        let value = match self.input.get(self.pos) {
            None => return Err(self.error("unexpected end of input")),
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::String(self.string()?.1),
            Some(b't') => self.literal(b"true", Value::Bool(true))?,
            Some(b'f') => self.literal(b"false", Value::Bool(false))?,
            Some(b'n') => self.literal(b"null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.error("expected a JSON value")),
        };
        Ok(Node { span: start..self.pos, value })
    }

    fn literal(&mut self, word: &[u8], value: Value<'a>) -> Result<Value<'a>, JsonError> {
        if self.input[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("expected a JSON value"))
        }
    }

    fn number(&mut self) -> Result<Value<'a>, JsonError> {
        let digits = |p: &mut Parser| {
            let start = p.pos;
            while p.input.get(p.pos).is_some_and(u8::is_ascii_digit) {
                p.pos += 1;
            }
            p.pos - start
        };
        if self.input.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        if self.input.get(self.pos) == Some(&b'0') {
            self.pos += 1;
        } else if digits(self) == 0 {
            return Err(self.error("invalid number"));
        }
        if self.input.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        if matches!(self.input.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.input.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.error("invalid number"));
            }
        }
        Ok(Value::Number)
    }

    fn object(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.pos += 1;
        let mut members = Vec::with_capacity(4);
        self.skip_ws();
        if self.input.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            if self.input.get(self.pos) != Some(&b'"') {
                return Err(self.error("expected a string key"));
            }
            let (key_range, key) = self.string()?;
            self.skip_ws();
            if self.input.get(self.pos) != Some(&b':') {
                return Err(self.error("expected ':' after a key"));
            }
            self.pos += 1;
            self.skip_ws();
            self.path.push(Segment::Key(key_range));
            let value = self.value(depth + 1)?;
            self.path.pop();
            members.push((key, value));
            if !self.separator(b'}', "an object")? {
                return Ok(Value::Object(members));
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value<'a>, JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.error(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.pos += 1;
        let mut items = Vec::with_capacity(4);
        self.skip_ws();
        if self.input.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            self.path.push(Segment::Index(items.len()));
            let item = self.value(depth + 1)?;
            self.path.pop();
            items.push(item);
            if !self.separator(b']', "an array")? {
                return Ok(Value::Array(items));
            }
        }
    }

    /// Reads a string at `pos` (on its opening quote); returns the range of its raw content
    /// and its decoded value. Raw control characters are tolerated: some HAR writers emit
    /// them, and refusing a whole capture over a tab helps nobody.
    fn string(&mut self) -> Result<(Range<usize>, Cow<'a, str>), JsonError> {
        let content_start = self.pos + 1;
        let mut p = content_start;
        // Filled only once an escape is met: strings without one are borrowed. Finding the
        // end and decoding happen in one pass, which matters for bodies full of `\"`.
        let mut decoded: Option<Vec<u8>> = None;
        loop {
            match memchr::memchr2(b'"', b'\\', &self.input[p..]) {
                None => {
                    self.pos = self.input.len();
                    return Err(self.error("unterminated string"));
                }
                Some(i) if self.input[p + i] == b'"' => {
                    if let Some(out) = decoded.as_mut() {
                        out.extend_from_slice(&self.input[p..p + i]);
                    }
                    p += i;
                    break;
                }
                Some(i) => {
                    let out = decoded.get_or_insert_with(|| {
                        let mut v = Vec::with_capacity(64.max(self.input.len().min(p + 4096) - content_start));
                        v.extend_from_slice(&self.input[content_start..p]);
                        v
                    });
                    out.extend_from_slice(&self.input[p..p + i]);
                    match push_escape(self.input, p + i, out) {
                        Ok(next) => p = next,
                        Err((at, message)) => {
                            self.pos = at.min(self.input.len());
                            let message = if p + i + 1 >= self.input.len() { "unterminated string" } else { message };
                            return Err(self.error(message));
                        }
                    }
                }
            }
        }
        let decoded = match decoded {
            Some(bytes) => match String::from_utf8(bytes) {
                Ok(s) => Cow::Owned(s),
                Err(e) => {
                    self.pos = content_start + e.utf8_error().valid_up_to();
                    return Err(self.error("invalid UTF-8 in a string"));
                }
            },
            None => match std::str::from_utf8(&self.input[content_start..p]) {
                Ok(s) => Cow::Borrowed(s),
                Err(e) => {
                    self.pos = content_start + e.valid_up_to();
                    return Err(self.error("invalid UTF-8 in a string"));
                }
            },
        };
        self.pos = p + 1;
        Ok((content_start..p, decoded))
    }
}

/// Walks a JSON document without building it, calling `on_string(key, content, escaped)` for
/// every string value: `key` is the raw content of the member name it belongs to (for strings
/// in arrays, the nearest one), `content` the range of its raw content, `escaped` whether
/// that content has escapes. Response bodies can hold hundreds of thousands of values; this
/// allocates nothing per value. Errors only on broken structure.
pub fn visit_strings(
    input: &[u8],
    on_string: &mut dyn FnMut(Option<Range<usize>>, Range<usize>, bool),
) -> Result<(), JsonError> {
    let mut v = Visitor { input, pos: 0, on_string };
    v.skip_ws();
    v.value(0, None)?;
    v.skip_ws();
    if v.pos != input.len() {
        return Err(v.error("unexpected data after the JSON value"));
    }
    Ok(())
}

struct Visitor<'a, 'f> {
    input: &'a [u8],
    pos: usize,
    on_string: &'f mut dyn FnMut(Option<Range<usize>>, Range<usize>, bool),
}

impl Visitor<'_, '_> {
    fn error(&self, message: &str) -> JsonError {
        JsonError { offset: self.pos.min(self.input.len()), pointer: String::new(), message: message.to_string() }
    }

    fn skip_ws(&mut self) {
        skip_ws(self.input, &mut self.pos);
    }

    fn separator(&mut self, close: u8, container: &str) -> Result<bool, JsonError> {
        self.skip_ws();
        separator(self.input, &mut self.pos, close, container).map_err(|m| self.error(&m))
    }

    /// Skips a string at `pos`; returns its content range and whether it has escapes.
    fn string(&mut self) -> Result<(Range<usize>, bool), JsonError> {
        let start = self.pos + 1;
        let mut p = start;
        let mut escaped = false;
        loop {
            match memchr::memchr2(b'"', b'\\', &self.input[p..]) {
                None => {
                    self.pos = self.input.len();
                    return Err(self.error("unterminated string"));
                }
                Some(i) if self.input[p + i] == b'"' => {
                    self.pos = p + i + 1;
                    return Ok((start..p + i, escaped));
                }
                Some(i) => {
                    escaped = true;
                    p += i + 2;
                    if p > self.input.len() {
                        self.pos = self.input.len();
                        return Err(self.error("unterminated string"));
                    }
                }
            }
        }
    }

    fn value(&mut self, depth: usize, key: Option<Range<usize>>) -> Result<(), JsonError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        match self.input.get(self.pos) {
            Some(b'"') => {
                let (content, escaped) = self.string()?;
                (self.on_string)(key, content, escaped);
            }
            Some(b'{') => {
                self.pos += 1;
                self.skip_ws();
                if self.input.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_ws();
                    if self.input.get(self.pos) != Some(&b'"') {
                        return Err(self.error("expected a string key"));
                    }
                    let (name, _) = self.string()?;
                    self.skip_ws();
                    if self.input.get(self.pos) != Some(&b':') {
                        return Err(self.error("expected ':'"));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    self.value(depth + 1, Some(name))?;
                    if !self.separator(b'}', "an object")? {
                        return Ok(());
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                self.skip_ws();
                if self.input.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_ws();
                    self.value(depth + 1, key.clone())?;
                    if !self.separator(b']', "an array")? {
                        return Ok(());
                    }
                }
            }
            Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
                let start = self.pos;
                while self.input.get(self.pos).is_some_and(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b)) {
                    self.pos += 1;
                }
                let word = &self.input[start..self.pos];
                let literal = matches!(word, b"true" | b"false" | b"null");
                if !literal && !word.first().is_some_and(|b| *b == b'-' || b.is_ascii_digit()) {
                    return Err(self.error("expected a JSON value"));
                }
            }
            _ => return Err(self.error("expected a JSON value")),
        }
        Ok(())
    }
}

fn skip_ws(input: &[u8], pos: &mut usize) {
    while matches!(input.get(*pos), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        *pos += 1;
    }
}

/// Reads the `,` or closing bracket after a member of `container`: `Ok(true)` if another
/// member follows, `Ok(false)` at the end.
fn separator(input: &[u8], pos: &mut usize, close: u8, container: &str) -> Result<bool, String> {
    match input.get(*pos) {
        Some(b',') => {
            *pos += 1;
            Ok(true)
        }
        Some(&b) if b == close => {
            *pos += 1;
            Ok(false)
        }
        None => Err(format!("unexpected end of input in {container}")),
        Some(_) => Err(format!("expected ',' or '{}' in {container}", close as char)),
    }
}

/// Decodes the raw content of a JSON string (as `visit_strings` reports it).
pub fn decode_content(raw: &str) -> Option<String> {
    unescape(raw.as_bytes()).ok()
}

/// Decodes the raw content of a JSON string with escapes; on failure, the offset and reason.
fn unescape(raw: &[u8]) -> Result<String, (usize, &'static str)> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let Some(rel) = memchr::memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            break;
        };
        out.extend_from_slice(&raw[i..i + rel]);
        i = push_escape(raw, i + rel, &mut out)?;
    }
    String::from_utf8(out).map_err(|e| (e.utf8_error().valid_up_to(), "invalid UTF-8 in a string"))
}

/// Decodes the escape at `raw[i]` (a backslash) onto `out`; returns the index after it.
fn push_escape(raw: &[u8], i: usize, out: &mut Vec<u8>) -> Result<usize, (usize, &'static str)> {
    let esc = *raw.get(i + 1).ok_or((i, "unterminated escape"))?;
    let mut next = i + 2;
    let simple = match esc {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => {
            let unit = hex4(raw, next).ok_or((next, "invalid \\u escape"))?;
            next += 4;
            let code = if (0xD800..0xDC00).contains(&unit) {
                let low = (raw.get(next) == Some(&b'\\') && raw.get(next + 1) == Some(&b'u'))
                    .then(|| hex4(raw, next + 2))
                    .flatten()
                    .filter(|l| (0xDC00..0xE000).contains(l));
                match low {
                    Some(low) => {
                        next += 6;
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    // A lone surrogate cannot be UTF-8; browsers write them for broken
                    // text, so it becomes U+FFFD rather than an error.
                    None => 0xFFFD,
                }
            } else if (0xDC00..0xE000).contains(&unit) {
                0xFFFD
            } else {
                unit
            };
            let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            return Ok(next);
        }
        _ => return Err((i, "invalid escape")),
    };
    out.push(simple);
    Ok(next)
}

fn hex4(raw: &[u8], at: usize) -> Option<u32> {
    let digits = raw.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

fn unescape_lossy(raw: &str) -> String {
    unescape(raw.as_bytes()).unwrap_or_else(|_| raw.to_string())
}

/// Appends one reference token to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub fn push_pointer_token(pointer: &mut String, token: &str) {
    for ch in token.chars() {
        match ch {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// Appends `text` as the content of a JSON string (no quotes): escapes what JSON requires.
pub fn escape_into(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_the_values() {
        let text = br#" {"a": [1, "x\"y", {"b": null}], "c": "\u00e9\ud83d\ude00"} "#;
        let root = parse(text).unwrap();
        let a = root.get("a").unwrap();
        let Value::Array(items) = &a.value else { panic!() };
        assert_eq!(&text[items[1].span.clone()], br#""x\"y""#);
        assert_eq!(items[1].as_str(), Some("x\"y"));
        assert_eq!(root.str_of("c"), Some("\u{e9}\u{1F600}"));
        assert_eq!(&text[root.span.clone()], &text[1..text.len() - 1]);
    }

    #[test]
    fn errors_name_the_pointer_and_offset() {
        let err = parse(br#"{"log": {"entries": [{"a": 1}, {"b": tru}]}}"#).unwrap_err();
        assert_eq!(err.pointer, "/log/entries/1/b");
        assert!(err.message.contains("expected a JSON value"), "{err}");
        let err = parse(br#"{"a/b~": "unterminated"#).unwrap_err();
        assert_eq!(err.pointer, "/a~1b~0");
        assert!(parse(b"[1,]").is_err());
        assert!(parse(b"01").is_err());
        assert!(parse(b"{\"a\":1} x").is_err());
        assert!(parse(b"\"\xff\"").unwrap_err().message.contains("UTF-8"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        let err = parse(deep.as_bytes()).unwrap_err();
        assert!(err.message.contains("nested deeper"), "{err}");
    }

    #[test]
    fn visiting_reports_strings_with_their_keys() {
        let text = br#"{"a": "x", "list": ["y", {"b": "z\"q"}], "n": [1, true, null]}"#;
        let mut seen = Vec::new();
        visit_strings(text, &mut |key, content, escaped| {
            let key = key.map(|k| String::from_utf8_lossy(&text[k]).into_owned());
            seen.push((key, String::from_utf8_lossy(&text[content]).into_owned(), escaped));
        })
        .unwrap();
        let expected = [("a", "x", false), ("list", "y", false), ("b", "z\\\"q", true)];
        let expected: Vec<_> = expected.iter().map(|(k, v, e)| (Some(k.to_string()), v.to_string(), *e)).collect();
        assert_eq!(seen, expected);
        assert!(visit_strings(b"{\"a\": }", &mut |_, _, _| {}).is_err());
        assert!(visit_strings(b"[1, 2", &mut |_, _, _| {}).is_err());
    }

    #[test]
    fn escaping_round_trips() {
        let original = "quote \" back \\ nl \n tab \t bell \u{7} é";
        let mut out = b"\"".to_vec();
        escape_into(original, &mut out);
        out.push(b'"');
        assert_eq!(parse(&out).unwrap().as_str(), Some(original));
    }
}
