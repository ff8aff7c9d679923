#!/usr/bin/env python3
"""Score secret-scanner output on a generated HAR against its ground truth; summarise timings.

Truth: the JSON lines written by gen_har.py (one record per planted secret or decoy, with
`secret_sha256`, `alt_sha256`, `pointers`, `lines`; never the plaintext).

Matching a finding to a planted secret:
  * keywatch (`keywatch har scan --format json`): {"findings": [{"rule_id", "secret_sha256",
    "path", "line", "har": {"location": "/log/entries/12/request/headers/3/value", "entry": 12}}]}.
    Matched by sha256 only: `secret_sha256` equal to the planted value's sha256 or one of its
    alternative representations (alt_sha256: e.g. the whole "Bearer ..." header value, the
    "user:password" of a Basic credential, the AWS key id of a key pair). A finding whose
    `har.location` is a truth pointer but whose sha256 differs is listed as a diagnostic
    ("location-only"), not counted as found.
  * kingfisher (`kingfisher scan --format json`): sha256 of the reported secret
    (`finding.snippet`, also with surrounding quotes / a trailing JSON-escape backslash
    removed), and, when that matches nothing, by line: the finding's line is one
    of the HAR lines where a planted secret occurs (reported separately as "matched by line";
    a line can be a whole 1 MB body, so line matches are weaker evidence; Kingfisher 2.14
    reports line 0 for every finding in a 1 GB file, so there only the sha256 counts).
A finding that matches no planted secret is "not in truth"; those on a planted decoy are
counted separately. Recall = planted secrets found / planted secrets, overall and per
location type (`where`) and per kind.

Usage:
  score.py score --format keywatch|kingfisher --input OUT.json --truth TRUTH.jsonl
                 [--tool NAME] [--json SCORE.json] [--report REPORT.md]
  score.py residual --har SANITIZED.har --truth TRUTH.jsonl [--json OUT.json]
        planted secrets still present (at their JSON pointers) in a sanitiser's output
  score.py table --out-dir bench/out/har
        Markdown table of medians over the runs' `time -v` files, plus scores/residuals
"""

import argparse
import base64
import binascii
import glob
import hashlib
import importlib.util
import json
import os
import re
import sys
import urllib.parse
from collections import Counter, defaultdict

# The corpus benchmark's report and /usr/bin/time readers, shared. That module is also called
# score.py, so it is loaded by path.
_spec = importlib.util.spec_from_file_location(
    "corpus_score", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "score.py")
)
_corpus_score = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_corpus_score)
_load_json_or_lines = _corpus_score._load_json_or_lines
parse_time_v = _corpus_score.parse_time_v

# ----------------------------------------------------------------------------------------
# truth
# ----------------------------------------------------------------------------------------


def load_truth(path):
    recs = []
    with open(path) as fh:
        for line in fh:
            if line.strip():
                recs.append(json.loads(line))
    by_sha, by_line, by_ptr = defaultdict(set), defaultdict(set), defaultdict(set)
    for i, r in enumerate(recs):
        for h in [r["secret_sha256"], *r.get("alt_sha256", [])]:
            by_sha[h].add(i)
        for ln in r.get("lines", []):
            by_line[ln].add(i)
        for p in r.get("pointers", []):
            by_ptr[p].add(i)
    return recs, by_sha, by_line, by_ptr


def sha256(s):
    if isinstance(s, str):
        s = s.encode()
    return hashlib.sha256(s).hexdigest()


# ----------------------------------------------------------------------------------------
# parsers: yield dicts {sha: [..], line, location, rule}
# ----------------------------------------------------------------------------------------
def parse_keywatch(path):
    d = _load_json_or_lines(path)
    if d is None:
        return
    findings = d.get("findings", []) if isinstance(d, dict) else d
    for f in findings:
        if not isinstance(f, dict):
            continue
        shas = [f["secret_sha256"]] if f.get("secret_sha256") else []
        if not shas and isinstance(f.get("secret"), str):
            shas = [sha256(f["secret"])]
        har = f.get("har") or {}
        yield {"sha": shas, "line": f.get("line"), "location": har.get("location"), "entry": har.get("entry"),
               "rule": f.get("rule_id") or f.get("rule"), "key": f.get("secret_sha256") or (f.get("path"), f.get("line"), f.get("rule_id"))}


