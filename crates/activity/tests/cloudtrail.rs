use std::io::Write;
use std::path::Path;

use keywatch_activity::read::{read, read_file, ReadError, ReadStats, Sources};
use keywatch_model::event::{Event, Outcome};
use serde_json::json;

fn iam_user_event() -> serde_json::Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/alice",
            "accountId": "123456789012", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "userName": "alice"
        },
        "eventTime": "2024-05-01T12:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateAccessKey",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "[aws-cli/2.15.0 Python/3.11]",
        "requestParameters": {"userName": "bob"},
        "eventID": "11111111-1111-1111-1111-111111111111",
        "readOnly": false
    })
}

fn assumed_role_event() -> serde_json::Value {
    json!({
        "userIdentity": {
            "type": "AssumedRole", "principalId": "AROAEXAMPLE:sess",
            "arn": "arn:aws:sts::123456789012:assumed-role/Admin/sess",
            "accountId": "123456789012", "accessKeyId": "ASIAEXAMPLEEXAMPLE01",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::123456789012:role/Admin", "userName": "Admin"},
                "attributes": {"creationDate": "2024-05-01T11:00:00Z", "mfaAuthenticated": "false"}
            }
        },
        "eventTime": "2024-05-01T12:05:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "sourceIPAddress": "2001:db8::1",
        "userAgent": "Boto3/1.34",
        "errorCode": "AccessDenied",
        "resources": [{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::secret-bucket/key.txt"}],
        "requestParameters": {"bucketName": "secret-bucket"},
        "eventID": "22222222-2222-2222-2222-222222222222",
        "readOnly": "true"
    })
}

fn service_event() -> serde_json::Value {
    json!({
        "userIdentity": {
            "type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/Ec2Role/i-0abc",
            "accessKeyId": "", "invokedBy": "ec2.amazonaws.com",
            "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::123456789012:role/Ec2Role"}}
        },
        "eventTime": "2024-05-01T12:10:00.123Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "sourceIPAddress": "ec2.amazonaws.com",
        "userAgent": "ec2.amazonaws.com",
        "requestParameters": {"instancesSet": {"items": [{"instanceId": "i-0123456789abcdef0"}]}},
        "eventID": "33333333-3333-3333-3333-333333333333"
    })
}

fn records_file() -> String {
    json!({"Records": [iam_user_event(), assumed_role_event(), service_event()]}).to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn write(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    path
}

fn collect_file(path: &Path) -> (anyhow::Result<ReadStats>, Vec<Event>, Vec<ReadError>) {
    let (mut events, mut errors) = (Vec::new(), Vec::new());
    let res = read_file(path, &Sources::default(), &mut (|e| events.push(e), |e| errors.push(e)));
    (res, events, errors)
}

fn collect(data: &[u8]) -> (anyhow::Result<ReadStats>, Vec<Event>, Vec<ReadError>) {
    let (mut events, mut errors) = (Vec::new(), Vec::new());
    let res = read(data, "input.json", &Sources::default(), &mut (|e| events.push(e), |e| errors.push(e)));
    (res, events, errors)
}

fn check_three(events: &[Event]) {
    assert_eq!(events.len(), 3);
    let a = &events[0];
    assert_eq!(a.platform, "aws");
    assert_eq!(a.time, 1_714_564_800);
    assert_eq!(a.identity.as_deref(), Some("arn:aws:iam::123456789012:user/alice"));
    assert_eq!(a.credential.as_deref(), Some("AKIAIOSFODNN7EXAMPLE"));
    assert_eq!(a.session, None);
    assert_eq!(a.source_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(a.via_service, None);
    assert_eq!(a.user_agent.as_deref(), Some("aws-cli/2.15.0 Python/3.11"));
    assert_eq!(a.action, "iam.amazonaws.com:CreateAccessKey");
    assert_eq!(a.resource.as_deref(), Some("bob"));
    assert_eq!(a.outcome, Outcome::Success);
    assert_eq!(a.read_only, Some(false));
    assert_eq!(a.event_id.as_deref(), Some("11111111-1111-1111-1111-111111111111"));

    let b = &events[1];
    assert_eq!(b.identity.as_deref(), Some("arn:aws:iam::123456789012:role/Admin"));
    assert_eq!(b.session.as_deref(), Some("arn:aws:sts::123456789012:assumed-role/Admin/sess"));
    assert_eq!(b.credential.as_deref(), Some("ASIAEXAMPLEEXAMPLE01"));
    assert_eq!(b.source_ip.as_deref(), Some("2001:db8::1"));
    assert_eq!(b.outcome, Outcome::Failure);
    assert_eq!(b.error.as_deref(), Some("AccessDenied"));
    assert_eq!(b.resource.as_deref(), Some("arn:aws:s3:::secret-bucket/key.txt"));
    assert_eq!(b.read_only, Some(true));

    let c = &events[2];
    assert_eq!(c.source_ip, None);
    assert_eq!(c.via_service.as_deref(), Some("ec2.amazonaws.com"));
    assert_eq!(c.credential, None);
    assert_eq!(c.identity.as_deref(), Some("arn:aws:iam::123456789012:role/Ec2Role"));
    assert_eq!(c.resource.as_deref(), Some("i-0123456789abcdef0"));
    assert_eq!(c.time, 1_714_565_400);
    assert_eq!(c.read_only, None);
}

#[test]
fn records_file_plain() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "trail.json", records_file().as_bytes());
    let (res, events, errors) = collect_file(&path);
    let stats = res.unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    check_three(&events);
    assert_eq!(stats.events, 3);
    assert_eq!(stats.errors, 0);
    assert_eq!(stats.bytes, records_file().len() as u64);
    assert_eq!(events[0].raw.line, 0);
    assert_eq!((events[0].raw.record, events[1].raw.record), (1, 2));
    assert!(events[0].raw.file.ends_with("trail.json"));
}

