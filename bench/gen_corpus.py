#!/usr/bin/env python3
"""Deterministic generator of a synthetic, realistic secret-scanning corpus.

Writes a tree of a few hundred fake repositories (source code in many languages, config,
docs, lockfiles, fixtures, logs, CSV, minified bundles, a few binaries) of about --size-mb
MiB into --out, and plants real-format secrets and look-alike decoys into it. The ground
truth goes to <out>/../corpus-truth.jsonl (outside the scanned tree), one JSON object a
line:

  {"kind": "secret"|"decoy", "provider": ..., "path": "repo/file.py", "line": 12,
   "end_line": 12, "secret_sha256": "...", "parts_sha256": [...], "host": "py"}

`line`/`end_line` are 1-based and inclusive: the lines of the credential (both lines of
an AWS key-id + secret-key pair, every line of a PEM block or of a GCP service-account
JSON). `secret_sha256` is the sha256 of the primary secret value (for PEM keys the PEM
text with real newlines; for a base64-encoded k8s `data:` value the decoded secret).
Also written: <out>/../corpus-meta.json (parameters, counts, a digest of the tree).

Same --seed and --size-mb => byte-identical tree and truth (the per-file content only
depends on the seed and the file's index; Python's `random` with string seeds is
independent of PYTHONHASHSEED).

Policy notes (see bench/README.md):
  * Stripe *test* keys are not planted as secrets; the only sk_test_ value in the corpus
    is Stripe's own documented example key, recorded as a decoy. pk_live_ publishable
    keys are decoys (they are meant to be public).
  * Private keys in test fixtures are still real private keys: planted as secrets.
  * Lockfile integrity hashes, source-map mappings, git SHAs in logs etc. occur
    naturally in the background text and are not recorded (any finding there is an FP).
"""

import argparse
import base64
import hashlib
import json
import math
import os
import random
import shutil
import string
import sys
import time
import zlib
from multiprocessing import Pool

GEN_VERSION = 1
MIB = 1024 * 1024

DIGITS = string.digits
LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
ALNUM = DIGITS + UPPER + LOWER  # base62 order used by GitHub's checksum
B62 = ALNUM
HEX = "0123456789abcdef"
UHEX = "0123456789ABCDEF"
B64 = UPPER + LOWER + DIGITS + "+/"
B64URL = UPPER + LOWER + DIGITS + "-_"
B32 = UPPER + "234567"
PWCHARS = ALNUM + "!*-_.~^+"

# --------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------
NOUNS = """user account order invoice payment session customer product cart item inventory
shipment address report metric event message queue worker job task schedule config setting
profile permission role group tenant project repo build artifact release deploy cluster node
pod service endpoint request response handler client server cache store record entry batch
stream file document image thumbnail upload download notification email template widget
dashboard chart filter query result page cursor index schema table column row migration
snapshot backup ledger transaction balance rate price discount coupon subscription plan
feature flag experiment variant segment audience campaign lead contact ticket comment thread
channel room member invite license quota usage limit region zone bucket object blob chunk
frame packet socket connection pool lock timer retry backoff policy rule alert incident
trace span audit catalog vendor supplier warehouse route trip driver vehicle booking
reservation menu recipe review rating score match player team league tournament course
lesson student teacher grade module plugin extension theme layout component store
reducer action effect selector hook provider context router middleware controller model
view serializer validator parser lexer token_count node_id graph edge vertex matrix vector
tensor dataset sample label feature_set pipeline stage step runner executor scheduler
""".split()
VERBS = """get set fetch load save create update delete remove build parse render validate
normalize compute calculate process handle dispatch send receive publish subscribe sync
refresh resolve register apply merge split encode decode serialize deserialize format
convert transform map filter reduce collect find search lookup check verify ensure init
start stop close open read write flush reset retry schedule enqueue dequeue emit track log
record export import upload download attach detach enable disable toggle sort group
aggregate paginate cache invalidate prune compress archive restore migrate seed prepare
resolve bootstrap configure register unregister notify approve reject cancel submit
""".split()
ADJS = """active pending default current next previous max min total raw parsed cached stale
remote local primary secondary internal external public legacy new old temp final base
custom global shared batch async dirty valid invalid empty full partial recent daily weekly
monthly initial last first visible hidden archived deleted expired enabled disabled
""".split()
ORGS = """acme globex initech umbrella hooli stark wayne wonka tyrell cyberdyne soylent
aperture blackmesa oscorp nakatomi vandelay pied-piper dunder-mifflin bluth prestige
massive-dynamic gringotts monarch virtucon octan northwind contoso fabrikam tailspin
adventure-works litware proseware woodgrove margie alpine coho fourth-coffee wide-world
""".split()
PRODUCTS = """atlas beacon comet delta ember falcon galaxy harbor iris jet kepler lumen
meridian nova orbit pulse quartz raven sierra tango unity vertex willow xenon yonder zephyr
aurora basil cedar drift echo flint grove helix indigo juniper kite lotus mosaic nimbus
onyx prism quill ripple summit tundra umber velvet wharf yarrow zinc anchor bramble
cascade dune fable glacier hollow inlet jasper keystone lagoon marble nectar opal
""".split()
SUFFIXES = """service api worker web app cli sdk core gateway proxy ui dashboard admin portal
infra platform tools lib engine bot jobs etl pipeline docs site mobile backend frontend
""".split()
FIRST = """alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy
rupert sybil trent victor walter yasmin zoe liam noah emma ava mia lucas ethan amelia
harper mateo sofia jonas lena felix nora hugo clara oskar ines""".split()
LAST = """smith johnson williams brown jones garcia miller davis rodriguez martinez lopez
gonzalez wilson anderson thomas taylor moore jackson martin lee thompson white harris
clark lewis robinson walker young allen king wright scott green baker adams nelson hill
mueller schmidt schneider fischer weber meyer wagner becker schulz hoffmann""".split()
CITIES = """Berlin London Paris Madrid Lisbon Dublin Oslo Stockholm Helsinki Warsaw Prague
Vienna Zurich Amsterdam Brussels Copenhagen Toronto Montreal Boston Austin Denver Seattle
Chicago Atlanta Tokyo Osaka Seoul Singapore Sydney Melbourne Auckland Nairobi Lagos Cairo
""".split()
COUNTRIES = "DE GB FR ES PT IE NO SE FI PL CZ AT CH NL BE DK CA US JP KR SG AU NZ KE NG EG".split()
WORDS = """the a an of to in for on with by from at as is are was be this that these those
it its we our you your they their when then if else while until before after during
because so but or and not no only also just more most less least very quite rather
value values list item items field fields key keys data state status error errors retry
request response client server cache store batch limit timeout window buffer queue
default current given same new old first last next previous each every all any some
""".split()
MSGS = """failed to {v} {n} | could not {v} {n} | {n} not found | invalid {n} | {vg} {n}
| finished {vg} {n} | retrying {n} after error | {n} is stale, refreshing | skipping {adj} {n}
| {n} queue is full | timeout while waiting for {n} | {adj} {n} detected | unable to {v} {n}
| {n} updated | {n} created | {n} deleted | received {n} | dropping {n} | {n} limit exceeded
""".split("|")
COMMENTS = [
    "Returns the {adj} {n} for the given {n2}.",
    "NOTE: {n} may be None when the {n2} is {adj}.",
    "TODO({user}): handle {adj} {n}s here.",
    "FIXME: this is O(n^2) for large {n} lists.",
    "Keep in sync with {path}.",
    "See https://github.com/{org}/{repo}/issues/{num} for context.",
    "We {v} the {n} first so that the {n2} is never {adj}.",
    "{V} the {n} and {v2} the {n2} in one pass.",
    "This is a workaround for a bug in the {n} {n2}.",
    "Avoid {vg} the {n} twice; the {n2} already does it.",
    "HACK: the upstream {n} API returns {adj} {n2}s sometimes.",
    "Cache the {n} because {vg} it is expensive.",
    "The {n2} must be {adj} before we can {v} the {n}.",
    "Deprecated: use {fn}() instead.",
    "Called once per {n} by the {n2} {n3}.",
    "Guard against {adj} {n}s coming from the {n2} service.",
    "Best effort: failures to {v} the {n} are only logged.",
    "Legacy path, remove after the {n} migration (#{num}).",
]
TLDS = ["com", "io", "net", "dev", "org", "cloud", "app", "co"]
UNICODE_BITS = ["café", "naïve", "Größe", "façade", "São Paulo", "Zürich", "Ångström",
                "日本語", "中文", "한국어", "Привет", "Ελληνικά", "—", "…", "→", "✓", "🚀", "✨", "é"]
LANG_VALUES = {
    "en": ["Save", "Cancel", "Delete", "Settings", "Sign in", "Sign out", "Total", "Checkout",
           "Your order", "Something went wrong", "Try again", "Search", "Profile", "Back"],
    "de": ["Speichern", "Abbrechen", "Löschen", "Einstellungen", "Anmelden", "Abmelden",
           "Gesamt", "Zur Kasse", "Ihre Bestellung", "Etwas ist schiefgelaufen", "Zurück"],
    "fr": ["Enregistrer", "Annuler", "Supprimer", "Paramètres", "Se connecter",
           "Se déconnecter", "Total", "Paiement", "Votre commande", "Réessayer", "Retour"],
    "es": ["Guardar", "Cancelar", "Eliminar", "Configuración", "Iniciar sesión", "Cerrar sesión",
           "Total", "Pagar", "Tu pedido", "Algo salió mal", "Volver"],
    "ja": ["保存", "キャンセル", "削除", "設定", "ログイン", "ログアウト", "合計", "注文", "戻る"],
}


def rstr(rng, alphabet, n):
    return "".join(rng.choices(alphabet, k=n))


def words(rng, n, pool=None):
    pool = pool or NOUNS
    return [rng.choice(pool) for _ in range(n)]


def snake(ws):
    return "_".join(ws)


def camel(ws):
    return ws[0] + "".join(w[:1].upper() + w[1:] for w in ws[1:])


def pascal(ws):
    return "".join(w[:1].upper() + w[1:] for w in ws)


def upper(ws):
    return "_".join(ws).upper()


def kebab(ws):
    return "-".join(ws)


def split_words(ws):
    out = []
    for w in ws:
        out.extend(w.split("_"))
    return out


def ident(rng, style="snake", n=None):
    if n is None:
        n = rng.choice((1, 2, 2, 2, 3))
    ws = split_words([rng.choice(VERBS if i == 0 and rng.random() < 0.3 else NOUNS) for i in range(n)])
    return {"snake": snake, "camel": camel, "pascal": pascal, "upper": upper, "kebab": kebab}[style](ws)


def fn_name(rng, style="snake"):
    ws = split_words([rng.choice(VERBS)] + [rng.choice(NOUNS) for _ in range(rng.choice((1, 1, 2)))])
    return {"snake": snake, "camel": camel, "pascal": pascal}[style](ws)


def sentence(rng, lo=4, hi=14):
    n = rng.randint(lo, hi)
    ws = [rng.choice(WORDS if rng.random() < 0.55 else NOUNS) for _ in range(n)]
    if rng.random() < 0.05:
        ws.insert(rng.randrange(len(ws)), rng.choice(UNICODE_BITS))
    s = " ".join(ws)
    return s[:1].upper() + s[1:] + "."


_DOUBLE = {"set", "get", "stop", "map", "log", "split", "emit", "submit", "run", "plan", "ship"}


def gerund(v):
    if v in _DOUBLE:
        return v + v[-1] + "ing"
    if v.endswith("e") and not v.endswith("ee"):
        return v[:-1] + "ing"
    return v + "ing"


def comment_text(rng):
    t = rng.choice(COMMENTS)
    return t.format(adj=rng.choice(ADJS), n=rng.choice(NOUNS), n2=rng.choice(NOUNS), n3=rng.choice(NOUNS),
                    v=rng.choice(VERBS), vg=gerund(rng.choice(VERBS)), v2=rng.choice(VERBS), V=rng.choice(VERBS).capitalize(),
                    user=rng.choice(FIRST), path=f"{rng.choice(NOUNS)}/{rng.choice(NOUNS)}.py",
                    org=rng.choice(ORGS), repo=rng.choice(PRODUCTS), num=rng.randint(10, 9999),
                    fn=fn_name(rng))


def lc_first(s):
    return s[:1].lower() + s[1:]


def log_msg(rng):
    return rng.choice(MSGS).strip().format(v=rng.choice(VERBS), vg=gerund(rng.choice(VERBS)), n=rng.choice(NOUNS), adj=rng.choice(ADJS))


def uuid4(rng):
    h = rstr(rng, HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{rng.choice('89ab')}{h[17:20]}-{h[20:32]}"


def domain(rng):
    return f"{rng.choice(PRODUCTS)}.{rng.choice(ORGS)}.{rng.choice(TLDS)}"


def host_name(rng):
    return rng.choice([f"{rng.choice(PRODUCTS)}-db.internal", f"db-{rng.randint(1, 9)}.{rng.choice(ORGS)}.local",
                       f"{rng.choice(PRODUCTS)}.{rng.choice(['us-east-1', 'eu-west-1', 'eu-central-1'])}.rds.amazonaws.com",
                       f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(2, 250)}",
                       f"{rng.choice(PRODUCTS)}-{rng.choice(['primary', 'replica', 'main'])}.{rng.choice(ORGS)}.net"])


def email(rng):
    return f"{rng.choice(FIRST)}.{rng.choice(LAST)}@{rng.choice(ORGS)}.{rng.choice(['com', 'io', 'net'])}"


def version(rng):
    return f"{rng.randint(0, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 40)}"


def ts(rng, base=1700000000):
    t = base + rng.randint(0, 60 * 86400)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{rng.randint(0, 999):03d}Z"


def sha(n, rng):
    return rstr(rng, HEX, n)


# --------------------------------------------------------------------------------------
# crypto helpers: DER, RSA, EC P-256, Ed25519 (pure Python, seeded, real structure)
# --------------------------------------------------------------------------------------
def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def der_int(v):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return der(0x02, b)


def der_seq(*items):
    return der(0x30, b"".join(items))


OID_RSA = bytes.fromhex("06092a864886f70d010101")
OID_EC = bytes.fromhex("06072a8648ce3d0201")
OID_P256 = bytes.fromhex("06082a8648ce3d030107")

_SMALL_PRIMES = [p for p in range(3, 20000) if all(p % q for q in range(2, int(p ** 0.5) + 1))]


