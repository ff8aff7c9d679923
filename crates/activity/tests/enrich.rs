//! IP enrichment against the real databases that `.ci/setup-ipdb.sh` installs (ip-location-db
//! country MMDB and ASN CSVs), plus hand-made files for the formats and failure modes.
//! Only facts that hold across database releases are asserted.

use keywatch_activity::enrich::{is_hosting_as, is_local, network_label, Enricher, IpInfo};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn ipdb_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/ipdb/node_modules/@ip-location-db")
}

fn country_mmdb() -> PathBuf {
    ipdb_dir().join("geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb")
}

fn real_paths() -> Vec<PathBuf> {
    let paths = vec![country_mmdb(), ipdb_dir().join("asn/asn-ipv4.csv"), ipdb_dir().join("asn/asn-ipv6.csv")];
    for path in &paths {
        assert!(
            path.is_file(),
            "IP database {} is missing: run .ci/setup-ipdb.sh (it installs the test databases from npm into target/ipdb)",
            path.display()
        );
    }
    paths
}

/// Opened once for the whole file: the ASN CSVs hold half a million ranges.
fn real() -> &'static Enricher {
    static ENRICHER: OnceLock<Enricher> = OnceLock::new();
    ENRICHER.get_or_init(|| Enricher::open(&real_paths()).expect("opening the installed IP databases"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn org_contains(info: &IpInfo, needle: &str) -> bool {
    info.as_org.as_deref().is_some_and(|o| o.to_lowercase().contains(&needle.to_lowercase()))
}

#[test]
fn google_public_dns() {
    let e = real();
    assert!(!e.is_empty());
    for addr in ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8"] {
        let info = e.lookup(ip(addr));
        assert_eq!(info.asn, Some(15169), "{addr}: {info:?}");
        assert!(org_contains(&info, "google"), "{addr}: {info:?}");
        assert_eq!(info.country.as_deref(), Some("US"), "{addr}: {info:?}");
        assert!(!info.anonymous);
        assert_eq!(network_label(ip(addr), &info), "AS15169");
    }
}

#[test]
fn cloudflare_dns() {
    let info = real().lookup(ip("1.1.1.1"));
    assert_eq!(info.asn, Some(13335), "{info:?}");
    assert!(org_contains(&info, "cloudflare"), "{info:?}");
    // Registered to APNIC's research range: the country varies between databases.
    assert!(info.country.as_ref().is_some_and(|c| c.len() == 2), "{info:?}");
}

#[test]
fn amazon_ec2_is_hosting() {
    for addr in ["52.95.110.1", "3.5.140.1"] {
        let info = real().lookup(ip(addr));
        assert!(matches!(info.asn, Some(16509 | 14618)), "{addr}: {info:?}");
        assert!(org_contains(&info, "amazon"), "{addr}: {info:?}");
        assert!(info.hosting, "{addr}: {info:?}");
    }
}

#[test]
fn hetzner_germany_is_hosting() {
    // 5.9.0.0/16 and 2a01:4f8::/32 are Hetzner's Falkenstein/Nuremberg ranges.
    for addr in ["5.9.1.1", "2a01:4f8::1"] {
        let info = real().lookup(ip(addr));
        assert_eq!(info.asn, Some(24940), "{addr}: {info:?}");
        assert!(org_contains(&info, "hetzner"), "{addr}: {info:?}");
        assert_eq!(info.country.as_deref(), Some("DE"), "{addr}: {info:?}");
        assert!(info.hosting, "{addr}: {info:?}");
        assert_eq!(network_label(ip(addr), &info), "AS24940");
    }
}

#[test]
fn internal_addresses_give_nothing() {
    for addr in [
        "10.0.0.1",
        "192.168.1.1",
        "172.16.5.4",
        "127.0.0.1",
        "100.64.0.1",
        "169.254.1.1",
        "::1",
        "fe80::1",
        "fd12::1",
        "::",
    ] {
        assert!(is_local(ip(addr)), "{addr}");
        assert_eq!(real().lookup(ip(addr)), IpInfo::default(), "{addr}");
    }
    assert_eq!(network_label(ip("10.0.0.1"), &IpInfo::default()), "10.0.0.0/24");
    for addr in ["8.8.8.8", "192.0.2.1", "2001:db8::1", "100.128.0.1", "172.32.0.1"] {
        assert!(!is_local(ip(addr)), "{addr}");
    }
}

#[test]
fn network_label_without_an_asn() {
    let none = IpInfo::default();
    assert_eq!(network_label(ip("203.0.113.77"), &none), "203.0.113.0/24");
    assert_eq!(network_label(ip("2001:db8:1:2:3::4"), &none), "2001:db8:1::/48");
    assert_eq!(network_label(ip("::ffff:203.0.113.77"), &none), "203.0.113.0/24");
    let known = IpInfo { asn: Some(16509), ..IpInfo::default() };
    assert_eq!(network_label(ip("203.0.113.77"), &known), "AS16509");
}

#[test]
fn the_real_asn_csv_has_an_overlap_resolved_to_the_later_range() {
    // asn-ipv4.csv has 214.95.0.0-215.0.255.255 (AS749) then 215.0.0.0-215.1.3.255 (AS721).
    // Whatever a future release does there, each lookup must land in one of the two.
    let e = real();
    for addr in ["214.95.0.1", "215.0.0.1", "215.1.0.1"] {
        let asn = e.lookup(ip(addr)).asn;
        assert!(matches!(asn, Some(749 | 721)), "{addr}: {asn:?}");
    }
}

#[test]
fn ipv4_only_mmdb_answers_ipv6_with_nothing() {
    let path = ipdb_dir().join("geo-whois-asn-country-mmdb/geo-whois-asn-country-ipv4.mmdb");
    real_paths();
    let e = Enricher::open(&[path]).unwrap();
    assert_eq!(e.lookup(ip("8.8.8.8")).country.as_deref(), Some("US"));
    assert_eq!(e.lookup(ip("2001:4860:4860::8888")), IpInfo::default());
}

#[test]
fn empty_enricher() {
    let e = Enricher::open(&[]).unwrap();
    assert!(e.is_empty());
    assert_eq!(e.lookup(ip("8.8.8.8")), IpInfo::default());
}

// ---- hand-made files ----

fn write(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn csv_variants_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "asn.csv",
        b"start_ip,end_ip,asn,organisation\n\
          # a comment\n\
          \n\
          192.0.2.0,192.0.2.255,64500,\"Example \"\"Quoted\"\", Inc.\"\r\n\
          198.51.100.0,198.51.100.127,AS64501,Unquoted, With Commas\n\
          198.51.100.128,198.51.100.255,0,\n\
          2001:db8::,2001:db8:ffff:ffff:ffff:ffff:ffff:ffff,64502\n\
          3405803776,3405804031,64503,Numeric v4\n\
          42540766490510755371168322545197776896,42540766490510755389615066618907328511,64504,Numeric v6\n",
    );
    let e = Enricher::open(&[csv]).unwrap();
    let info = e.lookup(ip("192.0.2.9"));
    assert_eq!((info.asn, info.as_org.as_deref()), (Some(64500), Some("Example \"Quoted\", Inc.")));
    let info = e.lookup(ip("198.51.100.1"));
    assert_eq!((info.asn, info.as_org.as_deref()), (Some(64501), Some("Unquoted, With Commas")));
    assert_eq!(e.lookup(ip("198.51.100.200")), IpInfo::default()); // ASN 0: none
    assert_eq!(e.lookup(ip("2001:db8:5::1")).asn, Some(64502));
    assert_eq!(e.lookup(ip("203.0.113.5")).as_org.as_deref(), Some("Numeric v4")); // 203.0.113.0/24
    assert_eq!(e.lookup(ip("2001:db9::1")).asn, Some(64504)); // 2001:db9::/64
    assert_eq!(e.lookup(ip("2001:db9:0:1::1")).asn, None);
    assert_eq!(e.lookup(ip("192.0.3.0")), IpInfo::default());
}