#[test]
fn records_file_gzip_with_bom_and_other_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"\xef\xbb\xbf\n ".to_vec();
    data.extend_from_slice(records_file().as_bytes());
    let path = write(&dir, "trail.json", &gzip(&data));
    let (res, events, errors) = collect_file(&path);
    assert_eq!(res.unwrap().events, 3);
    assert!(errors.is_empty(), "{errors:?}");
    check_three(&events);
}

#[test]
fn json_lines_with_broken_line() {
    let text =
        format!("{}\n\n{{\"eventTime\": broken\n{}\r\n{}\n", iam_user_event(), assumed_role_event(), service_event());
    let (res, events, errors) = collect(text.as_bytes());
    let stats = res.unwrap();
    check_three(&events);
    assert_eq!((stats.events, stats.errors), (3, 1));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 3);
    assert_eq!(errors[0].file, "input.json");
    assert_eq!(events[1].raw.line, 4);
    assert_eq!(errors[0].record, 2);
    assert_eq!(events[1].raw.record, 3);
    assert_eq!(events[2].raw.line, 5);
}

#[test]
fn logstash_line_with_timestamp() {
    let mut v = iam_user_event();
    let obj = v.as_object_mut().unwrap();
    obj.remove("eventTime");
    obj.insert("@timestamp".into(), json!("2020-09-14T00:44:23.000Z"));
    obj.insert("@version".into(), json!("1"));
    let (res, events, errors) = collect(format!("{v}\n").as_bytes());
    assert_eq!(res.unwrap().events, 1);
    assert!(errors.is_empty());
    assert_eq!(events[0].time, 1_600_044_263);
}

#[test]
fn lookup_events_output_and_concatenated_pages() {
    let page = |evs: Vec<serde_json::Value>, token: bool| {
        let items: Vec<_> = evs
            .iter()
            .map(|e| json!({"EventId": e["eventID"], "EventName": e["eventName"], "CloudTrailEvent": e.to_string()}))
            .collect();
        let mut p = json!({"Events": items});
        if token {
            p["NextToken"] = json!("abc");
        }
        serde_json::to_string_pretty(&p).unwrap()
    };
    let text = format!(
        "{}\n{}\n",
        page(vec![iam_user_event(), assumed_role_event()], true),
        page(vec![service_event()], false)
    );
    let (res, events, errors) = collect(text.as_bytes());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(res.unwrap().events, 3);
    check_three(&events);
}

