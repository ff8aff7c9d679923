//! Blocklist aggregation and rendering. Where `nft` / `iptables-restore` are installed, their
//! check modes (which need no root and change nothing) validate the firewall formats.

use keywatch_activity::blocklist::{aggregate, render, BlockEntry, BlocklistFormat, Cidr};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn v4_block(base: &str, count: u32) -> Vec<IpAddr> {
    let base = u32::from(base.parse::<Ipv4Addr>().unwrap());
    (0..count).map(|i| IpAddr::V4(Ipv4Addr::from(base + i))).collect()
}

#[test]
fn a_full_slash_24_is_one_prefix() {
    assert_eq!(aggregate(&v4_block("192.0.2.0", 256)), cidrs(&["192.0.2.0/24"]));
}

#[test]
fn a_slash_24_missing_one_address_is_not_a_slash_24() {
    let mut ips = v4_block("192.0.2.0", 256);
    ips.retain(|a| *a != ip("192.0.2.255"));
    assert_eq!(
        aggregate(&ips),
        cidrs(&[
            "192.0.2.0/25",
            "192.0.2.128/26",
            "192.0.2.192/27",
            "192.0.2.224/28",
            "192.0.2.240/29",
            "192.0.2.248/30",
            "192.0.2.252/31",
            "192.0.2.254/32",
        ])
    );
    let mut ips = v4_block("192.0.2.0", 256);
    ips.retain(|a| *a != ip("192.0.2.7"));
    assert_eq!(
        aggregate(&ips),
        cidrs(&[
            "192.0.2.0/30",
            "192.0.2.4/31",
            "192.0.2.6/32",
            "192.0.2.8/29",
            "192.0.2.16/28",
            "192.0.2.32/27",
            "192.0.2.64/26",
            "192.0.2.128/25",
        ])
    );
}

#[test]
fn adjacent_aligned_halves_merge_and_unaligned_ones_do_not() {
    let mut ips = v4_block("198.51.100.0", 128);
    ips.extend(v4_block("198.51.100.128", 128));
    assert_eq!(aggregate(&ips), cidrs(&["198.51.100.0/24"]));

    // Adjacent but not the two halves of one /24.
    let mut ips = v4_block("198.51.100.128", 128);
    ips.extend(v4_block("198.51.101.0", 128));
    assert_eq!(aggregate(&ips), cidrs(&["198.51.100.128/25", "198.51.101.0/25"]));

    // A whole /23 from four /25s.
    assert_eq!(aggregate(&v4_block("198.51.100.0", 512)), cidrs(&["198.51.100.0/23"]));
}

#[test]
fn duplicates_order_and_mixed_families() {
    let ips = [
        ip("2001:db8::3"),
        ip("203.0.113.9"),
        ip("2001:db8::2"),
        ip("203.0.113.8"),
        ip("203.0.113.9"),
        ip("2001:db8::2"),
        ip("::ffff:203.0.113.10"), // IPv4-mapped: the IPv4 address
        ip("192.0.2.1"),
    ];
    assert_eq!(aggregate(&ips), cidrs(&["192.0.2.1/32", "203.0.113.8/31", "203.0.113.10/32", "2001:db8::2/127"]));
    assert!(aggregate(&[]).is_empty());
}

