//! Detectors over normalised events, in one pass in arrival order. Each credential's baseline
//! is learned from its own early activity (before `--train-until`, the first fraction of the
//! input, or its first events), and what a stolen credential does is flagged against it: new
//! source IPs, networks (ASN when a database is configured, else /24) and countries; new
//! clients (above all a browser or an attack tool on a machine credential); use from two
//! networks at once; instance credentials used off the instance; bursts of failures; secret
//! and resource enumeration; privilege changes; changes that blind the defenders or expose
//! data; and use after revocation.
//!
//! State is per credential and bounded: baselines keep at most a few hundred addresses,
//! networks and clients, windows keep at most a few thousand entries, and alerts keep at most
//! 200 pieces of evidence. Memory grows with credentials, not with events.
//!
//! Nothing here knows a dataset or a platform's vocabulary: readers classify actions
//! ([`Category`]); thresholds are counts per time window; the only names are well-known
//! attack tools.

use keywatch_model::event::{Category, Event, Outcome};
use keywatch_model::time::rfc3339_utc;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// Maps keyed by log content: foldhash is several times faster than SipHash and still seeded
/// at random, so crafted keys cannot force collisions.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::net::IpAddr;
use std::rc::Rc;

use crate::enrich::{network_label, Enricher, IpInfo};

/// How detection runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events before this time (Unix seconds) form the baselines. Unset: each credential's
    /// first `baseline_events` events do (unless the caller says per event).
    pub train_until: Option<i64>,
    pub baseline_events: u64,
    /// Credentials revoked, deleted or rotated away, with when (unknown time: any use).
    pub revoked: HashMap<String, Option<i64>>,
    /// The window of the burst detectors, in seconds.
    pub window: i64,
    /// Failed calls in one window that make a burst.
    pub failure_burst: usize,
    /// Secret reads in one window that make an enumeration.
    pub secret_reads: usize,
    /// Distinct resources read in one window that make an enumeration (and at least three
    /// times the credential's own busiest baseline window).
    pub distinct_resources: usize,
    /// Use from two networks within this many seconds is use from two places at once.
    pub concurrency_window: i64,
    /// Known automation: networks and clients that raise no novelty alerts.
    pub allow: AllowList,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            train_until: None,
            baseline_events: 10,
            revoked: HashMap::new(),
            window: 60,
            failure_burst: 10,
            secret_reads: 10,
            distinct_resources: 25,
            concurrency_window: 300,
            allow: AllowList::default(),
        }
    }
}

/// Networks (CIDRs or `AS` numbers) and user agents (case-insensitive substrings) of known
/// automation. Use from them raises no new-IP, new-network, new-country, two-places or
/// new-client alert; signatures (attack tools, privilege changes, revocations) still count.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    pub networks: Vec<(IpAddr, u8)>,
    pub asns: Vec<u32>,
    pub user_agents: Vec<String>,
}

impl AllowList {
    /// Parses `10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7` or `AS16509`.
    pub fn add_network(&mut self, text: &str) -> Result<(), String> {
        let text = text.trim();
        if let Some(number) = text.strip_prefix("AS").or_else(|| text.strip_prefix("as")) {
            let asn = number.parse().map_err(|_| format!("{text:?} is not an AS number"))?;
            self.asns.push(asn);
            return Ok(());
        }
        let (ip, len) = match text.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (text, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| format!("{text:?} is not an IP network"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(len) => len.parse::<u8>().ok().filter(|l| *l <= max).ok_or(format!("{text:?}: bad prefix length"))?,
            None => max,
        };
        self.networks.push((ip, len));
        Ok(())
    }

    fn allows_ip(&self, ip: IpAddr, info: &IpInfo) -> bool {
        info.asn.is_some_and(|asn| self.asns.contains(&asn))
            || self.networks.iter().any(|(net, len)| contains(*net, *len, ip))
    }

    fn allows_agent(&self, user_agent: &str) -> bool {
        let lower = user_agent.to_ascii_lowercase();
        self.user_agents.iter().any(|a| lower.contains(&a.to_ascii_lowercase()))
    }
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub id: String,
    pub kind: String,
    pub severity: String,
    pub platform: String,
    pub identity: Option<String>,
    pub credential: String,
    /// What tells this alert from others of its kind on the credential: the new IP, client,
    /// country or operation; empty when there is one per credential.
    #[serde(default)]
    pub subject: String,
    pub first_seen: String,
    pub last_seen: String,
    pub event_count: u64,
    pub source_ips: Vec<String>,
    /// The networks of the source IPs (`AS16509 Amazon.com`, or `/24`s without a database).
    #[serde(default)]
    pub networks: Vec<String>,
    pub user_agents: Vec<String>,
    pub explanation: String,
    /// Event ids, or `file:line#record` for records without one.
    pub evidence: Vec<String>,
    /// The inventory's record of the credential, when the store holds it:
    /// who owns it and which vendors hold it. Filled by the caller, which has the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<InventoryLink>,
}

/// An alert's credential as the inventory knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InventoryLink {
    /// The store's id (`keywatch inventory show ID`).
    pub id: i64,
    pub platform: String,
    pub kind: String,
    pub name: String,
    pub owner: Option<String>,
    pub status: String,
    /// The vendors it is linked to, strongest first.
    pub vendors: Vec<String>,
}