#[test]
fn gzipped_csv_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"192.0.2.0,192.0.2.255,64500,Example\n").unwrap();
    let path = write(dir.path(), "dbip-asn-lite.csv.gz", &gz.finish().unwrap());
    assert_eq!(Enricher::open(&[path]).unwrap().lookup(ip("192.0.2.1")).asn, Some(64500));
}

#[test]
fn nested_and_overlapping_csv_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "overlap.csv",
        b"10.0.0.0,10.0.0.0,1,zero\n\
          198.51.0.0,198.51.255.255,100,outer\n\
          198.51.10.0,198.51.10.255,200,inner\n\
          198.51.10.128,198.51.11.127,300,straddling\n\
          198.51.200.0,198.52.0.255,400,past the end\n\
          198.51.200.0,198.52.0.255,401,duplicate range\n\
          223.255.255.0,223.255.255.255,500,top\n\
          223.255.255.255,223.255.255.255,501,last\n\
          255.255.255.0,255.255.255.255,600,reserved\n\
          fe00::,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,700,to the end\n\
          fe00::8000,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,701,also to the end\n",
    );
    let e = Enricher::open(&[csv]).unwrap();
    let asn = |a: &str| e.lookup(ip(a)).asn;
    assert_eq!(asn("198.51.0.1"), Some(100));
    assert_eq!(asn("198.51.10.1"), Some(200));
    assert_eq!(asn("198.51.10.200"), Some(300));
    assert_eq!(asn("198.51.11.0"), Some(300));
    assert_eq!(asn("198.51.11.200"), Some(100));
    assert_eq!(asn("198.51.199.255"), Some(100));
    assert_eq!(asn("198.51.200.0"), Some(401));
    assert_eq!(asn("198.52.0.255"), Some(401));
    assert_eq!(asn("198.52.1.0"), None);
    assert_eq!(asn("223.255.255.254"), Some(500));
    assert_eq!(asn("223.255.255.255"), Some(501));
    assert_eq!(asn("255.255.255.254"), None); // reserved: never looked up
    assert_eq!(asn("fe00::1"), Some(700));
    assert_eq!(asn("fe00::8001"), Some(701));
    assert_eq!(asn("fe00::7fff"), Some(700));
}

