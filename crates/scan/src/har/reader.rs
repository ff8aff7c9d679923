//! Splits a HAR file, read as a stream, into pieces small enough to parse one at a time.
//!
//! A HAR is one JSON object, `{"log": {..., "pages": [...], "entries": [...]}}`, and nearly
//! all its bytes are in the entries. The reader walks the outer structure itself and hands
//! out each entry, each page and each other member of `log` as a [`Piece::Unit`] of raw
//! bytes, with everything between them (braces, keys, whitespace) as [`Piece::Skeleton`].
//! The pieces concatenate back to the input exactly. Memory is bounded by the largest unit,
//! not by the file.

use std::io::Read;

/// What the reader produces, in input order.
#[derive(Debug)]
pub enum Piece {
    /// Bytes of the outer structure, to copy as they are.
    Skeleton(Vec<u8>),
    Unit(Unit),
    /// A unit larger than the limit: its bytes were read and dropped.
    Oversized {
        pointer: String,
        bytes: u64,
        offset: u64,
        line: u64,
    },
}

/// One member of the HAR small enough to parse on its own.
#[derive(Debug)]
pub struct Unit {
    /// JSON pointer of the unit: `/log/entries/12`, `/log/pages/0`, `/log/creator`.
    pub pointer: String,
    /// Index in `log.entries` when the unit is an entry.
    pub entry: Option<usize>,
    pub bytes: Vec<u8>,
    /// Byte offset of the unit in the file.
    pub offset: u64,
    /// 1-based line of the unit's first byte.
    pub line: u64,
}

/// A problem that stops reading the file: the structure is broken or it is not a HAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureError {
    pub message: String,
    pub offset: u64,
    pub line: u64,
    /// Where in the document the reader was.
    pub pointer: String,
}

impl std::fmt::Display for StructureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() { "/" } else { &self.pointer };
        write!(f, "{} at {at} (line {}, byte {})", self.message, self.line, self.offset)
    }
}

impl std::error::Error for StructureError {}

const READ_SIZE: usize = 256 << 10;

/// Reads `input` and calls `emit` for each piece in order. Stops at the first structural
/// error, after emitting every piece before it; `emit` may stop the reading by returning an
/// error of its own.
pub fn split_har<E: From<StructureError>>(
    input: &mut dyn Read,
    max_unit: usize,
    emit: &mut dyn FnMut(Piece) -> Result<(), E>,
) -> Result<(), E> {
    let mut splitter = Splitter {
        input,
        buf: Vec::with_capacity(READ_SIZE),
        pos: 0,
        eof: false,
        offset: 0,
        line: 1,
        skeleton: Vec::new(),
        max_unit,
        pointer: String::new(),
    };
    splitter.run(emit)
}

struct Splitter<'r> {
    input: &'r mut dyn Read,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// File offset of `buf[pos]`.
    offset: u64,
    /// Line of `buf[pos]`.
    line: u64,
    skeleton: Vec<u8>,
    max_unit: usize,
    pointer: String,
}