/// What a credential did in its baseline: kept per credential, stored by `ingest`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Baseline {
    pub platform: String,
    pub identity: Option<String>,
    pub events: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub ips: BTreeSet<String>,
    pub networks: BTreeSet<String>,
    pub countries: BTreeSet<String>,
    pub clients: BTreeSet<String>,
    /// The most distinct resources it read in one window.
    pub peak_reads: usize,
}

/// Most addresses, networks or clients a baseline keeps: a credential used from more places
/// than this is used from anywhere, and novelty means nothing for it.
const BASELINE_SET_CAP: usize = 512;
/// Most entries a window keeps.
const WINDOW_CAP: usize = 4096;
const EVIDENCE_CAP: usize = 200;
const INDICATOR_CAP: usize = 100;

/// Clients that only an attacker or a tester runs.
const ATTACK_TOOLS: &[&str] = &["stratus-red-team", "pacu", "kali", "parrot", "cloudgoat", "scoutsuite", "prowler"];

/// The client family of a user agent: its first product token, lower case, without version
/// (`aws-sdk-go-v2/1.17 os/linux` is `aws-sdk-go-v2`); every browser is `browser`.
pub fn client_family(user_agent: &str) -> String {
    let ua = user_agent.trim().trim_start_matches('[').trim_end_matches(']');
    if ua.starts_with("Mozilla/") || ua.contains("Chrome/") || ua.contains("Safari/") {
        return "browser".into();
    }
    let token = ua.split([' ', '/', ',', '(']).next().unwrap_or("").to_ascii_lowercase();
    // `stratus-red-team_<run id>`: the run id is not part of the client.
    let token = token.split('_').next().unwrap_or("").to_string();
    if token.is_empty() {
        "unknown".into()
    } else {
        token
    }
}

