//! What to do with one input stream: recognise archives (zip, tar, gzip) by their magic bytes
//! and open them, nested up to a depth; decode UTF-16 text; skip binary data; search the rest.
//!
//! Archives are never extracted to disk, every expansion is bounded (per entry by
//! `max_file_size`, per top-level input by `max_archive_bytes`), and entry names that would
//! escape an extraction directory (`../`, absolute paths) and link entries are reported.

use flate2::read::MultiGzDecoder;
use std::cell::Cell;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek};
use std::path::Path;

use crate::searcher::Searcher;
use crate::sink::Sink;

/// Bytes looked at to recognise a format (tar's magic sits at 257).
const SNIFF_LEN: usize = 8192;

/// Bounds on what one input may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest file, archive entry or blob that is searched.
    pub max_file_size: u64,
    /// Archives nested deeper than this are not opened.
    pub archive_depth: u32,
    /// Most bytes expanded from one top-level archive, all entries and levels together.
    pub max_archive_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_file_size: 100 << 20, archive_depth: 3, max_archive_bytes: 1 << 30 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Zip,
    Gzip,
    Tar,
    Utf16 { little_endian: bool, bom: bool },
    Binary,
    Text,
}

fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Kind::Zip;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Kind::Gzip;
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Kind::Tar;
    }
    if head.starts_with(&[0xff, 0xfe]) {
        return Kind::Utf16 { little_endian: true, bom: true };
    }
    if head.starts_with(&[0xfe, 0xff]) {
        return Kind::Utf16 { little_endian: false, bom: true };
    }
    if memchr::memchr(0, head).is_some() {
        return match utf16_without_bom(head) {
            Some(little_endian) => Kind::Utf16 { little_endian, bom: false },
            None => Kind::Binary,
        };
    }
    Kind::Text
}

/// UTF-16 text without a byte-order mark (common from Windows tools): ASCII characters leave
/// every other byte zero.
fn utf16_without_bom(head: &[u8]) -> Option<bool> {
    let pairs = head.len() / 2;
    if pairs < 8 {
        return None;
    }
    let zero_at = |parity: usize| head.iter().skip(parity).step_by(2).filter(|&&b| b == 0).count();
    let (even_zeros, odd_zeros) = (zero_at(0), zero_at(1));
    if odd_zeros * 10 >= pairs * 9 && even_zeros * 10 <= pairs {
        Some(true)
    } else if even_zeros * 10 >= pairs * 9 && odd_zeros * 10 <= pairs {
        Some(false)
    } else {
        None
    }
}

/// A reader that fails once it has produced more than its limit, and charges every byte to
/// the enclosing archive's budget. This is what stops zip bombs.
struct Bounded<'a, R> {
    inner: R,
    left: u64,
    budget: &'a Cell<u64>,
    what: &'static str,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let n64 = n as u64;
        if n64 > self.left {
            return Err(io::Error::other(format!(
                "expands past {} (possible decompression bomb); rest skipped",
                self.what
            )));
        }
        if n64 > self.budget.get() {
            return Err(io::Error::other(
                "archive expands past --max-archive-size (possible decompression bomb); rest skipped",
            ));
        }
        self.left -= n64;
        self.budget.set(self.budget.get() - n64);
        Ok(n)
    }
}

/// Whether an archive entry name would land outside an extraction directory.
pub fn unsafe_entry_name(name: &str) -> bool {
    let n = name.replace('\\', "/");
    n.starts_with('/')
        || n.split('/').any(|c| c == "..")
        || (n.len() >= 2 && n.as_bytes()[1] == b':' && n.as_bytes()[0].is_ascii_alphabetic())
}

/// Searches inputs, opening archives; one per thread.
pub struct ContentScanner<'a> {
    pub searcher: Searcher<'a>,
    pub limits: Limits,
    pub sink: &'a dyn Sink,
}

impl<'a> ContentScanner<'a> {
    pub fn new(searcher: Searcher<'a>, limits: Limits, sink: &'a dyn Sink) -> Self {
        ContentScanner { searcher, limits, sink }
    }

    /// Scans a top-level input. `disk` is its path when it is a regular file (zip needs to seek).
    pub fn scan_top(&mut self, reader: &mut dyn Read, display: &str, disk: Option<&Path>) {
        let budget = Cell::new(self.limits.max_archive_bytes);
        self.scan(reader, display, disk, 0, &budget);
    }

    /// Scans an in-memory input (a git blob).
    pub fn scan_bytes(&mut self, data: &[u8], display: &str) {
        let head = &data[..data.len().min(SNIFF_LEN)];
        match sniff(head) {
            Kind::Text => {
                self.search_slice(data, display, data.len() as u64);
            }
            _ => self.scan_top(&mut Cursor::new(data), display, None),
        }
    }

