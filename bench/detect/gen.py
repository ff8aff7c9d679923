#!/usr/bin/env python3
"""CloudTrail input for `keywatch detect` throughput: the invictus-aws-stratus records
(../shared/datasets) repeated with shifted times and event ids until N events.

Usage: python3 bench/detect/gen.py OUT [N] [--credentials K] [--delivery]
  N            events (default 1,000,000)
  --credentials K
               spread the events over K distinct access keys and role sessions (each
               record's key and session get a suffix from the round), to measure memory as
               credentials grow; default: the dataset's own 137
  --delivery   write OUT as a directory of gzip S3 delivery files ({"Records":[...]}, 1,000
               records each) instead of one JSON-lines file
"""
import glob, gzip, json, os, sys
from datetime import datetime, timedelta, timezone

args = sys.argv[1:]
delivery = "--delivery" in args
credentials = None
if "--credentials" in args:
    i = args.index("--credentials")
    credentials = int(args[i + 1])
    del args[i:i + 2]
args = [a for a in args if a != "--delivery"]
out, n = args[0], int(args[1]) if len(args) > 1 else 1_000_000
src = sorted(glob.glob("/work/shared/datasets/cloudtrail/invictus-aws-stratus/CloudTrail/*.json")) or sys.exit(
    "the invictus-aws-stratus dataset is not in ../shared/datasets")
records = [r for f in src for r in json.load(open(f))["Records"]]
records.sort(key=lambda r: r["eventTime"])
start = datetime.strptime(records[0]["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
span = timedelta(hours=1)


def spread(r, written):
    """Gives the record's credential one of `credentials` variants."""
    ui = r.get("userIdentity")
    if not credentials or not isinstance(ui, dict):
        return r
    variant = written % credentials
    ui = dict(ui)
    if ui.get("accessKeyId"):
        ui["accessKeyId"] = f"{ui['accessKeyId'][:4]}{variant:016X}"
    if ui.get("arn"):
        ui["arn"] = f"{ui['arn']}-{variant}"
    return dict(r, userIdentity=ui)


def generate():
    written, round_ = 0, 0
    while written < n:
        for r in records:
            if written >= n:
                return
            t = datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) + span * round_
            yield spread(dict(r, eventTime=t.strftime("%Y-%m-%dT%H:%M:%SZ"), eventID=f"{r['eventID']}-{round_}"), written)
            written += 1
        round_ += 1


if delivery:
    os.makedirs(out, exist_ok=True)
    batch, part = [], 0
    for r in generate():
        batch.append(r)
        if len(batch) == 1000:
            with gzip.open(os.path.join(out, f"part-{part:06d}.json.gz"), "wt", compresslevel=6) as f:
                json.dump({"Records": batch}, f, separators=(",", ":"))
            batch, part = [], part + 1
    if batch:
        with gzip.open(os.path.join(out, f"part-{part:06d}.json.gz"), "wt", compresslevel=6) as f:
            json.dump({"Records": batch}, f, separators=(",", ":"))
else:
    with open(out, "w") as f:
        for r in generate():
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