/// A role session named after an EC2 instance (`.../assumed-role/ROLE/i-0123456789abcdef0`):
/// the credentials of an instance profile.
fn instance_session(session: &str) -> bool {
    let name = session.rsplit('/').next().unwrap_or("");
    name.len() >= 10 && name.starts_with("i-") && name[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The /24 (IPv4) or /48 (IPv6) network of an address: without an ASN database, the unit of
/// "a new network".
pub fn network_of(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(ip) => network_label(ip, &IpInfo::default()),
        Err(_) => ip.to_string(),
    }
}

/// The key a credential's behaviour is tracked under. Session credentials (`ASIA…`) are
/// short-lived and reissued every hour to the same workload: they are tracked by their role
/// session (for an instance profile, the instance), so a copy of the instance's credentials
/// is compared with what the instance itself does.
pub fn credential_key(e: &Event) -> Option<&str> {
    match (&e.credential, &e.session) {
        (Some(key), Some(session)) if key.starts_with("ASIA") => Some(session),
        (Some(key), _) => Some(key),
        (None, Some(session)) => Some(session),
        (None, None) => e.identity.as_deref(),
    }
}

fn evidence_id(e: &Event) -> String {
    e.event_id.clone().unwrap_or_else(|| format!("{}:{}#{}", e.raw.file, e.raw.line, e.raw.record))
}

/// What is known of a user agent, worked out once per distinct string.
struct Client {
    family: Rc<str>,
    attack_tool: bool,
    /// A browser, or a CLI or SDK reporting macOS or Windows: a person's computer.
    desktop: bool,
    allowed: bool,
}

/// What is known of a source address, worked out once per distinct address.
struct Place {
    network: Rc<str>,
    country: Option<Rc<str>>,
    info: IpInfo,
    allowed: bool,
}

/// One event remembered in a window, enough to cite it in an alert.
struct Seen {
    time: i64,
    evidence: String,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl Seen {
    fn of(e: &Event) -> Seen {
        Seen { time: e.time, evidence: evidence_id(e), ip: e.source_ip.clone(), user_agent: e.user_agent.clone() }
    }
}

#[derive(Default)]
struct Credential {
    baseline: Baseline,
    failures: VecDeque<Seen>,
    secret_reads: VecDeque<Seen>,
    /// Reads in the window: time and a hash of action and resource, with a count per hash.
    reads: VecDeque<(i64, u64)>,
    read_counts: FastMap<u64, u32>,
    /// Recent places: time, network, client family.
    places: VecDeque<(i64, Rc<str>, Option<Rc<str>>)>,
    /// Seen since [`Detector::take_touched_baselines`] was last called.
    touched: bool,
    /// The latest use by time, and an event of that second: a revocation read after it (a
    /// log listed newest first) still finds it.
    last_use: Option<(i64, String)>,
    /// Events after the training window read before any of the baseline (a log listed
    /// newest first), judged when the input ends.
    pending: Vec<Event>,
}

/// Most events kept per credential for judging once its baseline exists.
const PENDING_CAP: usize = 16;

struct Draft {
    severity: &'static str,
    platform: String,
    identity: Option<String>,
    first: i64,
    last: i64,
    count: u64,
    ips: BTreeSet<String>,
    networks: BTreeSet<String>,
    agents: BTreeSet<String>,
    explanation: String,
    evidence: Vec<String>,
}

type AlertKey = (&'static str, String, String);

/// The detectors' state over a stream of events.
pub struct Detector<'a> {
    options: Options,
    enricher: Option<&'a Enricher>,
    credentials: FastMap<String, Credential>,
    /// Credentials that the logs themselves show revoked, with when.
    revoked_in_logs: FastMap<String, i64>,
    clients: FastMap<String, Client>,
    places: FastMap<String, Place>,
    alerts: FastMap<AlertKey, Draft>,
    /// Alerts raised or grown since [`Detector::take_changed`] was last called.
    changed: BTreeSet<AlertKey>,
    events: u64,
}

impl<'a> Detector<'a> {
    pub fn new(options: Options, enricher: Option<&'a Enricher>) -> Self {
        Detector {
            options,
            enricher,
            credentials: FastMap::default(),
            revoked_in_logs: FastMap::default(),
            clients: FastMap::default(),
            places: FastMap::default(),
            alerts: FastMap::default(),
            changed: BTreeSet::new(),
            events: 0,
        }
    }

    /// Starts from baselines learned before (by `ingest`).
    pub fn load_baselines(&mut self, baselines: impl IntoIterator<Item = (String, Baseline)>) {
        for (key, baseline) in baselines {
            self.credentials.insert(key, Credential { baseline, ..Credential::default() });
        }
    }

    /// Starts from alerts raised before, so that new events grow them instead of repeating.
    pub fn load_alerts(&mut self, alerts: impl IntoIterator<Item = Alert>) {
        for a in alerts {
            let Some(kind) = KINDS.iter().find(|k| **k == a.kind) else { continue };
            let subject = a.subject.clone();
            let severity = SEVERITIES.iter().find(|s| **s == a.severity).copied().unwrap_or("medium");
            let time = |s: &str| keywatch_model::time::parse_rfc3339(s).unwrap_or(0);
            self.alerts.insert(
                (kind, a.credential.clone(), subject),
                Draft {
                    severity,
                    platform: a.platform,
                    identity: a.identity,
                    first: time(&a.first_seen),
                    last: time(&a.last_seen),
                    count: a.event_count,
                    ips: a.source_ips.into_iter().collect(),
                    networks: a.networks.into_iter().collect(),
                    agents: a.user_agents.into_iter().collect(),
                    explanation: a.explanation,
                    evidence: a.evidence,
                },
            );
        }
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn credentials(&self) -> usize {
        self.credentials.len()
    }

    /// Runs every detector on one event. `training` overrides the options' rule for whether
    /// it belongs to the baseline (the caller knows the input's first fraction).
    pub fn observe(&mut self, e: &Event, training: Option<bool>) {
        let Some(key) = credential_key(e) else { return };
        self.events += 1;
        if !self.credentials.contains_key(key) {
            let baseline = Baseline {
                platform: e.platform.clone(),
                identity: e.identity.clone(),
                first_seen: e.time,
                last_seen: e.time,
                ..Baseline::default()
            };
            self.credentials.insert(key.to_string(), Credential { baseline, ..Credential::default() });
        }
        let client = e.user_agent.as_deref().map(|ua| self.client(ua));
        let place = e.source_ip.as_deref().map(|ip| self.place(ip));
        // A revocation read after a later use of what it revoked.
        let used_after = match (&e.category, &e.resource) {
            (Some(Category::Revocation), Some(revoked)) if e.outcome == Outcome::Success => self
                .credentials
                .get(revoked.as_str())
                .and_then(|c| c.last_use.clone().map(|u| (revoked.clone(), c.baseline.identity.clone(), u)))
                .filter(|(_, _, (time, _))| *time >= e.time),
            _ => None,
        };
        let Detector { options, credentials, alerts, changed, revoked_in_logs, clients, places, .. } = self;
        let credential = credentials.get_mut(key).expect("inserted above");
        credential.touched = true;
        if credential.last_use.as_ref().is_none_or(|(t, _)| e.time > *t) {
            credential.last_use = Some((e.time, evidence_id(e)));
        }
        let client = client.map(|ua| &clients[ua]);
        let place = place.map(|ip| &places[ip]);
        let mut gather = Gather { alerts, changed, e, key, identity: None };
        if let Some((revoked, identity, (time, evidence))) = used_after {
            let seen = Seen { time, evidence, ip: None, user_agent: None };
            let at = rfc3339_utc(e.time);
            let mut late = Gather {
                alerts: &mut *gather.alerts,
                changed: &mut *gather.changed,
                e,
                key: &revoked,
                identity: Some(identity),
            };
            late.add_seen("use_after_revocation", "", "critical", &seen, || {
                format!("credential {revoked} was revoked, deleted or rotated at {at}, and is still being used")
            });
        }
        let baseline = &mut credential.baseline;
        baseline.first_seen = baseline.first_seen.min(e.time);
        baseline.last_seen = baseline.last_seen.max(e.time);
        let training = match (options.train_until, training) {
            (Some(until), _) => e.time < until,
            (None, Some(training)) => training,
            (None, None) => baseline.events < options.baseline_events,
        };

        // Use after revocation: from the inventory and --revoked, or from the logs.
        if let Some(id) = &e.credential {
            let revoked = options.revoked.get(id).copied().or_else(|| revoked_in_logs.get(id).map(|t| Some(*t)));
            if let Some(at) = revoked {
                if at.is_none_or(|t| e.time >= t) {
                    let when = at.map(rfc3339_utc).unwrap_or_else(|| "an unknown time".into());
                    gather.add("use_after_revocation", "", "critical", place, || {
                        format!("credential {key} was revoked, deleted or rotated at {when}, and is still being used")
                    });
                }
            }
        }
        if e.category == Some(Category::Revocation) && e.outcome == Outcome::Success {
            if let Some(revoked) = &e.resource {
                let at = revoked_in_logs.entry(revoked.clone()).or_insert(e.time);
                *at = (*at).min(e.time);
            }
        }

        // Single actions that matter whatever the baseline. Blinding the defenders counts even
        // when it fails: the attempt shows the intent.
        let success = e.outcome == Outcome::Success;
        let signature = match e.category {
            Some(Category::PrivilegeChange) if success => {
                Some(("privilege_change", "high", "a change of privileges or a new way in"))
            }
            Some(Category::DefenceEvasion) if success => {
                Some(("defence_evasion", "high", "weakens logging or guardrails"))
            }
            Some(Category::DefenceEvasion) => {
                Some(("defence_evasion", "medium", "an attempt, which failed, to weaken logging or guardrails"))
            }
            Some(Category::ExposureChange) if success => {
                Some(("exposure_change", "high", "shares data or opens access beyond the organisation"))
            }
            Some(Category::LoginWithoutMfa) if success => {
                Some(("login_without_mfa", "medium", "an interactive sign-in with a password and no second factor"))
            }
            _ => None,
        };
        if let Some((kind, severity, what)) = signature {
            let op = operation(e);
            let target = e.resource.clone();
            gather.add(kind, op, severity, place, || {
                format!(
                    "credential {key} called {op}{}: {what}",
                    target.map(|t| format!(" (first on {t})")).unwrap_or_default()
                )
            });
        }

        if let Some(c) = client {
            if c.attack_tool {
                // A signature, not a deviation: it counts even in a baseline.
                let family = c.family.clone();
                gather.add("attack_tool", &family, "high", place, || {
                    format!("credential {key} was used by {family}, an attack or penetration-testing tool")
                });
            }
        }

        // An instance's role session is the instance's own: a desktop client means a copy.
        if let (Some(session), Some(c)) = (&e.session, client) {
            if c.desktop && instance_session(session) {
                let instance = session.rsplit('/').next().unwrap_or(session).to_string();
                let family = c.family.clone();
                gather.add("instance_credentials_off_instance", "", "high", place, || {
                    format!(
                        "the role credentials of instance {instance} were used by a desktop client ({family}): \
                         instance credentials are only ever used on the instance"
                    )
                });
            }
        }

        // Several networks within minutes: one credential in two places at once.
        if let Some(p) = place.filter(|p| !p.allowed) {
            let window = options.concurrency_window;
            let recent = &mut credential.places;
            // Either side in time: logs are not always read oldest first.
            recent.retain(|(t, _, _)| (e.time - t).abs() < window);
            let family = client.map(|c| c.family.clone());
            if let Some((_, other, other_family)) = recent.iter().find(|(_, n, _)| *n != p.network) {
                let different_client = family.is_some() && other_family.is_some() && *other_family != family;
                let severity = if different_client { "high" } else { "medium" };
                let (network, other) = (p.network.clone(), other.clone());
                let (this_client, other_client) = (family.clone(), other_family.clone());
                gather.add("concurrent_networks", "", severity, place, || {
                    format!(
                        "credential {key} was used from {network} ({}) within {window} s of use from {other} ({}){}",
                        this_client.as_deref().unwrap_or("unknown client"),
                        other_client.as_deref().unwrap_or("unknown client"),
                        if different_client {
                            ": a second copy of it, in another place and another client"
                        } else {
                            ""
                        }
                    )
                });
            }
            if recent.back().is_none_or(|(_, n, f)| *n != p.network || *f != family) {
                recent.push_back((e.time, p.network.clone(), family));
            }
            if recent.len() > 64 {
                recent.pop_front();
            }
        }

        let baseline = &mut credential.baseline;
        if training {
            baseline.events += 1;
            if let Some(p) = place {
                insert_capped(&mut baseline.ips, e.source_ip.as_deref().unwrap_or_default());
                insert_capped(&mut baseline.networks, &p.network);
                if let Some(country) = &p.country {
                    insert_capped(&mut baseline.countries, country);
                }
            }
            if let Some(c) = client {
                insert_capped(&mut baseline.clients, &c.family);
            }
        } else if baseline.events > 0 {
            novelty(&mut gather, baseline, place, client, e);
        } else if options.train_until.is_some() && credential.pending.len() < PENDING_CAP {
            credential.pending.push(e.clone());
        }

        // Window detectors.
        let since = e.time - options.window;
        if e.outcome == Outcome::Failure {
            let n = burst(&mut credential.failures, e, since, options.failure_burst);
            if let Some(burst) = n {
                let window = options.window;
                let count = burst.len();
                for seen in &burst {
                    gather.add_seen("failure_burst", "", "medium", seen, || {
                        format!("credential {key} made {count} failed calls within {window} s: probing what it is allowed to do")
                    });
                }
            }
        }
        if e.category == Some(Category::SecretRead) {
            if let Some(burst) = burst(&mut credential.secret_reads, e, since, options.secret_reads) {
                let window = options.window;
                let count = burst.len();
                for seen in &burst {
                    gather.add_seen("secret_enumeration", "", "high", seen, || {
                        format!("credential {key} read or listed secrets {count} times within {window} s")
                    });
                }
            }
        }
        if e.read_only == Some(true) {
            let reads = &mut credential.reads;
            let counts = &mut credential.read_counts;
            while reads.front().is_some_and(|(t, _)| *t <= since) || reads.len() >= WINDOW_CAP {
                let (_, h) = reads.pop_front().expect("not empty");
                if let Some(c) = counts.get_mut(&h) {
                    *c -= 1;
                    if *c == 0 {
                        counts.remove(&h);
                    }
                }
            }
            let h = fnv(e.action.bytes().chain([0]).chain(e.resource.as_deref().unwrap_or("").bytes()));
            reads.push_back((e.time, h));
            *counts.entry(h).or_default() += 1;
            let distinct = counts.len();
            let baseline = &mut credential.baseline;
            if training {
                baseline.peak_reads = baseline.peak_reads.max(distinct);
            } else if distinct >= options.distinct_resources.max(baseline.peak_reads * 3) {
                let (base, window) = (baseline.peak_reads, options.window);
                gather.add("bulk_read", "", "medium", place, || {
                    format!("credential {key} read {distinct} distinct resources within {window} s; its baseline peak was {base}")
                });
            }
        }
    }

    fn client<'u>(&mut self, user_agent: &'u str) -> &'u str {
        if !self.clients.contains_key(user_agent) {
            if self.clients.len() >= 100_000 {
                self.clients.clear();
            }
            let family = client_family(user_agent);
            let lower = user_agent.to_ascii_lowercase();
            let attack_tool = ATTACK_TOOLS.iter().any(|t| family.contains(t) || lower.contains(t));
            let desktop = family == "browser" || user_agent.contains("Darwin/") || user_agent.contains("Windows");
            let allowed = self.options.allow.allows_agent(user_agent);
            self.clients
                .insert(user_agent.to_string(), Client { family: family.into(), attack_tool, desktop, allowed });
        }
        user_agent
    }

    fn place<'u>(&mut self, ip_text: &'u str) -> &'u str {
        if !self.places.contains_key(ip_text) {
            if self.places.len() >= 1_000_000 {
                self.places.clear();
            }
            let place = match ip_text.parse::<IpAddr>() {
                Ok(ip) => {
                    let info = self.enricher.map(|e| e.lookup(ip)).unwrap_or_default();
                    let allowed = self.options.allow.allows_ip(ip, &info);
                    Place {
                        network: network_label(ip, &info).into(),
                        country: info.country.as_deref().map(Rc::from),
                        info,
                        allowed,
                    }
                }
                Err(_) => Place { network: ip_text.into(), country: None, info: IpInfo::default(), allowed: false },
            };
            self.places.insert(ip_text.to_string(), place);
        }
        ip_text
    }

    /// Alerts raised or grown since the last call (for `--follow`).
    pub fn take_changed(&mut self) -> Vec<Alert> {
        let keys = std::mem::take(&mut self.changed);
        keys.iter().filter_map(|k| self.alerts.get(k).map(|d| to_alert(k, d))).collect()
    }

    /// The baselines of the credentials seen since the last call (for `--follow`, which saves
    /// them as it goes).
    pub fn take_touched_baselines(&mut self) -> Vec<(String, Baseline)> {
        let touched = self.credentials.iter_mut().filter(|(_, c)| c.touched);
        touched
            .map(|(k, c)| {
                c.touched = false;
                (k.clone(), c.baseline.clone())
            })
            .collect()
    }

    /// Judges the events that came before their credential's baseline, now that the input
    /// has ended.
    fn judge_pending(&mut self) {
        let mut waiting = Vec::new();
        for (key, credential) in self.credentials.iter_mut() {
            if !credential.pending.is_empty() && credential.baseline.events > 0 {
                waiting.push((key.clone(), std::mem::take(&mut credential.pending)));
            }
        }
        for (key, events) in waiting {
            for e in &events {
                let client = e.user_agent.as_deref().map(|ua| self.client(ua));
                let place = e.source_ip.as_deref().map(|ip| self.place(ip));
                let Detector { credentials, alerts, changed, clients, places, .. } = self;
                let baseline = &credentials[&key].baseline;
                let mut gather = Gather { alerts, changed, e, key: &key, identity: None };
                novelty(&mut gather, baseline, place.map(|ip| &places[ip]), client.map(|ua| &clients[ua]), e);
            }
        }
    }

    /// The alerts, most severe first, and every credential's baseline.
    pub fn finish(mut self) -> (Vec<Alert>, Vec<(String, Baseline)>) {
        self.judge_pending();
        let mut alerts: Vec<Alert> = self.alerts.iter().map(|(k, d)| to_alert(k, d)).collect();
        alerts.sort_by(|a, b| {
            severity_rank(&b.severity)
                .cmp(&severity_rank(&a.severity))
                .then(a.first_seen.cmp(&b.first_seen))
                .then(a.id.cmp(&b.id))
        });
        let baselines = self.credentials.into_iter().map(|(k, c)| (k, c.baseline)).collect();
        (alerts, baselines)
    }
}

