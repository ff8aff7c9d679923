//! The detectors on event sequences shaped like real thefts: an instance's session
//! credentials used from a laptop, an attack tool, probing bursts, secret enumeration,
//! privilege changes, and a deleted key used again.

use keywatch_activity::detect::{client_family, detect, network_of, Options};
use keywatch_model::event::{Category, Event, Outcome, RawRef};
use std::collections::HashMap;

const T0: i64 = 1_688_990_000;

fn event(n: u64, t: i64, key: &str, ip: &str, ua: &str, action: &str) -> Event {
    Event {
        time: T0 + t,
        platform: "aws".into(),
        event_id: Some(format!("ev-{n}")),
        identity: Some("arn:aws:iam::123456789012:role/app".into()),
        credential: Some(key.into()),
        session: None,
        source_ip: Some(ip.into()),
        via_service: None,
        user_agent: Some(ua.into()),
        action: format!("ec2.amazonaws.com:{action}"),
        resource: None,
        outcome: Outcome::Success,
        error: None,
        read_only: Some(true),
        category: category(action),
        raw: RawRef { file: "t.json".into(), line: 0, record: n },
    }
}

/// What the CloudTrail reader says these operations are.
fn category(action: &str) -> Option<Category> {
    match action {
        "GetPasswordData" | "GetSecretValue" => Some(Category::SecretRead),
        "AttachUserPolicy" => Some(Category::PrivilegeChange),
        "StopLogging" => Some(Category::DefenceEvasion),
        "ModifySnapshotAttribute" => Some(Category::ExposureChange),
        _ => None,
    }
}

const SSM: &str = "amazon-ssm-agent/3.2.582.0";
const GO: &str = "aws-sdk-go-v2/1.17.1 os/linux lang/go/1.20 md/GOOS/linux";

/// Twelve calls of the instance's own agent, then the same session key from elsewhere.
fn stolen_session() -> Vec<Event> {
    let mut events: Vec<Event> = (0..12)
        .map(|n| event(n, n as i64 * 30, "ASIAEXAMPLESESSION01", "3.225.16.109", SSM, "DescribeInstances"))
        .collect();
    events.push(event(100, 900, "ASIAEXAMPLESESSION01", "192.168.10.20", GO, "GetCallerIdentity"));
    events.push(event(101, 901, "ASIAEXAMPLESESSION01", "192.168.10.20", GO, "DescribeInstances"));
    events
}

#[test]
fn session_credentials_used_from_a_new_network_with_a_new_client() {
    let mut events = stolen_session();
    let alerts = detect(&mut events, &Options::default());
    let kinds: Vec<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
    assert!(kinds.contains(&"new_network") && kinds.contains(&"new_user_agent"), "{kinds:?}");
    let network = alerts.iter().find(|a| a.kind == "new_network").unwrap();
    assert_eq!(network.source_ips, ["192.168.10.20"]);
    assert_eq!(network.event_count, 2);
    assert_eq!(network.evidence, ["ev-100", "ev-101"]);
    assert!(network.explanation.contains("3.225.16.109"), "{}", network.explanation);
    // The baseline alone raises nothing.
    let mut quiet: Vec<Event> = stolen_session().into_iter().take(12).collect();
    assert!(detect(&mut quiet, &Options::default()).is_empty());
}

#[test]
fn a_training_cutoff_and_out_of_order_input() {
    let mut events = stolen_session();
    events.reverse();
    let options = Options { train_until: Some(T0 + 600), ..Options::default() };
    let alerts = detect(&mut events, &options);
    assert!(alerts.iter().any(|a| a.kind == "new_network"), "sorted by time before learning");
    // Everything in training: no novelty.
    let options = Options { train_until: Some(T0 + 10_000), ..Options::default() };
    assert!(detect(&mut stolen_session(), &options).iter().all(|a| a.kind != "new_network"));
}