def parse_kingfisher(path):
    d = _load_json_or_lines(path)
    if d is None:
        return
    items = d.get("findings", []) if isinstance(d, dict) else [x for x in d if isinstance(x, dict) and ("finding" in x or "rule" in x)]
    for it in items:
        f = it.get("finding", it)
        rule = (it.get("rule") or {}).get("id") if isinstance(it.get("rule"), dict) else it.get("rule")
        snip = f.get("snippet")
        shas = []
        if isinstance(snip, str) and snip:
            # the snippet can carry JSON-string escaping around the value (a trailing "\" of \")
            forms = {snip, snip.strip().strip("\"'"), snip.rstrip("\\"), snip.strip().strip("\"'\\").rstrip("\\")}
            shas = sorted({sha256(x) for x in forms if x})
        yield {"sha": shas, "line": f.get("line"), "location": None, "entry": None, "rule": rule,
               "key": snip if snip else (f.get("path"), f.get("line"), rule)}


PARSERS = {"keywatch": parse_keywatch, "kingfisher": parse_kingfisher}


# ----------------------------------------------------------------------------------------
# scoring
# ----------------------------------------------------------------------------------------
def score(fmt, inp, truth_path, tool=None):
    recs, by_sha, by_line, by_ptr = load_truth(truth_path)
    secrets = [i for i, r in enumerate(recs) if r["class"] == "secret"]
    found, found_sha, found_line = set(), set(), set()
    n_raw = 0
    not_in_truth, on_decoy = [], []
    decoys_hit = set()
    location_only = set()
    rules_fp = Counter()
    for f in PARSERS[fmt](inp):
        n_raw += 1
        hit = set()
        for h in f["sha"]:
            hit |= by_sha.get(h, set())
        sec = {i for i in hit if recs[i]["class"] == "secret"}
        dec = {i for i in hit if recs[i]["class"] == "decoy"}
        how = "sha" if sec else None
        if not sec and not dec and fmt != "keywatch":
            try:
                ln = int(f["line"])
            except (TypeError, ValueError):
                ln = None
            if ln is not None:
                lh = by_line.get(ln, set())
                sec = {i for i in lh if recs[i]["class"] == "secret"}
                dec = {i for i in lh if recs[i]["class"] == "decoy"}
                how = "line" if sec else None
        if sec:
            found |= sec
            (found_sha if how == "sha" else found_line).update(sec)
            continue
        if fmt == "keywatch" and f.get("location"):
            lp = {i for i in by_ptr.get(f["location"], set()) if recs[i]["class"] == "secret"}
            location_only |= lp
        rules_fp[str(f.get("rule"))] += 1
        if dec:
            decoys_hit |= dec
            on_decoy.append(f)
        else:
            not_in_truth.append(f)
    location_only -= found

    def recall_by(field):
        tot, hit = Counter(), Counter()
        for i in secrets:
            tot[recs[i][field]] += 1
            if i in found:
                hit[recs[i][field]] += 1
        return {k: [hit[k], tot[k]] for k in sorted(tot)}
    decoys = [i for i, r in enumerate(recs) if r["class"] == "decoy"]
    nit_distinct = len({repr(f["key"]) for f in not_in_truth + on_decoy})
    return {
        "tool": tool or fmt, "format": fmt, "input": inp, "truth": truth_path,
        "raw_findings": n_raw, "planted_secrets": len(secrets), "secrets_found": len(found),
        "recall": len(found) / len(secrets) if secrets else 0.0,
        "found_by_sha": len(found_sha), "found_by_line_only": len(found_line - found_sha),
        "not_in_truth": len(not_in_truth) + len(on_decoy), "not_in_truth_distinct": nit_distinct,
        "on_decoys": len(on_decoy), "decoys_flagged": len(decoys_hit), "planted_decoys": len(decoys),
        "decoys_flagged_by_kind": dict(Counter(recs[i]["kind"] for i in decoys_hit)),
        "recall_by_where": recall_by("where"), "recall_by_kind": recall_by("kind"),
        "not_in_truth_by_rule": dict(rules_fp.most_common(30)),
        "location_only_matches": len(location_only),
        "missed": [f"entry {recs[i]['entry']} {recs[i]['where']}/{recs[i]['kind']}: {recs[i]['note']} "
                   f"(lines {recs[i]['lines'][:3]}, {recs[i]['pointers'][:2]})" for i in secrets if i not in found][:300],
    }