/// New IP, network, country or client compared with a finished baseline.
fn novelty(
    gather: &mut Gather<'_, '_>,
    baseline: &Baseline,
    place: Option<&Place>,
    client: Option<&Client>,
    e: &Event,
) {
    let key = gather.key;
    let full = |set: &BTreeSet<String>| set.len() >= BASELINE_SET_CAP;
    if let (Some(p), Some(ip)) = (place.filter(|p| !p.allowed), &e.source_ip) {
        if !baseline.ips.contains(ip.as_str()) && !full(&baseline.ips) {
            let new_network = !baseline.networks.contains(&*p.network) && !full(&baseline.networks);
            let risky = p.info.hosting || p.info.anonymous;
            let (kind, severity) = match (new_network, risky) {
                (true, true) => ("new_network", "high"),
                (true, false) => ("new_network", "medium"),
                (false, _) => ("new_source_ip", "low"),
            };
            let known: Vec<&str> = baseline.ips.iter().take(5).map(String::as_str).collect();
            let network = p.network.clone();
            let what = describe_place(p);
            gather.add(kind, ip, severity, place, || {
                format!(
                    "credential {key} was used from {ip} ({} {network}{what}), never seen in its baseline of {} events from {}",
                    if new_network { "new network" } else { "known network" },
                    baseline.events,
                    if known.is_empty() { "no IP address".to_string() } else { known.join(", ") }
                )
            });
        }
        if let Some(country) = &p.country {
            if !baseline.countries.is_empty() && !baseline.countries.contains(&**country) {
                let known: Vec<&str> = baseline.countries.iter().map(String::as_str).collect();
                let country = country.clone();
                gather.add("new_country", &country, "medium", place, || {
                    format!(
                        "credential {key} was used from {country} ({ip}), where its baseline of {} events knew only {}",
                        baseline.events,
                        known.join(", ")
                    )
                });
            }
        }
    }
    if let Some(c) = client.filter(|c| !c.allowed && !c.attack_tool) {
        if !baseline.clients.contains(&*c.family) && !full(&baseline.clients) {
            let human = &*c.family == "browser";
            let severity = if human { "high" } else { "medium" };
            let known: Vec<&str> = baseline.clients.iter().map(String::as_str).collect();
            let what = match (human, known.len()) {
                (true, _) => "a browser: a person using a machine credential".to_string(),
                (false, 1) => format!("a different client from the only one it ever used ({})", known[0]),
                (false, _) => "a client it never used".to_string(),
            };
            let family = c.family.clone();
            gather.add("new_user_agent", &family, severity, place, || {
                format!(
                    "credential {key} was used by {what} ({family}), where its baseline of {} events knew {}",
                    baseline.events,
                    if known.is_empty() { "no client".to_string() } else { known.join(", ") }
                )
            });
        }
    }
}

