//! Detectors over normalised events. Each credential's baseline is learned from its own
//! early activity (before `--train-until`, or its first events), and what a stolen credential
//! does is flagged against it: new source IPs and networks, new clients (above all a browser
//! or an attack tool on a machine credential), bursts of failures, secret and resource
//! enumeration, privilege changes, changes that blind the defenders or expose data, use from
//! two networks at once, known attack tools, and use after revocation.
//!
//! Nothing here knows a dataset: thresholds are counts per time window, and the only names
//! are AWS API operations that change privileges or read secrets, and well-known attack tools.

use keywatch_model::event::{Event, Outcome};
use keywatch_model::time::rfc3339_utc;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How detection runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events before this time (Unix seconds) form the baselines. Unset: each credential's
    /// first `baseline_events` events do.
    pub train_until: Option<i64>,
    pub baseline_events: usize,
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
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: String,
    pub kind: &'static str,
    pub severity: &'static str,
    pub platform: String,
    pub identity: Option<String>,
    pub credential: String,
    pub first_seen: String,
    pub last_seen: String,
    pub event_count: usize,
    pub source_ips: Vec<String>,
    pub user_agents: Vec<String>,
    pub explanation: String,
    /// Event ids, or `file:line#record` for records without one.
    pub evidence: Vec<String>,
}

/// The operations that give a principal more power, or a new way in.
const PRIVILEGE_CHANGES: &[&str] = &[
    "AddUserToGroup",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "AttachGroupPolicy",
    "PutUserPolicy",
    "PutRolePolicy",
    "PutGroupPolicy",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "UpdateAssumeRolePolicy",
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "CreateUser",
    "CreateRole",
];

/// Operations that blind the defenders: audit logging, flow logs, organisation guardrails.
const DEFENCE_EVASION: &[&str] = &[
    "StopLogging",
    "DeleteTrail",
    "UpdateTrail",
    "PutEventSelectors",
    "PutBucketLifecycle",
    "DeleteFlowLogs",
    "LeaveOrganization",
    "DeleteDetector",
    "DisableSecurityHub",
    "DeleteConfigurationRecorder",
    "StopConfigurationRecorder",
];

/// Operations that hand data or a way in to another account or the internet: sharing
/// snapshots and images, opening bucket policies and security groups, replacing code that
/// runs with the account's privileges, trusting outside certificate authorities.
const EXPOSURE_CHANGES: &[&str] = &[
    "ModifySnapshotAttribute",
    "ModifyImageAttribute",
    "ModifyDBSnapshotAttribute",
    "ModifyDBClusterSnapshotAttribute",
    "PutBucketPolicy",
    "PutBucketAcl",
    "AuthorizeSecurityGroupIngress",
    "UpdateFunctionCode",
    "UpdateFunctionCode20150331v2",
    "AddPermission",
    "AddPermission20150331v2",
    "CreateTrustAnchor",
    "CreateProfile",
];

/// Reads of stored secrets.
const SECRET_READS: &[&str] = &[
    "GetSecretValue",
    "ListSecrets",
    "BatchGetSecretValue",
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "GetPasswordData",
];

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

/// A client that runs on a person's computer: a browser, or a CLI or SDK reporting macOS or
/// Windows as its platform.
fn desktop_client(user_agent: &str) -> bool {
    client_family(user_agent) == "browser" || user_agent.contains("Darwin/") || user_agent.contains("Windows")
}

fn attack_tool(family: &str, user_agent: &str) -> bool {
    let lower = user_agent.to_ascii_lowercase();
    ATTACK_TOOLS.iter().any(|t| family.contains(t) || lower.contains(t))
}

/// The /24 (IPv4) or /48 (IPv6) network of an address: without an ASN database, the unit of
/// "a new network".
pub fn network_of(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        Err(_) => ip.to_string(),
    }
}

