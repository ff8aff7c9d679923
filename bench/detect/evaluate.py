#!/usr/bin/env python3
"""Evaluates `keywatch detect` on the real CloudTrail sets in ../shared/datasets/cloudtrail:
which known malicious activities raise an alert, and how many alerts fire on benign activity.

Usage: python3 bench/detect/evaluate.py [KEYWATCH] [--ip-database FILE ...]
  KEYWATCH defaults to target/release/keywatch. Prints a report in Markdown.

- invictus-aws-stratus: labels_derived.csv labels each event attack / benign-setup / benign
  and names the Stratus Red Team technique. An alert "has attack evidence" when one of its
  evidence events is labelled attack; a technique is "alerted" when any of its attack events
  is in an alert's evidence. Because the labels come from the `stratus-red-team_<run>` user
  agent, the set is run twice: as published, and "unsigned", with that token removed from
  every user agent (a pure Stratus agent becomes the Go SDK it is built on), so the
  attack-tool signature cannot fire and only behaviour counts.
- otrf-ec2-proxy-s3-exfil: every event is the scenario (instance-role credentials used from a
  laptop); the question is whether it is flagged and how many alerts fire.
- otrf-s3-honeybucket: a CSV of unauthenticated S3 requests, converted here to CloudTrail
  JSON lines (the CSV's columns map one to one).
"""
import collections, csv, glob, json, os, re, subprocess, sys, tempfile

DATA = "/work/shared/datasets/cloudtrail"


def run(keywatch, paths, extra):
    with tempfile.TemporaryDirectory() as data_dir:
        out = subprocess.run(
            [keywatch, "detect", *paths, "--format", "json", "--data-dir", data_dir, *extra],
            capture_output=True, text=True)
    if out.returncode not in (0, 1):
        sys.exit(f"keywatch failed: {out.stderr}")
    return json.loads(out.stdout)


def invictus(keywatch, extra, unsigned):
    src = sorted(glob.glob(f"{DATA}/invictus-aws-stratus/CloudTrail/*.json"))
    labels = {r["eventID"]: r for r in csv.DictReader(open(f"{DATA}/invictus-aws-stratus/labels_derived.csv"))}
    with tempfile.TemporaryDirectory() as tmp:
        paths = src
        if unsigned:
            paths = []
            for f in src:
                doc = json.load(open(f))
                for r in doc["Records"]:
                    ua = r.get("userAgent")
                    if isinstance(ua, str) and "stratus-red-team" in ua:
                        ua = re.sub(r"\s*stratus-red-team_[0-9a-f-]+", "", ua).strip()
                        r["userAgent"] = ua or "aws-sdk-go-v2/1.18.0 os/linux lang/go/1.20"
                path = os.path.join(tmp, os.path.basename(f))
                json.dump(doc, open(path, "w"))
                paths.append(path)
        result = run(keywatch, paths, extra)
    attack = {k for k, v in labels.items() if v["label"] == "attack"}
    techniques = collections.defaultdict(set)
    for k in attack:
        techniques[labels[k]["reason"].split("=")[-1]].add(k)
    covered, with_attack, benign_only, benign_kinds = set(), 0, 0, collections.Counter()
    kinds_of = collections.defaultdict(set)
    for a in result["alerts"]:
        evidence = set(a["evidence"])
        for e in evidence & attack:
            kinds_of[e].add(a["kind"])
        if evidence & attack:
            with_attack += 1
        else:
            benign_only += 1
            benign_kinds[a["kind"]] += 1
        covered |= evidence & attack
    by_technique = {t: sorted(set().union(*(kinds_of[e] for e in ids))) for t, ids in techniques.items()}
    return result, techniques, covered, with_attack, benign_only, benign_kinds, by_technique


def honeybucket_lines(tmp):
    path = os.path.join(tmp, "honeybucket.jsonl")
    with open(path, "w") as out:
        for row in csv.DictReader(open(f"{DATA}/otrf-s3-honeybucket/AWS_S3_HoneyBucketLogs.csv", encoding="utf-8-sig")):
            identity = eval_dict(row["User ID"])
            record = {
                "eventVersion": "1.08", "eventTime": row["Event DateTime"], "eventSource": "s3.amazonaws.com",
                "eventName": row["Event Name"], "eventType": row["Event Type"], "eventID": row["Event ID"],
                "requestID": row["Request ID"], "sourceIPAddress": row["Source IP"],
                "userAgent": row["Request User Agent"], "userIdentity": identity,
                "requestParameters": eval_dict(row["Request Parameters"]), "readOnly": True,
            }
            out.write(json.dumps(record) + "\n")
    return path


def eval_dict(text):
    """The CSV holds Python dict reprs: single quotes. Read them without eval."""
    try:
        return json.loads(text.replace("'", '"'))
    except ValueError:
        return {}


def main():
    args = sys.argv[1:]
    keywatch = "target/release/keywatch"
    if args and not args[0].startswith("--"):
        keywatch = args.pop(0)
    extra = args
    if not os.path.isdir(DATA):
        print(f"skipped: {DATA} is not present")
        return
    print(f"keywatch: {keywatch} {' '.join(extra)}\n")
    for unsigned in (False, True):
        result, techniques, covered, with_attack, benign_only, benign_kinds, by_technique = invictus(
            keywatch, extra, unsigned)
        name = "invictus-aws-stratus" + (", unsigned (no attack-tool user agent)" if unsigned else "")
        alerted = sum(1 for t, ids in techniques.items() if ids & covered and not t.startswith("unknown"))
        total = sum(1 for t in techniques if not t.startswith("unknown"))
        print(f"## {name}\n")
        print(f"- events {result['stats']['events']}, alerts {len(result['alerts'])}: "
              f"{with_attack} with attack evidence, {benign_only} on benign activity only "
              f"({', '.join(f'{k} {v}' for k, v in benign_kinds.most_common())})")
        print(f"- techniques alerted: {alerted} of {total}; attack events in evidence: {len(covered)} of "
              f"{sum(len(v) for v in techniques.values())}\n")
        print("| technique | attack events in alerts | by |\n|---|---|---|")
        for t, ids in sorted(techniques.items()):
            print(f"| {t} | {len(ids & covered)}/{len(ids)} | {', '.join(by_technique[t])} |")
        print()
    exfil = run(keywatch, glob.glob(f"{DATA}/otrf-ec2-proxy-s3-exfil/*.json"), extra)
    print("## otrf-ec2-proxy-s3-exfil\n")
    print(f"- events {exfil['stats']['events']}, alerts {len(exfil['alerts'])}")
    for a in exfil["alerts"]:
        print(f"  - {a['severity']} {a['kind']} {a['credential']}: {a['event_count']} events, "
              f"IPs {', '.join(a['source_ips'])}")
    with tempfile.TemporaryDirectory() as tmp:
        honey = run(keywatch, [honeybucket_lines(tmp)], extra)
    print("\n## otrf-s3-honeybucket\n")
    print(f"- events {honey['stats']['events']}, credentials {honey['stats']['credentials']}, "
          f"alerts {len(honey['alerts'])}, errors {len(honey['errors'])}")


if __name__ == "__main__":
    main()
