//! Blocklists of attacker addresses, for firewalls and web servers.
//!
//! [`aggregate`] turns a set of addresses into the fewest CIDR prefixes that cover exactly
//! that set: a whole aligned block (all 256 addresses of a /24, two adjacent /25s) becomes one
//! prefix, and no address outside the input is ever covered. [`render`] writes one of the
//! [`BlocklistFormat`]s.
//!
//! **Internal addresses** ([`crate::enrich::is_local`]: private, loopback, link-local,
//! unspecified, CGNAT, multicast, …) are left out of every firewall format (plain, nftables,
//! iptables, nginx), with a comment line saying how many and why: a stolen credential used
//! from inside your own network (a VPN concentrator, a NAT gateway, a proxy) would otherwise
//! get your own network blocked. The JSON format lists them, aggregated separately from the
//! public ones, with `"private": true`, so nothing is hidden from a reviewer.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are treated as the IPv4 address.
//!
//! Formats, all deterministic (sorted, IPv4 before IPv6) for a given input:
//!
//! * `plain`: `#` header comments, then one prefix a line; a single host is written as a bare
//!   address (`192.0.2.7`), larger prefixes as `192.0.2.0/24`.
//! * `nftables`: a complete file for `nft -f`: table `inet keywatch` with interval sets
//!   `blocklist_v4`/`blocklist_v6` and an `input` chain that drops their sources. It starts
//!   by creating and deleting the table, so loading it again replaces the previous list
//!   atomically. An empty set has no `elements` line.
//! * `iptables`: a POSIX `sh` script (run as root) of `iptables`/`ip6tables` commands that
//!   create or flush a `keywatch` chain for each family, hook it into `INPUT` once, and append
//!   one `-s PREFIX -j DROP` rule per prefix. Re-running it replaces the previous list. (A
//!   script rather than an `iptables-restore` file because one restore file cannot hold both
//!   IPv4 and IPv6 rules.)
//! * `nginx`: `deny PREFIX;` lines, for an `include` inside `http`, `server` or `location`.
//! * `json`: `{"generated_at": …, "entries": [{"cidr", "alerts", "reasons", "private"}]}`;
//!   each aggregated prefix carries the sorted union of its members' alert ids and reasons.
//!
//! Prefixes are always written with their length in the firewall formats (`/32`, `/128` for
//! one host) except in `plain`; [`Cidr`]'s `Display` always writes the length.

use crate::enrich::is_local;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An output format of [`render`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlocklistFormat {
    Plain,
    Nftables,
    Iptables,
    Nginx,
    Json,
}

impl BlocklistFormat {
    /// The names [`FromStr`] accepts.
    pub const NAMES: &'static [&'static str] = &["plain", "nftables", "iptables", "nginx", "json"];
}

impl FromStr for BlocklistFormat {
    type Err = String;

    /// `plain`, `nftables` (or `nft`), `iptables`, `nginx` or `json`, ignoring case.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "plain" => BlocklistFormat::Plain,
            "nftables" | "nft" => BlocklistFormat::Nftables,
            "iptables" => BlocklistFormat::Iptables,
            "nginx" => BlocklistFormat::Nginx,
            "json" => BlocklistFormat::Json,
            _ => return Err(format!("unknown blocklist format {s:?} (expected one of {})", Self::NAMES.join(", "))),
        })
    }
}

impl fmt::Display for BlocklistFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlocklistFormat::Plain => "plain",
            BlocklistFormat::Nftables => "nftables",
            BlocklistFormat::Iptables => "iptables",
            BlocklistFormat::Nginx => "nginx",
            BlocklistFormat::Json => "json",
        })
    }
}

/// An address prefix. `addr` has no bits set past `prefix`. Ordered IPv4 first, then by
/// address, then shorter prefixes first. `Display` writes `192.0.2.0/24` (always with the
/// length, `/32` for one IPv4 host); [`Cidr::compact`] drops it for a single host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// The prefix of length `prefix` containing `addr` (host bits cleared); `None` when the
    /// length is too long for the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let width = width(addr);
        if prefix > width {
            return None;
        }
        let value = to_u128(addr) & !host_mask(width - prefix);
        Some(Cidr { addr: from_u128(value, addr.is_ipv6()), prefix })
    }

    /// A single host: /32 or /128.
    pub fn is_host(&self) -> bool {
        self.prefix == width(self.addr)
    }

    /// True when `ip` is in the prefix (the same family only; no IPv4-mapped matching).
    pub fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv6() != self.addr.is_ipv6() {
            return false;
        }
        let host_bits = width(ip) - self.prefix;
        to_u128(ip) & !host_mask(host_bits) == to_u128(self.addr)
    }

    /// How many addresses the prefix holds (saturating at `u128::MAX` for `::/0`).
    pub fn size(&self) -> u128 {
        let host_bits = width(self.addr) - self.prefix;
        if host_bits == 128 {
            u128::MAX
        } else {
            1u128 << host_bits
        }
    }

    /// `192.0.2.7` for a single host, `192.0.2.0/24` otherwise.
    pub fn compact(&self) -> String {
        if self.is_host() {
            self.addr.to_string()
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a single host). Host bits must be
    /// clear.
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("bad address in {s:?}"))?;
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().map_err(|_| format!("bad prefix length in {s:?}"))?,
            None => width(addr),
        };
        let cidr = Cidr::new(addr, prefix).ok_or_else(|| format!("prefix length too long in {s:?}"))?;
        if cidr.addr != addr {
            return Err(format!("{s:?} has host bits set (did you mean {cidr}?)"));
        }
        Ok(cidr)
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv6() {
        128
    } else {
        32
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(value: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(value))
    } else {
        IpAddr::V4(Ipv4Addr::from(value as u32))
    }
}

