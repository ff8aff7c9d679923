#!/usr/bin/env python3
"""Score a secret scanner's output against the corpus ground truth, by location.

A finding is reduced to (path relative to the corpus root, line); distinct locations only.
A location is a true positive (TP) when it falls on the lines [line, end_line] of a planted
secret; each planted secret counts once for recall however many of its lines are reported.
Every other reported location (on a decoy, or anywhere else) is a false positive (FP).

  recall    = planted secrets found / planted secrets
  precision = TP locations / all reported locations

Usage:
  score.py score --tool NAME --format FMT --input FILE [--truth T] [--corpus DIR] [--cwd DIR]
                 [--json OUT.json] [--report OUT.txt]
  score.py table --out-dir bench/out [--tools "a b c"] [--baseline kingfisher] [--corpus-meta M]

Formats: keywatch (JSON {"findings": [{"path", "line", ...}]}), kingfisher (JSON
{"findings": [{"finding": {"path", "line"}}]} or JSON Lines), ripsecrets (text path:line:match),
detect-secrets (JSON {"results": {file: [{"line_number"}]}}), sarif, locations (text path:line).
Paths may be absolute, relative to the corpus, or relative to --cwd (the scanner's working
directory); they are normalised to corpus-relative paths.
"""

import argparse
import glob
import json
import os
import re
import sys
from collections import Counter, defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------
def _load_json_or_lines(path):
    with open(path, "rb") as fh:
        raw = fh.read().decode("utf-8", "replace")
    raw_s = raw.strip()
    if not raw_s:
        return None
    try:
        return json.loads(raw_s)
    except json.JSONDecodeError:
        out = []
        for line in raw_s.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return out


def parse_keywatch(path):
    """Yields (path, line, extra) from Keywatch's JSON report."""
    d = _load_json_or_lines(path)
    if d is None:
        return
    findings = d.get("findings", []) if isinstance(d, dict) else d
    for f in findings:
        if not isinstance(f, dict):
            continue
        if "finding" in f and isinstance(f["finding"], dict):  # tolerate a nested shape
            f = {**f["finding"], **{k: v for k, v in f.items() if k != "finding"}}
        p = f.get("path") or f.get("file") or (f.get("location") or {}).get("path")
        ln = f.get("line") or f.get("line_number") or (f.get("location") or {}).get("line")
        yield p, ln, {"sha256": f.get("secret_sha256"), "rule": f.get("rule_id") or f.get("rule")}


def parse_kingfisher(path):
    d = _load_json_or_lines(path)
    if d is None:
        return
    if isinstance(d, dict):
        items = d.get("findings", [])
    else:  # JSON Lines: finding records
        items = [x for x in d if isinstance(x, dict) and ("finding" in x or "rule" in x)]
    for it in items:
        f = it.get("finding", it)
        rule = (it.get("rule") or {}).get("id") if isinstance(it.get("rule"), dict) else it.get("rule")
        yield f.get("path"), f.get("line"), {"rule": rule}


_RIP = re.compile(r"^(.+?):(\d+):")


def parse_ripsecrets(path):
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.decode("utf-8", "replace")
            m = _RIP.match(line)
            if m:
                yield m.group(1), int(m.group(2)), {}


def parse_detect_secrets(path):
    d = _load_json_or_lines(path)
    if not isinstance(d, dict):
        return
    for fname, items in (d.get("results") or {}).items():
        for it in items:
            yield it.get("filename", fname), it.get("line_number"), {"rule": it.get("type")}


def parse_sarif(path):
    d = _load_json_or_lines(path)
    for run in (d or {}).get("runs", []):
        for res in run.get("results", []):
            for loc in res.get("locations", []):
                pl = loc.get("physicalLocation", {})
                uri = pl.get("artifactLocation", {}).get("uri", "")
                if uri.startswith("file://"):
                    uri = uri[7:]
                yield uri, pl.get("region", {}).get("startLine"), {"rule": res.get("ruleId")}


def parse_locations(path):
    with open(path, "rb") as fh:
        for raw in fh:
            m = _RIP.match(raw.decode("utf-8", "replace") + ":")
            if m:
                yield m.group(1), int(m.group(2)), {}


PARSERS = {"keywatch": parse_keywatch, "kingfisher": parse_kingfisher, "ripsecrets": parse_ripsecrets,
           "detect-secrets": parse_detect_secrets, "sarif": parse_sarif, "locations": parse_locations}