#[test]
fn attack_tools_and_browsers_are_high_severity() {
    let mut events = stolen_session();
    events.push(event(
        200,
        1000,
        "ASIAEXAMPLESESSION01",
        "3.225.16.109",
        "stratus-red-team_83a5b1",
        "DescribeInstances",
    ));
    events.push(event(
        201,
        1001,
        "ASIAEXAMPLESESSION01",
        "3.225.16.109",
        "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
        "DescribeInstances",
    ));
    let alerts = detect(&mut events, &Options::default());
    let tool = alerts.iter().find(|a| a.kind == "attack_tool").unwrap();
    assert_eq!(tool.severity, "high");
    let browser = alerts.iter().find(|a| a.explanation.contains("browser")).unwrap();
    assert_eq!(browser.severity, "high");
    assert_eq!(client_family("[aws-cli/2.13.0 Python/3.11.4 Darwin/22.5.0]"), "aws-cli");
    assert_eq!(network_of("192.168.10.20"), "192.168.10.0/24");
}

#[test]
fn bursts_of_failures_and_secret_reads() {
    let mut events = stolen_session();
    for n in 0..29 {
        let mut e =
            event(300 + n, 1200 + (n as i64 / 10), "ASIAEXAMPLESESSION01", "3.225.16.109", SSM, "GetPasswordData");
        e.outcome = Outcome::Failure;
        e.error = Some("Client.UnauthorizedOperation".into());
        events.push(e);
    }
    for n in 0..20 {
        events.push(event(400 + n, 1300 + (n as i64 / 8), "AKIAEXAMPLEKEY000001", "3.1.1.1", GO, "GetSecretValue"));
    }
    let alerts = detect(&mut events, &Options::default());
    let failures = alerts.iter().find(|a| a.kind == "failure_burst").expect("failure burst");
    assert!(failures.event_count >= 10, "{failures:?}");
    let secrets = alerts
        .iter()
        .find(|a| a.kind == "secret_enumeration" && a.credential == "AKIAEXAMPLEKEY000001")
        .expect("secret enumeration");
    assert_eq!(secrets.severity, "high");
    // Trying to read instance passwords over and over is an enumeration too, failed or not.
    assert!(alerts.iter().any(|a| a.kind == "secret_enumeration" && a.credential == "ASIAEXAMPLESESSION01"));
    // Nine failures in a minute are not a burst.
    let mut few: Vec<Event> = (0..9)
        .map(|n| {
            let mut e = event(n, n as i64, "AKIAQUIET00000000001", "3.1.1.1", GO, "GetPasswordData");
            e.outcome = Outcome::Failure;
            e
        })
        .collect();
    assert!(detect(&mut few, &Options::default()).iter().all(|a| a.kind != "failure_burst"));
}

#[test]
fn privilege_changes_and_use_after_revocation() {
    let mut events = stolen_session();
    let mut attach = event(500, 1500, "AKIAEXAMPLEKEY000001", "3.1.1.1", GO, "AttachUserPolicy");
    attach.action = "iam.amazonaws.com:AttachUserPolicy".into();
    attach.resource = Some("ci-deployer".into());
    attach.read_only = Some(false);
    events.push(attach.clone());
    let mut denied = attach;
    denied.event_id = Some("ev-501".into());
    denied.outcome = Outcome::Failure;
    events.push(denied);
    events.push(event(600, 1600, "AKIADELETED000000001", "3.1.1.1", GO, "ListBuckets"));
    events.push(event(601, 100, "AKIADELETED000000001", "3.1.1.1", GO, "ListBuckets"));
    let revoked = HashMap::from([("AKIADELETED000000001".to_string(), Some(T0 + 1000))]);
    let alerts = detect(&mut events, &Options { revoked, ..Options::default() });
    let change = alerts.iter().find(|a| a.kind == "privilege_change").unwrap();
    assert_eq!(change.evidence, ["ev-500"], "a denied attempt changed nothing");
    let after = alerts.iter().find(|a| a.kind == "use_after_revocation").unwrap();
    assert_eq!((after.severity.as_str(), after.evidence.as_slice()), ("critical", &["ev-600".to_string()][..]));
    assert_eq!(alerts[0].kind, "use_after_revocation", "most severe first");
    // Ids are stable from run to run.
    let again = detect(&mut stolen_session(), &Options::default());
    let first = detect(&mut stolen_session(), &Options::default());
    assert_eq!(again.iter().map(|a| &a.id).collect::<Vec<_>>(), first.iter().map(|a| &a.id).collect::<Vec<_>>());
}

