#!/usr/bin/env python3
"""Writes the small seed inputs under fuzz/seeds/ (committed) and copies them into
fuzz/corpus/<target>/ (gitignored, where libFuzzer grows its corpus).

Run from anywhere: python3 fuzz/gen_seeds.py
"""
import gzip
import io
import os
import shutil
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
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