def report_text(r):
    out = [f"# {r['tool']}: recall {r['recall']:.3f} ({r['secrets_found']}/{r['planted_secrets']}); "
           f"{r['not_in_truth']} findings not in the truth ({r['not_in_truth_distinct']} distinct, {r['on_decoys']} on decoys)",
           f"raw findings {r['raw_findings']}; found by sha256 {r['found_by_sha']}, by line only {r['found_by_line_only']}; "
           f"decoys flagged {r['decoys_flagged']}/{r['planted_decoys']}; location-only (sha differs) {r['location_only_matches']}",
           "", "## Recall per location", "", "| where | found | planted | recall |", "|---|---:|---:|---:|"]
    for k, (f, t) in r["recall_by_where"].items():
        out.append(f"| {k} | {f} | {t} | {f / t:.2f} |")
    out += ["", "## Recall per kind", "", "| kind | found | planted | recall |", "|---|---:|---:|---:|"]
    for k, (f, t) in r["recall_by_kind"].items():
        out.append(f"| {k} | {f} | {t} | {f / t:.2f} |")
    out += ["", "## Decoys flagged", ""] + [f"- {k}: {v}" for k, v in r["decoys_flagged_by_kind"].items()]
    out += ["", "## Findings not in the truth, by rule", ""] + [f"- {k}: {v}" for k, v in r["not_in_truth_by_rule"].items()]
    out += ["", "## Missed", ""] + r["missed"]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------
# recovering a planted value from the HAR (self-test, residual check of a sanitiser)
# ----------------------------------------------------------------------------------------
_SPLITS = [re.compile(p) for p in (r'[\s"\'&;,<>(){}\[\]]+', r'[\s"\'&;,<>(){}\[\]=:#?]+', r'[\s"\'&;,<>(){}\[\]:#?]+')]


def candidates(s):
    yield s
    for rx in _SPLITS:
        for tok in rx.split(s):
            if tok:
                yield tok
                if "%" in tok or "+" in tok:
                    yield urllib.parse.unquote(tok)
                    yield urllib.parse.unquote_plus(tok)


def recover(s, shas, b64=False):
    """The substring of s (after base64-decoding it when b64) whose sha256 is in shas, or None."""
    if b64:
        try:
            s = base64.b64decode(s).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return None
    for c in candidates(s):
        if sha256(c) in shas:
            return c
    return None


def resolve(doc, ptr):
    cur = doc
    for part in ptr.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, list):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                return None
        elif isinstance(cur, dict):
            if part not in cur:
                return None
            cur = cur[part]
        else:
            return None
    return cur


def residual(har_path, truth_path):
    recs, _, _, _ = load_truth(truth_path)
    with open(har_path, "rb") as fh:
        doc = json.load(fh)
    left = Counter()
    tot = Counter()
    for r in recs:
        if r["class"] != "secret":
            continue
        tot[r["where"]] += 1
        shas = {r["secret_sha256"]}
        for p in r["pointers"]:
            s = resolve(doc, p)
            if not isinstance(s, str):
                continue
            b64 = r["where"] == "base64-body"
            if b64:  # the sanitiser may have decoded the body, or kept it encoded
                content = resolve(doc, p.rsplit("/", 1)[0]) or {}
                b64 = content.get("encoding") == "base64"
            if recover(s, shas, b64):
                left[r["where"]] += 1
                break
    n = sum(tot.values())
    return {"har": har_path, "planted_secrets": n, "secrets_left": sum(left.values()),
            "left_by_where": {k: [left[k], tot[k]] for k in sorted(tot)}}


