//! IP enrichment: the autonomous system, country and hosting/anonymity flags of a source
//! address, from databases the user supplies.
//!
//! [`Enricher::open`] takes any number of files, each either
//!
//! * a MaxMind DB (`.mmdb`, or any file carrying the MaxMind DB metadata marker), read whole
//!   into memory (no mmap), or
//! * an ASN range CSV (`.csv`, optionally gzipped as `.csv.gz`): one inclusive range a line,
//!   `start,end,asn,organisation`, where `start`/`end` are addresses (`1.0.0.0`) or integers
//!   (`16777216`; an integer range that fits in 32 bits is IPv4), `asn` is `15169` or
//!   `AS15169` (empty or `0`: none), the organisation is optional and may be quoted with `""`
//!   escapes (unquoted, it is the rest of the line). Blank lines, `#` comments and a header
//!   line are skipped. This is the layout of ip-location-db's `asn-ipv4.csv`/`asn-ipv6.csv`
//!   (and their `-num` variants), which DB-IP's ASN lite CSV shares. Overlapping ranges (the real files have a few) are resolved in favour of
//!   the range that starts later, which for nested ranges is the more specific one.
//!
//! One lenient decoder reads every MMDB layout we know: unknown fields are skipped, and a known
//! field holding a value of an unexpected type counts as absent rather than spoiling the
//! record. Fields read, the first of each line that is present winning:
//!
//! | database | fields read |
//! | --- | --- |
//! | GeoLite2/GeoIP2 Country and City, DB-IP lite country/city | `country.iso_code`, else `registered_country.iso_code`; `traits.is_anonymous_proxy` (deprecated) |
//! | GeoLite2-ASN, DB-IP ASN lite | `autonomous_system_number`, `autonomous_system_organization` |
//! | ip-location-db `*-country-mmdb` and its city/asn mmdbs | `country_code` (top level); `autonomous_system_*` |
//! | ipinfo lite (and the older ipinfo `country_asn`) | `asn` (`"AS15169"`), `as_name`, `country_code` (or a two-letter `country`) |
//! | GeoLite2/GeoIP2 Anonymous-IP | `is_anonymous_vpn`, `is_tor_exit_node`, `is_public_proxy`, `is_residential_proxy`, `is_hosting_provider` |
//! | GeoIP2 Enterprise/Insights | the same flags and the ASN under `traits` |
//!
//! `is_anonymous` is deliberately not read: MaxMind sets it whenever any other flag is set,
//! hosting included, so it would mark every cloud address anonymous.
//!
//! Several databases merge: for each field the first database (in the order given) that knows
//! it wins; the organisation is only taken from a database that agrees on the ASN (or gives
//! none). `hosting` and `anonymous` are true when any database says so. `hosting` is also set
//! by a heuristic on the AS: see [`is_hosting_as`].
//!
//! Internal addresses ([`is_local`]: private, loopback, link-local, CGNAT, multicast, …) are
//! never looked up and give [`IpInfo::default`]. A lookup never fails: a database that has no
//! answer, or whose record for the address turns out to be corrupt, simply contributes
//! nothing. Opening fails with the file's name for an unreadable, truncated or malformed
//! file, and with the file and line for a bad CSV line.

use anyhow::{bail, Context};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What the databases say about one address.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IpInfo {
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// The AS's organisation, as the database spells it ("Amazon.com, Inc.").
    pub as_org: Option<String>,
    /// ISO 3166-1 alpha-2 country code, upper case.
    pub country: Option<String>,
    /// A database flags the address as a hosting provider, or the AS is a known
    /// cloud/hosting provider ([`is_hosting_as`]).
    pub hosting: bool,
    /// A database flags the address as an anonymous VPN, public or residential proxy, or Tor
    /// exit node.
    pub anonymous: bool,
}

/// Opened IP databases. Cheap to share (`Send + Sync`); lookups take `&self`.
pub struct Enricher {
    sources: Vec<Source>,
}

enum Source {
    Mmdb { path: PathBuf, reader: maxminddb::Reader<Vec<u8>> },
    Ranges { path: PathBuf, v4: RangeTable, v6: RangeTable, orgs: Vec<Org> },
}

/// An organisation name from a CSV, with the hosting heuristic on it worked out once.
struct Org {
    name: Box<str>,
    hosting: bool,
}