#[test]
fn databases_merge_first_wins_per_field() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "first.csv", b"8.8.8.0,8.8.8.255,64500,\n");
    let second =
        write(dir.path(), "second.csv", b"8.8.8.0,8.8.8.255,64500,Named Later\n9.9.9.0,9.9.9.255,64999,Other\n");
    let third = write(dir.path(), "third.csv", b"9.9.9.0,9.9.9.255,64501,Mismatch\n");
    real_paths();
    let e = Enricher::open(&[first, second.clone(), country_mmdb()]).unwrap();
    let info = e.lookup(ip("8.8.8.8"));
    // ASN from the first file, organisation from the second (same ASN), country from the mmdb.
    assert_eq!(info.asn, Some(64500));
    assert_eq!(info.as_org.as_deref(), Some("Named Later"));
    assert_eq!(info.country.as_deref(), Some("US"));
    // A later database with a different ASN does not lend its organisation.
    let no_org = write(dir.path(), "no-org.csv", b"9.9.9.0,9.9.9.255,64501\n");
    let e = Enricher::open(&[no_org, third, second]).unwrap();
    let info = e.lookup(ip("9.9.9.9"));
    assert_eq!((info.asn, info.as_org.as_deref()), (Some(64501), Some("Mismatch")));
}

#[test]
fn hosting_heuristic() {
    assert!(is_hosting_as(Some(16509), None));
    assert!(is_hosting_as(None, Some("DIGITALOCEAN-ASN")));
    assert!(is_hosting_as(Some(1), Some("The Constant Company, LLC")));
    assert!(is_hosting_as(Some(1), Some("OVH SAS")));
    assert!(!is_hosting_as(Some(15169), Some("Google LLC")));
    assert!(!is_hosting_as(Some(3320), Some("Deutsche Telekom AG")));
    assert!(is_hosting_as(None, Some("AMAZON-02")));
    assert!(!is_hosting_as(None, Some("AMAZONIA TELECOMUNICACOES LTDA")));
    assert!(!is_hosting_as(None, Some("GTnet sp.j. Tomasz Gajewski Grzegorz Mazurek")));
    assert!(!is_hosting_as(None, None));
}

// ---- corrupt and wrong files ----

fn open_err(paths: &[PathBuf]) -> String {
    format!("{:#}", Enricher::open(paths).expect_err("should fail"))
}

