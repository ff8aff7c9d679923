import os
import requests

# TODO: move to the secrets manager
GITHUB_TOKEN = "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"
AWS_DOCS_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key


def release(tag):
    headers = {"Authorization": f"token {GITHUB_TOKEN}"}
    return requests.post(f"https://api.github.com/repos/acme/billing/releases", json={"tag_name": tag}, headers=headers)