/// The low `bits` bits set.
fn host_mask(bits: u8) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The fewest prefixes covering exactly the given addresses (duplicates and order don't
/// matter), sorted, IPv4 first. IPv4-mapped IPv6 addresses count as IPv4.
pub fn aggregate(ips: &[IpAddr]) -> Vec<Cidr> {
    let mut v4: Vec<u128> = Vec::new();
    let mut v6: Vec<u128> = Vec::new();
    for ip in ips {
        match ip.to_canonical() {
            IpAddr::V4(a) => v4.push(u32::from(a) as u128),
            IpAddr::V6(a) => v6.push(u128::from(a)),
        }
    }
    let mut out = Vec::new();
    cover_family(v4, false, &mut out);
    cover_family(v6, true, &mut out);
    out
}

fn cover_family(mut values: Vec<u128>, v6: bool, out: &mut Vec<Cidr>) {
    values.sort_unstable();
    values.dedup();
    let width: u8 = if v6 { 128 } else { 32 };
    let mut i = 0;
    while i < values.len() {
        // A maximal run of consecutive addresses [lo, hi].
        let lo = values[i];
        let mut hi = lo;
        i += 1;
        while i < values.len() && hi.checked_add(1) == Some(values[i]) {
            hi = values[i];
            i += 1;
        }
        cover_range(lo, hi, width, v6, out);
    }
}

/// The minimal prefix cover of the inclusive range [lo, hi]: greedily the largest aligned
/// block starting at `lo` that fits. (No prefix can cover addresses of two different runs, as
/// the gap between them is not in the set, so covering runs one by one is minimal too.)
fn cover_range(mut lo: u128, hi: u128, width: u8, v6: bool, out: &mut Vec<Cidr>) {
    loop {
        let align = if lo == 0 { width } else { (lo.trailing_zeros() as u8).min(width) };
        let span = hi - lo; // block of 2^b fits when 2^b - 1 <= span
        let fit = if span == u128::MAX { 128 } else { (127 - (span + 1).leading_zeros()) as u8 };
        let bits = align.min(fit);
        out.push(Cidr { addr: from_u128(lo, v6), prefix: width - bits });
        let last = lo | host_mask(bits);
        if last >= hi {
            return;
        }
        lo = last + 1;
    }
}

/// One address to block, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    pub ip: IpAddr,
    /// Ids of the alerts that named the address.
    pub alerts: Vec<String>,
    pub reason: String,
}

/// One aggregated prefix with the union of its members' alerts and reasons.
#[derive(Clone, Debug, Serialize)]
struct Row {
    cidr: String,
    alerts: BTreeSet<String>,
    reasons: BTreeSet<String>,
    private: bool,
    #[serde(skip)]
    net: Cidr,
}

struct Plan {
    public: Vec<Row>,
    private: Vec<Row>,
    public_addresses: usize,
    private_addresses: usize,
}

fn plan(entries: &[BlockEntry]) -> Plan {
    // Per distinct address, the union of what was said about it.
    let mut by_ip: BTreeMap<IpAddr, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for entry in entries {
        let slot = by_ip.entry(entry.ip.to_canonical()).or_default();
        slot.0.extend(entry.alerts.iter().cloned());
        if !entry.reason.is_empty() {
            slot.1.insert(entry.reason.clone());
        }
    }
    let (private, public): (Vec<IpAddr>, Vec<IpAddr>) = by_ip.keys().partition(|ip| is_local(**ip));
    let rows = |ips: &[IpAddr], private: bool| -> Vec<Row> {
        aggregate(ips)
            .into_iter()
            .map(|net| {
                let mut row =
                    Row { cidr: net.to_string(), alerts: BTreeSet::new(), reasons: BTreeSet::new(), private, net };
                // The members are a contiguous key range of the sorted map.
                let first = net.addr;
                let last = from_u128(to_u128(net.addr) | host_mask(width(net.addr) - net.prefix), net.addr.is_ipv6());
                for (_, (alerts, reasons)) in by_ip.range(first..=last) {
                    row.alerts.extend(alerts.iter().cloned());
                    row.reasons.extend(reasons.iter().cloned());
                }
                row
            })
            .collect()
    };
    Plan {
        public: rows(&public, false),
        private: rows(&private, true),
        public_addresses: public.len(),
        private_addresses: private.len(),
    }
}

