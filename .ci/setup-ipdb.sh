#!/usr/bin/env bash
# Installs the real IP databases that crates/activity/tests/enrich.rs reads, from the npm
# registry, into <repo>/target/ipdb/. Idempotent: does nothing when the pinned versions are
# already there. Prints where the files are.
#
#   @ip-location-db/geo-whois-asn-country-mmdb  country, MMDB, record = {"country_code": "US"}
#       geo-whois-asn-country.mmdb (v4+v6), -ipv4.mmdb, -ipv6.mmdb
#   @ip-location-db/asn                          ASN, CSV only (no MMDB on npm):
#       asn-ipv4.csv, asn-ipv6.csv   start_ip,end_ip,asn,"organisation"  (inclusive ranges)
#       asn-ipv4-num.csv, asn-ipv6-num.csv  the same with integer addresses
#
# Licences: country db CC BY 4.0 (NRO); ASN db CC BY 4.0 (RouteViews, DB-IP, NRO). Test use only.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: bump all three together. The packages are published with date-stamped versions.
VERSION=2.3.2026061719
COUNTRY_PKG=@ip-location-db/geo-whois-asn-country-mmdb
ASN_PKG=@ip-location-db/asn

DEST=target/ipdb
MODULES="$DEST/node_modules/@ip-location-db"
COUNTRY_FILE="$MODULES/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb"
ASN_V4_FILE="$MODULES/asn/asn-ipv4.csv"
ASN_V6_FILE="$MODULES/asn/asn-ipv6.csv"

installed_version() { # $1 = package dir; prints its version or nothing
	local json="$MODULES/$1/package.json"
	[ -f "$json" ] || return 0
	sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$json" | head -n 1
}

up_to_date() {
	[ -s "$COUNTRY_FILE" ] && [ -s "$ASN_V4_FILE" ] && [ -s "$ASN_V6_FILE" ] &&
		[ "$(installed_version geo-whois-asn-country-mmdb)" = "$VERSION" ] &&
		[ "$(installed_version asn)" = "$VERSION" ]
}

if up_to_date; then
	echo "setup-ipdb: IP databases $VERSION already in $DEST"
else
	command -v npm >/dev/null || {
		echo "setup-ipdb: npm is needed to fetch the IP databases" >&2
		exit 1
	}
	echo "setup-ipdb: installing $COUNTRY_PKG@$VERSION and $ASN_PKG@$VERSION into $DEST"
	mkdir -p "$DEST"
	# Both in one command: with --no-save npm prunes packages it was not asked for.
	npm install --prefix "$DEST" --no-save --no-audit --no-fund --no-package-lock \
		--loglevel=error "$COUNTRY_PKG@$VERSION" "$ASN_PKG@$VERSION"
	up_to_date || {
		echo "setup-ipdb: npm finished but the expected files are missing under $MODULES" >&2
		exit 1
	}
fi

for f in "$COUNTRY_FILE" "$ASN_V4_FILE" "$ASN_V6_FILE"; do
	printf 'setup-ipdb: %s (%s bytes)\n' "$(realpath "$f")" "$(wc -c <"$f" | tr -d ' ')"
done