class Normaliser:
    def __init__(self, corpus, cwd):
        self.corpus = os.path.realpath(corpus)
        self.cwd = os.path.realpath(cwd) if cwd else None
        self.name = os.path.basename(self.corpus)
        self.cache = {}

    def __call__(self, p):
        if p is None:
            return None
        if p in self.cache:
            return self.cache[p]
        r = self._norm(p)
        self.cache[p] = r
        return r

    def _norm(self, p):
        p = str(p)
        if p.startswith("file://"):
            p = p[7:]
        if "!" in p and not os.path.exists(p):  # archive member "a.zip!inner/file": score the archive
            p = p.split("!", 1)[0]
        cands = []
        if os.path.isabs(p):
            cands.append(p)
        else:
            q = p[2:] if p.startswith("./") else p
            cands.append(os.path.join(self.corpus, q))
            if self.cwd:
                cands.append(os.path.join(self.cwd, q))
            # "corpus/x/y" or "bench/corpus/x/y" relative to somewhere else
            parts = q.split("/")
            if self.name in parts:
                i = len(parts) - 1 - parts[::-1].index(self.name)
                cands.append(os.path.join(self.corpus, *parts[i + 1:]))
        for c in cands:
            c = os.path.normpath(c)
            rc = os.path.realpath(c) if os.path.exists(c) else c
            if rc == self.corpus or rc.startswith(self.corpus + os.sep):
                rel = os.path.relpath(rc, self.corpus)
                if os.path.exists(rc):
                    return rel
        # fall back: strip up to the corpus directory name, or keep as given
        q = p[2:] if p.startswith("./") else p
        parts = q.split("/")
        if self.name in parts:
            i = len(parts) - 1 - parts[::-1].index(self.name)
            return "/".join(parts[i + 1:])
        return q.lstrip("/")


# ----------------------------------------------------------------------------------------
# scoring
# ----------------------------------------------------------------------------------------
def load_truth(path):
    recs = []
    with open(path) as fh:
        for line in fh:
            if line.strip():
                recs.append(json.loads(line))
    by_path = defaultdict(list)
    for i, r in enumerate(recs):
        by_path[r["path"]].append(i)
    return recs, by_path


def score(tool, fmt, inp, truth_path, corpus, cwd=None):
    recs, by_path = load_truth(truth_path)
    norm = Normaliser(corpus, cwd)
    locs = {}
    raw_findings = 0
    bad = 0
    for p, ln, extra in PARSERS[fmt](inp):
        raw_findings += 1
        rp = norm(p)
        try:
            ln = int(ln)
        except (TypeError, ValueError):
            ln = 0
        if rp is None:
            bad += 1
            continue
        key = (rp, ln)
        e = locs.setdefault(key, {"rules": set(), "sha": set()})
        if extra.get("rule"):
            e["rules"].add(str(extra["rule"]))
        if extra.get("sha256"):
            e["sha"].add(extra["sha256"])
    found = set()
    tp_locs, fp_locs = [], []
    decoy_fp_locs = 0
    decoy_hit_ids = set()
    sha_agree = sha_checked = 0
    for (rp, ln), e in locs.items():
        hits = [i for i in by_path.get(rp, ()) if recs[i]["line"] <= ln <= recs[i]["end_line"]]
        secret_hits = [i for i in hits if recs[i]["kind"] == "secret"]
        if secret_hits:
            tp_locs.append((rp, ln))
            found.update(secret_hits)
            if e["sha"]:
                sha_checked += 1
                if any(h in recs[i]["parts_sha256"] or h == recs[i]["secret_sha256"] for i in secret_hits for h in e["sha"]):
                    sha_agree += 1
        else:
            what = "background"
            dec = [i for i in hits if recs[i]["kind"] == "decoy"]
            if dec:
                what = "decoy:" + recs[dec[0]]["provider"]
                decoy_fp_locs += 1
                decoy_hit_ids.update(dec)
            fp_locs.append((rp, ln, what, sorted(e["rules"])))
    secrets = [i for i, r in enumerate(recs) if r["kind"] == "secret"]
    decoys = [i for i, r in enumerate(recs) if r["kind"] == "decoy"]
    n_locs = len(locs)
    prov_tot, prov_found = Counter(), Counter()
    host_tot, host_found = Counter(), Counter()
    for i in secrets:
        prov_tot[recs[i]["provider"]] += 1
        host_tot[recs[i]["host"]] += 1
        if i in found:
            prov_found[recs[i]["provider"]] += 1
            host_found[recs[i]["host"]] += 1
    decoy_tot = Counter(recs[i]["provider"] for i in decoys)
    decoy_hit = Counter(recs[i]["provider"] for i in decoy_hit_ids)

    def ext_of(p):
        b = p.rsplit("/", 1)[-1]
        return b.rsplit(".", 1)[-1] if "." in b.lstrip(".") else b
    fp_by_ext = Counter(ext_of(p) for p, _, _, _ in fp_locs)
    fp_by_kind = Counter(w.split(":")[0] for _, _, w, _ in fp_locs)
    fp_by_rule = Counter(r for _, _, _, rules in fp_locs for r in (rules or ["?"]))
    result = {
        "tool": tool, "format": fmt, "input": inp, "raw_findings": raw_findings, "unparsed": bad,
        "locations": n_locs, "tp_locations": len(tp_locs), "fp_locations": len(fp_locs),
        "fp_on_decoys": decoy_fp_locs, "fp_background": fp_by_kind.get("background", 0),
        "planted_secrets": len(secrets), "secrets_found": len(found), "planted_decoys": len(decoys),
        "decoys_flagged": len(decoy_hit_ids),
        "recall": len(found) / len(secrets) if secrets else 0.0,
        "precision": len(tp_locs) / n_locs if n_locs else 0.0,
        "per_provider_recall": {p: [prov_found[p], prov_tot[p]] for p in sorted(prov_tot)},
        "per_host_recall": {h: [host_found[h], host_tot[h]] for h in sorted(host_tot)},
        "decoys_flagged_by_type": {p: [decoy_hit[p], decoy_tot[p]] for p in sorted(decoy_tot)},
        "fp_by_extension": dict(fp_by_ext.most_common(25)),
        "fp_by_rule": dict(fp_by_rule.most_common(25)),
        "sha256_agreement": [sha_agree, sha_checked] if sha_checked else None,
        "top_fp_locations": [f"{p}:{ln}  [{w}] {','.join(r)}" for p, ln, w, r in sorted(fp_locs)[:200]],
        "missed_secrets": [f"{recs[i]['path']}:{recs[i]['line']}  [{recs[i]['provider']} in {recs[i]['host']}]"
                           for i in secrets if i not in found][:300],
    }
    return result


