#!/usr/bin/env bash
# Regenerates the HAR fixtures in crates/cli/tests/fixtures/har (or in $1).
# Installs what it needs: Debian's chromium (if /usr/bin/chromium is missing) and
# playwright-core from package-lock.json. Secrets are FAKE and fixed by the seed in
# secrets.js; only timestamps, ports, the multipart boundary and the JWTs (iat/exp)
# change from one run to the next.
set -euo pipefail
cd "$(dirname "$0")"
OUT="${1:-../../crates/cli/tests/fixtures/har}"

if [ ! -x /usr/bin/chromium ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
fi

if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi

node capture.js "$OUT"
node flavours.js "$OUT"
echo "fixtures written to $(cd "$OUT" && pwd)"