fn describe_place(p: &Place) -> String {
    let mut parts = Vec::new();
    if let Some(org) = &p.info.as_org {
        parts.push(org.clone());
    }
    if let Some(country) = &p.country {
        parts.push(country.to_string());
    }
    if p.info.hosting {
        parts.push("a hosting provider".into());
    }
    if p.info.anonymous {
        parts.push("an anonymising VPN or proxy".into());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(", {}", parts.join(", "))
    }
}

fn insert_capped(set: &mut BTreeSet<String>, value: &str) {
    if set.len() < BASELINE_SET_CAP && !set.contains(value) {
        set.insert(value.to_string());
    }
}

/// Adds the event to a window; when the window holds `threshold` events, empties it and
/// returns them.
fn burst(window: &mut VecDeque<Seen>, e: &Event, since: i64, threshold: usize) -> Option<Vec<Seen>> {
    while window.front().is_some_and(|s| s.time <= since) || window.len() >= WINDOW_CAP {
        window.pop_front();
    }
    window.push_back(Seen::of(e));
    (window.len() >= threshold.max(1)).then(|| window.drain(..).collect())
}

fn operation(e: &Event) -> &str {
    e.action.rsplit(':').next().unwrap_or(&e.action)
}

/// Alerts being gathered for one event, one per (kind, credential, subject).
struct Gather<'g, 'e> {
    alerts: &'g mut FastMap<AlertKey, Draft>,
    changed: &'g mut BTreeSet<AlertKey>,
    e: &'e Event,
    key: &'e str,
    /// The identity of the credential alerted on, when it is not the event's own.
    identity: Option<Option<String>>,
}

