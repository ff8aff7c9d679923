//! Streaming in chunks must find exactly what a whole-buffer search finds: each secret once,
//! with the same line and column, wherever the chunk boundaries fall and however long the
//! lines are.

use keywatch_scan::rules::parse_rule_text;
use keywatch_scan::searcher::{FindingOptions, Searcher};
use keywatch_scan::Matcher;

const RULES: &str = r#"
[[rules]]
id = "test-token"
provider = "Test"
description = "test token"
severity = "high"
keywords = ["tkn_"]
pattern = '''\b(?P<secret>tkn_[a-z0-9]{20})\b'''
examples = ["tkn_abcdefghij0123456789"]
negative_examples = ["tkn_short"]

[[rules]]
id = "test-block"
provider = "Test"
description = "multi-line block"
severity = "high"
keywords = ["-----BEGIN TEST"]
multiline = true
pattern = '''(?P<secret>-----BEGIN TEST-----[a-z0-9\n]{10,2000}-----END TEST-----)'''
examples = ["-----BEGIN TEST-----\nabcdefghij\n-----END TEST-----"]
negative_examples = ["-----BEGIN TEST-----"]
"#;

fn matcher() -> Matcher {
    Matcher::new(parse_rule_text(RULES, "test").unwrap(), false).unwrap()
}

fn secret(i: usize) -> String {
    format!("tkn_{:020}", i * 7919 + 12345).replace('0', "a")
}

fn summary(findings: &[keywatch_model::Finding]) -> Vec<(String, u64, u64, String)> {
    let mut v: Vec<_> =
        findings.iter().map(|f| (f.rule_id.clone(), f.line, f.column, f.secret_sha256.clone())).collect();
    v.sort();
    v
}

#[test]
fn chunked_equals_whole_on_many_lines() {
    let m = matcher();
    let mut text = String::new();
    let mut planted = 0;
    for line in 0..40_000 {
        if line % 97 == 0 {
            text.push_str(&format!("let x{line} = \"{}\"; // planted\n", secret(line)));
            planted += 1;
        } else if line % 1001 == 0 {
            text.push_str("-----BEGIN TEST-----\nabcdefghij0123\nklmnop\n-----END TEST-----\n");
            planted += 1;
        } else {
            text.push_str(&format!("fn filler_{line}(a: u32) -> u32 {{ a * {line} + 1 }}\n"));
        }
    }
    let mut whole = Vec::new();
    Searcher::new(&m, FindingOptions::default()).search_slice(text.as_bytes(), "f", &mut whole);
    // Identical blocks share a hash, so count locations rather than distinct secrets.
    assert_eq!(whole.len(), planted);
    for chunk in [64 << 10, 100_003, 1 << 20] {
        let mut chunked = Vec::new();
        let mut searcher = Searcher::with_chunk_size(&m, FindingOptions::default(), chunk);
        let read = searcher.search_reader(&mut text.as_bytes(), "f", &mut chunked).unwrap();
        assert_eq!(read as usize, text.len());
        assert_eq!(summary(&chunked), summary(&whole), "chunk size {chunk}");
    }
}

#[test]
fn one_enormous_line_is_searched_in_bounded_chunks() {
    let m = matcher();
    // 3 MiB without a newline, secrets sprinkled through it, including across 64 KiB marks.
    let mut line = vec![b'x'; 3 << 20];
    let mut offsets = Vec::new();
    for (i, pos) in (0..line.len() - 64).step_by(65_531).enumerate() {
        let s = secret(i);
        line[pos] = b' ';
        line[pos + 1..pos + 1 + s.len()].copy_from_slice(s.as_bytes());
        line[pos + 1 + s.len()] = b' ';
        offsets.push(pos + 2);
    }
    let mut found = Vec::new();
    let mut searcher = Searcher::with_chunk_size(&m, FindingOptions::default(), 64 << 10);
    searcher.search_reader(&mut line.as_slice(), "long", &mut found).unwrap();
    let mut columns: Vec<u64> = found.iter().map(|f| f.column).collect();
    columns.sort();
    assert_eq!(columns, offsets.iter().map(|&o| o as u64).collect::<Vec<_>>());
    assert!(found.iter().all(|f| f.line == 1));
}

#[test]
fn read_errors_keep_what_was_found() {
    struct Failing<'a>(&'a [u8]);
    impl std::io::Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let m = matcher();
    let text = format!("a = {}\n", secret(1)).repeat(10);
    let mut found = Vec::new();
    let err =
        Searcher::new(&m, FindingOptions::default()).search_reader(&mut Failing(text.as_bytes()), "f", &mut found);
    assert!(err.is_err());
    assert!(found.is_empty(), "nothing was complete before the error in one chunk");
    // With a chunk boundary before the error, the first chunk's findings are kept.
    let long = format!("a = {}\n", secret(2)).repeat(20_000);
    let mut found = Vec::new();
    let mut s = Searcher::with_chunk_size(&m, FindingOptions::default(), 64 << 10);
    assert!(s.search_reader(&mut Failing(long.as_bytes()), "f", &mut found).is_err());
    assert!(!found.is_empty());
}

#[test]
fn context_never_shows_another_secret_on_the_line() {
    let m = matcher();
    let (a, b) = (secret(1), secret(2));
    let text = format!("pair {a} {b} end\n");
    let mut found = Vec::new();
    Searcher::new(&m, FindingOptions::default()).search_slice(text.as_bytes(), "f", &mut found);
    assert_eq!(found.len(), 2);
    for f in &found {
        assert!(!f.context.contains(&a) && !f.context.contains(&b), "{}", f.context);
        assert!(f.context.contains("end"));
    }
}
