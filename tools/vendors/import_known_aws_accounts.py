#!/usr/bin/env python3
"""Convert fwdcloudsec/known_aws_accounts' accounts.yaml into data/vendors/known_aws_accounts.toml.

Keywatch embeds the TOML output in its vendor catalogue so that a role trusting a foreign AWS
account can be attributed to the vendor that owns it.

Usage:
    import_known_aws_accounts.py ACCOUNTS_YAML [--output TOML] [--license LICENSE_FILE]

Only the standard library is used, so the YAML is read by a small parser that understands the
subset accounts.yaml is written in: a top-level list of mappings whose values are quoted or bare
scalars, flow lists (`[...]`, possibly spread over several lines) or block lists (`- item`).
Anything outside that subset is an error with its line number rather than a silent misreading.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

UPSTREAM_REPOSITORY = "fwdcloudsec/known_aws_accounts"
UPSTREAM_COMMIT = "c2922af"
UPSTREAM_FILE = "accounts.yaml"
UPSTREAM_LICENSE = "Apache-2.0"

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO_ROOT / "data" / "vendors" / "known_aws_accounts.toml"
LICENSE_COPY_NAME = "LICENSE-known_aws_accounts"

ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
KEY_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*):(?:\s+(?P<value>.*))?$")


class YamlSubsetError(ValueError):
    def __init__(self, path: Path, line_number: int, message: str) -> None:
        super().__init__(f"{path}:{line_number}: {message}")


@dataclass
class AccountOwner:
    line_number: int
    fields: dict[str, object] = field(default_factory=dict)


def strip_comment(text: str) -> str:
    """Drop a trailing `# comment` that is not inside a quoted string."""
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                # A doubled single quote is YAML's escape for one quote inside '...'.
                if quote == "'" and text[index + 1 : index + 2] == "'":
                    index += 1
                else:
                    quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or text[index - 1].isspace()):
            return text[:index].rstrip()
        index += 1
    return text.rstrip()


def parse_scalar(text: str, path: Path, line_number: int) -> object:
    text = text.strip()
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'"):
            raise YamlSubsetError(path, line_number, f"unterminated single-quoted string: {text}")
        return text[1:-1].replace("''", "'")
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise YamlSubsetError(path, line_number, f"unterminated double-quoted string: {text}")
        inner = text[1:-1]
        if "\\" in inner:
            raise YamlSubsetError(path, line_number, "escape sequences in double-quoted strings are not supported")
        return inner
    if text in ("true", "True", "yes"):
        return True
    if text in ("false", "False", "no"):
        return False
    if not text or text[0] in "[]{}&*!|>%@`":
        raise YamlSubsetError(path, line_number, f"unsupported YAML value: {text!r}")
    return text


def split_flow_list(body: str, path: Path, line_number: int) -> list[object]:
    """Split the inside of `[...]` at commas that are outside quotes."""
    items: list[object] = []
    current: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(body):
        char = body[index]
        if quote:
            current.append(char)
            if char == quote:
                if quote == "'" and body[index + 1 : index + 2] == "'":
                    current.append("'")
                    index += 1
                else:
                    quote = None
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == ",":
            items.append("".join(current))
            current = []
        elif char in "[]{}":
            raise YamlSubsetError(path, line_number, "nested collections are not supported")
        else:
            current.append(char)
        index += 1
    if quote:
        raise YamlSubsetError(path, line_number, "unterminated quoted string in list")
    items.append("".join(current))
    # A trailing comma before `]` is allowed in flow lists and leaves one empty piece behind.
    if items and not items[-1].strip():
        items.pop()
    return [parse_scalar(item, path, line_number) for item in items]


def parse_accounts_yaml(path: Path) -> list[AccountOwner]:
    lines = path.read_text(encoding="utf-8").splitlines()
    owners: list[AccountOwner] = []
    current: AccountOwner | None = None
    index = 0

    def set_field(key: str, value: object, line_number: int) -> None:
        assert current is not None
        if key in current.fields:
            raise YamlSubsetError(path, line_number, f"duplicate key {key!r}")
        current.fields[key] = value

    while index < len(lines):
        line_number = index + 1
        raw = lines[index]
        index += 1
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlSubsetError(path, line_number, "tabs are not allowed in YAML indentation")
        text = strip_comment(raw)
        if not text.strip():
            continue
        indent = len(text) - len(text.lstrip(" "))
        content = text.strip()

        if indent == 0:
            if not content.startswith("- "):
                raise YamlSubsetError(path, line_number, "expected a list item starting with '- '")
            current = AccountOwner(line_number=line_number)
            owners.append(current)
            content = content[2:].strip()
        elif current is None:
            raise YamlSubsetError(path, line_number, "indented line before the first list item")

        match = KEY_LINE.match(content)
        if not match:
            raise YamlSubsetError(path, line_number, f"expected 'key: value', found {content!r}")
        key, value = match.group("key"), (match.group("value") or "").strip()

        if value.startswith("["):
            # A flow list may continue over following lines until its closing bracket.
            collected = value
            while not strip_comment(collected).rstrip().endswith("]"):
                if index >= len(lines):
                    raise YamlSubsetError(path, line_number, f"list for {key!r} is never closed")
                collected += " " + strip_comment(lines[index]).strip()
                index += 1
            collected = strip_comment(collected).strip()
            set_field(key, split_flow_list(collected[1:-1], path, line_number), line_number)
        elif value == "":
            # A key with no value introduces a block list of `- item` lines indented below it.
            items: list[object] = []
            while index < len(lines):
                following = strip_comment(lines[index])
                if not following.strip():
                    index += 1
                    continue
                following_indent = len(following) - len(following.lstrip(" "))
                if following_indent <= indent or not following.strip().startswith("- "):
                    break
                items.append(parse_scalar(following.strip()[2:], path, index + 1))
                index += 1
            if not items:
                raise YamlSubsetError(path, line_number, f"key {key!r} has no value")
            set_field(key, items, line_number)
        else:
            set_field(key, parse_scalar(value, path, line_number), line_number)

    return owners


@dataclass
class OwnerEntry:
    name: str
    accounts: list[str]
    sources: list[str]
    owner_type: str | None


@dataclass
class Converted:
    kept: list[OwnerEntry]
    skipped_disabled: list[str]

    @property
    def account_count(self) -> int:
        return sum(len(entry.accounts) for entry in self.kept)


def as_string_list(owner: AccountOwner, key: str, path: Path) -> list[str]:
    value = owner.fields.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise YamlSubsetError(path, owner.line_number, f"{key!r} must be a string or a list of strings")
    return [item.strip() for item in value]


def convert(owners: list[AccountOwner], path: Path) -> Converted:
    if not owners:
        raise YamlSubsetError(path, 1, "no entries: expected a list of '- name: ...' mappings")
    kept: list[OwnerEntry] = []
    skipped: list[str] = []
    known_keys = {"name", "source", "accounts", "type", "enabled"}
    for owner in owners:
        unknown = set(owner.fields) - known_keys
        if unknown:
            raise YamlSubsetError(path, owner.line_number, f"unknown keys: {', '.join(sorted(unknown))}")
        name = owner.fields.get("name")
        if not isinstance(name, str) or not name.strip():
            raise YamlSubsetError(path, owner.line_number, "entry has no name")
        name = name.strip()
        enabled = owner.fields.get("enabled", True)
        if not isinstance(enabled, bool):
            raise YamlSubsetError(path, owner.line_number, f"{name}: 'enabled' must be true or false")
        accounts = as_string_list(owner, "accounts", path)
        if not accounts:
            raise YamlSubsetError(path, owner.line_number, f"{name}: no accounts")
        for account in accounts:
            if not ACCOUNT_ID.match(account):
                raise YamlSubsetError(path, owner.line_number, f"{name}: {account!r} is not a 12-digit AWS account id")
        if not enabled:
            skipped.append(name)
            continue
        owner_type = owner.fields.get("type")
        if owner_type is not None and (not isinstance(owner_type, str) or not owner_type.strip()):
            raise YamlSubsetError(path, owner.line_number, f"{name}: 'type' must be a non-empty string")
        kept.append(
            OwnerEntry(
                name=name,
                accounts=accounts,
                sources=as_string_list(owner, "source", path),
                owner_type=owner_type.strip() if isinstance(owner_type, str) else None,
            )
        )
    return Converted(kept=kept, skipped_disabled=skipped)


def toml_string(value: str) -> str:
    escaped = []
    for char in value:
        if char == "\\":
            escaped.append("\\\\")
        elif char == '"':
            escaped.append('\\"')
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def toml_string_list(values: list[str]) -> str:
    return "[" + ", ".join(toml_string(value) for value in values) + "]"


def render_toml(converted: Converted) -> str:
    lines = [
        "# AWS account ids publicly associated with the vendors (or AWS services) that own them.",
        f"# Origin: {UPSTREAM_REPOSITORY} @ {UPSTREAM_COMMIT}, {UPSTREAM_FILE}",
        f"# License: {UPSTREAM_LICENSE}, see {LICENSE_COPY_NAME} beside this file.",
        "# Generated by tools/vendors/import_known_aws_accounts.py; rerun it instead of editing by hand.",
        f"# {len(converted.kept)} owners, {converted.account_count} accounts, in upstream order.",
        "# Upstream entries marked `enabled: false` are left out"
        + (f": {', '.join(converted.skipped_disabled)}." if converted.skipped_disabled else " (there were none)."),
        "# `type`, where present, names the real owner (e.g. \"aws\") and `name` the service.",
    ]
    for entry in converted.kept:
        lines.append("")
        lines.append("[[account_owner]]")
        lines.append(f"name = {toml_string(entry.name)}")
        lines.append(f"accounts = {toml_string_list(entry.accounts)}")
        lines.append(f"sources = {toml_string_list(entry.sources)}")
        if entry.owner_type is not None:
            lines.append(f"type = {toml_string(entry.owner_type)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("accounts_yaml", type=Path, help="path to upstream accounts.yaml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}")
    parser.add_argument(
        "--license",
        type=Path,
        help=f"upstream license file to copy beside the output as {LICENSE_COPY_NAME}",
    )
    args = parser.parse_args(argv)

    try:
        converted = convert(parse_accounts_yaml(args.accounts_yaml), args.accounts_yaml)
    except (OSError, YamlSubsetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render_toml(converted), encoding="utf-8")
    if args.license:
        shutil.copyfile(args.license, args.output.parent / LICENSE_COPY_NAME)

    print(
        f"wrote {args.output}: {len(converted.kept)} owners, {converted.account_count} accounts; "
        f"skipped {len(converted.skipped_disabled)} disabled entries",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