#[test]
fn ipv6_blocks_and_the_ends_of_the_address_space() {
    let base: u128 = u128::from("2001:db8:1::".parse::<std::net::Ipv6Addr>().unwrap());
    let ips: Vec<IpAddr> = (0..256u128).map(|i| IpAddr::V6((base + i).into())).collect();
    assert_eq!(aggregate(&ips), cidrs(&["2001:db8:1::/120"]));
    let ips: Vec<IpAddr> = (1..256u128).map(|i| IpAddr::V6((base + i).into())).collect();
    assert_eq!(aggregate(&ips).len(), 8);

    assert_eq!(aggregate(&[ip("255.255.255.255"), ip("255.255.255.254")]), cidrs(&["255.255.255.254/31"]));
    assert_eq!(aggregate(&[ip("0.0.0.0"), ip("0.0.0.1")]), cidrs(&["0.0.0.0/31"]));
    assert_eq!(
        aggregate(&[ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")]),
        cidrs(&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"])
    );
    assert_eq!(aggregate(&[ip("::"), ip("::1")]), cidrs(&["::/127"]));
}

/// The reference: the unique minimal exact cover is the set of maximal aligned blocks that
/// lie wholly inside the set, found top-down.
fn reference_cover(set: &BTreeSet<u32>, start: u32, bits: u32, out: &mut Vec<Cidr>) {
    let size = 1u32 << bits;
    let inside = set.range(start..start + size).count() as u32;
    if inside == 0 {
        return;
    }
    if inside == size {
        out.push(Cidr { addr: IpAddr::V4(Ipv4Addr::from(start)), prefix: (32 - bits) as u8 });
        return;
    }
    reference_cover(set, start, bits - 1, out);
    reference_cover(set, start + size / 2, bits - 1, out);
}

#[test]
fn random_sets_in_a_slash_22_are_covered_exactly_and_minimally() {
    let base = u32::from(Ipv4Addr::new(198, 18, 4, 0)); // a /22
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*: deterministic, no extra crates.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for round in 0..300 {
        // Densities from sparse to nearly full, and some runs of whole blocks.
        let density = (round % 10 + 1) as u64; // out of 10
        let mut set = BTreeSet::new();
        let mut ips = Vec::new();
        for offset in 0..1024u32 {
            if next() % 10 < density {
                set.insert(base + offset);
                ips.push(IpAddr::V4(Ipv4Addr::from(base + offset)));
                if next() % 4 == 0 {
                    ips.push(IpAddr::V4(Ipv4Addr::from(base + offset))); // a duplicate
                }
            }
        }
        // Shuffle.
        for i in (1..ips.len()).rev() {
            let j = (next() % (i as u64 + 1)) as usize;
            ips.swap(i, j);
        }
        let cover = aggregate(&ips);

        let mut covered = BTreeSet::new();
        for c in &cover {
            let IpAddr::V4(a) = c.addr else { panic!("IPv6 prefix {c} from IPv4 input") };
            let first = u32::from(a);
            for offset in 0..c.size() as u32 {
                assert!(covered.insert(first + offset), "round {round}: prefixes overlap at {c}");
                assert!(set.contains(&(first + offset)), "round {round}: {c} covers an address not in the input");
            }
        }
        assert_eq!(covered, set, "round {round}: cover misses addresses");

        let mut expected = Vec::new();
        reference_cover(&set, base, 10, &mut expected);
        assert_eq!(cover, expected, "round {round}: not the minimal cover");
    }
}

#[test]
fn cidr_parsing_and_display() {
    let c: Cidr = "192.0.2.0/24".parse().unwrap();
    assert_eq!(c.to_string(), "192.0.2.0/24");
    assert_eq!(c.compact(), "192.0.2.0/24");
    assert_eq!(c.size(), 256);
    assert!(c.contains(ip("192.0.2.200")) && !c.contains(ip("192.0.3.0")) && !c.contains(ip("::1")));
    let host: Cidr = "192.0.2.7".parse().unwrap();
    assert_eq!((host.to_string(), host.compact(), host.is_host()), ("192.0.2.7/32".into(), "192.0.2.7".into(), true));
    let v6: Cidr = "2001:db8::/32".parse().unwrap();
    assert_eq!((v6.prefix, v6.to_string()), (32, "2001:db8::/32".to_string()));
    assert_eq!("2001:db8::1".parse::<Cidr>().unwrap().to_string(), "2001:db8::1/128");
    assert!("192.0.2.1/24".parse::<Cidr>().unwrap_err().contains("192.0.2.0/24"));
    assert!("192.0.2.0/33".parse::<Cidr>().is_err());
    assert!("nonsense".parse::<Cidr>().is_err());
    assert_eq!(Cidr::new(ip("192.0.2.77"), 24), Some(c));
    assert_eq!("::/0".parse::<Cidr>().unwrap().size(), u128::MAX);
}

#[test]
fn format_names() {
    for (name, format) in [
        ("plain", BlocklistFormat::Plain),
        ("nftables", BlocklistFormat::Nftables),
        ("nft", BlocklistFormat::Nftables),
        ("iptables", BlocklistFormat::Iptables),
        ("nginx", BlocklistFormat::Nginx),
        ("JSON", BlocklistFormat::Json),
    ] {
        assert_eq!(name.parse::<BlocklistFormat>(), Ok(format));
    }
    for format in BlocklistFormat::NAMES {
        assert_eq!(format.parse::<BlocklistFormat>().unwrap().to_string(), *format);
    }
    let err = "pf".parse::<BlocklistFormat>().unwrap_err();
    assert!(err.contains("pf") && err.contains("nftables"), "{err}");
}

fn entry(addr: &str, alerts: &[&str], reason: &str) -> BlockEntry {
    BlockEntry { ip: ip(addr), alerts: alerts.iter().map(|s| s.to_string()).collect(), reason: reason.into() }
}

fn sample() -> Vec<BlockEntry> {
    vec![
        entry("203.0.113.1", &["a1"], "failure burst"),
        entry("2001:db8::1", &["a3"], "attack tool"),
        entry("203.0.113.0", &["a2"], "new network"),
        entry("10.1.2.3", &["a4"], "new network"),
        entry("198.51.100.7", &["a1"], "failure burst"),
        entry("203.0.113.1", &["a5", "a1"], "failure burst"),
    ]
}

const AT: &str = "2024-05-01T12:00:00Z";

#[test]
fn plain_output() {
    assert_eq!(
        render(&sample(), BlocklistFormat::Plain, AT),
        "# keywatch blocklist generated at 2024-05-01T12:00:00Z: 4 addresses in 3 prefixes\n\
         # 1 private, loopback or other internal address left out: blocking your own network locks you out \
         (the json format lists them)\n\
         198.51.100.7\n\
         203.0.113.0/31\n\
         2001:db8::1\n"
    );
}

#[test]
fn nginx_output() {
    assert_eq!(
        render(&sample(), BlocklistFormat::Nginx, AT),
        "# keywatch blocklist generated at 2024-05-01T12:00:00Z: 4 addresses in 3 prefixes\n\
         # 1 private, loopback or other internal address left out: blocking your own network locks you out \
         (the json format lists them)\n\
         # include inside an http, server or location block\n\
         deny 198.51.100.7/32;\n\
         deny 203.0.113.0/31;\n\
         deny 2001:db8::1/128;\n"
    );
}

const NFT_SAMPLE: &str = "\
# keywatch blocklist generated at 2024-05-01T12:00:00Z: 4 addresses in 3 prefixes
# 1 private, loopback or other internal address left out: blocking your own network locks you out (the json format lists them)
# load with: nft -f FILE (replaces any previous keywatch table)
table inet keywatch
delete table inet keywatch

table inet keywatch {
\tset blocklist_v4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = {
\t\t\t198.51.100.7/32,
\t\t\t203.0.113.0/31
\t\t}
\t}

\tset blocklist_v6 {
\t\ttype ipv6_addr
\t\tflags interval
\t\telements = {
\t\t\t2001:db8::1/128
\t\t}
\t}

\tchain input {
\t\ttype filter hook input priority 0; policy accept;
\t\tip saddr @blocklist_v4 drop
\t\tip6 saddr @blocklist_v6 drop
\t}
}
";

#[test]
fn nftables_output() {
    let text = render(&sample(), BlocklistFormat::Nftables, AT);
    assert_eq!(text, NFT_SAMPLE);
    nft_check(&text);
}

#[test]
fn nftables_output_with_empty_sets_has_no_elements() {
    let text = render(&[entry("192.168.1.1", &["a"], "r")], BlocklistFormat::Nftables, AT);
    assert!(!text.contains("elements"), "{text}");
    assert!(text.contains("1 private, loopback or other internal address left out"), "{text}");
    assert!(text.contains("set blocklist_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}"), "{text}");
    nft_check(&text);
    nft_check(&render(&[], BlocklistFormat::Nftables, AT));
    let text = render(&[entry("2001:db8::5", &["a"], "r")], BlocklistFormat::Nftables, AT);
    assert_eq!(text.matches("elements").count(), 1);
    nft_check(&text);
}

#[test]
fn nftables_accepts_a_large_aggregated_list() {
    // Adjacent but unmergeable intervals, hosts and blocks of both families.
    let mut ips = v4_block("198.51.100.128", 128);
    ips.extend(v4_block("198.51.101.0", 77));
    ips.extend((0..200u32).map(|i| IpAddr::V4(Ipv4Addr::from(0xcb00_7100 + i * 3 % 256))));
    ips.extend((0..50u16).map(|i| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, i))));
    let entries: Vec<BlockEntry> =
        ips.iter().map(|a| BlockEntry { ip: *a, alerts: vec![], reason: String::new() }).collect();
    nft_check(&render(&entries, BlocklistFormat::Nftables, AT));
    iptables_check(&render(&entries, BlocklistFormat::Iptables, AT));
}

