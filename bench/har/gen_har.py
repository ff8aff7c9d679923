#!/usr/bin/env python3
"""Deterministic generator of a large, realistic HTTP Archive (HAR 1.2) file with planted secrets.

Writes one HAR of about --size-mb MiB that looks like a Chrome DevTools export ("Save all as
HAR with content") of a long browsing session against a SaaS web app: pretty-printed with
2-space indentation, HTTP/2 pseudo-headers, 22-30 request + response headers per entry,
`cookies`, `queryString`, `timings`, `_initiator`, `_priority`, `_resourceType`,
`serverIPAddress`, pages with `pageTimings`. Bodies: JSON API responses (lists of objects,
2-200 KB), minified JS bundles, HTML documents, CSS, base64 images (PNG/JPEG-like bytes),
base64 fonts, XHR POSTs with JSON and form-urlencoded bodies, redirects, beacons and
preflights. By bytes roughly 40% JSON bodies, 25% JS/HTML/CSS text, 30% base64 images and
fonts, the rest headers and structure (the meta file records the measured shares).

Secrets are planted at about one per 200 entries, and at least one per 4 MiB of output (so at least
~250 in 1 GiB), in all the places a HAR hides them: Authorization Bearer (opaque, JWT,
provider tokens), Basic, Okta `SSWS`, X-API-Key, request Cookie / response Set-Cookie session
cookies (header and `cookies` array), query parameters, URL fragments in redirects, form
bodies, JSON request/response bodies, provider tokens (GitHub ghp_ with a valid CRC32
checksum, AWS key pair, Slack xoxb-, Stripe sk_live_) in JSON/JS/HTML bodies, and inside a
base64-encoded text response. Decoys that must not be reported are planted too:
`Authorization: Bearer undefined|null|`, analytics/preference cookies (_ga, _gid, theme=dark,
...), `"code": "invalid_request"`, `"token_type": "Bearer"`, documentation EXAMPLE keys,
YOUR_API_KEY placeholders.

The ground truth (never inside the HAR) goes to --truth, JSON lines, one per planted secret
or decoy, never the plaintext:

  {"class": "secret"|"decoy", "id": 17, "entry": 1234, "where": "header"|"cookie"|"query"|
   "fragment"|"form"|"json"|"body"|"base64-body", "kind": "jwt", "note": "...",
   "secret_sha256": "...", "alt_sha256": [...], "pointers": ["/log/entries/1234/request/headers/5/value"],
   "lines": [123456]}

`secret_sha256` is the sha256 of the secret value as it appears (the token after "Bearer ",
the cookie value, the decoded query value, ...); `alt_sha256` holds other defensible
representations a scanner might hash (the whole header value, "user:password" and the
password for Basic, the AWS key id for the AWS pair, the URL-decoded cookie value). `pointers`
are JSON pointers (RFC 6901) to every string in the HAR that contains the secret; `lines`
are 1-based line numbers of the HAR file where it occurs. Background cookies that recur on
many entries are recorded once (the first entry). A meta file (--meta, default the truth path
with .meta.json) records the parameters, sizes, counts and byte shares.

The HAR is streamed to disk entry by entry; bodies are slices of pools of pre-generated blobs
with per-entry variation, so 1 GiB takes well under a minute or two. Same --seed and --size-mb
=> byte-identical HAR and truth (Python's `random` with int seeds, no hash-order dependence).

Usage: gen_har.py --size-mb 200 [--seed 20241128] --out session.har --truth truth.jsonl
"""

import argparse
import base64
import hashlib
import json
import math
import os
import random
import string
import sys
import time
import urllib.parse
import zlib

# The corpus generator's token helpers: one definition of GitHub's checksum format.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from gen_corpus import gh_token, rstr  # noqa: E402

GEN_VERSION = 1
MIB = 1024 * 1024

DIGITS = string.digits
LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
ALNUM = DIGITS + UPPER + LOWER  # base62 order used by GitHub's checksum
HEX = "0123456789abcdef"
UHEX = "0123456789ABCDEF"
B64 = UPPER + LOWER + DIGITS + "+/"
B64URL = UPPER + LOWER + DIGITS + "-_"
B32 = UPPER + "234567"
PWCHARS = ALNUM + "!*-_.~^+@#"

SENTINEL = "@@KW_BODY_SENTINEL@@"
SENTINEL_Q = b'"' + SENTINEL.encode() + b'"'
ENTRY_INDENT = 6  # {"log": {"entries": [ <entry> ] } }

ORGS = """northwind contoso fabrikam acme globex initech umbrella hooli tailspin litware proseware
woodgrove alpine coho wideworld""".split()
PRODUCTS = """atlas beacon comet delta ember falcon galaxy harbor iris kepler lumen meridian nova
orbit pulse quartz raven sierra summit tundra vertex willow zephyr aurora cedar helix nimbus""".split()
NOUNS = """user account order invoice payment session customer product cart item inventory shipment
address report metric event message queue job task schedule setting profile permission role group
tenant project build release deploy cluster node service endpoint cache record batch file document
image upload notification template widget dashboard chart filter query result page cursor index
schema table snapshot backup ledger transaction balance price discount coupon subscription plan
feature flag experiment segment campaign contact ticket comment thread channel member invite
license quota usage region bucket trace span audit vendor route booking review rating""".split()
VERBS = """get set fetch load save create update delete build parse render validate normalize
compute process handle dispatch send receive publish subscribe sync refresh resolve apply merge
encode decode format convert transform map filter reduce find search check verify init start
stop open close read write reset retry track toggle sort group paginate invalidate""".split()
ADJS = """active pending default current next previous total raw cached remote local primary
internal external public legacy new final custom global shared visible hidden archived""".split()
FIRST = """alice bob carol dave erin frank grace heidi ivan judy niaj olivia peggy rupert sybil
trent victor walter yasmin zoe liam noah emma ava mia lucas ethan amelia harper mateo sofia
jonas lena felix nora hugo clara oskar ines""".split()
LAST = """smith johnson williams brown jones garcia miller davis rodriguez martinez lopez wilson
anderson thomas taylor moore jackson martin lee thompson white harris clark lewis walker young
king wright scott green baker adams mueller schmidt fischer weber meyer wagner becker""".split()
CITIES = ["Berlin", "London", "Paris", "Madrid", "Lisbon", "Dublin", "Oslo", "Zürich", "Wien",
          "Amsterdam", "Toronto", "Montréal", "Boston", "Austin", "Seattle", "Tokyo", "São Paulo",
          "Singapore", "Sydney", "Nairobi", "Kraków", "Malmö"]
COUNTRIES = "DE GB FR ES PT IE NO CH AT NL CA US JP BR SG AU KE PL SE".split()
STATUSES = ["active", "pending", "suspended", "archived", "draft", "paid", "overdue", "open", "closed",
            "in_progress", "resolved", "queued", "failed", "succeeded"]
WORDS = """the a of to in for on with by from at as is are was be this that it we our you your they
when then if while before after because so but or and not only also just more very value list item
field key data state status error request response client server cache batch limit default current
new old first last next each every all any some""".split()

UA = {
    "win": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36", '"Windows"'),
    "mac": ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36", '"macOS"'),
    "linux": ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36", '"Linux"'),
}
SEC_CH_UA = '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def sha256(s):
    if isinstance(s, str):
        s = s.encode()
    return hashlib.sha256(s).hexdigest()


def jesc(s):
    """JSON string escaping without the quotes, as bytes (the HAR is UTF-8, non-ASCII kept)."""
    return json.dumps(s, ensure_ascii=False)[1:-1].encode()


def uuid4(rng):
    h = rstr(rng, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{rng.choice('89ab')}{h[17:20]}-{h[20:32]}"


def b64url_nopad(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def iso(t):
    ms = int(round((t - math.floor(t)) * 1000)) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(math.floor(t))) + f".{ms:03d}Z"


def http_date(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))


def email(rng):
    return f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice(ORGS)}.{rng.choice(['com', 'io', 'net'])}"


def sentence(rng, lo=4, hi=12):
    s = " ".join(rng.choice(WORDS if rng.random() < 0.55 else NOUNS) for _ in range(rng.randint(lo, hi)))
    return s[:1].upper() + s[1:] + "."