    fn scan(&mut self, reader: &mut dyn Read, display: &str, disk: Option<&Path>, depth: u32, budget: &Cell<u64>) {
        let mut head = Vec::with_capacity(SNIFF_LEN);
        if let Err(e) = reader.take(SNIFF_LEN as u64).read_to_end(&mut head) {
            self.sink.error(display, format!("read failed: {e}"));
            return;
        }
        let kind = sniff(&head);
        let mut stream = Cursor::new(head).chain(reader);
        match kind {
            Kind::Zip | Kind::Gzip | Kind::Tar if depth >= self.limits.archive_depth => {
                self.sink.skipped(
                    display,
                    format!("archive nested deeper than --archive-depth {}", self.limits.archive_depth),
                );
            }
            Kind::Zip => {
                self.sink.archive();
                self.scan_zip(&mut stream, display, disk, depth, budget);
            }
            Kind::Gzip => {
                self.sink.archive();
                self.scan_gzip(&mut stream, display, depth, budget);
            }
            Kind::Tar => {
                self.sink.archive();
                self.scan_tar(&mut stream, display, depth, budget);
            }
            Kind::Binary => self.sink.skipped(display, "binary file".into()),
            Kind::Utf16 { little_endian, bom } => self.scan_utf16(&mut stream, display, little_endian, bom),
            Kind::Text => self.search_stream(&mut stream, display),
        }
    }

    fn search_stream(&mut self, reader: &mut dyn Read, display: &str) {
        let mut found = Vec::new();
        let result = self.searcher.search_reader(reader, display, &mut found);
        self.sink.findings(found);
        match result {
            Ok(bytes) => self.sink.scanned(bytes),
            Err(e) => self.sink.error(display, format!("read failed part-way: {e}")),
        }
    }

    fn scan_utf16(&mut self, reader: &mut dyn Read, display: &str, little_endian: bool, bom: bool) {
        let mut raw = Vec::new();
        if let Err(e) = reader.take(self.limits.max_file_size + 1).read_to_end(&mut raw) {
            self.sink.error(display, format!("read failed: {e}"));
            return;
        }
        if raw.len() as u64 > self.limits.max_file_size {
            self.sink.skipped(display, "UTF-16 text larger than --max-file-size".into());
            return;
        }
        let body = if bom { &raw[2..] } else { &raw[..] };
        let units = body.chunks_exact(2).map(|p| {
            if little_endian {
                u16::from_le_bytes([p[0], p[1]])
            } else {
                u16::from_be_bytes([p[0], p[1]])
            }
        });
        let mut text = String::with_capacity(body.len() / 2);
        for (i, unit) in char::decode_utf16(units).enumerate() {
            match unit {
                Ok(c) => text.push(c),
                Err(_) => {
                    self.sink.error(
                        display,
                        format!(
                            "invalid UTF-16 at byte {}: unpaired surrogate; file skipped",
                            i * 2 + usize::from(bom) * 2
                        ),
                    );
                    return;
                }
            }
        }
        if body.len() % 2 == 1 {
            self.sink.error(display, "UTF-16 text has an odd number of bytes; last byte ignored".into());
        }
        self.search_slice(text.as_bytes(), display, raw.len() as u64);
    }

    /// Searches text already in memory; `bytes_read` is what it cost to read (UTF-16 text
    /// is twice its decoded size).
    fn search_slice(&mut self, text: &[u8], display: &str, bytes_read: u64) {
        let mut found = Vec::new();
        self.searcher.search_slice(text, display, &mut found);
        self.sink.scanned(bytes_read);
        self.sink.findings(found);
    }

    fn scan_zip(&mut self, stream: &mut dyn Read, display: &str, disk: Option<&Path>, depth: u32, budget: &Cell<u64>) {
        if let Some(path) = disk {
            match File::open(path) {
                Ok(file) => self.scan_zip_archive(file, display, depth, budget),
                Err(e) => self.sink.error(display, format!("cannot reopen archive: {e}")),
            }
            return;
        }
        // A nested zip must be held in memory to seek in it; bound that by max-file-size.
        let mut data = Vec::new();
        if let Err(e) = stream.take(self.limits.max_file_size + 1).read_to_end(&mut data) {
            self.sink.error(display, format!("read failed: {e}"));
            return;
        }
        if data.len() as u64 > self.limits.max_file_size {
            self.sink.skipped(display, "nested zip larger than --max-file-size".into());
            return;
        }
        self.scan_zip_archive(Cursor::new(data), display, depth, budget);
    }

    fn scan_zip_archive<R: Read + Seek>(&mut self, reader: R, display: &str, depth: u32, budget: &Cell<u64>) {
        let mut archive = match zip::ZipArchive::new(reader) {
            Ok(a) => a,
            Err(e) => {
                self.sink.error(display, format!("invalid or truncated zip archive: {e}"));
                return;
            }
        };
        for index in 0..archive.len() {
            let mut entry = match archive.by_index(index) {
                Ok(entry) => entry,
                Err(e) => {
                    self.sink.error(&format!("{display}!#{index}"), format!("unreadable zip entry: {e}"));
                    continue;
                }
            };
            let name = entry.name().to_string();
            let entry_display = format!("{display}!{name}");
            if entry.is_dir() {
                continue;
            }
            if unsafe_entry_name(&name) {
                self.sink.error(&entry_display, "entry name escapes the archive root (path traversal); skipped".into());
                continue;
            }
            if entry.is_symlink() {
                self.sink.skipped(&entry_display, "symlink entry not followed".into());
                continue;
            }
            if entry.encrypted() {
                self.sink.skipped(&entry_display, "encrypted zip entry".into());
                continue;
            }
            if entry.size() > self.limits.max_file_size {
                self.sink.skipped(
                    &entry_display,
                    format!("entry expands to {} bytes, more than --max-file-size", entry.size()),
                );
                continue;
            }
            let mut bounded =
                Bounded { inner: &mut entry, left: self.limits.max_file_size, budget, what: "--max-file-size" };
            self.scan(&mut bounded, &entry_display, None, depth + 1, budget);
        }
    }

