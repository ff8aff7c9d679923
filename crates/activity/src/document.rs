//! Splits a JSON document into its records without parsing them: a top-level array's
//! elements, or the elements of the arrays a top-level object holds under a wrapper key
//! (`{"Records": [...]}`), or, when the object holds none, the object itself. Concatenated
//! documents are read one after another.
//!
//! It follows only the structure (brackets, strings, escapes, the keys of the top-level
//! object), a few hundred megabytes a second, and leaves each record's validity to the
//! parser that reads it, so one broken record costs that record, not the rest of the file.
//! A document cut off, brackets that do not match, or text after the document end it, with
//! the line where that was found.

use std::io::BufRead;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 512;

/// Splits `reader`, calling `on_record` with each record's bytes and the offset in the input
/// where it ends; `on_record` returns `false` to stop. `Err` has the line and the problem.
pub(crate) fn split(
    mut reader: impl BufRead,
    wrappers: &[&str],
    max_record: usize,
    on_record: &mut dyn FnMut(&[u8], u64) -> bool,
) -> Result<(), (u64, String)> {
    let mut splitter = Splitter { wrappers, max_record, line: 1, ..Splitter::default() };
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) => return Err((splitter.line, format!("read error: {e}"))),
        };
        if buf.is_empty() {
            return splitter.finish();
        }
        let n = buf.len();
        let go_on = splitter.feed(buf, on_record)?;
        reader.consume(n);
        if !go_on {
            return Ok(());
        }
    }
}

#[derive(Default)]
struct Splitter<'w> {
    wrappers: &'w [&'w str],
    max_record: usize,
    /// Open brackets, `{` or `[`.
    stack: Vec<u8>,
    in_string: bool,
    escaped: bool,
    line: u64,
    /// Input bytes fed before the current buffer.
    offset: u64,
    /// The stack depth whose array elements are records.
    records_at: Option<usize>,
    /// The record being read: its bytes from earlier buffers, and whether it is a container
    /// (else a scalar, which ends at the next `,` or `]`).
    record: Vec<u8>,
    in_record: bool,
    scalar: bool,
    /// The top-level object while it may turn out to be the record itself.
    whole: Option<Vec<u8>>,
    /// In the top-level object: a key is expected, the key being read, the last key read.
    expect_key: bool,
    reading_key: bool,
    key: Vec<u8>,
}