def loguniform(rng, lo, hi):
    return int(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# --------------------------------------------------------------------------------------
# secret values
# --------------------------------------------------------------------------------------
def jwt_token(rng, iss=None):
    alg = rng.choice(["HS256", "RS256", "RS256", "ES256"])
    hdr = {"alg": alg, "typ": "JWT"}
    if alg != "HS256":
        hdr["kid"] = rstr(rng, B64URL, 22)
    now = 1732780000 + rng.randint(0, 86400)
    payload = {"iss": iss or f"https://auth.{rng.choice(ORGS)}.io/", "sub": uuid4(rng),
               "aud": rng.choice(PRODUCTS) + "-api", "iat": now, "exp": now + rng.choice([900, 3600, 86400]),
               "scope": "openid profile email read:" + rng.choice(NOUNS), "azp": rstr(rng, ALNUM, 32),
               "tenant": rng.choice(ORGS), "sid": uuid4(rng)}
    sig_len = {"HS256": 32, "RS256": 256, "ES256": 64}[alg]
    return ".".join([b64url_nopad(json.dumps(hdr, separators=(",", ":")).encode()),
                     b64url_nopad(json.dumps(payload, separators=(",", ":")).encode()),
                     b64url_nopad(rng.randbytes(sig_len))])


def password_value(rng):
    while True:
        v = rstr(rng, PWCHARS, rng.randint(14, 28))
        if sum(c.isdigit() for c in v) >= 2 and sum(c.isupper() for c in v) >= 2 and v[0] not in "-+.":
            return v


def opaque_token(rng):
    k = rng.random()
    if k < 0.35:
        return rstr(rng, B64URL, 43)
    if k < 0.6:
        return "ya29.a0" + rstr(rng, B64URL, 160)
    if k < 0.8:
        return rstr(rng, HEX, 64)
    return "at_" + rstr(rng, ALNUM, 40)


def aws_pair(rng):
    return "AKIA" + rstr(rng, B32, 16), rstr(rng, ALNUM + "+/", 40)


def slack_bot(rng):
    return f"xoxb-{rng.randint(10 ** 10, 10 ** 12)}-{rng.randint(10 ** 11, 10 ** 13 - 1)}-{rstr(rng, ALNUM, 24)}"


def stripe_live(rng):
    return "sk_live_" + (rstr(rng, ALNUM, 24) if rng.random() < 0.4 else "51" + rstr(rng, ALNUM, 97))


def okta_token(rng):
    return "00" + rstr(rng, ALNUM + "_-", 40)


# --------------------------------------------------------------------------------------
# body pools
# --------------------------------------------------------------------------------------
class Pools:
    """Pre-generated, pre-escaped body fragments. Bodies are slices of these plus per-entry bits."""

    def __init__(self, rng, org, app_host, api_host, cdn_host):
        self.rng = rng
        self.org, self.app_host, self.api_host, self.cdn_host = org, app_host, api_host, cdn_host
        self.json_objs = {r: self._objs(r) for r in ("users", "orders", "invoices", "events", "projects",
                                                      "audit-logs", "tickets", "metrics", "products")}
        self.js_modules = [self._js_module() for _ in range(260)]
        self.css_rules = [self._css_rule() for _ in range(1500)]
        self.html_sections = [self._html_section() for _ in range(300)]
        self.images = [self._image() for _ in range(48)]
        self.fonts = [self._font() for _ in range(6)]

    # ---- JSON
    def _obj(self, res, i):
        rng = self.rng
        fn, ln = rng.choice(FIRST), rng.choice(LAST)
        t = 1700000000 + rng.randint(0, 30000000)
        if res == "users":
            o = {"id": uuid4(rng), "email": f"{fn}.{ln}@{self.org}.com", "name": f"{fn.title()} {ln.title()}",
                 "role": rng.choice(["admin", "member", "viewer", "billing", "owner"]),
                 "status": rng.choice(STATUSES[:4]), "created_at": iso(t), "last_login_at": iso(t + 86400 * 40),
                 "locale": rng.choice(["en-US", "de-DE", "fr-FR", "ja-JP", "pt-BR"]),
                 "avatar_url": f"https://{self.cdn_host}/avatars/{rstr(rng, HEX, 32)}.png?s=64",
                 "teams": [rng.choice(PRODUCTS) for _ in range(rng.randint(0, 3))], "mfa_enabled": rng.random() < 0.7,
                 "address": {"city": rng.choice(CITIES), "country": rng.choice(COUNTRIES)}}
        elif res == "orders":
            o = {"id": f"ord_{rstr(rng, DIGITS, 9)}", "customer_id": uuid4(rng), "currency": rng.choice(["usd", "eur", "gbp"]),
                 "status": rng.choice(STATUSES), "created": t,
                 "items": [{"sku": f"SKU-{rstr(rng, UPPER + DIGITS, 8)}", "name": f"{rng.choice(ADJS).title()} {rng.choice(NOUNS)}",
                            "qty": rng.randint(1, 9), "unit_amount": rng.randint(100, 99999)} for _ in range(rng.randint(1, 5))],
                 "shipping": {"name": f"{fn.title()} {ln.title()}", "city": rng.choice(CITIES), "postal_code": rstr(rng, DIGITS, 5)},
                 "total": rng.randint(500, 999999), "metadata": {"channel": rng.choice(["web", "ios", "android", "api"])}}
        elif res == "invoices":
            o = {"id": f"in_{rstr(rng, ALNUM, 14)}", "number": f"{self.org.upper()[:4]}-{rng.randint(1000, 99999)}",
                 "amount_due": rng.randint(0, 500000), "amount_paid": rng.randint(0, 500000), "status": rng.choice(STATUSES),
                 "period_start": t, "period_end": t + 2592000, "hosted_invoice_url": f"https://{self.app_host}/billing/invoices/{rstr(rng, ALNUM, 16)}",
                 "lines": {"object": "list", "total_count": rng.randint(1, 4), "data": [
                     {"description": f"{rng.choice(PRODUCTS).title()} plan × {rng.randint(1, 40)} seats", "amount": rng.randint(100, 90000)}]}}
        elif res == "events":
            o = {"id": uuid4(rng), "type": f"{rng.choice(NOUNS)}.{rng.choice(['created', 'updated', 'deleted', 'failed'])}",
                 "occurred_at": iso(t), "actor": {"id": uuid4(rng), "type": rng.choice(["user", "api_key", "system"])},
                 "payload": {"before": {"status": rng.choice(STATUSES)}, "after": {"status": rng.choice(STATUSES)}},
                 "ip": f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                 "user_agent": UA[rng.choice(list(UA))][0]}
        elif res == "projects":
            o = {"id": rng.randint(10000, 9999999), "slug": f"{rng.choice(PRODUCTS)}-{rng.choice(NOUNS)}",
                 "name": f"{rng.choice(PRODUCTS).title()} {rng.choice(NOUNS).title()}", "description": sentence(rng, 6, 18),
                 "visibility": rng.choice(["private", "internal", "public"]), "default_branch": "main",
                 "last_commit": {"sha": rstr(rng, HEX, 40), "message": sentence(rng, 3, 9), "author": f"{fn} {ln}"},
                 "stats": {"open_issues": rng.randint(0, 300), "stars": rng.randint(0, 5000)}, "updated_at": iso(t)}
        elif res == "audit-logs":
            o = {"id": f"log_{rstr(rng, ALNUM, 20)}", "action": f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}",
                 "actor_email": f"{fn}.{ln}@{self.org}.com", "target": {"type": rng.choice(NOUNS), "id": uuid4(rng)},
                 "result": rng.choice(["success", "success", "denied"]), "timestamp": iso(t),
                 "request_id": rstr(rng, HEX, 32), "geo": {"city": rng.choice(CITIES), "country": rng.choice(COUNTRIES)}}
        elif res == "tickets":
            o = {"id": rng.randint(1000, 999999), "subject": sentence(rng, 3, 8)[:-1], "body": " ".join(sentence(rng) for _ in range(rng.randint(1, 5))),
                 "priority": rng.choice(["low", "normal", "high", "urgent"]), "status": rng.choice(STATUSES),
                 "requester": {"name": f"{fn.title()} {ln.title()}", "email": email(rng)},
                 "tags": [rng.choice(NOUNS) for _ in range(rng.randint(0, 4))], "created_at": iso(t)}
        elif res == "metrics":
            o = {"metric": f"{rng.choice(NOUNS)}.{rng.choice(['count', 'latency_p95', 'errors', 'bytes'])}",
                 "tags": {"region": rng.choice(["us-east-1", "eu-west-1", "ap-south-1"]), "service": rng.choice(PRODUCTS)},
                 "points": [[t + 60 * k, round(rng.random() * 1000, 3)] for k in range(rng.randint(8, 40))]}
        else:
            o = {"id": f"prod_{rstr(rng, ALNUM, 14)}", "name": f"{rng.choice(ADJS).title()} {rng.choice(NOUNS).title()}",
                 "description": sentence(rng, 8, 24), "price": {"amount": rng.randint(100, 99999), "currency": "EUR"},
                 "images": [f"https://{self.cdn_host}/p/{rstr(rng, HEX, 16)}.jpg" for _ in range(rng.randint(1, 3))],
                 "attributes": {"color": rng.choice(["red", "blue", "black", "grün"]), "size": rng.choice("SMLX")},
                 "in_stock": rng.random() < 0.8}
        s = json.dumps(o, ensure_ascii=False, separators=(",", ":"))
        return jesc(s), len(s.encode())

    def _objs(self, res):
        return [self._obj(res, i) for i in range(self.rng.randint(260, 420))]

    # ---- JS
    def _ident(self):
        rng = self.rng
        return rng.choice(VERBS) + "".join(w.title() for w in (rng.choice(NOUNS) for _ in range(rng.randint(0, 2))))

    def _js_snippet(self):
        rng = self.rng
        a, b, c = (rng.choice("abcdefghijklmnoprstuvwxyz") for _ in range(3))
        k = rng.randrange(12)
        if k == 0:
            return f'{a}.d({b},{{Z:function(){{return {c}}},{self._ident()}:function(){{return {a}{b}}}}});'
        if k == 1:
            return f'var {a}={c}({rng.randint(1000, 99999)}),{b}={c}.n({a});'
        if k == 2:
            return (f'function {self._ident()}({a},{b}){{if(!{a})throw new Error("{sentence(rng, 3, 7)}");'
                    f'return {b}.{self._ident()}({a}).then(function({c}){{return {c}.json()}})}}')
        if k == 3:
            return f'const {self._ident()}=({a},{b})=>({{...{a},{rng.choice(NOUNS)}:{b}.{rng.choice(NOUNS)}??{rng.randint(0, 99)}}});'
        if k == 4:
            return f'(0,{a}.jsx)("{rng.choice(["div", "span", "button", "section", "li"])}",{{className:"{rng.choice(NOUNS)}-{rstr(rng, LOWER + DIGITS, 5)}",children:{b}}})'
        if k == 5:
            return f'{a}.prototype.{self._ident()}=function(){{var {b}=this;return this.{rng.choice(NOUNS)}.map(function({c}){{return {b}.{self._ident()}({c})}})}};'
        if k == 6:
            return f'fetch("/api/v1/{rng.choice(NOUNS)}s?limit={rng.choice([20, 50, 100])}",{{credentials:"include",headers:{{"content-type":"application/json"}}}});'
        if k == 7:
            return f'case {rng.randint(0, 40)}:return {a}.{self._ident()}({b},"{rng.choice(NOUNS)}_{rng.choice(ADJS)}");'
        if k == 8:
            return f'{a}.exports=JSON.parse(\'{{"{rng.choice(NOUNS)}":"{sentence(rng, 2, 5)}","{rng.choice(NOUNS)}":{rng.randint(0, 9999)}}}\');'
        if k == 9:
            return f'for(var {a}=0,{b}={c}.length;{a}<{b};{a}++){c}[{a}]&&({c}[{a}].{rng.choice(NOUNS)}=!{rng.randint(0, 1)});'
        if k == 10:
            return f'if("{rng.choice(NOUNS)}"==={a}.type){{{b}.dispatch({{type:"{rng.choice(NOUNS).upper()}/{rng.choice(VERBS).upper()}",payload:{a}.payload}});return}}'
        return f'"{rstr(rng, LOWER + DIGITS, 8)}":function({a},{b},{c}){{"use strict";{c}.r({b});'

    def _js_module(self):
        rng = self.rng
        target = loguniform(rng, 1500, 40000)
        parts, n = [], 0
        while n < target:
            s = self._js_snippet()
            parts.append(s)
            n += len(s)
        s = f'{rng.randint(100, 99999)}:function(e,t,n){{"use strict";' + "".join(parts) + "},"
        return jesc(s), len(s.encode())

    # ---- CSS / HTML
    def _css_rule(self):
        rng = self.rng
        sel = rng.choice([f".{rng.choice(NOUNS)}-{rng.choice(ADJS)}", f".css-{rstr(rng, LOWER + DIGITS, 6)}",
                          f"#{rng.choice(NOUNS)} .{rng.choice(NOUNS)}__{rng.choice(NOUNS)}", f".sc-{rstr(rng, ALNUM, 6)}:hover"])
        props = ";".join(rng.choice([f"margin:{rng.randint(0, 32)}px", f"padding:{rng.randint(0, 24)}px {rng.randint(0, 24)}px",
                                     f"color:#{rstr(rng, HEX, 6)}", f"background-color:rgba({rng.randint(0, 255)},{rng.randint(0, 255)},{rng.randint(0, 255)},.{rng.randint(1, 9)})",
                                     "display:flex", "align-items:center", f"font-size:{rng.choice([12, 13, 14, 16, 18, 24])}px",
                                     f"border-radius:{rng.randint(0, 12)}px", "transition:all .2s ease-in-out", f"z-index:{rng.randint(1, 1000)}"])
                         for _ in range(rng.randint(2, 7)))
        s = f"{sel}{{{props}}}"
        return jesc(s), len(s.encode())

    def _html_section(self):
        rng = self.rng
        rows = "".join(f'<li class="{rng.choice(NOUNS)}-item"><a href="/{rng.choice(NOUNS)}s/{rng.randint(1, 99999)}">'
                       f'{rng.choice(ADJS).title()} {rng.choice(NOUNS)}</a><span class="meta">{sentence(rng, 3, 9)}</span></li>'
                       for _ in range(rng.randint(3, 30)))
        s = (f'<section class="{rng.choice(NOUNS)}-panel" data-testid="{rng.choice(NOUNS)}-{rng.choice(NOUNS)}">'
             f'<h2>{rng.choice(ADJS).title()} {rng.choice(NOUNS)}s</h2><p>{sentence(rng, 8, 20)}</p><ul>{rows}</ul></section>\n')
        return jesc(s), len(s.encode())

    # ---- binary
    def _image(self):
        rng = self.rng
        n = loguniform(rng, 1200, 300000)
        if rng.random() < 0.55:
            w, h = rng.randint(16, 1600), rng.randint(16, 1200)
            ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])

            def chunk(t, d):
                return len(d).to_bytes(4, "big") + t + d + zlib.crc32(t + d).to_bytes(4, "big")
            raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x78\x9c" + rng.randbytes(n)) + chunk(b"IEND", b"")
            mime = "image/png"
        else:
            raw = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x48\x00\x48\x00\x00"
                   b"\xff\xdb\x00\x43\x00" + rng.randbytes(64) + b"\xff\xc0\x00\x11\x08" + rng.randbytes(15)
                   + b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00" + rng.randbytes(n) + b"\xff\xd9")
            mime = "image/jpeg"
        return base64.b64encode(raw), len(raw), mime

    def _font(self):
        rng = self.rng
        n = loguniform(rng, 18000, 110000)
        raw = b"wOF2\x00\x01\x00\x00" + n.to_bytes(4, "big") + rng.randbytes(n)
        return base64.b64encode(raw), len(raw), "font/woff2"


