#!/usr/bin/env python3
"""Independent labelled secret-scanning corpus (deterministic, stdlib only).

Usage: make_corpus.py [OUTDIR]   (default /tmp/indep)
Writes OUTDIR/corpus/** and OUTDIR/truth.jsonl with one record per planted item:
  {"kind": "secret"|"decoy", "provider": str, "path": rel, "line": int, "end_line": int}
Designed from general knowledge of how credentials leak in real repositories.
"""
import base64, hashlib, json, os, random, shutil, string, sys, zlib

OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/indep"
R = random.Random(0x5EC2E7)
DIG = string.digits
UP = string.ascii_uppercase
LO = string.ascii_lowercase
ALNUM = UP + LO + DIG
B62 = DIG + UP + LO
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64U = ALNUM + "-_"


def rs(alpha, n):
    return "".join(R.choice(alpha) for _ in range(n))


def b62(n):
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = B62[r] + s
    return s or "0"


def crc_token(prefix, bad=False):
    body = rs(ALNUM, 30)
    cs = b62(zlib.crc32(body.encode()) & 0xFFFFFFFF).rjust(6, "0")
    if bad:
        c = cs[-1]
        cs = cs[:-1] + B62[(B62.index(c) + 7) % 62]
    return prefix + body + cs


def b64u(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


# ---------------------------------------------------------------- RSA keys
def _is_prime(n):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(12):
        a = R.randrange(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits):
    while True:
        c = R.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if _is_prime(c):
            return c


def _der_len(n):
    if n < 128:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def _der_int(v):
    b = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return b"\x02" + _der_len(len(b)) + b


def _der_seq(*parts):
    body = b"".join(parts)
    return b"\x30" + _der_len(len(body)) + body


def rsa_der(bits=1024):
    e = 65537
    while True:
        p, q = _prime(bits // 2), _prime(bits // 2)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e:
            break
    n = p * q
    d = pow(e, -1, phi)
    return _der_seq(*[_der_int(x) for x in (0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))])


def pem(label, der):
    b = base64.b64encode(der).decode()
    return "\n".join([f"-----BEGIN {label}-----"] + [b[i:i + 64] for i in range(0, len(b), 64)] + [f"-----END {label}-----"])


def pem_rsa():
    return pem("RSA PRIVATE KEY", rsa_der(R.choice([1024, 2048])))


def pem_pkcs8():
    alg = _der_seq(b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01", b"\x05\x00")
    inner = rsa_der(1024)
    return pem("PRIVATE KEY", _der_seq(_der_int(0), alg, b"\x04" + _der_len(len(inner)) + inner))


def pem_openssh():
    blob = b"openssh-key-v1\x00" + b"\x00\x00\x00\x04none\x00\x00\x00\x04none\x00\x00\x00\x00\x00\x00\x00\x01"
    pub = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes(R.getrandbits(8) for _ in range(32))
    blob += len(pub).to_bytes(4, "big") + pub
    ck = bytes(R.getrandbits(8) for _ in range(4))
    priv = ck + ck + pub + b"\x00\x00\x00\x40" + bytes(R.getrandbits(8) for _ in range(64)) + b"\x00\x00\x00\x0bdeploy@ci01\x01\x02\x03"
    blob += len(priv).to_bytes(4, "big") + priv
    b = base64.b64encode(blob).decode()
    return "\n".join(["-----BEGIN OPENSSH PRIVATE KEY-----"] + [b[i:i + 70] for i in range(0, len(b), 70)] + ["-----END OPENSSH PRIVATE KEY-----"])


# ---------------------------------------------------------------- names
USERS = ["jsmith", "mgarcia", "li.wei", "okonkwo", "deploy", "svc_reporting", "anna.k", "ci-bot", "petrov", "admin_ops"]
HOSTS = ["db-prod-01.internal", "pg.eu-west-1.rds.amazonaws.com", "10.20.3.14", "mysql.corp.example.net", "orders-db", "analytics.cluster-cx9.us-east-1.rds.amazonaws.com"]
WORDS = ["orders", "billing", "inventory", "payments", "auth", "search", "reports", "notify", "ingest", "gateway"]


def pw():
    # realistic human/generated passwords
    k = R.randrange(4)
    if k == 0:
        return rs(ALNUM, R.randrange(14, 24))
    if k == 1:
        return R.choice(["Summer", "Winter", "Falcon", "Orange", "Tiger"]) + str(R.randrange(1990, 2025)) + R.choice("!#$%@") + rs(LO, 3)
    if k == 2:
        return rs(ALNUM + "!@#%^*", R.randrange(16, 28))
    return rs(LO, 5) + "-" + rs(LO, 6) + "-" + rs(DIG, 4) + rs(UP, 2)


def jwt(claims=None):
    h = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    c = claims or {"sub": str(R.randrange(10**6, 10**7)), "iss": "https://auth.%s.io" % R.choice(WORDS), "scope": "read write admin",
                   "iat": 1700000000 + R.randrange(10**7), "exp": 1900000000 + R.randrange(10**7)}
    p = b64u(json.dumps(c, separators=(",", ":")).encode())
    return f"{h}.{p}.{b64u(bytes(R.getrandbits(8) for _ in range(32)))}"


def k8s_sa_jwt():
    h = b64u(json.dumps({"alg": "RS256", "kid": rs(B64U, 43)}, separators=(",", ":")).encode())
    c = {"iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": "prod",
         "kubernetes.io/serviceaccount/secret.name": "deployer-token-" + rs(LO + DIG, 5),
         "kubernetes.io/serviceaccount/service-account.name": "deployer", "sub": "system:serviceaccount:prod:deployer"}
    p = b64u(json.dumps(c, separators=(",", ":")).encode())
    return f"{h}.{p}.{b64u(bytes(R.getrandbits(8) for _ in range(256)))}"


def gcp_sa_json():
    proj = R.choice(WORDS) + "-prod-" + rs(DIG, 6)
    return json.dumps({
        "type": "service_account", "project_id": proj, "private_key_id": rs(HEX, 40),
        "private_key": pem_pkcs8() + "\n",
        "client_email": f"terraform@{proj}.iam.gserviceaccount.com", "client_id": rs(DIG, 21),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/terraform%40{proj}.iam.gserviceaccount.com",
    }, indent=2)


# ---------------------------------------------------------------- secret types
# provider -> list of (VAR_NAME, value-fn) pairs rendered together as one planted secret
S = {
    "aws": lambda: [("AWS_ACCESS_KEY_ID", "AKIA" + rs(UP + "234567", 16)), ("AWS_SECRET_ACCESS_KEY", rs(B64, 40))],
    "aws-session": lambda: [("AWS_ACCESS_KEY_ID", "ASIA" + rs(UP + "234567", 16)), ("AWS_SECRET_ACCESS_KEY", rs(B64, 40)),
                            ("AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2Vj" + rs(B64, 300))],
    "github-classic": lambda: [("GITHUB_TOKEN", crc_token("ghp_"))],
    "github-oauth": lambda: [("GH_OAUTH_TOKEN", crc_token("gho_"))],
    "github-app": lambda: [("GH_INSTALLATION_TOKEN", crc_token("ghs_"))],
    "github-fine-grained": lambda: [("GH_PAT", "github_pat_11" + rs(UP + DIG, 20) + "_" + rs(ALNUM, 59))],
    "gitlab": lambda: [("GITLAB_TOKEN", "glpat-" + rs(ALNUM + "-_", 20))],
    "slack-bot": lambda: [("SLACK_BOT_TOKEN", f"xoxb-{rs(DIG, 12)}-{rs(DIG, 13)}-{rs(ALNUM, 24)}")],
    "slack-user": lambda: [("SLACK_TOKEN", f"xoxp-{rs(DIG, 12)}-{rs(DIG, 12)}-{rs(DIG, 13)}-{rs(HEX, 32)}")],
    "slack-webhook": lambda: [("SLACK_WEBHOOK_URL", f"https://hooks.slack.com/services/T{rs(UP + DIG, 8)}/B{rs(UP + DIG, 10)}/{rs(ALNUM, 24)}")],
    "stripe": lambda: [("STRIPE_SECRET_KEY", "sk_live_51" + rs(ALNUM, 97))],
    "stripe-restricted": lambda: [("STRIPE_API_KEY", "rk_live_51" + rs(ALNUM, 97))],
    "sendgrid": lambda: [("SENDGRID_API_KEY", f"SG.{rs(B64U, 22)}.{rs(B64U, 43)}")],
    "twilio": lambda: [("TWILIO_ACCOUNT_SID", "AC" + rs(HEX, 32)), ("TWILIO_AUTH_TOKEN", rs(HEX, 32))],
    "twilio-apikey": lambda: [("TWILIO_API_KEY", "SK" + rs(HEX, 32)), ("TWILIO_API_SECRET", rs(ALNUM, 32))],
    "openai": lambda: [("OPENAI_API_KEY", "sk-proj-" + rs(B64U, 74) + "T3BlbkFJ" + rs(B64U, 74))],
    "anthropic": lambda: [("ANTHROPIC_API_KEY", "sk-ant-api03-" + rs(B64U, 93) + "AA")],
    "google-api": lambda: [("GOOGLE_MAPS_API_KEY", "AIza" + rs(B64U, 35))],
    "azure-storage": lambda: [("AZURE_STORAGE_CONNECTION_STRING",
                               f"DefaultEndpointsProtocol=https;AccountName={R.choice(WORDS)}store{rs(DIG, 3)};AccountKey={base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode()};EndpointSuffix=core.windows.net")],
    "azure-ad-secret": lambda: [("AZURE_CLIENT_SECRET", rs(ALNUM, 3) + R.choice(DIG) + "Q~" + rs(ALNUM + "_~.-", 34))],
    "npm": lambda: [("NPM_TOKEN", crc_token("npm_"))],
    "pypi": lambda: [("PYPI_TOKEN", "pypi-AgEIcHlwaS5vcmc" + rs(B64U, 150))],
    "shopify": lambda: [("SHOPIFY_ACCESS_TOKEN", "shpat_" + rs(HEX, 32))],
    "datadog": lambda: [("DD_API_KEY", rs(HEX, 32)), ("DD_APP_KEY", rs(HEX, 40))],
    "okta": lambda: [("OKTA_API_TOKEN", "00" + rs(B64U, 40))],
    "atlassian": lambda: [("JIRA_API_TOKEN", "ATATT3xFfGF0" + rs(B64U, 170) + "=" + rs(HEX.upper(), 8))],
    "jwt": lambda: [("AUTH_TOKEN", jwt())],
    "huggingface": lambda: [("HF_TOKEN", "hf_" + rs(UP + LO, 34))],
    "digitalocean": lambda: [("DIGITALOCEAN_TOKEN", "dop_v1_" + rs(HEX, 64))],
    "telegram": lambda: [("TELEGRAM_BOT_TOKEN", f"{R.randrange(10**8, 10**10)}:AA{rs(B64U, 33)}")],
    "discord": lambda: [("DISCORD_BOT_TOKEN", b64u(str(R.randrange(10**17, 10**18)).encode()) + "." + rs(B64U, 6) + "." + rs(B64U, 38))],
    "mailgun": lambda: [("MAILGUN_API_KEY", "key-" + rs(HEX, 32))],
    "mailchimp": lambda: [("MAILCHIMP_API_KEY", rs(HEX, 32) + "-us" + str(R.randrange(1, 21)))],
    "dockerhub": lambda: [("DOCKERHUB_TOKEN", "dckr_pat_" + rs(B64U, 27))],
    "postman": lambda: [("POSTMAN_API_KEY", f"PMAK-{rs(HEX, 24)}-{rs(HEX, 34)}")],
    "terraform-cloud": lambda: [("TFE_TOKEN", rs(ALNUM, 14) + ".atlasv1." + rs(ALNUM, 67))],
    "vault": lambda: [("VAULT_TOKEN", "hvs." + rs(B64U, 24) if False else "hvs.CAESI" + rs(B64U, 86))],
    "grafana": lambda: [("GRAFANA_SA_TOKEN", "glsa_" + rs(ALNUM, 32) + "_" + rs(HEX, 8))],
    "newrelic": lambda: [("NEW_RELIC_API_KEY", "NRAK-" + rs(UP + DIG, 27))],
    "linear": lambda: [("LINEAR_API_KEY", "lin_api_" + rs(ALNUM, 40))],
    "square": lambda: [("SQUARE_ACCESS_TOKEN", "EAAA" + rs(B64U, 60))],
    "age": lambda: [("SOPS_AGE_KEY", "AGE-SECRET-KEY-1" + rs("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58))],
    "postgres-uri": lambda: [("DATABASE_URL", f"postgresql://{R.choice(USERS)}:{pw()}@{R.choice(HOSTS)}:5432/{R.choice(WORDS)}")],
    "mysql-uri": lambda: [("DB_DSN", f"mysql://{R.choice(USERS)}:{pw()}@{R.choice(HOSTS)}:3306/{R.choice(WORDS)}")],
    "mongodb-uri": lambda: [("MONGO_URI", f"mongodb+srv://{R.choice(USERS)}:{pw()}@cluster0.{rs(LO + DIG, 5)}.mongodb.net/{R.choice(WORDS)}?retryWrites=true&w=majority")],
    "password": lambda: [(R.choice(["DB_PASSWORD", "ADMIN_PASSWORD", "SMTP_PASSWORD", "REDIS_PASSWORD", "LDAP_BIND_PASSWORD"]), pw())],
    "pem-rsa": lambda: [("PRIVATE_KEY", pem_rsa())],
    "pem-pkcs8": lambda: [("SIGNING_KEY", pem_pkcs8())],
}
SECRET_PROVIDERS = sorted(S)

# ---------------------------------------------------------------- decoys
JWT_IO = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
AZURITE = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
D = {
    "aws-doc-example": lambda: [("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")],
    "github-bad-checksum": lambda: [("GITHUB_TOKEN", crc_token("ghp_", bad=True))],
    "github-placeholder": lambda: [("GITHUB_TOKEN", R.choice(["ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "ghp_YOUR_PERSONAL_ACCESS_TOKEN_HERE", "<github-token>"]))],
    "slack-webhook-example": lambda: [("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX")],
    "jwt-io-example": lambda: [("EXAMPLE_JWT", JWT_IO)],
    "stripe-publishable": lambda: [("STRIPE_PUBLISHABLE_KEY", "pk_live_51" + rs(ALNUM, 97))],
    "sha256": lambda: [("ARTIFACT_SHA256", rs(HEX, 64))],
    "git-sha": lambda: [("GIT_COMMIT", rs(HEX, 40))],
    "md5": lambda: [("CHECKSUM_MD5", rs(HEX, 32))],
    "uuid": lambda: [("REQUEST_ID", "%s-%s-4%s-%s%s-%s" % (rs(HEX, 8), rs(HEX, 4), rs(HEX, 3), R.choice("89ab"), rs(HEX, 3), rs(HEX, 12)))],
    "ssh-public-key": lambda: [("DEPLOY_PUBLIC_KEY", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rs(B64, 43) + " deploy@build")],
    "env-ref": lambda: [(v, R.choice(["${%s}" % v, "${{ secrets.%s }}" % v, "$(%s)" % v, "{{ .Values.%s }}" % v.lower(), "%%%s%%" % v]))
                        for v in [R.choice(["DB_PASSWORD", "API_TOKEN", "STRIPE_SECRET_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY"])]],
    "placeholder": lambda: [(R.choice(["API_KEY", "DB_PASSWORD", "SECRET_KEY", "CLIENT_SECRET", "ACCESS_TOKEN"]),
                             R.choice(["changeme", "<YOUR_API_KEY>", "your-secret-here", "REPLACE_ME", "********", "xxxxxxxxxxxxxxxx", "TODO", "dummy", "test", "null", "<redacted>", "sk-...", "insert-key-here"]))],
    "low-entropy-password": lambda: [("DB_PASSWORD", R.choice(["password", "postgres", "admin", "root", "secret", "example"]))],
    "google-oauth-client-id": lambda: [("GOOGLE_CLIENT_ID", f"{rs(DIG, 12)}-{rs(LO + DIG, 32)}.apps.googleusercontent.com")],
    "docker-digest": lambda: [("IMAGE", f"ghcr.io/acme/{R.choice(WORDS)}@sha256:{rs(HEX, 64)}")],
    "redacted": lambda: [(R.choice(["AWS_ACCESS_KEY_ID", "OPENAI_API_KEY", "STRIPE_SECRET_KEY"]), R.choice(["AKIA************" + rs(UP, 4), "sk-proj-****" + rs(LO, 4), "sk_live_...REDACTED"]))],
    "azurite-dev-key": lambda: [("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + AZURITE + ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")],
    "db-uri-no-secret": lambda: [("DATABASE_URL", R.choice(["postgresql://app:${DB_PASSWORD}@db:5432/app", "postgres://postgres@localhost:5432/test", "mysql://user:password@localhost:3306/dbname", "mongodb://localhost:27017/dev"]))],
    "twilio-example": lambda: [("TWILIO_ACCOUNT_SID", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"), ("TWILIO_AUTH_TOKEN", "your_auth_token")],
    "aws-arn": lambda: [("ROLE_ARN", f"arn:aws:iam::{rs(DIG, 12)}:role/{R.choice(WORDS)}-deployer")],
    "sri-integrity": lambda: [("INTEGRITY", "sha512-" + base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode())],
    "vault-ref": lambda: [("DB_PASSWORD", f"vault:secret/data/{R.choice(WORDS)}#password")],
    "openai-truncated-doc": lambda: [("OPENAI_API_KEY", R.choice(["sk-proj-...", "sk-ant-api03-...", "sk-XXXXXXXXXXXXXXXXXXXXXXXX"]))],
}
DECOY_PROVIDERS = sorted(D)


# ---------------------------------------------------------------- rendering
def camel(v):
    p = v.lower().split("_")
    return p[0] + "".join(x.title() for x in p[1:])


def esc(v):
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def assign(style, var, val, indent=""):
    """Return list of lines assigning val to var in a given syntax."""
    ml = "\n" in val
    if style == "yaml":
        if ml:
            return [f"{indent}{var.lower()}: |"] + [indent + "  " + l for l in val.split("\n")]
        q = '"' if R.random() < 0.5 else ""
        return [f"{indent}{var.lower()}: {q}{val}{q}"]
    if style == "yaml-env":  # k8s / compose style KEY: value
        if ml:
            return [f"{indent}{var}: |"] + [indent + "  " + l for l in val.split("\n")]
        return [f"{indent}{var}: \"{val}\""]
    if style == "env":
        return [f'{var}="{esc(val)}"' if ml else f"{var}={val}"]
    if style == "sh":
        return [f'export {var}="{esc(val)}"']
    if style == "json":
        return [f'{indent}"{camel(var)}": "{esc(val)}",']
    if style == "hcl":
        if ml:
            return [f"{indent}{var.lower()} = <<EOT"] + val.split("\n") + ["EOT"]
        return [f'{indent}{var.lower()} = "{val}"']
    if style == "py":
        return [f'{indent}{var} = "{esc(val)}"']
    if style == "js":
        return [f'{indent}const {camel(var)} = "{esc(val)}";']
    if style == "ts":
        return [f"{indent}{camel(var)}: '{esc(val)}',"]
    if style == "java":
        return [f'{indent}private static final String {var} = "{esc(val)}";']
    if style == "go":
        return [f'{indent}{camel(var)} = "{esc(val)}"']
    if style == "cs":
        return [f'{indent}private const string {camel(var)[0].upper() + camel(var)[1:]} = "{esc(val)}";']
    if style == "php":
        return [f"{indent}'{var.lower()}' => '{esc(val)}',"]
    if style == "rb":
        return [f"{indent}{var.lower()}: '{esc(val)}',"]
    if style == "ps1":
        return [f'{indent}$env:{var} = "{esc(val)}"']
    if style == "reg":
        return [f'"{var}"="{esc(val)}"']
    if style in ("ini", "props"):
        return [f"{var.lower()} = {esc(val)}" if style == "ini" else f"{var.lower().replace('_', '.')}={esc(val)}"]
    if style == "xml":
        return [f'{indent}<add key="{var}" value="{esc(val)}" />']
    if style == "groovy":
        return [f"{indent}{var} = '{esc(val)}'"]
    if style == "toml":
        return [f'{var.lower()} = "{esc(val)}"']
    raise ValueError(style)


class FB:
    def __init__(self, path):
        self.path, self.lines, self.truth = path, [], []

    def add(self, *ls):
        for l in ls:
            self.lines.extend(l.split("\n"))

    def item(self, kind, provider, lines):
        start = len(self.lines) + 1
        for l in lines:
            self.lines.extend(l.split("\n"))
        self.truth.append({"kind": kind, "provider": provider, "path": self.path, "line": start, "end_line": len(self.lines)})

    def kv(self, style, it, indent=""):
        kind, prov, pairs = it
        out = []
        for var, val in pairs:
            out += assign(style, var, val, indent)
        self.item(kind, prov, out)


_sp = []
_dp = []


def next_secret():
    global _sp
    if not _sp:
        _sp = SECRET_PROVIDERS[:]
        R.shuffle(_sp)
    p = _sp.pop()
    return ("secret", p, S[p]())


def next_decoy():
    global _dp
    if not _dp:
        _dp = DECOY_PROVIDERS[:]
        R.shuffle(_dp)
    p = _dp.pop()
    return ("decoy", p, D[p]())


BEARERABLE = [p for p in SECRET_PROVIDERS if p not in ("aws", "aws-session", "azure-storage", "postgres-uri", "mysql-uri", "mongodb-uri", "password",
                                                     "pem-rsa", "pem-pkcs8", "slack-webhook", "datadog", "twilio", "twilio-apikey")]


def bearer_secret():
    p = R.choice(BEARERABLE)
    return ("secret", p, S[p]())


def mix(ns=None, nd=None):
    ns = R.randrange(0, 3) if ns is None else ns
    nd = R.randrange(0, 3) if nd is None else nd
    items = [next_secret() for _ in range(ns)] + [next_decoy() for _ in range(nd)]
    R.shuffle(items)
    return items


def filler_kv(style, n, indent=""):
    out = []
    for _ in range(n):
        k = R.choice(["LOG_LEVEL", "PORT", "REGION", "TIMEOUT_SECONDS", "FEATURE_FLAGS", "SERVICE_NAME", "MAX_RETRIES", "CACHE_TTL", "ENVIRONMENT", "BUCKET_NAME"])
        v = {"LOG_LEVEL": "info", "PORT": str(R.choice([8080, 3000, 5432, 443])), "REGION": R.choice(["us-east-1", "eu-west-1", "ap-south-1"]),
             "TIMEOUT_SECONDS": str(R.randrange(5, 120)), "FEATURE_FLAGS": "beta_ui,fast_checkout", "SERVICE_NAME": R.choice(WORDS) + "-svc",
             "MAX_RETRIES": str(R.randrange(1, 9)), "CACHE_TTL": "3600", "ENVIRONMENT": R.choice(["production", "staging"]),
             "BUCKET_NAME": f"acme-{R.choice(WORDS)}-artifacts"}[k]
        out += assign(style, k, v, indent)
    return out


# ---------------------------------------------------------------- templates
def t_tfvars(fb):
    fb.add("# terraform.tfvars - %s environment" % R.choice(["prod", "staging"]), "")
    fb.add(*filler_kv("hcl", 3))
    for it in mix(R.randrange(1, 3)):
        fb.kv("hcl", it)
    fb.add('instance_type = "t3.medium"', 'tags = { team = "platform", owner = "%s" }' % R.choice(USERS))


def t_tf_provider(fb):
    fb.add('terraform {', '  required_providers {', '    aws = { source = "hashicorp/aws", version = "~> 5.0" }', '  }', '}', '', 'provider "aws" {', '  region     = "us-east-1"')
    it = R.choice([next_secret, next_decoy])() if R.random() < 0.3 else ("secret", "aws", S["aws"]())
    fb.item(it[0], it[1], [f'  {"access_key" if i == 0 else "secret_key" if i == 1 else "token"}      = "{v}"' for i, (_, v) in enumerate(it[2])] if it[1].startswith("aws") else assign("hcl", *it[2][0], indent="  "))
    fb.add('}', '', 'resource "aws_s3_bucket" "logs" {', '  bucket = "acme-logs-%s"' % rs(LO, 6), '}')


def t_gha(fb):
    fb.add("name: CI", "on:", "  push:", "    branches: [main]", "  pull_request:", "", "jobs:", "  build:", "    runs-on: ubuntu-latest", "    env:")
    fb.add(*filler_kv("yaml-env", 2, "      "))
    for it in mix(R.randrange(1, 3), R.randrange(0, 3)):
        fb.kv("yaml-env", it, "      ")
    fb.add("    steps:", "      - uses: actions/checkout@v4", "      - uses: actions/setup-node@v4", "        with:", "          node-version: 20",
           "      - run: npm ci", "      - run: npm test")
    if R.random() < 0.5:
        it = bearer_secret()
        v = it[2][-1][1]
        if "\n" not in v:
            fb.item(*it[:2], [f'      - run: curl -sf -H "Authorization: Bearer {v}" https://api.example-deploy.io/v1/release'])


def t_compose(fb):
    fb.add("version: '3.8'", "services:", "  app:", f"    image: ghcr.io/acme/{R.choice(WORDS)}:1.{R.randrange(30)}.0", "    ports:", '      - "8080:8080"', "    environment:")
    for it in mix(R.randrange(1, 3), R.randrange(0, 3)):
        kind, prov, pairs = it
        if any("\n" in v for _, v in pairs):
            fb.kv("yaml-env", it, "      ")
        else:
            fb.item(kind, prov, [f"      - {k}={v}" for k, v in pairs])
    fb.add("  db:", "    image: postgres:16", "    environment:")
    if R.random() < 0.5:
        fb.item("secret", "password", [f"      POSTGRES_PASSWORD: {pw()}"])
    else:
        fb.item("decoy", "env-ref", ["      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?err}"])
    fb.add("    volumes:", "      - pgdata:/var/lib/postgresql/data", "volumes:", "  pgdata: {}")


def t_jenkins(fb):
    fb.add("pipeline {", "  agent { label 'linux' }", "  environment {")
    for it in mix(R.randrange(1, 3), 1):
        fb.kv("groovy", it, "    ")
    fb.add("    REGISTRY = credentials('registry-creds')", "  }", "  stages {", "    stage('Build') {", "      steps {", "        sh './gradlew build'", "      }", "    }",
           "    stage('Deploy') {", "      steps {")
    if R.random() < 0.6:
        p = pw()
        fb.item("secret", "password", [f"        sh 'sshpass -p \"{p}\" ssh deploy@10.0.{R.randrange(255)}.{R.randrange(255)} ./deploy.sh'"])
    fb.add("      }", "    }", "  }", "}")


def t_ansible(fb):
    fb.add("---", f"# group_vars/{R.choice(['all', 'webservers', 'dbservers'])}.yml", "ansible_user: deploy", "ntp_servers:", "  - 0.pool.ntp.org")
    for it in mix(R.randrange(1, 3), R.randrange(0, 3)):
        fb.kv("yaml", it)
    if R.random() < 0.5:
        fb.item("decoy", "ansible-vault", ["vault_db_password: !vault |", "  $ANSIBLE_VAULT;1.1;AES256"] + ["  " + rs(DIG + "abcdef", 80) for _ in range(5)])


def t_helm(fb):
    fb.add("replicaCount: 2", "image:", f"  repository: acme/{R.choice(WORDS)}", "  tag: \"2.4.1\"", "", "config:")
    for it in mix(R.randrange(1, 3), R.randrange(0, 3)):
        fb.kv("yaml", it, "  ")
    fb.add("", "resources:", "  limits:", "    cpu: 500m", "    memory: 512Mi")


def t_k8s_secret(fb):
    fb.add("apiVersion: v1", "kind: Secret", "metadata:", f"  name: {R.choice(WORDS)}-credentials", "  namespace: prod", "type: Opaque", "data:")
    for it in mix(R.randrange(1, 3), 1):
        kind, prov, pairs = it
        fb.item(kind, prov, [f"  {k.lower()}: {base64.b64encode(v.encode()).decode()}" for k, v in pairs])
    fb.add("stringData:")
    for it in mix(1, 0):
        fb.kv("yaml", it, "  ")


def t_kubeconfig(fb):
    fb.add("apiVersion: v1", "kind: Config", "clusters:", "- cluster:", f"    certificate-authority-data: {base64.b64encode(pem('CERTIFICATE', bytes(R.getrandbits(8) for _ in range(700))).encode()).decode()}",
           f"    server: https://{rs(HEX, 32).upper()}.gr7.us-east-1.eks.amazonaws.com", "  name: prod", "contexts:", "- context:", "    cluster: prod", "    user: admin", "  name: prod",
           "current-context: prod", "users:", "- name: admin", "  user:")
    if R.random() < 0.5:
        fb.add(f"    client-certificate-data: {base64.b64encode(pem('CERTIFICATE', bytes(R.getrandbits(8) for _ in range(600))).encode()).decode()}")
        fb.item("secret", "kube-client-key", [f"    client-key-data: {base64.b64encode(pem_rsa().encode()).decode()}"])
    else:
        fb.item("secret", "kube-sa-token", [f"    token: {k8s_sa_jwt()}"])


def t_npmrc(fb):
    fb.add("registry=https://registry.npmjs.org/", "@acme:registry=https://npm.pkg.github.com/")
    if R.random() < 0.7:
        fb.item("secret", "npm", [f"//registry.npmjs.org/:_authToken={crc_token('npm_')}"])
    else:
        fb.item("decoy", "env-ref", ["//registry.npmjs.org/:_authToken=${NPM_TOKEN}"])
    fb.item("secret", "github-classic", [f"//npm.pkg.github.com/:_authToken={crc_token('ghp_')}"])
    fb.add("always-auth=true")


def t_pypirc(fb):
    fb.add("[distutils]", "index-servers =", "    pypi", "    testpypi", "", "[pypi]", "username = __token__")
    fb.item("secret", "pypi", ["password = pypi-AgEIcHlwaS5vcmc" + rs(B64U, 160)])
    fb.add("", "[testpypi]", "repository = https://test.pypi.org/legacy/", "username = __token__", "password = <your test.pypi token>")
    fb.truth.append({"kind": "decoy", "provider": "placeholder", "path": fb.path, "line": len(fb.lines), "end_line": len(fb.lines)})


def t_netrc(fb):
    fb.add("machine api.heroku.com", f"  login {R.choice(USERS)}@acme.io")
    fb.item("secret", "heroku", [f"  password {rs(HEX, 8)}-{rs(HEX, 4)}-{rs(HEX, 4)}-{rs(HEX, 4)}-{rs(HEX, 12)}"])
    fb.add("machine github.com", f"  login {R.choice(USERS)}")
    fb.item("secret", "github-classic", [f"  password {crc_token('ghp_')}"])


def t_gitcreds(fb):
    for _ in range(R.randrange(1, 3)):
        k = R.randrange(3)
        if k == 0:
            fb.item("secret", "github-classic", [f"https://{R.choice(USERS)}:{crc_token('ghp_')}@github.com"])
        elif k == 1:
            fb.item("secret", "gitlab", [f"https://oauth2:glpat-{rs(ALNUM + '_-', 20)}@gitlab.com"])
        else:
            fb.item("secret", "basic-auth-url", [f"https://{R.choice(USERS)}:{pw()}@bitbucket.corp.example.net"])


def t_aws_creds(fb):
    for prof in ["default", R.choice(WORDS) + "-prod"]:
        fb.add(f"[{prof}]")
        it = ("secret", "aws", S["aws"]()) if R.random() < 0.75 else ("decoy", "aws-doc-example", D["aws-doc-example"]())
        fb.item(it[0], it[1], [f"{k.lower()} = {v}" for k, v in it[2]])
        fb.add("region = us-east-1", "")


def t_docker_cfg(fb):
    reg = R.choice(["https://index.docker.io/v1/", "ghcr.io", f"{rs(DIG, 12)}.dkr.ecr.us-east-1.amazonaws.com", "registry.gitlab.com"])
    fb.add("{", '  "auths": {', f'    "{reg}": {{')
    fb.item("secret", "docker-config-auth", [f'      "auth": "{base64.b64encode((R.choice(USERS) + ":" + pw()).encode()).decode()}"'])
    fb.add("    }", "  },", '  "credsStore": "desktop"', "}")


def t_postman(fb):


    col = {"info": {"_postman_id": "%s-%s-4%s-a%s-%s" % (rs(HEX, 8), rs(HEX, 4), rs(HEX, 3), rs(HEX, 3), rs(HEX, 12)), "name": f"{R.choice(WORDS).title()} API", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"}}
    fb.add("{", f'  "info": {json.dumps(col["info"])},', '  "item": [', "    {", '      "name": "List resources",', '      "request": {', '        "method": "GET",', '        "header": [')
    it = bearer_secret()
    v = it[2][-1][1]
    fb.item(it[0], it[1], [f'          {{"key": "Authorization", "value": "Bearer {v}", "type": "text"}}'])
    fb.add("        ],", f'        "url": "https://api.{R.choice(WORDS)}.example.com/v2/resources"', "      }", "    }", "  ],", '  "variable": [')
    d = next_decoy()
    fb.item(d[0], d[1], [f'    {{"key": "{d[2][0][0].lower()}", "value": "{esc(d[2][0][1])}"}}'])
    fb.add("  ]", "}")


def t_notebook(fb):
    cells = []
    def code(src, outputs=None):
        return {"cell_type": "code", "execution_count": R.randrange(1, 40), "metadata": {}, "outputs": outputs or [], "source": src}
    png = base64.b64encode(bytes(R.getrandbits(8) for _ in range(R.randrange(6000, 30000)))).decode()
    # build JSON manually line by line so we know line numbers
    fb.add("{", ' "cells": [')
    fb.add("  {", '   "cell_type": "code",', '   "execution_count": 1,', '   "metadata": {},', '   "outputs": [],', '   "source": [',
           '    "import os\\n",', '    "import pandas as pd\\n",')
    for it in mix(R.randrange(1, 3), R.randrange(0, 2)):
        kind, prov, pairs = it
        fb.item(kind, prov, [f'    "{k.lower()} = \\"{esc(esc(v))}\\"\\n",' if "\n" in v else f'    "{k.lower()} = \\"{v}\\"\\n",' for k, v in pairs])
    fb.add('    "client = Client(api_key=api_key)"', "   ]", "  },")
    fb.add("  {", '   "cell_type": "code",', '   "execution_count": 2,', '   "metadata": {},', '   "outputs": [', "    {", '     "data": {',
           f'      "image/png": "{png}",', '      "text/plain": ["<Figure size 640x480 with 1 Axes>"]', "     },", '     "metadata": {},', '     "output_type": "display_data"', "    },",
           "    {", '     "name": "stdout",', '     "output_type": "stream",', '     "text": [')
    if R.random() < 0.5:
        it = next_secret()
        v = it[2][-1][1]
        if "\n" not in v:
            fb.item(it[0], it[1], [f'      "Connected with token {v}\\n",'])
    fb.add('      "rows: 1204\\n"', "     ]", "    }", "   ],", '   "source": ["df.plot()"]', "  }", " ],",
           ' "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},', ' "nbformat": 4,', ' "nbformat_minor": 5', "}")


def t_code(style, ext):
    def f(fb):
        hdr = {"java": ["package com.acme.%s;" % R.choice(WORDS), "", "import java.net.http.HttpClient;", "", "public class ApiConfig {"],
               "go": ["package config", "", "import \"os\"", "", "var ("],
               "cs": ["using System;", "", "namespace Acme.Services", "{", "    public static class Settings", "    {"],
               "php": ["<?php", "", "return ["],
               "rb": ["# config/initializers/services.rb", "SERVICES = {"],
               "py": ["import os", "import requests", "", ""],
               "js": ["'use strict';", "const axios = require('axios');", ""],
               "ts": ["export const config = {"]}[style]
        fb.add(*hdr)
        ind = {"java": "    ", "go": "\t", "cs": "        ", "php": "    ", "rb": "  ", "py": "", "js": "", "ts": "  "}[style]
        for it in mix(R.randrange(1, 3), R.randrange(0, 3)):
            fb.kv(style, it, ind)
        if style == "py":
            fb.add("", "def fetch(path):", '    return requests.get(BASE_URL + path, headers={"X-Api-Key": os.environ.get("API_KEY", "")}).json()')
        if style == "py" and R.random() < 0.4:
            fb.item("decoy", "env-ref", ['API_TOKEN = os.getenv("API_TOKEN")'])
        ftr = {"java": ["", "    public static HttpClient client() { return HttpClient.newHttpClient(); }", "}"], "go": [")", "", "func Token() string { return os.Getenv(\"TOKEN\") }"],
               "cs": ["    }", "}"], "php": ["];"], "rb": ["}.freeze"], "py": [], "js": ["", "module.exports = { axios };"], "ts": ["};"]}[style]
        fb.add(*ftr)
    return f


def t_history(fb):
    cmds = ["ls -la", "cd ~/src/" + R.choice(WORDS), "git status", "git pull --rebase", "kubectl get pods -n prod", "docker ps", "vim .env", "make test", "htop"]
    for _ in range(R.randrange(20, 60)):
        fb.add(R.choice(cmds))
        if R.random() < 0.08:
            k = R.randrange(6)
            if k == 0:
                it = ("secret", "aws", S["aws"]())
                fb.item(*it[:2], [f"export {a}={b}" for a, b in it[2]])
            elif k == 1:
                fb.item("secret", "password", [f"mysql -h {R.choice(HOSTS)} -u root -p'{pw()}' {R.choice(WORDS)}"])
            elif k == 2:
                fb.item("secret", "github-classic", [f"git remote set-url origin https://{crc_token('ghp_')}@github.com/acme/{R.choice(WORDS)}.git"])
            elif k == 3:
                it = bearer_secret()
                if "\n" not in it[2][-1][1]:
                    fb.item(it[0], it[1], [f'curl -H "Authorization: Bearer {it[2][-1][1]}" https://api.acme.io/v1/me'])
            elif k == 4:
                fb.item("secret", "docker-login", [f"docker login -u {R.choice(USERS)} -p {pw()} registry.acme.io"])
            else:
                d = next_decoy()
                fb.item(d[0], d[1], [f"echo {d[2][0][1]}"])


def t_cilog(fb):
    t = 0
    for i in range(R.randrange(300, 900)):
        t += R.randrange(1, 900)
        ts = "2024-05-%02dT%02d:%02d:%02d.%03dZ" % (R.randrange(1, 28), t // 3600000 % 24, t // 60000 % 60, t // 1000 % 60, t % 1000)
        msg = R.choice([f"Downloading {R.choice(WORDS)}-{R.randrange(9)}.{R.randrange(20)}.jar sha256={rs(HEX, 64)}", "Step 3/9 : RUN npm ci", f" ---> {rs(HEX, 12)}",
                        f"Successfully built {rs(HEX, 12)}", f"commit {rs(HEX, 40)}", f"PASS src/{R.choice(WORDS)}.test.ts ({R.randrange(100, 9000)} ms)",
                        f"##[group]Run actions/cache@{rs(HEX, 40)}", f"request_id={rs(HEX, 8)}-{rs(HEX, 4)}-{rs(HEX, 4)}-{rs(HEX, 4)}-{rs(HEX, 12)} status=200"])
        if R.random() < 0.006:
            it = next_secret()
            if "\n" not in it[2][-1][1]:
                k, v = it[2][-1]
                fb.item(it[0], it[1], [f"{ts} + {k}={v} ./scripts/release.sh"])
                continue
        if R.random() < 0.004:
            d = next_decoy()
            fb.item(d[0], d[1], [f"{ts} {d[2][0][0]}={d[2][0][1]}"])
            continue
        if R.random() < 0.003:
            fb.item("decoy", "masked", [f"{ts} + export API_TOKEN=***"])
            continue
        fb.add(f"{ts} {msg}")


def t_slack(fb):
    msgs = []
    fb.add("[")
    for i in range(R.randrange(20, 60)):
        u = "U" + rs(UP + DIG, 10)
        ts = f"{1700000000 + i * 97}.{rs(DIG, 6)}"
        if R.random() < 0.1:
            it = next_secret()
            v = it[2][-1][1]
            if "\n" not in v:
                fb.item(it[0], it[1], [f'  {{"type": "message", "user": "{u}", "text": "here is the {it[2][-1][0].lower().replace("_", " ")} for staging: {v}", "ts": "{ts}"}},'])
                continue
        if R.random() < 0.06:
            d = next_decoy()
            fb.item(d[0], d[1], [f'  {{"type": "message", "user": "{u}", "text": "use `{esc(d[2][0][1])}` in the docs", "ts": "{ts}"}},'])
            continue
        fb.add(f'  {{"type": "message", "user": "{u}", "text": "{R.choice(["lgtm", "deploying now", "can someone review #" + str(R.randrange(9999)), "standup in 5", "rolling back"])}", "ts": "{ts}"}},')
    fb.add('  {"type": "message", "user": "USLACKBOT", "text": "end", "ts": "1800000000.000000"}', "]")


def t_sql(fb):
    fb.add("-- MySQL dump 10.13  Distrib 8.0.36", "DROP TABLE IF EXISTS `users`;", "CREATE TABLE `users` (`id` int NOT NULL, `email` varchar(255), `password_hash` varchar(255), `api_token` varchar(255));",
           "LOCK TABLES `users` WRITE;")
    for i in range(R.randrange(100, 400)):
        h = "$2b$12$" + rs(ALNUM + "./", 53)
        fb.add(f"INSERT INTO `users` VALUES ({i + 1},'{R.choice(USERS)}{i}@example.com','{h}',NULL);")
    fb.add("UNLOCK TABLES;", "CREATE TABLE `integrations` (`id` int, `name` varchar(64), `secret` text);")
    for j, it in enumerate(mix(R.randrange(1, 3), 1)):
        kind, prov, pairs = it
        fb.item(kind, prov, [f"INSERT INTO `integrations` VALUES ({j + 1},'{k.lower()}','{esc(v)}');" for k, v in pairs])


def t_reg(fb):
    fb.add("Windows Registry Editor Version 5.00", "", f"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Acme\\{R.choice(WORDS).title()}Agent]", '"InstallDir"="C:\\\\Program Files\\\\Acme"', '"Version"="4.2.0"')
    for it in mix(R.randrange(1, 3), R.randrange(0, 2)):
        fb.kv("reg", it)


def t_ps1(fb):
    fb.add("#Requires -Version 5.1", "param([string]$Environment = 'prod')", "Set-StrictMode -Version Latest", "")
    for it in mix(R.randrange(1, 3), R.randrange(0, 2)):
        fb.kv("ps1", it)
    if R.random() < 0.6:
        p = pw()
        fb.item("secret", "password", [f'$secpass = ConvertTo-SecureString "{p}" -AsPlainText -Force'])
    fb.add("$cred = New-Object System.Management.Automation.PSCredential ('ACME\\svc_backup', $secpass)", "Invoke-Command -ComputerName SRV01 -Credential $cred -ScriptBlock { Get-Service }")


def t_confluence(fb):
    fb.add("<!DOCTYPE html>", "<html><head><title>Runbook: %s service</title></head>" % R.choice(WORDS), "<body>", '<div id="main-content" class="wiki-content">', "<h1>Access</h1>",
           "<p>Use the shared credentials below until SSO is rolled out.</p>", "<table class=\"confluenceTable\"><tbody>")
    for it in mix(R.randrange(1, 3), R.randrange(1, 3)):
        kind, prov, pairs = it
        fb.item(kind, prov, [f'<tr><td class="confluenceTd">{k}</td><td class="confluenceTd"><code>{v.replace(chr(10), "<br/>")}</code></td></tr>' for k, v in pairs])
    fb.add("</tbody></table>", "<p>Last updated by %s</p>" % R.choice(USERS), "</div></body></html>")


def t_env(fb):
    fb.add("# generated by setup.sh", "NODE_ENV=production")
    fb.add(*filler_kv("env", 3))
    for it in mix(R.randrange(1, 4), R.randrange(0, 3)):
        fb.kv("env", it)


def t_env_example(fb):
    fb.add("# Copy to .env and fill in real values")
    for it in mix(0, R.randrange(2, 5)):
        fb.kv("env", it)
    fb.add(*filler_kv("env", 2))


def t_xml(fb):
    fb.add('<?xml version="1.0" encoding="utf-8"?>', "<configuration>", "  <appSettings>")
    for it in mix(R.randrange(1, 3), R.randrange(0, 2)):
        fb.kv("xml", it, "    ")
    fb.add("  </appSettings>", "  <connectionStrings>")
    if R.random() < 0.6:
        fb.item("secret", "mssql-connstr", [f'    <add name="Default" connectionString="Server=tcp:{R.choice(WORDS)}-sql.database.windows.net,1433;Database={R.choice(WORDS)};User ID={R.choice(USERS)};Password={pw()};Encrypt=True;" />'])
    else:
        fb.item("decoy", "mssql-integrated", ['    <add name="Default" connectionString="Server=(localdb)\\MSSQLLocalDB;Database=Dev;Trusted_Connection=True;" />'])
    fb.add("  </connectionStrings>", "</configuration>")


def t_props(fb):
    fb.add("# application.properties", "server.port=8080", "spring.jpa.hibernate.ddl-auto=validate")
    for it in mix(R.randrange(1, 3), R.randrange(0, 2)):
        fb.kv("props", it)


def t_pem_file(fb):
    k = R.choice([pem_rsa, pem_openssh, pem_pkcs8])
    prov = {pem_rsa: "pem-rsa", pem_openssh: "pem-openssh", pem_pkcs8: "pem-pkcs8"}[k]
    fb.item("secret", prov, [k()])


def t_pub_file(fb):
    if R.random() < 0.5:
        fb.item("decoy", "certificate", [pem("CERTIFICATE", bytes(R.getrandbits(8) for _ in range(900)))])
    else:
        fb.item("decoy", "public-key", [pem("PUBLIC KEY", bytes(R.getrandbits(8) for _ in range(294)))])


def t_gcp(fb):
    txt = gcp_sa_json()
    ls = txt.split("\n")
    # the whole key file is the credential: a finding anywhere in the object counts
    fb.item("secret", "gcp-service-account", ls)


def t_lockfile(fb):
    fb.add("{", '  "name": "web",', '  "lockfileVersion": 3,', '  "packages": {')
    for _ in range(R.randrange(60, 200)):
        n = rs(LO, R.randrange(3, 10))
        fb.add(f'    "node_modules/{n}": {{', f'      "version": "{R.randrange(10)}.{R.randrange(30)}.{R.randrange(30)}",',
               f'      "resolved": "https://registry.npmjs.org/{n}/-/{n}-1.0.0.tgz",', f'      "integrity": "sha512-{base64.b64encode(bytes(R.getrandbits(8) for _ in range(64))).decode()}"', "    },")
    fb.add('    "": {}', "  }", "}")


def t_minjs(fb):
    parts = []
    for _ in range(R.randrange(200, 600)):
        parts.append(R.choice([f"function {rs(LO, 2)}(e,t){{return e[{R.randrange(99)}]^t}}", f'var {rs(LO, 2)}="{rs(B64, R.randrange(20, 60))}";',
                               f'{rs(LO, 1)}.exports={{id:"{rs(HEX, 20)}"}};', f'"data:font/woff2;base64,{rs(B64, 200)}"']))
    fb.add(";".join(parts))
    if R.random() < 0.5:
        d = next_decoy()
        fb.item(d[0], d[1], [f'window.__CONFIG__={{"{d[2][0][0]}":"{esc(d[2][0][1])}"}};'])
    else:
        fb.item("secret", "google-api", [f'window.__CONFIG__={{mapsKey:"AIza{rs(B64U, 35)}",env:"prod"}};'])


def t_readme(fb):
    fb.add(f"# {R.choice(WORDS).title()} service", "", "## Configuration", "", "Set the following variables:", "", "```bash")
    for it in mix(0, R.randrange(2, 4)):
        fb.kv("sh", it)
    fb.add("```", "", "Run `make dev` to start.")


def t_clean(fb):
    for _ in range(R.randrange(30, 120)):
        fb.add(R.choice([f"def {rs(LO, 6)}(x):", f"    return x * {R.randrange(100)}", f"# TODO({R.choice(USERS)}): refactor", f"CACHE_KEY = \"{R.choice(WORDS)}:v{R.randrange(9)}\"",
                         f"token_type = \"bearer\"", f"password_field = request.form['password']", f"assert hashlib.sha1(b).hexdigest() == \"{rs(HEX, 40)}\"", ""]))


TEMPLATES = [
    ("infra/{w}/terraform.tfvars", t_tfvars, 14), ("infra/{w}/main.tf", t_tf_provider, 8), (".github/workflows/{w}.yml", t_gha, 14),
    ("deploy/{w}/docker-compose.yml", t_compose, 10), ("ci/{w}/Jenkinsfile", t_jenkins, 8), ("ansible/group_vars/{w}.yml", t_ansible, 8),
    ("charts/{w}/values.yaml", t_helm, 10), ("k8s/{w}/secret.yaml", t_k8s_secret, 6), ("home/{u}/.kube/config", t_kubeconfig, 6),
    ("home/{u}/.npmrc", t_npmrc, 5), ("home/{u}/.pypirc", t_pypirc, 4), ("home/{u}/.netrc", t_netrc, 4), ("home/{u}/.git-credentials", t_gitcreds, 5),
    ("home/{u}/.aws/credentials", t_aws_creds, 6), ("home/{u}/.docker/config.json", t_docker_cfg, 5), ("postman/{w}.postman_collection.json", t_postman, 8),
    ("notebooks/{w}_analysis.ipynb", t_notebook, 8), ("src/main/java/com/acme/{W}Config.java", t_code("java", "java"), 10), ("internal/{w}/config.go", t_code("go", "go"), 10),
    ("src/{W}.Api/Settings.cs", t_code("cs", "cs"), 8), ("config/{w}.php", t_code("php", "php"), 8), ("config/initializers/{w}.rb", t_code("rb", "rb"), 7),
    ("scripts/{w}_sync.py", t_code("py", "py"), 12), ("web/src/{w}.js", t_code("js", "js"), 8), ("web/src/config/{w}.ts", t_code("ts", "ts"), 6),
    ("home/{u}/.bash_history", t_history, 6), ("logs/ci/{w}-build.log", t_cilog, 6), ("exports/slack/{w}/2024-05-{d}.json", t_slack, 6),
    ("backups/{w}_dump.sql", t_sql, 4), ("windows/{w}.reg", t_reg, 5), ("windows/{w}-deploy.ps1", t_ps1, 6), ("wiki/{w}-runbook.html", t_confluence, 6),
    ("services/{w}/.env", t_env, 12), ("services/{w}/.env.example", t_env_example, 8), ("dotnet/{w}/web.config", t_xml, 5),
    ("java/{w}/src/main/resources/application.properties", t_props, 6), ("keys/{w}/id_{k}", t_pem_file, 6), ("keys/{w}/{k}.pub.pem", t_pub_file, 5),
    ("gcp/{w}-sa.json", t_gcp, 4), ("web/{w}/package-lock.json", t_lockfile, 4), ("web/{w}/dist/app.{h}.min.js", t_minjs, 5), ("docs/{w}/README.md", t_readme, 8),
    ("lib/{w}/util_{h}.py", t_clean, 12),
]


def main():
    root = os.path.join(OUT, "corpus")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(root)
    truth = []
    used = set()
    for pattern, fn, count in TEMPLATES:
        for i in range(count):
            while True:
                w = R.choice(WORDS) + ("" if R.random() < 0.5 else "-" + rs(LO, 4))
                rel = pattern.format(w=w, W=w.title().replace("-", ""), u=R.choice(USERS), d="%02d" % R.randrange(1, 29), k=R.choice(["rsa", "ed25519", "deploy"]), h=rs(HEX, 8))
                if rel not in used:
                    used.add(rel)
                    break
            fb = FB(rel)
            fn(fb)
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", newline="\n") as f:
                f.write("\n".join(fb.lines) + "\n")
            truth += fb.truth
    with open(os.path.join(OUT, "truth.jsonl"), "w") as f:
        for t in truth:
            f.write(json.dumps(t, sort_keys=True) + "\n")
    ns = sum(t["kind"] == "secret" for t in truth)
    print(f"files={len(used)} secrets={ns} decoys={len(truth) - ns} providers={len({t['provider'] for t in truth if t['kind'] == 'secret'})}")


if __name__ == "__main__":
    main()