impl fmt::Debug for Enricher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for source in &self.sources {
            match source {
                Source::Mmdb { path, reader } => {
                    list.entry(&format_args!("{} (mmdb {})", path.display(), reader.metadata().database_type))
                }
                Source::Ranges { path, v4, v6, .. } => list.entry(&format_args!(
                    "{} (ASN ranges: {} IPv4, {} IPv6)",
                    path.display(),
                    v4.starts.len(),
                    v6.starts.len()
                )),
            };
        }
        list.finish()
    }
}

impl Enricher {
    /// Opens each file: an MMDB (by its `.mmdb` extension or its metadata marker) or an ASN
    /// range CSV (anything else; `.gz` is decompressed). Errors name the file, and the line for
    /// a CSV. An empty list gives an empty enricher, whose lookups return nothing.
    pub fn open(paths: &[PathBuf]) -> anyhow::Result<Enricher> {
        let mut sources = Vec::with_capacity(paths.len());
        for path in paths {
            sources.push(open_source(path)?);
        }
        Ok(Enricher { sources })
    }

    /// True when no database was opened.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// What the databases know about `ip`, merged. Internal addresses give the default.
    pub fn lookup(&self, ip: IpAddr) -> IpInfo {
        let ip = ip.to_canonical();
        if is_local(ip) {
            return IpInfo::default();
        }
        let mut acc = Merged::default();
        for source in &self.sources {
            match source {
                Source::Mmdb { reader, .. } => lookup_mmdb(reader, ip, &mut acc),
                Source::Ranges { v4, v6, orgs, .. } => {
                    let hit = match ip {
                        IpAddr::V4(a) => v4.find(u32::from(a) as u128),
                        IpAddr::V6(a) => v6.find(u128::from(a)),
                    };
                    if let Some((asn, org)) = hit {
                        let org = org.map(|i| &orgs[i as usize]);
                        acc.asn_and_org(asn, org.map(|o| &*o.name), org.map(|o| o.hosting));
                    }
                }
            }
        }
        let hosting = acc.hosting
            || is_hosting_as(acc.asn, None)
            || acc.org_hosting.unwrap_or_else(|| is_hosting_as(None, acc.as_org.as_deref()));
        IpInfo {
            asn: acc.asn,
            as_org: acc.as_org,
            country: acc.country.map(|c| String::from_utf8_lossy(&c).into_owned()),
            hosting,
            anonymous: acc.anonymous,
        }
    }
}

/// The network unit detectors compare: `"AS16509"` when the ASN is known, else the address's
/// /24 (IPv4, `"203.0.113.0/24"`) or /48 (IPv6, `"2001:db8:1::/48"`).
pub fn network_label(ip: IpAddr, info: &IpInfo) -> String {
    if let Some(asn) = info.asn {
        return format!("AS{asn}");
    }
    match ip.to_canonical() {
        IpAddr::V4(a) => format!("{}/24", Ipv4Addr::from(u32::from(a) & 0xffff_ff00)),
        IpAddr::V6(a) => format!("{}/48", Ipv6Addr::from(u128::from(a) & !((1u128 << 80) - 1))),
    }
}

/// True for addresses that never name a host on the public Internet, so that looking them up
/// or blocking them makes no sense: unspecified, loopback, private (10/8, 172.16/12,
/// 192.168/16, fc00::/7), shared CGNAT space (100.64/10), link-local (169.254/16, fe80::/10),
/// "this network" (0/8), reserved (240/4) and broadcast, and multicast. IPv4-mapped IPv6
/// addresses are judged by their IPv4 address. Documentation ranges (192.0.2/24, 2001:db8::/32,
/// …) are not included: they are never in real logs, and tests and examples use them as
/// stand-ins for public addresses.
pub fn is_local(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let [o0, o1, ..] = a.octets();
            o0 == 0
                || o0 == 10
                || o0 == 127
                || (o0 == 100 && (o1 & 0xc0) == 64)
                || (o0 == 169 && o1 == 254)
                || (o0 == 172 && (o1 & 0xf0) == 16)
                || (o0 == 192 && o1 == 168)
                || o0 >= 224
        }
        IpAddr::V6(a) => {
            let first = a.segments()[0];
            a.is_unspecified()
                || a.is_loopback()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xff00) == 0xff00
        }
    }
}

