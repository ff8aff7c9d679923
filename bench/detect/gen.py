#!/usr/bin/env python3
"""CloudTrail JSON lines for `keywatch detect` throughput: the invictus-aws-stratus records
(../shared/datasets) repeated with shifted times and event ids until N events.

Usage: python3 bench/detect/gen.py OUT.jsonl [N]   (default 1,000,000)
"""
import glob, json, sys
from datetime import datetime, timedelta, timezone

out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
src = sorted(glob.glob("/work/shared/datasets/cloudtrail/invictus-aws-stratus/CloudTrail/*.json")) or sys.exit(
    "the invictus-aws-stratus dataset is not in ../shared/datasets")
records = [r for f in src for r in json.load(open(f))["Records"]]
records.sort(key=lambda r: r["eventTime"])
start = datetime.strptime(records[0]["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
span = timedelta(hours=1)
with open(out, "w") as f:
    written, round_ = 0, 0
    while written < n:
        for r in records:
            if written >= n:
                break
            t = datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) + span * round_
            r2 = dict(r, eventTime=t.strftime("%Y-%m-%dT%H:%M:%SZ"), eventID=f"{r['eventID']}-{round_}")
            f.write(json.dumps(r2, separators=(",", ":")) + "\n")
            written += 1
        round_ += 1
