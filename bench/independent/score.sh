#!/usr/bin/env bash
# Independent scoring of keywatch and Kingfisher against /tmp/indep (made by make_corpus.py).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
IND=/tmp/indep
CORPUS=$IND/corpus
OUTD=$IND/out
[ -f "$IND/truth.jsonl" ] || python3 "$HERE/make_corpus.py" "$IND"
mkdir -p "$OUTD"

t0=$(date +%s.%N)
"$HERE/../../target/release/keywatch" scan "$CORPUS" --format json >"$OUTD/keywatch.json" 2>"$OUTD/keywatch.err"
rc=$?; t1=$(date +%s.%N)
echo "keywatch exit=$rc time=$(echo "$t1 - $t0" | bc)s"
[ $rc -le 1 ] || { echo "keywatch failed"; head "$OUTD/keywatch.err"; }

t0=$(date +%s.%N)
KF_RULE_CACHE_DIR="${PEERS_DIR:-$HOME/.cache/keywatch-peers}/kf-cache" "${PEERS_DIR:-$HOME/.cache/keywatch-peers}/venv/bin/kingfisher" scan "$CORPUS" \
  --no-validate --no-update-check --git-history none --format json --output "$OUTD/kingfisher.json" >"$OUTD/kingfisher.stdout" 2>"$OUTD/kingfisher.err"
rc=$?; t1=$(date +%s.%N)
echo "kingfisher exit=$rc time=$(echo "$t1 - $t0" | bc)s"
[ $rc -eq 0 ] || [ $rc -eq 200 ] || { echo "kingfisher failed"; head "$OUTD/kingfisher.err"; }

python3 - "$IND" "$OUTD" <<'EOF'
import json, os, sys, collections
ind, outd = sys.argv[1], sys.argv[2]
corpus = os.path.join(ind, "corpus")
truth = [json.loads(l) for l in open(os.path.join(ind, "truth.jsonl"))]
secrets = [t for t in truth if t["kind"] == "secret"]
decoys = [t for t in truth if t["kind"] == "decoy"]
lines_cache = {}
def line(p, n):
    if p not in lines_cache:
        try: lines_cache[p] = open(os.path.join(corpus, p), errors="replace").read().split("\n")
        except OSError: lines_cache[p] = []
    L = lines_cache[p]
    return L[n - 1] if 0 < n <= len(L) else ""
def redact(s, w=150):
    import re
    s = s.strip()
    s = re.sub(r"[A-Za-z0-9+/=_\-.~$!#%^*]{10,}", lambda m: m.group(0)[:6] + "…" + m.group(0)[-3:], s)
    return s[:w]
def walk(o, acc):
    if isinstance(o, dict):
        p, l = o.get("path"), o.get("line")
        if isinstance(p, str) and isinstance(l, int):
            acc.append((p, l, o.get("rule") or o.get("rule_id") or o.get("id") or ""))
        for v in o.values(): walk(v, acc)
    elif isinstance(o, list):
        for v in o: walk(v, acc)
def load(name):
    raw = open(os.path.join(outd, name)).read().strip()
    acc = []
    if not raw: return acc
    try: objs = [json.loads(raw)]
    except json.JSONDecodeError: objs = [json.loads(l) for l in raw.splitlines() if l.strip()]
    for o in objs:
        if isinstance(o, dict) and "rule" in o and isinstance(o.get("finding"), dict):
            pass
        walk(o, acc)
    out = set()
    for p, l, r in acc:
        ap = os.path.abspath(p) if os.path.isabs(p) else os.path.abspath(os.path.join(corpus, p))
        if not ap.startswith(os.path.abspath(corpus) + "/"):
            # try relative to cwd
            ap2 = os.path.abspath(p)
            if ap2.startswith(os.path.abspath(corpus) + "/"): ap = ap2
            else: continue
        out.add((os.path.relpath(ap, corpus), l))
    return out
by_path = collections.defaultdict(list)
for t in truth: by_path[t["path"]].append(t)
report = []
def P(*a): report.append(" ".join(str(x) for x in a))
summary = []
for tool, fn in [("keywatch", "keywatch.json"), ("kingfisher", "kingfisher.json")]:
    try: locs = load(fn)
    except Exception as e:
        P(f"## {tool}: could not parse output: {e}"); continue
    hit = set(); fps = []; decoy_fp = collections.Counter()
    for p, l in sorted(locs):
        m = [i for i, t in enumerate(truth) if t["kind"] == "secret" and t["path"] == p and t["line"] <= l <= t["end_line"]]
        if m:
            hit.update(m); continue
        d = [t for t in by_path[p] if t["kind"] == "decoy" and t["line"] <= l <= t["end_line"]]
        fps.append((p, l, d[0]["provider"] if d else "-"))
        if d: decoy_fp[d[0]["provider"]] += 1
    tp = len(hit); nloc = len(locs); tp_locs = nloc - len(fps)
    rec = tp / len(secrets); prec = tp_locs / nloc if nloc else 0.0
    f1 = 2 * rec * prec / (rec + prec) if rec + prec else 0
    summary.append((tool, nloc, tp, len(secrets), rec, len(fps), prec, f1))
    per = collections.Counter(t["provider"] for t in secrets)
    miss = collections.Counter(truth[i]["provider"] for i, t in enumerate(truth) if t["kind"] == "secret" and i not in hit)
    P(f"\n## {tool}\n")
    P(f"recall {tp}/{len(secrets)} = {rec:.3f}; precision (locations) {tp_locs}/{nloc} = {prec:.3f}; FP locations {len(fps)} (on planted decoys: {sum(decoy_fp.values())}, elsewhere: {len(fps) - sum(decoy_fp.values())})\n")
    P("### Misses by provider (missed/planted)\n")
    P(", ".join(f"{k} {v}/{per[k]}" for k, v in sorted(miss.items(), key=lambda x: (-x[1], x[0]))) or "none")
    P("\n### Missed secrets\n")
    P("```")
    for i, t in enumerate(truth):
        if t["kind"] == "secret" and i not in hit:
            P(f"{t['provider']:<20} {t['path']}:{t['line']}  {redact(line(t['path'], t['line']))}")
    P("```")
    P("\n### False-positive locations (decoy provider or '-')\n")
    P("```")
    for p, l, d in fps:
        P(f"{d:<22} {p}:{l}  {redact(line(p, l))}")
    P("```")
hdr = ["\n## Score table\n", f"secrets planted: {len(secrets)} ({len(set(t['provider'] for t in secrets))} providers); decoys planted: {len(decoys)}\n",
       "| tool | locations reported | secrets found | recall | FP locations | precision | F1 |", "|---|---|---|---|---|---|---|"]
for tool, nloc, tp, ns, rec, nfp, prec, f1 in summary:
    hdr.append(f"| {tool} | {nloc} | {tp}/{ns} | {rec:.3f} | {nfp} | {prec:.3f} | {f1:.3f} |")
text = "\n".join(hdr + report) + "\n"
open(os.path.join(outd, "score.md"), "w").write(text)
print(text)
EOF