def _gen_prime(bits, rng):
    width = 4096
    while True:
        c = rng.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        sieve = bytearray(width)
        for p in _SMALL_PRIMES:
            o = ((p - c % p) * ((p + 1) // 2)) % p
            if o < width:
                sieve[o::p] = b"\x01" * len(range(o, width, p))
        for o in range(width):
            if not sieve[o]:
                n = c + 2 * o
                if pow(2, n - 1, n) == 1 and all(pow(a, n - 1, n) == 1 for a in (3, 5, 7)):
                    return n


def rsa_der(rng, bits=2048):
    e = 65537
    while True:
        p = _gen_prime(bits // 2, rng)
        q = _gen_prime(bits // 2, rng)
        if p == q:
            continue
        phi = (p - 1) * (q - 1)
        if math.gcd(e, phi) == 1:
            break
    n = p * q
    d = pow(e, -1, phi)
    return der_seq(der_int(0), der_int(n), der_int(e), der_int(d), der_int(p), der_int(q),
                   der_int(d % (p - 1)), der_int(d % (q - 1)), der_int(pow(q, -1, p))), n, e


def pem(label, body, width=64):
    b = base64.b64encode(body).decode()
    lines = [b[i:i + width] for i in range(0, len(b), width)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


def rsa_pkcs1_pem(rng, bits=2048):
    body, _, _ = rsa_der(rng, bits)
    return pem("RSA PRIVATE KEY", body)


def rsa_pkcs8_pem(rng, bits=2048):
    body, _, _ = rsa_der(rng, bits)
    p8 = der_seq(der_int(0), der_seq(OID_RSA, b"\x05\x00"), der(0x04, body))
    return pem("PRIVATE KEY", p8)


# P-256
_P = 2 ** 256 - 2 ** 224 + 2 ** 192 + 2 ** 96 - 1
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5


def _ec_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % _P == 0:
            return None
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, _P) % _P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, _P) % _P
    x3 = (lam * lam - x1 - x2) % _P
    return x3, (lam * (x1 - x3) - y1) % _P


def _ec_mul(k):
    r, q = None, (_GX, _GY)
    while k:
        if k & 1:
            r = _ec_add(r, q)
        q = _ec_add(q, q)
        k >>= 1
    return r


def ec_pem(rng):
    d = rng.randrange(1, _N)
    x, y = _ec_mul(d)
    pub = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    body = der_seq(der_int(1), der(0x04, d.to_bytes(32, "big")), der(0xA0, OID_P256), der(0xA1, der(0x03, b"\x00" + pub)))
    return pem("EC PRIVATE KEY", body)


# Ed25519 (for OpenSSH keys)
_EP = 2 ** 255 - 19
_ED = -121665 * pow(121666, -1, _EP) % _EP
_EBY = 4 * pow(5, -1, _EP) % _EP


def _ed_recover_x(y, sign):
    x2 = (y * y - 1) * pow(_ED * y * y + 1, -1, _EP)
    x = pow(x2, (_EP + 3) // 8, _EP)
    if (x * x - x2) % _EP != 0:
        x = x * pow(2, (_EP - 1) // 4, _EP) % _EP
    if x & 1 != sign:
        x = _EP - x
    return x


_EBX = _ed_recover_x(_EBY, 0)


def _ed_add(p, q):
    x1, y1, z1, t1 = p
    x2, y2, z2, t2 = q
    a = (y1 - x1) * (y2 - x2) % _EP
    b = (y1 + x1) * (y2 + x2) % _EP
    c = 2 * t1 * t2 * _ED % _EP
    d = 2 * z1 * z2 % _EP
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % _EP, g * h % _EP, f * g % _EP, e * h % _EP


def ed25519_pub(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    r = (0, 1, 1, 0)
    q = (_EBX, _EBY, 1, _EBX * _EBY % _EP)
    while a:
        if a & 1:
            r = _ed_add(r, q)
        q = _ed_add(q, q)
        a >>= 1
    zi = pow(r[2], -1, _EP)
    x, y = r[0] * zi % _EP, r[1] * zi % _EP
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _sshstr(b):
    return len(b).to_bytes(4, "big") + b


def openssh_pem(rng, comment):
    seed = rng.getrandbits(256).to_bytes(32, "big")
    pub = ed25519_pub(seed)
    pubblob = _sshstr(b"ssh-ed25519") + _sshstr(pub)
    check = rng.getrandbits(32).to_bytes(4, "big")
    priv = check + check + pubblob + _sshstr(seed + pub) + _sshstr(comment.encode())
    pad = 1
    while len(priv) % 8:
        priv += bytes([pad])
        pad += 1
    blob = (b"openssh-key-v1\x00" + _sshstr(b"none") + _sshstr(b"none") + _sshstr(b"") + (1).to_bytes(4, "big")
            + _sshstr(pubblob) + _sshstr(priv))
    return pem("OPENSSH PRIVATE KEY", blob, width=70)


def ssh_rsa_pub(rng, comment):
    n = rng.getrandbits(2048) | (1 << 2047) | 1
    blob = _sshstr(b"ssh-rsa") + _sshstr(b"\x01\x00\x01") + _sshstr(b"\x00" + n.to_bytes(256, "big"))
    return "ssh-rsa " + base64.b64encode(blob).decode() + " " + comment


def ssh_ed_pub(rng, comment):
    blob = _sshstr(b"ssh-ed25519") + _sshstr(rng.getrandbits(256).to_bytes(32, "big"))
    return "ssh-ed25519 " + base64.b64encode(blob).decode() + " " + comment


def public_key_pem(rng):
    n = rng.getrandbits(2048) | (1 << 2047) | 1
    rsapub = der_seq(der_int(n), der_int(65537))
    spki = der_seq(der_seq(OID_RSA, b"\x05\x00"), der(0x03, b"\x00" + rsapub))
    return pem("PUBLIC KEY", spki)


def certificate_pem(rng):
    body = b"\x30\x82\x03" + bytes([rng.randrange(256)]) + rng.getrandbits(8 * 780).to_bytes(780, "big")
    return pem("CERTIFICATE", body)


# --------------------------------------------------------------------------------------
# secret value generators
# --------------------------------------------------------------------------------------
def b62_encode(n):
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(B62[r])
    return "".join(reversed(out))


def gh_token(rng, prefix, valid=True):
    r = rstr(rng, B62, 30)
    c = b62_encode(zlib.crc32(r.encode())).rjust(6, "0")
    if not valid:
        while True:
            bad = rstr(rng, B62, 6)
            if bad != c:
                c = bad
                break
    return f"{prefix}_{r}{c}"


def b64url_nopad(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def jwt_token(rng):
    alg = rng.choice(["HS256", "HS256", "RS256", "ES256"])
    hdr = {"alg": alg, "typ": "JWT"}
    if alg != "HS256" and rng.random() < 0.6:
        hdr["kid"] = rstr(rng, B64URL, 22)
    now = 1700000000 + rng.randint(0, 9000000)
    payload = rng.choice([
        {"sub": str(rng.randint(10000, 99999999)), "name": f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}",
         "iat": now, "exp": now + 3600 * rng.choice([1, 12, 24, 720])},
        {"iss": f"https://auth.{domain(rng)}/", "sub": uuid4(rng), "aud": rng.choice(PRODUCTS) + "-api",
         "iat": now, "exp": now + 86400, "scope": "read:" + rng.choice(NOUNS) + " write:" + rng.choice(NOUNS)},
        {"role": "service_role", "iss": "supabase", "ref": rstr(rng, LOWER, 20), "iat": now, "exp": now + 315360000},
        {"user_id": rng.randint(1, 999999), "email": email(rng), "roles": ["admin"], "iat": now,
         "jti": uuid4(rng)},
    ])
    sig_len = {"HS256": 32, "RS256": 256, "ES256": 64}[alg]
    parts = [b64url_nopad(json.dumps(hdr, separators=(",", ":")).encode()),
             b64url_nopad(json.dumps(payload, separators=(",", ":")).encode()),
             b64url_nopad(rng.getrandbits(8 * sig_len).to_bytes(sig_len, "big"))]
    return ".".join(parts)


def password_value(rng):
    k = rng.random()
    if k < 0.45:
        while True:
            v = rstr(rng, PWCHARS, rng.randint(16, 32))
            if sum(c.isdigit() for c in v) >= 2 and sum(c.isupper() for c in v) >= 2 and v[0] not in "-+.":
                return v
    if k < 0.65:
        return rstr(rng, HEX, rng.choice([32, 40, 64]))
    if k < 0.85:
        return base64.b64encode(rng.getrandbits(8 * 32).to_bytes(32, "big")).decode()
    return rstr(rng, ALNUM, rng.randint(24, 48))


def uri_password(rng):
    while True:
        v = rstr(rng, ALNUM + "-_.~!*", rng.randint(14, 28))
        if sum(c.isdigit() for c in v) >= 2 and sum(c.isupper() for c in v) >= 1 and v[0] not in "-.":
            return v


def db_user(rng):
    return rng.choice(["app", "admin", "svc_" + rng.choice(NOUNS), rng.choice(PRODUCTS) + "_rw",
                       rng.choice(FIRST), "root", "deploy", rng.choice(PRODUCTS)])


def sentry_org_token(rng):
    payload = {"iat": 1700000000 + rng.randint(0, 9000000), "url": "https://sentry.io",
               "region_url": "https://us.sentry.io", "org": rng.choice(ORGS)}
    enc = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    return "sntrys_" + enc + "_" + rstr(rng, ALNUM + "+/", 43)


def grafana_cloud_token(rng):
    payload = {"o": str(rng.randint(100000, 999999)), "n": f"{rng.choice(PRODUCTS)}-{rng.choice(NOUNS)}-token",
               "k": rstr(rng, ALNUM, 24), "m": {"r": rng.choice(["us", "eu", "prod-us-east-0"])}}
    return "glc_" + base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def discord_token(rng):
    uid = str(rng.randint(10 ** 17, 13 * 10 ** 17))
    return b64url_nopad(uid.encode()) + "." + rstr(rng, B64URL, 6) + "." + rstr(rng, B64URL, 38)


def aws_id(rng, prefix="AKIA"):
    return prefix + rstr(rng, B32, 16)


def aws_secret(rng):
    return rstr(rng, ALNUM + "+/", 40)


def aws_session_token(rng):
    return "IQoJb3JpZ2luX2Vj" + "E" + rstr(rng, B64, rng.choice([600, 700, 780, 880])) + rng.choice(["", "=", "=="])


# Each generator returns (items, primary_index) where items is a list of (name_words, value);
# names are word lists rendered in the host's naming style. A "uri"/"raw" value is still a string.
def _one(names, value):
    return [(names, value)], 0


def g_aws(rng):
    return [(["aws", "access", "key", "id"], aws_id(rng)), (["aws", "secret", "access", "key"], aws_secret(rng))], 1


def g_aws_session(rng):
    return [(["aws", "access", "key", "id"], aws_id(rng, "ASIA")), (["aws", "secret", "access", "key"], aws_secret(rng)),
            (["aws", "session", "token"], aws_session_token(rng))], 2


def g_google_api(rng):
    return _one(rng.choice([["google", "api", "key"], ["maps", "api", "key"], ["firebase", "api", "key"],
                            ["gcp", "api", "key"], ["youtube", "api", "key"]]), "AIza" + rstr(rng, ALNUM + "_-", 35))


def g_azure_storage(rng):
    acct = rng.choice(PRODUCTS) + rng.choice(["store", "data", "prod", "blobs", "sa"]) + str(rng.randint(1, 99))
    key = base64.b64encode(rng.getrandbits(512).to_bytes(64, "big")).decode()
    v = f"DefaultEndpointsProtocol=https;AccountName={acct};AccountKey={key};EndpointSuffix=core.windows.net"
    return _one(rng.choice([["azure", "storage", "connection", "string"], ["storage", "connection"],
                            ["azure", "web", "jobs", "storage"]]), v)


def g_azure_ad(rng):
    sec = rstr(rng, ALNUM, 3) + str(rng.randint(0, 9)) + "Q~" + rstr(rng, ALNUM + "_~.-", 33) + rstr(rng, ALNUM, 1)
    return [(["azure", "tenant", "id"], uuid4(rng)), (["azure", "client", "id"], uuid4(rng)),
            (["azure", "client", "secret"], sec)], 2


def g_gh(prefix, names):
    def g(rng):
        return _one(rng.choice(names), gh_token(rng, prefix))
    return g


def g_gh_fine(rng):
    v = "github_pat_11" + rstr(rng, UPPER + DIGITS, 20) + "_" + rstr(rng, ALNUM, 59)
    return _one(rng.choice([["github", "token"], ["gh", "token"], ["github", "pat"]]), v)


def g_gitlab(rng):
    return _one(rng.choice([["gitlab", "token"], ["gitlab", "private", "token"], ["gl", "token"], ["ci", "job", "api", "token"]]),
                "glpat-" + rstr(rng, ALNUM + "_-", 20))


def g_atlassian(rng):
    return _one(rng.choice([["jira", "api", "token"], ["atlassian", "api", "token"], ["confluence", "token"]]),
                "ATATT3xFfGF0" + rstr(rng, ALNUM + "_-", 171) + "=" + rstr(rng, UHEX, 8))


def g_bitbucket(rng):
    return _one(rng.choice([["bitbucket", "app", "password"], ["bitbucket", "token"], ["bb", "app", "password"]]),
                "ATBB" + rstr(rng, ALNUM, 24) + rstr(rng, UHEX, 8))


def g_okta(rng):
    return _one(rng.choice([["okta", "api", "token"], ["okta", "token"], ["okta", "client", "token"]]),
                "00" + rstr(rng, ALNUM + "_-", 40))


def g_slack_bot(rng):
    v = f"xoxb-{rng.randint(10 ** 10, 10 ** 12)}-{rng.randint(10 ** 11, 10 ** 13 - 1)}-{rstr(rng, ALNUM, 24)}"
    return _one(rng.choice([["slack", "bot", "token"], ["slack", "token"]]), v)


def g_slack_user(rng):
    v = f"xoxp-{rng.randint(10 ** 10, 10 ** 12)}-{rng.randint(10 ** 10, 10 ** 12)}-{rng.randint(10 ** 11, 10 ** 13 - 1)}-{rstr(rng, HEX, 32)}"
    return _one(rng.choice([["slack", "user", "token"], ["slack", "oauth", "token"]]), v)


def g_slack_webhook(rng):
    v = f"https://hooks.slack.com/services/T{rstr(rng, UPPER + DIGITS, 8)}/B{rstr(rng, UPPER + DIGITS, rng.choice([8, 10]))}/{rstr(rng, ALNUM, 24)}"
    return _one(rng.choice([["slack", "webhook", "url"], ["slack", "webhook"], ["alerts", "webhook", "url"]]), v)


def g_stripe(prefix):
    def g(rng):
        body = rstr(rng, ALNUM, 24) if rng.random() < 0.4 else "51" + rstr(rng, ALNUM, 97)
        names = [["stripe", "secret", "key"], ["stripe", "api", "key"]] if prefix == "sk" else [["stripe", "restricted", "key"]]
        return _one(rng.choice(names), f"{prefix}_live_{body}")
    return g


def g_twilio(rng):
    if rng.random() < 0.5:
        return [(["twilio", "api", "key"], "SK" + rstr(rng, HEX, 32)), (["twilio", "api", "secret"], rstr(rng, ALNUM, 32))], 1
    return [(["twilio", "account", "sid"], "AC" + rstr(rng, HEX, 32)), (["twilio", "auth", "token"], rstr(rng, HEX, 32))], 1


def g_sendgrid(rng):
    return _one(rng.choice([["sendgrid", "api", "key"], ["sendgrid", "key"], ["email", "api", "key"]]),
                "SG." + rstr(rng, ALNUM + "_-", 22) + "." + rstr(rng, ALNUM + "_-", 43))


def g_mailgun(rng):
    v = "key-" + rstr(rng, HEX, 32) if rng.random() < 0.6 else f"{rstr(rng, HEX, 32)}-{rstr(rng, HEX, 8)}-{rstr(rng, HEX, 8)}"
    return _one(rng.choice([["mailgun", "api", "key"], ["mailgun", "key"]]), v)


def g_mailchimp(rng):
    return _one(rng.choice([["mailchimp", "api", "key"], ["mailchimp", "key"]]), rstr(rng, HEX, 32) + f"-us{rng.randint(1, 21)}")


def g_datadog(rng):
    if rng.random() < 0.5:
        return _one(rng.choice([["dd", "api", "key"], ["datadog", "api", "key"]]), rstr(rng, HEX, 32))
    return [(["datadog", "api", "key"], rstr(rng, HEX, 32)), (["datadog", "app", "key"], rstr(rng, HEX, 40))], 0


def g_npm(rng):
    return _one(rng.choice([["npm", "token"], ["npm", "auth", "token"], ["node", "auth", "token"]]), "npm_" + rstr(rng, ALNUM, 36))


def g_pypi(rng):
    return _one(rng.choice([["pypi", "token"], ["pypi", "api", "token"], ["twine", "password"]]),
                "pypi-AgEIcHlwaS5vcmc" + rstr(rng, B64URL, rng.choice([136, 150, 160, 170])))


def g_docker(rng):
    return _one(rng.choice([["docker", "hub", "token"], ["dockerhub", "token"], ["docker", "password"]]),
                "dckr_pat_" + rstr(rng, ALNUM + "_-", 27))


def g_vault(rng):
    v = "hvs.CAESI" + rstr(rng, B64URL, rng.randint(86, 100)) if rng.random() < 0.7 else "hvs." + rstr(rng, ALNUM, 24)
    return _one(rng.choice([["vault", "token"], ["vault", "auth", "token"]]), v)


def g_tfc(rng):
    return _one(rng.choice([["tf", "api", "token"], ["tfe", "token"], ["terraform", "cloud", "token"]]),
                rstr(rng, LOWER + DIGITS, 14) + ".atlasv1." + rstr(rng, ALNUM, 67))


def g_openai(rng):
    r = rng.random()
    if r < 0.7:
        v = "sk-proj-" + rstr(rng, ALNUM + "_-", 74) + "T3BlbkFJ" + rstr(rng, ALNUM + "_-", 74)
    elif r < 0.85:
        v = "sk-svcacct-" + rstr(rng, ALNUM + "_-", 74) + "T3BlbkFJ" + rstr(rng, ALNUM + "_-", 74)
    else:
        v = "sk-" + rstr(rng, ALNUM, 20) + "T3BlbkFJ" + rstr(rng, ALNUM, 20)
    return _one(rng.choice([["openai", "api", "key"], ["openai", "key"]]), v)


def g_anthropic(rng):
    return _one(rng.choice([["anthropic", "api", "key"], ["claude", "api", "key"]]),
                "sk-ant-api03-" + rstr(rng, ALNUM + "_-", 93) + "AA")


def g_hf(rng):
    return _one(rng.choice([["hf", "token"], ["huggingface", "token"], ["hugging", "face", "hub", "token"]]),
                "hf_" + rstr(rng, UPPER + LOWER, 34))


def g_shopify(rng):
    p = rng.choice(["shpat", "shpat", "shpss", "shpca"])
    return _one([["shopify", "access", "token"], ["shopify", "api", "secret"]][p == "shpss"], f"{p}_" + rstr(rng, HEX, 32))


def g_square(rng):
    if rng.random() < 0.6:
        return _one(["square", "access", "token"], "EAAA" + rstr(rng, ALNUM + "_-", 60))
    return _one(["square", "oauth", "secret"], "sq0csp-" + rstr(rng, ALNUM + "_-", 43))


def g_do(rng):
    return _one(rng.choice([["digitalocean", "token"], ["do", "token"], ["digitalocean", "access", "token"]]), "dop_v1_" + rstr(rng, HEX, 64))


def g_heroku(rng):
    return _one(rng.choice([["heroku", "api", "key"], ["heroku", "token"]]), "HRKU-AA" + rstr(rng, ALNUM + "_-", 58))


def g_sentry(rng):
    v = "sntryu_" + rstr(rng, HEX, 64) if rng.random() < 0.5 else sentry_org_token(rng)
    return _one(rng.choice([["sentry", "auth", "token"], ["sentry", "token"]]), v)


def g_newrelic(rng):
    return _one(rng.choice([["new", "relic", "api", "key"], ["newrelic", "api", "key"]]), "NRAK-" + rstr(rng, UPPER + DIGITS, 27))


def g_grafana(rng):
    v = "glsa_" + rstr(rng, ALNUM, 32) + "_" + rstr(rng, HEX, 8) if rng.random() < 0.6 else grafana_cloud_token(rng)
    return _one(rng.choice([["grafana", "token"], ["grafana", "api", "key"], ["grafana", "service", "account", "token"]]), v)


def g_databricks(rng):
    return _one(rng.choice([["databricks", "token"], ["dbx", "token"]]), "dapi" + rstr(rng, HEX, 32) + rng.choice(["", "", "-2", "-3"]))


def g_linear(rng):
    return _one(rng.choice([["linear", "api", "key"], ["linear", "token"]]), "lin_api_" + rstr(rng, ALNUM, 40))


def g_notion(rng):
    v = "ntn_" + rstr(rng, DIGITS, 11) + rstr(rng, ALNUM, 35) if rng.random() < 0.6 else "secret_" + rstr(rng, ALNUM, 43)
    return _one(rng.choice([["notion", "token"], ["notion", "api", "key"]]), v)


def g_discord(rng):
    if rng.random() < 0.7:
        return _one(rng.choice([["discord", "bot", "token"], ["discord", "token"]]), discord_token(rng))
    v = f"https://discord.com/api/webhooks/{rng.randint(10 ** 17, 10 ** 18)}/{rstr(rng, ALNUM + '_-', 68)}"
    return _one(["discord", "webhook", "url"], v)


def g_telegram(rng):
    return _one(rng.choice([["telegram", "bot", "token"], ["telegram", "token"], ["tg", "bot", "token"]]),
                f"{rng.randint(10 ** 8, 10 ** 10 - 1)}:AA{rstr(rng, ALNUM + '_-', 33)}")


def g_jwt(rng):
    return _one(rng.choice([["access", "token"], ["auth", "token"], ["id", "token"], ["service", "role", "key"],
                            ["api", "jwt"], ["bearer", "token"]]), jwt_token(rng))


def g_pem(kind):
    def g(rng):
        label = rng.choice(["deploy", "ci", "jwt", "server", "signing", "tls", "backup", "github-app"])
        if kind == "rsa":
            v = rsa_pkcs1_pem(rng)
        elif kind == "pkcs8":
            v = rsa_pkcs8_pem(rng)
        elif kind == "ec":
            v = ec_pem(rng)
        else:
            v = openssh_pem(rng, f"{rng.choice(FIRST)}@{rng.choice(PRODUCTS)}-{label}")
        return _one(rng.choice([["private", "key"], [label.replace("-", "_"), "private", "key"], ["ssh", "key"], ["signing", "key"]]), v)
    return g


def g_uri(scheme):
    def g(rng):
        pw = uri_password(rng)
        u = db_user(rng)
        h = host_name(rng)
        db = rng.choice(PRODUCTS) + rng.choice(["", "_prod", "_db", "_main"])
        if scheme == "postgres":
            v = f"{rng.choice(['postgres', 'postgresql'])}://{u}:{pw}@{h}:5432/{db}" + rng.choice(["", "?sslmode=require", ""])
            n = rng.choice([["database", "url"], ["db", "url"], ["postgres", "dsn"], ["sqlalchemy", "database", "uri"]])
        elif scheme == "mysql":
            v = f"mysql://{u}:{pw}@{h}:3306/{db}"
            n = rng.choice([["database", "url"], ["mysql", "url"], ["db", "dsn"]])
        elif scheme == "mongodb":
            if rng.random() < 0.6:
                v = f"mongodb+srv://{u}:{pw}@cluster{rng.randint(0, 5)}.{rstr(rng, LOWER + DIGITS, 5)}.mongodb.net/{db}?retryWrites=true&w=majority"
            else:
                v = f"mongodb://{u}:{pw}@{h}:27017/{db}?authSource=admin"
            n = rng.choice([["mongo", "uri"], ["mongodb", "uri"], ["mongo", "url"]])
        elif scheme == "redis":
            v = f"{rng.choice(['redis', 'rediss'])}://{rng.choice(['', 'default'])}:{pw}@{h}:6379/{rng.randint(0, 5)}"
            n = rng.choice([["redis", "url"], ["cache", "url"], ["celery", "result", "backend"]])
        elif scheme == "amqp":
            v = f"{rng.choice(['amqp', 'amqps'])}://{u}:{pw}@{h}:5672/{rng.choice(['', '%2F', rng.choice(PRODUCTS)])}"
            n = rng.choice([["amqp", "url"], ["celery", "broker", "url"], ["rabbitmq", "url"]])
        else:
            v = f"https://{u}:{pw}@{rng.choice(['nexus', 'artifactory', 'pypi', 'git', 'registry'])}.{rng.choice(ORGS)}.{rng.choice(['com', 'net', 'io'])}/{rng.choice(['simple', 'repository/npm', 'api/v1', 'org/repo.git'])}"
            n = rng.choice([["index", "url"], ["registry", "url"], ["repo", "url"], ["remote", "url"]])
        return _one(n, v)
    return g


GENERIC_NAMES = [["password"], ["db", "password"], ["api", "key"], ["client", "secret"], ["secret", "key"],
                 ["auth", "token"], ["access", "token"], ["jwt", "secret"], ["encryption", "key"],
                 ["webhook", "secret"], ["smtp", "password"], ["app", "secret"], ["signing", "secret"],
                 ["redis", "password"], ["admin", "password"], ["api", "secret"], ["session", "secret"],
                 ["private", "token"], ["mysql", "root", "password"], ["ldap", "bind", "password"]]


def g_generic(rng):
    return _one(rng.choice(GENERIC_NAMES), password_value(rng))


def g_gcp_sa(rng):
    project = f"{rng.choice(PRODUCTS)}-{rng.choice(['prod', 'staging', 'dev', 'data'])}-{rng.randint(100000, 999999)}"
    sa = f"{rng.choice(['deployer', 'ci', 'terraform', 'bigquery-reader', rng.choice(PRODUCTS)])}"
    key = rsa_pkcs8_pem(rng) + "\n"
    obj = {"type": "service_account", "project_id": project, "private_key_id": rstr(rng, HEX, 40),
           "private_key": key, "client_email": f"{sa}@{project}.iam.gserviceaccount.com",
           "client_id": str(rng.randint(10 ** 20, 10 ** 21 - 1)), "auth_uri": "https://accounts.google.com/o/oauth2/auth",
           "token_uri": "https://oauth2.googleapis.com/token",
           "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
           "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{sa}%40{project}.iam.gserviceaccount.com",
           "universe_domain": "googleapis.com"}
    return _one(["google", "application", "credentials"], obj)


# provider -> (count weight, generator, host kinds)
CODE = ["py", "js", "ts", "go", "java", "rb", "rs"]
SECRET_PROVIDERS = {
    # name: (weight, gen, hosts)
    "aws": (60, g_aws, ["aws-credentials", "env", "env", "py", "sh", "tf", "yaml", "properties", "json", "ci", "md", "java", "js", "go", "rb"]),
    "aws-session": (20, g_aws_session, ["aws-credentials", "env", "sh", "json", "yaml"]),
    "gcp-service-account": (25, g_gcp_sa, ["sa-json", "sa-json", "sa-json", "k8s", "env"]),
    "google-api-key": (35, g_google_api, ["js", "ts", "minjs", "html", "json", "env", "yaml", "py", "xml"]),
    "azure-storage": (30, g_azure_storage, ["json", "env", "yaml", "properties", "py", "xml", "tf", "k8s"]),
    "azure-ad": (30, g_azure_ad, ["env", "yaml", "json", "tf", "ci", "sh", "py", "properties"]),
    "github-classic": (40, g_gh("ghp", [["github", "token"], ["gh", "token"], ["github", "pat"], ["gh", "pat"]]),
                       ["env", "sh", "ci", "yaml", "py", "js", "md", "git-credentials", "json", "go", "rb", "dockerfile", "npmrc"]),
    "github-oauth": (15, g_gh("gho", [["github", "oauth", "token"], ["gh", "oauth", "token"]]), ["env", "json", "yaml", "py", "js", "log"]),
    "github-user-to-server": (15, g_gh("ghu", [["github", "user", "token"], ["gh", "app", "user", "token"]]), ["env", "json", "py", "js", "yaml"]),
    "github-server-to-server": (15, g_gh("ghs", [["github", "installation", "token"], ["gh", "app", "token"]]), ["env", "sh", "log", "ci", "py", "json"]),
    "github-refresh": (10, g_gh("ghr", [["github", "refresh", "token"]]), ["env", "json", "py", "js"]),
    "github-fine-grained": (30, g_gh_fine, ["env", "sh", "ci", "yaml", "py", "js", "md", "git-credentials", "json", "go"]),
    "gitlab": (35, g_gitlab, ["env", "ci", "sh", "git-credentials", "py", "md", "yaml", "npmrc", "json", "go"]),
    "atlassian": (20, g_atlassian, ["env", "py", "js", "sh", "yaml", "json", "md"]),
    "bitbucket": (15, g_bitbucket, ["env", "ci", "sh", "git-credentials", "py", "yaml"]),
    "okta": (20, g_okta, ["env", "yaml", "properties", "py", "js", "md", "sh", "java"]),
    "slack-bot": (25, g_slack_bot, ["env", "yaml", "py", "js", "json", "rb", "go", "ci"]),
    "slack-user": (15, g_slack_user, ["env", "py", "js", "json", "sh"]),
    "slack-webhook": (25, g_slack_webhook, ["env", "yaml", "py", "js", "sh", "ci", "json", "tf", "rb", "go"]),
    "stripe-secret": (25, g_stripe("sk"), ["env", "py", "js", "ts", "rb", "yaml", "json", "md", "sh", "java"]),
    "stripe-restricted": (10, g_stripe("rk"), ["env", "py", "js", "rb", "json"]),
    "twilio": (20, g_twilio, ["env", "py", "js", "rb", "yaml", "json", "properties", "java"]),
    "sendgrid": (25, g_sendgrid, ["env", "py", "js", "yaml", "json", "properties", "rb", "go", "ci", "java"]),
    "mailgun": (15, g_mailgun, ["env", "py", "js", "yaml", "rb", "json"]),
    "mailchimp": (15, g_mailchimp, ["env", "py", "js", "yaml", "json", "rb"]),
    "datadog": (20, g_datadog, ["env", "yaml", "k8s", "ci", "tf", "py", "sh", "dockerfile", "compose"]),
    "npm": (25, g_npm, ["npmrc", "npmrc", "env", "ci", "sh", "dockerfile", "md"]),
    "pypi": (20, g_pypi, ["pypirc", "pypirc", "env", "ci", "sh", "md"]),
    "dockerhub": (20, g_docker, ["env", "ci", "sh", "md", "yaml"]),
    "vault": (20, g_vault, ["env", "sh", "yaml", "ci", "tf", "py", "md", "json"]),
    "terraform-cloud": (15, g_tfc, ["terraformrc", "terraformrc", "env", "ci", "sh", "md"]),
    "openai": (30, g_openai, ["env", "env", "py", "py", "ipynb", "js", "ts", "yaml", "json", "sh", "md"]),
    "anthropic": (30, g_anthropic, ["env", "env", "py", "py", "ipynb", "ts", "js", "yaml", "json", "sh", "md"]),
    "huggingface": (25, g_hf, ["env", "py", "ipynb", "sh", "yaml", "ci", "md"]),
    "shopify": (20, g_shopify, ["env", "js", "rb", "py", "yaml", "json", "toml"]),
    "square": (15, g_square, ["env", "js", "py", "rb", "json", "yaml"]),
    "digitalocean": (20, g_do, ["env", "tf", "sh", "ci", "yaml", "py", "md"]),
    "heroku": (15, g_heroku, ["env", "sh", "ci", "netrc", "md"]),
    "sentry": (15, g_sentry, ["env", "ci", "sh", "js", "properties", "yaml"]),
    "newrelic": (15, g_newrelic, ["env", "yaml", "tf", "sh", "ci", "js", "py"]),
    "grafana": (20, g_grafana, ["env", "yaml", "tf", "sh", "ci", "json"]),
    "databricks": (20, g_databricks, ["env", "py", "ipynb", "ini", "sh", "ci", "tf", "yaml"]),
    "linear": (15, g_linear, ["env", "ts", "js", "py", "sh", "yaml"]),
    "notion": (15, g_notion, ["env", "js", "ts", "py", "yaml", "json"]),
    "discord": (15, g_discord, ["env", "py", "js", "json", "yaml"]),
    "telegram": (15, g_telegram, ["env", "py", "js", "json", "yaml", "sh"]),
    "jwt": (40, g_jwt, ["env", "json", "log", "log", "md", "http", "py", "js", "yaml", "sh"]),
    "private-key-rsa": (30, g_pem("rsa"), ["pem", "pem", "pem", "yaml", "k8s", "py", "js", "go", "tf", "md", "env", "json", "rb"]),
    "private-key-pkcs8": (15, g_pem("pkcs8"), ["pem", "pem", "yaml", "py", "js", "json", "env", "java"]),
    "private-key-ec": (20, g_pem("ec"), ["pem", "pem", "yaml", "k8s", "go", "py", "tf"]),
    "private-key-openssh": (20, g_pem("openssh"), ["pem", "pem", "pem", "yaml", "ci", "md", "tf"]),
    "postgres-uri": (30, g_uri("postgres"), ["env", "env", "yaml", "compose", "k8s", "py", "js", "go", "ini", "tf", "json", "sh", "log", "md"]),
    "mysql-uri": (20, g_uri("mysql"), ["env", "yaml", "compose", "py", "js", "rb", "json", "log"]),
    "mongodb-uri": (25, g_uri("mongodb"), ["env", "env", "yaml", "js", "ts", "py", "json", "k8s", "go"]),
    "redis-uri": (20, g_uri("redis"), ["env", "yaml", "compose", "py", "js", "rb", "k8s"]),
    "amqp-uri": (15, g_uri("amqp"), ["env", "yaml", "py", "properties", "k8s"]),
    "basic-auth-url": (20, g_uri("https"), ["pipconf", "git-credentials", "env", "yaml", "sh", "md", "ini"]),
    "generic": (150, g_generic, ["env", "env", "py", "js", "ts", "yaml", "json", "properties", "ini", "tf", "xml", "rb",
                                 "go", "java", "sh", "compose", "k8s", "md", "toml", "dockerfile", "rs"]),
}


# --------------------------------------------------------------------------------------
# decoys
# --------------------------------------------------------------------------------------
STRIPE_DOC_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
JWT_IO_EXAMPLE = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
                  "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
SECRET_NAME_POOL = GENERIC_NAMES + [["github", "token"], ["stripe", "secret", "key"], ["openai", "api", "key"], ["slack", "token"],
                                    ["aws", "secret", "access", "key"], ["sendgrid", "api", "key"], ["npm", "token"],
                                    ["database", "url"], ["anthropic", "api", "key"], ["vault", "token"]]


def env_var_of(names):
    return upper(names)


def placeholder_value(rng, host, names):
    """A value that is obviously not a secret, suited to the host syntax. Returns (value, raw)."""
    var = env_var_of(names)
    lit = rng.choice(["xxxxxxxxxxxxxxxxxxxxxxxx", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", f"<your-{kebab(names)}>",
                      "<your-api-key>", f"YOUR_{var}", "your_token_here", "changeme", "CHANGE_ME", "replace-me",
                      "<redacted>", "********", "TODO", f"your-{kebab(names)}-here", "REPLACE_WITH_YOUR_KEY",
                      "dummy", "placeholder", "<secret>", "sk-...", "..."])
    if host in ("py",) and rng.random() < 0.6:
        return rng.choice([f'os.environ["{var}"]', f'os.getenv("{var}")', f'os.environ.get("{var}", "")',
                           "get_token()", f"settings.{var}", f'config["{snake(names)}"]', f'vault.read("secret/{kebab(names)}")']), True
    if host in ("js", "ts", "minjs") and rng.random() < 0.6:
        return rng.choice([f"process.env.{var}", f'process.env["{var}"]', f"config.{camel(names)}", "getToken()",
                           f"import.meta.env.VITE_{var}"]), True
    if host == "go" and rng.random() < 0.6:
        return rng.choice([f'os.Getenv("{var}")', f"cfg.{pascal(names)}", f'viper.GetString("{snake(names)}")']), True
    if host == "java" and rng.random() < 0.6:
        return rng.choice([f'System.getenv("{var}")', f"props.getProperty(\"{'.'.join(names)}\")", f"config.get{pascal(names)}()"]), True
    if host == "rb" and rng.random() < 0.6:
        return rng.choice([f'ENV["{var}"]', f'ENV.fetch("{var}")', f"Rails.application.credentials.{snake(names)}"]), True
    if host == "rs" and rng.random() < 0.6:
        return f'std::env::var("{var}").unwrap_or_default()', True
    if host in ("yaml", "compose", "k8s", "env", "sh", "dockerfile") and rng.random() < 0.5:
        return rng.choice([f"${{{var}}}", f"${var}", f"${{{var}:-}}", f"${{{var}:?missing}}"]), False
    if host == "ci" and rng.random() < 0.7:
        return rng.choice([f"${{{{ secrets.{var} }}}}", f"${var}", f"${{{{ env.{var} }}}}"]), False
    if host == "helm" or (host == "yaml" and rng.random() < 0.2):
        return f"{{{{ .Values.{camel(names)} }}}}", False
    if host == "tf" and rng.random() < 0.6:
        return rng.choice([f"var.{snake(names)}", f"data.aws_ssm_parameter.{snake(names)}.value", f"random_password.{snake(names[:1])}.result"]), True
    if host == "properties" and rng.random() < 0.5:
        return f"${{{var}}}", False
    return lit, False


def d_placeholder(rng, host):
    names = rng.choice(SECRET_NAME_POOL)
    v, raw = placeholder_value(rng, host, names)
    return [(names, v)], 0, raw


def d_aws_example(rng, host):
    return [(["aws", "access", "key", "id"], "AKIAIOSFODNN7EXAMPLE"),
            (["aws", "secret", "access", "key"], "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")], 1, False


def d_gh_badcrc(rng, host):
    p = rng.choice(["ghp", "ghp", "gho", "ghu", "ghs", "ghr"])
    return [(rng.choice([["github", "token"], ["gh", "token"]]), gh_token(rng, p, valid=False))], 0, False


def d_truncated(rng, host):
    v, n = rng.choice([
        ("ghp_" + rstr(rng, ALNUM, rng.randint(6, 16)), ["github", "token"]),
        ("sk_live_" + rstr(rng, ALNUM, rng.randint(3, 8)), ["stripe", "secret", "key"]),
        ("AKIA" + rstr(rng, B32, rng.randint(4, 10)), ["aws", "access", "key", "id"]),
        ("xoxb-" + str(rng.randint(100, 99999)), ["slack", "bot", "token"]),
        ("glpat-" + rstr(rng, ALNUM, rng.randint(4, 10)), ["gitlab", "token"]),
        ("hf_" + rstr(rng, LOWER, rng.randint(4, 10)), ["hf", "token"]),
        ("npm_" + rstr(rng, ALNUM, rng.randint(4, 12)), ["npm", "token"]),
        ("sk-ant-api03-" + rstr(rng, ALNUM, rng.randint(4, 12)), ["anthropic", "api", "key"]),
        ("sk-proj-" + rstr(rng, ALNUM, rng.randint(4, 12)), ["openai", "api", "key"]),
        ("SG." + rstr(rng, ALNUM, rng.randint(4, 10)), ["sendgrid", "api", "key"]),
        ("dop_v1_" + rstr(rng, HEX, rng.randint(4, 12)), ["digitalocean", "token"]),
        ("AIza" + rstr(rng, ALNUM, rng.randint(4, 12)), ["google", "api", "key"]),
    ])
    if rng.random() < 0.5:
        v = v + "..."
    return [(n, v)], 0, False


def d_git_sha(rng, host):
    return [(rng.choice([["commit"], ["git", "sha"], ["revision"], ["source", "version"], ["build", "commit"], ["ref"]]), sha(40, rng))], 0, False


def d_hash(rng, host):
    k = rng.random()
    if k < 0.5:
        v = sha(64, rng)
    elif k < 0.7:
        v = "sha256:" + sha(64, rng)
    elif k < 0.85:
        v = sha(128, rng)
    else:
        v = sha(32, rng)
    return [(rng.choice([["checksum"], ["sha256"], ["digest"], ["content", "hash"], ["file", "hash"], ["etag"]]), v)], 0, False


def d_uuid(rng, host):
    return [(rng.choice([["request", "id"], ["tenant", "id"], ["client", "id"], ["subscription", "id"], ["correlation", "id"],
                         ["workspace", "id"], ["project", "id"], ["trace", "id"]]), uuid4(rng))], 0, False


def fake_png_b64(rng, n):
    raw = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.getrandbits(8 * n).to_bytes(n, "big")
    return base64.b64encode(raw).decode()


def d_b64data(rng, host):
    k = rng.random()
    if k < 0.5:
        v = "data:image/png;base64," + fake_png_b64(rng, rng.randint(60, 600))
        n = rng.choice([["icon"], ["placeholder", "image"], ["logo", "data", "uri"], ["background"]])
    elif k < 0.8:
        v = "sha384-" + base64.b64encode(rng.getrandbits(384).to_bytes(48, "big")).decode()
        n = ["integrity"]
    else:
        v = "sha512-" + base64.b64encode(rng.getrandbits(512).to_bytes(64, "big")).decode()
        n = ["integrity"]
    return [(n, v)], 0, False


def d_identifier(rng, host):
    k = rng.random() * (0.5 if host == "css" else 1.0)
    if k < 0.3:
        v = f"{rng.choice(NOUNS)}_{rng.choice(NOUNS)}__{rstr(rng, ALNUM, 5)}"
        n = ["class", "name"]
    elif k < 0.5:
        v = f"css-{rstr(rng, LOWER + DIGITS, 7)}"
        n = ["class", "name"]
    elif k < 0.7:
        v = ".".join(words(rng, rng.randint(3, 5))) + "_" + rng.choice(["label", "title", "placeholder", "tooltip"])
        n = ["i18n", "key"]
    elif k < 0.85:
        v = f"{rng.choice(['main', 'vendors', 'runtime', 'chunk'])}.{sha(rng.choice([8, 16, 20]), rng)}.{rng.choice(['js', 'css'])}"
        n = ["asset", "name"]
    else:
        v = "_" + rstr(rng, ALNUM, rng.randint(8, 14))
        n = ["component", "id"]
    return [(n, v)], 0, False


def d_testvalue(rng, host):
    names = rng.choice([["password"], ["db", "password"], ["secret"], ["api", "key"], ["token"], ["admin", "password"],
                        ["client", "secret"]])
    v = rng.choice(["test", "password", "secret", "test123", "password123", "hunter2", "postgres", "admin", "root",
                    "testpassword", "test-api-key", "dummy-token", "fake-secret", "letmein", "example", "foo", "bar",
                    "testing", "s3cr3t", "mysecretpassword", "pass"])
    return [(names, v)], 0, False


def d_stripe_doc(rng, host):
    if rng.random() < 0.5:
        return [(["stripe", "secret", "key"], STRIPE_DOC_KEY)], 0, False
    return [(["stripe", "publishable", "key"], "pk_live_" + rstr(rng, ALNUM, rng.choice([24, 99])))], 0, False


def d_public_key(rng, host):
    k = rng.random()
    c = f"{rng.choice(FIRST)}@{rng.choice(PRODUCTS)}"
    if k < 0.35:
        return [(["ssh", "public", "key"], ssh_rsa_pub(rng, c))], 0, False
    if k < 0.55:
        return [(["ssh", "public", "key"], ssh_ed_pub(rng, c))], 0, False
    if k < 0.8:
        return [(["public", "key"], public_key_pem(rng))], 0, False
    return [(["certificate"], certificate_pem(rng))], 0, False


def d_jwt_example(rng, host):
    return [(rng.choice([["token"], ["example", "token"], ["jwt"]]), JWT_IO_EXAMPLE)], 0, False


def d_uri_placeholder(rng, host):
    v = rng.choice(["postgres://user:password@localhost:5432/mydb", "postgresql://postgres:postgres@localhost/test",
                    "mysql://root:${MYSQL_ROOT_PASSWORD}@db:3306/app", "mongodb://localhost:27017/app",
                    "redis://localhost:6379/0", "amqp://guest:guest@localhost:5672/", "postgres://USER:PASSWORD@HOST:PORT/DB",
                    "https://user:pass@example.com/path", "mongodb://<username>:<password>@cluster0.example.mongodb.net/",
                    "postgres://app:${DB_PASSWORD}@postgres:5432/app", "redis://:changeme@redis:6379",
                    "postgresql://{user}:{password}@{host}/{db}"])
    return [(rng.choice([["database", "url"], ["db", "url"], ["broker", "url"], ["mongo", "uri"]]), v)], 0, False


def d_slack_example(rng, host):
    return [(["slack", "webhook", "url"], "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX")], 0, False


def d_pem_placeholder(rng, host):
    lab = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY"])
    body = rng.choice(["...", "<your private key here>", "MIIEpAIBAAKCAQEA...", "(contents of your key)", "xxxxxxxx"])
    return [(["private", "key"], f"-----BEGIN {lab}-----\n{body}\n-----END {lab}-----")], 0, False


DECOY_TYPES = {
    # name: (weight, gen, hosts)
    "placeholder": (400, d_placeholder, ["env", "env", "py", "js", "ts", "go", "java", "rb", "yaml", "compose", "k8s", "ci",
                                         "helm", "tf", "properties", "md", "json", "sh", "dockerfile", "rs"]),
    "aws-example": (60, d_aws_example, ["md", "md", "py", "env", "yaml", "sh", "aws-credentials", "js", "java"]),
    "github-bad-checksum": (80, d_gh_badcrc, ["env", "py", "js", "yaml", "json", "md", "sh", "ci"]),
    "truncated-token": (100, d_truncated, ["env", "md", "py", "js", "yaml", "json", "sh"]),
    "git-sha": (120, d_git_sha, ["md", "yaml", "json", "log", "py", "ci", "tf", "dockerfile", "toml"]),
    "hash": (120, d_hash, ["md", "yaml", "json", "py", "sh", "dockerfile", "tf", "toml", "log"]),
    "uuid": (100, d_uuid, ["json", "yaml", "log", "py", "js", "env", "tf", "md"]),
    "base64-data": (80, d_b64data, ["css", "html", "md", "js", "json", "minjs"]),
    "identifier": (80, d_identifier, ["js", "ts", "minjs", "json", "css", "html"]),
    "test-value": (100, d_testvalue, ["py", "js", "ts", "compose", "md", "yaml", "json", "rb", "go", "java", "env"]),
    "stripe-doc-or-publishable": (50, d_stripe_doc, ["md", "js", "html", "minjs", "py", "env"]),
    "public-key": (100, d_public_key, ["pub", "pub", "yaml", "tf", "md", "py", "js", "json"]),
    "jwt-example": (30, d_jwt_example, ["md", "py", "js", "json"]),
    "uri-placeholder": (80, d_uri_placeholder, ["env", "md", "yaml", "compose", "py", "js", "json", "ini"]),
    "slack-example-webhook": (20, d_slack_example, ["md", "env", "yaml", "py"]),
    "pem-placeholder": (30, d_pem_placeholder, ["md", "md", "yaml", "py"]),
}


# --------------------------------------------------------------------------------------
# plants and rendering
# --------------------------------------------------------------------------------------
class Plant:
    __slots__ = ("kind", "provider", "host", "seed", "pos", "items", "primary", "raw")

    def __init__(self, kind, provider, host, seed, pos):
        self.kind, self.provider, self.host, self.seed, self.pos = kind, provider, host, seed, pos
        self.items = None
        self.primary = 0
        self.raw = False

    def materialise(self):
        rng = random.Random(f"plant:{self.seed}")
        if self.kind == "secret":
            self.items, self.primary = SECRET_PROVIDERS[self.provider][1](rng)
        else:
            self.items, self.primary, self.raw = DECOY_TYPES[self.provider][1](rng, self.host)
        return rng

    def secret_value(self, v):
        if isinstance(v, dict):
            return v["private_key"].rstrip("\n")
        return v

    def record(self, path, start, end, host, encoded=False):
        vals = [self.secret_value(v) for _, v in self.items]
        hs = [hashlib.sha256(v.encode()).hexdigest() for v in vals]
        return {"kind": self.kind, "provider": self.provider, "path": path, "line": start, "end_line": end,
                "secret_sha256": hs[self.primary], "parts_sha256": hs, "host": host,
                **({"encoding": "base64"} if encoded else {}), "_values": vals}


def qd(v):
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def qs(v):
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def jesc(v):
    return json.dumps(v, ensure_ascii=False)


def yaml_scalar(v, rng):
    if v == "" or v[0] in "!&*{}[]|>%@`#'\",?:-" or ": " in v or " #" in v or v.lower() in ("yes", "no", "true", "false", "null", "on", "off"):
        return qd(v)
    if rng.random() < 0.35:
        return qd(v)
    return v


def name_for(host, names, rng):
    if host in ("env", "sh", "dockerfile", "ci", "compose", "md", "http"):
        return upper(names)
    if host == "ini":
        return snake(names)
    if host in ("yaml", "helm", "k8s", "tf", "toml", "log"):
        return snake(names) if rng.random() < 0.8 else camel(names)
    if host in ("json", "fixture", "ipynb"):
        return camel(names) if rng.random() < 0.6 else snake(names)
    if host in ("js", "ts", "minjs", "html", "xml"):
        return camel(names)
    if host in ("py", "rb"):
        return upper(names) if rng.random() < 0.6 else snake(names)
    if host in ("java", "rs"):
        return upper(names)
    if host == "go":
        return camel(names)
    if host == "properties":
        return ".".join(names)
    return snake(names)


def is_multi(v):
    return isinstance(v, str) and "\n" in v


def render(rng, host, plant, indent="", ctx=None):
    """Render plant items in host syntax. Returns (lines, first_off, last_off, encoded)."""
    items = plant.items
    raw = plant.raw
    if isinstance(items[0][1], dict):  # GCP service account JSON
        obj = items[0][1]
        if host == "k8s" or ctx == "stringData":
            body = json.dumps(obj, indent=2).split("\n")
            lines = [f"{indent}{rng.choice(['key.json', 'credentials.json', 'service-account.json'])}: |"] + [indent + "  " + b for b in body]
            return lines, 1, len(lines) - 1, False
        var = rng.choice(["GOOGLE_CREDENTIALS", "GCP_SA_KEY", "GOOGLE_APPLICATION_CREDENTIALS_JSON", "FIREBASE_SERVICE_ACCOUNT"])
        return [f"{var}='{json.dumps(obj, separators=(',', ':'))}'"], 0, 0, False
    lines = []
    multi_span = None
    encoded = False
    for names, v in items:
        n = name_for(host, names, rng)
        start = len(lines)
        if is_multi(v):
            pl = v.split("\n")
            if host in ("yaml", "helm", "k8s", "ci", "compose"):
                if host == "k8s" and ctx == "data":
                    lines.append(f"{indent}{n.replace('_', '.')}: {base64.b64encode(v.encode()).decode()}")
                    encoded = True
                else:
                    lines.append(f"{indent}{n}: |")
                    lines += [indent + "  " + x for x in pl]
                    start += 1
            elif host == "py":
                lines.append(f'{indent}{n} = """{pl[0]}')
                lines += pl[1:-1] + [pl[-1] + '"""']
            elif host in ("js", "ts"):
                lines.append(f"{indent}const {camel(names)} = `{pl[0]}")
                lines += pl[1:-1] + [pl[-1] + "`;"]
            elif host == "go":
                lines.append(f"{indent}const {camel(names)} = `{pl[0]}")
                lines += pl[1:-1] + [pl[-1] + "`"]
            elif host == "java":
                lines.append(f'{indent}private static final String {upper(names)} = """')
                lines += [indent + "    " + x for x in pl] + [indent + '    """;']
                start += 1
            elif host == "rb":
                lines.append(f"{indent}{upper(names)} = <<~PEM")
                lines += [indent + "  " + x for x in pl] + [indent + "PEM"]
                start += 1
            elif host == "rs":
                lines.append(f'{indent}const {upper(names)}: &str = r#"{pl[0]}')
                lines += pl[1:-1] + [pl[-1] + '"#;']
            elif host == "tf":
                lines.append(f"{indent}{n} = <<-EOT")
                lines += [indent + "  " + x for x in pl] + [indent + "  EOT"]
                start += 1
            elif host == "sh":
                lines.append(f"cat > \"${{HOME}}/.ssh/{rng.choice(['id_rsa', 'deploy_key', 'ci_key'])}\" <<'EOF'")
                lines += pl + ["EOF"]
                start += 1
            elif host == "md":
                lines.append("```")
                lines += pl + ["```"]
                start += 1
            elif host in ("json", "fixture", "ipynb"):
                lines.append(f"{indent}{jesc(n)}: {jesc(v + chr(10))}" + ("," if ctx != "last" else ""))
            elif host == "env":
                lines.append(f'{n}="{v.replace(chr(10), chr(92) + "n")}"')
            else:
                lines.append(f"{indent}{n} = {jesc(v)}")
            first = next((i for i in range(start, len(lines)) if "-----BEGIN" in lines[i]), start)
            last = next((i for i in range(first, len(lines)) if "-----END" in lines[i]), len(lines) - 1)
            multi_span = (first, last)
            continue
        if host == "env":
            lines.append(f"{n}={v}" if rng.random() < 0.6 or raw else f'{n}="{v}"')
        elif host == "sh":
            lines.append(rng.choice([f'export {n}="{v}"', f"{n}='{v}'", f'export {n}={v}']) if not raw else f'export {n}="{v}"')
        elif host == "dockerfile":
            lines.append(f"{rng.choice(['ENV', 'ENV', 'ARG'])} {n}={v}" if rng.random() < 0.6 else f'ENV {n}="{v}"')
        elif host in ("yaml", "helm", "ci"):
            lines.append(f"{indent}{n}: {v if raw else yaml_scalar(v, rng)}")
        elif host == "compose":
            lines.append(f"{indent}- {n}={v}" if ctx == "list" else f"{indent}{n}: {yaml_scalar(v, rng)}")
        elif host == "k8s":
            if ctx == "env":
                lines.append(f"{indent}- name: {upper(names)}")
                lines.append(f"{indent}  value: {qd(v)}")
            elif ctx == "data" and plant.kind == "secret" and rng.random() < 0.6:
                lines.append(f"{indent}{n.replace('_', '-')}: {base64.b64encode(v.encode()).decode()}")
                encoded = True
            else:
                lines.append(f"{indent}{n.replace('_', '-') if ctx == 'data' else n}: {yaml_scalar(v, rng)}")
        elif host in ("json", "fixture", "ipynb"):
            lines.append(f"{indent}{jesc(n)}: {jesc(v)},")
        elif host == "py":
            if raw:
                lines.append(f"{indent}{n} = {v}")
            elif ctx == "dict":
                lines.append(f"{indent}{jesc(snake(names))}: {qd(v)},")
            else:
                lines.append(f"{indent}{n} = {qd(v) if rng.random() < 0.7 else qs(v)}")
        elif host in ("js", "ts"):
            val = v if raw else (qd(v) if rng.random() < 0.5 else qs(v))
            if ctx == "object":
                lines.append(f"{indent}{camel(names)}: {val},")
            else:
                kw = rng.choice(["const", "const", "export const", "let"])
                nm = upper(names) if rng.random() < 0.4 else camel(names)
                typ = ": string" if host == "ts" and rng.random() < 0.4 else ""
                lines.append(f"{indent}{kw} {nm}{typ} = {val};")
        elif host == "go":
            val = v if raw else qd(v)
            if ctx == "func":
                lines.append(f"{indent}{camel(names)} := {val}")
            else:
                lines.append(f"{indent}{rng.choice(['const', 'var'])} {camel(names) if rng.random() < 0.5 else pascal(names)} = {val}" if not raw
                             else f"{indent}var {camel(names)} = {val}")
        elif host == "java":
            val = v if raw else qd(v)
            lines.append(f"{indent}private static final String {upper(names)} = {val};")
        elif host == "rb":
            val = v if raw else (qd(v) if rng.random() < 0.5 else qs(v))
            lines.append(f"{indent}{n} = {val}" if rng.random() < 0.7 else f"{indent}config.{snake(names)} = {val}")
        elif host == "rs":
            val = v if raw else qd(v)
            lines.append(f"{indent}const {upper(names)}: &str = {val};" if not raw
                         else f"{indent}fn {snake(names)}() -> String {{ {v} }}")
        elif host == "properties":
            lines.append(f"{n}={v}" if rng.random() < 0.7 else f"{n} = {v}")
        elif host == "ini":
            lines.append(f"{n} = {v}")
        elif host == "tf":
            lines.append(f"{indent}{n} = {v}" if raw else f"{indent}{n} = {qd(v)}")
        elif host == "toml":
            lines.append(f"{n} = {qd(v)}")
        elif host == "xml":
            if rng.random() < 0.5:
                lines.append(f'{indent}<add key="{pascal(names)}" value="{v}" />')
            else:
                lines.append(f"{indent}<{camel(names)}>{v}</{camel(names)}>")
        elif host == "log":
            lvl = rng.choice(["DEBUG", "INFO", "WARN", "ERROR"])
            t = ts(rng)
            if v.startswith("eyJ") or names[-1] == "token" and rng.random() < 0.5:
                lines.append(f"{t} {lvl} [http-nio-8080-exec-{rng.randint(1, 20)}] o.a.c.RequestLogger - GET /api/v1/{rng.choice(NOUNS)}s headers={{Authorization=Bearer {v}, Accept=application/json}}")
            elif "://" in v:
                lines.append(f"{t} ERROR [main] {rng.choice(['sqlalchemy.pool', 'db.connect', 'app.startup'])} - could not connect to {v}: connection refused")
            else:
                lines.append(f"{t} {lvl} [worker-{rng.randint(1, 16)}] {rng.choice(NOUNS)}.{rng.choice(NOUNS)} - {log_msg(rng)} {snake(names)}={v}")
        elif host == "minjs":
            lines.append(f'{camel(names)}:"{v}",')
        elif host == "md":
            lines.append(f'export {n}="{v}"')
        elif host == "http":
            lines.append(f"Authorization: Bearer {v}")
        elif host == "html":
            if v.startswith("AIza"):
                lines.append(f'{indent}<script async src="https://maps.googleapis.com/maps/api/js?key={v}&callback=initMap"></script>')
            elif names == ["integrity"]:
                lines.append(f'{indent}<script src="https://cdn.jsdelivr.net/npm/{rng.choice(PRODUCTS)}@{version(rng)}/dist/{rng.choice(PRODUCTS)}.min.js" integrity="{v}" crossorigin="anonymous"></script>')
            elif v.startswith("data:"):
                lines.append(f'{indent}<img class="{rng.choice(NOUNS)}-icon" alt="" src="{v}">')
            elif names == ["class", "name"] or names == ["component", "id"]:
                lines.append(f'{indent}<div class="{v}" data-testid="{kebab(words(rng, 2))}"></div>')
            else:
                lines.append(f'{indent}<meta name="{kebab(names)}" content="{v}">')
        elif host == "css":
            if v.startswith("data:"):
                lines.append(f'.{kebab(words(rng, 2))} {{ background-image: url("{v}"); background-size: cover; }}')
            else:
                lines.append(f".{v} {{ display: flex; align-items: center; gap: {rng.randint(2, 24)}px; }}")
        else:
            lines.append(f"{indent}{n} = {v}")
        if (host == "md" and ctx == "curl" and len(items) == 1
                and (plant.kind == "secret" or plant.provider in ("placeholder", "github-bad-checksum", "truncated-token", "jwt-example"))):
            lines[-1] = (f'curl -s -H "Authorization: Bearer {v}" https://api.{domain(rng)}/v1/{rng.choice(NOUNS)}s'
                         if rng.random() < 0.7 else f'curl -u "{rng.choice(FIRST)}@{rng.choice(ORGS)}.com:{v}" https://{rng.choice(ORGS)}.atlassian.net/rest/api/3/myself')
    if host == "md" and not any(is_multi(v) for _, v in items):
        lang = rng.choice(["bash", "sh", "", "shell"])
        lines = [f"```{lang}"] + lines + ["```"]
        return lines, 1, len(lines) - 2, encoded
    if host == "http":
        lines = [f"### {rng.choice(VERBS)} {rng.choice(NOUNS)}", f"GET https://api.{domain(rng)}/v1/{rng.choice(NOUNS)}s"] + lines + ["Accept: application/json", ""]
        return lines, 2, 2 + len(items) - 1, encoded
    if multi_span and len(items) == 1:
        return lines, multi_span[0], multi_span[1], encoded
    return lines, 0, len(lines) - 1, encoded


class Doc:
    """Accumulates text, tracks the line count, and emits due plants at slots."""

    def __init__(self, rng, host, plants, target, path):
        self.parts = []
        self.nl = 0
        self.size = 0
        self.rng = rng
        self.host = host
        self.pending = sorted(plants, key=lambda p: p.pos)
        self.target = max(target, 200)
        self.records = []
        self.path = path

    def w(self, s):
        self.parts.append(s)
        self.nl += s.count("\n")
        self.size += len(s)

    def lines(self, ls):
        if ls:
            self.w("\n".join(ls) + "\n")

    def full(self):
        return self.size >= self.target

    def has_due(self):
        return bool(self.pending) and self.pending[0].pos * self.target <= self.size

    def slot(self, indent="", ctx=None, force=False, host=None, limit=99):
        n = 0
        while self.pending and (force or self.has_due()) and n < limit:
            p = self.pending.pop(0)
            self.emit(p, indent, ctx, host)
            n += 1
        return n

    def emit(self, p, indent="", ctx=None, host=None):
        host = host or self.host
        lines, a, b, enc = render(self.rng, host, p, indent, ctx)
        self.records.append(p.record(self.path, self.nl + 1 + a, self.nl + 1 + b, host, enc))
        self.lines(lines)

    def emit_inline(self, p, host=None):
        """For single-line hosts (minified JS): no newline added, but one plant per line."""
        host = host or self.host
        if self.records and self.records[-1]["end_line"] >= self.nl + 1:
            self.w("\n")
        lines, a, b, enc = render(self.rng, host, p)
        self.records.append(p.record(self.path, self.nl + 1, self.nl + 1, host, enc))
        self.w("".join(lines))

    def text(self):
        return "".join(self.parts)


# --------------------------------------------------------------------------------------
# source code generators
# --------------------------------------------------------------------------------------
PY_STD = ["os", "sys", "json", "time", "logging", "re", "pathlib", "collections", "itertools", "functools", "datetime",
          "uuid", "hashlib", "asyncio", "contextlib", "enum", "math", "subprocess", "argparse", "csv", "threading",
          "queue", "shutil", "tempfile", "textwrap", "decimal", "random", "heapq", "bisect", "copy", "dataclasses"]
PY_3P = ["requests", "httpx", "pydantic", "sqlalchemy", "fastapi", "flask", "celery", "redis", "boto3", "numpy", "pandas",
         "click", "attrs", "structlog", "tenacity", "jinja2", "yaml", "aiohttp", "marshmallow", "orjson", "arrow", "rich"]
PY_EXC = ["ValueError", "KeyError", "RuntimeError", "TimeoutError", "OSError", "LookupError", "TypeError", "ConnectionError"]
LOG_LEVELS = ["debug", "info", "info", "warning", "error"]


def _msg(rng):
    return log_msg(rng).replace('"', "'")


def py_expr(rng, vs):
    v = rng.choice(vs)
    k = rng.randrange(16)
    n, a = rng.choice(NOUNS), rng.choice(NOUNS)
    return [f"self.{a}", f"{fn_name(rng)}({v})", f"len({v})", f'{v}.get("{a}")', f"[x.{a} for x in {v} if x]",
            str(rng.randint(0, 1000)), f'"{rng.choice(WORDS)}-{n}"', "None", f"{v} or {{}}", f"dict({a}={v})",
            f"{v}[{rng.randint(1, 9)}:]", f"time.monotonic() - {v}", f"json.loads({v})", f"{v}.strip().lower()",
            f"{pascal([n, a])}.from_dict({v})", f'f"{{{v}}}/{a}"'][k]


def py_cond(rng, vs):
    v = rng.choice(vs)
    return rng.choice([f"{v} is None", f"not {v}", f"{v} > {rng.randint(0, 100)}", f"isinstance({v}, dict)",
                       f'"{rng.choice(NOUNS)}" in {v}', f"len({v}) >= {rng.randint(1, 64)}", f"{v} and {v}.{rng.choice(NOUNS)}",
                       f"self.{rng.choice(ADJS)}_{rng.choice(NOUNS)}"])


def py_block(rng, ind, vs, depth, n):
    out = []
    for _ in range(n):
        k = rng.random()
        if k < 0.32:
            v = snake(split_words([rng.choice(ADJS), rng.choice(NOUNS)])) if rng.random() < 0.5 else rng.choice(NOUNS)
            out.append(f"{ind}{v} = {py_expr(rng, vs)}")
            vs = vs + [v]
        elif k < 0.42:
            out.append(f'{ind}logger.{rng.choice(LOG_LEVELS)}("{_msg(rng)} %s", {rng.choice(vs)})')
        elif k < 0.52:
            out.append(f"{ind}{rng.choice(vs)}.{fn_name(rng)}({rng.choice(vs)})")
        elif k < 0.62:
            out.append(f"{ind}# {comment_text(rng)}")
        elif k < 0.74 and depth < 3:
            out.append(f"{ind}if {py_cond(rng, vs)}:")
            out += py_block(rng, ind + "    ", vs, depth + 1, rng.randint(1, 3))
            if rng.random() < 0.3:
                out.append(f"{ind}else:")
                out += py_block(rng, ind + "    ", vs, depth + 1, rng.randint(1, 2))
        elif k < 0.84 and depth < 3:
            x = rng.choice(NOUNS)
            out.append(f"{ind}for {x} in {rng.choice(vs)}:")
            out += py_block(rng, ind + "    ", vs + [x], depth + 1, rng.randint(1, 3))
        elif k < 0.92 and depth < 2:
            out.append(f"{ind}try:")
            out += py_block(rng, ind + "    ", vs, depth + 1, rng.randint(1, 3))
            out.append(f"{ind}except {rng.choice(PY_EXC)} as exc:")
            out.append(f'{ind}    logger.warning("{_msg(rng)}: %s", exc)')
            out.append(f"{ind}    raise {pascal([rng.choice(NOUNS), 'error'])}(str(exc)) from exc" if rng.random() < 0.5 else f"{ind}    return None")
        else:
            out.append(f'{ind}raise ValueError(f"invalid {rng.choice(NOUNS)}: {{{rng.choice(vs)}!r}}")' if rng.random() < 0.2
                       else f"{ind}{rng.choice(vs)}.append({py_expr(rng, vs)})")
    return out


def py_function(rng, ind="", method=False):
    args = words(rng, rng.randint(0, 3))
    args = list(dict.fromkeys(args))
    sig = (["self"] if method else []) + [f"{a}: {rng.choice(['str', 'int', 'dict', 'list', 'Optional[str]', 'Any', 'bytes'])}" if rng.random() < 0.6 else a for a in args]
    name = fn_name(rng)
    if method and rng.random() < 0.15:
        name = "_" + name
    out = []
    if rng.random() < 0.15:
        deco = rng.choice(['staticmethod', 'property', 'functools.lru_cache(maxsize=128)', 'retry(stop=stop_after_attempt(3))', 'app.get("/' + rng.choice(NOUNS) + '")'])
        out.append(f"{ind}@{deco}")
        if "staticmethod" in out[-1] and method:
            sig = sig[1:]
    pre = "async def" if rng.random() < 0.15 else "def"
    out.append(f"{ind}{pre} {name}({', '.join(sig)}) -> {rng.choice(['None', 'bool', 'dict', 'str', 'int', 'list', 'Optional[dict]'])}:")
    if rng.random() < 0.7:
        out.append(f'{ind}    """{comment_text(rng)}')
        if rng.random() < 0.4:
            out.append("")
            out.append(f"{ind}    {sentence(rng)}")
            for a in args:
                out.append(f"{ind}    :param {a}: the {rng.choice(ADJS)} {a}")
        out.append(f'{ind}    """' if len(out[-1].strip()) < 60 or rng.random() < 0.5 else f'{ind}    """')
    vs = args + ["self." + rng.choice(NOUNS)] if method else args or [rng.choice(NOUNS)]
    if not args:
        out.append(f"{ind}    {vs[0]} = {py_expr(rng, ['self'] if method else ['None'])}")
    out += py_block(rng, ind + "    ", vs, 0, rng.randint(2, 9))
    out.append(f"{ind}    return {py_expr(rng, vs)}")
    return out


def gen_py(doc, rng, meta):
    test = meta.get("test")
    out = [f'"""{comment_text(rng)}"""', ""] if rng.random() < 0.8 else []
    if rng.random() < 0.5:
        out += ["from __future__ import annotations", ""]
    for m in sorted(set(rng.sample(PY_STD, rng.randint(2, 7))) | {"logging"}):
        out.append(f"import {m}")
    out.append("from typing import Any, Dict, List, Optional")
    out.append("")
    for m in sorted(set(rng.sample(PY_3P, rng.randint(0, 4)))):
        out.append(f"import {m}")
    if test:
        out.append("import pytest")
    pkg = meta.get("pkg", "app")
    for _ in range(rng.randint(1, 4)):
        out.append(f"from {pkg}.{rng.choice(NOUNS)} import {pascal([rng.choice(NOUNS)])}, {fn_name(rng)}")
    out += ["", "logger = logging.getLogger(__name__)", ""]
    for _ in range(rng.randint(0, 4)):
        out.append(f"{upper(split_words([rng.choice(ADJS), rng.choice(NOUNS)]))}_{rng.choice(['TIMEOUT', 'LIMIT', 'RETRIES', 'SIZE', 'TTL'])} = {rng.randint(1, 3600)}")
    doc.lines(out + [""])
    doc.slot("", "module")
    while not doc.full():
        if rng.random() < 0.35:
            cls = pascal([rng.choice(ADJS), rng.choice(NOUNS)]) if rng.random() < 0.3 else pascal([rng.choice(NOUNS), rng.choice(["Service", "Client", "Repository", "Manager", "Handler", "Worker", "Store", "Config"])])
            ls = ["", f"@dataclass" if rng.random() < 0.3 else "", f"class {'Test' if test else ''}{cls}({rng.choice(['', 'Base' + cls, 'object', 'Exception', 'BaseModel'])}):"]
            ls = [x for x in ls if x != ""] if ls[1] == "" else ls
            ls[-1] = ls[-1].replace("()", "")
            ls.append(f'    """{comment_text(rng)}"""')
            ls.append("")
            for _ in range(rng.randint(0, 4)):
                dv = rng.choice(['None', '0', '""', 'False', 'field(default_factory=list)'])
                ls.append(f"    {rng.choice(NOUNS)}: {rng.choice(['str', 'int', 'float', 'bool', 'Optional[str]', 'List[str]'])} = {dv}")
            ls.append("")
            for _ in range(rng.randint(1, 6)):
                ls += py_function(rng, "    ", method=True) + [""]
            doc.lines(["", ""] + ls)
        else:
            doc.lines(["", ""] + py_function(rng))
        doc.slot("", "module")
    if rng.random() < 0.3:
        doc.lines(["", "", 'if __name__ == "__main__":', "    main()"])
    doc.slot("", "module", force=True)


# ---- JavaScript / TypeScript
JS_PKGS = ["react", "react-dom", "axios", "lodash", "express", "zod", "dayjs", "uuid", "redux", "@reduxjs/toolkit", "next/router",
           "vue", "pinia", "rxjs", "winston", "pino", "knex", "prisma", "@tanstack/react-query", "classnames", "yup", "ws"]


def js_expr(rng, vs, ts=False):
    v = rng.choice(vs)
    a = rng.choice(NOUNS)
    return rng.choice([f"this.{camel([a])}", f"await {fn_name(rng, 'camel')}({v})", f"{v}.length", f"{v}?.{camel([a])} ?? null",
                       f"{v}.map((x) => x.{camel([a])})", str(rng.randint(0, 1000)), f"'{rng.choice(WORDS)}-{a}'", "null",
                       f"{{ ...{v}, {camel([a])}: {rng.randint(0, 99)} }}", f"JSON.parse({v})", f"Object.keys({v})",
                       f"`${{{v}}}/{a}`", f"{v}.filter(Boolean)", f"new {pascal([a, rng.choice(NOUNS)])}({v})",
                       f"Number({v}) || 0", f"{v} === '{rng.choice(ADJS)}'"])


def js_block(rng, ind, vs, depth, n, ts=False):
    out = []
    for _ in range(n):
        k = rng.random()
        if k < 0.32:
            v = camel(split_words([rng.choice(ADJS), rng.choice(NOUNS)])) if rng.random() < 0.5 else camel(split_words([rng.choice(NOUNS)]))
            t = f": {rng.choice(['string', 'number', 'boolean', pascal([rng.choice(NOUNS)]), 'unknown'])}" if ts and rng.random() < 0.3 else ""
            out.append(f"{ind}{rng.choice(['const', 'const', 'let'])} {v}{t} = {js_expr(rng, vs, ts)};")
            vs = vs + [v]
        elif k < 0.42:
            out.append(f"{ind}logger.{rng.choice(['info', 'debug', 'warn', 'error'])}(`{_msg(rng)} ${{{rng.choice(vs)}}}`);")
        elif k < 0.52:
            out.append(f"{ind}{rng.choice(vs)}.{fn_name(rng, 'camel')}({rng.choice(vs)});")
        elif k < 0.6:
            out.append(f"{ind}// {comment_text(rng)}")
        elif k < 0.72 and depth < 3:
            out.append(f"{ind}if ({rng.choice(['!', ''])}{rng.choice(vs)}{rng.choice(['', '.length > 0', ' === null', '?.ok'])}) {{")
            out += js_block(rng, ind + "  ", vs, depth + 1, rng.randint(1, 3), ts)
            out.append(f"{ind}}}")
        elif k < 0.82 and depth < 3:
            x = camel([rng.choice(NOUNS)])
            out.append(f"{ind}for (const {x} of {rng.choice(vs)}) {{")
            out += js_block(rng, ind + "  ", vs + [x], depth + 1, rng.randint(1, 3), ts)
            out.append(f"{ind}}}")
        elif k < 0.9 and depth < 2:
            out.append(f"{ind}try {{")
            out += js_block(rng, ind + "  ", vs, depth + 1, rng.randint(1, 3), ts)
            out.append(f"{ind}}} catch (err) {{")
            out.append(f"{ind}  logger.error('{_msg(rng)}', err);")
            out.append(f"{ind}  throw err;")
            out.append(f"{ind}}}")
        else:
            out.append(f"{ind}{rng.choice(vs)}.push({js_expr(rng, vs, ts)});")
    return out


def js_function(rng, ind="", ts=False, method=False):
    args = list(dict.fromkeys(camel([w]) for w in words(rng, rng.randint(0, 3))))
    sig = ", ".join(f"{a}: {rng.choice(['string', 'number', pascal([rng.choice(NOUNS)]), 'Record<string, unknown>', 'string[]'])}" if ts else a for a in args)
    name = fn_name(rng, "camel")
    out = []
    if rng.random() < 0.5:
        out.append(f"{ind}/**")
        out.append(f"{ind} * {comment_text(rng)}")
        for a in args:
            out.append(f"{ind} * @param {{{rng.choice(['string', 'number', 'object'])}}} {a}")
        out.append(f"{ind} */")
    asy = "async " if rng.random() < 0.4 else ""
    ret = f": Promise<{pascal([rng.choice(NOUNS)])}>" if ts and asy else (f": {rng.choice(['void', 'boolean', 'string', 'number'])}" if ts else "")
    if method:
        out.append(f"{ind}{asy}{name}({sig}){ret} {{")
    elif rng.random() < 0.35:
        out.append(f"{ind}export const {name} = {asy}({sig}){ret} => {{")
    else:
        out.append(f"{ind}{rng.choice(['export ', ''])}{asy}function {name}({sig}){ret} {{")
    vs = args or [camel([rng.choice(NOUNS)])]
    if not args:
        out.append(f"{ind}  const {vs[0]} = {js_expr(rng, ['this' if method else 'state'], ts)};")
    out += js_block(rng, ind + "  ", vs, 0, rng.randint(2, 8), ts)
    out.append(f"{ind}  return {js_expr(rng, vs, ts)};")
    out.append(f"{ind}}}" + (";" if "=>" in out[-len(out)] else ""))
    return out


def gen_js(doc, rng, meta, ts=False):
    out = []
    if rng.random() < 0.3:
        out.append("'use strict';")
    for p in sorted(set(rng.sample(JS_PKGS, rng.randint(1, 5)))):
        if rng.random() < 0.75 or ts:
            out.append(f"import {rng.choice(['', '* as '])}{camel(split_words([p.split('/')[-1].replace('-', '_').replace('@', '')]))} from '{p}';".replace("import  ", "import "))
        else:
            out.append(f"const {camel(split_words([p.split('/')[-1].replace('-', '_').replace('@', '')]))} = require('{p}');")
    for _ in range(rng.randint(1, 4)):
        out.append(f"import {{ {pascal([rng.choice(NOUNS)])}, {fn_name(rng, 'camel')} }} from '{rng.choice(['../', './', '@/'])}{rng.choice(NOUNS)}/{rng.choice(NOUNS)}';")
    out.append("")
    out.append(f"const logger = {rng.choice(['createLogger', 'getLogger', 'pino'])}({{ name: '{rng.choice(NOUNS)}' }});")
    for _ in range(rng.randint(0, 3)):
        out.append(f"const {upper([rng.choice(ADJS), rng.choice(NOUNS), rng.choice(['timeout', 'limit', 'size'])])} = {rng.randint(1, 60000)};")
    doc.lines(out + [""])
    doc.slot("", "module")
    while not doc.full():
        r = rng.random()
        if ts and r < 0.2:
            ls = [f"export {rng.choice(['interface', 'type'])} {pascal([rng.choice(NOUNS), rng.choice(NOUNS)])}" + (" {" if True else "")]
            if "type" in ls[0]:
                ls[0] = ls[0].replace(" {", " = {")
            for _ in range(rng.randint(2, 8)):
                ls.append(f"  {camel([rng.choice(NOUNS)])}{rng.choice(['', '?'])}: {rng.choice(['string', 'number', 'boolean', 'string[]', pascal([rng.choice(NOUNS)]), 'Date', 'null | string'])};")
            ls.append("}" + (";" if "=" in ls[0] else ""))
            doc.lines([""] + ls)
        elif r < 0.45:
            cls = pascal([rng.choice(NOUNS), rng.choice(["Service", "Client", "Store", "Controller", "Manager"])])
            ls = [f"export class {cls}{rng.choice(['', ' extends Base' + cls])} {{"]
            if ts:
                for _ in range(rng.randint(0, 3)):
                    ls.append(f"  private {camel([rng.choice(NOUNS)])}: {rng.choice(['string', 'number', 'Map<string, number>'])};")
            ls.append(f"  constructor({', '.join(camel([w]) for w in words(rng, 2))}) {{")
            ls.append(f"    this.{camel([rng.choice(NOUNS)])} = {camel([rng.choice(NOUNS)])};")
            ls.append("  }")
            for _ in range(rng.randint(1, 5)):
                ls += [""] + js_function(rng, "  ", ts, method=True)
            ls.append("}")
            doc.lines([""] + ls)
        elif r < 0.55 and not ts:
            obj = camel([rng.choice(NOUNS), "config"])
            ls = [f"const {obj} = {{"]
            for _ in range(rng.randint(2, 6)):
                ls.append(f"  {camel([rng.choice(NOUNS)])}: {rng.choice([str(rng.randint(0, 9999)), qs(rng.choice(NOUNS)), 'true', 'false'])},")
            doc.lines([""] + ls)
            doc.slot("  ", "object", limit=2)
            doc.lines(["};"])
        else:
            doc.lines([""] + js_function(rng, "", ts))
        doc.slot("", "module")
    doc.lines(["", f"export default {{ {', '.join(fn_name(rng, 'camel') for _ in range(rng.randint(1, 4)))} }};"] if rng.random() < 0.4 else [])
    doc.slot("", "module", force=True)


# ---- Go
GO_STD = ["context", "encoding/json", "errors", "fmt", "io", "log", "net/http", "os", "sort", "strconv", "strings", "sync", "time",
          "database/sql", "bytes", "bufio", "path/filepath", "regexp", "crypto/sha256"]
GO_3P = ["github.com/gorilla/mux", "go.uber.org/zap", "github.com/spf13/cobra", "github.com/spf13/viper", "github.com/jackc/pgx/v5",
         "github.com/redis/go-redis/v9", "google.golang.org/grpc", "github.com/prometheus/client_golang/prometheus",
         "github.com/stretchr/testify/require", "golang.org/x/sync/errgroup"]


def go_block(rng, ind, vs, depth, n):
    out = []
    for _ in range(n):
        k = rng.random()
        v = rng.choice(vs)
        if k < 0.25:
            nv = camel(split_words([rng.choice(NOUNS)]))
            e = rng.choice([f'len({v})', f'{v}.{pascal([rng.choice(NOUNS)])}', f'strings.TrimSpace({v})', f'time.Since({v})', str(rng.randint(0, 512)), qd(rng.choice(NOUNS)), f'make(map[string]int, {rng.randint(1, 64)})', 'fmt.Sprintf("%s-%d", ' + v + ', ' + str(rng.randint(1, 99)) + ')'])
            out.append(f"{ind}{nv} := {e}")
            vs = vs + [nv]
        elif k < 0.45:
            nv = camel(split_words([rng.choice(NOUNS)]))
            out.append(f"{ind}{nv}, err := {rng.choice(['s.', 'r.', 'c.', ''])}{fn_name(rng, 'pascal')}(ctx, {v})")
            out.append(f"{ind}if err != nil {{")
            out.append(f'{ind}\treturn {rng.choice(["nil, ", ""])}fmt.Errorf("{_msg(rng)}: %w", err)')
            out.append(f"{ind}}}")
            vs = vs + [nv]
        elif k < 0.55:
            out.append(f'{ind}s.logger.{rng.choice(["Info", "Debug", "Warn"])}("{_msg(rng)}", zap.String("{rng.choice(NOUNS)}", {v}))' if rng.random() < 0.5
                       else f'{ind}log.Printf("{_msg(rng)}: %v", {v})')
        elif k < 0.63:
            out.append(f"{ind}// {comment_text(rng)}")
        elif k < 0.75 and depth < 3:
            op = rng.choice(['== nil', '!= nil', '> 0', '== ""'])
            out.append(f"{ind}if {v} {op} {{")
            out += go_block(rng, ind + "\t", vs, depth + 1, rng.randint(1, 3))
            out.append(f"{ind}}}")
        elif k < 0.87 and depth < 3:
            x = camel([rng.choice(NOUNS)])
            out.append(f"{ind}for _, {x} := range {v} {{")
            out += go_block(rng, ind + "\t", vs + [x], depth + 1, rng.randint(1, 3))
            out.append(f"{ind}}}")
        else:
            out.append(f"{ind}{v} = append({v}, {rng.choice(vs)})")
    return out


def gen_go(doc, rng, meta):
    pkg = meta.get("gopkg", rng.choice(NOUNS))
    imps = sorted(set(rng.sample(GO_STD, rng.randint(2, 7))) | set(rng.sample(GO_3P, rng.randint(0, 3))))
    out = [f"// Package {pkg} {lc_first(comment_text(rng))}", f"package {pkg}", "", "import ("]
    out += [f'\t"{i}"' for i in imps] + [")", ""]
    doc.lines(out)
    doc.slot("", "module")
    while not doc.full():
        r = rng.random()
        if r < 0.25:
            st = pascal([rng.choice(NOUNS), rng.choice(NOUNS)])
            ls = [f"// {st} {comment_text(rng)}", f"type {st} struct {{"]
            for _ in range(rng.randint(2, 8)):
                f = pascal([rng.choice(NOUNS)])
                ls.append(f'\t{f} {rng.choice(["string", "int", "int64", "bool", "time.Time", "[]string", "map[string]string", "*" + pascal([rng.choice(NOUNS)])])} `json:"{snake([f.lower()])}{rng.choice(["", ",omitempty"])}"`')
            ls.append("}")
            doc.lines([""] + ls)
        else:
            recv = rng.random() < 0.6
            name = fn_name(rng, "pascal" if rng.random() < 0.6 else "camel")
            args = list(dict.fromkeys(camel([w]) for w in words(rng, rng.randint(1, 3))))
            sig = "ctx context.Context, " + ", ".join(f"{a} {rng.choice(['string', 'int', '[]byte', '*' + pascal([rng.choice(NOUNS)])])}" for a in args)
            ls = [f"// {name} {lc_first(comment_text(rng))}"]
            ls.append(f"func {'(s *' + pascal([rng.choice(NOUNS)]) + 'Service) ' if recv else ''}{name}({sig}) ({'*' + pascal([rng.choice(NOUNS)]) + ', ' if rng.random() < 0.5 else ''}error) {{")
            ls += go_block(rng, "\t", args, 0, rng.randint(2, 8))
            ls.append("\treturn " + ("nil, nil" if ", error" in ls[-1] or rng.random() < 0.5 else "nil"))
            ls.append("}")
            doc.lines([""] + ls)
        doc.slot("", "module")
    doc.slot("", "module", force=True)


# ---- Java
JAVA_IMPORTS = ["java.util.List", "java.util.Map", "java.util.Optional", "java.util.stream.Collectors", "java.time.Instant",
                "java.time.Duration", "java.io.IOException", "java.util.concurrent.CompletableFuture", "org.slf4j.Logger",
                "org.slf4j.LoggerFactory", "org.springframework.stereotype.Service", "org.springframework.beans.factory.annotation.Value",
                "org.springframework.web.bind.annotation.*", "jakarta.persistence.*", "com.fasterxml.jackson.databind.ObjectMapper"]


def java_block(rng, ind, vs, depth, n):
    out = []
    for _ in range(n):
        k = rng.random()
        v = rng.choice(vs)
        if k < 0.3:
            nv = camel(split_words([rng.choice(ADJS), rng.choice(NOUNS)]))
            e = rng.choice([f'{v}.get{pascal([rng.choice(NOUNS)])}()', f'{fn_name(rng, "camel")}({v})', f'Optional.ofNullable({v})', str(rng.randint(0, 999)), qd(rng.choice(NOUNS)), 'String.format("%s-%d", ' + v + ', ' + str(rng.randint(1, 9)) + ')', f'{v}.stream().map(x -> x.get{pascal([rng.choice(NOUNS)])}()).collect(Collectors.toList())'])
            out.append(f"{ind}var {nv} = {e};")
            vs = vs + [nv]
        elif k < 0.42:
            out.append(f'{ind}LOG.{rng.choice(["info", "debug", "warn"])}("{_msg(rng)} {{}}", {v});')
        elif k < 0.5:
            out.append(f"{ind}// {comment_text(rng)}")
        elif k < 0.64 and depth < 3:
            out.append(f"{ind}if ({v} {rng.choice(['== null', '!= null', '.isEmpty()'])}) {{".replace(" .isEmpty", ".isEmpty"))
            out += java_block(rng, ind + "    ", vs, depth + 1, rng.randint(1, 3))
            out.append(f"{ind}}}")
        elif k < 0.76 and depth < 3:
            x = camel([rng.choice(NOUNS)])
            out.append(f"{ind}for (var {x} : {v}) {{")
            out += java_block(rng, ind + "    ", vs + [x], depth + 1, rng.randint(1, 3))
            out.append(f"{ind}}}")
        elif k < 0.86 and depth < 2:
            out.append(f"{ind}try {{")
            out += java_block(rng, ind + "    ", vs, depth + 1, rng.randint(1, 3))
            out.append(f"{ind}}} catch ({rng.choice(['IOException', 'IllegalStateException', 'RuntimeException'])} e) {{")
            out.append(f'{ind}    LOG.warn("{_msg(rng)}", e);')
            out.append(f"{ind}    throw new {pascal([rng.choice(NOUNS), 'exception'])}(e);")
            out.append(f"{ind}}}")
        else:
            out.append(f"{ind}{v}.{fn_name(rng, 'camel')}({rng.choice(vs)});")
    return out


def gen_java(doc, rng, meta):
    pkg = meta.get("javapkg", f"com.{rng.choice(ORGS).replace('-', '')}.{rng.choice(PRODUCTS)}")
    cls = meta.get("cls") or pascal([rng.choice(NOUNS), rng.choice(["Service", "Controller", "Repository", "Client", "Handler"])])
    out = [f"package {pkg};", ""] + [f"import {i};" for i in sorted(set(rng.sample(JAVA_IMPORTS, rng.randint(3, 9))))] + [""]
    out += ["/**", f" * {comment_text(rng)}", " */"]
    if rng.random() < 0.6:
        out.append(rng.choice(["@Service", "@RestController", "@Component", "@Repository", "@Configuration"]))
    out.append(f"public class {cls} {{")
    out.append(f"    private static final Logger LOG = LoggerFactory.getLogger({cls}.class);")
    doc.lines(out)
    doc.slot("    ", "class")
    fields = [camel([rng.choice(NOUNS), rng.choice(["repository", "client", "mapper", "service"])]) for _ in range(rng.randint(1, 4))]
    doc.lines([f"    private final {pascal([f])} {f};" for f in fields] + [""])
    while not doc.full():
        args = list(dict.fromkeys(camel([w]) for w in words(rng, rng.randint(0, 3))))
        ls = ["    /**", f"     * {comment_text(rng)}", "     */"] if rng.random() < 0.5 else []
        if rng.random() < 0.2:
            ls.append(f'    @{rng.choice(["GetMapping", "PostMapping", "PutMapping"])}("/{rng.choice(NOUNS)}s/{{id}}")')
        ls.append(f"    public {rng.choice(['void', 'String', 'boolean', 'List<' + pascal([rng.choice(NOUNS)]) + '>', 'Optional<' + pascal([rng.choice(NOUNS)]) + '>'])} {fn_name(rng, 'camel')}({', '.join(pascal([rng.choice(NOUNS)]) + ' ' + a for a in args)}) {{")
        ls += java_block(rng, "        ", args or fields, 0, rng.randint(2, 8))
        ls += ["    }", ""]
        doc.lines(ls)
        doc.slot("    ", "class")
    doc.slot("    ", "class", force=True)
    doc.lines(["}"])


# ---- Rust
def rs_block(rng, ind, vs, depth, n):
    out = []
    for _ in range(n):
        k = rng.random()
        v = rng.choice(vs)
        if k < 0.3:
            nv = snake(split_words([rng.choice(NOUNS)]))
            e = rng.choice([f'{v}.len()', f'{fn_name(rng)}(&{v})?', f'{v}.iter().map(|x| x.{rng.choice(NOUNS)}).collect::<Vec<_>>()', str(rng.randint(0, 999)), qd(rng.choice(NOUNS)) + '.to_string()', 'format!("{}-{}", ' + v + ', ' + str(rng.randint(1, 9)) + ')', f'self.{rng.choice(NOUNS)}.clone()', 'HashMap::new()'])
            out.append(f"{ind}let {rng.choice(['', 'mut '])}{nv} = {e};")
            vs = vs + [nv]
        elif k < 0.42:
            out.append(f'{ind}tracing::{rng.choice(["info", "debug", "warn"])}!({rng.choice(NOUNS)} = ?{v}, "{_msg(rng)}");')
        elif k < 0.5:
            out.append(f"{ind}// {comment_text(rng)}")
        elif k < 0.62 and depth < 3:
            out.append(f"{ind}if {rng.choice([f'{v}.is_empty()', f'{v} > {rng.randint(0, 9)}', f'let Some(x) = {v}.get(0)'])} {{")
            out += rs_block(rng, ind + "    ", vs, depth + 1, rng.randint(1, 3))
            out.append(f"{ind}}}")
        elif k < 0.74 and depth < 3:
            x = snake([rng.choice(NOUNS)])
            out.append(f"{ind}for {x} in {v}.iter() {{")
            out += rs_block(rng, ind + "    ", vs + [x], depth + 1, rng.randint(1, 3))
            out.append(f"{ind}}}")
        elif k < 0.84 and depth < 2:
            out.append(f"{ind}match {v} {{")
            out.append(f"{ind}    Some(x) => {fn_name(rng)}(x),")
            out.append(f"{ind}    None => return Err(Error::{pascal([rng.choice(NOUNS), 'missing'])}),")
            out.append(f"{ind}}}")
        else:
            out.append(f"{ind}{v}.push({rng.choice(vs)}.clone());")
    return out


def gen_rs(doc, rng, meta):
    out = [f"//! {comment_text(rng)}", ""]
    out += [f"use {u};" for u in sorted(set(rng.sample(["std::collections::HashMap", "std::sync::Arc", "std::time::Duration",
                                                         "serde::{Deserialize, Serialize}", "anyhow::{Context, Result}", "tokio::sync::Mutex",
                                                         "crate::error::Error", "std::path::PathBuf", "std::fmt", "tracing::instrument"], rng.randint(2, 6))))]
    doc.lines(out + [""])
    doc.slot("", "module")
    while not doc.full():
        if rng.random() < 0.3:
            st = pascal([rng.choice(NOUNS), rng.choice(NOUNS)])
            ls = [f"/// {comment_text(rng)}", "#[derive(Debug, Clone, Serialize, Deserialize)]", f"pub struct {st} {{"]
            for _ in range(rng.randint(2, 7)):
                ls.append(f"    pub {snake([rng.choice(NOUNS)])}: {rng.choice(['String', 'u64', 'usize', 'bool', 'Option<String>', 'Vec<String>', 'HashMap<String, u32>'])},")
            ls.append("}")
            ls += ["", f"impl {st} {{"]
            for _ in range(rng.randint(1, 4)):
                args = list(dict.fromkeys(snake([w]) for w in words(rng, rng.randint(0, 2))))
                ls += [f"    /// {comment_text(rng)}", f"    pub fn {fn_name(rng)}(&self{''.join(', ' + a + ': &str' for a in args)}) -> Result<{rng.choice(['()', 'String', 'usize', 'bool'])}> {{"]
                ls += rs_block(rng, "        ", args or ["self.items"], 0, rng.randint(2, 6))
                ls += ["        Ok(Default::default())", "    }", ""]
            ls.append("}")
            doc.lines([""] + ls)
        else:
            args = list(dict.fromkeys(snake([w]) for w in words(rng, rng.randint(1, 3))))
            ls = [f"/// {comment_text(rng)}", f"pub {rng.choice(['', 'async '])}fn {fn_name(rng)}({', '.join(a + ': &' + rng.choice(['str', '[u8]', 'Config']) for a in args)}) -> Result<()> {{"]
            ls += rs_block(rng, "    ", args, 0, rng.randint(2, 8))
            ls += ["    Ok(())", "}"]
            doc.lines([""] + ls)
        doc.slot("", "module")
    doc.slot("", "module", force=True)
    if rng.random() < 0.4:
        doc.lines(["", "#[cfg(test)]", "mod tests {", "    use super::*;", "", "    #[test]", f"    fn {fn_name(rng)}_works() {{",
                   f"        assert_eq!({rng.randint(1, 9)}, {rng.randint(1, 9)});", "    }", "}"])


# ---- Ruby
def rb_block(rng, ind, vs, depth, n):
    out = []
    for _ in range(n):
        k = rng.random()
        v = rng.choice(vs)
        if k < 0.3:
            nv = snake(split_words([rng.choice(NOUNS)]))
            out.append(f"{ind}{nv} = {rng.choice([f'{v}.size', f'{fn_name(rng)}({v})', f'{v}.map(&:{rng.choice(NOUNS)})', str(rng.randint(0, 99)), qd(rng.choice(NOUNS)), f'{v}.fetch(:{rng.choice(NOUNS)}, nil)', f'@{rng.choice(NOUNS)}', f'{pascal([rng.choice(NOUNS)])}.find_by(id: {v})'])}")
            vs = vs + [nv]
        elif k < 0.42:
            out.append(f'{ind}Rails.logger.{rng.choice(["info", "debug", "warn"])}("{_msg(rng)} #{{{v}}}")')
        elif k < 0.5:
            out.append(f"{ind}# {comment_text(rng)}")
        elif k < 0.64 and depth < 3:
            out.append(f"{ind}{rng.choice(['if', 'unless'])} {v}{rng.choice(['.nil?', '.empty?', '.present?', ''])}")
            out += rb_block(rng, ind + "  ", vs, depth + 1, rng.randint(1, 3))
            out.append(f"{ind}end")
        elif k < 0.78 and depth < 3:
            x = rng.choice(NOUNS)
            out.append(f"{ind}{v}.each do |{x}|")
            out += rb_block(rng, ind + "  ", vs + [x], depth + 1, rng.randint(1, 3))
            out.append(f"{ind}end")
        else:
            out.append(f"{ind}{v} << {rng.choice(vs)}")
    return out


def gen_rb(doc, rng, meta):
    out = ["# frozen_string_literal: true", ""] + [f"require '{r}'" for r in sorted(set(rng.sample(["json", "net/http", "logger", "securerandom", "set", "time", "yaml", "openssl"], rng.randint(0, 3))))]
    mod = pascal([rng.choice(PRODUCTS)])
    cls = pascal([rng.choice(NOUNS), rng.choice(["", "Service", "Job", "Controller", "Serializer", "Policy"])])
    out += ["", f"module {mod}", f"  # {comment_text(rng)}", f"  class {cls}{rng.choice(['', ' < ApplicationRecord', ' < ApplicationController', ' < ApplicationJob'])}"]
    out += [f"    attr_reader {', '.join(':' + n for n in dict.fromkeys(words(rng, rng.randint(1, 3))))}", ""]
    doc.lines(out)
    doc.slot("    ", "class")
    while not doc.full():
        args = list(dict.fromkeys(words(rng, rng.randint(0, 3))))
        ls = [f"    # {comment_text(rng)}", f"    def {fn_name(rng)}{'(' + ', '.join(args) + ')' if args else ''}"]
        ls += rb_block(rng, "      ", args or ["@" + rng.choice(NOUNS)], 0, rng.randint(2, 7))
        ls += ["    end", ""]
        doc.lines(ls)
        doc.slot("    ", "class")
    doc.slot("    ", "class", force=True)
    doc.lines(["  end", "end"])


# ---- shell
SH_CMDS = ["docker build -t {img}:{tag} .", "docker push {img}:{tag}", "kubectl apply -f deploy/{n}.yaml", "kubectl rollout status deployment/{n} -n {ns}",
           "aws s3 sync ./dist s3://{n}-{env}-assets --delete", "terraform -chdir=infra/{env} plan -out=tfplan", "helm upgrade --install {n} ./charts/{n} -n {ns} -f values-{env}.yaml",
           "jq -r '.{n}[] | .id' \"$TMP/{n}.json\"", "psql \"$DATABASE_URL\" -c 'select count(*) from {n}s'", "go test ./... -race -count=1",
           "npm ci && npm run build", "python -m pytest -q tests/", "gzip -9 \"$OUT/{n}.log\"", "rsync -az --delete ./build/ \"$REMOTE:/srv/{n}/\"",
           "sed -i \"s/{n}_version=.*/{n}_version=$VERSION/\" config/{n}.env", "find . -name '*.pyc' -delete", "git tag -a \"v$VERSION\" -m \"release $VERSION\"",
           "curl -fsSL https://{d}/health | jq .status", "echo \"==> {m}\"", "mkdir -p \"$OUT/{n}\"", "cp -r ./{n} \"$WORKDIR/\""]


def gen_sh(doc, rng, meta):
    out = ["#!/usr/bin/env bash", f"# {comment_text(rng)}", "set -euo pipefail", ""]
    for _ in range(rng.randint(2, 6)):
        out.append(f'{upper([rng.choice(NOUNS)])}="${{{upper([rng.choice(NOUNS)])}:-{rng.choice([rng.choice(NOUNS), str(rng.randint(1, 100)), "./" + rng.choice(NOUNS)])}}}"')
    doc.lines(out + [""])
    doc.slot()

    def cmd():
        return rng.choice(SH_CMDS).format(img=f"ghcr.io/{rng.choice(ORGS)}/{rng.choice(PRODUCTS)}", tag="${VERSION}", n=rng.choice(NOUNS),
                                          ns=rng.choice(PRODUCTS), env=rng.choice(["dev", "staging", "prod"]), d=domain(rng), m=_msg(rng))
    while not doc.full():
        r = rng.random()
        if r < 0.5:
            fn = fn_name(rng)
            ls = [f"{fn}() {{", f"  local {rng.choice(NOUNS)}=\"$1\""]
            for _ in range(rng.randint(1, 6)):
                ls.append("  " + cmd())
            if rng.random() < 0.4:
                ls += [f"  if [[ -z \"${{{upper([rng.choice(NOUNS)])}:-}}\" ]]; then", f"    echo \"{_msg(rng)}\" >&2", "    return 1", "  fi"]
            ls.append("}")
            doc.lines([f"# {comment_text(rng)}"] + ls + [""])
        elif r < 0.7:
            doc.lines([f"for {rng.choice(NOUNS)} in {' '.join(words(rng, 3))}; do", "  " + cmd(), "done", ""])
        elif r < 0.8:
            doc.lines(['case "${1:-}" in'] + [f"  {w}) {cmd()} ;;" for w in dict.fromkeys(words(rng, 3, VERBS))] + ['  *) echo "usage: $0 {build|deploy}" >&2; exit 2 ;;', "esac", ""])
        else:
            doc.lines([cmd() for _ in range(rng.randint(1, 4))] + [""])
        doc.slot()
    doc.slot(force=True)


# --------------------------------------------------------------------------------------
# config generators
# --------------------------------------------------------------------------------------
CFG_SECTIONS = ["server", "database", "cache", "logging", "features", "queue", "metrics", "tracing", "auth", "storage",
                "email", "scheduler", "http", "grpc", "cors", "rate_limit", "search", "payments", "notifications", "workers"]
CFG_KEYS = ["host", "port", "timeout", "enabled", "level", "name", "pool_size", "max_connections", "url", "region", "bucket",
            "ttl", "interval", "retries", "format", "path", "workers", "batch_size", "endpoint", "mode", "replicas", "namespace",
            "prefix", "sample_rate", "origins", "driver", "dialect", "schema", "topic", "group_id", "from_address", "cron"]


def cfg_value(rng, key):
    if key in ("port",):
        return str(rng.choice([80, 443, 5432, 6379, 8080, 8443, 9090, 3000, 5000, 9200, 27017, 5672]))
    if key in ("timeout", "ttl", "interval"):
        return rng.choice([f"{rng.randint(1, 120)}s", f"{rng.randint(1, 60)}m", str(rng.randint(1, 3600))])
    if key in ("enabled",):
        return rng.choice(["true", "false"])
    if key in ("level",):
        return rng.choice(["debug", "info", "warn", "error"])
    if key in ("host",):
        return rng.choice(["localhost", "0.0.0.0", host_name(rng), f"{rng.choice(PRODUCTS)}.svc.cluster.local"])
    if key in ("url", "endpoint"):
        return f"https://{domain(rng)}/{rng.choice(['api', 'v1', 'v2', 'ingest', 'hooks'])}"
    if key in ("region",):
        return rng.choice(["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2", "us-west-2"])
    if key in ("sample_rate",):
        return f"0.{rng.randint(0, 99):02d}"
    if key in ("origins",):
        return f"[\"https://{domain(rng)}\", \"https://{domain(rng)}\"]"
    if key in ("from_address",):
        return f"no-reply@{rng.choice(ORGS)}.com"
    if key in ("cron",):
        return f"\"{rng.randint(0, 59)} {rng.randint(0, 23)} * * *\""
    if key in ("pool_size", "max_connections", "retries", "workers", "batch_size", "replicas"):
        return str(rng.choice([1, 2, 3, 4, 5, 8, 10, 16, 20, 32, 50, 100, 500, 1000]))
    return rng.choice([rng.choice(NOUNS), f"{rng.choice(PRODUCTS)}-{rng.choice(NOUNS)}", rng.choice(ADJS), f"/var/lib/{rng.choice(PRODUCTS)}"])


def yaml_map(doc, rng, ind, depth, host="yaml"):
    keys = list(dict.fromkeys(rng.sample(CFG_KEYS, rng.randint(2, 7))))
    for k in keys:
        if depth < 2 and rng.random() < 0.2:
            doc.lines([f"{ind}{k}:"])
            yaml_map(doc, rng, ind + "  ", depth + 1, host)
        elif rng.random() < 0.08:
            doc.lines([f"{ind}{k}s:"] + [f"{ind}  - {cfg_value(rng, k)}" for _ in range(rng.randint(1, 4))])
        else:
            doc.lines([f"{ind}{k}: {cfg_value(rng, k)}" + (f"  # {comment_text(rng)}" if rng.random() < 0.05 else "")])
        doc.slot(ind, "map", host=host, limit=1)


def gen_yaml(doc, rng, meta):
    doc.lines([f"# {comment_text(rng)}"] if rng.random() < 0.6 else [])
    doc.lines([f"app:", f"  name: {rng.choice(PRODUCTS)}-{rng.choice(SUFFIXES)}", f"  env: {rng.choice(['production', 'staging', 'development'])}", f"  version: {version(rng)}"])
    doc.slot("  ", "map")
    while not doc.full():
        sec = rng.choice(CFG_SECTIONS)
        doc.lines(["", f"{sec}:"])
        yaml_map(doc, rng, "  ", 0)
    doc.slot("  ", "map", force=True)


def gen_env(doc, rng, meta):
    doc.lines([f"# {comment_text(rng)}", f"# {rng.choice(['Local development settings', 'Copy to .env.local and adjust', 'Generated by setup.sh', 'Production overrides'])}"])
    while not doc.full():
        if rng.random() < 0.15:
            doc.lines(["", f"# --- {rng.choice(CFG_SECTIONS)} ---"])
        sec = rng.choice(CFG_SECTIONS)
        k = rng.choice(CFG_KEYS)
        v = cfg_value(rng, k).strip('"').replace('"', "")
        doc.lines([f"{upper([sec, k])}={v}"])
        doc.slot(limit=1)
    doc.slot(force=True)


def gen_ini(doc, rng, meta):
    while not doc.full():
        doc.lines(["", f"[{rng.choice(CFG_SECTIONS + ['DEFAULT', 'alembic', 'loggers', 'handler_console', 'formatter_generic'])}]"])
        for _ in range(rng.randint(2, 8)):
            k = rng.choice(CFG_KEYS)
            doc.lines([f"{k} = {cfg_value(rng, k).strip(chr(34))}"])
        doc.slot(limit=2)
    doc.slot(force=True)


def gen_properties(doc, rng, meta):
    doc.lines([f"# {comment_text(rng)}", f"spring.application.name={rng.choice(PRODUCTS)}-{rng.choice(SUFFIXES)}"])
    while not doc.full():
        pre = rng.choice(["spring.datasource", "spring.jpa", "server", "management.endpoints", "logging.level", "app." + rng.choice(NOUNS),
                          "spring.kafka", "spring.redis", "spring.mail", "feign.client"])
        k = rng.choice(CFG_KEYS)
        doc.lines([f"{pre}.{k.replace('_', '-')}={cfg_value(rng, k).strip(chr(34))}"])
        doc.slot(limit=1)
    doc.slot(force=True)


def gen_toml(doc, rng, meta):
    doc.lines([f"# {comment_text(rng)}", f'name = "{rng.choice(PRODUCTS)}"', f'version = "{version(rng)}"'])
    doc.slot()
    while not doc.full():
        doc.lines(["", f"[{rng.choice(CFG_SECTIONS)}]"])
        for _ in range(rng.randint(2, 6)):
            k = rng.choice(CFG_KEYS)
            v = cfg_value(rng, k)
            doc.lines([f"{k} = {v if v[:1] in '[0123456789' or v in ('true', 'false') else qd(v.strip(chr(34)))}"])
    doc.slot(force=True)


def gen_tf(doc, rng, meta):
    env = rng.choice(["prod", "staging", "dev"])
    doc.lines(["terraform {", f'  required_version = ">= 1.{rng.randint(3, 9)}"', "  required_providers {",
               "    aws = {", '      source  = "hashicorp/aws"', f'      version = "~> {rng.randint(4, 5)}.0"', "    }", "  }", "}", ""])
    doc.lines(['provider "aws" {', f'  region = "{cfg_value(rng, "region")}"'])
    doc.slot("  ", "block", limit=2)
    doc.lines(["}"])
    while not doc.full():
        r = rng.random()
        name = snake([rng.choice(PRODUCTS), rng.choice(NOUNS)])
        if r < 0.45:
            rt = rng.choice(["aws_s3_bucket", "aws_iam_role", "aws_security_group", "aws_db_instance", "aws_lambda_function",
                             "aws_sqs_queue", "aws_ecs_service", "google_storage_bucket", "azurerm_storage_account", "kubernetes_namespace",
                             "datadog_monitor", "aws_cloudwatch_log_group", "aws_route53_record"])
            ls = ["", f'resource "{rt}" "{name}" {{']
            for _ in range(rng.randint(2, 7)):
                k = rng.choice(CFG_KEYS)
                v = cfg_value(rng, k)
                ls.append(f"  {k} = {v if v[:1] in '[0123456789' or v in ('true', 'false') else qd(v.strip(chr(34)))}")
            if rng.random() < 0.5:
                ls += ["", "  tags = {", f'    Environment = "{env}"', f'    Team        = "{rng.choice(NOUNS)}"', '    ManagedBy   = "terraform"', "  }"]
            doc.lines(ls)
            doc.slot("  ", "block", limit=1)
            doc.lines(["}"])
        elif r < 0.7:
            doc.lines(["", f'variable "{name}" {{', f'  type        = {rng.choice(["string", "number", "bool", "list(string)", "map(string)"])}',
                       f'  description = "{comment_text(rng)}"', "}"])
        elif r < 0.85:
            doc.lines(["", f'output "{name}" {{', f"  value = {rng.choice(['aws_s3_bucket', 'aws_iam_role', 'module.' + rng.choice(NOUNS)])}.{name}.{rng.choice(['arn', 'id', 'name'])}", "}"])
        else:
            doc.lines(["", f'module "{name}" {{', f'  source = "../../modules/{rng.choice(NOUNS)}"', f'  environment = "{env}"'])
            doc.slot("  ", "block", limit=1)
            doc.lines(["}"])
    doc.lines(["", "locals {"])
    doc.slot("  ", "block", force=True)
    doc.lines([f'  name_prefix = "{rng.choice(PRODUCTS)}-{env}"', "}"])


def gen_dockerfile(doc, rng, meta):
    base = rng.choice(["python:3.12-slim", "node:20-alpine", "golang:1.22", "eclipse-temurin:21-jre", "rust:1.80", "ruby:3.3", "ubuntu:22.04", "nginx:1.27-alpine"])
    doc.lines([f"# syntax=docker/dockerfile:1", f"FROM {base} AS build", "WORKDIR /app"])
    while not doc.full():
        r = rng.random()
        if r < 0.3:
            doc.lines([f"RUN {rng.choice(['apt-get update && apt-get install -y --no-install-recommends curl ca-certificates && rm -rf /var/lib/apt/lists/*', 'pip install --no-cache-dir -r requirements.txt', 'npm ci --omit=dev', 'go build -o /out/app ./cmd/' + rng.choice(NOUNS), 'cargo build --release', 'bundle install --jobs 4', 'addgroup -S app && adduser -S app -G app'])}"])
        elif r < 0.5:
            doc.lines([f"COPY {rng.choice(['.', 'requirements.txt', 'package*.json', 'go.mod go.sum', 'Cargo.toml Cargo.lock', 'src/'])} {rng.choice(['./', '/app/'])}"])
        elif r < 0.65:
            k = rng.choice(CFG_KEYS)
            doc.lines([f"ENV {upper([rng.choice(CFG_SECTIONS), k])}={cfg_value(rng, k).strip(chr(34)).replace(' ', '')}"])
        elif r < 0.75:
            doc.lines([f"EXPOSE {cfg_value(rng, 'port')}"])
        elif r < 0.85:
            doc.lines(["", f"FROM {base} AS runtime", "WORKDIR /app", "COPY --from=build /app /app"])
        else:
            doc.lines([f"# {comment_text(rng)}"])
        doc.slot(limit=1)
    doc.slot(force=True)
    doc.lines(["USER 10001", f'CMD [{", ".join(qd(x) for x in rng.choice([["python", "-m", rng.choice(NOUNS)], ["node", "dist/index.js"], ["/out/app", "serve"], ["bundle", "exec", "puma"]]))}]'])


def gen_k8s(doc, rng, meta):
    app = f"{rng.choice(PRODUCTS)}-{rng.choice(SUFFIXES)}"
    ns = rng.choice(PRODUCTS)
    first = True
    while not doc.full() or first:
        if first and doc.pending:
            kind = rng.choice(["Secret", "Secret", "Deployment"])
        else:
            kind = rng.choice(["Deployment", "Service", "ConfigMap", "Ingress", "HorizontalPodAutoscaler"])
        first = False
        if doc.parts:
            doc.lines(["---"])
        if kind == "Deployment":
            doc.lines(["apiVersion: apps/v1", "kind: Deployment", "metadata:", f"  name: {app}", f"  namespace: {ns}", "  labels:", f"    app: {app}",
                       "spec:", f"  replicas: {rng.randint(1, 6)}", "  selector:", "    matchLabels:", f"      app: {app}", "  template:", "    metadata:",
                       "      labels:", f"        app: {app}", "    spec:", "      containers:", f"        - name: {app}",
                       f"          image: ghcr.io/{rng.choice(ORGS)}/{app}:{version(rng)}", "          ports:", f"            - containerPort: {cfg_value(rng, 'port')}",
                       "          env:"])
            for _ in range(rng.randint(1, 5)):
                k = rng.choice(CFG_KEYS)
                doc.lines([f"            - name: {upper([rng.choice(CFG_SECTIONS), k])}", f"              value: {qd(cfg_value(rng, k).strip(chr(34)))}"])
                doc.slot("            ", "env", limit=1)
            doc.lines(["          resources:", "            requests:", f"              cpu: {rng.choice(['100m', '250m', '500m'])}", f"              memory: {rng.choice(['128Mi', '256Mi', '512Mi'])}",
                       "          readinessProbe:", "            httpGet:", "              path: /healthz", f"              port: {cfg_value(rng, 'port')}"])
        elif kind in ("Secret", "ConfigMap"):
            sub = rng.choice(["stringData", "data"]) if kind == "Secret" else "data"
            doc.lines(["apiVersion: v1", f"kind: {kind}", "metadata:", f"  name: {app}-{rng.choice(['config', 'secrets', 'env', 'credentials'])}", f"  namespace: {ns}"]
                      + (["type: Opaque"] if kind == "Secret" else []) + [f"{sub}:"])
            if kind == "Secret":  # only planted values: a Secret manifest with harmless filler would be an odd FP
                doc.slot("  ", sub, force=True, limit=3)
            else:
                for _ in range(rng.randint(1, 6)):
                    k = rng.choice(CFG_KEYS)
                    doc.lines([f"  {k}: {qd(cfg_value(rng, k).strip(chr(34)))}"])
        elif kind == "Service":
            doc.lines(["apiVersion: v1", "kind: Service", "metadata:", f"  name: {app}", f"  namespace: {ns}", "spec:", "  selector:", f"    app: {app}",
                       "  ports:", f"    - port: 80", f"      targetPort: {cfg_value(rng, 'port')}"])
        elif kind == "Ingress":
            doc.lines(["apiVersion: networking.k8s.io/v1", "kind: Ingress", "metadata:", f"  name: {app}", "  annotations:",
                       "    cert-manager.io/cluster-issuer: letsencrypt", "spec:", "  rules:", f"    - host: {domain(rng)}", "      http:", "        paths:",
                       "          - path: /", "            pathType: Prefix", "            backend:", "              service:", f"                name: {app}",
                       "                port:", "                  number: 80"])
        else:
            doc.lines(["apiVersion: autoscaling/v2", "kind: HorizontalPodAutoscaler", "metadata:", f"  name: {app}", "spec:", "  scaleTargetRef:",
                       "    apiVersion: apps/v1", "    kind: Deployment", f"    name: {app}", f"  minReplicas: {rng.randint(1, 3)}", f"  maxReplicas: {rng.randint(4, 20)}"])
    if doc.pending:
        doc.lines(["---", "apiVersion: v1", "kind: Secret", "metadata:", f"  name: {app}-extra", "type: Opaque", "stringData:"])
        doc.slot("  ", "stringData", force=True)


def gen_helm(doc, rng, meta):
    app = f"{rng.choice(PRODUCTS)}"
    doc.lines(["apiVersion: apps/v1", "kind: Deployment", "metadata:", '  name: {{ include "' + app + '.fullname" . }}', "  labels:",
               '    {{- include "' + app + '.labels" . | nindent 4 }}', "spec:", "  replicas: {{ .Values.replicaCount }}", "  template:", "    spec:",
               "      containers:", "        - name: {{ .Chart.Name }}", '          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"',
               "          env:"])
    while not doc.full():
        k = rng.choice(CFG_KEYS)
        doc.lines([f"            - name: {upper([rng.choice(CFG_SECTIONS), k])}", f"              value: {{{{ .Values.{camel([rng.choice(CFG_SECTIONS), k])} | quote }}}}"])
        if doc.has_due():
            doc.lines([f"            - name: {upper([rng.choice(NOUNS), 'token'])}"])
            doc.slot("              ", "map", limit=1, host="yaml")
    if doc.pending:
        doc.lines([f"            - name: {upper([rng.choice(NOUNS), 'secret'])}"])
        doc.slot("              ", "map", force=True, host="yaml")
    doc.lines(["          resources:", "            {{- toYaml .Values.resources | nindent 12 }}"])


def gen_compose(doc, rng, meta):
    doc.lines([f"# {comment_text(rng)}", "services:"])
    first = True
    while not doc.full() or first:
        first = False
        svc = rng.choice(["api", "web", "worker", "db", "redis", "queue", "scheduler", rng.choice(PRODUCTS)])
        img = rng.choice(["postgres:16", "redis:7-alpine", "rabbitmq:3-management", f"ghcr.io/{rng.choice(ORGS)}/{rng.choice(PRODUCTS)}:latest", "nginx:1.27", "mongo:7"])
        style = rng.choice(["list", "map"])
        doc.lines([f"  {svc}:", f"    image: {img}", "    restart: unless-stopped", "    ports:", f'      - "{cfg_value(rng, "port")}:{cfg_value(rng, "port")}"', "    environment:"])
        for _ in range(rng.randint(1, 4)):
            k = rng.choice(CFG_KEYS)
            v = cfg_value(rng, k).strip('"').replace('"', "")
            doc.lines([f"      - {upper([rng.choice(CFG_SECTIONS), k])}={v}" if style == "list" else f"      {upper([rng.choice(CFG_SECTIONS), k])}: {qd(v)}"])
        doc.slot("      ", style, limit=2)
        doc.lines(["    volumes:", f"      - ./{rng.choice(NOUNS)}:/var/lib/{rng.choice(NOUNS)}", "    depends_on:", f"      - {rng.choice(['db', 'redis', 'queue'])}"])
    if doc.pending:
        doc.lines(["  migrate:", f"    image: ghcr.io/{rng.choice(ORGS)}/{rng.choice(PRODUCTS)}-migrate:latest", "    environment:"])
        doc.slot("      ", "map", force=True)


def gen_ci(doc, rng, meta):
    if meta.get("gitlab"):
        doc.lines(["stages:", "  - test", "  - build", "  - deploy", "", "variables:", f'  DOCKER_DRIVER: overlay2', f'  APP_NAME: "{rng.choice(PRODUCTS)}"'])
        doc.slot("  ", "map", limit=3)
        while not doc.full():
            job = f"{rng.choice(['test', 'lint', 'build', 'deploy', 'release'])}:{rng.choice(PRODUCTS)}"
            doc.lines(["", f"{job}:", f"  stage: {rng.choice(['test', 'build', 'deploy'])}", f"  image: {rng.choice(['python:3.12', 'node:20', 'golang:1.22', 'docker:24'])}",
                       "  variables:", f"    {upper([rng.choice(CFG_SECTIONS), 'mode'])}: {rng.choice(ADJS)}"])
            doc.slot("    ", "map", limit=1)
            doc.lines(["  script:"] + [f"    - {rng.choice(SH_CMDS).format(img='$CI_REGISTRY_IMAGE', tag='$CI_COMMIT_SHORT_SHA', n=rng.choice(NOUNS), ns=rng.choice(PRODUCTS), env='prod', d=domain(rng), m=_msg(rng))}" for _ in range(rng.randint(1, 5))])
            if rng.random() < 0.5:
                doc.lines(["  only:", "    - main"])
        doc.lines(["", "variables_extra: &extra"])
        doc.slot("  ", "map", force=True)
        return
    doc.lines([f"name: {rng.choice(['CI', 'Build', 'Deploy', 'Release', 'Tests'])}", "", "on:", "  push:", "    branches: [main]", "  pull_request:", "", "env:",
               f"  APP_NAME: {rng.choice(PRODUCTS)}"])
    doc.slot("  ", "map", limit=3)
    doc.lines(["", "jobs:"])
    while not doc.full():
        doc.lines([f"  {rng.choice(['build', 'test', 'lint', 'deploy', 'release', 'publish'])}-{rng.choice(PRODUCTS)}:", f"    runs-on: {rng.choice(['ubuntu-latest', 'ubuntu-22.04'])}",
                   "    env:", f"      {upper([rng.choice(CFG_SECTIONS), 'mode'])}: {rng.choice(ADJS)}"])
        doc.slot("      ", "map", limit=2)
        doc.lines(["    steps:", "      - uses: actions/checkout@v4", f"      - uses: {rng.choice(['actions/setup-python@v5', 'actions/setup-node@v4', 'actions/setup-go@v5', 'dtolnay/rust-toolchain@stable'])}"])
        for _ in range(rng.randint(1, 5)):
            doc.lines([f"      - name: {rng.choice(VERBS).capitalize()} {rng.choice(NOUNS)}",
                       f"        run: {rng.choice(SH_CMDS).format(img='ghcr.io/${{ github.repository }}', tag='${{ github.sha }}', n=rng.choice(NOUNS), ns=rng.choice(PRODUCTS), env='prod', d=domain(rng), m=_msg(rng))}"])
    doc.lines(["  notify:", "    runs-on: ubuntu-latest", "    env:"])
    doc.slot("      ", "map", force=True)
    doc.lines(["    steps:", "      - run: ./scripts/notify.sh"])


def json_value(rng, depth):
    r = rng.random()
    if depth < 3 and r < 0.15:
        return None  # nested object marker
    if r < 0.3:
        return rng.randint(0, 100000)
    if r < 0.4:
        return rng.choice([True, False])
    if r < 0.5:
        return [rng.choice(NOUNS) for _ in range(rng.randint(0, 4))]
    if r < 0.55:
        return uuid4(rng) if rng.random() < 0.5 else ts(rng)
    k = rng.choice(CFG_KEYS)
    return cfg_value(rng, k).strip('"')


def json_obj(doc, rng, ind, depth, nkeys, host="json", closing=""):
    doc.lines(["{"] if not ind else [])
    keys = list(dict.fromkeys(rng.choice(NOUNS + CFG_KEYS) for _ in range(nkeys)))
    for i, k in enumerate(keys):
        last = i == len(keys) - 1
        if not last:
            doc.slot(ind + "  ", "field", limit=1, host=host)
        v = json_value(rng, depth)
        key = camel(k.split("_")) if rng.random() < 0.5 else k
        if v is None:
            doc.lines([f'{ind}  "{key}": {{'])
            json_obj(doc, rng, ind + "  ", depth + 1, rng.randint(1, 6), host)
            doc.lines([f"{ind}  }}" + ("" if last else ",")])
        else:
            doc.lines([f'{ind}  "{key}": {json.dumps(v, ensure_ascii=False)}' + ("" if last else ",")])


def gen_json(doc, rng, meta):
    doc.lines(["{"])
    while True:
        doc.slot("  ", "field", limit=1)
        k = rng.choice(NOUNS + CFG_KEYS)
        doc.lines([f'  "{k}_{rng.randint(1, 999)}": {{'])
        json_obj(doc, rng, "  ", 1, rng.randint(2, 9))
        if doc.full():
            break
        doc.lines(["  },"])
    doc.lines(["  },"])
    doc.slot("  ", "field", force=True)
    doc.lines([f'  "version": "{version(rng)}"', "}"])


def gen_fixture(doc, rng, meta):
    """tests/fixtures/*.json: an array of records."""
    doc.lines(["{", f'  "description": "{comment_text(rng)}",'])
    doc.slot("  ", "field")
    doc.lines(['  "records": ['])
    first = True
    while not doc.full():
        rec = {"id": rng.randint(1, 10 ** 6), "uuid": uuid4(rng), "name": f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}",
               "email": email(rng), "status": rng.choice(["active", "pending", "disabled"]), "created_at": ts(rng),
               rng.choice(NOUNS): rng.choice(NOUNS), "amount": round(rng.random() * 1000, 2), "tags": words(rng, rng.randint(0, 3))}
        doc.w(("" if first else ",\n") + "    " + json.dumps(rec, ensure_ascii=False))
        first = False
    doc.w("\n")
    doc.lines(["  ],"])
    doc.slot("  ", "field", force=True)
    doc.lines([f'  "generated": "{ts(rng)}"', "}"])


def gen_xml(doc, rng, meta):
    if rng.random() < 0.5:
        doc.lines(['<?xml version="1.0" encoding="utf-8"?>', "<configuration>", "  <appSettings>"])
        while not doc.full():
            k = rng.choice(CFG_KEYS)
            doc.lines([f'    <add key="{pascal([rng.choice(CFG_SECTIONS), k])}" value="{cfg_value(rng, k).strip(chr(34))}" />'])
            doc.slot("    ", limit=1)
        doc.slot("    ", force=True)
        doc.lines(["  </appSettings>", "</configuration>"])
        return
    g = f"com.{rng.choice(ORGS).replace('-', '')}"
    doc.lines(['<?xml version="1.0" encoding="UTF-8"?>', '<project xmlns="http://maven.apache.org/POM/4.0.0">', "  <modelVersion>4.0.0</modelVersion>",
               f"  <groupId>{g}</groupId>", f"  <artifactId>{rng.choice(PRODUCTS)}-{rng.choice(SUFFIXES)}</artifactId>", f"  <version>{version(rng)}</version>", "  <properties>",
               "    <java.version>21</java.version>"])
    doc.slot("    ", limit=2)
    doc.lines(["  </properties>", "  <dependencies>"])
    while not doc.full():
        doc.lines(["    <dependency>", f"      <groupId>{rng.choice(['org.springframework.boot', 'com.fasterxml.jackson.core', 'org.slf4j', 'io.micrometer', g])}</groupId>",
                   f"      <artifactId>{kebab(words(rng, 2))}</artifactId>", f"      <version>{version(rng)}</version>", "    </dependency>"])
    doc.lines(["  </dependencies>", "  <profiles><profile><id>deploy</id><properties>"])
    doc.slot("    ", force=True)
    doc.lines(["  </properties></profile></profiles>", "</project>"])


def gen_md(doc, rng, meta):
    title = meta.get("title") or f"{rng.choice(PRODUCTS).title()} {rng.choice(SUFFIXES).title()}"
    doc.lines([f"# {title}", "", f"[![CI](https://github.com/{rng.choice(ORGS)}/{rng.choice(PRODUCTS)}/actions/workflows/ci.yml/badge.svg)](https://github.com/{rng.choice(ORGS)}/{rng.choice(PRODUCTS)}/actions)", "",
               " ".join(sentence(rng) for _ in range(rng.randint(2, 5))), ""])
    secs = ["Installation", "Usage", "Configuration", "Development", "Deployment", "API", "Troubleshooting", "FAQ", "Architecture",
            "Contributing", "Changelog", "Testing", "Environment variables", "Authentication", "Release process"]
    while not doc.full():
        doc.lines([f"## {rng.choice(secs)}", ""])
        for _ in range(rng.randint(1, 4)):
            r = rng.random()
            if r < 0.45:
                doc.lines([" ".join(sentence(rng) for _ in range(rng.randint(2, 6))), ""])
            elif r < 0.65:
                doc.lines([f"```{rng.choice(['bash', 'sh', 'python', 'yaml', 'json', 'console'])}"] + [rng.choice(SH_CMDS).format(img=f"ghcr.io/{rng.choice(ORGS)}/{rng.choice(PRODUCTS)}", tag="latest", n=rng.choice(NOUNS), ns=rng.choice(PRODUCTS), env="dev", d=domain(rng), m=_msg(rng)) for _ in range(rng.randint(1, 5))] + ["```", ""])
            elif r < 0.8:
                doc.lines([f"- {sentence(rng, 3, 9)}" for _ in range(rng.randint(2, 6))] + [""])
            else:
                doc.lines(["| Name | Default | Description |", "|------|---------|-------------|"] +
                          [f"| `{upper([rng.choice(CFG_SECTIONS), k])}` | `{cfg_value(rng, k).strip(chr(34))}` | {sentence(rng, 3, 8)} |" for k in rng.sample(CFG_KEYS, rng.randint(2, 6))] + [""])
            if doc.has_due():
                doc.lines([rng.choice(["For example:", "Set the credentials before running:", "Then call the API:", "Example:", "We use the following values in staging:"]), ""])
                doc.slot(ctx=rng.choice(["env", "curl"]), limit=1)
                doc.lines([""])
    doc.slot(ctx="env", force=True)


def gen_html(doc, rng, meta):
    doc.lines(["<!DOCTYPE html>", '<html lang="en">', "<head>", '  <meta charset="utf-8">', f"  <title>{rng.choice(PRODUCTS).title()} - {rng.choice(NOUNS).title()}</title>",
               f'  <link rel="stylesheet" href="/static/css/main.{sha(8, rng)}.css">'])
    doc.slot("  ", limit=2)
    doc.lines(["</head>", "<body>", f'  <div id="root" class="{rng.choice(NOUNS)}-container">'])
    while not doc.full():
        tag = rng.choice(["section", "div", "nav", "footer", "header", "ul"])
        doc.lines([f'    <{tag} class="{kebab(words(rng, 2))} {rng.choice(["flex", "grid", "hidden", "p-4", "mt-2", "text-sm"])}">'] +
                  [f'      <{rng.choice(["p", "span", "a", "li", "h2"])}>{sentence(rng, 2, 8)}</{"p"}>' for _ in range(rng.randint(1, 5))] + [f"    </{tag}>"])
        doc.slot("    ", limit=1)
    doc.slot("    ", force=True)
    doc.lines(["  </div>", f'  <script src="/static/js/main.{sha(8, rng)}.js"></script>', "</body>", "</html>"])


def gen_css(doc, rng, meta):
    while not doc.full():
        sel = rng.choice([f".{kebab(words(rng, 2))}", f".{kebab(words(rng, 1))}__{rng.choice(NOUNS)}--{rng.choice(ADJS)}", f"#{rng.choice(NOUNS)}", f".{rng.choice(NOUNS)} > .{rng.choice(NOUNS)}"])
        props = [f"  {p}: {v};" for p, v in rng.sample([("display", rng.choice(["flex", "block", "grid", "none"])), ("margin", f"{rng.randint(0, 32)}px"),
                                                         ("padding", f"{rng.randint(0, 24)}px {rng.randint(0, 24)}px"), ("color", "#" + sha(6, rng)),
                                                         ("background-color", "#" + sha(6, rng)), ("font-size", f"{rng.randint(10, 32)}px"),
                                                         ("border-radius", f"{rng.randint(0, 12)}px"), ("z-index", str(rng.randint(0, 100)))], rng.randint(2, 6))]
        doc.lines([f"{sel} {{"] + props + ["}", ""])
        if rng.random() < 0.03:
            doc.lines([f"@media (max-width: {rng.choice([480, 768, 1024])}px) {{", f"  {sel} {{ display: none; }}", "}", ""])
        doc.slot(limit=1)
    doc.slot(force=True)


def gen_http(doc, rng, meta):
    doc.lines([f"# {comment_text(rng)}", f"@host = https://api.{domain(rng)}", ""])
    while not doc.full():
        doc.lines([f"### {rng.choice(VERBS)} {rng.choice(NOUNS)}", f"{rng.choice(['GET', 'POST', 'PUT', 'DELETE'])} {{{{host}}}}/v1/{rng.choice(NOUNS)}s/{rng.randint(1, 999)}",
                   "Content-Type: application/json", "", json.dumps({rng.choice(NOUNS): rng.choice(NOUNS), "limit": rng.randint(1, 100)}), ""])
        doc.slot(limit=1)
    doc.slot(force=True)


def gen_ipynb(doc, rng, meta):
    doc.lines(["{", ' "cells": ['])
    first = True

    def cell_start(kind):
        nonlocal first
        doc.lines([("  {" if first else "  {")])
        first = False
        doc.lines([f'   "cell_type": "{kind}",', '   "metadata": {},'])
    while not doc.full() or first:
        if rng.random() < 0.35:
            cell_start("markdown")
            doc.lines(['   "source": [', f'    {jesc("## " + sentence(rng, 2, 6) + chr(10))},', f'    {jesc(sentence(rng))}', "   ]", "  },"])
            continue
        cell_start("code")
        doc.lines([f'   "execution_count": {rng.randint(1, 80)},', '   "outputs": ['])
        if rng.random() < 0.3:
            doc.lines(["    {", '     "data": {', f'      "image/png": "{fake_png_b64(rng, rng.randint(3000, 30000))}",', '      "text/plain": ["<Figure size 640x480 with 1 Axes>"]',
                       "     },", '     "metadata": {},', '     "output_type": "display_data"', "    }"])
        else:
            doc.lines(["    {", '     "name": "stdout",', '     "output_type": "stream",', f'     "text": [{jesc(log_msg(rng) + chr(10))}]', "    }"])
        doc.lines(["   ],", '   "source": ['])
        src = py_block(rng, "", ["df", "model", "data"], 1, rng.randint(2, 8))
        if doc.has_due():
            p = doc.pending.pop(0)
            lines, a, b, enc = render(rng, "py", p, "", "module")
            pre = [f"    {jesc(line + chr(10))}," for line in ["import os"]]
            doc.lines(pre)
            doc.records.append(p.record(doc.path, doc.nl + 1 + a, doc.nl + 1 + b, "ipynb", enc))
            doc.lines([f"    {jesc(line + chr(10))}," for line in lines])
        doc.lines([f"    {jesc(line + chr(10))}," for line in src[:-1]] + [f"    {jesc(src[-1])}", "   ]", "  },"])
    while doc.pending:
        cell_start("code")
        p = doc.pending.pop(0)
        lines, a, b, enc = render(rng, "py", p, "", "module")
        doc.lines(['   "execution_count": null,', '   "outputs": [],', '   "source": ['])
        doc.records.append(p.record(doc.path, doc.nl + 1 + a, doc.nl + 1 + b, "ipynb", enc))
        doc.lines([f"    {jesc(line + chr(10))}," for line in lines] + ['    "client = Client()"', "   ]", "  },"])
    doc.lines(["  {", '   "cell_type": "markdown",', '   "metadata": {},', '   "source": ["End."]', "  }", " ],", ' "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},',
               ' "nbformat": 4,', ' "nbformat_minor": 5', "}"])


# --------------------------------------------------------------------------------------
# bulk / data generators
# --------------------------------------------------------------------------------------
UAS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
       "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
       "curl/8.5.0", "python-requests/2.31.0", "Go-http-client/1.1", "kube-probe/1.29", "okhttp/4.12.0",
       "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"]


def gen_log(doc, rng, meta):
    style = meta.get("style") or rng.choice(["app", "access", "json", "app"])
    t = 1700000000 + rng.randint(0, 30 * 86400)
    loggers = [f"{rng.choice(PRODUCTS)}.{rng.choice(NOUNS)}.{rng.choice(NOUNS)}" for _ in range(12)]
    paths = [f"/api/v{rng.randint(1, 3)}/{rng.choice(NOUNS)}s" + rng.choice(["", "/{id}", "/{id}/" + rng.choice(NOUNS) + "s", "/search"]) for _ in range(30)]
    ips = [f"10.{rng.randint(0, 40)}.{rng.randint(0, 255)}.{rng.randint(2, 250)}" for _ in range(40)]
    msgs = [log_msg(rng) for _ in range(60)]
    last_sec, stamp = -1, ""
    while not doc.full():
        out = []
        for _ in range(200):
            t += rng.random() * 0.8
            sec = int(t)
            if sec != last_sec:
                last_sec = sec
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) if style != "access" else time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(sec))
            ms = int((t - sec) * 1000)
            if style == "access":
                p = rng.choice(paths).replace("{id}", str(rng.randint(1, 99999)))
                out.append(f'{rng.choice(ips)} - - [{stamp}] "{rng.choice(["GET", "GET", "GET", "POST", "PUT", "DELETE"])} {p}{rng.choice(["", "?page=" + str(rng.randint(1, 20)), "?q=" + rng.choice(NOUNS)])} HTTP/1.1" '
                           f'{rng.choice([200, 200, 200, 201, 204, 301, 304, 400, 401, 404, 500, 502])} {rng.randint(0, 90000)} "-" "{rng.choice(UAS)}" rt={rng.random():.3f}')
            elif style == "json":
                out.append(json.dumps({"ts": f"{stamp}.{ms:03d}Z", "level": rng.choice(["info", "info", "debug", "warn", "error"]), "logger": rng.choice(loggers),
                                       "msg": rng.choice(msgs), "request_id": uuid4(rng), "duration_ms": rng.randint(0, 5000),
                                       "trace_id": rstr(rng, HEX, 32), "span_id": rstr(rng, HEX, 16)}, separators=(",", ":")))
            else:
                lvl = rng.choice(["INFO ", "INFO ", "DEBUG", "WARN ", "ERROR"])
                line = f"{stamp}.{ms:03d}Z {lvl} [{rng.choice(['main', 'worker-' + str(rng.randint(1, 16)), 'http-nio-8080-exec-' + str(rng.randint(1, 40)), 'scheduler-1'])}] {rng.choice(loggers)} - {rng.choice(msgs)}"
                r = rng.random()
                if r < 0.3:
                    line += f" id={rng.randint(1, 10 ** 6)} duration_ms={rng.randint(0, 9000)}"
                elif r < 0.45:
                    line += f" request_id={uuid4(rng)}"
                elif r < 0.47:
                    line += f" deployed commit={rstr(rng, HEX, 40)}"
                out.append(line)
                if lvl == "ERROR" and rng.random() < 0.3:
                    exc = pascal([rng.choice(NOUNS), "exception"])
                    out.append(f"com.{rng.choice(ORGS).replace('-', '')}.{rng.choice(NOUNS)}.{exc}: {rng.choice(msgs)}")
                    for _ in range(rng.randint(3, 12)):
                        out.append(f"\tat com.{rng.choice(ORGS).replace('-', '')}.{rng.choice(NOUNS)}.{pascal([rng.choice(NOUNS)])}.{fn_name(rng, 'camel')}({pascal([rng.choice(NOUNS)])}.java:{rng.randint(10, 900)})")
        doc.lines(out)
        doc.slot(limit=2)
    doc.slot(force=True)


CSV_SCHEMAS = [
    ["id", "created_at", "customer_id", "email", "country", "plan", "amount", "currency", "status"],
    ["order_id", "sku", "quantity", "unit_price", "warehouse", "shipped_at", "carrier", "tracking_number"],
    ["event_id", "timestamp", "user_id", "session_id", "event", "page", "referrer", "duration_ms"],
    ["date", "region", "product", "units", "revenue", "cost", "margin"],
    ["employee_id", "first_name", "last_name", "department", "city", "start_date", "level"],
]


def gen_csv(doc, rng, meta):
    schema = rng.choice(CSV_SCHEMAS)
    doc.lines([",".join(schema)])
    i = rng.randint(1, 10000)
    while not doc.full():
        out = []
        for _ in range(500):
            i += 1
            row = []
            for c in schema:
                if c.endswith("id") and c != "session_id":
                    row.append(str(i if c in ("id", "order_id", "event_id", "employee_id") else rng.randint(1, 500000)))
                elif c == "session_id":
                    row.append(uuid4(rng))
                elif c in ("created_at", "timestamp", "shipped_at"):
                    row.append(ts(rng))
                elif c in ("date", "start_date"):
                    row.append(f"20{rng.randint(18, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
                elif c == "email":
                    row.append(email(rng))
                elif c == "country":
                    row.append(rng.choice(COUNTRIES))
                elif c in ("amount", "unit_price", "revenue", "cost", "margin"):
                    row.append(f"{rng.random() * 1000:.2f}")
                elif c in ("quantity", "units", "duration_ms", "level"):
                    row.append(str(rng.randint(1, 5000)))
                elif c == "tracking_number":
                    row.append("1Z" + rstr(rng, UPPER + DIGITS, 16))
                elif c == "city":
                    row.append(rng.choice(CITIES))
                elif c == "first_name":
                    row.append(rng.choice(FIRST).title())
                elif c == "last_name":
                    row.append(rng.choice(LAST).title())
                elif c == "page":
                    row.append(f"/{rng.choice(NOUNS)}/{rng.randint(1, 999)}")
                elif c == "referrer":
                    row.append(rng.choice(["", "https://www.google.com/", f"https://{domain(rng)}/"]))
                else:
                    row.append(rng.choice(NOUNS + ADJS))
            out.append(",".join(row))
        doc.lines(out)


def minjs_pool(rng):
    def idn():
        return rng.choice(LOWER) + rng.choice(["", rng.choice(ALNUM), rng.choice(LOWER) + rng.choice(DIGITS)])
    pool = []
    for _ in range(350):
        a, b, c = idn(), idn(), idn()
        p, q = camel([rng.choice(NOUNS)]), camel([rng.choice(NOUNS), rng.choice(NOUNS)])
        pool.append(rng.choice([
            f"function {a}({b},{c}){{return {b}.{p}({c})}}",
            f"var {a}={b}({rng.randint(1, 999)}),{c}={b}({rng.randint(1, 999)});",
            f"{a}.prototype.{p}=function({b}){{this.{q}={b};return this}};",
            f'Object.defineProperty({a},"__esModule",{{value:!0}});',
            f"{a}.exports={b}({rng.randint(1, 9999)});",
            f"case {rng.randint(0, 99)}:return {a}.{p}({b});",
            f'if(!{a}||"object"!=typeof {a})throw new TypeError("{_msg(rng)}");',
            f'const {a}="{rng.choice(NOUNS)}-{rng.choice(NOUNS)}",{b}={rng.randint(0, 65535)};',
            f'{a}({b},"{kebab(words(rng, 2))}",function(){{return {c}}});',
            f'"{".".join(words(rng, 3))}":"{sentence(rng, 2, 5)}",',
            f'className:"{rng.choice(NOUNS)}-{rng.choice(NOUNS)} {rng.choice(["flex", "grid", "p-2", "mt-4", "hidden"])}",',
            f'fetch("/api/v1/{rng.choice(NOUNS)}s",{{method:"{rng.choice(["GET", "POST"])}",headers:{{"Content-Type":"application/json"}}}}).then(function({a}){{return {a}.json()}});',
            f"for(var {a}=0;{a}<{b}.length;{a}++){c}[{a}]={b}[{a}]^{rng.randint(0, 255)};",
            f"{a}=void 0!=={a}?{a}:{{}};",
            f"return {a}&&{a}.__esModule?{a}:{{default:{a}}}}}",
            f"{a}.{p}=function(){{return Promise.resolve({b}.{q})}},",
            f"{a}.useEffect(function(){{{b}({c}.{p})}},[{c}]);",
            f"{a}.createElement(\"{rng.choice(['div', 'span', 'button', 'svg', 'path'])}\",{{key:{b},onClick:{c}}});",
            f"while({a}--){b}.push({c}[{a}]);",
            f"{a}=Math.max({a},{b}.{p}||0),",
        ]))
    return pool


def gen_minjs(doc, rng, meta):
    pool = minjs_pool(rng)
    linelen = rng.choice([0, 0, 500, 2000, 40000, 250000])
    doc.w(f"/*! {meta.get('lib', rng.choice(PRODUCTS))} v{version(rng)} | (c) {rng.randint(2015, 2024)} {rng.choice(ORGS)} | MIT License */\n")
    doc.w('!function(e,t){"object"==typeof exports&&"undefined"!=typeof module?module.exports=t():"function"==typeof define&&define.amd?define(t):(e=e||self).' + camel([rng.choice(PRODUCTS)]) + "=t()}(this,function(){\"use strict\";")
    cur = 0
    while not doc.full():
        chunk = "".join(rng.choices(pool, k=60))
        doc.w(chunk)
        cur += len(chunk)
        if linelen and cur >= linelen:
            doc.w("\n")
            cur = 0
        while doc.has_due():
            doc.emit_inline(doc.pending.pop(0))
    while doc.pending:
        doc.emit_inline(doc.pending.pop(0))
    doc.w("});\n")
    if rng.random() < 0.7:
        doc.w(f"//# sourceMappingURL={meta.get('mapname', 'index.js.map')}\n")


def gen_sourcemap(doc, rng, meta):
    segs = ["".join(rng.choices(B64, k=rng.choice([4, 4, 5, 6, 8]))) for _ in range(3000)]
    names = list(dict.fromkeys(camel([rng.choice(NOUNS), rng.choice(NOUNS)]) for _ in range(300)))
    srcs = [f"webpack://{rng.choice(PRODUCTS)}/./src/{rng.choice(NOUNS)}/{rng.choice(NOUNS)}.{rng.choice(['ts', 'tsx', 'js'])}" for _ in range(60)]
    doc.w('{"version":3,"file":"' + meta.get("file", "index.js") + '","sources":' + json.dumps(srcs) + ',"names":' + json.dumps(names) + ',"mappings":"')
    while not doc.full():
        parts = rng.choices(segs, k=400)
        doc.w(",".join(parts) + ";" * rng.randint(1, 3))
    doc.w('"}\n')


def npm_name(rng):
    r = rng.random()
    if r < 0.2:
        return f"@{rng.choice(ORGS + ['babel', 'types', 'jest', 'rollup', 'vitejs'])}/{rng.choice(NOUNS)}-{rng.choice(NOUNS)}"
    if r < 0.6:
        return f"{rng.choice(NOUNS)}-{rng.choice(NOUNS + ['js', 'utils', 'parser', 'loader', 'plugin'])}"
    return rng.choice(NOUNS + PRODUCTS) + rng.choice(["", "js", "ify", "er", "-x"])


def gen_lock_npm(doc, rng, meta):
    name = meta.get("name", rng.choice(PRODUCTS))
    doc.lines(["{", f'  "name": "{name}",', f'  "version": "{version(rng)}",', '  "lockfileVersion": 3,', '  "requires": true,', '  "packages": {',
               '    "": {', f'      "name": "{name}",', f'      "version": "{version(rng)}",', '      "dependencies": {'] +
              [f'        "{npm_name(rng)}": "^{version(rng)}",' for _ in range(rng.randint(3, 15))] + [f'        "{npm_name(rng)}": "^{version(rng)}"', "      }", "    },"])
    seen = set()
    while not doc.full():
        n = npm_name(rng)
        if n in seen:
            continue
        seen.add(n)
        v = version(rng)
        base = n.split("/")[-1]
        ls = [f'    "node_modules/{n}": {{', f'      "version": "{v}",', f'      "resolved": "https://registry.npmjs.org/{n}/-/{base}-{v}.tgz",',
              f'      "integrity": "sha512-{base64.b64encode(rng.getrandbits(512).to_bytes(64, "big")).decode()}",']
        if rng.random() < 0.4:
            ls.append('      "dev": true,')
        if rng.random() < 0.5:
            ls.append('      "dependencies": {')
            deps = [f'        "{npm_name(rng)}": "^{version(rng)}"' for _ in range(rng.randint(1, 5))]
            ls.append(",\n".join(deps))
            ls.append("      },")
        ls.append(f'      "license": "{rng.choice(["MIT", "ISC", "Apache-2.0", "BSD-3-Clause"])}"')
        ls.append("    },")
        doc.lines(ls)
    doc.lines([f'    "node_modules/zz-end-{rng.randint(1, 999)}": {{', f'      "version": "{version(rng)}"', "    }", "  }", "}"])


def gen_lock_yarn(doc, rng, meta):
    doc.lines(["# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.", "# yarn lockfile v1", ""])
    while not doc.full():
        n, v = npm_name(rng), version(rng)
        base = n.split("/")[-1]
        ls = [f'"{n}@^{v}":', f'  version "{v}"', f'  resolved "https://registry.yarnpkg.com/{n}/-/{base}-{v}.tgz#{rstr(rng, HEX, 40)}"',
              f"  integrity sha512-{base64.b64encode(rng.getrandbits(512).to_bytes(64, 'big')).decode()}"]
        if rng.random() < 0.5:
            ls.append("  dependencies:")
            ls += [f'    {npm_name(rng)} "^{version(rng)}"' for _ in range(rng.randint(1, 4))]
        doc.lines(ls + [""])


def gen_lock_cargo(doc, rng, meta):
    doc.lines(["# This file is automatically @generated by Cargo.", "# It is not intended for manual editing.", "version = 4", ""])
    while not doc.full():
        ls = ["[[package]]", f'name = "{rng.choice(NOUNS)}{rng.choice(["", "-rs", "_core", "-sys", "-derive", "-macros"])}"', f'version = "{version(rng)}"',
              'source = "registry+https://github.com/rust-lang/crates.io-index"', f'checksum = "{rstr(rng, HEX, 64)}"']
        if rng.random() < 0.6:
            ls.append("dependencies = [")
            ls += [f' "{rng.choice(NOUNS)}",' for _ in range(rng.randint(1, 6))]
            ls.append("]")
        doc.lines(ls + [""])


def gen_gosum(doc, rng, meta):
    while not doc.full():
        m = rng.choice([f"github.com/{rng.choice(ORGS)}/{rng.choice(NOUNS)}", f"golang.org/x/{rng.choice(['net', 'sys', 'text', 'crypto', 'sync', 'mod', 'tools'])}",
                        f"google.golang.org/{rng.choice(['grpc', 'protobuf', 'api', 'genproto'])}", f"go.uber.org/{rng.choice(['zap', 'atomic', 'multierr'])}"])
        v = f"v{version(rng)}"
        doc.lines([f"{m} {v} h1:{base64.b64encode(rng.getrandbits(256).to_bytes(32, 'big')).decode()}",
                   f"{m} {v}/go.mod h1:{base64.b64encode(rng.getrandbits(256).to_bytes(32, 'big')).decode()}"])


def gen_lock_poetry(doc, rng, meta):
    doc.lines(["# This file is automatically @generated by Poetry 1.8.3 and should not be changed by hand.", ""])
    while not doc.full():
        n, v = rng.choice(PY_3P + NOUNS), version(rng)
        ls = ["[[package]]", f'name = "{n}"', f'version = "{v}"', f'description = "{sentence(rng, 3, 8)}"', "optional = false", 'python-versions = ">=3.8"', "files = ["]
        ls += [f'    {{file = "{n}-{v}-{tag}", hash = "sha256:{rstr(rng, HEX, 64)}"}},' for tag in rng.sample(["py3-none-any.whl", "tar.gz", "cp311-cp311-manylinux_2_17_x86_64.whl", "cp312-cp312-macosx_11_0_arm64.whl"], rng.randint(1, 3))]
        ls += ["]", ""]
        doc.lines(ls)


def gen_gemlock(doc, rng, meta):
    doc.lines(["GEM", "  remote: https://rubygems.org/", "  specs:"])
    while not doc.full():
        doc.lines([f"    {rng.choice(NOUNS)}{rng.choice(['', '-rails', '_client', '-ruby'])} ({version(rng)})"] + [f"      {rng.choice(NOUNS)} (>= {version(rng)})" for _ in range(rng.randint(0, 3))])
    doc.lines(["", "PLATFORMS", "  ruby", "  x86_64-linux", "", "BUNDLED WITH", f"   2.{rng.randint(3, 5)}.{rng.randint(0, 20)}"])


def gen_i18n(doc, rng, meta):
    lang = meta.get("lang", "en")
    vals = LANG_VALUES.get(lang, LANG_VALUES["en"])
    doc.lines(["{"])
    first = True
    while not doc.full():
        sec = rng.choice(NOUNS)
        body = ",\n".join(f'    "{snake([rng.choice(NOUNS), rng.choice(["label", "title", "placeholder", "error", "hint", "button"])])}": {jesc(rng.choice(vals))}'
                          for _ in range(rng.randint(3, 12)))
        doc.w(("" if first else ",\n") + f'  "{sec}_{rng.randint(1, 999)}": {{\n{body}\n  }}')
        first = False
    doc.w("\n}\n")


def gen_sql(doc, rng, meta):
    doc.lines([f"-- {comment_text(rng)}", "BEGIN;"])
    while not doc.full():
        t = f"{rng.choice(NOUNS)}s"
        if rng.random() < 0.3:
            cols = list(dict.fromkeys(rng.choice(NOUNS) for _ in range(rng.randint(2, 8))))
            doc.lines(["", f"CREATE TABLE IF NOT EXISTS {t} (", "    id BIGSERIAL PRIMARY KEY,"] +
                      [f"    {c} {rng.choice(['TEXT', 'INTEGER', 'BOOLEAN NOT NULL DEFAULT false', 'TIMESTAMPTZ', 'NUMERIC(12,2)', 'UUID', 'JSONB'])}," for c in cols] +
                      ["    created_at TIMESTAMPTZ NOT NULL DEFAULT now()", ");", f"CREATE INDEX {t}_{cols[0]}_idx ON {t} ({cols[0]});"])
        else:
            rows = [f"({rng.randint(1, 10 ** 6)}, '{uuid4(rng)}', '{email(rng)}', '{rng.choice(ADJS)}', '{ts(rng)}')" for _ in range(rng.randint(5, 40))]
            doc.lines([f"INSERT INTO {t} (id, external_id, email, status, created_at) VALUES"] + [r + "," for r in rows[:-1]] + [rows[-1] + ";"])
    doc.lines(["COMMIT;"])


def gen_text(doc, rng, meta):
    sub = meta.get("sub", "txt")
    if sub == "requirements":
        while not doc.full():
            line = f"{rng.choice(PY_3P + NOUNS)}=={version(rng)}"
            if rng.random() < 0.2:
                line += f" \\\n    --hash=sha256:{rstr(rng, HEX, 64)}"
            doc.lines([line])
    elif sub == "gomod":
        doc.lines([f"module github.com/{rng.choice(ORGS)}/{rng.choice(PRODUCTS)}", "", "go 1.22", "", "require ("])
        while not doc.full():
            doc.lines([f"\tgithub.com/{rng.choice(ORGS)}/{rng.choice(NOUNS)} v{version(rng)}"])
        doc.lines([")"])
    elif sub == "makefile":
        doc.lines([".PHONY: all build test lint clean", "", f"APP := {rng.choice(PRODUCTS)}", "VERSION ?= $(shell git describe --tags --always)", ""])
        while not doc.full():
            doc.lines([f"{rng.choice(VERBS)}:", f"\t{rng.choice(SH_CMDS).format(img='$(APP)', tag='$(VERSION)', n=rng.choice(NOUNS), ns=rng.choice(PRODUCTS), env='dev', d=domain(rng), m=_msg(rng))}", ""])
    elif sub == "gitignore":
        doc.lines(["# build output", "/target/", "__pycache__/", "*.pyc", ".venv/", "node_modules/", "coverage/", ".idea/", ".vscode/", "*.swp", ".DS_Store", ".terraform/", "*.tfstate*", "tmp/"])
    elif sub == "license":
        doc.lines(["MIT License", "", f"Copyright (c) {rng.randint(2015, 2024)} {rng.choice(ORGS).title()} Inc.", "",
                   "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files",
                   '(the "Software"), to deal in the Software without restriction, including without limitation the rights to use, copy, modify,',
                   "merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is",
                   "furnished to do so, subject to the following conditions:", "",
                   "The above copyright notice and this permission notice shall be included in all copies or substantial portions of the Software.", "",
                   'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.'])
    elif sub == "packagejson":
        d = {"name": meta.get("name", rng.choice(PRODUCTS)), "version": version(rng), "private": True,
             "scripts": {"build": "vite build", "dev": "vite", "test": "vitest run", "lint": "eslint ."},
             "dependencies": {npm_name(rng): "^" + version(rng) for _ in range(rng.randint(3, 20))},
             "devDependencies": {npm_name(rng): "^" + version(rng) for _ in range(rng.randint(3, 15))}}
        doc.w(json.dumps(d, indent=2) + "\n")
    elif sub == "tsconfig":
        d = {"compilerOptions": {"target": rng.choice(["ES2020", "ES2022", "ESNext"]), "module": rng.choice(["ESNext", "CommonJS", "NodeNext"]),
                                 "strict": True, "jsx": "react-jsx", "baseUrl": ".", "paths": {"@/*": ["src/*"]}, "skipLibCheck": True,
                                 "outDir": "dist", "esModuleInterop": True},
             "include": ["src"], "exclude": ["node_modules", "dist"]}
        doc.w(json.dumps(d, indent=2) + "\n")
    elif sub == "svg":
        doc.lines([f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {rng.randint(16, 512)} {rng.randint(16, 512)}">'])
        while not doc.full():
            pts = " ".join(f"{rng.choice('MLCQ')}{rng.random() * 500:.2f} {rng.random() * 500:.2f}" for _ in range(rng.randint(10, 60)))
            doc.lines([f'  <path fill="#{sha(6, rng)}" d="{pts}Z"/>'])
        doc.lines(["</svg>"])
    else:
        while not doc.full():
            doc.lines([sentence(rng, 6, 20) for _ in range(rng.randint(1, 6))] + [""])


# --------------------------------------------------------------------------------------
# whole-file hosts (one plant per file)
# --------------------------------------------------------------------------------------
def gen_whole(doc, rng, meta):
    kind = meta["whole"]
    if not doc.pending:
        return
    p = doc.pending.pop(0)
    items = p.items
    v = items[p.primary][1]
    if kind == "pem":
        doc.records.append(p.record(doc.path, 1, v.count("\n") + 1, "pem"))
        doc.w(v + "\n")
    elif kind == "sa-json":
        text = json.dumps(v, indent=2)
        doc.records.append(p.record(doc.path, 1, text.count("\n") + 1, "sa-json"))
        doc.w(text + "\n")
    elif kind == "pub":
        if v.startswith("ssh-"):
            doc.lines([f"# {rng.choice(FIRST)} ({rng.choice(['laptop', 'ci', 'bastion', 'deploy'])})"])
        doc.records.append(p.record(doc.path, doc.nl + 1, doc.nl + 1 + v.count("\n"), "pub"))
        doc.w(v + "\n")
    elif kind == "aws-credentials":
        doc.lines([f"[{rng.choice(['default', 'prod', 'deploy', rng.choice(PRODUCTS)])}]"])
        doc.emit(p, "", None, "ini")
        doc.lines([f"region = {cfg_value(rng, 'region')}", "", f"[profile {rng.choice(['dev', 'readonly', 'admin'])}]",
                   f"role_arn = arn:aws:iam::{rng.randint(10 ** 11, 10 ** 12 - 1)}:role/{pascal([rng.choice(NOUNS)])}Role", "source_profile = default", "output = json"])
    elif kind == "npmrc":
        doc.lines(["registry=https://registry.npmjs.org/", f"@{rng.choice(ORGS)}:registry=https://npm.pkg.github.com", "save-exact=true"])
        reg = {"npm": "registry.npmjs.org", "github-classic": "npm.pkg.github.com", "gitlab": f"gitlab.com/api/v4/projects/{rng.randint(1000, 99999999)}/packages/npm"}.get(p.provider, "registry.npmjs.org")
        doc.records.append(p.record(doc.path, doc.nl + 1, doc.nl + 1, "npmrc"))
        doc.lines([f"//{reg}/:_authToken={v}", "always-auth=true"])
    elif kind == "pypirc":
        doc.lines(["[distutils]", "index-servers =", "    pypi", "    testpypi", "", "[pypi]", "username = __token__"])
        doc.records.append(p.record(doc.path, doc.nl + 1, doc.nl + 1, "pypirc"))
        doc.lines([f"password = {v}", "", "[testpypi]", "repository = https://test.pypi.org/legacy/", "username = __token__"])
    elif kind == "git-credentials":
        for _ in range(rng.randint(0, 2)):
            doc.lines([f"https://{rng.choice(FIRST)}@{rng.choice(['github.com', 'gitlab.com', 'bitbucket.org'])}"])
        if v.startswith("https://"):
            line = v
        else:
            h = {"gitlab": "gitlab.com", "bitbucket": "bitbucket.org"}.get(p.provider, "github.com")
            line = f"https://{'oauth2' if h == 'gitlab.com' else rng.choice(FIRST)}:{v}@{h}"
        doc.records.append(p.record(doc.path, doc.nl + 1, doc.nl + 1, "git-credentials"))
        doc.lines([line])
    elif kind == "netrc":
        doc.lines(["machine api.heroku.com", f"  login {email(rng)}"])
        doc.records.append(p.record(doc.path, doc.nl + 1, doc.nl + 1, "netrc"))
        doc.lines([f"  password {v}", "machine git.heroku.com", f"  login {email(rng)}"])
    elif kind == "terraformrc":
        doc.lines([f'plugin_cache_dir = "$HOME/.terraform.d/plugin-cache"', "", 'credentials "app.terraform.io" {'])
        doc.records.append(p.record(doc.path, doc.nl + 1, doc.nl + 1, "terraformrc"))
        doc.lines([f'  token = "{v}"', "}"])
    elif kind == "pipconf":
        doc.lines(["[global]"])
        doc.records.append(p.record(doc.path, doc.nl + 1, doc.nl + 1, "pipconf"))
        doc.lines([f"index-url = {v}", "timeout = 60", f"trusted-host = {rng.choice(ORGS)}.com"])
    while doc.pending:  # should not happen; keep the truth consistent
        doc.emit(doc.pending.pop(0), "", None, "env")


GENERATORS = {
    "py": gen_py, "js": gen_js, "ts": lambda d, r, m: gen_js(d, r, m, ts=True), "go": gen_go, "java": gen_java, "rs": gen_rs, "rb": gen_rb,
    "sh": gen_sh, "yaml": gen_yaml, "k8s": gen_k8s, "helm": gen_helm, "compose": gen_compose, "ci": gen_ci, "json": gen_json,
    "fixture": gen_fixture, "env": gen_env, "ini": gen_ini, "properties": gen_properties, "toml": gen_toml, "tf": gen_tf,
    "dockerfile": gen_dockerfile, "xml": gen_xml, "md": gen_md, "html": gen_html, "css": gen_css, "http": gen_http, "ipynb": gen_ipynb,
    "log": gen_log, "csv": gen_csv, "minjs": gen_minjs, "sourcemap": gen_sourcemap, "lock-npm": gen_lock_npm, "lock-yarn": gen_lock_yarn,
    "lock-cargo": gen_lock_cargo, "gosum": gen_gosum, "lock-poetry": gen_lock_poetry, "gemlock": gen_gemlock, "i18n": gen_i18n,
    "sql": gen_sql, "text": gen_text, "whole": gen_whole,
}
# file kind -> plant host syntax (kinds absent here take no plants)
KIND_HOST = {k: k for k in ["py", "js", "ts", "go", "java", "rs", "rb", "sh", "yaml", "k8s", "helm", "compose", "ci", "json", "env", "ini",
                            "properties", "toml", "tf", "dockerfile", "xml", "md", "html", "css", "http", "ipynb", "log", "minjs"]}
KIND_HOST["fixture"] = "json"
WHOLE_HOSTS = {"pem", "sa-json", "pub", "aws-credentials", "npmrc", "pypirc", "git-credentials", "netrc", "terraformrc", "pipconf"}


# --------------------------------------------------------------------------------------
# planning: repositories and files
# --------------------------------------------------------------------------------------
class Planner:
    def __init__(self, rng):
        self.rng = rng
        self.files = []  # [relpath, kind, size, meta]
        self.paths = set()
        self.repos = []

    def lognorm(self, median, sigma=0.9, lo=300, hi=400_000):
        return int(min(hi, max(lo, self.rng.lognormvariate(math.log(median), sigma))))

    def add(self, repo, rel, kind, size, **meta):
        path = f"{repo}/{rel}"
        if path in self.paths:
            stem, dot, ext = rel.rpartition(".")
            if not dot or "/" in ext:
                stem, ext = rel, ""
            i = 2
            while True:
                cand = f"{repo}/{stem}_{i}{'.' + ext if ext else ''}"
                if cand not in self.paths:
                    path = cand
                    break
                i += 1
        self.paths.add(path)
        self.files.append([path, kind, int(size), meta])
        return path

    def total(self):
        return sum(f[2] for f in self.files)

    # ---- repo kinds
    def common(self, repo, lang_ci=True):
        r, L = self.rng, self.lognorm
        self.add(repo, "README.md", "md", L(7000, 0.8), title=repo.split("/")[-1])
        self.add(repo, ".gitignore", "text", 300, sub="gitignore")
        if r.random() < 0.6:
            self.add(repo, "LICENSE", "text", 1100, sub="license")
        if lang_ci and r.random() < 0.8:
            if r.random() < 0.75:
                self.add(repo, f".github/workflows/{r.choice(['ci', 'build', 'test', 'release', 'deploy'])}.yml", "ci", L(2500, 0.6))
            else:
                self.add(repo, ".gitlab-ci.yml", "ci", L(3000, 0.6), gitlab=True)
        if r.random() < 0.7:
            self.add(repo, "Dockerfile", "dockerfile", L(900, 0.5))
        if r.random() < 0.5:
            self.add(repo, "docker-compose.yml", "compose", L(1800, 0.5))
        for _ in range(r.randint(0, 4)):
            self.add(repo, f"docs/{kebab(words(r, 2))}.md", "md", L(6000))
        for _ in range(r.randint(0, 2)):
            self.add(repo, f"scripts/{kebab([r.choice(VERBS), r.choice(NOUNS)])}.sh", "sh", L(2500, 0.7))
        if r.random() < 0.5:
            self.add(repo, r.choice([".env", ".env.example", ".env.local", ".env.production", ".env.development"]), "env", L(1200, 0.6))
        if r.random() < 0.3:
            self.add(repo, "CHANGELOG.md", "md", L(12000))

    def python(self, repo):
        r, L = self.rng, self.lognorm
        pkg = snake(split_words([r.choice(PRODUCTS)]))
        self.common(repo)
        self.add(repo, "pyproject.toml", "toml", L(1500, 0.4))
        self.add(repo, "requirements.txt", "text", L(800, 0.5), sub="requirements")
        subs = [""] + [f"{r.choice(NOUNS)}/" for _ in range(r.randint(0, 4))]
        for _ in range(r.randint(10, 90)):
            self.add(repo, f"src/{pkg}/{r.choice(subs)}{snake(words(r, r.choice([1, 1, 2])))}.py", "py", L(7000), pkg=pkg)
        for _ in range(r.randint(3, 30)):
            self.add(repo, f"tests/test_{snake(words(r, r.choice([1, 2])))}.py", "py", L(5000), pkg=pkg, test=True)
        for _ in range(r.randint(0, 5)):
            self.add(repo, f"tests/fixtures/{snake(words(r, 2))}.json", "fixture", L(6000, 1.2))
        self.add(repo, f"config/{r.choice(['settings', 'config', 'app', 'default'])}.yaml", "yaml", L(3000, 0.6))
        if r.random() < 0.4:
            self.add(repo, "poetry.lock", "lock-poetry", L(120000, 0.6))
        if r.random() < 0.3:
            self.add(repo, "alembic.ini", "ini", L(1500, 0.4))
            for _ in range(r.randint(1, 6)):
                self.add(repo, f"alembic/versions/{rstr(r, HEX, 12)}_{snake(words(r, 2))}.py", "py", L(2500, 0.5), pkg=pkg)
        if r.random() < 0.25:
            self.add(repo, f"requests/{r.choice(NOUNS)}.http", "http", L(1500, 0.5))
        if r.random() < 0.3:
            self.add(repo, f"setup.cfg", "ini", L(1200, 0.4))

    def node(self, repo):
        r, L = self.rng, self.lognorm
        name = repo.split("/")[-1]
        self.common(repo)
        ts = r.random() < 0.6
        self.add(repo, "package.json", "text", L(1800, 0.4), sub="packagejson", name=name)
        if r.random() < 0.75:
            self.add(repo, "package-lock.json", "lock-npm", L(600000, 0.8, 20000, 3_500_000), name=name)
        else:
            self.add(repo, "yarn.lock", "lock-yarn", L(300000, 0.8, 20000, 2_000_000))
        if ts:
            self.add(repo, "tsconfig.json", "text", 600, sub="tsconfig")
        dirs = [f"src/{d}/" for d in r.sample(["components", "hooks", "pages", "api", "store", "utils", "services", "lib", "routes", "models"], r.randint(2, 6))]
        for _ in range(r.randint(15, 110)):
            ext = r.choice(["ts", "tsx"]) if ts else r.choice(["js", "jsx", "js", "mjs"])
            self.add(repo, f"{r.choice(dirs)}{camel(words(r, r.choice([1, 2])))}.{ext}", "ts" if ts else "js", L(5000))
        for _ in range(r.randint(2, 20)):
            self.add(repo, f"src/__tests__/{camel(words(r, 2))}.test.{'ts' if ts else 'js'}", "ts" if ts else "js", L(4000))
        for _ in range(r.randint(0, 6)):
            self.add(repo, f"src/styles/{kebab(words(r, 1))}.css", "css", L(6000))
        for lang in r.sample(list(LANG_VALUES), r.randint(0, 4)):
            self.add(repo, f"src/locales/{lang}.json", "i18n", L(15000, 0.7), lang=lang)
        self.add(repo, "public/index.html", "html", L(3000, 0.5))
        if r.random() < 0.5:
            lib = r.choice(["jquery", "chart", "lodash", "moment", "d3", "three", "highlight", "leaflet", "swiper", r.choice(PRODUCTS)])
            self.add(repo, f"public/vendor/{lib}.min.js", "minjs", L(250000, 0.8, 20000, 2_500_000), lib=lib)
        if r.random() < 0.45:
            h = rstr(r, HEX + "ABCDEF", 8)
            size = L(900000, 0.7, 50000, 4_000_000)
            self.add(repo, f"dist/assets/index-{h}.js", "minjs", size, mapname=f"index-{h}.js.map")
            if r.random() < 0.6:
                self.add(repo, f"dist/assets/index-{h}.js.map", "sourcemap", min(int(size * 1.3), 5_000_000), file=f"index-{h}.js")
        if r.random() < 0.2:
            self.add(repo, f"requests/{r.choice(NOUNS)}.http", "http", L(1500, 0.5))
        for _ in range(r.randint(0, 3)):
            self.add(repo, f"public/img/{kebab(words(r, 1))}.png", "binary", L(20000, 1.0), ext="png")

    def go(self, repo):
        r, L = self.rng, self.lognorm
        self.common(repo)
        self.add(repo, "go.mod", "text", L(1200, 0.4), sub="gomod")
        self.add(repo, "go.sum", "gosum", L(40000, 0.8, 2000, 400000))
        self.add(repo, "Makefile", "text", L(1200, 0.4), sub="makefile")
        for _ in range(r.randint(1, 3)):
            self.add(repo, f"cmd/{r.choice(PRODUCTS)}/main.go", "go", L(3000, 0.6), gopkg="main")
        for _ in range(r.randint(3, 10)):
            pkg = r.choice(NOUNS).replace("_", "")
            for _ in range(r.randint(2, 12)):
                self.add(repo, f"internal/{pkg}/{snake(words(r, r.choice([1, 2])))}.go", "go", L(8000), gopkg=pkg)
            if r.random() < 0.6:
                self.add(repo, f"internal/{pkg}/{pkg}_test.go", "go", L(5000), gopkg=pkg)
        for _ in range(r.randint(0, 4)):
            self.add(repo, f"deploy/k8s/{r.choice(['deployment', 'service', 'configmap', 'secret', 'ingress', 'app'])}.yaml", "k8s", L(2500, 0.6))
        self.add(repo, r.choice(["config.yaml", "config/config.yaml", "configs/app.yaml"]), "yaml", L(2500, 0.6))

    def java(self, repo):
        r, L = self.rng, self.lognorm
        self.common(repo)
        org = r.choice(ORGS).replace("-", "")
        app = r.choice(PRODUCTS)
        base = f"src/main/java/com/{org}/{app}"
        if r.random() < 0.7:
            self.add(repo, "pom.xml", "xml", L(5000, 0.5))
        else:
            self.add(repo, "build.gradle", "text", L(2500, 0.5))
        for _ in range(r.randint(15, 90)):
            sub = r.choice(["service", "controller", "repository", "model", "config", "dto", "util", "client"])
            cls = pascal([r.choice(NOUNS), sub])
            self.add(repo, f"{base}/{sub}/{cls}.java", "java", L(7000), javapkg=f"com.{org}.{app}.{sub}", cls=cls)
        for _ in range(r.randint(2, 12)):
            cls = pascal([r.choice(NOUNS), "service", "test"])
            self.add(repo, f"src/test/java/com/{org}/{app}/{cls}.java", "java", L(5000), javapkg=f"com.{org}.{app}", cls=cls)
        self.add(repo, "src/main/resources/application.properties", "properties", L(2000, 0.6))
        if r.random() < 0.6:
            self.add(repo, f"src/main/resources/application-{r.choice(['prod', 'dev', 'staging'])}.yml", "yaml", L(2500, 0.6))
        if r.random() < 0.3:
            self.add(repo, "src/main/resources/logback.xml", "xml", L(1500, 0.4))

    def rust(self, repo):
        r, L = self.rng, self.lognorm
        self.common(repo)
        self.add(repo, "Cargo.toml", "toml", L(1200, 0.4))
        self.add(repo, "Cargo.lock", "lock-cargo", L(60000, 0.8, 3000, 500000))
        for _ in range(r.randint(8, 50)):
            self.add(repo, f"src/{r.choice(['', r.choice(NOUNS) + '/'])}{snake(words(r, r.choice([1, 2])))}.rs", "rs", L(8000))
        for _ in range(r.randint(0, 5)):
            self.add(repo, f"tests/{snake(words(r, 2))}.rs", "rs", L(4000))

    def ruby(self, repo):
        r, L = self.rng, self.lognorm
        self.common(repo)
        self.add(repo, "Gemfile", "text", L(1000, 0.4))
        self.add(repo, "Gemfile.lock", "gemlock", L(15000, 0.6))
        for d in ["app/models", "app/controllers", "app/jobs", "app/services", "lib", "app/serializers"]:
            for _ in range(r.randint(2, 16)):
                self.add(repo, f"{d}/{snake(words(r, r.choice([1, 2])))}.rb", "rb", L(4000))
        for _ in range(r.randint(1, 8)):
            self.add(repo, f"spec/{snake(words(r, 2))}_spec.rb", "rb", L(4000))
        for _ in range(r.randint(1, 8)):
            self.add(repo, f"db/migrate/2024{r.randint(1, 12):02d}{r.randint(1, 28):02d}{r.randint(0, 999999):06d}_{snake(words(r, 2))}.rb", "rb", L(1500, 0.5))
        self.add(repo, "config/database.yml", "yaml", L(1500, 0.4))
        for _ in range(r.randint(0, 3)):
            self.add(repo, f"config/{r.choice(NOUNS)}.yml", "yaml", L(2000, 0.6))
        for _ in range(r.randint(0, 2)):
            self.add(repo, f"lib/tasks/{r.choice(NOUNS)}.rake", "rb", L(2000, 0.6))

    def infra(self, repo):
        r, L = self.rng, self.lognorm
        self.common(repo, lang_ci=False)
        self.add(repo, ".gitlab-ci.yml", "ci", L(4000, 0.6), gitlab=True)
        for _ in range(r.randint(2, 8)):
            m = r.choice(NOUNS)
            for f in ["main.tf", "variables.tf", "outputs.tf"]:
                self.add(repo, f"terraform/modules/{m}/{f}", "tf", L(4000 if f == "main.tf" else 1500, 0.7))
        for env in r.sample(["prod", "staging", "dev", "sandbox"], r.randint(1, 4)):
            self.add(repo, f"terraform/envs/{env}/main.tf", "tf", L(5000, 0.7))
            self.add(repo, f"terraform/envs/{env}/terraform.tfvars", "tf", L(1200, 0.6))
        for _ in range(r.randint(1, 5)):
            app = r.choice(PRODUCTS)
            for f in r.sample(["deployment", "service", "configmap", "secret", "ingress", "hpa", "cronjob"], r.randint(2, 5)):
                self.add(repo, f"k8s/{app}/{f}.yaml", "k8s", L(2500, 0.6))
        for _ in range(r.randint(0, 3)):
            chart = r.choice(PRODUCTS)
            self.add(repo, f"helm/{chart}/values.yaml", "yaml", L(6000, 0.6))
            self.add(repo, f"helm/{chart}/values-{r.choice(['prod', 'staging'])}.yaml", "yaml", L(2500, 0.6))
            for t in r.sample(["deployment", "service", "ingress", "configmap", "job"], r.randint(1, 4)):
                self.add(repo, f"helm/{chart}/templates/{t}.yaml", "helm", L(2000, 0.5))
        for _ in range(r.randint(0, 6)):
            self.add(repo, f"ansible/{r.choice(['playbooks', 'roles/' + r.choice(NOUNS) + '/tasks', 'group_vars'])}/{r.choice(NOUNS)}.yml", "yaml", L(2500, 0.6))
        for _ in range(r.randint(1, 8)):
            self.add(repo, f"docs/runbooks/{kebab(words(r, 2))}.md", "md", L(5000))
        for _ in range(r.randint(1, 6)):
            self.add(repo, f"scripts/{kebab([r.choice(VERBS), r.choice(NOUNS)])}.sh", "sh", L(3000, 0.7))

    def data(self, repo):
        r, L = self.rng, self.lognorm
        self.common(repo)
        self.add(repo, "requirements.txt", "text", L(800, 0.5), sub="requirements")
        for _ in range(r.randint(1, 8)):
            self.add(repo, f"notebooks/{r.randint(1, 40):02d}-{kebab(words(r, 2))}.ipynb", "ipynb", L(150000, 1.0, 3000, 2_000_000))
        for _ in range(r.randint(0, 4)):
            self.add(repo, f"data/{snake(words(r, 2))}.csv", "csv", L(600_000, 1.0, 20000, 8_000_000))
        for _ in range(r.randint(3, 15)):
            self.add(repo, f"{r.choice(['etl', 'dags', 'pipelines', 'jobs'])}/{snake(words(r, 2))}.py", "py", L(6000), pkg=r.choice(PRODUCTS))
        for _ in range(r.randint(1, 8)):
            self.add(repo, f"sql/{r.randint(1, 99):03d}_{snake(words(r, 2))}.sql", "sql", L(8000, 1.0))
        for _ in range(r.randint(0, 3)):
            self.add(repo, f"logs/{r.choice(PRODUCTS)}-{r.choice(['app', 'access', 'worker'])}-2024{r.randint(1, 12):02d}{r.randint(1, 28):02d}.log", "log",
                     L(1_200_000, 1.0, 50000, 12_000_000))
        self.add(repo, "config.ini", "ini", L(1500, 0.5))

    def docs(self, repo):
        r, L = self.rng, self.lognorm
        self.common(repo)
        self.add(repo, "mkdocs.yml", "yaml", L(1500, 0.4))
        secs = [kebab(words(r, 1)) for _ in range(r.randint(2, 8))]
        for _ in range(r.randint(10, 70)):
            self.add(repo, f"docs/{r.choice(secs)}/{kebab(words(r, r.choice([1, 2, 3])))}.md", "md", L(7000))
        for _ in range(r.randint(0, 8)):
            self.add(repo, f"docs/assets/{kebab(words(r, 1))}.svg", "text", L(8000), sub="svg")
        for _ in range(r.randint(0, 6)):
            self.add(repo, f"docs/assets/{kebab(words(r, 1))}.png", "binary", L(40000, 1.0), ext="png")
        if r.random() < 0.5:
            self.add(repo, "docs/stylesheets/extra.css", "css", L(4000))

    def monorepo(self, repo):
        r = self.rng
        self.common(repo)
        for _ in range(r.randint(2, 5)):
            sub = f"{repo}/services/{r.choice(PRODUCTS)}-{r.choice(SUFFIXES)}"
            r.choice([self.python, self.node, self.go, self.java])(sub)
        if r.random() < 0.6:
            self.infra(f"{repo}/infra")


REPO_KINDS = [("python", 22), ("node", 22), ("go", 12), ("java", 10), ("rust", 7), ("ruby", 7), ("infra", 8), ("data", 5), ("docs", 5), ("monorepo", 3)]


def make_plan(seed, target_bytes):
    rng = random.Random(f"{seed}:plan")
    pl = Planner(rng)
    names = set()
    kinds = [k for k, _ in REPO_KINDS]
    weights = [w for _, w in REPO_KINDS]
    while pl.total() < target_bytes:
        k = rng.choices(kinds, weights)[0]
        while True:
            name = f"{rng.choice(ORGS)}/{rng.choice(PRODUCTS)}-{rng.choice(SUFFIXES)}"
            if name not in names:
                names.add(name)
                break
        pl.repos.append((name, k))
        getattr(pl, k)(name)
    return pl


WHOLE_PATHS = {
    "pem": ["deploy/keys/id_rsa", "config/certs/server.key", "secrets/jwt-private.pem", ".ssh/id_ed25519", "keys/{n}.pem", "certs/{n}-key.pem",
            "ci/deploy_key", "ansible/files/{n}.key", "config/{n}_private_key.pem", "tests/fixtures/keys/{n}.pem"],
    "sa-json": ["config/gcp/{p}-{h}.json", "credentials/service-account.json", "terraform/gcp-sa-{n}.json", "secrets/{p}-sa.json", "keys/gcloud-{n}.json"],
    "pub": ["deploy/keys/{n}.pub", "ansible/files/authorized_keys", "config/certs/{n}.crt", "keys/{n}-public.pem", ".ssh/id_rsa.pub", "docs/keys/{n}.pub"],
    "aws-credentials": [".aws/credentials", "deploy/aws/credentials", "config/aws_credentials.ini", "ci/aws-credentials"],
    "npmrc": [".npmrc", "packages/{n}/.npmrc", "ci/.npmrc"],
    "pypirc": [".pypirc", "ci/.pypirc", "deploy/pypirc"],
    "git-credentials": [".git-credentials", "ci/git-credentials", "deploy/.git-credentials"],
    "netrc": [".netrc", "ci/netrc"],
    "terraformrc": [".terraformrc", "terraform/.terraformrc", "ci/terraform.rc"],
    "pipconf": ["pip.conf", ".pip/pip.conf", "deploy/pip.conf"],
}
ONDEMAND_PATHS = {
    "env": ".env.{n}", "md": "docs/{n}.md", "yaml": "config/{n}.yaml", "json": "config/{n}.json", "sh": "scripts/{n}.sh", "py": "scripts/{n}.py",
    "js": "scripts/{n}.js", "ts": "src/{n}.ts", "go": "internal/{n}/{n}.go", "java": "src/main/java/{N}.java", "rb": "lib/{n}.rb", "rs": "src/{n}.rs",
    "ci": ".github/workflows/{n}.yml", "k8s": "k8s/{n}.yaml", "helm": "helm/templates/{n}.yaml", "compose": "docker-compose.{n}.yml",
    "tf": "terraform/{n}.tf", "ini": "config/{n}.ini", "properties": "config/{n}.properties", "toml": "config/{n}.toml", "xml": "config/{n}.xml",
    "dockerfile": "docker/{n}.Dockerfile", "html": "templates/{n}.html", "css": "static/{n}.css", "http": "requests/{n}.http",
    "ipynb": "notebooks/{n}.ipynb", "log": "logs/{n}.log", "minjs": "static/js/{n}.min.js",
}
HOST_KIND = {"json": "json"}


def allocate_plants(pl, seed, n_secrets, n_decoys):
    rng = random.Random(f"{seed}:plants")
    by_host = {}
    for idx, f in enumerate(pl.files):
        h = KIND_HOST.get(f[1])
        if h:
            by_host.setdefault(h, []).append(idx)
    plants_for = {}
    cap_used = {}
    repos = [name for name, _ in pl.repos]

    def capacity(idx):
        size = pl.files[idx][2]
        return 2 if size < 20000 else (4 if size < 500000 else 10)

    def new_file(host):
        repo = rng.choice(repos)
        n = snake(words(rng, 2))
        if host in WHOLE_HOSTS:
            tmpl = rng.choice(WHOLE_PATHS[host])
            rel = tmpl.format(n=n.replace("_", "-"), p=f"{rng.choice(PRODUCTS)}-{rng.choice(['prod', 'dev', 'data'])}", h=rstr(rng, HEX, 12))
            pl.add(repo, rel, "whole", 0, whole=host)
            return len(pl.files) - 1
        rel = ONDEMAND_PATHS[host].format(n=n, N=pascal(words(rng, 2)))
        kind = HOST_KIND.get(host, host)
        size = pl.lognorm(4000, 0.6)
        pl.add(repo, rel, kind, size)
        idx = len(pl.files) - 1
        by_host.setdefault(host, []).append(idx)
        return idx

    def place(kind, prov, hosts, i):
        host = rng.choice(hosts)
        p = Plant(kind, prov, host, f"{seed}:{kind}:{i}", rng.random())
        if host in WHOLE_HOSTS:
            if kind == "decoy" and host == "pub":
                p.materialise()
            idx = new_file(host)
        else:
            cands = by_host.get(host, [])
            idx = None
            for _ in range(12):
                if not cands:
                    break
                c = rng.choice(cands)
                if cap_used.get(c, 0) < capacity(c):
                    idx = c
                    break
            if idx is None:
                idx = new_file(host)
        cap_used[idx] = cap_used.get(idx, 0) + 1
        plants_for.setdefault(idx, []).append(p)

    for kind, table, total in (("secret", SECRET_PROVIDERS, n_secrets), ("decoy", DECOY_TYPES, n_decoys)):
        wsum = sum(v[0] for v in table.values())
        i = 0
        for prov, (w, _g, hosts) in table.items():
            cnt = max(1, round(total * w / wsum))
            for _ in range(cnt):
                place(kind, prov, hosts, i)
                i += 1
    # "pub" decoy files get a name matching their content
    for idx, ps in plants_for.items():
        f = pl.files[idx]
        if f[1] == "whole" and f[3]["whole"] == "pub":
            v = ps[0].items[ps[0].primary][1]
            d = f[0].rsplit("/", 1)[0]
            base = f[0].rsplit("/", 1)[1].split(".")[0]
            if v.startswith("ssh-"):
                newp = f"{d}/{base}.pub" if "authorized_keys" not in f[0] else f[0]
            elif "CERTIFICATE" in v:
                newp = f"{d}/{base}.crt"
            else:
                newp = f"{d}/{base}.pem"
            if newp != f[0] and newp not in pl.paths:
                pl.paths.discard(f[0])
                pl.paths.add(newp)
                f[0] = newp
    return plants_for


# --------------------------------------------------------------------------------------
# worker
# --------------------------------------------------------------------------------------
_OUT = None


def _init(out):
    global _OUT
    _OUT = out


def gen_file(task):
    idx, seed, path, kind, size, meta, plants = task
    rng = random.Random(f"{seed}:file:{idx}")
    full = os.path.join(_OUT, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if kind == "binary":
        hdr = {"png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}.get(meta.get("ext"), b"\x00\x01\x00\x00")
        data = hdr + rng.getrandbits(8 * size).to_bytes(size, "big")
        with open(full, "wb") as fh:
            fh.write(data)
        return path, len(data), hashlib.sha256(data).hexdigest(), []
    for p in plants:
        if p.items is None:
            p.materialise()
    host = "whole" if kind == "whole" else KIND_HOST.get(kind, "env")
    doc = Doc(rng, host, plants, size, path)
    GENERATORS[kind](doc, rng, meta)
    if doc.pending:  # a generator could not place everything: append in env-like syntax (should be rare)
        raise RuntimeError(f"{path}: {len(doc.pending)} plants not placed by {kind}")
    data = doc.text().encode("utf-8")
    with open(full, "wb") as fh:
        fh.write(data)
    return path, len(data), hashlib.sha256(data).hexdigest(), doc.records


def verify(out, records):
    """Check every record: its values lie on its lines, and no two regions of a file overlap."""
    problems = []
    by_path = {}
    for rec in records:
        by_path.setdefault(rec["path"], []).append(rec)
    for path, recs in by_path.items():
        with open(os.path.join(out, path), encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        last_end = 0
        for rec in sorted(recs, key=lambda r: r["line"]):
            if rec["line"] <= last_end:
                problems.append(f"{path}:{rec['line']}: overlaps the previous region")
            last_end = max(last_end, rec["end_line"])
            region = lines[rec["line"] - 1:rec["end_line"]]
            joined = "\n".join(region)
            for v in rec["_values"]:
                pl = v.split("\n")
                ok = (v in joined or v.replace("\n", "\\n") in joined
                      or (len(pl) > 1 and region and pl[0] in region[0] and pl[-1] in region[-1])
                      or base64.b64encode(v.encode()).decode() in joined)
                if not ok:
                    problems.append(f"{path}:{rec['line']}-{rec['end_line']}: {rec['kind']} {rec['provider']} value not found on its lines")
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--size-mb", type=float, default=520, help="approximate corpus size in MiB (default 520)")
    ap.add_argument("--out", default=os.path.join(here, "corpus"))
    ap.add_argument("--secrets", type=int, default=None, help="planted secrets (default: 1500 scaled by size/520)")
    ap.add_argument("--decoys", type=int, default=None, help="planted decoys (default: 1500 scaled by size/520)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--force", action="store_true", help="delete --out even if it was not made by this script")
    args = ap.parse_args(argv)

    out = os.path.abspath(args.out)
    parent = os.path.dirname(out)
    truth_path = os.path.join(parent, "corpus-truth.jsonl")
    meta_path = os.path.join(parent, "corpus-meta.json")
    if os.path.exists(out):
        if os.listdir(out) and not (os.path.exists(meta_path) or args.force):
            sys.exit(f"{out} exists and is not empty, and {meta_path} is missing: refusing to delete it (use --force)")
        shutil.rmtree(out)
    for p in (truth_path, meta_path):
        if os.path.exists(p):
            os.remove(p)
    os.makedirs(out)
    t0 = time.time()
    scale = args.size_mb / 520.0
    n_sec = args.secrets if args.secrets is not None else max(60, round(1500 * scale))
    n_dec = args.decoys if args.decoys is not None else max(60, round(1500 * scale))
    pl = make_plan(args.seed, int(args.size_mb * MIB))
    plants_for = allocate_plants(pl, args.seed, n_sec, n_dec)
    tasks = [(i, args.seed, f[0], f[1], f[2], f[3], plants_for.get(i, [])) for i, f in enumerate(pl.files)]
    # big files first so the pool stays busy at the end
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i][4])
    results = [None] * len(tasks)
    with Pool(args.jobs, initializer=_init, initargs=(out,)) as pool:
        for n, res in enumerate(pool.imap_unordered(gen_file, [tasks[i] for i in order], chunksize=8)):
            results[n] = res
    results.sort(key=lambda r: r[0])
    records = [rec for r in results for rec in r[3]]
    records.sort(key=lambda r: (r["path"], r["line"], r["kind"]))
    problems = verify(out, records)
    for rec in records:
        del rec["_values"]
    with open(truth_path, "w") as fh:
        for rec in records:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
    digest = hashlib.sha256("".join(f"{r[0]}\0{r[2]}\n" for r in results).encode()).hexdigest()
    total = sum(r[1] for r in results)
    counts = {}
    for rec in records:
        counts[rec["kind"]] = counts.get(rec["kind"], 0) + 1
    meta = {"generator_version": GEN_VERSION, "seed": args.seed, "size_mb": args.size_mb, "out": out, "files": len(results),
            "bytes": total, "repos": len(pl.repos), "secrets": counts.get("secret", 0), "decoys": counts.get("decoy", 0),
            "tree_sha256": digest, "seconds": round(time.time() - t0, 1), "truth_problems": len(problems)}
    with open(meta_path, "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    for p in problems[:20]:
        print("TRUTH PROBLEM:", p, file=sys.stderr)
    print(json.dumps(meta, indent=2))
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