#[test]
fn truncated_mmdb_is_an_error_naming_the_file() {
    let whole = std::fs::read(&real_paths()[0]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "truncated-country.mmdb", &whole[..whole.len() / 2]);
    let err = open_err(&[path]);
    assert!(err.contains("truncated-country.mmdb"), "{err}");
    // Also with an unhelpful extension: no metadata marker, so it is read as CSV and rejected.
    let path = write(dir.path(), "truncated-country.dat", &whole[..whole.len() / 2]);
    let err = open_err(&[path]);
    assert!(err.contains("truncated-country.dat:"), "{err}");
    // Empty and missing files.
    let path = write(dir.path(), "empty.mmdb", b"");
    assert!(open_err(&[path]).contains("empty.mmdb"));
    let err = open_err(&[dir.path().join("missing.mmdb")]);
    assert!(err.contains("missing.mmdb"), "{err}");
}

#[test]
fn damaged_mmdb_never_panics() {
    // The metadata survives, so it opens; the tree and data are garbage in places. Lookups
    // must return something (possibly wrong) without panicking.
    let mut bytes = std::fs::read(&real_paths()[0]).unwrap();
    let mut state: u32 = 12345;
    let len = bytes.len() - 200_000; // keep the metadata at the end intact
    for _ in 0..20_000 {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let at = (state as usize * 7919) % len;
        bytes[at] = (state >> 16) as u8;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "damaged.mmdb", &bytes);
    let e = Enricher::open(&[path]).unwrap();
    for i in 0..20_000u32 {
        let v4 = IpAddr::V4(i.wrapping_mul(2_654_435_761).into());
        let _ = e.lookup(v4);
        let v6 = IpAddr::V6((0x2000_0000_0000_0000_0000_0000_0000_0000u128 | (i as u128) << 90).into());
        let _ = e.lookup(v6);
    }
}

#[test]
fn garbage_csv_line_is_an_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "asn-broken.csv",
        b"192.0.2.0,192.0.2.255,64500,Example\n198.51.100.0,198.51.100.255,64501,Ok\nthis is, not, a range\n",
    );
    let err = open_err(&[path]);
    assert!(err.contains("asn-broken.csv:3:"), "{err}");
    assert!(err.contains("bad start address"), "{err}");

    for (body, why) in [
        (&b"192.0.2.0,192.0.2.255,64500\n192.0.2.9,192.0.2.1,1\n"[..], "start is after its end"),
        (b"192.0.2.0,192.0.2.255,64500\n192.0.2.0,2001:db8::,1\n", "different address families"),
        (b"192.0.2.0,192.0.2.255,64500\n192.0.2.0,192.0.2.255,ASX\n", "bad AS number"),
        (b"192.0.2.0,192.0.2.255,64500\n192.0.2.0,192.0.2.255,1,\"open quote\n", "unterminated quote"),
        (b"192.0.2.0,192.0.2.255,64500\n192.0.2.0\n", "found 1 field"),
        (b"192.0.2.0,192.0.2.255,64500\n\xff\xfe,1,2\n", "not UTF-8"),
    ] {
        let path = write(dir.path(), "bad.csv", body);
        let err = open_err(&[path]);
        assert!(err.contains("bad.csv:2:") && err.contains(why), "{why}: {err}");
    }
    let path = write(dir.path(), "README.md", b"");
    assert!(open_err(&[path]).contains("no address ranges"));
}

#[test]
fn overlapping_csv_ranges_match_a_brute_force_reference() {
    // Random ranges inside 198.18.0.0/23; the rule: among the ranges containing an address,
    // the one that starts last wins (for equal starts the shorter, then the later line).
    let base = u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0));
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: u32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as u32
    };
    let dir = tempfile::tempdir().unwrap();
    for round in 0..150 {
        let mut ranges = Vec::new();
        let mut csv = String::new();
        for n in 0..(1 + next(12)) {
            let start = next(512);
            let span = if next(3) == 0 { 512 } else { 40 };
            let end = (start + next(span)).min(511);
            let asn = 64_512 + round * 100 + n;
            ranges.push((start, end, asn));
            let a = std::net::Ipv4Addr::from(base + start);
            let b = std::net::Ipv4Addr::from(base + end);
            csv.push_str(&format!("{a},{b},{asn}\n"));
        }
        let path = write(dir.path(), &format!("round{round}.csv"), csv.as_bytes());
        let e = Enricher::open(&[path]).unwrap();
        for offset in 0..512u32 {
            let expected = ranges
                .iter()
                .enumerate()
                .filter(|(_, r)| r.0 <= offset && offset <= r.1)
                .max_by_key(|(line, r)| (r.0, std::cmp::Reverse(r.1), *line))
                .map(|(_, r)| r.2);
            let got = e.lookup(IpAddr::V4((base + offset).into())).asn;
            assert_eq!(got, expected, "round {round}, offset {offset}, ranges {ranges:?}");
        }
    }
}