/// The key a credential's behaviour is tracked under. Session credentials (`ASIA…`) are
/// short-lived and reissued every hour to the same workload: they are tracked by their role
/// session (for an instance profile, the instance), so a copy of the instance's credentials
/// is compared with what the instance itself does.
fn credential_key(e: &Event) -> Option<String> {
    match (&e.credential, &e.session) {
        (Some(key), Some(session)) if key.starts_with("ASIA") => Some(session.clone()),
        (Some(key), _) => Some(key.clone()),
        (None, Some(session)) => Some(session.clone()),
        (None, None) => e.identity.clone(),
    }
}

fn evidence_id(e: &Event) -> String {
    e.event_id.clone().unwrap_or_else(|| format!("{}:{}#{}", e.raw.file, e.raw.line, e.raw.record))
}

fn operation(e: &Event) -> &str {
    e.action.rsplit(':').next().unwrap_or(&e.action)
}

/// What a credential did in its baseline.
#[derive(Default)]
struct Baseline {
    events: usize,
    ips: BTreeSet<String>,
    networks: BTreeSet<String>,
    clients: BTreeSet<String>,
}

/// Alerts being gathered, one per (kind, credential, subject).
struct Gather {
    alerts: BTreeMap<(&'static str, String, String), Draft>,
}

struct Draft {
    severity: &'static str,
    platform: String,
    identity: Option<String>,
    first: i64,
    last: i64,
    count: usize,
    ips: BTreeSet<String>,
    agents: BTreeSet<String>,
    explanation: String,
    evidence: Vec<String>,
}

impl Gather {
    fn add(
        &mut self,
        kind: &'static str,
        credential: &str,
        subject: &str,
        severity: &'static str,
        e: &Event,
        explain: impl FnOnce() -> String,
    ) {
        let draft = self.alerts.entry((kind, credential.to_string(), subject.to_string())).or_insert_with(|| Draft {
            severity,
            platform: e.platform.clone(),
            identity: e.identity.clone(),
            first: e.time,
            last: e.time,
            count: 0,
            ips: BTreeSet::new(),
            agents: BTreeSet::new(),
            explanation: explain(),
            evidence: Vec::new(),
        });
        draft.first = draft.first.min(e.time);
        draft.last = draft.last.max(e.time);
        draft.count += 1;
        if let Some(ip) = &e.source_ip {
            draft.ips.insert(ip.clone());
        }
        if let Some(ua) = &e.user_agent {
            draft.agents.insert(ua.clone());
        }
        // Enough evidence to find the events; the count says how many there were.
        if draft.evidence.len() < 200 {
            draft.evidence.push(evidence_id(e));
        }
    }
}

/// Runs every detector over `events` (sorted here by time) and returns the alerts, most
/// severe first.
pub fn detect(events: &mut [Event], options: &Options) -> Vec<Alert> {
    events.sort_by_key(|e| e.time);
    let mut baselines: HashMap<String, Baseline> = HashMap::new();
    let mut gather = Gather { alerts: BTreeMap::new() };
    // Per credential: recent failures, secret reads and reads, for the window detectors.
    let mut failures: HashMap<String, Vec<usize>> = HashMap::new();
    let mut secret_reads: HashMap<String, Vec<usize>> = HashMap::new();
    let mut reads: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    let mut baseline_peak: HashMap<String, usize> = HashMap::new();
    let mut places: HashMap<String, Vec<(i64, String, Option<String>)>> = HashMap::new();

    for index in 0..events.len() {
        let e = &events[index];
        let Some(key) = credential_key(e) else { continue };
        let client = e.user_agent.as_deref().map(client_family);
        let baseline = baselines.entry(key.clone()).or_default();
        let training = match options.train_until {
            Some(until) => e.time < until,
            None => baseline.events < options.baseline_events,
        };

        if let Some(at) = e.credential.as_ref().and_then(|c| options.revoked.get(c)) {
            if at.is_none_or(|t| e.time >= t) {
                let when = at.map(rfc3339_utc).unwrap_or_else(|| "an unknown time".into());
                gather.add("use_after_revocation", &key, "", "critical", e, || {
                    format!("credential {key} was revoked, deleted or rotated at {when}, and is still being used")
                });
            }
        }

        if e.outcome == Outcome::Success && PRIVILEGE_CHANGES.contains(&operation(e)) {
            let target = e.resource.clone().unwrap_or_default();
            let op = operation(e).to_string();
            gather.add("privilege_change", &key, &op, "high", e, || {
                format!(
                    "credential {key} called {op}{}: a change of privileges or a new way in",
                    if target.is_empty() { String::new() } else { format!(" (first on {target})") }
                )
            });
        }

        if let (Some(c), Some(ua)) = (&client, &e.user_agent) {
            if attack_tool(c, ua) {
                // A signature, not a deviation: it counts even in a baseline.
                gather.add("attack_tool", &key, c, "high", e, || {
                    format!("credential {key} was used by {c}, an attack or penetration-testing tool")
                });
            }
        }

        // An instance's role session is the instance's own: a desktop client means a copy.
        if let (Some(session), Some(ua)) = (&e.session, &e.user_agent) {
            if instance_session(session) && desktop_client(ua) {
                let instance = session.rsplit('/').next().unwrap_or(session).to_string();
                gather.add("instance_credentials_off_instance", &key, "", "high", e, || {
                    format!(
                        "the role credentials of instance {instance} were used by a desktop client ({}): \
                         instance credentials are only ever used on the instance",
                        client.as_deref().unwrap_or("unknown")
                    )
                });
            }
        }

        // Several networks within minutes: one credential in two places at once.
        if let Some(ip) = &e.source_ip {
            let network = network_of(ip);
            let recent = places.entry(key.clone()).or_default();
            recent.retain(|(t, _, _)| *t > e.time - options.concurrency_window);
            let elsewhere: Vec<&(i64, String, Option<String>)> =
                recent.iter().filter(|(_, n, _)| *n != network).collect();
            if let Some((_, other, other_client)) = elsewhere.first() {
                let other_client = other_client.clone();
                let different_client = other_client.is_some() && client.is_some() && other_client != client;
                let severity = if different_client { "high" } else { "medium" };
                let other = other.clone();
                gather.add("concurrent_networks", &key, "", severity, e, || {
                    format!(
                        "credential {key} was used from {network} ({}) within {} s of use from {other} ({}){}",
                        client.as_deref().unwrap_or("unknown client"),
                        options.concurrency_window,
                        other_client.as_deref().unwrap_or("unknown client"),
                        if different_client {
                            ": a second copy of it, in another place and another client"
                        } else {
                            ""
                        }
                    )
                });
            }
            recent.push((e.time, network, client.clone()));
            if recent.len() > 64 {
                recent.remove(0);
            }
        }

        if e.outcome == Outcome::Success {
            let op = operation(e);
            let (kind, what) = if DEFENCE_EVASION.contains(&op) {
                ("defence_evasion", "weakens logging or guardrails")
            } else if EXPOSURE_CHANGES.contains(&op) {
                ("exposure_change", "shares data or opens access beyond the account")
            } else {
                ("", "")
            };
            if !kind.is_empty() {
                let op = op.to_string();
                let target = e.resource.clone();
                gather.add(kind, &key, &op, "high", e, || {
                    format!(
                        "credential {key} called {op}{}, which {what}",
                        target.map(|t| format!(" on {t}")).unwrap_or_default()
                    )
                });
            }
        }

        if training {
            baseline.events += 1;
            if let Some(ip) = &e.source_ip {
                baseline.ips.insert(ip.clone());
                baseline.networks.insert(network_of(ip));
            }
            if let Some(c) = &client {
                baseline.clients.insert(c.clone());
            }
        } else if baseline.events > 0 {
            if let Some(ip) = &e.source_ip {
                if !baseline.ips.contains(ip) {
                    let network = network_of(ip);
                    let new_network = !baseline.networks.contains(&network);
                    let known: Vec<&String> = baseline.ips.iter().take(5).collect();
                    let (kind, severity) =
                        if new_network { ("new_network", "medium") } else { ("new_source_ip", "low") };
                    gather.add(kind, &key, ip, severity, e, || {
                        format!(
                            "credential {key} was used from {ip} ({}), never seen in its baseline of {} events from {}",
                            if new_network {
                                format!("new network {network}")
                            } else {
                                format!("known network {network}")
                            },
                            baseline.events,
                            if known.is_empty() {
                                "no IP address".to_string()
                            } else {
                                known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                            }
                        )
                    });
                }
            }
            if let (Some(c), Some(ua)) = (&client, &e.user_agent) {
                if !baseline.clients.contains(c) && !attack_tool(c, ua) {
                    let human = c == "browser";
                    let severity = if human { "high" } else { "medium" };
                    let what =
                        if human { "a browser: a person using a machine credential" } else { "a client it never used" };
                    let known: Vec<&str> = baseline.clients.iter().map(String::as_str).collect();
                    gather.add("new_user_agent", &key, c, severity, e, || {
                        format!(
                            "credential {key} was used by {what} ({c}), where its baseline of {} events knew only {}",
                            baseline.events,
                            if known.is_empty() { "no client".to_string() } else { known.join(", ") }
                        )
                    });
                }
            }
        }

        // Window detectors: indexes of the events of this credential within the window.
        let since = e.time - options.window;
        if e.outcome == Outcome::Failure {
            let list = failures.entry(key.clone()).or_default();
            list.push(index);
            list.retain(|&i| events[i].time > since);
            if list.len() >= options.failure_burst {
                let n = list.len();
                for &i in list.iter() {
                    gather.add("failure_burst", &key, "", "medium", &events[i], || {
                        format!(
                            "credential {key} made {n} failed calls within {} s: probing what it is allowed to do",
                            options.window
                        )
                    });
                }
                list.clear();
            }
        }
        if SECRET_READS.contains(&operation(e)) {
            let list = secret_reads.entry(key.clone()).or_default();
            list.push(index);
            list.retain(|&i| events[i].time > since);
            if list.len() >= options.secret_reads {
                let n = list.len();
                for &i in list.iter() {
                    gather.add("secret_enumeration", &key, "", "high", &events[i], || {
                        format!("credential {key} read or listed secrets {n} times within {} s", options.window)
                    });
                }
                list.clear();
            }
        }
        if e.read_only == Some(true) {
            let list = reads.entry(key.clone()).or_default();
            list.push((e.time, format!("{} {}", e.action, e.resource.as_deref().unwrap_or(""))));
            list.retain(|(t, _)| *t > since);
            let distinct: BTreeSet<&String> = list.iter().map(|(_, r)| r).collect();
            let peak = baseline_peak.entry(key.clone()).or_default();
            if training {
                *peak = (*peak).max(distinct.len());
            } else if distinct.len() >= options.distinct_resources.max(*peak * 3) {
                let n = distinct.len();
                let base = *peak;
                gather.add("bulk_read", &key, "", "medium", e, || {
                    format!(
                        "credential {key} read {n} distinct resources within {} s; its baseline peak was {base}",
                        options.window
                    )
                });
            }
        }
    }

    let mut alerts: Vec<Alert> = gather
        .alerts
        .into_iter()
        .map(|((kind, credential, subject), d)| Alert {
            id: alert_id(kind, &credential, &subject),
            kind,
            severity: d.severity,
            platform: d.platform,
            identity: d.identity,
            credential,
            first_seen: rfc3339_utc(d.first),
            last_seen: rfc3339_utc(d.last),
            event_count: d.count,
            source_ips: d.ips.into_iter().collect(),
            user_agents: d.agents.into_iter().collect(),
            explanation: d.explanation,
            evidence: d.evidence,
        })
        .collect();
    alerts.sort_by(|a, b| {
        severity_rank(b.severity).cmp(&severity_rank(a.severity)).then(a.first_seen.cmp(&b.first_seen))
    });
    alerts
}

fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        _ => 1,
    }
}

/// A stable id: the same alert on the same input has the same id in every run.
fn alert_id(kind: &str, credential: &str, subject: &str) -> String {
    // FNV-1a: stable across runs and platforms, unlike the standard hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain([0]).chain(credential.bytes()).chain([0]).chain(subject.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("kw-{hash:016x}")
}
