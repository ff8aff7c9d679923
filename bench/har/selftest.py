#!/usr/bin/env python3
"""Self-test of gen_har.py and score.py (stdlib only; about 30 s).

  python3 bench/har/selftest.py [--size-mb 12] [--keep DIR]

Checks: the HAR parses as JSON and is HAR 1.2 shaped (pages, pagerefs, 22-30 headers an
entry, base64 bodies decode); same seed => byte-identical HAR and truth, another seed =>
different; every truth record's value can be recovered at each of its JSON pointers with
the recorded sha256 and occurs on each recorded line; the truth holds no plaintext; GitHub
tokens carry a valid CRC32 checksum; then synthetic keywatch and Kingfisher outputs built
from the recovered values are scored (recall 1.0, exact not-in-truth counts, sha vs line
matching) and the residual check is run on the HAR itself (every secret left) and on a
redacted copy (none left). Ends with "N passed, N failed".
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import score as S  # noqa: E402

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def gen(tmp, name, size, seed):
    out, truth = os.path.join(tmp, name + ".har"), os.path.join(tmp, name + "-truth.jsonl")
    r = subprocess.run([sys.executable, os.path.join(HERE, "gen_har.py"), "--size-mb", str(size), "--seed", str(seed),
                        "--out", out, "--truth", truth], check=True, capture_output=True, text=True)
    return out, truth, json.loads(r.stdout)


def file_sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for b in iter(lambda: fh.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def b62(n):
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = ALNUM[r] + out
    return out or "0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=float, default=100)
    ap.add_argument("--keep", default=None, help="keep the generated files in this directory")
    args = ap.parse_args()
    tmp = args.keep or tempfile.mkdtemp(prefix="har-selftest-")
    os.makedirs(tmp, exist_ok=True)
    try:
        run(tmp, args.size_mb)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def run(tmp, size):
    har, truth, meta = gen(tmp, "a", size, 20241128)
    har2, truth2, _ = gen(tmp, "b", size, 20241128)
    har3, truth3, _ = gen(tmp, "c", 2, 7)
    check("deterministic HAR", file_sha(har) == file_sha(har2))
    check("deterministic truth", file_sha(truth) == file_sha(truth2))
    check("other seed differs", file_sha(har3) != file_sha(har))
    check("size near target", abs(meta["bytes"] - size * 2 ** 20) < 3 * 2 ** 20, meta["bytes"])
    check("meta has shares", set(meta["byte_shares"]) == {"json_bodies", "text_bodies", "base64_binary", "structure"}, meta)

    with open(har, "rb") as fh:
        raw = fh.read()
    doc = json.loads(raw)
    log = doc["log"]
    check("HAR 1.2 header", log["version"] == "1.2" and log["creator"]["name"] == "WebInspector")
    check("2-space pretty print", raw.startswith(b'{\n  "log": {\n    "version": "1.2",') and b'\n      {\n        "_connectionId"' in raw)
    check("line count", raw.count(b"\n") == meta["lines"] and raw.endswith(b"}\n"), (raw.count(b"\n"), meta["lines"]))
    es = log["entries"]
    check("entry count", len(es) == meta["entries"])
    pages = {p["id"] for p in log["pages"]}
    check("pagerefs valid", all(e["pageref"] in pages for e in es))
    nh = [len(e["request"]["headers"]) + len(e["response"]["headers"]) for e in es]
    check("22-30 headers per entry", min(nh) >= 22 and max(nh) <= 30, (min(nh), max(nh)))
    check("required fields", all({"startedDateTime", "time", "request", "response", "cache", "timings", "serverIPAddress",
                                  "_initiator", "_resourceType"} <= set(e) for e in es))
    b64 = [e for e in es if e["response"]["content"].get("encoding") == "base64"]
    ok = True
    for e in b64:
        c = e["response"]["content"]
        if len(base64.b64decode(c["text"], validate=True)) != c["size"]:
            ok = False
    check("base64 bodies decode to content.size", ok and len(b64) > 10, len(b64))
    check("images present", any(e["response"]["content"]["mimeType"] in ("image/png", "image/jpeg") for e in b64))
    check("redirects present", any(e["response"]["redirectURL"] for e in es))
    check("form posts present", any((e["request"].get("postData") or {}).get("mimeType") == "application/x-www-form-urlencoded" for e in es))
    types = {e["_resourceType"] for e in es}
    check("resource types", {"document", "script", "stylesheet", "image", "font", "xhr", "fetch"} <= types, types)

    recs, _, _, _ = S.load_truth(truth)
    secrets = [r for r in recs if r["class"] == "secret"]
    check("secrets planted (>= 1 per 4.5 MiB)", len(secrets) >= int(size / 4.5), len(secrets))
    check("decoys planted", sum(r["class"] == "decoy" for r in recs) > 0)
    lines = raw.split(b"\n")
    truth_text = open(truth).read()
    plain = {}
    bad_ptr, bad_line, leaked, bad_gh = [], [], [], []
    for r in recs:
        shas = {r["secret_sha256"]} | set(r["alt_sha256"])
        if not r["pointers"]:
            bad_ptr.append((r["id"], "no pointers"))
        for p in r["pointers"]:
            s = S.resolve(doc, p)
            v = S.recover(s, {r["secret_sha256"]}, b64=r["where"] == "base64-body") if isinstance(s, str) else None
            if v is None:
                bad_ptr.append((r["id"], p))
            else:
                plain[r["id"]] = v
        v = plain.get(r["id"])
        if v is None:
            continue
        for ln in r["lines"]:
            text = lines[ln - 1].decode("utf-8", "replace")
            if r["where"] == "base64-body":
                ok = '"text": "' in text
            else:
                ok = v in text or json.dumps(v)[1:-1] in text or S.urllib.parse.quote(v, safe="") in text \
                    or S.urllib.parse.quote_plus(v) in text
            if not ok:
                bad_line.append((r["id"], ln))
        if r["class"] == "secret" and len(v) >= 8 and v in truth_text:
            leaked.append(r["id"])
        if v.startswith("ghp_") and r["class"] == "secret":
            body, c = v[4:34], v[34:]
            if c != b62(zlib.crc32(body.encode())).rjust(6, "0") or len(v) != 40:
                bad_gh.append(v[:8])
        if r["kind"] == "aws" and not any(len(x) == 64 for x in r["alt_sha256"]):
            bad_ptr.append((r["id"], "aws alt"))
        del shas
    check("every truth value recovered at its pointers", not bad_ptr, bad_ptr[:5])
    check("every truth line holds the value", not bad_line, bad_line[:5])
    check("no plaintext in truth", not leaked, leaked[:5])
    check("ghp_ checksums valid", not bad_gh and (size < 80 or any(r["kind"] == "github-pat" for r in secrets)), bad_gh)

    # ---- synthetic keywatch output: every secret once per pointer + 3 unknown + 1 decoy
    kw = {"findings": [], "errors": [], "stats": {}}
    for r in secrets:
        for p in r["pointers"]:
            kw["findings"].append({"rule_id": "x", "secret_sha256": S.sha256(plain[r["id"]]), "path": har, "line": r["lines"][0],
                                   "har": {"location": p, "entry": r["entry"]}})
    for k in range(3):
        kw["findings"].append({"rule_id": "fp", "secret_sha256": S.sha256(f"nothing-{k}"), "path": har, "line": 5,
                               "har": {"location": secrets[0]["pointers"][0], "entry": 0}})
    dec = next(r for r in recs if r["class"] == "decoy")
    kw["findings"].append({"rule_id": "dec", "secret_sha256": dec["secret_sha256"], "path": har, "line": 1, "har": {"location": "/x", "entry": 0}})
    kwf = os.path.join(tmp, "kw.json")
    json.dump(kw, open(kwf, "w"))
    s = S.score("keywatch", kwf, truth)
    check("keywatch self-score recall 1.0", s["recall"] == 1.0, s["recall"])
    check("keywatch not-in-truth = 4 (1 on a decoy)", s["not_in_truth"] == 4 and s["on_decoys"] == 1, (s["not_in_truth"], s["on_decoys"]))
    check("keywatch recall by where complete", all(f == t for f, t in s["recall_by_where"].values()) and
          {"header", "cookie", "query", "fragment", "form", "json", "body", "base64-body"} <= set(s["recall_by_where"]) if size >= 80 else True,
          s["recall_by_where"])

    # drop one secret: recall drops by exactly one
    drop = secrets[0]["secret_sha256"]
    kw2 = {"findings": [f for f in kw["findings"] if f["secret_sha256"] != drop]}
    json.dump(kw2, open(kwf, "w"))
    s = S.score("keywatch", kwf, truth)
    check("keywatch recall with one missing", s["secrets_found"] == len(secrets) - 1, s["secrets_found"])

    # ---- synthetic Kingfisher output: half by snippet, half by line only, + 2 FPs
    kf = {"findings": []}
    for n, r in enumerate(secrets):
        snip = plain[r["id"]] if n % 2 == 0 else "<not the secret>"
        if n % 4 == 2:  # Kingfisher's snippet of a value inside a JSON-escaped string: a trailing backslash
            snip = plain[r["id"]] + "\\"
        kf["findings"].append({"rule": {"id": "kf.x", "name": "x"}, "finding": {"snippet": snip, "line": r["lines"][0], "path": har}})
    used = {ln for r in recs for ln in r["lines"]}
    free = [ln for ln in range(2, 500) if ln not in used][:2]
    for ln in free:
        kf["findings"].append({"rule": {"id": "kf.fp"}, "finding": {"snippet": "zzzzzzzzzzzz", "line": ln, "path": har}})
    kff = os.path.join(tmp, "kf.json")
    json.dump(kf, open(kff, "w"))
    s = S.score("kingfisher", kff, truth)
    check("kingfisher self-score recall 1.0", s["recall"] == 1.0, s)
    check("kingfisher sha vs line split", s["found_by_sha"] >= (len(secrets) + 1) // 2 and s["found_by_line_only"] >= 1,
          (s["found_by_sha"], s["found_by_line_only"]))
    check("kingfisher not-in-truth = 2", s["not_in_truth"] == 2, s["not_in_truth"])
    # JSON-lines form of the Kingfisher report parses the same
    with open(kff, "w") as fh:
        for f in kf["findings"]:
            fh.write(json.dumps(f) + "\n")
    s2 = S.score("kingfisher", kff, truth)
    check("kingfisher JSON lines", s2["recall"] == 1.0 and s2["not_in_truth"] == 2)

    # ---- residual: the raw HAR leaves everything; a redacted copy nothing
    rr = S.residual(har, truth)
    check("residual on the raw HAR = all", rr["secrets_left"] == len(secrets), rr)
    for r in secrets:
        for p in r["pointers"]:
            parent, key = p.rsplit("/", 1)
            S.resolve(doc, parent)[key] = "[REDACTED]"
    red = os.path.join(tmp, "red.har")
    json.dump(doc, open(red, "w"))
    rr = S.residual(red, truth)
    check("residual on a redacted HAR = 0", rr["secrets_left"] == 0, rr)

    # ---- the table reads run.sh's files
    od = os.path.join(tmp, "tbl")
    os.makedirs(od, exist_ok=True)
    json.dump({"tool": "t", "input": "x.har", "cores": 1, "bytes": 100_000_000}, open(os.path.join(od, "t-x.runinfo.json"), "w"))
    for i, w in enumerate(("0:02.00", "0:04.00", "0:03.00"), 1):
        with open(os.path.join(od, f"t-x.time.{i}"), "w") as fh:
            fh.write(f"\tElapsed (wall clock) time (h:mm:ss or m:ss): {w}\n\tMaximum resident set size (kbytes): {1024 * (10 + i)}\n\tExit status: 0\n")
    t = S.table(od)
    check("table medians", "| t | x.har | 1 | 3.00 | 33.3 | 12 | 3 |" in t, t)


if __name__ == "__main__":
    main()