const IPTABLES_SAMPLE: &str = "\
#!/bin/sh
# keywatch blocklist generated at 2024-05-01T12:00:00Z: 4 addresses in 3 prefixes
# 1 private, loopback or other internal address left out: blocking your own network locks you out (the json format lists them)
# run as root: sh FILE (re-running replaces the previous list)
set -e

iptables -w -N keywatch 2>/dev/null || iptables -w -F keywatch
iptables -w -C INPUT -j keywatch 2>/dev/null || iptables -w -I INPUT -j keywatch
iptables -w -A keywatch -s 198.51.100.7/32 -j DROP
iptables -w -A keywatch -s 203.0.113.0/31 -j DROP

ip6tables -w -N keywatch 2>/dev/null || ip6tables -w -F keywatch
ip6tables -w -C INPUT -j keywatch 2>/dev/null || ip6tables -w -I INPUT -j keywatch
ip6tables -w -A keywatch -s 2001:db8::1/128 -j DROP
";

#[test]
fn iptables_output() {
    let text = render(&sample(), BlocklistFormat::Iptables, AT);
    assert_eq!(text, IPTABLES_SAMPLE);
    iptables_check(&text);
}

#[test]
fn iptables_script_runs_against_stub_commands() {
    // Runs the script with stand-ins for iptables/ip6tables that log their arguments: the
    // chain is new (-N succeeds) and not yet hooked (-C fails), as on a first run.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    for tool in ["iptables", "ip6tables"] {
        let stub = dir.path().join(tool);
        std::fs::write(
            &stub,
            format!(
                "#!/bin/sh\necho \"{tool} $*\" >> '{}'\ncase \" $* \" in *\" -C \"*) exit 1;; esac\nexit 0\n",
                log.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let script = dir.path().join("block.sh");
    std::fs::write(&script, render(&sample(), BlocklistFormat::Iptables, AT)).unwrap();
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let status = Command::new("sh").arg(&script).env("PATH", path).status().unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "iptables -w -N keywatch\n\
         iptables -w -C INPUT -j keywatch\n\
         iptables -w -I INPUT -j keywatch\n\
         iptables -w -A keywatch -s 198.51.100.7/32 -j DROP\n\
         iptables -w -A keywatch -s 203.0.113.0/31 -j DROP\n\
         ip6tables -w -N keywatch\n\
         ip6tables -w -C INPUT -j keywatch\n\
         ip6tables -w -I INPUT -j keywatch\n\
         ip6tables -w -A keywatch -s 2001:db8::1/128 -j DROP\n"
    );
}

#[test]
fn json_output() {
    let text = render(&sample(), BlocklistFormat::Json, AT);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "generated_at": AT,
            "entries": [
                {"cidr": "10.1.2.3/32", "alerts": ["a4"], "reasons": ["new network"], "private": true},
                {"cidr": "198.51.100.7/32", "alerts": ["a1"], "reasons": ["failure burst"], "private": false},
                {"cidr": "203.0.113.0/31", "alerts": ["a1", "a2", "a5"],
                 "reasons": ["failure burst", "new network"], "private": false},
                {"cidr": "2001:db8::1/128", "alerts": ["a3"], "reasons": ["attack tool"], "private": false},
            ]
        })
    );
    assert!(text.ends_with("}\n"));
    let empty: serde_json::Value = serde_json::from_str(&render(&[], BlocklistFormat::Json, AT)).unwrap();
    assert_eq!(empty, serde_json::json!({"generated_at": AT, "entries": []}));
}