def report_text(r):
    out = [f"# {r['tool']}: recall {r['recall']:.3f} ({r['secrets_found']}/{r['planted_secrets']}), "
           f"precision {r['precision']:.3f} ({r['tp_locations']}/{r['locations']} locations)",
           f"raw findings {r['raw_findings']}, distinct locations {r['locations']}, FP {r['fp_locations']} "
           f"(on decoys {r['fp_on_decoys']}, elsewhere {r['fp_background']}), decoys flagged {r['decoys_flagged']}/{r['planted_decoys']}"]
    if r.get("sha256_agreement"):
        a, b = r["sha256_agreement"]
        out.append(f"secret_sha256 equal to the planted value at {a}/{b} TP locations")
    out += ["", "## Recall per provider", "", "| provider | found | planted | recall |", "|---|---:|---:|---:|"]
    for p, (f, t) in r["per_provider_recall"].items():
        out.append(f"| {p} | {f} | {t} | {f / t:.2f} |")
    out += ["", "## Recall per host file type", "", "| host | found | planted | recall |", "|---|---:|---:|---:|"]
    for p, (f, t) in r["per_host_recall"].items():
        out.append(f"| {p} | {f} | {t} | {f / t:.2f} |")
    out += ["", "## Decoys flagged per type", "", "| decoy type | flagged | planted |", "|---|---:|---:|"]
    for p, (f, t) in r["decoys_flagged_by_type"].items():
        out.append(f"| {p} | {f} | {t} |")
    out += ["", "## FP locations by file extension", ""] + [f"- {k}: {v}" for k, v in r["fp_by_extension"].items()]
    out += ["", "## FP locations by rule", ""] + [f"- {k}: {v}" for k, v in r["fp_by_rule"].items()]
    out += ["", "## First FP locations (sorted by path)", ""] + r["top_fp_locations"]
    out += ["", "## Missed secrets", ""] + r["missed_secrets"]
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------
# summary table
# ----------------------------------------------------------------------------------------
def parse_time_v(path):
    wall = rss = None
    rc = None
    try:
        with open(path, errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("Elapsed (wall clock) time"):
                    t = line.rsplit(": ", 1)[1]
                    parts = [float(x) for x in t.split(":")]
                    wall = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
                elif line.startswith("Maximum resident set size"):
                    rss = int(line.rsplit(": ", 1)[1]) / 1024.0
                elif line.startswith("Exit status:"):
                    rc = int(line.rsplit(": ", 1)[1])
    except OSError:
        pass
    return wall, rss, rc


def table(out_dir, tools, baseline, corpus_meta):
    meta = {}
    if corpus_meta and os.path.exists(corpus_meta):
        with open(corpus_meta) as fh:
            meta = json.load(fh)
    nbytes = meta.get("bytes")
    rows = []
    for t in tools:
        sj = os.path.join(out_dir, f"{t}-score.json")
        s = json.load(open(sj)) if os.path.exists(sj) else None
        runs = sorted(glob.glob(os.path.join(out_dir, f"{t}.time.*"))) or [os.path.join(out_dir, f"{t}.time")]
        meas = [parse_time_v(p) for p in runs]
        walls = sorted(m[0] for m in meas if m[0] is not None)
        wall = walls[len(walls) // 2] if walls else None
        rss = max((m[1] for m in meas if m[1] is not None), default=None)
        status = ""
        st = os.path.join(out_dir, f"{t}.status")
        if os.path.exists(st):
            status = open(st).read().strip()
        ver = ""
        vf = os.path.join(out_dir, f"{t}.version")
        if os.path.exists(vf):
            ver = open(vf).read().strip().splitlines()[0] if open(vf).read().strip() else ""
        rows.append({"tool": t, "version": ver, "wall": wall, "rss": rss, "status": status, "score": s, "runs": len(walls),
                     "mbps": (nbytes / 1e6 / wall) if (nbytes and wall) else None})
    base = next((r for r in rows if r["tool"] == baseline and r["wall"]), None)

    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)
    lines = ["| tool | version | wall s | MB/s | peak RSS MB | findings | TP | FP | recall | precision | status |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    if any(r["runs"] > 1 for r in rows):
        lines.insert(0, "Wall time: median of " + ", ".join(f"{r['tool']} {r['runs']}" for r in rows) + " runs.\n")
    for r in rows:
        s = r["score"] or {}
        lines.append(f"| {r['tool']} | {r['version']} | {f(r['wall'], '.1f')} | {f(r['mbps'], '.1f')} | {f(r['rss'], '.0f')} | "
                     f"{s.get('locations', 'n/a')} | {s.get('tp_locations', 'n/a')} | {s.get('fp_locations', 'n/a')} | "
                     f"{f(s.get('recall'), '.3f')} | {f(s.get('precision'), '.3f')} | {r['status'] or 'ok'} |")
    if base:
        bs = base["score"] or {}
        lines += ["", f"Ratios vs {baseline} (speed = {baseline} wall / tool wall; RSS = tool / {baseline}; recall and precision = tool - {baseline}):", "",
                  "| tool | speed x | RSS x | recall delta | precision delta |", "|---|---:|---:|---:|---:|"]
        for r in rows:
            if r is base:
                continue
            s = r["score"] or {}
            sp = base["wall"] / r["wall"] if r["wall"] else None
            rx = r["rss"] / base["rss"] if (r["rss"] and base["rss"]) else None
            dr = s["recall"] - bs["recall"] if (s and bs) else None
            dp = s["precision"] - bs["precision"] if (s and bs) else None
            lines.append(f"| {r['tool']} | {f(sp, '.3g')} | {f(rx, '.2f')} | {f(dr, '+.3f')} | {f(dp, '+.3f')} |")
    return "\n".join(lines) + "\n", rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("score")
    a.add_argument("--tool", required=True)
    a.add_argument("--format", required=True, choices=sorted(PARSERS))
    a.add_argument("--input", required=True)
    a.add_argument("--truth", default=os.path.join(HERE, "corpus-truth.jsonl"))
    a.add_argument("--corpus", default=os.path.join(HERE, "corpus"))
    a.add_argument("--cwd", default=None, help="working directory the scanner ran in (for relative paths)")
    a.add_argument("--json", default=None, help="write the full result as JSON here")
    a.add_argument("--report", default=None, help="write a Markdown report (per-provider recall, top FPs) here")
    b = sub.add_parser("table")
    b.add_argument("--out-dir", default=os.path.join(HERE, "out"))
    b.add_argument("--tools", default="keywatch kingfisher ripsecrets detect-secrets")
    b.add_argument("--baseline", default="kingfisher")
    b.add_argument("--corpus-meta", default=os.path.join(HERE, "corpus-meta.json"))
    args = ap.parse_args()
    if args.cmd == "score":
        r = score(args.tool, args.format, args.input, args.truth, args.corpus, args.cwd)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(r, fh, indent=1)
        if args.report:
            with open(args.report, "w") as fh:
                fh.write(report_text(r))
        print(f"{r['tool']}: locations={r['locations']} TP={r['tp_locations']} FP={r['fp_locations']} "
              f"recall={r['recall']:.3f} precision={r['precision']:.3f}")
    else:
        text, _ = table(args.out_dir, args.tools.split(), args.baseline, args.corpus_meta)
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