    fn scan_gzip(&mut self, stream: &mut dyn Read, display: &str, depth: u32, budget: &Cell<u64>) {
        let decoder = MultiGzDecoder::new(stream);
        let mut bounded =
            Bounded { inner: decoder, left: self.limits.max_archive_bytes, budget, what: "--max-archive-size" };
        let mut head = Vec::with_capacity(512);
        if let Err(e) = (&mut bounded).take(512).read_to_end(&mut head) {
            self.sink.error(display, format!("invalid or truncated gzip data: {e}"));
            return;
        }
        let is_tar = sniff(&head) == Kind::Tar;
        let inner_name = gzip_inner_name(display, bounded.inner.header().and_then(|h| h.filename()));
        if is_tar {
            // A .tar.gz is one archive: its entries are named after the outer file.
            let mut rest = Cursor::new(head).chain(bounded);
            self.scan_tar(&mut rest, display, depth, budget);
        } else {
            // A single compressed file is an entry: it gets the per-file bound.
            bounded.left = bounded.left.min(self.limits.max_file_size.saturating_sub(head.len() as u64));
            bounded.what = "--max-file-size";
            let mut rest = Cursor::new(head).chain(bounded);
            let inner_display = format!("{display}!{inner_name}");
            self.scan(&mut rest, &inner_display, None, depth + 1, budget);
        }
    }

    fn scan_tar(&mut self, stream: &mut dyn Read, display: &str, depth: u32, budget: &Cell<u64>) {
        let mut archive = tar::Archive::new(stream);
        let entries = match archive.entries() {
            Ok(entries) => entries,
            Err(e) => {
                self.sink.error(display, format!("invalid tar archive: {e}"));
                return;
            }
        };
        for entry in entries {
            let mut entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.sink.error(display, format!("invalid or truncated tar archive: {e}; rest skipped"));
                    return;
                }
            };
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let entry_display = format!("{display}!{name}");
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if unsafe_entry_name(&name) {
                self.sink.error(&entry_display, "entry name escapes the archive root (path traversal); skipped".into());
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                self.sink.skipped(&entry_display, "link entry not followed".into());
                continue;
            }
            if !(kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()) {
                continue;
            }
            let size = entry.header().size().unwrap_or(0);
            if size > self.limits.max_file_size {
                self.sink.skipped(&entry_display, format!("entry is {size} bytes, more than --max-file-size"));
                continue;
            }
            let mut bounded =
                Bounded { inner: &mut entry, left: self.limits.max_file_size, budget, what: "--max-file-size" };
            self.scan(&mut bounded, &entry_display, None, depth + 1, budget);
        }
    }
}

/// The name of what a gzip file holds: the name stored in its header, else the file's own
/// name without `.gz`.
fn gzip_inner_name(display: &str, header_name: Option<&[u8]>) -> String {
    if let Some(name) = header_name.filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name);
        return name.rsplit(['/', '\\']).next().unwrap_or(&name).to_string();
    }
    let last = display.rsplit(['/', '\\', '!']).next().unwrap_or(display);
    let lower = last.to_ascii_lowercase();
    if lower.ends_with(".tgz") {
        format!("{}.tar", &last[..last.len() - 4])
    } else if lower.ends_with(".gz") {
        last[..last.len() - 3].to_string()
    } else {
        last.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_formats() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Kind::Zip);
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Kind::Gzip);
        assert_eq!(sniff(b"hello\nworld"), Kind::Text);
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01\x00\x00\x00"), Kind::Binary);
        let utf16: Vec<u8> = "password = hunter2\n".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        assert_eq!(sniff(&utf16), Kind::Utf16 { little_endian: true, bom: false });
    }

    #[test]
    fn traversal_names() {
        assert!(unsafe_entry_name("../etc/passwd"));
        assert!(unsafe_entry_name("a/../../b"));
        assert!(unsafe_entry_name("/abs"));
        assert!(unsafe_entry_name("C:\\x"));
        assert!(!unsafe_entry_name("a/b..c/d"));
    }

    #[test]
    fn gzip_names() {
        assert_eq!(gzip_inner_name("x/app.env.gz", None), "app.env");
        assert_eq!(gzip_inner_name("b.tgz", None), "b.tar");
        assert_eq!(gzip_inner_name("b.gz", Some(b"dir/orig.txt")), "orig.txt");
    }
}