/// Writes the blocklist in `format`. `generated_at` (a timestamp, written as given) goes into
/// the header comment or the JSON; control characters in it are replaced by spaces.
pub fn render(entries: &[BlockEntry], format: BlocklistFormat, generated_at: &str) -> String {
    let plan = plan(entries);
    let generated_at: String = generated_at.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if format == BlocklistFormat::Json {
        return render_json(&plan, &generated_at);
    }
    let comment = match format {
        BlocklistFormat::Iptables => "#!/bin/sh\n# ",
        _ => "# ",
    };
    let mut out = String::new();
    out.push_str(comment);
    out.push_str(&format!(
        "keywatch blocklist generated at {generated_at}: {} address{} in {} prefix{}\n",
        plan.public_addresses,
        if plan.public_addresses == 1 { "" } else { "es" },
        plan.public.len(),
        if plan.public.len() == 1 { "" } else { "es" },
    ));
    if plan.private_addresses > 0 {
        out.push_str(&format!(
            "# {} private, loopback or other internal address{} left out: blocking your own network \
             locks you out (the json format lists them)\n",
            plan.private_addresses,
            if plan.private_addresses == 1 { "" } else { "es" },
        ));
    }
    let (v4, v6): (Vec<&Row>, Vec<&Row>) = plan.public.iter().partition(|r| !r.net.addr.is_ipv6());
    match format {
        BlocklistFormat::Plain => {
            for row in &plan.public {
                out.push_str(&row.net.compact());
                out.push('\n');
            }
        }
        BlocklistFormat::Nginx => {
            out.push_str("# include inside an http, server or location block\n");
            for row in &plan.public {
                out.push_str(&format!("deny {};\n", row.net));
            }
        }
        BlocklistFormat::Nftables => render_nft(&mut out, &v4, &v6),
        BlocklistFormat::Iptables => render_iptables(&mut out, &v4, &v6),
        BlocklistFormat::Json => unreachable!("handled above"),
    }
    out
}

fn render_nft(out: &mut String, v4: &[&Row], v6: &[&Row]) {
    out.push_str("# load with: nft -f FILE (replaces any previous keywatch table)\n");
    out.push_str("table inet keywatch\ndelete table inet keywatch\n\ntable inet keywatch {\n");
    for (name, kind, rows) in [("blocklist_v4", "ipv4_addr", v4), ("blocklist_v6", "ipv6_addr", v6)] {
        out.push_str(&format!("\tset {name} {{\n\t\ttype {kind}\n\t\tflags interval\n"));
        if !rows.is_empty() {
            out.push_str("\t\telements = {\n");
            let items: Vec<String> = rows.iter().map(|r| format!("\t\t\t{}", r.net)).collect();
            out.push_str(&items.join(",\n"));
            out.push_str("\n\t\t}\n");
        }
        out.push_str("\t}\n\n");
    }
    out.push_str(
        "\tchain input {\n\t\ttype filter hook input priority 0; policy accept;\n\
         \t\tip saddr @blocklist_v4 drop\n\t\tip6 saddr @blocklist_v6 drop\n\t}\n}\n",
    );
}

fn render_iptables(out: &mut String, v4: &[&Row], v6: &[&Row]) {
    out.push_str("# run as root: sh FILE (re-running replaces the previous list)\nset -e\n");
    for (tool, rows) in [("iptables", v4), ("ip6tables", v6)] {
        out.push_str(&format!(
            "\n{tool} -w -N keywatch 2>/dev/null || {tool} -w -F keywatch\n\
             {tool} -w -C INPUT -j keywatch 2>/dev/null || {tool} -w -I INPUT -j keywatch\n"
        ));
        for row in rows {
            out.push_str(&format!("{tool} -w -A keywatch -s {} -j DROP\n", row.net));
        }
    }
}

fn render_json(plan: &Plan, generated_at: &str) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        generated_at: &'a str,
        entries: Vec<&'a Row>,
    }
    let mut entries: Vec<&Row> = plan.public.iter().chain(&plan.private).collect();
    entries.sort_by_key(|r| r.net);
    let mut text = serde_json::to_string_pretty(&Doc { generated_at, entries }).expect("plain data serialises");
    text.push('\n');
    text
}