// ---- MMDB layouts, through hand-built databases ----

/// A minimal MaxMind DB writer (format 2.0, 24-bit records, an IPv6 tree with IPv4 under
/// ::/96), enough to check that every supported record layout decodes.
mod mmdb {
    use serde_json::Value;

    #[derive(Clone, Copy)]
    enum Rec {
        Empty,
        Node(usize),
        Data(usize),
    }

    fn size_prefix(out: &mut Vec<u8>, type_num: u8, size: usize) {
        let (low, extra): (u8, Vec<u8>) = if size < 29 {
            (size as u8, vec![])
        } else if size < 29 + 256 {
            (29, vec![(size - 29) as u8])
        } else {
            let n = size - 285;
            (30, vec![(n >> 8) as u8, n as u8])
        };
        if type_num <= 7 {
            out.push((type_num << 5) | low);
        } else {
            out.push(low);
            out.push(type_num - 7);
        }
        out.extend(extra);
    }

    fn uint(out: &mut Vec<u8>, type_num: u8, n: u64) {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        size_prefix(out, type_num, 8 - skip);
        out.extend(&bytes[skip..]);
    }

    fn encode(out: &mut Vec<u8>, value: &Value) {
        match value {
            Value::String(s) => {
                size_prefix(out, 2, s.len());
                out.extend(s.as_bytes());
            }
            Value::Bool(b) => size_prefix(out, 14, *b as usize),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    uint(out, if u <= u32::MAX as u64 { 6 } else { 9 }, u);
                } else if let Some(i) = n.as_i64() {
                    size_prefix(out, 8, 4);
                    out.extend((i as i32).to_be_bytes());
                } else {
                    size_prefix(out, 3, 8);
                    out.extend(n.as_f64().unwrap().to_be_bytes());
                }
            }
            Value::Array(items) => {
                size_prefix(out, 11, items.len());
                items.iter().for_each(|v| encode(out, v));
            }
            Value::Object(map) => {
                size_prefix(out, 7, map.len());
                for (k, v) in map {
                    encode(out, &Value::String(k.clone()));
                    encode(out, v);
                }
            }
            Value::Null => panic!("MMDB has no null"),
        }
    }

    /// `networks`: CIDR and record; IPv4 networks go under ::/96.
    pub fn build(networks: &[(&str, Value)]) -> Vec<u8> {
        let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty; 2]];
        let mut data = Vec::new();
        for (cidr, record) in networks {
            let (addr, len) = cidr.split_once('/').unwrap();
            let len: u32 = len.parse().unwrap();
            let (bits, len) = match addr.parse::<std::net::IpAddr>().unwrap() {
                std::net::IpAddr::V4(a) => (u32::from(a) as u128, len + 96),
                std::net::IpAddr::V6(a) => (u128::from(a), len),
            };
            let offset = data.len();
            encode(&mut data, record);
            let mut node = 0;
            for depth in 0..len {
                let bit = ((bits >> (127 - depth)) & 1) as usize;
                if depth == len - 1 {
                    nodes[node][bit] = Rec::Data(offset);
                } else {
                    node = match nodes[node][bit] {
                        Rec::Node(next) => next,
                        _ => {
                            nodes.push([Rec::Empty; 2]);
                            let next = nodes.len() - 1;
                            nodes[node][bit] = Rec::Node(next);
                            next
                        }
                    };
                }
            }
        }
        let count = nodes.len();
        let mut out = Vec::new();
        for node in &nodes {
            for rec in node {
                let value = match *rec {
                    Rec::Empty => count,
                    Rec::Node(n) => n,
                    Rec::Data(off) => count + 16 + off,
                };
                out.extend(&(value as u32).to_be_bytes()[1..]);
            }
        }
        out.extend([0u8; 16]);
        out.extend(&data);
        out.extend(b"\xab\xcd\xefMaxMind.com");
        // Metadata, with the integer types the format prescribes.
        size_prefix(&mut out, 7, 9);
        let key = |out: &mut Vec<u8>, k: &str| encode(out, &Value::String(k.into()));
        key(&mut out, "binary_format_major_version");
        uint(&mut out, 5, 2);
        key(&mut out, "binary_format_minor_version");
        uint(&mut out, 5, 0);
        key(&mut out, "build_epoch");
        uint(&mut out, 9, 1_700_000_000);
        key(&mut out, "database_type");
        encode(&mut out, &Value::String("Keywatch-Test".into()));
        key(&mut out, "description");
        encode(&mut out, &serde_json::json!({"en": "test"}));
        key(&mut out, "ip_version");
        uint(&mut out, 5, 6);
        key(&mut out, "languages");
        encode(&mut out, &serde_json::json!(["en"]));
        key(&mut out, "node_count");
        uint(&mut out, 6, count as u64);
        key(&mut out, "record_size");
        uint(&mut out, 5, 24);
        out
    }
}

