#!/usr/bin/env python3
"""Writes the small seed inputs under fuzz/seeds/ (committed) and copies them into
fuzz/corpus/<target>/ (gitignored, where libFuzzer grows its corpus).

Run from anywhere: python3 fuzz/gen_seeds.py
"""
import base64
import gzip
import io
import json
import os
import shutil
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
HAR_FIXTURES = os.path.join(HERE, "..", "crates", "cli", "tests", "fixtures", "har")
HAR_SEED_MAX = 16 << 10  # every har_reader seed stays under this
ACTIVITY_FIXTURES = os.path.join(HERE, "..", "crates", "activity", "tests", "fixtures")
# Real CloudTrail data (MIT, see its README), read only when present: a few records become seeds.
CLOUDTRAIL_DATA = os.path.join(HERE, "..", "..", "shared", "datasets", "cloudtrail")
ACTIVITY_SEED_MAX = 8 << 10  # every audit-log seed stays under this
# A GitHub classic token whose CRC32 checksum is valid, so the built-in rule reports it.
LINE = b'token = "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"\n'
MTIME = 1700000000  # fixed, so the files are byte-for-byte reproducible


def make_zip(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def make_tar(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = MTIME
            t.addfile(info, io.BytesIO(data))
    # tarfile pads to a 10 KiB record; keep only the entries plus the two zero end blocks.
    used = sum(512 + (len(d) + 511) // 512 * 512 for _, d in files)
    return buf.getvalue()[: used + 1024]


def make_gz(data, name=None):
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name or "", mode="wb", fileobj=buf, mtime=MTIME) as g:
        g.write(data)
    return buf.getvalue()


def archive_seeds():
    env = b"# config\n" + LINE
    inner_zip = make_zip([("app/.env", env)])
    utf16 = ("password = hunter2\n" + LINE.decode()).encode("utf-16-le")
    return {
        "plain.txt": env,
        "utf16-bom.txt": b"\xff\xfe" + utf16,
        "simple.zip": make_zip([("config/.env", env), ("README", b"nothing here\n")]),
        "simple.tar": make_tar([("config/.env", env)]),
        "simple.tar.gz": make_gz(make_tar([("config/.env", env)])),
        "simple.gz": make_gz(env, "settings.env"),
        "zip-in-tar.gz": make_gz(make_tar([("bundle/inner.zip", inner_zip), ("bundle/notes.txt", b"hello\n")])),
        "traversal.tar": make_tar([("../escape.env", env)]),
    }


RULE_SEEDS = {
    "keywatch.toml": b"""[[rules]]
id = "seed-github-pat"
provider = "GitHub"
description = "GitHub personal access token (classic)"
severity = "high"
keywords = ["ghp_"]
pattern = '''\\b(?P<secret>ghp_[A-Za-z0-9]{36})\\b'''
min_entropy = 3.0
validator = "github-crc32"
allow = ['''^ghp_0+$''']
examples = ['''token = "ghp_Zq8mV1xR4tK0pLw2Yc7Hn3Ub6Js9Ad0bHVhp"''']
negative_examples = ['''token = "ghp_short"''']

[[rules]]
id = "seed-generic-password"
provider = "Generic"
description = "Password assignment"
severity = "medium"
keywords = ["password"]
pattern = '''(?i)password\\s*[=:]\\s*["']?(?P<secret>[^"'\\s]{8,})'''
generic = true
multiline = false
""",
    "gitleaks.toml": b"""title = "fuzz seed"

[extend]
useDefault = true

[allowlist]
description = "global"
regexes = ['''EXAMPLE''']
stopwords = ["dummy"]
paths = ['''(^|/)vendor/''']

[[rules]]
id = "custom-api-key"
description = "Custom API key"
regex = '''(?i)custom[_-]?key\\s*=\\s*['"]?([a-z0-9]{32})'''
secretGroup = 1
entropy = 3.5
keywords = ["custom"]

[[rules.allowlists]]
regexTarget = "line"
regexes = ['''test''']

[[rules]]
id = "pem-file"
description = "PEM file"
path = '''\\.pem$'''
""",
}


# ---- har_reader -------------------------------------------------------------------------

TOKEN = "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"  # same token as LINE
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c3JfZnV6eiIsImlhdCI6MTcwMDAwMDAwMH0"
       ".Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5")


def dump_har(doc, style):
    """Serialises like the fixture it came from: Chromium/Charles compact, Firefox indented."""
    if style == "compact":
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def fixture_seeds():
    """The committed HAR fixtures; those over HAR_SEED_MAX are cut into consecutive runs of
    entries, each with the fixture's other `log` members, so every entry is in some seed."""
    seeds = {}
    for name, style in [("minimal.har", "indent"), ("charles-flavoured.har", "compact"),
                        ("chromium-login.har", "compact"), ("firefox-flavoured.har", "indent")]:
        with open(os.path.join(HAR_FIXTURES, name), "rb") as f:
            raw = f.read()
        stem = name[: -len(".har")]
        if len(raw) < HAR_SEED_MAX:
            seeds[name] = raw
            continue
        doc = json.loads(raw)
        entries = doc["log"]["entries"]
        part, chunk = 0, []

        def emit(chunk):
            sub = json.loads(raw)
            sub["log"]["entries"] = chunk
            return dump_har(sub, style)

        for entry in entries:
            if chunk and len(emit(chunk + [entry])) >= HAR_SEED_MAX:
                seeds[f"{stem}-{part}.har"] = emit(chunk)
                part, chunk = part + 1, []
            chunk.append(entry)
        seeds[f"{stem}-{part}.har"] = emit(chunk)
    return seeds


def har(entries, **log):
    return {"log": {"version": "1.2", "creator": {"name": "fuzz-seed", "version": "1"}, **log, "entries": entries}}


def entry(url="https://api.example.test/v1/thing", method="GET", req_headers=(), resp_headers=(), cookies=(),
          resp_cookies=(), query=(), post=None, content=None, **extra):
    nv = lambda pairs: [{"name": n, "value": v} for n, v in pairs]
    request = {"method": method, "url": url, "httpVersion": "HTTP/1.1", "cookies": nv(cookies),
               "headers": nv(req_headers), "queryString": nv(query), "headersSize": -1, "bodySize": -1}
    if post is not None:
        request["postData"] = post
    response = {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "cookies": nv(resp_cookies),
                "headers": nv(resp_headers), "content": content or {"size": 0, "mimeType": "text/plain", "text": ""},
                "redirectURL": "", "headersSize": -1, "bodySize": -1}
    return {"startedDateTime": "2025-01-01T00:00:00.000Z", "time": 1, "request": request, "response": response,
            "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0}, **extra}


def b64(text):
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def edge_seeds(minimal):
    compact = lambda doc: dump_har(doc, "compact")
    env = f"# config\nGITHUB_TOKEN={TOKEN}\npassword=hunter2hunter2\n"
    seeds = {
        # Cut inside the entry, and inside a string value holding a token.
        "truncated-entry.har": minimal[: minimal.index(b'"response"')],
        "truncated-string.har": compact(har([entry(req_headers=[("Authorization", "Bearer " + TOKEN)])]))
        .split(TOKEN[:20].encode())[0] + TOKEN[:20].encode(),
        "bom.har": b"\xef\xbb\xbf" + minimal,
        "utf16-bom.har": b"\xff\xfe" + minimal.decode().encode("utf-16-le"),
        "gzip.har": make_gz(minimal),
        "empty-entries.har": b'{"log":{"version":"1.2","entries":[]}}',
        "not-a-har.json": b'{"foo": [1, 2, {"bar": "baz"}]}',
        "top-level-array.json": b'[{"log": {"entries": []}}]',
        "scalars.har": b'{"_x": [1, {"a": "b"}], "log": {"version": 1.2e3, "pages": [null, -0.5],'
                       b' "entries": [null, true, false, -0, "' + TOKEN.encode() + b'", [], {}],'
                       b' "comment": "log comment ' + TOKEN.encode() + b'"}, "z": null}\n',
        "trailing-data.har": b'{"log":{"entries":[]}} {"log":{"entries":[]}}',
    }
    # Deep nesting: an entry member and a JSON body nested past json::MAX_DEPTH (256), and an
    # entry nested below it with a token at the bottom.
    seeds["deep-nesting.har"] = (b'{"log":{"entries":[{"request":{"url":"https://x.test/"},"_deep":'
                                 + b"[" * 300 + b"]" * 300 + b"}]}}")
    deep_body = '{"a":' * 120 + json.dumps({"token": TOKEN}) + "}" * 120
    seeds["deep-ok.har"] = compact(har([entry(
        method="POST", post={"mimeType": "application/json", "text": deep_body},
        _deep=json.loads('{"k":' * 200 + json.dumps({"password": "correct horse battery"}) + "}" * 200))]))
    seeds["deep-body-too-deep.har"] = compact(har([entry(
        content={"size": 1, "mimeType": "application/json", "text": "[" * 300 + json.dumps(TOKEN) + "]" * 300})]))
    # Escapes in keys: outer keys the reader decodes itself, entry keys json::parse decodes,
    # quotes, backslashes and pointer characters (~ /) in names.
    seeds["escaped-keys.har"] = (
        b'{"lo\\u0067": {"ver\\"sion": "1.2", "entri\\u0065s": [{"re\\u0071uest": {"method": "GET", '
        b'"url": "https://api.example.test/?acce\\u0073s_token=' + TOKEN.encode() + b'", '
        b'"headers": [{"na\\u006de": "Authori\\u007aation", "value": "Bearer ' + JWT.encode() + b'"}, '
        b'{"name": "X-\\"Quoted\\"-Key", "value": "' + TOKEN.encode() + b'"}, '
        b'{"name": "a/b~c\\\\d", "value": "s3cr3t-v4lue-with-\\"quotes\\""}], '
        b'"cookies": [{"name": "sess\\u0069on", "value": "Zk8mV1xR4tK0pLw2Yc7Hn3Ub6Js9A"}]}, '
        b'"k\\\\\\"ey": {"\\ud83d\\ude00": "' + TOKEN.encode() + b'", "\\ud800": "lone \\udc00 surrogates"}}]}}\n')
    # Base64 bodies: a text body with secrets, one with line breaks, a binary one (skipped),
    # a WebSocket binary frame (opcode 2), and on its own an invalid one (sanitize refuses).
    wrapped = b64(env)
    wrapped = "\n".join(wrapped[i:i + 40] for i in range(0, len(wrapped), 40))
    seeds["base64-bodies.har"] = compact(har([
        entry(content={"size": len(env), "mimeType": "text/plain", "encoding": "base64", "text": b64(env)}),
        entry(content={"size": len(env), "mimeType": "application/octet-stream", "encoding": "Base64",
                       "text": wrapped}),
        entry(content={"size": 16, "mimeType": "image/png", "encoding": "base64",
                       "text": b64(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + TOKEN.encode())}),
        entry(url="wss://rt.example.test/socket", _webSocketMessages=[
            {"type": "send", "time": 1.5, "opcode": 2, "data": b64(json.dumps({"token": TOKEN}))},
            {"type": "receive", "time": 1.6, "opcode": 1, "data": json.dumps({"password": "hunter2hunter2"})}]),
    ]))
    seeds["base64-invalid.har"] = compact(har([entry(
        content={"size": 3, "mimeType": "text/plain", "encoding": "base64", "text": "not*base64!"})]))
    # Cookies: a Cookie header with several pairs (session, analytics, quoted, empty), a
    # multi-line Set-Cookie, the cookies arrays (with a null value).
    session = "Xq3pL9vB2mK7nR4tY8wZ1cF6hJ0dS5gA"
    seeds["cookies.har"] = compact(har([entry(
        req_headers=[("Cookie", f'_ga=GA1.1.1234567890.1700000000; session_id={session}; theme=dark; '
                                f'quoted="{session}"; empty=; =novalue; csrftoken=mOkO7jyh0v3Fmi0cal3Wuv68')],
        resp_headers=[("Set-Cookie", f"sid={session}; Path=/; HttpOnly\nremember_me=yes-{session}; Secure\nlang=en")],
        cookies=[("session_id", session), ("theme", "dark"), ("", "")],
        resp_cookies=[("sid", session), ("auth", '"' + session + '"')],
    )]))
    seeds["cookies.har"] = seeds["cookies.har"].replace(b'{"name":"","value":""}', b'{"name":"","value":null}')
    # Authentication headers, URLs with userinfo, query and fragment tokens, redirects.
    seeds["auth-and-urls.har"] = compact(har([entry(
        url=f"https://user:pa%40ss@api.example.test:8443/cb?code=4%2F0AX4XfWj3kQ9c8Hh2b&state=xyz123456&page=2"
            f"#access_token={TOKEN}&token_type=bearer",
        req_headers=[("Authorization", "Bearer " + JWT), ("Proxy-Authorization", "Basic dXNlcjpwYXNzd29yZDEyMw=="),
                     ("X-API-Key", "k3y-" + session), ("X-CSRF-Token", "c" + session), ("Referer",
                     "https://app.example.test/?id_token=" + JWT), ("Authorization", "Token  "),
                     (":path", "/v1?api_key=" + session)],
        query=[("code", "4/0AX4XfWj3kQ9c8Hh2b"), ("state", "xyz123456"), ("page", "2"), ("access_token", TOKEN)],
        resp_headers=[("Location", "https://app.example.test/#id_token=" + JWT)],
    )]))
    # Bodies: form-urlencoded (text and params), multipart, JSON with escapes and URLs.
    form = f"username=alice&password=p%40ss+w0rd%21&csrf=mOkO7jyh0v3Fmi0cal3Wuv68&token={TOKEN}"
    multipart = ("--XyZ\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nk3y-v4lue-" + session + "\r\n"
                 "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.env\"\r\n\r\n" + env + "\r\n"
                 "--XyZ--\r\n")
    json_body = json.dumps({"username": "alice", "password": "p\u00e4ss \"w0rd\"\n", "client_secret": "cs-" + session,
                            "redirect_uri": "https://app.example.test/cb?code=4%2F0AX4XfWj3kQ9c8Hh2b",
                            "nested": [{"refresh_token": "rt\\u0041" + session}, {"code": "invalid_grant"}],
                            "note": "\ud83d\ude00 " + TOKEN}, ensure_ascii=True)
    seeds["bodies.har"] = compact(har([
        entry(method="POST", post={"mimeType": "application/x-www-form-urlencoded", "text": form,
                                   "params": [{"name": "password", "value": "p%40ss+w0rd%21"},
                                              {"name": "token", "value": TOKEN}]}),
        entry(method="POST", post={"mimeType": "multipart/form-data; boundary=XyZ", "text": multipart}),
        entry(method="POST", post={"mimeType": "application/json", "text": json_body},
              content={"size": 1, "mimeType": "application/json", "text": json_body}),
        entry(method="POST", post={"mimeType": "", "text": "grant_type=password&password=hunter2"}),
    ]))
    # Values a previous sanitise produced: nothing left to do.
    seeds["already-redacted.har"] = compact(har([entry(
        req_headers=[("Authorization", "Bearer [REDACTED:bearer-token:0a1b2c]"),
                     ("Cookie", "session_id=[REDACTED:session-cookie:3d4e5f]; theme=dark")],
        query=[("access_token", "[REDACTED:github-pat:abcdef]")],
        content={"size": 1, "mimeType": "application/json",
                 "text": json.dumps({"token": JWT.rsplit(".", 1)[0] + ".[REDACTED:sensitive-field:123456]"})},
    )], pages=[{"id": "page_1", "title": "[REDACTED:url-password:aaaaaa]", "startedDateTime": "x"}]))
    # What json::parse tolerates and serde_json does not: raw control characters in strings.
    seeds["control-chars.har"] = (b'{"log":{"entries":[{"request":{"url":"https://x.test/?token=\t' + TOKEN.encode()
                                  + b'","headers":[{"name":"X-Api-Key","value":"ab\x01cd\x1fef\x7fgh' + TOKEN.encode()
                                  + b'"}]}}]}}')
    seeds["invalid-utf8.har"] = (b'{"log":{"entries":[{"request":{"url":"https://x.test/\xff\xfe","headers":'
                                 b'[{"name":"Authorization","value":"Bearer ' + TOKEN.encode() + b'"}]}}]}}')
    return seeds


def har_seeds():
    seeds = fixture_seeds()
    seeds.update(edge_seeds(seeds["minimal.har"]))
    for name, data in seeds.items():
        assert len(data) < HAR_SEED_MAX, f"{name} is {len(data)} bytes"
    return seeds


# ---- audit-log readers (crates/activity) --------------------------------------------------


def fixture(path):
    with open(os.path.join(ACTIVITY_FIXTURES, path), "rb") as f:
        return f.read()


def fixture_records(path, wrapper=None):
    """The records of a fixture: the elements of a top-level array or of `wrapper`, or its lines."""
    raw = fixture(path)
    if path.endswith(".jsonl") or path.endswith(".log"):
        return [json.loads(line) for line in raw.splitlines() if line.strip()]
    doc = json.loads(raw)
    return doc[wrapper] if wrapper else doc


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def pick(records, key, n):
    """The first `n` records with distinct `key(record)`, in order."""
    out, seen = [], set()
    for r in records:
        k = key(r)
        if k not in seen:
            seen.add(k)
            out.append(r)
        if len(out) == n:
            break
    return out


def named(prefix, records):
    return {f"{prefix}-{i}.json": compact(r) for i, r in enumerate(records)}


def dataset_cloudtrail():
    """A few CloudTrail records from the real datasets, when present (else {}): one per
    (eventName, identity type, error?) wanted, from the S3 delivery files in name order, and
    the first Logstash-shipped lines (`@timestamp`, no `eventTime`)."""
    s3 = os.path.join(CLOUDTRAIL_DATA, "invictus-aws-stratus", "CloudTrail")
    lines = os.path.join(CLOUDTRAIL_DATA, "otrf-ec2-proxy-s3-exfil", "ec2_proxy_s3_exfiltration_2020-09-14011940.json")
    if not (os.path.isdir(s3) and os.path.isfile(lines)):
        print(f"note: {CLOUDTRAIL_DATA} not found: the seeds made from it are left as they are")
        return {}
    wanted = [("GetPasswordData", "AssumedRole", True), ("AssumeRole", "AWSService", False),
              ("DescribeInstances", "IAMUser", False), ("GetBucketPolicy", "IAMUser", True),
              ("DeleteAccessKey", "IAMUser", False), ("StopLogging", "IAMUser", True)]
    found = {}
    for name in sorted(os.listdir(s3)):
        with open(os.path.join(s3, name), "rb") as f:
            for r in json.load(f)["Records"]:
                k = (r.get("eventName"), r.get("userIdentity", {}).get("type"), "errorCode" in r)
                if k in wanted and k not in found:
                    found[k] = r
    records = [found[k] for k in wanted if k in found]
    with open(lines, "rb") as f:
        logstash = [json.loads(line) for line in f.read().splitlines()[:3]]
    return {"s3": records, "logstash": logstash}


# Hand-written CloudTrail records for what the datasets lack: a key set inactive (a
# revocation naming the key), `readOnly` as text, a service host for the source, a user agent
# in brackets, escapes in field names and values (the fast path's owned strings), an
# `instancesSet` without a named parameter, and wrong types the slow path words.
CLOUDTRAIL_HAND = {
    "update-access-key.json": {
        "eventVersion": "1.08", "eventTime": "2024-05-02T11:00:03Z", "eventSource": "iam.amazonaws.com",
        "eventName": "UpdateAccessKey", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9",
        "userAgent": "[aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22]",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice",
                         "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "principalId": "AIDAEXAMPLE"},
        "requestParameters": {"userName": "bob", "accessKeyId": "AKIAI44QH8DHBEXAMPLE", "status": "Inactive"},
        "responseElements": None, "readOnly": "FALSE", "eventID": "6f2c1a0e-1111-4c1e-9c1e-000000000001",
    },
    "assumed-role-service.json": {
        "eventTime": "2024-05-02T11:00:03.123+02:00", "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances", "sourceIPAddress": "autoscaling.amazonaws.com", "userAgent": "AWS Internal",
        "errorCode": "Client.UnauthorizedOperation", "errorMessage": "You are not authorized",
        "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/ops/i-0abc",
                         "accessKeyId": "ASIAEXAMPLEEXAMPLE01", "invokedBy": "autoscaling.amazonaws.com",
                         "sessionContext": {"sessionIssuer": {"type": "Role",
                                                              "arn": "arn:aws:iam::111122223333:role/ops"}}},
        "requestParameters": {"instancesSet": {"items": [{"imageId": "ami-1"}, {"instanceId": "i-0abc"}]}},
        "readOnly": True, "resources": [{"accountId": "111122223333"}, {"arn": "", "ARN": None}],
    },
    "escapes.json": None,  # written by hand below: escapes must stay in the bytes
    "wrong-types.json": {
        "eventTime": "2024-05-02T11:00:03Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
        "userIdentity": {"type": "AssumedRole", "arn": 7, "sessionContext": {"sessionIssuer": {"arn": 1}}},
        "sourceIPAddress": "2001:db8::1", "readOnly": "yes", "resources": [{"ARN": 3}, "arn:aws:s3:::x"],
        "requestParameters": {"bucketName": ["b"], "name": "", "instancesSet": "none"},
    },
}
CLOUDTRAIL_ESCAPES = (b'{"eventTime":"2024-05-02T11:00:03Z","eventSource":"secretsmanager.amazonaws.com",'
                      b'"event\\u004eame":"Get\\u0053ecretValue","eventName":"GetSecretValue",'
                      b'"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/\\"q\\"",'
                      b'"accessKeyId":" AKIAEXAMPLE\\t"},"sourceIPAddress":" 198.51.100.7 ",'
                      b'"requestParameters":{"secretId":"prod/db\\/root"},"eventID":"\\u00e9"}\n')


# Near misses for the fast path / slow path check, one mutation away from inputs where the two
# could part: skipped members holding a surrogate pair, a large number and deep nesting (the
# fast path skips them unchecked), a record and identity as arrays one element short of the
# fields a derived struct would take from a sequence.
CLOUDTRAIL_NEAR_MISS = {
    "skipped-members.json": (b'{"eventTime":"2024-05-02T11:00:03Z","eventSource":"s3.amazonaws.com",'
                             b'"eventName":"GetObject","note":"\\ud83d\\ude00","bytes":1e300,"deep":'
                             + b"[" * 100 + b"]" * 100
                             + b',"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","n":-1e-300}}\n'),
    "array-record.json": compact(["2024-05-02T11:00:03Z", None, "s3.amazonaws.com", "GetObject", "e1", "1.2.3.4",
                                  "ua", None, "true", ["IAMUser", "arn:aws:iam::1:user/a", "AKIAEXAMPLE", None]]),
}


def cloudtrail_record_seeds(data):
    seeds = {}
    for i, r in enumerate(data.get("s3", [])):
        seeds[f"s3-{i}-{r['eventName']}.json"] = compact(r)
    for i, r in enumerate(data.get("logstash", [])[:1]):
        seeds[f"logstash-{i}.json"] = compact(r)
    for name, r in CLOUDTRAIL_HAND.items():
        seeds[name] = CLOUDTRAIL_ESCAPES if r is None else compact(r)
    seeds.update(CLOUDTRAIL_NEAR_MISS)
    return seeds


def gz_members(*parts):
    return b"".join(make_gz(p) for p in parts)


def log_dispatch_seeds(data):
    seeds = {}
    s3 = data.get("s3", [])[:3]
    if s3:
        doc = compact({"Records": s3})
        seeds["cloudtrail-s3.json"] = doc
        seeds["cloudtrail-s3.json.gz"] = make_gz(doc)
        # Concatenated pages, the second cut off: what came before the cut is kept.
        page = compact({"Records": s3[:2]})
        seeds["cloudtrail-concatenated.json"] = page + b"\n" + page[: len(page) // 2]
    if data.get("logstash"):
        seeds["cloudtrail-logstash.jsonl"] = b"".join(compact(r) + b"\n" for r in data["logstash"])
    inner = CLOUDTRAIL_HAND["update-access-key.json"]
    seeds["cloudtrail-lookup-events.json"] = (json.dumps({"Events": [
        {"EventId": "e1", "EventName": "UpdateAccessKey", "CloudTrailEvent": json.dumps(inner)},
        {"EventId": "e2", "CloudTrailEvent": CLOUDTRAIL_HAND["assumed-role-service.json"]},
        {"EventId": "e3", "CloudTrailEvent": "{not json"}], "NextToken": "abc"}, indent=4) + "\n").encode()
    seeds["okta-log_stream.jsonl"] = fixture("okta/log_stream.jsonl")
    seeds["okta-system_log.json"] = (json.dumps(fixture_records("okta/system_log.json")[:3], indent=2) + "\n").encode()
    seeds["github-rest_api.json"] = fixture("github/rest_api.json")
    seeds["github-streaming.jsonl.gz"] = make_gz(fixture("github/streaming.jsonl"))
    seeds["atlassian-org-events.json"] = fixture("atlassian/org-events.json")
    seeds["atlassian-jira-audit.json"] = fixture("atlassian/jira-audit.json")
    seeds["google-token-activities.json"] = fixture("google/token-activities.json")
    seeds["google-other-applications.jsonl"] = fixture("google/other-applications.jsonl")
    seeds["vault-audit.log"] = fixture("mapped/vault-audit.log")
    # One line of each platform, then what the dispatcher must survive: blank and CRLF lines,
    # a page of records on a line, an event hook's `data.events`, a lookup-events element, an
    # array of arrays, scalars, invalid JSON, and a record of no known format.
    okta = fixture_records("okta/log_stream.jsonl")[0]
    github = fixture_records("github/streaming.jsonl")[0]
    google = fixture_records("google/other-applications.jsonl")[0]
    vault = fixture_records("mapped/vault-audit.log")
    jira = fixture_records("atlassian/jira-audit.json", "records")[0]
    lines = [
        compact(CLOUDTRAIL_HAND["update-access-key.json"]), b"", compact(okta) + b"\r", compact(github),
        compact({"Records": [CLOUDTRAIL_HAND["wrong-types.json"], google]}),
        compact({"data": {"events": [{"eventType": "user.session.start", "published": "2024-05-02T11:00:03Z"}]}}),
        compact({"CloudTrailEvent": compact(inner).decode()}), compact([[jira], [vault[5]]]),
        b"  ", b"42", b'"text"', b'{"eventName": ', b"{}", compact({"unknown": True}), CLOUDTRAIL_ESCAPES.strip(),
    ]
    seeds["mixed.jsonl"] = b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n"
    seeds["multi-member.gz"] = gz_members(compact(okta) + b"\n", compact(github) + b"\n")
    seeds["truncated.gz"] = make_gz(fixture("google/other-applications.jsonl"))[:-40]
    seeds["not-json.txt"] = b"time=2024-05-02 user=alice action=login\n"
    return seeds


def record_seeds():
    okta = pick(fixture_records("okta/system_log.json") + fixture_records("okta/log_stream.jsonl"),
                lambda r: r.get("eventType"), 8)
    github = pick(fixture_records("github/export.json") + fixture_records("github/rest_api.json")
                  + fixture_records("github/streaming.jsonl"), lambda r: r.get("action"), 8)
    atlassian = []
    for path, wrapper in [("atlassian/org-events.json", "data"), ("atlassian/confluence-audit.json", "results"),
                          ("atlassian/jira-audit.json", "records")]:
        atlassian += fixture_records(path, wrapper)[:3]
    google = (fixture_records("google/token-activities.json", "items")
              + fixture_records("google/other-applications.jsonl"))
    return {
        "okta_record": named("okta", okta),
        "github_record": named("github", github),
        "atlassian_record": named("atlassian", atlassian),
        "google_record": named("google", google),
    }


# Mappings besides the fixture's: unix_ms times as strings, an outcome with glob lists,
# quoted keys holding dots and quotes, an array index, keys given as an array, no categories.
K8S_MAPPING = b"""platform = "kubernetes"
recognise = ["kind", "auditID", ["objectRef", "resource"]]

[[skip]]
path = "stage"
values = ["Request*", "Panic"]

[fields]
time = "stageTimestamp"
action = ["verb", ["objectRef", "resource"], 'objectRef."sub.resource"']
event_id = "auditID"
identity = "user.username"
source_ip = "sourceIPs.0"
user_agent = "userAgent"
resource = 'annotations."authorization.k8s.io/reason"'
outcome = "responseStatus.code"
failure_values = ["4*", "5??"]
success_values = ["2*"]

[categories]
secret_read = ["get:secrets*", "list:secrets*"]
read_only = ["get:*", "list:*", "watch:*"]
"""
K8S_RECORD = compact({
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "0a1b2c",
    "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/prod/secrets", "verb": "list",
    "user": {"username": "system:serviceaccount:ci:deployer", "groups": ["system:serviceaccounts"]},
    "sourceIPs": ["[2001:db8::5]:443", "10.0.0.1"], "userAgent": "kubectl/v1.30.0",
    "objectRef": {"resource": "secrets", "namespace": "prod", "sub.resource": None},
    "responseStatus": {"metadata": {}, "code": 403},
    "stageTimestamp": "2024-05-02T11:00:03.123456Z",
    "annotations": {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""},
})
UNIX_MAPPING = b"""platform = "cloudflare"
recognise = ['"ray.id"', "ts"]

[fields]
time = "ts"
time_format = "unix_ms"
action = "method"
identity = ["client", "a\\\\b\\"c"]
credential = "token"
outcome = "error"
error = "error"
"""
UNIX_RECORD = b'{"ray.id":"8f1","ts":"1714647603217.5","method":"POST","client":{"a\\\\b\\"c":true},' \
              b'"token":12345678901234567890,"error":false}'


def mapped_seeds():
    mapping = fixture("mapped/vault.toml")
    vault = fixture("mapped/vault-audit.log").splitlines()
    seeds = {f"vault-{i}.bin": mapping + b"\0" + vault[i] for i in (0, 1, 3, 4)}
    seeds["vault-mapping-only.toml"] = mapping
    seeds["kubernetes.bin"] = K8S_MAPPING + b"\0" + K8S_RECORD
    seeds["unix-ms.bin"] = UNIX_MAPPING + b"\0" + UNIX_RECORD
    seeds["bad-path.bin"] = (b'platform = "x"\nrecognise = ["a..b"]\n[fields]\ntime = \'"unterminated\'\n'
                             b'action = []\n\0{"a":{"":{"b":1}}}')
    return seeds


def activity_seeds():
    data = dataset_cloudtrail()
    seeds = {"log_dispatch": log_dispatch_seeds(data), "cloudtrail_record": cloudtrail_record_seeds(data)}
    seeds.update(record_seeds())
    seeds["mapped_source"] = mapped_seeds()
    for target, files in seeds.items():
        for name, content in files.items():
            assert len(content) < ACTIVITY_SEED_MAX, f"{target}/{name} is {len(content)} bytes"
    return seeds


def write(target, seeds):
    seed_dir = os.path.join(HERE, "seeds", target)
    corpus_dir = os.path.join(HERE, "corpus", target)
    os.makedirs(seed_dir, exist_ok=True)
    os.makedirs(corpus_dir, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(seed_dir, name), "wb") as f:
            f.write(data)
        shutil.copy(os.path.join(seed_dir, name), os.path.join(corpus_dir, name))
        print(f"{target}/{name}: {len(data)} bytes")


if __name__ == "__main__":
    write("archive_reader", archive_seeds())
    write("rule_loader", RULE_SEEDS)
    write("har_reader", har_seeds())
    for target, seeds in activity_seeds().items():
        write(target, seeds)
