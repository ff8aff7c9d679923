#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo, idempotently: the real IP databases from
# npm (into target/ipdb) and nftables and iptables, whose check modes validate the blocklists.
# Run as root on a fresh machine (CI), or with sudo; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup-ipdb.sh
if ! command -v nft >/dev/null || ! command -v iptables-restore >/dev/null; then
	echo "setup-test-tools: installing nftables and iptables (the blocklist tests validate with them)"
	if [ "$(id -u)" = 0 ]; then
		apt-get install -y -q nftables iptables >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q nftables iptables >/dev/null; }
	else
		sudo apt-get install -y -q nftables iptables >/dev/null
	fi
fi