#[test]
fn private_addresses_are_aggregated_separately_and_only_listed_in_json() {
    let mut entries: Vec<BlockEntry> = v4_block("192.168.7.0", 256)
        .into_iter()
        .map(|a| BlockEntry { ip: a, alerts: vec!["x".into()], reason: "r".into() })
        .collect();
    entries.push(entry("::1", &["y"], "r"));
    entries.push(entry("fe80::1", &["y"], "r"));
    entries.push(entry("100.64.0.1", &["y"], "r"));
    entries.push(entry("127.0.0.1", &["y"], "r"));
    entries.push(entry("0.0.0.0", &["y"], "r"));
    entries.push(entry("fd00::1", &["y"], "r"));
    entries.push(entry("::ffff:172.16.0.1", &["y"], "r"));
    for format in [BlocklistFormat::Plain, BlocklistFormat::Nginx, BlocklistFormat::Nftables, BlocklistFormat::Iptables]
    {
        let text = render(&entries, format, AT);
        assert!(text.contains(": 0 addresses in 0 prefixes\n"), "{format}: {text}");
        assert!(text.contains("# 263 private, loopback or other internal addresses left out"), "{format}: {text}");
        assert!(!text.contains("192.168") && !text.contains("fe80"), "{format}: {text}");
    }
    let doc: serde_json::Value = serde_json::from_str(&render(&entries, BlocklistFormat::Json, AT)).unwrap();
    let listed: Vec<(&str, bool)> = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["cidr"].as_str().unwrap(), e["private"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            ("0.0.0.0/32", true),
            ("100.64.0.1/32", true),
            ("127.0.0.1/32", true),
            ("172.16.0.1/32", true),
            ("192.168.7.0/24", true),
            ("::1/128", true),
            ("fd00::1/128", true),
            ("fe80::1/128", true),
        ]
    );
}