fn open_mmdb(name: &str, networks: &[(&str, serde_json::Value)]) -> (tempfile::TempDir, Enricher) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), name, &mmdb::build(networks));
    let e = Enricher::open(&[path]).unwrap();
    (dir, e)
}

#[test]
fn geolite2_country_city_and_asn_layouts() {
    use serde_json::json;
    let (_d, e) = open_mmdb(
        "GeoLite2-City.mmdb",
        &[
            (
                "192.0.2.0/24",
                json!({
                    "city": {"geoname_id": 2950159, "names": {"en": "Berlin"}},
                    "continent": {"code": "EU", "geoname_id": 6255148, "names": {"en": "Europe"}},
                    "country": {"geoname_id": 2921044, "is_in_european_union": true, "iso_code": "DE",
                                "names": {"de": "Deutschland", "en": "Germany"}},
                    "location": {"accuracy_radius": 100, "latitude": 52.5, "longitude": 13.4, "time_zone": "Europe/Berlin"},
                    "registered_country": {"iso_code": "FR"},
                    "subdivisions": [{"iso_code": "BE", "names": {"en": "Land Berlin"}}],
                    "traits": {"is_anonymous_proxy": false, "is_satellite_provider": false},
                }),
            ),
            // No country, only the registered one (anycast and the like).
            ("198.51.100.0/24", json!({"registered_country": {"iso_code": "us", "names": {"en": "United States"}}})),
            ("2001:db8::/32", json!({"country": {"iso_code": "JP"}})),
        ],
    );
    let info = e.lookup(ip("192.0.2.1"));
    assert_eq!(info, IpInfo { country: Some("DE".into()), ..IpInfo::default() });
    assert_eq!(e.lookup(ip("198.51.100.1")).country.as_deref(), Some("US"));
    assert_eq!(e.lookup(ip("2001:db8::1")).country.as_deref(), Some("JP"));
    assert_eq!(e.lookup(ip("203.0.113.1")), IpInfo::default());

    let (_d, e) = open_mmdb(
        "GeoLite2-ASN.mmdb",
        &[
            ("192.0.2.0/24", json!({"autonomous_system_number": 16509, "autonomous_system_organization": "AMAZON-02"})),
            (
                "2001:db8::/32",
                json!({"autonomous_system_number": 3320, "autonomous_system_organization": "Deutsche Telekom AG"}),
            ),
        ],
    );
    let info = e.lookup(ip("192.0.2.1"));
    assert_eq!((info.asn, info.as_org.as_deref(), info.hosting), (Some(16509), Some("AMAZON-02"), true));
    let info = e.lookup(ip("2001:db8:1::1"));
    assert_eq!((info.asn, info.as_org.as_deref(), info.hosting), (Some(3320), Some("Deutsche Telekom AG"), false));
}

#[test]
fn ipinfo_and_ip_location_db_layouts() {
    use serde_json::json;
    let (_d, e) = open_mmdb(
        "ipinfo_lite.mmdb",
        &[
            (
                "192.0.2.0/24",
                json!({"asn": "AS15169", "as_name": "Google LLC", "as_domain": "google.com", "country_code": "US",
                       "country": "United States", "continent_code": "NA", "continent": "North America"}),
            ),
            // The older ipinfo country_asn layout: `country` is the code.
            (
                "198.51.100.0/24",
                json!({"country": "nl", "country_name": "Netherlands", "asn": "AS60781", "as_name": "LeaseWeb Netherlands B.V.", "as_domain": "leaseweb.com"}),
            ),
            ("203.0.113.0/24", json!({"asn": "", "as_name": "", "country_code": "ZZ"})),
        ],
    );
    assert_eq!(
        e.lookup(ip("192.0.2.1")),
        IpInfo { asn: Some(15169), as_org: Some("Google LLC".into()), country: Some("US".into()), ..IpInfo::default() }
    );
    let info = e.lookup(ip("198.51.100.1"));
    assert_eq!((info.asn, info.country.as_deref(), info.hosting), (Some(60781), Some("NL"), true));
    assert_eq!(e.lookup(ip("203.0.113.1")), IpInfo::default());

    // ip-location-db: the installed real file has this layout too.
    let (_d, e) = open_mmdb(
        "asn-country.mmdb",
        &[(
            "192.0.2.0/24",
            json!({"country_code": "CH", "autonomous_system_number": 559, "autonomous_system_organization": "SWITCH"}),
        )],
    );
    let info = e.lookup(ip("192.0.2.1"));
    assert_eq!((info.asn, info.as_org.as_deref(), info.country.as_deref()), (Some(559), Some("SWITCH"), Some("CH")));
}