/// Organisation-name fragments of cloud and hosting providers, whose addresses are servers
/// rather than people; matched case-insensitively as substrings (each is lower case and
/// starts with a letter). A heuristic: the list is incomplete, a provider's office network
/// matches too, and fragments are chosen to avoid lookalikes (not "amazon", which Brazilian
/// ISPs named after Amazonas share; not "azure", which is inside "Mazurek").
pub const HOSTING_ORGS: &[&str] = &[
    "amazon.com",
    "amazon-",
    "amazon data services",
    "amazon technologies",
    "amazon web services",
    "google cloud",
    "google-cloud",
    "microsoft",
    "digitalocean",
    "ovh",
    "hetzner",
    "linode",
    "akamai",
    "vultr",
    "choopa",
    "the constant company",
    "contabo",
    "scaleway",
    "online s.a.s",
    "oracle",
    "alibaba",
    "aliyun",
    "tencent",
    "m247",
    "leaseweb",
    "cloudflare",
    "hostinger",
    "ionos",
    "hostwinds",
    "datacamp limited",
    "servers.com",
    "kamatera",
    "upcloud",
];

/// AS numbers of the same providers, for databases that spell them differently (DB-IP calls
/// Google Cloud's AS396982 "Google LLC", like Google's own AS15169, which is not listed since
/// it also carries Google's consumer services).
pub const HOSTING_ASNS: &[u32] = &[
    16509, 14618, 8987,   // Amazon AWS
    396982, // Google Cloud
    8075,   // Microsoft (Azure)
    14061,  // DigitalOcean
    16276,  // OVH
    24940, 213230, // Hetzner
    63949,  // Linode (Akamai)
    20473,  // Vultr (Choopa, The Constant Company)
    51167,  // Contabo
    12876,  // Scaleway
    31898,  // Oracle Cloud
    45102, 37963, // Alibaba
    132203, 45090, // Tencent
    9009,  // M247
    60781, 16265, 28753, // Leaseweb
    13335, // Cloudflare (Workers, WARP egress)
];