# --------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------
class Body:
    __slots__ = ("pieces", "size", "encoding", "mime", "cat")

    def __init__(self, pieces, size, mime, cat, encoding=None):
        self.pieces, self.size, self.mime, self.cat, self.encoding = pieces, size, mime, cat, encoding

    @classmethod
    def text(cls, s, mime, cat):
        return cls([jesc(s)], len(s.encode()), mime, cat)

    @classmethod
    def b64text(cls, s, mime, cat):
        raw = s.encode()
        return cls([base64.b64encode(raw)], len(raw), mime, cat, "base64")

    def nbytes(self):
        return sum(len(p) for p in self.pieces)


SECRET_SITES = ["bearer-opaque", "bearer-jwt", "basic", "okta-ssws", "x-api-key", "bearer-provider",
                "cookie-request", "cookie-set", "query-access_token", "query-code", "query-api_key",
                "fragment-access_token", "fragment-id_token", "form-password", "form-client_secret",
                "json-token-response", "json-client_secret", "json-provider", "body-provider",
                "base64-body", "cookie-request", "bearer-jwt", "json-provider", "body-provider"]
DECOY_SITES = ["bearer-empty", "error-code", "token-type", "example-keys", "placeholder-query", "example-keys"]
OPTIONAL_RESP = {"x-content-type-options", "referrer-policy", "x-frame-options", "alt-svc", "vary", "server",
                 "strict-transport-security", "cf-cache-status", "age", "x-amz-cf-pop", "via", "x-cache",
                 "access-control-allow-credentials", "x-ratelimit-limit", "x-ratelimit-remaining", "last-modified"}
OPTIONAL_REQ = {"priority", "sec-ch-ua-mobile", "x-client-version", "baggage", "sec-fetch-user", "upgrade-insecure-requests",
                "x-requested-with", "cache-control"}
PROVIDERS = ["github-pat", "aws", "slack-bot-token", "stripe-secret-key"]


