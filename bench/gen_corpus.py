#!/usr/bin/env python3
"""Deterministic generator of a synthetic, realistic secret-scanning corpus.

Writes a tree of ~200 fake repositories (source code in many languages, config, docs,
lockfiles, fixtures, logs, CSV, minified bundles, a few binaries) of about --size-mb MiB
into --out, and plants real-format secrets and look-alike decoys into it. The ground
truth goes to <out>/../corpus-truth.jsonl (outside the scanned tree), one JSON object a
line:

  {"kind": "secret"|"decoy", "provider": ..., "type": ..., "path": "repo/file.py",
   "line": 12, "end_line": 12, "secret_sha256": "...", "parts_sha256": [...],
   "host": "py"}

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
MSGS = """failed to {v} {n} | could not {v} {n} | {n} not found | invalid {n} | {v}ing {n}
| finished {v}ing {n} | retrying {n} after error | {n} is stale, refreshing | skipping {adj} {n}
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
    "Avoid {v}ing the {n} twice; the {n2} already does it.",
    "HACK: the upstream {n} API returns {adj} {n2}s sometimes.",
    "Cache the {n} because {v}ing it is expensive.",
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


def comment_text(rng):
    t = rng.choice(COMMENTS)
    return t.format(adj=rng.choice(ADJS), n=rng.choice(NOUNS), n2=rng.choice(NOUNS), n3=rng.choice(NOUNS),
                    v=rng.choice(VERBS), v2=rng.choice(VERBS), V=rng.choice(VERBS).capitalize(),
                    user=rng.choice(FIRST), path=f"{rng.choice(NOUNS)}/{rng.choice(NOUNS)}.py",
                    org=rng.choice(ORGS), repo=rng.choice(PRODUCTS), num=rng.randint(10, 9999),
                    fn=fn_name(rng))


def log_msg(rng):
    return rng.choice(MSGS).strip().format(v=rng.choice(VERBS), n=rng.choice(NOUNS), adj=rng.choice(ADJS))


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
        return f'std::env::var("{var}")?', True
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
    k = rng.random()
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
    __slots__ = ("kind", "provider", "host", "seed", "pos", "items", "primary", "raw", "ctx_hint")

    def __init__(self, kind, provider, host, seed, pos):
        self.kind, self.provider, self.host, self.seed, self.pos = kind, provider, host, seed, pos
        self.items = None
        self.primary = 0
        self.raw = False
        self.ctx_hint = None

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
                **({"encoding": "base64"} if encoded else {})}


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
    if host in ("yaml", "helm", "k8s", "ini", "tf", "toml", "log"):
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
            lines.append(f"{indent}const {upper(names)}: &str = {val};" if not raw else f"{indent}let {snake(names)} = {val};")
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
        if host == "md" and ctx == "curl" and len(items) == 1:
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
        """For single-line hosts (minified JS): no newline added."""
        host = host or self.host
        lines, a, b, enc = render(self.rng, host, p)
        self.records.append(p.record(self.path, self.nl + 1, self.nl + 1, host, enc))
        self.w("".join(lines))

    def text(self):
        return "".join(self.parts)