/// The hosting heuristic on its own: the ASN is in [`HOSTING_ASNS`] or the organisation
/// contains one of [`HOSTING_ORGS`], ignoring case.
pub fn is_hosting_as(asn: Option<u32>, org: Option<&str>) -> bool {
    if asn.is_some_and(|n| HOSTING_ASNS.contains(&n)) {
        return true;
    }
    let Some(org) = org else { return false };
    // Runs per lookup: no allocation, and only the fragments starting with the current
    // letter are compared.
    static BY_FIRST_LETTER: OnceLock<[Vec<&'static [u8]>; 26]> = OnceLock::new();
    let table = BY_FIRST_LETTER.get_or_init(|| {
        let mut table: [Vec<&'static [u8]>; 26] = Default::default();
        for needle in HOSTING_ORGS {
            let bytes = needle.as_bytes();
            debug_assert!(bytes[0].is_ascii_lowercase() && bytes.iter().all(|b| !b.is_ascii_uppercase()));
            table[(bytes[0] - b'a') as usize].push(bytes);
        }
        table
    });
    let hay = org.as_bytes();
    hay.iter().enumerate().any(|(i, &b)| {
        let b = b.to_ascii_lowercase();
        b.is_ascii_lowercase()
            && table[(b - b'a') as usize]
                .iter()
                .any(|needle| hay.get(i..i + needle.len()).is_some_and(|w| w[1..].eq_ignore_ascii_case(&needle[1..])))
    })
}

// ---------------------------------------------------------------------------------------------
// Merging

#[derive(Default)]
struct Merged {
    asn: Option<u32>,
    as_org: Option<String>,
    /// The hosting heuristic on `as_org`, when worked out in advance.
    org_hosting: Option<bool>,
    country: Option<[u8; 2]>,
    hosting: bool,
    anonymous: bool,
}

impl Merged {
    fn asn_and_org(&mut self, asn: Option<u32>, org: Option<&str>, org_hosting: Option<bool>) {
        let agrees = self.asn.is_none() || asn.is_none() || self.asn == asn;
        if self.asn.is_none() {
            self.asn = asn;
        }
        if self.as_org.is_none() && agrees {
            if let Some(org) = org.map(str::trim).filter(|o| !o.is_empty()) {
                self.as_org = Some(org.to_owned());
                self.org_hosting = org_hosting;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MMDB

fn lookup_mmdb(reader: &maxminddb::Reader<Vec<u8>>, ip: IpAddr, acc: &mut Merged) {
    if ip.is_ipv6() && reader.metadata().ip_version == 4 {
        return;
    }
    let Ok(result) = reader.lookup(ip) else { return };
    let Ok(Some(rec)) = result.decode::<Record>() else { return };
    acc.asn_and_org(rec.asn, rec.org, None);
    if acc.country.is_none() {
        acc.country = rec.country_code.or(rec.country).or(rec.registered_country);
    }
    acc.hosting |= rec.hosting;
    acc.anonymous |= rec.anonymous;
}

/// The fields of any supported MMDB layout, decoded leniently: unknown keys are skipped, and
/// a known key holding a value of an unexpected type counts as absent rather than spoiling
/// the record. A `traits` map (GeoIP2 Enterprise) is read with the same rules and fills what
/// the top level left open.
#[derive(Default)]
struct Record<'a> {
    /// `country_code`, or a two-letter `country_iso_code`.
    country_code: Option<[u8; 2]>,
    /// `country`: a GeoIP2 map's `iso_code`, or a two-letter string (old ipinfo).
    country: Option<[u8; 2]>,
    registered_country: Option<[u8; 2]>,
    /// `autonomous_system_number` or `asn` (`15169` or `"AS15169"`).
    asn: Option<u32>,
    /// `autonomous_system_organization` or `as_name`.
    org: Option<&'a str>,
    /// `is_hosting_provider`.
    hosting: bool,
    /// `is_anonymous_vpn`, `is_tor_exit_node`, `is_public_proxy`, `is_residential_proxy`,
    /// `is_anonymous_proxy` (not `is_anonymous`, which hosting alone sets).
    anonymous: bool,
}

impl<'a> Record<'a> {
    fn fill_from(&mut self, other: Record<'a>) {
        self.country_code = self.country_code.or(other.country_code);
        self.country = self.country.or(other.country);
        self.registered_country = self.registered_country.or(other.registered_country);
        self.asn = self.asn.or(other.asn);
        self.org = self.org.or(other.org);
        self.hosting |= other.hosting;
        self.anonymous |= other.anonymous;
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Record<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Record<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IP database record")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Record<'a>, M::Error> {
                let mut rec = Record::default();
                while let Some(key) = map.next_key::<Field>()? {
                    if key == Field::Other {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    if key == Field::Traits {
                        let traits = map.next_value::<Record<'a>>()?;
                        rec.fill_from(traits);
                        continue;
                    }
                    let value = map.next_value::<Value<'a>>()?;
                    match key {
                        Field::CountryCode | Field::CountryIsoCode => {
                            rec.country_code = rec.country_code.or(value.country())
                        }
                        Field::Country => rec.country = rec.country.or(value.country()),
                        Field::RegisteredCountry => rec.registered_country = rec.registered_country.or(value.country()),
                        Field::Asn => rec.asn = rec.asn.or(value.asn()),
                        Field::Org => rec.org = rec.org.or(value.name()),
                        Field::Hosting => rec.hosting |= value.flag(),
                        Field::Anonymous => rec.anonymous |= value.flag(),
                        Field::Traits | Field::Other => {}
                    }
                }
                Ok(rec)
            }
            // A record that is not a map (some custom database) has nothing we read.
            fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Record<'a>, S::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Record::default())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Record<'a>, E> {
                Ok(Record::default())
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Record<'a>, E> {
                Ok(Record::default())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Record<'a>, E> {
                Ok(Record::default())
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Record<'a>, E> {
                Ok(Record::default())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Record<'a>, E> {
                Ok(Record::default())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Record<'a>, E> {
                Ok(Record::default())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Record<'a>, E> {
                Ok(Record::default())
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// The keys of a record that we read.
#[derive(PartialEq, Eq)]
enum Field {
    CountryCode,
    CountryIsoCode,
    Country,
    RegisteredCountry,
    Asn,
    Org,
    Hosting,
    Anonymous,
    Traits,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
                Ok(match key {
                    "country_code" => Field::CountryCode,
                    "country_iso_code" => Field::CountryIsoCode,
                    "country" => Field::Country,
                    "registered_country" => Field::RegisteredCountry,
                    "autonomous_system_number" | "asn" => Field::Asn,
                    "autonomous_system_organization" | "as_name" => Field::Org,
                    "is_hosting_provider" => Field::Hosting,
                    "is_anonymous_vpn"
                    | "is_tor_exit_node"
                    | "is_public_proxy"
                    | "is_residential_proxy"
                    | "is_anonymous_proxy" => Field::Anonymous,
                    "traits" => Field::Traits,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// The value of a field we read, whatever its type; maps are searched for `iso_code`.
enum Value<'a> {
    Str(&'a str),
    Int(i128),
    Bool(bool),
    IsoCode(Option<[u8; 2]>),
    Other,
}

impl<'a> Value<'a> {
    fn country(&self) -> Option<[u8; 2]> {
        match self {
            Value::Str(s) => country_code_from(s),
            Value::IsoCode(code) => *code,
            _ => None,
        }
    }

    fn asn(&self) -> Option<u32> {
        match self {
            Value::Int(n) => u32::try_from(*n).ok().filter(|&n| n != 0),
            Value::Str(s) => parse_asn(s).flatten(),
            _ => None,
        }
    }

    fn name(&self) -> Option<&'a str> {
        match self {
            Value::Str(s) => Some(*s).filter(|s| !s.trim().is_empty()),
            _ => None,
        }
    }

    fn flag(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Str(s) => s.eq_ignore_ascii_case("true") || *s == "1",
            _ => false,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Value<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Value<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Value<'a>, E> {
                Ok(Value::Str(s))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Value<'a>, E> {
                Ok(Value::Other) // not borrowable: never the case for an MMDB
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Value<'a>, E> {
                Ok(Value::Other)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value<'a>, E> {
                Ok(Value::Int(n.into()))
            }
            fn visit_u128<E: de::Error>(self, n: u128) -> Result<Value<'a>, E> {
                Ok(i128::try_from(n).map_or(Value::Other, Value::Int))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value<'a>, E> {
                Ok(Value::Int(n.into()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value<'a>, E> {
                Ok(Value::Other)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value<'a>, E> {
                Ok(Value::Bool(b))
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Value<'a>, S::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Value::Other)
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Value<'a>, M::Error> {
                let mut code = None;
                while let Some(is_iso_code) = map.next_key::<IsoCodeKey>()? {
                    if is_iso_code.0 {
                        code = code.or(map.next_value::<Value<'a>>()?.country());
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Value::IsoCode(code))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A key of a map inside a record: whether it is `iso_code`.
struct IsoCodeKey(bool);

impl<'de> Deserialize<'de> for IsoCodeKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IsoCodeKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<IsoCodeKey, E> {
                Ok(IsoCodeKey(key == "iso_code"))
            }
        }
        d.deserialize_str(V)
    }
}

/// A two-letter country code, upper-cased; anything else (a country name, "ZZ" for unknown)
/// is none.
fn country_code_from(s: &str) -> Option<[u8; 2]> {
    let b = s.trim().as_bytes();
    if b.len() != 2 || !b.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let code = [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()];
    (&code != b"ZZ").then_some(code)
}

/// `15169`, `AS15169` or `as15169`: `Some(Some(n))`; empty or zero: `Some(None)`; else `None`.
fn parse_asn(s: &str) -> Option<Option<u32>> {
    let s = s.trim();
    let digits = s.strip_prefix("AS").or_else(|| s.strip_prefix("as")).unwrap_or(s);
    if digits.is_empty() {
        return Some(None);
    }
    digits.parse::<u32>().ok().map(|n| (n != 0).then_some(n))
}

// ---------------------------------------------------------------------------------------------
// Opening

/// The bytes that start the metadata section of every MaxMind DB file.
const MMDB_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

fn open_source(path: &Path) -> anyhow::Result<Source> {
    let bytes = std::fs::read(path).with_context(|| format!("reading IP database {}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let tail = &bytes[bytes.len().saturating_sub(128 * 1024)..];
    let looks_mmdb = tail.windows(MMDB_MARKER.len()).any(|w| w == MMDB_MARKER);
    if ext.as_deref() == Some("mmdb") || looks_mmdb {
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a valid MaxMind DB file: {e}", path.display()))?;
        return Ok(Source::Mmdb { path: path.to_owned(), reader });
    }
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: bad gzip data", path.display()))?;
        out
    } else {
        bytes
    };
    parse_ranges(path, &text)
}

fn parse_ranges(path: &Path, text: &[u8]) -> anyhow::Result<Source> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut orgs: Vec<Org> = Vec::new();
    let mut org_ids: HashMap<Box<str>, u32> = HashMap::new();
    let mut fields = Vec::with_capacity(4);
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let line = std::str::from_utf8(raw)
            .map_err(|_| anyhow::anyhow!("{}:{line_no}: not UTF-8 text", path.display()))?
            .trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        split_csv(line, 4, &mut fields)
            .map_err(|e| anyhow::anyhow!("{}:{line_no}: {e}: {}", path.display(), excerpt(line)))?;
        if line_no == 1 && is_header(&fields) {
            continue;
        }
        let row =
            parse_row(&fields).map_err(|e| anyhow::anyhow!("{}:{line_no}: {e}: {}", path.display(), excerpt(line)))?;
        let org = row.org.map(|name| match org_ids.get(&*name) {
            Some(&id) => id,
            None => {
                let id = orgs.len() as u32;
                orgs.push(Org { name: name.as_ref().into(), hosting: is_hosting_as(None, Some(&name)) });
                org_ids.insert(name.as_ref().into(), id);
                id
            }
        });
        let range = Range { start: row.start, end: row.end, asn: row.asn, org };
        if row.v6 {
            v6.push(range);
        } else {
            v4.push(range);
        }
    }
    if v4.is_empty() && v6.is_empty() {
        bail!("{}: no address ranges found (expected start,end,asn,organisation lines)", path.display());
    }
    Ok(Source::Ranges { path: path.to_owned(), v4: RangeTable::build(v4, 32), v6: RangeTable::build(v6, 128), orgs })
}

fn excerpt(line: &str) -> String {
    let mut s: String = line.chars().take(80).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    format!("{s:?}")
}

/// Splits one CSV line into at most `max` fields in `out`: comma-separated, optionally
/// double-quoted with `""` for a quote. Unquoted fields are trimmed; an unquoted last field
/// takes the rest of the line, commas and all (an organisation name nobody quoted).
fn split_csv<'a>(line: &'a str, max: usize, out: &mut Vec<Cow<'a, str>>) -> Result<(), String> {
    out.clear();
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start();
        let last = out.len() + 1 >= max;
        if let Some(quoted) = trimmed.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let after;
            loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            value.push('"');
                            chars.next();
                        } else {
                            after = &quoted[i + 1..];
                            break;
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated quote".into()),
                }
            }
            out.push(Cow::Owned(value));
            let after = after.trim_start();
            match after.strip_prefix(',') {
                Some(next) => rest = next,
                None if after.is_empty() => return Ok(()),
                None => return Err("text after a closing quote".into()),
            }
        } else {
            match rest.find(',').filter(|_| !last) {
                Some(i) => {
                    out.push(Cow::Borrowed(rest[..i].trim()));
                    rest = &rest[i + 1..];
                }
                None => {
                    out.push(Cow::Borrowed(rest.trim()));
                    return Ok(());
                }
            }
        }
    }
}

/// A first line whose first field is a word (`start_ip`, `ip_range_start`, …) is a header.
fn is_header(fields: &[Cow<'_, str>]) -> bool {
    fields.len() >= 3
        && fields[0].chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && fields[0].chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ')
        && fields[0].parse::<IpAddr>().is_err()
}

struct Row<'a> {
    start: u128,
    end: u128,
    v6: bool,
    asn: Option<u32>,
    org: Option<Cow<'a, str>>,
}

fn parse_row<'a>(fields: &'a [Cow<'a, str>]) -> Result<Row<'a>, String> {
    if fields.len() < 3 {
        return Err(format!("expected start,end,asn[,organisation], found {} field(s)", fields.len()));
    }
    let (start, start_v6) = parse_addr(&fields[0]).ok_or_else(|| format!("bad start address {:?}", fields[0]))?;
    let (end, end_v6) = parse_addr(&fields[1]).ok_or_else(|| format!("bad end address {:?}", fields[1]))?;
    let v6 = match (start_v6, end_v6) {
        (Some(a), Some(b)) if a != b => return Err("start and end are of different address families".into()),
        (Some(a), _) | (None, Some(a)) => a,
        // Both integers: a range within 32 bits is IPv4.
        (None, None) => end > u32::MAX as u128,
    };
    if !v6 && end > u32::MAX as u128 {
        return Err("IPv4 range end out of range".into());
    }
    if start > end {
        return Err("range start is after its end".into());
    }
    let asn = parse_asn(&fields[2]).ok_or_else(|| format!("bad AS number {:?}", fields[2]))?;
    let org = fields.get(3).map(|o| Cow::Borrowed(&**o)).filter(|o| !o.is_empty());
    Ok(Row { start, end, v6, asn, org })
}

/// An address as a number, and whether it is IPv6 (`None` for a bare integer).
fn parse_addr(s: &str) -> Option<(u128, Option<bool>)> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(match ip {
            IpAddr::V4(a) => (u32::from(a) as u128, Some(false)),
            IpAddr::V6(a) => (u128::from(a), Some(true)),
        });
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u128>().ok().map(|n| (n, None));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Range tables

struct Range {
    start: u128,
    end: u128,
    asn: Option<u32>,
    org: Option<u32>,
}

/// Sorted, disjoint inclusive ranges, as parallel vectors for a cache-friendly binary search,
/// with an index by the address's top 16 bits that narrows the search to one bucket.
#[derive(Default)]
struct RangeTable {
    starts: Vec<u128>,
    ends: Vec<u128>,
    values: Vec<(Option<u32>, Option<u32>)>,
    /// `index[k]`: how many ranges start below bucket `k` (65,537 entries; empty if no ranges).
    index: Vec<u32>,
    /// Shift that leaves an address's top 16 bits.
    shift: u32,
}

impl RangeTable {
    /// Sorts the ranges and makes them disjoint: where ranges overlap, the one that starts
    /// later wins for the addresses they share (a nested range beats its container).
    fn build(ranges: Vec<Range>, width: u32) -> RangeTable {
        let mut table = Self::disjoint(ranges);
        table.shift = width - 16;
        if !table.starts.is_empty() {
            let mut index = Vec::with_capacity(65_537);
            let mut below = 0;
            for bucket in 0..=65_536u128 {
                while below < table.starts.len() && (table.starts[below] >> table.shift) < bucket {
                    below += 1;
                }
                index.push(below as u32);
            }
            table.index = index;
        }
        table
    }

    fn disjoint(mut ranges: Vec<Range>) -> RangeTable {
        // By start, and a container before the ranges it contains.
        ranges.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut table = RangeTable::default();
        let overlapping = ranges.windows(2).any(|w| w[1].start <= w[0].end);
        if !overlapping {
            for r in ranges {
                table.push(r.start, r.end, (r.asn, r.org));
            }
            return table;
        }
        // Sweep with a stack of open ranges; `cursor` is the first address not yet emitted
        // (None once the whole address space is).
        let mut stack: Vec<&Range> = Vec::new();
        let mut cursor: Option<u128> = Some(0);
        let emit_until = |table: &mut RangeTable, cursor: &mut Option<u128>, r: &Range, end: u128| {
            if let Some(c) = *cursor {
                if c <= end {
                    table.push(c.max(r.start), end, (r.asn, r.org));
                    *cursor = end.checked_add(1);
                }
            }
        };
        for r in &ranges {
            while let Some(top) = stack.last().copied() {
                if top.end >= r.start {
                    break;
                }
                emit_until(&mut table, &mut cursor, top, top.end);
                stack.pop();
            }
            if let Some(top) = stack.last().copied() {
                if r.start > 0 {
                    emit_until(&mut table, &mut cursor, top, r.start - 1);
                }
            }
            // Everything before `r.start` is emitted now (or was a gap).
            cursor = Some(r.start);
            stack.push(r);
        }
        while let Some(top) = stack.pop() {
            emit_until(&mut table, &mut cursor, top, top.end);
        }
        table
    }

    fn push(&mut self, start: u128, end: u128, value: (Option<u32>, Option<u32>)) {
        self.starts.push(start);
        self.ends.push(end);
        self.values.push(value);
    }

    fn find(&self, addr: u128) -> Option<(Option<u32>, Option<u32>)> {
        let bucket = (addr >> self.shift) as usize;
        let (lo, hi) = (*self.index.get(bucket)? as usize, self.index[bucket + 1] as usize);
        // The last range starting at or before `addr`: in this bucket, or the one before it.
        let i = (lo + self.starts[lo..hi].partition_point(|&s| s <= addr)).checked_sub(1)?;
        (addr <= self.ends[i]).then(|| self.values[i])
    }
}