impl Splitter<'_> {
    fn fail(&self, message: impl Into<String>) -> StructureError {
        StructureError { message: message.into(), offset: self.offset, line: self.line, pointer: self.pointer.clone() }
    }

    /// Makes sure at least one unread byte is buffered, unless the input has ended.
    fn fill(&mut self) -> Result<bool, StructureError> {
        if self.pos < self.buf.len() {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.pos = 0;
        // Only a short read leaves the buffer shorter than a read; zero-fill just that part.
        if self.buf.len() < READ_SIZE {
            self.buf.resize(READ_SIZE, 0);
        }
        loop {
            match self.input.read(&mut self.buf) {
                Ok(0) => {
                    self.buf.clear();
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.buf.truncate(n);
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.clear();
                    return Err(self.fail(format!("read error: {e}")));
                }
            }
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, StructureError> {
        Ok(if self.fill()? { Some(self.buf[self.pos]) } else { None })
    }

    /// Moves `n` buffered bytes into the skeleton.
    fn take_skeleton(&mut self, n: usize) {
        let bytes = &self.buf[self.pos..self.pos + n];
        self.line += bytecount::count(bytes, b'\n') as u64;
        self.skeleton.extend_from_slice(bytes);
        self.pos += n;
        self.offset += n as u64;
    }

    fn skip_ws(&mut self) -> Result<(), StructureError> {
        while let Some(b) = self.peek()? {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.take_skeleton(1);
        }
        Ok(())
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), StructureError> {
        self.skip_ws()?;
        match self.peek()? {
            Some(b) if b == byte => {
                self.take_skeleton(1);
                Ok(())
            }
            Some(_) => Err(self.fail(format!("expected {what}"))),
            None => Err(self.fail(format!("unexpected end of file, expected {what} (truncated?)"))),
        }
    }

    /// Reads a key of the outer structure into the skeleton and returns it decoded.
    fn key(&mut self) -> Result<String, StructureError> {
        self.skip_ws()?;
        if self.peek()? != Some(b'"') {
            return Err(self.fail("expected a string key"));
        }
        let start = self.skeleton.len();
        self.take_skeleton(1);
        let mut escaped = false;
        loop {
            let Some(b) = self.peek()? else {
                return Err(self.fail("unexpected end of file in a key (truncated?)"));
            };
            self.take_skeleton(1);
            if self.skeleton.len() - start > 4096 {
                return Err(self.fail("key longer than 4096 bytes"));
            }
            match (escaped, b) {
                (false, b'\\') => escaped = true,
                (false, b'"') => break,
                _ => escaped = false,
            }
        }
        let raw = &self.skeleton[start..];
        let key = super::json::parse(raw).ok().and_then(|n| n.as_str().map(str::to_string));
        key.ok_or_else(|| self.fail("invalid key"))
    }

    /// After a member: `true` if another follows (a comma was read), `false` at `close`.
    fn separator(&mut self, close: u8) -> Result<bool, StructureError> {
        self.skip_ws()?;
        match self.peek()? {
            Some(b',') => {
                self.take_skeleton(1);
                Ok(true)
            }
            Some(b) if b == close => {
                self.take_skeleton(1);
                Ok(false)
            }
            Some(_) => Err(self.fail(format!("expected ',' or '{}'", close as char))),
            None => Err(self.fail("unexpected end of file (truncated?)")),
        }
    }

    fn run<E: From<StructureError>>(&mut self, emit: &mut dyn FnMut(Piece) -> Result<(), E>) -> Result<(), E> {
        if self.peek()?.is_none() {
            return Err(self.fail("empty file, not a HAR").into());
        }
        if self.buf[self.pos..].starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.take_skeleton(3);
        } else if self.buf[self.pos..].starts_with(&[0xFF, 0xFE]) || self.buf[self.pos..].starts_with(&[0xFE, 0xFF]) {
            return Err(self.fail("file is UTF-16; HAR files are UTF-8 (convert it first)").into());
        } else if self.buf[self.pos..].starts_with(&[0x1f, 0x8b]) {
            return Err(self.fail("file is gzip-compressed; decompress it first").into());
        }
        self.skip_ws()?;
        match self.peek()? {
            Some(b'{') => {}
            Some(b'[') => return Err(self.fail("top-level value is an array, not a HAR object").into()),
            Some(_) => return Err(self.fail("not JSON: a HAR file starts with '{'").into()),
            None => return Err(self.fail("empty file, not a HAR").into()),
        }
        self.take_skeleton(1);
        let mut saw_entries = false;
        self.skip_ws()?;
        if self.peek()? == Some(b'}') {
            self.take_skeleton(1);
        } else {
            loop {
                let key = self.key()?;
                self.expect(b':', "':' after a key")?;
                self.skip_ws()?;
                if key == "log" && self.peek()? == Some(b'{') {
                    saw_entries |= self.log(emit)?;
                } else {
                    let pointer = pointer_of(&["", &key]);
                    self.unit(pointer, None, emit)?;
                }
                if !self.separator(b'}')? {
                    break;
                }
            }
        }
        self.skip_ws()?;
        if self.peek()?.is_some() {
            return Err(self.fail("unexpected data after the HAR object").into());
        }
        if !saw_entries {
            return Err(self.fail("not a HAR file: no log.entries array").into());
        }
        self.flush_skeleton(emit)
    }

    /// Reads the `log` object; returns whether it had an `entries` array.
    fn log<E: From<StructureError>>(&mut self, emit: &mut dyn FnMut(Piece) -> Result<(), E>) -> Result<bool, E> {
        self.take_skeleton(1);
        self.pointer = "/log".into();
        let mut saw_entries = false;
        self.skip_ws()?;
        if self.peek()? == Some(b'}') {
            self.take_skeleton(1);
            return Ok(false);
        }
        loop {
            let key = self.key()?;
            self.expect(b':', "':' after a key")?;
            self.skip_ws()?;
            if (key == "entries" || key == "pages") && self.peek()? == Some(b'[') {
                saw_entries |= key == "entries";
                self.take_skeleton(1);
                let mut index = 0usize;
                self.skip_ws()?;
                if self.peek()? == Some(b']') {
                    self.take_skeleton(1);
                } else {
                    loop {
                        self.skip_ws()?;
                        let pointer = format!("/log/{key}/{index}");
                        let entry = (key == "entries").then_some(index);
                        self.unit(pointer, entry, emit)?;
                        index += 1;
                        if !self.separator(b']')? {
                            break;
                        }
                    }
                }
            } else {
                self.unit(pointer_of(&["", "log", &key]), None, emit)?;
            }
            self.pointer = "/log".into();
            if !self.separator(b'}')? {
                break;
            }
        }
        self.pointer.clear();
        Ok(saw_entries)
    }

    fn flush_skeleton<E>(&mut self, emit: &mut dyn FnMut(Piece) -> Result<(), E>) -> Result<(), E> {
        if !self.skeleton.is_empty() {
            emit(Piece::Skeleton(std::mem::take(&mut self.skeleton)))?;
        }
        Ok(())
    }

    /// Reads one JSON value as a unit. Only its extent is found here (strings, escapes and
    /// bracket depth); the caller's parser checks the grammar.
    fn unit<E: From<StructureError>>(
        &mut self,
        pointer: String,
        entry: Option<usize>,
        emit: &mut dyn FnMut(Piece) -> Result<(), E>,
    ) -> Result<(), E> {
        self.flush_skeleton(emit)?;
        self.pointer = pointer;
        let (offset, line) = (self.offset, self.line);
        let mut bytes = Vec::new();
        let mut overflowed = false;
        let mut total: u64 = 0;
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let first = self.peek()?;
        let scalar = !matches!(first, Some(b'{' | b'[' | b'"'));
        'outer: loop {
            if !self.fill()? {
                if scalar && total > 0 {
                    break;
                }
                return Err(self.fail("unexpected end of file inside this value (truncated?)").into());
            }
            let chunk = &self.buf[self.pos..];
            let mut i = 0;
            let mut done = false;
            while i < chunk.len() {
                if in_string {
                    if escaped {
                        escaped = false;
                        i += 1;
                        continue;
                    }
                    match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                        None => i = chunk.len(),
                        Some(j) => {
                            i += j + 1;
                            if chunk[i - 1] == b'\\' {
                                escaped = true;
                            } else {
                                in_string = false;
                                if depth == 0 {
                                    done = true;
                                    break;
                                }
                            }
                        }
                    }
                    continue;
                }
                let b = chunk[i];
                if scalar {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        done = true;
                        break;
                    }
                    i += 1;
                    continue;
                }
                i += 1;
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            done = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let taken = &chunk[..i];
            self.line += bytecount::count(taken, b'\n') as u64;
            total += i as u64;
            if !overflowed && bytes.len() + i <= self.max_unit {
                bytes.extend_from_slice(taken);
            } else {
                overflowed = true;
                bytes = Vec::new();
            }
            self.pos += i;
            self.offset += i as u64;
            if done {
                break 'outer;
            }
        }
        if total == 0 {
            return Err(self.fail("expected a JSON value").into());
        }
        let pointer = std::mem::take(&mut self.pointer);
        if total > self.max_unit as u64 {
            emit(Piece::Oversized { pointer, bytes: total, offset, line })
        } else {
            emit(Piece::Unit(Unit { pointer, entry, bytes, offset, line }))
        }
    }
}