impl Gather<'_, '_> {
    fn add(
        &mut self,
        kind: &'static str,
        subject: &str,
        severity: &'static str,
        place: Option<&Place>,
        explain: impl FnOnce() -> String,
    ) {
        let e = self.e;
        let draft = self.draft(kind, subject, severity, e.time, explain);
        if let Some(ip) = &e.source_ip {
            insert_indicator(&mut draft.ips, ip);
        }
        if let Some(p) = place {
            insert_indicator(&mut draft.networks, &p.network);
        }
        if let Some(ua) = &e.user_agent {
            insert_indicator(&mut draft.agents, ua);
        }
        if draft.evidence.len() < EVIDENCE_CAP {
            draft.evidence.push(evidence_id(e));
        }
    }

    /// Adds an event remembered in a window (not the current one).
    fn add_seen(
        &mut self,
        kind: &'static str,
        subject: &str,
        severity: &'static str,
        seen: &Seen,
        explain: impl FnOnce() -> String,
    ) {
        let draft = self.draft(kind, subject, severity, seen.time, explain);
        if let Some(ip) = &seen.ip {
            insert_indicator(&mut draft.ips, ip);
            if let Ok(addr) = ip.parse::<IpAddr>() {
                insert_indicator(&mut draft.networks, &network_label(addr, &IpInfo::default()));
            }
        }
        if let Some(ua) = &seen.user_agent {
            insert_indicator(&mut draft.agents, ua);
        }
        if draft.evidence.len() < EVIDENCE_CAP {
            draft.evidence.push(seen.evidence.clone());
        }
    }