#[test]
fn truncated_gzip_keeps_events_before_cut() {
    let records: Vec<_> = (0..2000)
        .map(|i| {
            let mut e = iam_user_event();
            e["eventID"] = json!(format!("id-{i}-{}", i * 7919 % 1000));
            e
        })
        .collect();
    let data = gzip(json!({"Records": records}).to_string().as_bytes());
    let cut = &data[..data.len() / 2];
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "cut.json.gz", cut);
    let (res, events, errors) = collect_file(&path);
    let stats = res.unwrap();
    assert!(!events.is_empty() && events.len() < 2000, "{}", events.len());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(stats.errors, 1);
    assert_eq!(errors[0].record, events.len() as u64 + 1);
}

#[test]
fn truncated_json_document() {
    let text = records_file();
    let cut = &text[..text.len() - 40];
    let (res, events, errors) = collect(cut.as_bytes());
    assert!(res.is_ok());
    assert_eq!(events.len(), 2);
    assert_eq!(errors.len(), 1);
}

#[test]
fn missing_event_name_is_reported_and_skipped() {
    let mut bad = assumed_role_event();
    bad.as_object_mut().unwrap().remove("eventName");
    let mut wrong = service_event();
    wrong["eventSource"] = json!(42);
    let text = json!({"Records": [iam_user_event(), bad, wrong, service_event()]}).to_string();
    let (res, events, errors) = collect(text.as_bytes());
    let stats = res.unwrap();
    assert_eq!((stats.events, stats.errors), (2, 2));
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].raw.record, 4);
    assert_eq!(errors[0].record, 2);
    assert!(errors[0].message.contains("eventName"), "{}", errors[0].message);
    assert_eq!(errors[1].record, 3);
    assert!(errors[1].message.contains("eventSource"), "{}", errors[1].message);
}

#[test]
fn not_json_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "junk.json", b"\x00\x01\x02binary stuff\xff");
    let (res, events, _) = collect_file(&path);
    let err = res.unwrap_err().to_string();
    assert!(err.contains("junk.json"), "{err}");
    assert!(events.is_empty());
    let (res, _, _) = collect(b"hello world\n");
    assert!(res.is_err());
}

#[test]
fn real_datasets() {
    let dir = Path::new("/work/shared/datasets/cloudtrail/invictus-aws-stratus/CloudTrail");
    if dir.is_dir() {
        let (mut events, mut errors) = (0u64, 0u64);
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let mut sink = (
                    |_| events += 1,
                    |e: ReadError| {
                        eprintln!("{e}");
                        errors += 1
                    },
                );
                let stats = read_file(&path, &Sources::default(), &mut sink).unwrap();
                assert_eq!(stats.errors, 0);
            }
        }
        assert_eq!((events, errors), (2900, 0));
    } else {
        println!("skipped: {} not present", dir.display());
    }
    let file = Path::new(
        "/work/shared/datasets/cloudtrail/otrf-ec2-proxy-s3-exfil/ec2_proxy_s3_exfiltration_2020-09-14011940.json",
    );
    if file.is_file() {
        let (res, events, errors) = collect_file(file);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(res.unwrap().events, 103);
        assert_eq!(events.len(), 103);
        assert!(events.iter().all(|e| e.time > 1_599_000_000));
    } else {
        println!("skipped: {} not present", file.display());
    }
}