fn pointer_of(tokens: &[&str]) -> String {
    let mut out = String::new();
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        super::json::push_pointer_token(&mut out, token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8], max: usize) -> Result<Vec<Piece>, StructureError> {
        let mut pieces = Vec::new();
        split_har(&mut &input[..], max, &mut |p| {
            pieces.push(p);
            Ok::<_, StructureError>(())
        })?;
        Ok(pieces)
    }

    #[test]
    fn pieces_reassemble_the_input_exactly() {
        let har = "\u{feff}{\n \"log\": {\"version\": \"1.2\", \"creator\": {\"name\": \"x\\\"}\"},\n  \"pages\": [],\n  \
                   \"entries\": [ {\"a\": \"]}\\\\\"}, {\"b\": [1, {\"c\": \"{\"}]} ], \"comment\": 5}, \"_x\": true}\n";
        let pieces = split(har.as_bytes(), 1 << 20).unwrap();
        let mut joined = Vec::new();
        let mut units = Vec::new();
        for p in &pieces {
            match p {
                Piece::Skeleton(b) => joined.extend_from_slice(b),
                Piece::Unit(u) => {
                    joined.extend_from_slice(&u.bytes);
                    units.push((u.pointer.clone(), u.entry, String::from_utf8(u.bytes.clone()).unwrap()));
                }
                Piece::Oversized { .. } => panic!("nothing is oversized"),
            }
        }
        assert_eq!(joined, har.as_bytes());
        let pointers: Vec<&str> = units.iter().map(|u| u.0.as_str()).collect();
        assert_eq!(
            pointers,
            ["/log/version", "/log/creator", "/log/entries/0", "/log/entries/1", "/log/comment", "/_x"]
        );
        assert_eq!(units[2].2, "{\"a\": \"]}\\\\\"}");
        assert_eq!(units[2].1, Some(0));
    }

    #[test]
    fn oversized_units_are_reported_not_buffered() {
        let big = format!("{{\"log\":{{\"entries\":[{{\"t\":\"{}\"}},{{}}]}}}}", "x".repeat(1 << 20));
        let pieces = split(big.as_bytes(), 1000).unwrap();
        assert!(pieces.iter().any(|p| matches!(p, Piece::Oversized { pointer, .. } if pointer == "/log/entries/0")));
        assert!(pieces.iter().any(|p| matches!(p, Piece::Unit(u) if u.pointer == "/log/entries/1")));
    }

    #[test]
    fn broken_structures_are_named() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "empty file"),
            (b"not json", "not JSON"),
            (b"[1]", "array"),
            (b"{\"foo\": 1}", "no log.entries"),
            (b"{\"log\": {\"entries\": [{\"a\": 1}, {\"b\"", "truncated"),
            (b"\xff\xfe{\x00", "UTF-16"),
            (b"{\"log\": {\"entries\": []}} trailing", "after the HAR"),
        ];
        for (input, expected) in cases {
            let err = split(input, 1 << 20).unwrap_err();
            assert!(err.message.contains(expected), "{input:?}: {err}");
        }
        let err = split(b"{\"log\": {\"entries\": [{\"a\": 1},\n {\"b\": \"", 1 << 20).unwrap_err();
        assert_eq!((err.pointer.as_str(), err.line), ("/log/entries/1", 2));
    }
}