# ----------------------------------------------------------------------------------------
# timing table
# ----------------------------------------------------------------------------------------
def median(xs):
    xs = sorted(xs)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def table(out_dir):
    """One row per <run>.runinfo.json written by run.sh: {"tool", "input", "cores", "bytes", "kind"}."""
    rows = []
    for info_path in sorted(glob.glob(os.path.join(out_dir, "*.runinfo.json"))):
        info = json.load(open(info_path))
        base = info_path[: -len(".runinfo.json")]
        meas = [parse_time_v(p) for p in sorted(glob.glob(base + ".time.*"))]
        walls = [m[0] for m in meas if m[0] is not None]
        rsss = [m[1] for m in meas if m[1] is not None]
        wall, rss = median(walls), median(rsss)
        status = open(base + ".status").read().strip() if os.path.exists(base + ".status") else "ok"
        extra = ""
        if os.path.exists(base + "-score.json"):
            s = json.load(open(base + "-score.json"))
            extra = f"recall {s['recall']:.3f} ({s['secrets_found']}/{s['planted_secrets']}), {s['not_in_truth']} not in truth"
        if os.path.exists(base + "-residual.json"):
            s = json.load(open(base + "-residual.json"))
            extra = f"{s['secrets_left']}/{s['planted_secrets']} planted secrets left"
        rows.append((info.get("order", 0), info["tool"], info["input"], info.get("cores", ""), wall,
                     info["bytes"] / 1e6 / wall if wall else None, rss, len(walls), extra, status))
    rows.sort(key=lambda r: (r[0], r[2]))

    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)
    out = ["| tool | input | cores | wall s | MB/s | peak RSS MB | runs | result | status |",
           "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for _, tool, inp, cores, wall, mbps, rss, n, extra, status in rows:
        out.append(f"| {tool} | {inp} | {cores} | {f(wall, '.2f')} | {f(mbps, '.1f')} | {f(rss, '.0f')} | {n} | {extra} | {status} |")
    # peak RSS against input size, per tool and core count: flat means memory independent of size
    by = defaultdict(list)
    for _, tool, inp, cores, wall, mbps, rss, n, extra, status in rows:
        if rss is not None and status == "ok":
            by[(tool, cores)].append((inp, rss))
    notes = []
    for (tool, cores), xs in by.items():
        if len(xs) > 1:
            xs.sort(key=lambda x: x[1])
            notes.append(f"- {tool}, cores {cores}: peak RSS " + ", ".join(f"{r:.0f} MB on {i}" for i, r in xs)
                         + f" (largest / smallest = {xs[-1][1] / xs[0][1]:.2f})")
    if notes:
        out += ["", "Peak RSS by input size:", ""] + notes
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("score")
    a.add_argument("--format", required=True, choices=sorted(PARSERS))
    a.add_argument("--tool", default=None)
    a.add_argument("--input", required=True)
    a.add_argument("--truth", required=True)
    a.add_argument("--json", default=None)
    a.add_argument("--report", default=None)
    b = sub.add_parser("residual")
    b.add_argument("--har", required=True)
    b.add_argument("--truth", required=True)
    b.add_argument("--json", default=None)
    c = sub.add_parser("table")
    c.add_argument("--out-dir", required=True)
    d = sub.add_parser("describe", help="one line about a generated HAR, from gen_har.py's meta file")
    d.add_argument("--meta", required=True)
    args = ap.parse_args()
    if args.cmd == "describe":
        m = json.load(open(args.meta))
        s = m["byte_shares"]
        print(f"{m['bytes'] / 1e6:.0f} MB, {m['entries']} entries, {m['secrets']} planted secrets, {m['decoys']} decoys; "
              f"bytes: JSON bodies {s['json_bodies']:.0%}, JS/HTML/CSS {s['text_bodies']:.0%}, base64 images/fonts "
              f"{s['base64_binary']:.0%}, headers/structure {s['structure']:.0%} (seed {m['seed']}, generated in "
              f"{m['seconds']} s, {m['mb_per_s']} MB/s)")
        return
    if args.cmd == "score":
        r = score(args.format, args.input, args.truth, args.tool)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(r, fh, indent=1)
        if args.report:
            with open(args.report, "w") as fh:
                fh.write(report_text(r))
        print(f"{r['tool']}: recall={r['recall']:.3f} ({r['secrets_found']}/{r['planted_secrets']}) "
              f"not_in_truth={r['not_in_truth']} (distinct {r['not_in_truth_distinct']}, on decoys {r['on_decoys']}) "
              f"by_line_only={r['found_by_line_only']}")
    elif args.cmd == "residual":
        r = residual(args.har, args.truth)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(r, fh, indent=1)
        print(f"{args.har}: {r['secrets_left']}/{r['planted_secrets']} planted secrets left {r['left_by_where']}")
    else:
        sys.stdout.write(table(args.out_dir))


if __name__ == "__main__":
    main()