#[test]
fn generated_at_cannot_break_out_of_the_comment() {
    let text = render(&sample(), BlocklistFormat::Plain, "now\n0.0.0.0/0");
    assert!(text.starts_with("# keywatch blocklist generated at now 0.0.0.0/0: "), "{text}");
    assert!(!text.lines().any(|l| l == "0.0.0.0/0"));
}

// ---- validation with the real tools, where installed ----

/// The check modes still need CAP_NET_ADMIN (root, as in CI); without it the tool refuses
/// before looking at the input, which says nothing about the ruleset.
fn not_permitted(name: &str, stderr: &[u8]) -> bool {
    let text = String::from_utf8_lossy(stderr);
    let refused = ["Operation not permitted", "Permission denied", "must be root"].iter().any(|m| text.contains(m));
    if refused && required() {
        panic!("{name} may not run here ({}) and KEYWATCH_REQUIRE_TOOLS is set (.ci/run runs as root)", text.trim());
    }
    if refused {
        eprintln!("NOTE: {name} may not run here ({}): firewall syntax not validated", text.trim());
    }
    refused
}

/// Set by the test command of README.md and `.ci/run`, after `.ci/setup-test-tools.sh` installed the
/// tools: there a missing tool is a failure.
fn required() -> bool {
    std::env::var_os("KEYWATCH_REQUIRE_TOOLS").is_some_and(|v| v == "1")
}

fn tool_missing(name: &str, err: &std::io::Error) -> bool {
    if err.kind() == std::io::ErrorKind::NotFound {
        assert!(
            !required(),
            "{name} is not installed and KEYWATCH_REQUIRE_TOOLS is set: .ci/setup-test-tools.sh installs it"
        );
        eprintln!("NOTE: {name} is not installed: firewall syntax not validated by {name} (apt-get install nftables iptables)");
        true
    } else {
        false
    }
}

/// `nft -c -f FILE`: parses and checks the ruleset without applying it.
fn nft_check(text: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    match Command::new("nft").arg("-c").arg("-f").arg(file.path()).output() {
        Ok(out) => assert!(
            out.status.success() || not_permitted("nft", &out.stderr),
            "nft -c rejected the ruleset:\n{}\n--- ruleset ---\n{text}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if tool_missing("nft", &e) => {}
        Err(e) => panic!("running nft: {e}"),
    }
}

/// `sh -n` on the script, and each family's rules through `iptables-restore --test` /
/// `ip6tables-restore --test` (parse and check, nothing applied).
fn iptables_check(script: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), script).unwrap();
    let out = Command::new("sh").arg("-n").arg(file.path()).output().unwrap();
    assert!(out.status.success(), "sh -n: {}", String::from_utf8_lossy(&out.stderr));
    for tool in ["iptables", "ip6tables"] {
        let prefix = format!("{tool} -w -A keywatch ");
        let mut restore = String::from("*filter\n:keywatch - [0:0]\n");
        for line in script.lines() {
            if let Some(rule) = line.strip_prefix(&prefix) {
                restore.push_str(&format!("-A keywatch {rule}\n"));
            }
        }
        restore.push_str("COMMIT\n");
        let child = Command::new(format!("{tool}-restore"))
            .arg("--test")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if tool_missing(&format!("{tool}-restore"), &e) => continue,
            Err(e) => panic!("running {tool}-restore: {e}"),
        };
        use std::io::Write;
        child.stdin.take().unwrap().write_all(restore.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() || not_permitted(&format!("{tool}-restore"), &out.stderr),
            "{tool}-restore --test rejected:\n{}\n--- input ---\n{restore}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