    fn draft(
        &mut self,
        kind: &'static str,
        subject: &str,
        severity: &'static str,
        time: i64,
        explain: impl FnOnce() -> String,
    ) -> &mut Draft {
        let e = self.e;
        let key = (kind, self.key.to_string(), subject.to_string());
        self.changed.insert(key.clone());
        let draft = self.alerts.entry(key).or_insert_with(|| Draft {
            severity,
            platform: e.platform.clone(),
            identity: self.identity.clone().unwrap_or_else(|| e.identity.clone()),
            first: time,
            last: time,
            count: 0,
            ips: BTreeSet::new(),
            networks: BTreeSet::new(),
            agents: BTreeSet::new(),
            explanation: explain(),
            evidence: Vec::new(),
        });
        if severity_rank(severity) > severity_rank(draft.severity) {
            draft.severity = severity;
        }
        draft.first = draft.first.min(time);
        draft.last = draft.last.max(time);
        draft.count += 1;
        draft
    }
}

fn insert_indicator(set: &mut BTreeSet<String>, value: &str) {
    if set.len() < INDICATOR_CAP && !set.contains(value) {
        set.insert(value.to_string());
    }
}

/// Every alert kind, for reading stored alerts back.
const KINDS: &[&str] = &[
    "use_after_revocation",
    "privilege_change",
    "defence_evasion",
    "exposure_change",
    "login_without_mfa",
    "attack_tool",
    "instance_credentials_off_instance",
    "concurrent_networks",
    "new_network",
    "new_source_ip",
    "new_country",
    "new_user_agent",
    "failure_burst",
    "secret_enumeration",
    "bulk_read",
];
const SEVERITIES: &[&str] = &["critical", "high", "medium", "low"];