/// Every record read by the fast path (borrowed fields from the line) gives exactly the event
/// of the slow path (a parsed `Value`): on the three shapes here, on variants with awkward
/// types, and on every record of the real datasets when they are present.
#[test]
fn fast_path_matches_slow_path() {
    use keywatch_activity::cloudtrail::{fast_event, to_event};
    use keywatch_model::event::RawRef;
    let raw = || RawRef { file: "f".into(), line: 1, record: 0 };
    let mut records = vec![iam_user_event(), assumed_role_event(), service_event()];
    let mut odd = iam_user_event();
    odd["readOnly"] = json!("TRUE");
    odd["resources"] = json!([{"ARN": null, "arn": "arn:aws:s3:::b"}, {"arn": "arn:aws:s3:::c"}]);
    odd["requestParameters"] = json!({"name": 7, "instancesSet": {"items": [{"instanceId": "i-0abc"}]}});
    records.push(odd);
    let mut revoke = iam_user_event();
    revoke["eventName"] = json!("UpdateAccessKey");
    revoke["requestParameters"] = json!({"accessKeyId": "AKIAOLDKEY", "status": "Inactive"});
    records.push(revoke);
    let mut escaped = iam_user_event();
    escaped["userAgent"] = json!("[aws-cli/2.0 \"quoted\" \u{e9}]");
    records.push(escaped);
    // Found by fuzzing: serde's derived structs accept an array of the fields in order.
    let base = r#""eventTime":"2024-05-02T11:00:03Z","eventSource":"s","eventName":"n""#;
    for odd in [
        format!(r#"{{{base},"userIdentity":["","arn:aws:iam::1:user/a","AKIAEXAMPLE",null,null]}}"#),
        format!(r#"{{{base},"resources":[["arn:aws:s3:::b"]]}}"#),
        format!(r#"{{{base},"responseElements":["Failure"]}}"#),
        format!(r#"{{{base},"userIdentity":{{"type":"AssumedRole","sessionContext":[["x"]]}}}}"#),
        r#"["2024-05-02T11:00:03",null,"","","","","",null,"",["","","","",null]]"#.to_string(),
    ] {
        let line = odd.as_bytes();
        let slow = serde_json::from_slice(line).map_err(|e| e.to_string()).and_then(|v| to_event(&v, raw()));
        // The fast path may decline (the slow path then reads it); what it reads must agree.
        if let Some(event) = fast_event(line, raw()) {
            assert_eq!(Ok(event), slow, "{odd}");
        }
    }
    for dir in [
        "/work/shared/datasets/cloudtrail/invictus-aws-stratus/CloudTrail",
        "/work/shared/datasets/cloudtrail/otrf-ec2-proxy-s3-exfil",
    ] {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let value: serde_json::Value = serde_json::from_str(line).unwrap();
                    match value.get("Records").and_then(|r| r.as_array()) {
                        Some(list) => records.extend(list.iter().cloned()),
                        None => records.push(value),
                    }
                }
            }
        }
    }
    let mut fast = 0;
    for record in &records {
        let line = serde_json::to_vec(record).unwrap();
        let slow = to_event(record, raw());
        if let Some(event) = fast_event(&line, raw()) {
            fast += 1;
            assert_eq!(Ok(event), slow, "{record}");
        }
    }
    assert!(fast >= 6, "the fast path read only {fast} of {} records", records.len());
}

/// Inside a delivery file, a broken record costs that record: the splitter follows only the
/// structure, and each record is parsed on its own.
#[test]
fn broken_record_inside_a_document_costs_only_itself() {
    let good = iam_user_event().to_string();
    let text = format!("{{\"Records\": [{good},\n {{\"eventName\": tru, \"x\": [1,2]}},\n {good}]}}");
    let (res, events, errors) = collect(text.as_bytes());
    assert_eq!(res.unwrap().events, 2);
    assert_eq!(events.len(), 2);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].record, 2);
    assert!(errors[0].message.contains("invalid JSON"), "{}", errors[0].message);
}

/// A reader that hands over one byte per call, as a slow pipe may.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.is_empty()) {
            (Some((&b, rest)), false) => {
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn gzip_arriving_a_byte_at_a_time_is_still_gzip() {
    let data = gzip(records_file().as_bytes());
    let (mut events, mut errors) = (Vec::new(), Vec::new());
    let stats = read(Trickle(&data), "pipe", &Sources::default(), &mut (|e| events.push(e), |e| errors.push(e)));
    assert_eq!(stats.unwrap().events, 3, "{errors:?}");
    check_three(&events);
}

/// A pretty-printed object whose second line happens to be a whole record is one document,
/// not JSON lines with a broken first line.
#[test]
fn pretty_printed_object_with_a_whole_record_on_its_second_line() {
    let record = iam_user_event().to_string();
    let text = format!("{{\"wrapped\":\n{record}\n}}\n");
    let (res, events, errors) = collect(text.as_bytes());
    assert_eq!(res.unwrap().events, 0);
    assert!(events.is_empty());
    assert_eq!(errors.len(), 1, "one record, not recognised: {errors:?}");
    assert!(errors[0].message.contains("unrecognised record"), "{}", errors[0].message);
}