class HarGen:
    def __init__(self, seed, target_bytes):
        self.rng = rng = random.Random(seed)
        self.target = target_bytes
        self.org = rng.choice(ORGS)
        tld = rng.choice(["io", "com", "app"])
        self.app_host = f"app.{self.org}.{tld}"
        self.api_host = f"api.{self.org}.{tld}"
        self.auth_host = f"login.{self.org}.{tld}"
        self.cdn_host = f"static.{self.org}cdn.net"
        self.okta_host = f"{self.org}.okta.com"
        self.ips = {h: f"{rng.choice([104, 172, 151, 13, 18, 34, 52])}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                    for h in (self.app_host, self.api_host, self.auth_host, self.cdn_host, self.okta_host,
                              "www.google-analytics.com", "api.github.com", "api.stripe.com", "slack.com",
                              "o" + str(rng.randint(10000, 99999)) + ".ingest.sentry.io", "fonts.gstatic.com")}
        self.sentry_host = [h for h in self.ips if h.endswith("sentry.io")][0]
        self.platform = rng.choice(list(UA))
        self.ua, self.platform_hdr = UA[self.platform]
        self.pools = Pools(rng, self.org, self.app_host, self.api_host, self.cdn_host)
        self.build_hash = rstr(rng, HEX, 8)
        self.js_names = [f"{n}.{rstr(rng, HEX, 8)}.js" for n in ["main", "vendor", "runtime", "framework", "app",
                                                                     "dashboard", "settings", "billing", "charts", "editor",
                                                                     "polyfills", "i18n", "reports", "admin"]]
        self.css_names = [f"{n}.{rstr(rng, HEX, 8)}.css" for n in ["main", "vendor", "theme", "print", "charts"]]
        self.routes = ["dashboard", "projects", "settings/profile", "settings/billing", "settings/api-keys", "reports",
                       "users", "orders", "invoices", "tickets", "audit-log", "integrations", "analytics", "admin/tenants"]
        ga_id = rstr(rng, UPPER + DIGITS, 10)
        # background cookies: decoys that recur on every request to the app/api hosts
        self.bg_cookies = [("_ga", f"GA1.1.{rng.randint(10 ** 9, 10 ** 10 - 1)}.{1700000000 + rng.randint(0, 9999999)}"),
                           (f"_ga_{ga_id}", f"GS1.1.{1732780000 + rng.randint(0, 999)}.{rng.randint(2, 40)}.1.{1732780000 + rng.randint(1000, 9999)}.0.0.0"),
                           ("_gid", f"GA1.2.{rng.randint(10 ** 9, 10 ** 10 - 1)}.{1732700000 + rng.randint(0, 99999)}"),
                           ("theme", "dark"), ("lang", "en-US"),
                           ("_fbp", f"fb.1.{1700000000000 + rng.randint(0, 10 ** 10)}.{rng.randint(10 ** 8, 10 ** 9)}")]
        self.bg_recorded = False
        self.ga_tid = "G-" + ga_id
        self.t0 = 1732780800.0 + rng.randint(0, 3600)
        self.n_pages = max(1, int(round(target_bytes / (4 * MIB))))
        self.page_interval = 47.0
        self.page_urls = [f"https://{self.app_host}/{rng.choice(self.routes)}" for _ in range(self.n_pages)]
        self.page_titles = [f"{u.rsplit('/', 1)[-1].replace('-', ' ').title()} · {self.org.title()} Cloud" for u in self.page_urls]
        self.secret_deck, self.decoy_deck = [], []
        self.provider_deck = []
        self.truth = []
        self.next_id = 0
        # body-byte scheduler
        self.cat_target = {"json": 0.40, "text": 0.25, "binary": 0.30}
        self.cat_bytes = {"json": 0, "text": 0, "binary": 0}
        self.struct_bytes = 0
        self.entries = 0
        self.last_page = -1
        self.page_offset = 0.0
        self.last_url = None
        self.until_secret = rng.randint(120, 280)
        self.bytes_since_secret = 0
        self.until_decoy = rng.randint(80, 200)

    # ---- decks
    def draw(self, deck_name, items):
        deck = getattr(self, deck_name)
        if not deck:
            deck.extend(items)
            self.rng.shuffle(deck)
        return deck.pop()

    # ---- headers
    def req_headers(self, method, url, rtype, extra=(), referer=None, cookies=None, origin=False):
        rng = self.rng
        u = urllib.parse.urlsplit(url)
        path = u.path + ("?" + u.query if u.query else "")
        accept = {"document": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
                  "script": "*/*", "stylesheet": "text/css,*/*;q=0.1", "image": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
                  "font": "*/*", "xhr": "application/json, text/plain, */*", "fetch": "application/json", "ping": "*/*",
                  "preflight": "*/*", "other": "*/*"}[rtype]
        dest = {"document": "document", "script": "script", "stylesheet": "style", "image": "image", "font": "font",
                "xhr": "empty", "fetch": "empty", "ping": "empty", "preflight": "empty", "other": "empty"}[rtype]
        site = "same-origin" if u.hostname == self.app_host else ("same-site" if self.org in (u.hostname or "") else "cross-site")
        h = [(":authority", u.netloc), (":method", method), (":path", path), (":scheme", "https"),
             ("accept", accept), ("accept-encoding", "gzip, deflate, br, zstd"), ("accept-language", "en-US,en;q=0.9,de;q=0.8")]
        if rtype == "document":
            h += [("cache-control", "max-age=0"), ("upgrade-insecure-requests", "1"), ("sec-fetch-user", "?1")]
        if cookies:
            h.append(("cookie", "; ".join(f"{k}={v}" for k, v in cookies)))
        if origin or method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            h.append(("origin", f"https://{self.app_host}"))
        h += [("priority", rng.choice(["u=0, i", "u=1, i", "u=1", "u=2", "u=4, i"])),
              ("referer", referer or f"https://{self.app_host}/"),
              ("sec-ch-ua", SEC_CH_UA), ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", self.platform_hdr),
              ("sec-fetch-dest", dest), ("sec-fetch-mode", "navigate" if rtype == "document" else ("no-cors" if rtype in ("image", "stylesheet", "script") else "cors")),
              ("sec-fetch-site", "none" if rtype == "document" and rng.random() < 0.2 else site),
              ("user-agent", self.ua)]
        if rtype in ("xhr", "fetch"):
            if rng.random() < 0.6:
                tid = rstr(rng, HEX, 32)
                h += [("sentry-trace", f"{tid}-{rstr(rng, HEX, 16)}-0"),
                      ("baggage", f"sentry-environment=production,sentry-release={self.build_hash},sentry-public_key={rstr(rng, HEX, 32)},sentry-trace_id={tid}")]
            if rng.random() < 0.4:
                h.append(("x-requested-with", "XMLHttpRequest"))
            h.append(("x-client-version", f"web-{self.build_hash}"))
        h += list(extra)
        return [{"name": k, "value": v} for k, v in h]

    def resp_headers(self, status, mime, size, host, extra=(), cache="no-store"):
        rng = self.rng
        now = self.now
        h = [("date", http_date(now))]
        if mime:
            h.append(("content-type", mime))
        if size and mime and not mime.startswith(("image/", "font/")):
            h.append(("content-encoding", rng.choice(["br", "gzip", "zstd"])))
        elif size:
            h.append(("content-length", str(size)))
        h += [("cache-control", cache),
              ("server", rng.choice(["cloudflare", "envoy", "nginx", "AmazonS3"])),
              ("strict-transport-security", "max-age=31536000; includeSubDomains; preload"),
              ("x-content-type-options", "nosniff")]
        if host == self.cdn_host:
            h += [("etag", f'"{rstr(rng, HEX, 32)}"'), ("last-modified", http_date(now - rng.randint(86400, 86400 * 90))),
                  ("age", str(rng.randint(0, 400000))), ("x-cache", rng.choice(["Hit from cloudfront", "Miss from cloudfront"])),
                  ("via", f"1.1 {rstr(rng, HEX, 32)}.cloudfront.net (CloudFront)"), ("x-amz-cf-pop", rng.choice(["FRA56-P3", "AMS1-C1", "IAD89-C2"])),
                  ("x-amz-cf-id", rstr(rng, B64URL, 54) + "=="), ("access-control-allow-origin", "*"), ("vary", "Origin")]
        else:
            h += [("cf-cache-status", "DYNAMIC"), ("cf-ray", f"{rstr(rng, HEX, 16)}-{rng.choice(['FRA', 'AMS', 'CDG', 'IAD'])}"),
                  ("x-request-id", uuid4(rng)), ("vary", "Origin, Accept-Encoding"),
                  ("access-control-allow-origin", f"https://{self.app_host}"), ("access-control-allow-credentials", "true"),
                  ("x-frame-options", "DENY"), ("referrer-policy", "strict-origin-when-cross-origin"),
                  ("alt-svc", 'h3=":443"; ma=86400')]
            if rng.random() < 0.5:
                h.append(("etag", f'W/"{rng.randint(100, 99999):x}-{rstr(rng, B64URL, 27)}"'))
            if rng.random() < 0.3:
                h += [("x-ratelimit-limit", "1000"), ("x-ratelimit-remaining", str(rng.randint(0, 999)))]
        h += list(extra)
        return [{"name": k, "value": v} for k, v in h]

    # ---- the entry skeleton
    def entry(self, method, url, rtype, status=200, body=None, req_extra=(), resp_extra=(), cookies=None,
              set_cookies=None, post=None, redirect="", cache="no-store", initiator=None, referer=None):
        rng = self.rng
        self.cur_body = body
        host = urllib.parse.urlsplit(url).hostname
        req_cookies = list(cookies) if cookies is not None else (self.bg_cookies if host in (self.app_host, self.api_host) and rtype != "ping" else [])
        rh = self.req_headers(method, url, rtype, req_extra, referer=referer, cookies=req_cookies,
                              origin=rtype in ("xhr", "fetch"))
        qs = [{"name": k, "value": v} for k, v in urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True)]
        size = body.size if body else 0
        mime = body.mime if body else ("" if status in (204, 301, 302, 303, 307) else "text/plain")
        rsp = self.resp_headers(status, mime if body else None, size, host, resp_extra, cache)
        # Chrome exports 30-45 headers for an h2 request + response; keep 22-30 by dropping optional ones
        cap = rng.randint(22, 30)
        for lst, optional in ((rsp, OPTIONAL_RESP), (rh, OPTIONAL_REQ)):
            drop = [j for j, h in enumerate(lst) if h["name"] in optional]
            rng.shuffle(drop)
            over = len(rh) + len(rsp) - cap
            if over > 0:
                gone = set(drop[:over])
                lst[:] = [h for j, h in enumerate(lst) if j not in gone]
        resp_cookies = []
        for c in set_cookies or ():
            name, value, attrs = c
            rsp.append({"name": "set-cookie", "value": f"{name}={value}; " + "; ".join(attrs)})
            resp_cookies.append({"name": name, "value": value, "path": "/", "domain": "." + host.split(".", 1)[1],
                                 "expires": iso(self.now + 86400 * 14), "httpOnly": True, "secure": True, "sameSite": "Lax"})
        blocked = round(rng.uniform(0.3, 40.0), 3)
        wait = round(loguniform(rng, 8, 900) + rng.random(), 3)
        recv = round(size / rng.uniform(2e5, 5e6) * 1000 + rng.random(), 3) if size else round(rng.random(), 3)
        new_conn = rng.random() < 0.12
        dns, connect, ssl = (round(rng.uniform(1, 40), 3), round(rng.uniform(10, 90), 3), round(rng.uniform(8, 60), 3)) if new_conn else (-1, -1, -1)
        if new_conn:
            connect = round(connect + ssl, 3)
        timings = {"blocked": blocked, "dns": dns, "ssl": ssl, "connect": connect, "send": round(rng.uniform(0.05, 2), 3),
                   "wait": wait, "receive": recv, "_blocked_queueing": round(blocked * rng.uniform(0.2, 0.9), 3),
                   "_workerStart": -1, "_workerReady": -1, "_workerFetchStart": -1, "_workerRespondWithSettled": -1}
        total = round(sum(v for k, v in timings.items() if not k.startswith("_") and v > 0), 3)
        if initiator is None:
            if rtype == "document":
                initiator = {"type": "other"}
            elif rtype in ("xhr", "fetch", "ping", "preflight"):
                js = f"https://{self.cdn_host}/assets/{rng.choice(self.js_names)}"
                initiator = {"type": "script", "stack": {"callFrames": [
                    {"functionName": rng.choice(["", self.pools._ident(), "fetch", "request"]), "scriptId": str(rng.randint(10, 999)),
                     "url": js, "lineNumber": 0, "columnNumber": rng.randint(100, 900000)} for _ in range(rng.randint(1, 4))]}}
            else:
                initiator = {"type": "parser", "url": self.page_urls[self.page], "lineNumber": rng.randint(0, 400)}
        content = {"size": size, "mimeType": mime or "x-unknown"}
        if body is not None:
            if body.encoding is None and size > 1000 and not mime.startswith(("image/", "font/")):
                content["compression"] = int(size * rng.uniform(0.55, 0.85))
            content["text"] = SENTINEL
            if body.encoding:
                content["encoding"] = body.encoding
        req = {"method": method, "url": url, "httpVersion": "http/2.0", "headers": rh, "queryString": qs,
               "cookies": [{"name": k, "value": v, "path": "/", "domain": "." + host.split(".", 1)[1], "expires": None,
                            "httpOnly": False, "secure": True} for k, v in req_cookies],
               "headersSize": -1, "bodySize": len(post["text"].encode()) if post else 0}
        if post:
            req["postData"] = post
        transfer = int(size * (0.3 if body and body.encoding is None else 1.0)) + rng.randint(150, 900)
        e = {"_connectionId": str(rng.randint(100000, 999999)), "_initiator": initiator,
             "_priority": {"document": "VeryHigh", "script": "High", "stylesheet": "VeryHigh", "font": "VeryHigh",
                           "image": "Low", "xhr": "High", "fetch": "High", "ping": "VeryLow", "preflight": "High", "other": "Low"}[rtype],
             "_resourceType": rtype, "cache": {}, "connection": str(rng.randint(1000, 999999)),
             "pageref": f"page_{self.page + 1}",
             "request": req,
             "response": {"status": status, "statusText": {200: "", 201: "", 204: "", 301: "", 302: "", 303: "", 400: "", 401: ""}.get(status, ""),
                          "httpVersion": "http/2.0", "headers": rsp, "cookies": resp_cookies, "content": content,
                          "redirectURL": redirect, "headersSize": -1, "bodySize": transfer if body else 0,
                          "_transferSize": transfer, "_error": None, "_fetchedViaServiceWorker": False},
             "serverIPAddress": self.ips.get(host, "104.16.123.96"), "startedDateTime": iso(self.now), "time": total,
             "timings": timings}
        return e

    # ---- bodies
    def json_body(self, target=None, res=None, inject=None):
        rng = self.rng
        res = res or rng.choice(list(self.pools.json_objs))
        objs = self.pools.json_objs[res]
        target = target or loguniform(rng, 2000, 200000)
        i = rng.randrange(len(objs))
        head = json.dumps({"request_id": uuid4(rng), "generated_at": iso(self.now), "object": "list"}, separators=(",", ":"))[:-1]
        pieces = [jesc(head + ',"data":[')]
        size = len(head) + 9
        n = 0
        while size < target:
            if n:
                pieces.append(b",")
                size += 1
            if inject is not None and n == inject[0]:
                pieces.append(jesc(inject[1]))
                size += len(inject[1].encode()) + 1
                pieces.append(b",")
            o, sz = objs[(i + n) % len(objs)]
            pieces.append(o)
            size += sz
            n += 1
        if inject is not None and n <= inject[0]:  # body ended before the injection point
            if n:
                pieces.append(b",")
            pieces.append(jesc(inject[1]))
            size += len(inject[1].encode()) + 1
        tail = f'],"has_more":{"true" if rng.random() < 0.5 else "false"},"next_cursor":"{b64url_nopad(rng.randbytes(12))}","total_count":{n + rng.randint(0, 5000)}}}'
        pieces.append(jesc(tail))
        size += len(tail)
        return Body(pieces, size, "application/json", "json")

    def js_body(self, extra_js=None):
        rng = self.rng
        mods = self.pools.js_modules
        target = loguniform(rng, 15000, 1200000)
        head = f'"use strict";(self.webpackChunk_{self.org}_web=self.webpackChunk_{self.org}_web||[]).push([[{rng.randint(100, 9999)}],{{'
        pieces, size = [jesc(head)], len(head)
        i = rng.randrange(len(mods))
        n = 0
        while size < target:
            m, sz = mods[(i + n) % len(mods)]
            pieces.append(m)
            size += sz
            n += 1
            if extra_js is not None and n == 1:
                pieces.append(jesc(extra_js))
                size += len(extra_js.encode())
        tail = f'}}]);\n//# sourceMappingURL={rng.choice(self.js_names)}.map'
        pieces.append(jesc(tail))
        return Body(pieces, size + len(tail), "application/javascript", "text")

    def css_body(self):
        rng = self.rng
        rules = self.pools.css_rules
        target = loguniform(rng, 4000, 160000)
        pieces, size = [], 0
        i = rng.randrange(len(rules))
        while size < target:
            r, sz = rules[i % len(rules)]
            pieces.append(r)
            size += sz
            i += 1
        return Body(pieces, size, "text/css", "text")

    def html_body(self, inline_script=None):
        rng = self.rng
        nonce = b64url_nopad(rng.randbytes(16))
        head = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<title>{self.page_titles[self.page]}</title><meta name="csrf-token" content="{b64url_nopad(rng.randbytes(32))}">'
                + "".join(f'<link rel="preload" href="https://{self.cdn_host}/assets/{n}" as="script" crossorigin="anonymous" '
                          f'integrity="sha384-{base64.b64encode(rng.randbytes(48)).decode()}">' for n in rng.sample(self.js_names, 4))
                + f'<script nonce="{nonce}">window.__BUILD__="{self.build_hash}";window.dataLayer=window.dataLayer||[];'
                  f'function gtag(){{dataLayer.push(arguments)}}gtag("js",new Date());gtag("config","{self.ga_tid}");</script>'
                + (f'<script nonce="{nonce}">{inline_script}</script>' if inline_script else "")
                + '</head><body><div id="root">\n')
        pieces, size = [jesc(head)], len(head.encode())
        secs = self.pools.html_sections
        target = loguniform(rng, 8000, 150000)
        i = rng.randrange(len(secs))
        while size < target:
            s, sz = secs[i % len(secs)]
            pieces.append(s)
            size += sz
            i += 1
        tail = f'</div><script id="__NEXT_DATA__" type="application/json">{{"buildId":"{self.build_hash}","page":"/{rng.choice(self.routes)}"}}</script></body></html>'
        pieces.append(jesc(tail))
        return Body(pieces, size + len(tail), "text/html", "text")

    def image_body(self, font=False):
        rng = self.rng
        b64, n, mime = rng.choice(self.pools.fonts if font else self.pools.images)
        # vary 12 bytes in the middle: replace 16 aligned base64 chars
        if len(b64) > 200:
            p = rng.randrange(64, len(b64) - 40) // 4 * 4
            pieces = [b64[:p], base64.b64encode(rng.randbytes(12)), b64[p + 16:]]
        else:
            pieces = [b64]
        return Body(pieces, n, mime, "binary", "base64")

    # ---- ordinary entries
    def api_url(self, res=None, extra_q=None):
        rng = self.rng
        res = res or rng.choice(list(self.pools.json_objs))
        q = {"limit": str(rng.choice([25, 50, 100, 200])), "sort": rng.choice(["-created_at", "updated_at", "name"])}
        if rng.random() < 0.5:
            q["cursor"] = b64url_nopad(rng.randbytes(12))
        if rng.random() < 0.3:
            q["filter[status]"] = rng.choice(STATUSES)
        if extra_q:
            q.update(extra_q)
        return f"https://{self.api_host}/v1/{res}?{urllib.parse.urlencode(q)}", res

    def auth_hdr(self):
        return ()

    def ordinary(self, cat):
        rng = self.rng
        page_url = self.page_urls[self.page]
        if cat == "json":
            url, res = self.api_url()
            return self.entry("GET", url, rng.choice(["xhr", "fetch"]), body=self.json_body(res=res), referer=page_url), ()
        if cat == "text":
            k = rng.random()
            if k < 0.55:
                name = rng.choice(self.js_names)
                return self.entry("GET", f"https://{self.cdn_host}/assets/{name}", "script", body=self.js_body(),
                                  cache="public, max-age=31536000, immutable", referer=page_url), ()
            if k < 0.8:
                return self.entry("GET", page_url, "document", body=self.html_body(), cache="no-cache, private"), ()
            name = rng.choice(self.css_names)
            return self.entry("GET", f"https://{self.cdn_host}/assets/{name}", "stylesheet", body=self.css_body(),
                              cache="public, max-age=31536000, immutable", referer=page_url), ()
        # binary
        if rng.random() < 0.12:
            name = f"inter-{rng.choice(['regular', 'medium', 'semibold', 'bold'])}.{rstr(rng, HEX, 8)}.woff2"
            return self.entry("GET", f"https://{self.cdn_host}/fonts/{name}", "font", body=self.image_body(font=True),
                              cache="public, max-age=31536000, immutable", referer=f"https://{self.cdn_host}/assets/{self.css_names[0]}"), ()
        b = self.image_body()
        ext = "png" if b.mime == "image/png" else "jpg"
        folder = rng.choice(["img", "avatars", "thumbnails", "uploads", "icons"])
        return self.entry("GET", f"https://{self.cdn_host}/{folder}/{rstr(rng, HEX, 16)}.{ext}?w={rng.choice([64, 128, 320, 640, 1280])}",
                          "image", body=b, cache="public, max-age=86400", referer=page_url), ()

    def small(self):
        rng = self.rng
        page_url = self.page_urls[self.page]
        k = rng.random()
        if k < 0.25:  # analytics beacon
            q = urllib.parse.urlencode({"v": "2", "tid": self.ga_tid, "gtm": "45je4bk0v" + rstr(rng, DIGITS, 10), "_p": str(rng.randint(10 ** 9, 10 ** 10)),
                                        "cid": f"{rng.randint(10 ** 9, 10 ** 10 - 1)}.{1700000000 + rng.randint(0, 9999999)}",
                                        "ul": "en-us", "sr": "2560x1440", "sid": str(1732780000 + rng.randint(0, 999)), "en": rng.choice(["page_view", "scroll", "user_engagement", "click"]),
                                        "dl": page_url, "dt": self.page_titles[self.page]})
            return self.entry("POST", f"https://www.google-analytics.com/g/collect?{q}", "ping", status=204, referer=page_url), ()
        if k < 0.4:  # CORS preflight
            url, _ = self.api_url()
            return self.entry("OPTIONS", url, "preflight", status=204, cookies=[],
                              req_extra=[("access-control-request-method", rng.choice(["POST", "PATCH", "DELETE"])),
                                         ("access-control-request-headers", "authorization,content-type,x-client-version")],
                              resp_extra=[("access-control-allow-methods", "GET,POST,PUT,PATCH,DELETE,OPTIONS"),
                                          ("access-control-allow-headers", "authorization,content-type,x-client-version"),
                                          ("access-control-max-age", "7200")]), ()
        if k < 0.55:  # redirect
            src = f"https://{self.app_host}/{rng.choice(self.routes)}"
            dst = src + "/" if rng.random() < 0.5 else f"https://{self.app_host}/{rng.choice(self.routes)}?ref=nav"
            return self.entry("GET", src, "document", status=rng.choice([301, 302]), redirect=dst,
                              resp_extra=[("location", dst)]), ()
        if k < 0.8:  # XHR POST JSON
            payload = {"event": f"{rng.choice(NOUNS)}.{rng.choice(VERBS)}", "properties": {"page": page_url, "value": rng.randint(0, 999),
                       "label": f"{rng.choice(ADJS)} {rng.choice(NOUNS)}"}, "client_ts": int(self.now * 1000), "anonymous_id": uuid4(rng)}
            txt = json.dumps(payload, separators=(",", ":"))
            resp = json.dumps({"ok": True, "id": uuid4(rng), "received_at": iso(self.now)}, separators=(",", ":"))
            return self.entry("POST", f"https://{self.api_host}/v1/{rng.choice(['events', 'search', 'track', 'preferences'])}", "fetch",
                              body=Body.text(resp, "application/json", "json"), referer=page_url,
                              req_extra=[("content-type", "application/json")],
                              post={"mimeType": "application/json", "text": txt}), ()
        if k < 0.9:  # form POST (non-secret)
            params = [("q", rng.choice(NOUNS)), ("page", str(rng.randint(1, 9))), ("locale", "en-US"), ("utf8", "✓")]
            return self.entry("POST", f"https://{self.app_host}/{rng.choice(self.routes)}/filter", "xhr", status=200,
                              body=Body.text(json.dumps({"count": rng.randint(0, 999)}), "application/json", "json"),
                              req_extra=[("content-type", "application/x-www-form-urlencoded")],
                              post={"mimeType": "application/x-www-form-urlencoded", "text": urllib.parse.urlencode(params),
                                    "params": [{"name": a, "value": b} for a, b in params]}, referer=page_url), ()
        # small SVG icon
        svg = f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M{rng.randint(0, 24)} {rng.randint(0, 24)}l{rng.randint(1, 9)} {rng.randint(1, 9)}z" fill="#{rstr(rng, HEX, 6)}"/></svg>'
        return self.entry("GET", f"https://{self.cdn_host}/icons/{rng.choice(NOUNS)}.svg", "image", body=Body.text(svg, "image/svg+xml", "text"),
                          cache="public, max-age=31536000, immutable", referer=page_url), ()

    # ---- planted secrets: each returns (entry, [(where, kind, value, alts, note)])
    def provider_secret(self):
        rng = self.rng
        p = self.draw("provider_deck", PROVIDERS)
        if p == "github-pat":
            v = gh_token(rng, "ghp")
            return p, v, [], {"github_token": v}, f'var GITHUB_TOKEN="{v}";'
        if p == "aws":
            kid, sec = aws_pair(rng)
            return (p, sec, [kid, f"{kid}:{sec}"], {"aws_access_key_id": kid, "aws_secret_access_key": sec, "region": "eu-central-1"},
                    f'window.AWS_CONFIG={{accessKeyId:"{kid}",secretAccessKey:"{sec}",region:"eu-central-1"}};')
        if p == "slack-bot-token":
            v = slack_bot(rng)
            return p, v, [], {"slack": {"bot_token": v, "channel": "#alerts"}}, f'const slackBotToken = "{v}";'
        v = stripe_live(rng)
        return p, v, [], {"stripe_secret_key": v, "stripe_account": "acct_" + rstr(rng, ALNUM, 16)}, f'Stripe.secretKey="{v}";'

    def secret_entry(self, site):
        rng = self.rng
        page_url = self.page_urls[self.page]
        S = []
        if site in ("bearer-opaque", "bearer-jwt", "bearer-provider", "basic", "okta-ssws", "x-api-key"):
            url, res = self.api_url()
            host_url = url
            if site == "bearer-opaque":
                v = opaque_token(rng)
                hv, kind = f"Bearer {v}", "bearer-opaque"
                hdr = ("authorization", hv)
                alts = [hv]
            elif site == "bearer-jwt":
                v = jwt_token(rng)
                hv, kind = f"Bearer {v}", "jwt"
                hdr, alts = ("authorization", hv), [hv]
            elif site == "bearer-provider":
                kind = rng.choice(["github-pat", "stripe-secret-key", "slack-bot-token"])
                if kind == "github-pat":
                    v = gh_token(rng, "ghp")
                    hv, host_url = f"token {v}", f"https://api.github.com/repos/{self.org}/{rng.choice(PRODUCTS)}/pulls?state=open&per_page=50"
                elif kind == "stripe-secret-key":
                    v = stripe_live(rng)
                    hv, host_url = f"Bearer {v}", f"https://api.stripe.com/v1/charges?limit={rng.choice([10, 25, 100])}"
                else:
                    v = slack_bot(rng)
                    hv, host_url = f"Bearer {v}", f"https://slack.com/api/conversations.list?limit=200&types=public_channel"
                hdr, alts = ("authorization", hv), [hv]
            elif site == "basic":
                user, pw = rng.choice([email(rng), rng.choice(FIRST), "deploy", "ci-bot"]), password_value(rng)
                v = base64.b64encode(f"{user}:{pw}".encode()).decode()
                hv, kind = f"Basic {v}", "basic-auth"
                hdr, alts = ("authorization", hv), [hv, f"{user}:{pw}", pw]
                host_url = f"https://registry.{self.org}.io/v2/{rng.choice(PRODUCTS)}/manifests/{rng.choice(['latest', 'v1.4.2', 'main'])}"
            elif site == "okta-ssws":
                v = okta_token(rng)
                hv, kind = f"SSWS {v}", "okta-api-token"
                hdr, alts = ("authorization", hv), [hv]
                host_url = f"https://{self.okta_host}/api/v1/users?limit=200&filter=status%20eq%20%22ACTIVE%22"
                res = "users"
            else:
                v = rstr(rng, HEX, 32) if rng.random() < 0.5 else rstr(rng, ALNUM, 40)
                hv, kind = v, "api-key"
                hdr, alts = ("x-api-key", v), []
            e = self.entry("GET", host_url, "fetch", body=self.json_body(res=res), req_extra=[hdr], referer=page_url)
            S.append(("header", kind, v, alts, f"{hdr[0]} request header"))
            return e, S
        if site in ("cookie-request", "cookie-set"):
            k = rng.randrange(4)
            if k == 0:
                name, v = "session_id", rstr(rng, HEX, 64) if rng.random() < 0.5 else rstr(rng, B64URL, 43)
            elif k == 1:
                name, v = "JSESSIONID", rstr(rng, UHEX, 32) + rng.choice(["", ".node1", ".worker-3"])
            elif k == 2:
                raw = base64.b64encode(rng.randbytes(rng.randint(180, 300))).decode() + "--" + base64.b64encode(rng.randbytes(12)).decode() \
                    + "--" + base64.b64encode(rng.randbytes(16)).decode()
                name, v = "_gh_sess", urllib.parse.quote(raw, safe="")
            else:
                name, v = "tenant.session.token", jwt_token(rng, iss=f"https://{self.auth_host}/")
            alts = [f"{name}={v}"]
            dec = urllib.parse.unquote(v)
            if dec != v:
                alts.append(dec)
            if site == "cookie-request":
                cookies = list(self.bg_cookies)
                cookies.insert(rng.randrange(len(cookies) + 1), (name, v))
                url, res = self.api_url()
                e = self.entry("GET", url, "xhr", body=self.json_body(res=res), cookies=cookies, referer=page_url)
                S.append(("cookie", "session-cookie", v, alts, f"request Cookie {name}"))
            else:
                form = [("username", email(rng)), ("remember_me", "1")]
                post = {"mimeType": "application/x-www-form-urlencoded", "text": urllib.parse.urlencode(form),
                        "params": [{"name": a, "value": b} for a, b in form]}
                dst = f"https://{self.app_host}/dashboard"
                e = self.entry("POST", f"https://{self.auth_host}/session", "document", status=302, redirect=dst, post=post,
                               set_cookies=[(name, v, ["path=/", "secure", "HttpOnly", "SameSite=Lax"]),
                                            ("theme", "dark", ["path=/", "Max-Age=31536000"])],
                               resp_extra=[("location", dst)], req_extra=[("content-type", "application/x-www-form-urlencoded")])
                S.append(("cookie", "session-cookie", v, alts, f"response Set-Cookie {name}"))
            return e, S
        if site.startswith("query-"):
            if site == "query-access_token":
                v = opaque_token(rng) if rng.random() < 0.5 else jwt_token(rng)
                url, res = self.api_url(extra_q={"access_token": v})
                e = self.entry("GET", url, "xhr", body=self.json_body(res=res), referer=page_url)
                S.append(("query", "oauth-access-token" if not v.startswith("ey") else "jwt", v, [], "access_token query parameter"))
            elif site == "query-code":
                v = rng.choice([rstr(rng, B64URL, 43), "4/0A" + rstr(rng, B64URL, 70), rstr(rng, ALNUM, 32)])
                state = b64url_nopad(rng.randbytes(16))
                url = f"https://{self.app_host}/oauth/callback?{urllib.parse.urlencode({'code': v, 'state': state, 'scope': 'openid email profile'})}"
                dst = f"https://{self.app_host}/dashboard"
                e = self.entry("GET", url, "document", status=302, redirect=dst, resp_extra=[("location", dst)],
                               referer=f"https://{self.auth_host}/")
                S.append(("query", "oauth-code", v, [], "OAuth authorization code in callback URL"))
            else:
                v = rstr(rng, ALNUM, 39) if rng.random() < 0.5 else rstr(rng, HEX, 32)
                url = f"https://{self.api_host}/v1/geocode?" + urllib.parse.urlencode({"address": f"{rng.randint(1, 200)} {rng.choice(CITIES)}", "api_key": v})
                e = self.entry("GET", url, "fetch", body=self.json_body(res="metrics", target=rng.randint(2000, 8000)), referer=page_url)
                S.append(("query", "api-key", v, [], "api_key query parameter"))
            return e, S
        if site.startswith("fragment-"):
            state = b64url_nopad(rng.randbytes(16))
            if site == "fragment-access_token":
                v = opaque_token(rng)
                frag = urllib.parse.urlencode({"access_token": v, "token_type": "Bearer", "expires_in": "3600", "state": state})
                kind = "oauth-access-token"
            else:
                v = jwt_token(rng, iss=f"https://{self.auth_host}/")
                frag = urllib.parse.urlencode({"id_token": v, "state": state, "session_state": uuid4(rng)})
                kind = "jwt"
            dst = f"https://{self.app_host}/auth/callback#{frag}"
            q = urllib.parse.urlencode({"client_id": rstr(rng, ALNUM, 32), "response_type": "token" if kind != "jwt" else "id_token",
                                        "redirect_uri": f"https://{self.app_host}/auth/callback", "scope": "openid profile", "state": state,
                                        "nonce": b64url_nopad(rng.randbytes(12))})
            e = self.entry("GET", f"https://{self.auth_host}/oauth2/v1/authorize?{q}", "document", status=302, redirect=dst,
                           resp_extra=[("location", dst)], referer=page_url)
            S.append(("fragment", kind, v, [], "token in redirect Location/redirectURL fragment"))
            return e, S
        if site.startswith("form-"):
            if site == "form-password":
                v = password_value(rng)
                form = [("csrf_token", b64url_nopad(rng.randbytes(32))), ("username", email(rng)), ("password", v), ("remember", "on")]
                url, kind, note = f"https://{self.auth_host}/login", "password", "password= in form body"
                resp = Body.text(json.dumps({"redirect": f"https://{self.app_host}/dashboard", "mfa_required": False}), "application/json", "json")
            else:
                v = rstr(rng, B64URL, 48) if rng.random() < 0.5 else rstr(rng, HEX, 64)
                form = [("grant_type", "client_credentials"), ("client_id", rstr(rng, ALNUM, 24)), ("client_secret", v),
                        ("scope", "read:reports write:events")]
                url, kind, note = f"https://{self.auth_host}/oauth/token", "oauth-client-secret", "client_secret= in form body"
                resp = Body.text(json.dumps({"token_type": "Bearer", "expires_in": 3600, "scope": "read:reports write:events",
                                             "access_token": "<redacted-by-proxy>"}), "application/json", "json")
            post = {"mimeType": "application/x-www-form-urlencoded", "text": urllib.parse.urlencode(form),
                    "params": [{"name": a, "value": b} for a, b in form]}
            e = self.entry("POST", url, "xhr", body=resp, post=post, req_extra=[("content-type", "application/x-www-form-urlencoded")],
                           referer=f"https://{self.auth_host}/login")
            S.append(("form", kind, v, [urllib.parse.quote_plus(v)] if urllib.parse.quote_plus(v) != v else [], note))
            return e, S
        if site == "json-token-response":
            at = jwt_token(rng, iss=f"https://{self.auth_host}/") if rng.random() < 0.5 else opaque_token(rng)
            rt = rng.choice([rstr(rng, B64URL, 64), "v1." + rstr(rng, B64URL, 120), "rt_" + rstr(rng, ALNUM, 48)])
            verifier = b64url_nopad(rng.randbytes(32))
            form = [("grant_type", "authorization_code"), ("code_verifier", verifier), ("client_id", rstr(rng, ALNUM, 32)),
                    ("redirect_uri", f"https://{self.app_host}/auth/callback")]
            resp = json.dumps({"access_token": at, "token_type": "Bearer", "expires_in": 3600, "refresh_token": rt,
                               "scope": "openid profile email offline_access"}, indent=None)
            post = {"mimeType": "application/x-www-form-urlencoded", "text": urllib.parse.urlencode(form),
                    "params": [{"name": a, "value": b} for a, b in form]}
            e = self.entry("POST", f"https://{self.auth_host}/oauth/token", "fetch", body=Body.text(resp, "application/json", "json"),
                           post=post, req_extra=[("content-type", "application/x-www-form-urlencoded")], referer=page_url)
            S.append(("json", "jwt" if at.startswith("ey") else "oauth-access-token", at, [], '"access_token" in JSON response'))
            S.append(("json", "oauth-refresh-token", rt, [], '"refresh_token" in JSON response'))
            return e, S
        if site == "json-client_secret":
            v = rstr(rng, B64URL, 40) if rng.random() < 0.5 else "cs_" + rstr(rng, ALNUM, 48)
            cid = rstr(rng, ALNUM, 24)
            if rng.random() < 0.5:  # request body
                txt = json.dumps({"client_id": cid, "client_secret": v, "grant_type": "client_credentials", "audience": f"https://{self.api_host}/"})
                e = self.entry("POST", f"https://{self.auth_host}/oauth/token", "fetch",
                               body=Body.text(json.dumps({"token_type": "Bearer", "expires_in": 86400}), "application/json", "json"),
                               post={"mimeType": "application/json", "text": txt}, req_extra=[("content-type", "application/json")], referer=page_url)
                S.append(("json", "oauth-client-secret", v, [], '"client_secret" in JSON request body'))
            else:  # response of "create OAuth app"
                obj = json.dumps({"id": uuid4(rng), "name": f"{rng.choice(PRODUCTS)} integration", "client_id": cid, "client_secret": v,
                                  "redirect_uris": [f"https://{rng.choice(PRODUCTS)}.example.org/callback"], "created_at": iso(self.now)})
                e = self.entry("POST", f"https://{self.api_host}/v1/oauth-apps", "fetch", status=201, body=Body.text(obj, "application/json", "json"),
                               post={"mimeType": "application/json", "text": json.dumps({"name": "integration"})},
                               req_extra=[("content-type", "application/json")], referer=page_url)
                S.append(("json", "oauth-client-secret", v, [], '"client_secret" in JSON response body'))
            return e, S
        if site == "json-provider":
            kind, v, alts, obj, _ = self.provider_secret()
            inj = json.dumps({"id": uuid4(rng), "type": "integration", "provider": kind.split("-")[0], "config": obj,
                              "updated_at": iso(self.now)}, separators=(",", ":"))
            body = self.json_body(res="projects", target=loguniform(rng, 3000, 120000), inject=(rng.randint(0, 20), inj))
            url, _ = self.api_url(res="integrations")
            e = self.entry("GET", url, "fetch", body=body, referer=page_url)
            S.append(("json", kind, v, alts, "provider token inside a JSON API response"))
            return e, S
        if site == "body-provider":
            kind, v, alts, _, js = self.provider_secret()
            if rng.random() < 0.5:
                name = rng.choice(self.js_names)
                e = self.entry("GET", f"https://{self.cdn_host}/assets/{name}", "script", body=self.js_body(extra_js=js),
                               cache="public, max-age=31536000, immutable", referer=page_url)
                S.append(("body", kind, v, alts, "provider token in a JS bundle"))
            else:
                e = self.entry("GET", page_url, "document", body=self.html_body(inline_script=js), cache="no-cache, private")
                S.append(("body", kind, v, alts, "provider token in an inline script of an HTML page"))
            return e, S
        if site == "base64-body":
            if rng.random() < 0.5:
                kind, v, alts, obj, _ = self.provider_secret()
                txt = json.dumps({"env": "production", "release": self.build_hash, "features": {"beta": True}, "integrations": obj}, indent=2)
            else:
                v = jwt_token(rng) if rng.random() < 0.5 else opaque_token(rng)
                kind, alts = ("jwt" if v.startswith("ey") else "oauth-access-token"), []
                txt = json.dumps({"user": {"id": uuid4(rng), "email": email(rng)}, "access_token": v, "token_type": "Bearer",
                                  "expires_at": int(self.now) + 3600}, indent=2)
            e = self.entry("GET", f"https://{self.app_host}/api/bootstrap?v={self.build_hash}", "fetch",
                           body=Body.b64text(txt, "application/json", "json"), referer=page_url)
            S.append(("base64-body", kind, v, alts, "secret inside a base64-encoded text response"))
            return e, S
        raise ValueError(site)

    def decoy_entry(self, site):
        rng = self.rng
        page_url = self.page_urls[self.page]
        D = []
        if site == "bearer-empty":
            v = rng.choice(["undefined", "null", ""])
            url, res = self.api_url()
            e = self.entry("GET", url, "xhr", status=401, body=Body.text(json.dumps({"error": "unauthorized", "message": "Missing bearer token"}), "application/json", "json"),
                           req_extra=[("authorization", f"Bearer {v}".rstrip(" ") if v else "Bearer")], referer=page_url)
            D.append(("header", "bearer-missing", v or "Bearer", [f"Bearer {v}"], "Authorization: Bearer without a token"))
            return e, D
        if site == "error-code":
            txt = json.dumps({"error": "invalid_request", "code": "invalid_request", "error_description": "The request is missing a required parameter.",
                              "error_uri": f"https://{self.auth_host}/docs/errors#invalid_request"})
            e = self.entry("POST", f"https://{self.auth_host}/oauth/token", "fetch", status=400, body=Body.text(txt, "application/json", "json"),
                           post={"mimeType": "application/x-www-form-urlencoded", "text": "grant_type=refresh_token",
                                 "params": [{"name": "grant_type", "value": "refresh_token"}]},
                           req_extra=[("content-type", "application/x-www-form-urlencoded")], referer=page_url)
            D.append(("json", "error-code", "invalid_request", [], '"code": "invalid_request"'))
            return e, D
        if site == "token-type":
            txt = json.dumps({"active": True, "token_type": "Bearer", "scope": "read:reports", "exp": int(self.now) + 3600,
                              "client_id": rstr(rng, ALNUM, 24), "username": email(rng)})
            e = self.entry("POST", f"https://{self.auth_host}/oauth/introspect", "fetch", body=Body.text(txt, "application/json", "json"),
                           post={"mimeType": "application/json", "text": json.dumps({"token_type_hint": "access_token"})},
                           req_extra=[("content-type", "application/json")], referer=page_url)
            D.append(("json", "token-type", "Bearer", [], '"token_type": "Bearer" without a token'))
            return e, D
        if site == "example-keys":
            kid, sec = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
            gh = "ghp_" + "EXAMPLE" * 5 + "X"
            sl = "xoxb-EXAMPLE-EXAMPLE-EXAMPLEEXAMPLEEXAMPLE"
            doc = json.dumps({"title": "Connect your cloud account", "steps": [
                {"text": "Create an access key and paste it below, e.g.", "example": {"aws_access_key_id": kid, "aws_secret_access_key": sec}},
                {"text": "Or use a GitHub token such as", "example": {"token": gh}},
                {"text": "Slack bot tokens look like", "example": {"bot_token": sl}}]}, indent=None)
            e = self.entry("GET", f"https://{self.app_host}/api/docs/integrations/aws", "fetch", body=Body.text(doc, "application/json", "json"), referer=page_url)
            D.append(("json", "aws-example", sec, [kid], "AWS documentation example key pair"))
            D.append(("json", "github-example", gh, [], "EXAMPLE GitHub token"))
            D.append(("json", "slack-example", sl, [], "EXAMPLE Slack token"))
            return e, D
        if site == "placeholder-query":
            url = f"https://{self.api_host}/v1/geocode?" + urllib.parse.urlencode({"address": rng.choice(CITIES), "api_key": "YOUR_API_KEY"})
            e = self.entry("GET", url, "fetch", status=401, body=Body.text(json.dumps({"error": "invalid api key"}), "application/json", "json"), referer=page_url)
            D.append(("query", "placeholder", "YOUR_API_KEY", [], "api_key=YOUR_API_KEY placeholder"))
            return e, D
        raise ValueError(site)

    # ---- main loop
    def pick_cat(self):
        rng = self.rng
        tot = sum(self.cat_bytes.values()) + 1
        tsum = sum(self.cat_target.values())
        deficits = {c: max(0.0, t / tsum * tot - self.cat_bytes[c]) + 1.0 for c, t in self.cat_target.items()}
        r = rng.random() * sum(deficits.values())
        for c, d in deficits.items():
            r -= d
            if r <= 0:
                return c
        return "json"

    def next_entry(self, written):
        rng = self.rng
        self.page = min(self.n_pages - 1, written * self.n_pages // self.target)
        if self.page != self.last_page:
            self.last_page = self.page
            self.page_offset = rng.uniform(0.0, 0.2)
        self.page_offset += rng.uniform(0.002, 0.4)
        self.now = self.t0 + self.page * self.page_interval + min(self.page_offset, self.page_interval - 1)
        self.until_secret -= 1
        self.until_decoy -= 1
        if self.until_secret <= 0 or self.bytes_since_secret >= 4.0 * MIB:
            self.until_secret = rng.randint(120, 280)
            self.bytes_since_secret = 0
            e, recs = self.secret_entry(self.draw("secret_deck", SECRET_SITES))
            return e, recs, "secret"
        if self.until_decoy <= 0:
            self.until_decoy = rng.randint(80, 200)
            e, recs = self.decoy_entry(self.draw("decoy_deck", DECOY_SITES))
            return e, recs, "decoy"
        if rng.random() < 0.2:
            e, recs = self.small()
        else:
            e, recs = self.ordinary(self.pick_cat())
        return e, recs, None


def leaves(o, ptr=""):
    if isinstance(o, dict):
        for k, v in o.items():
            yield from leaves(v, ptr + "/" + str(k).replace("~", "~0").replace("/", "~1"))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from leaves(v, f"{ptr}/{i}")
    elif isinstance(o, str):
        yield ptr, o


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, required=True, help="approximate HAR size in MiB")
    ap.add_argument("--seed", type=int, default=20241128)
    ap.add_argument("--out", default=os.path.join(here, "..", "corpus", "har", "session.har"))
    ap.add_argument("--truth", default=None, help="ground truth JSON lines (default: bench/out/har/<out stem>-truth.jsonl)")
    ap.add_argument("--meta", default=None, help="meta JSON (default: the truth path with .meta.json)")
    args = ap.parse_args(argv)
    out = os.path.abspath(args.out)
    stem = os.path.splitext(os.path.basename(out))[0]
    truth = os.path.abspath(args.truth or os.path.join(here, "..", "out", "har", f"{stem}-truth.jsonl"))
    meta = os.path.abspath(args.meta or (os.path.splitext(truth)[0] + ".meta.json"))
    if os.path.commonpath([out, truth]) == out:
        sys.exit("--truth must not be inside the HAR")
    for p in (out, truth, meta):
        os.makedirs(os.path.dirname(p), exist_ok=True)
    target = int(args.size_mb * MIB)
    t_start = time.time()
    g = HarGen(args.seed, target)
    t_pools = time.time() - t_start

    tmp_out, tmp_truth = out + ".tmp", truth + ".tmp"
    fh = open(tmp_out, "wb", buffering=1 << 20)
    th = open(tmp_truth, "w")
    pages = []
    for k in range(g.n_pages):
        pages.append({"startedDateTime": iso(g.t0 + k * g.page_interval), "id": f"page_{k + 1}", "title": g.page_titles[k],
                      "pageTimings": {"onContentLoad": round(g.rng.uniform(300, 2500), 3), "onLoad": round(g.rng.uniform(800, 6000), 3)}})
    head = {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"}, "pages": pages, "entries": [SENTINEL]}}
    head_txt = json.dumps(head, indent=2, ensure_ascii=False)
    pre, post = head_txt.split(" " * ENTRY_INDENT + json.dumps(SENTINEL))
    pre = pre.encode()
    fh.write(pre)
    written = len(pre)
    line = 1 + pre.count(b"\n")  # line number of the current write position
    ind = b"\n" + b" " * ENTRY_INDENT
    n_secret = n_decoy = 0
    kinds, wheres = {}, {}
    seen_bg = False
    i = 0
    while written < target - len(post) or i == 0:
        e, recs, what = g.next_entry(written)
        # background cookies: decoys, recorded once (the first entry that carries them)
        if not seen_bg and any(c["name"] == "_ga" for c in e["request"]["cookies"]):
            seen_bg = True
            for name, value in g.bg_cookies:
                recs = list(recs) + [("cookie", "background-cookie", value, [f"{name}={value}"], f"background cookie {name}", "decoy")]
        txt = json.dumps(e, indent=2, ensure_ascii=False).encode()
        txt = b" " * ENTRY_INDENT + txt.replace(b"\n", ind)
        if i:
            txt = b",\n" + txt
        body = g.cur_body  # the response body of the entry just built (None: no content text)
        if recs:
            ptrs_all = list(leaves(e, f"/log/entries/{i}"))
            for r in recs:
                where, kind, value, alts, note = r[:5]
                cls = r[5] if len(r) > 5 else what
                needles = {value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
                needles = {x for x in needles if x}
                ptrs = [p for p, s in ptrs_all if s != SENTINEL and any(x in s for x in needles)]
                lines = set()
                for x in needles:
                    xb = x.encode()
                    j = txt.find(xb)
                    while j >= 0:
                        lines.add(line + txt.count(b"\n", 0, j))
                        j = txt.find(xb, j + 1)
                if where in ("json", "body", "base64-body") and not ptrs and body is not None:
                    ptrs = [f"/log/entries/{i}/response/content/text"]
                    lines.add(line + txt.count(b"\n", 0, txt.find(SENTINEL_Q)))
                rec = {"class": cls, "id": g.next_id, "entry": i, "where": where, "kind": kind, "note": note,
                       "secret_sha256": sha256(value), "alt_sha256": sorted({sha256(a) for a in alts} - {sha256(value)}),
                       "pointers": ptrs, "lines": sorted(lines)}
                g.next_id += 1
                th.write(json.dumps(rec) + "\n")
                if cls == "secret":
                    n_secret += 1
                    kinds[kind] = kinds.get(kind, 0) + 1
                    wheres[where] = wheres.get(where, 0) + 1
                else:
                    n_decoy += 1
        if body is not None:
            a, b = txt.split(SENTINEL_Q)
            fh.write(a)
            fh.write(b'"')
            for p in body.pieces:
                fh.write(p)
            fh.write(b'"')
            fh.write(b)
            bl = body.nbytes()
            g.cat_bytes[body.cat] += bl
            g.struct_bytes += len(txt) - len(SENTINEL_Q) + 2
            written += len(txt) - len(SENTINEL_Q) + 2 + bl
            g.bytes_since_secret += len(txt) + bl
        else:
            fh.write(txt)
            g.struct_bytes += len(txt)
            written += len(txt)
            g.bytes_since_secret += len(txt)
        line += txt.count(b"\n")
        i += 1
    post_b = (post + "\n").encode()
    fh.write(post_b)
    written += len(post_b)
    g.struct_bytes += len(pre) + len(post_b)
    fh.close()
    th.close()
    os.replace(tmp_out, out)
    os.replace(tmp_truth, truth)
    secs = time.time() - t_start
    m = {"generator_version": GEN_VERSION, "seed": args.seed, "size_mb": args.size_mb, "out": out, "truth": truth,
         "bytes": written, "entries": i, "pages": g.n_pages, "lines": line + post_b.count(b"\n") - 1,
         "secrets": n_secret, "decoys": n_decoy, "secrets_by_kind": dict(sorted(kinds.items())),
         "secrets_by_where": dict(sorted(wheres.items())),
         "byte_shares": {"json_bodies": round(g.cat_bytes["json"] / written, 4), "text_bodies": round(g.cat_bytes["text"] / written, 4),
                         "base64_binary": round(g.cat_bytes["binary"] / written, 4), "structure": round(g.struct_bytes / written, 4)},
         "seconds": round(secs, 2), "pool_seconds": round(t_pools, 2), "mb_per_s": round(written / 1e6 / secs, 1)}
    with open(meta, "w") as fh:
        json.dump(m, fh, indent=1)
        fh.write("\n")
    print(json.dumps(m))


if __name__ == "__main__":
    main()