#[test]
fn anonymous_ip_and_enterprise_layouts() {
    use serde_json::json;
    let (_d, e) = open_mmdb(
        "GeoIP2-Anonymous-IP.mmdb",
        &[
            ("192.0.2.1/32", json!({"is_anonymous": true, "is_anonymous_vpn": true})),
            ("192.0.2.2/32", json!({"is_anonymous": true, "is_hosting_provider": true})),
            ("192.0.2.3/32", json!({"is_anonymous": true, "is_tor_exit_node": true})),
            ("192.0.2.4/32", json!({"is_anonymous": true, "is_public_proxy": true})),
            ("192.0.2.5/32", json!({"is_anonymous": true, "is_residential_proxy": true})),
            ("192.0.2.6/32", json!({"is_anonymous": true})),
        ],
    );
    let flags = |a: &str| {
        let info = e.lookup(ip(a));
        (info.hosting, info.anonymous)
    };
    assert_eq!(flags("192.0.2.1"), (false, true));
    assert_eq!(flags("192.0.2.2"), (true, false)); // hosting is not anonymity
    assert_eq!(flags("192.0.2.3"), (false, true));
    assert_eq!(flags("192.0.2.4"), (false, true));
    assert_eq!(flags("192.0.2.5"), (false, true));
    assert_eq!(flags("192.0.2.6"), (false, false));
    assert_eq!(flags("192.0.2.7"), (false, false));

    let (_d, e) = open_mmdb(
        "GeoIP2-Enterprise.mmdb",
        &[(
            "192.0.2.0/24",
            json!({"country": {"iso_code": "SE"}, "traits": {"autonomous_system_number": 64500,
                   "autonomous_system_organization": "Example VPN AB", "is_anonymous_vpn": true, "user_type": "hosting"}}),
        )],
    );
    let info = e.lookup(ip("192.0.2.9"));
    assert_eq!(
        info,
        IpInfo {
            asn: Some(64500),
            as_org: Some("Example VPN AB".into()),
            country: Some("SE".into()),
            hosting: false,
            anonymous: true
        }
    );
}

#[test]
fn odd_value_types_do_not_spoil_a_record() {
    use serde_json::json;
    let (_d, e) = open_mmdb(
        "odd.mmdb",
        &[
            // Wrong types in known fields count as absent; the rest of the record still counts.
            (
                "192.0.2.0/24",
                json!({"country": 7, "autonomous_system_organization": 5, "asn": [1, 2], "country_code": "se",
                                    "autonomous_system_number": 64501, "is_hosting_provider": 1, "traits": "none"}),
            ),
            ("198.51.100.0/24", json!({"asn": 4_294_967_296u64, "as_name": "Too Big", "is_anonymous_vpn": "true"})),
            ("203.0.113.0/24", json!(["not", "a", "map"])),
            ("2001:db8::/32", json!("just a string")),
        ],
    );
    let info = e.lookup(ip("192.0.2.1"));
    assert_eq!(
        info,
        IpInfo { asn: Some(64501), as_org: None, country: Some("SE".into()), hosting: true, anonymous: false }
    );
    let info = e.lookup(ip("198.51.100.1"));
    assert_eq!((info.asn, info.as_org.as_deref(), info.anonymous), (None, Some("Too Big"), true));
    assert_eq!(e.lookup(ip("203.0.113.1")), IpInfo::default());
    assert_eq!(e.lookup(ip("2001:db8::1")), IpInfo::default());
}