fn to_alert((kind, credential, subject): &AlertKey, d: &Draft) -> Alert {
    Alert {
        id: alert_id(kind, credential, subject),
        kind: kind.to_string(),
        severity: d.severity.to_string(),
        platform: d.platform.clone(),
        identity: d.identity.clone(),
        credential: credential.clone(),
        subject: subject.clone(),
        first_seen: rfc3339_utc(d.first),
        last_seen: rfc3339_utc(d.last),
        event_count: d.count,
        source_ips: d.ips.iter().cloned().collect(),
        networks: d.networks.iter().cloned().collect(),
        user_agents: d.agents.iter().cloned().collect(),
        explanation: d.explanation.clone(),
        evidence: d.evidence.clone(),
        inventory: None,
    }
}

/// Runs every detector over `events`, sorted here by time, and returns the alerts.
pub fn detect(events: &mut [Event], options: &Options) -> Vec<Alert> {
    events.sort_by_key(|e| e.time);
    let mut detector = Detector::new(options.clone(), None);
    for e in events.iter() {
        detector.observe(e, None);
    }
    detector.finish().0
}

fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        _ => 1,
    }
}

fn fnv(bytes: impl Iterator<Item = u8>) -> u64 {
    // FNV-1a: stable across runs and platforms, unlike the standard hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A stable id: the same alert on the same input has the same id in every run.
fn alert_id(kind: &str, credential: &str, subject: &str) -> String {
    let hash = fnv(kind.bytes().chain([0]).chain(credential.bytes()).chain([0]).chain(subject.bytes()));
    format!("kw-{hash:016x}")
}
