#!/usr/bin/env python3
"""Generates large inventory exports for `keywatch inventory import` benchmarks.

Writes, into OUT_DIR: an AWS IAM credential report with USERS users (two access keys each, in
the report's exact column layout), and GitHub `/orgs/{org}/installations` pages and
fine-grained PAT grants. Deterministic for a given seed.

usage: gen.py OUT_DIR [--aws-users N] [--github-installations N] [--github-pats N] [--seed S]
"""
import argparse
import json
import os
import random

HEADER = ("user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
          "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
          "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
          "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
          "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
          "cert_1_last_rotated,cert_2_active,cert_2_last_rotated")
SERVICES = ["s3", "ec2", "sts", "iam", "secretsmanager", "dynamodb", "N/A"]
APPS = ["zapier", "snowflake", "datadog", "moveworks", "smartsheet", "circleci", "renovate", "sentry"]


def when(rng, year_from=2019):
    return "%d-%02d-%02dT%02d:%02d:%02d+00:00" % (rng.randint(year_from, 2024), rng.randint(1, 12),
                                                  rng.randint(1, 28), rng.randint(0, 23),
                                                  rng.randint(0, 59), rng.randint(0, 59))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--aws-users", type=int, default=450_000)
    ap.add_argument("--github-installations", type=int, default=50_000)
    ap.add_argument("--github-pats", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=20261128)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "credential-report.csv"), "w") as f:
        f.write(HEADER + "\n")
        for i in range(a.aws_users):
            user = "svc-%07d" % i
            keys = []
            for _ in range(2):
                used = when(rng, 2023) if rng.random() < 0.7 else "N/A"
                keys.append("%s,%s,%s,us-east-1,%s" % ("true" if rng.random() < 0.8 else "false",
                                                        when(rng), used, rng.choice(SERVICES)))
            f.write("%s,arn:aws:iam::123456789012:user/%s,%s,false,N/A,N/A,N/A,false,%s,%s,false,N/A,false,N/A\n"
                    % (user, user, when(rng), keys[0], keys[1]))
    per_page = 100
    with open(os.path.join(a.out, "installations.json"), "w") as f:
        for start in range(0, a.github_installations, per_page):
            items = []
            for i in range(start, min(start + per_page, a.github_installations)):
                perms = {"contents": rng.choice(["read", "write"]), "metadata": "read"}
                if rng.random() < 0.1:
                    perms["members"] = "write"
                items.append({"id": 10_000_000 + i, "account": {"login": "acme"},
                              "app_slug": "%s-%d" % (rng.choice(APPS), i), "repository_selection": "all",
                              "permissions": perms, "created_at": when(rng).replace("+00:00", "Z"),
                              "suspended_at": None})
            f.write(json.dumps({"total_count": a.github_installations, "installations": items}) + "\n")
    with open(os.path.join(a.out, "pats.json"), "w") as f:
        for start in range(0, a.github_pats, per_page):
            items = []
            for i in range(start, min(start + per_page, a.github_pats)):
                items.append({"id": 20_000_000 + i, "owner": {"login": "dev%d" % (i % 5000)},
                              "repository_selection": "selected",
                              "permissions": {"repository": {"contents": "read"}},
                              "access_granted_at": when(rng).replace("+00:00", "Z"),
                              "token_id": 30_000_000 + i, "token_name": "token %d" % i,
                              "token_expired": False, "token_expires_at": None,
                              "token_last_used_at": None})
            f.write(json.dumps(items) + "\n")


if __name__ == "__main__":
    main()