impl Splitter<'_> {
    /// Feeds one buffer; `Ok(false)` when `on_record` asked to stop.
    fn feed(&mut self, buf: &[u8], on_record: &mut dyn FnMut(&[u8], u64) -> bool) -> Result<bool, (u64, String)> {
        // Where the current record and the whole object began in this buffer.
        let mut record_from = if self.in_record { Some(0) } else { None };
        let mut whole_from = if self.whole.is_some() { Some(0) } else { None };
        let mut i = 0;
        while i < buf.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                // The string's plain bytes at once.
                let run = memchr::memchr2(b'"', b'\\', &buf[i..]).unwrap_or(buf.len() - i);
                if self.reading_key {
                    self.key.extend_from_slice(&buf[i..i + run]);
                }
                i += run;
                if i == buf.len() {
                    break;
                }
                if buf[i] == b'\\' {
                    self.escaped = true;
                    if self.reading_key {
                        self.key.push(b'\\');
                    }
                } else {
                    self.in_string = false;
                    self.reading_key = false;
                }
                i += 1;
                continue;
            }
            let b = buf[i];
            let depth = self.stack.len();
            // A scalar record ends before the `,` or `]` that follows it.
            let scalar_ends = self.in_record
                && self.scalar
                && depth == self.records_at.unwrap_or(0)
                && matches!(b, b',' | b']' | b'}');
            if scalar_ends && !self.emit(buf, &mut record_from, i, on_record)? {
                return Ok(false);
            }
            match b {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                b'"' if depth == 0 => {
                    return Err((self.line, "invalid JSON: a string outside a document".into()));
                }
                b'"' => {
                    self.in_string = true;
                    if depth == 1 && self.stack[0] == b'{' && self.expect_key {
                        self.reading_key = true;
                        self.key.clear();
                    } else {
                        self.start_record(depth, true, i, &mut record_from);
                    }
                }
                b'{' | b'[' => {
                    if depth == 0 {
                        if b == b'[' {
                            self.records_at = Some(1);
                        } else {
                            self.whole = Some(Vec::new());
                            whole_from = Some(i);
                            self.expect_key = true;
                        }
                    } else {
                        let wrapper = depth == 1
                            && self.stack[0] == b'{'
                            && b == b'['
                            && !self.expect_key
                            && self.wrappers.iter().any(|w| w.as_bytes() == self.key.as_slice());
                        if wrapper {
                            self.records_at = Some(2);
                            self.whole = None;
                            whole_from = None;
                        } else {
                            self.start_record(depth, false, i, &mut record_from);
                        }
                    }
                    if depth >= MAX_DEPTH {
                        return Err((self.line, format!("invalid JSON: nested more than {MAX_DEPTH} deep")));
                    }
                    self.stack.push(b);
                }
                b'}' | b']' => {
                    let open = if b == b'}' { b'{' } else { b'[' };
                    if self.stack.pop() != Some(open) {
                        return Err((self.line, format!("invalid JSON: unexpected '{}'", b as char)));
                    }
                    let depth = self.stack.len();
                    let record_ends = self.in_record && !self.scalar && Some(depth) == self.records_at;
                    if record_ends && !self.emit(buf, &mut record_from, i + 1, on_record)? {
                        return Ok(false);
                    }
                    if self.records_at.is_some_and(|at| depth < at) {
                        self.records_at = None;
                    }
                    if depth == 0 {
                        // The end of a top-level object with no records array: it is one.
                        if let Some(mut whole) = self.whole.take() {
                            whole.extend_from_slice(&buf[whole_from.unwrap_or(0)..=i]);
                            whole_from = None;
                            if !on_record(&whole, self.offset + i as u64 + 1) {
                                return Ok(false);
                            }
                        }
                        self.expect_key = false;
                    }
                }
                b':' if depth == 1 && self.stack[0] == b'{' => self.expect_key = false,
                b',' if depth == 1 && self.stack[0] == b'{' => self.expect_key = true,
                b':' | b',' => {}
                _ if depth == 0 => {
                    let what = if b.is_ascii_graphic() { format!("'{}'", b as char) } else { format!("byte {b:#04x}") };
                    return Err((self.line, format!("invalid JSON: unexpected {what} outside a document")));
                }
                _ => self.start_record(depth, true, i, &mut record_from),
            }
            i += 1;
        }
        // Keep what the next buffer continues.
        if let Some(from) = record_from {
            self.record.extend_from_slice(&buf[from..]);
            if self.record.len() > self.max_record {
                return Err((self.line, format!("a record longer than {} bytes", self.max_record)));
            }
        }
        if let (Some(whole), Some(from)) = (self.whole.as_mut(), whole_from) {
            whole.extend_from_slice(&buf[from..]);
            if whole.len() > self.max_record {
                return Err((
                    self.line,
                    format!("a document longer than {} bytes with no records array", self.max_record),
                ));
            }
        }
        self.offset += buf.len() as u64;
        Ok(true)
    }

    fn start_record(&mut self, depth: usize, scalar: bool, i: usize, record_from: &mut Option<usize>) {
        if !self.in_record && Some(depth) == self.records_at {
            self.in_record = true;
            self.scalar = scalar;
            self.record.clear();
            *record_from = Some(i);
        }
    }

    /// Hands over the record that ends before `end` in `buf`.
    fn emit(
        &mut self,
        buf: &[u8],
        record_from: &mut Option<usize>,
        end: usize,
        on_record: &mut dyn FnMut(&[u8], u64) -> bool,
    ) -> Result<bool, (u64, String)> {
        let from = record_from.take().unwrap_or(0);
        self.in_record = false;
        let position = self.offset + end as u64;
        if self.record.is_empty() {
            return Ok(on_record(buf[from..end].trim_ascii_end(), position));
        }
        self.record.extend_from_slice(&buf[from..end]);
        let go_on = on_record(self.record.trim_ascii_end(), position);
        self.record.clear();
        Ok(go_on)
    }

    fn finish(&self) -> Result<(), (u64, String)> {
        if self.in_string || !self.stack.is_empty() {
            return Err((self.line, "invalid or truncated JSON: the input ends inside the document".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> (Vec<String>, Result<(), (u64, String)>) {
        let mut out = Vec::new();
        // A small buffer, so records and strings span buffers.
        let reader = std::io::BufReader::with_capacity(7, text.as_bytes());
        let result = split(reader, &["Records", "items"], 1 << 20, &mut |r, _| {
            out.push(String::from_utf8(r.to_vec()).unwrap());
            true
        });
        (out, result)
    }

    #[test]
    fn wrappers_arrays_and_single_objects() {
        let (r, ok) = records(r#"{"Records": [{"a": "x]}\"y"}, {"b": [1, {"c": 2}]}], "n": 1}"#);
        assert_eq!(r, [r#"{"a": "x]}\"y"}"#, r#"{"b": [1, {"c": 2}]}"#]);
        assert!(ok.is_ok());
        let (r, _) = records("[ {\"a\":1} ,\n 7, \"s\" , null ]");
        assert_eq!(r, ["{\"a\":1}", "7", "\"s\"", "null"]);
        let (r, _) = records(r#"{"kind": "x", "etag": "[", "items": [{"id": 1}]}"#);
        assert_eq!(r, [r#"{"id": 1}"#]);
        let (r, _) = records("{\n \"eventName\": \"x\",\n \"data\": {\"Records\": [1]}\n}");
        assert_eq!(r, ["{\n \"eventName\": \"x\",\n \"data\": {\"Records\": [1]}\n}"]);
        let (r, _) = records(r#"{"Records":[{"a":1}]}{"Records":[{"b":2}]}"#);
        assert_eq!(r, [r#"{"a":1}"#, r#"{"b":2}"#]);
        let (r, _) = records(r#"{"records": [{"a": 1}]}"#);
        assert_eq!(r, [r#"{"records": [{"a": 1}]}"#], "not a wrapper here: the object itself");
    }

    #[test]
    fn cut_and_broken_documents() {
        let (r, err) = records("{\"Records\": [{\"a\": 1}, {\"b\": \n 2");
        assert_eq!(r, ["{\"a\": 1}"]);
        assert_eq!(err.unwrap_err().0, 2);
        let (_, err) = records("[{\"a\": 1]");
        assert!(err.unwrap_err().1.contains("unexpected ']'"));
        let (_, err) = records("[1] x");
        assert!(err.unwrap_err().1.contains("outside a document"));
        let (r, err) = records("[{\"a\": 1}] \"oops\" [{\"b\": 2}]");
        assert_eq!(r, ["{\"a\": 1}"]);
        assert!(err.unwrap_err().1.contains("a string outside a document"));
        let (_, err) = records(&"[".repeat(600));
        assert!(err.unwrap_err().1.contains("nested"));
    }
}