#[test]
fn instance_role_sessions_are_tracked_by_session_and_watched_for_copies() {
    let session = "arn:aws:sts::123456789012:assumed-role/app-role/i-0dbc91f429e48eeed";
    let on_instance = |n: u64, t: i64, key: &str| {
        let mut e =
            event(n, t, key, "3.225.16.109", "aws-sdk-go/1.41.4 (go1.18.3; linux; amd64)", "UpdateInstanceInformation");
        e.session = Some(session.into());
        e
    };
    let mut events = vec![on_instance(1, 0, "ASIAAGENTKEY00000001"), on_instance(2, 1, "ASIAAGENTKEY00000001")];
    // A different session key of the same instance role session, from elsewhere, six seconds later.
    let mut stolen = event(3, 7, "ASIASTOLENKEY0000001", "192.168.10.20", GO, "GetCallerIdentity");
    stolen.session = Some(session.into());
    events.push(stolen);
    let mut laptop = event(
        4,
        60,
        "ASIASTOLENKEY0000001",
        "1.2.3.4",
        "[aws-cli/1.18.136 Python/3.8.5 Darwin/19.6.0 botocore/1.17.59]",
        "ListBuckets",
    );
    laptop.session = Some(session.into());
    events.push(laptop);
    let alerts = detect(&mut events, &Options::default());
    let copy = alerts.iter().find(|a| a.kind == "concurrent_networks").expect("two places at once");
    assert_eq!(
        (copy.severity.as_str(), copy.credential.as_str()),
        ("high", session),
        "another client too, tracked by session"
    );
    assert!(copy.source_ips.contains(&"192.168.10.20".to_string()));
    let off = alerts.iter().find(|a| a.kind == "instance_credentials_off_instance").expect("desktop client");
    assert_eq!(off.evidence, ["ev-4"]);
    // The instance's own calls raise nothing.
    let mut own = vec![on_instance(1, 0, "ASIAAGENTKEY00000001"), on_instance(2, 400, "ASIAAGENTKEY00000002")];
    assert!(detect(&mut own, &Options::default()).is_empty());
}

#[test]
fn logging_turned_off_and_snapshots_shared() {
    let mut events = stolen_session();
    let mut stop = event(700, 2000, "AKIAEXAMPLEKEY000001", "3.1.1.1", GO, "StopLogging");
    stop.action = "cloudtrail.amazonaws.com:StopLogging".into();
    stop.resource = Some("arn:aws:cloudtrail:us-east-1:123456789012:trail/main".into());
    events.push(stop);
    let mut share = event(701, 2001, "AKIAEXAMPLEKEY000001", "3.1.1.1", GO, "ModifySnapshotAttribute");
    share.read_only = Some(false);
    events.push(share.clone());
    let mut failed = share;
    failed.event_id = Some("ev-702".into());
    failed.outcome = Outcome::Failure;
    events.push(failed);
    let alerts = detect(&mut events, &Options::default());
    let evasion = alerts.iter().find(|a| a.kind == "defence_evasion").expect("logging stopped");
    assert!(
        evasion.explanation.contains("StopLogging") && evasion.explanation.contains("trail/main"),
        "{}",
        evasion.explanation
    );
    let exposure = alerts.iter().find(|a| a.kind == "exposure_change").expect("snapshot shared");
    assert_eq!(exposure.evidence, ["ev-701"], "a refused call exposed nothing");
}
