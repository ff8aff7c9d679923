#!/usr/bin/env bash
# HAR benchmark: build Keywatch, generate two large HAR files (if absent), then time, under
# /usr/bin/time -v with a warm page cache, `keywatch har sanitize` (one core), `keywatch har
# scan` (all cores and one core), Kingfisher on the same HAR (all cores and one core) and the
# peer HAR sanitisers installable from npm / PyPI (one core): npm `har-sanitizer` and PyPI
# `har-capture`. Scan outputs are scored against the ground truth (score.py score); each
# sanitiser's output is checked for planted secrets left behind (score.py residual). Prints a
# Markdown table of medians: tool, input, cores, wall s, MB/s (input bytes / wall), peak RSS MB.
#
# Environment:
#   SIZES="200mb:200 1gb:1024"   label:MiB pairs; the HAR is $CORPUS/session-<label>.har
#   SEED=20241128                generator seed (a different value regenerates the HARs)
#   CORPUS=bench/corpus/har  OUT=bench/out/har   (both gitignored; the truth goes to $OUT)
#   REPEAT=3                     runs per measurement; the table shows medians
#   PEER_REPEAT=$REPEAT          runs per measurement of the peer sanitisers (har-capture does
#                                about 1 MB/s: 1 GiB x 3 runs is most of an hour)
#   TOOLS="kw-sanitize kw-scan kw-scan-1c kingfisher kingfisher-1c har-sanitizer har-capture"
#   TOOL_TIMEOUT=3600            seconds before a run is killed (reported as timeout)
#   SKIP_BUILD=1                 use the existing target/release/keywatch (or KW_BIN=path)
#   RESIDUAL=0                   skip the residual-secrets check of sanitiser outputs
#   KEEP_OUTPUTS=0               delete sanitised HARs after the residual check (default keep)
#   PEERS_DIR=~/.cache/keywatch-peers   where the peers are installed
#   KW_ARGS / KF_ARGS            extra arguments for keywatch har scan / kingfisher
# Outputs in $OUT: <run>.time.N (time -v), <run>.stderr, <run>.status, <run>.runinfo.json,
# <run>-score.json and -report.md (scanners), <run>-residual.json (sanitisers), results.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH=$(dirname "$HERE")
ROOT=$(git -C "$BENCH" rev-parse --show-toplevel 2>/dev/null || (cd "$BENCH/.." && pwd))
CORPUS=${CORPUS:-$BENCH/corpus/har}
OUT=${OUT:-$BENCH/out/har}
SEED=${SEED:-20241128}
SIZES=${SIZES:-"200mb:200 1gb:1024"}
REPEAT=${REPEAT:-3}
TOOLS=${TOOLS:-"kw-sanitize kw-scan kw-scan-1c kingfisher kingfisher-1c har-sanitizer har-capture"}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-3600}
PEERS_DIR=${PEERS_DIR:-$HOME/.cache/keywatch-peers}
PEER_REPEAT=${PEER_REPEAT:-$REPEAT}
PY=${PYTHON:-python3}
mkdir -p "$CORPUS" "$OUT"
CORPUS=$(cd "$CORPUS" && pwd)
OUT=$(cd "$OUT" && pwd)
KW_BIN=${KW_BIN:-$ROOT/target/release/keywatch}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
has_tool() { [[ " $TOOLS " == *" $1 "* ]]; }
for t in $TOOLS; do
  case $t in kw-sanitize|kw-scan|kw-scan-1c|kingfisher|kingfisher-1c|har-sanitizer|har-capture) ;;
    *) die "unknown tool: $t" ;; esac
done
command -v taskset > /dev/null || die "taskset not found (util-linux)"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)"

# ---- 1. keywatch build and the `har` subcommands -----------------------------------------
needs_kw=0
for t in $TOOLS; do [[ $t == kw-* ]] && needs_kw=1; done
if [ "$needs_kw" = 1 ]; then
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "building keywatch (release)"
    (cd "$ROOT" && cargo build --release -p keywatch) > "$OUT/keywatch-build.log" 2>&1 \
      || die "cargo build --release -p keywatch failed: see $OUT/keywatch-build.log"
  fi
  [ -x "$KW_BIN" ] || die "$KW_BIN not found (build failed or SKIP_BUILD=1 without a build)"
  if ! "$KW_BIN" har sanitize --help > "$OUT/keywatch-har-help.txt" 2>&1; then
    cat "$OUT/keywatch-har-help.txt" >&2
    die "'keywatch har sanitize --help' failed: this keywatch has no 'har' command yet (drop the kw-* tools from TOOLS to bench only the peers)"
  fi
  if has_tool kw-scan || has_tool kw-scan-1c; then
    "$KW_BIN" har scan --help > /dev/null 2>&1 || die "'keywatch har scan --help' failed"
  fi
  "$KW_BIN" --version > "$OUT/keywatch.version" 2>/dev/null || echo "keywatch ?" > "$OUT/keywatch.version"
fi

# ---- 2. the HAR files -------------------------------------------------------------------
har_ok() {  # har, truth, meta, MiB
  [ -f "$1" ] && [ -f "$2" ] && [ -f "$3" ] || return 1
  "$PY" - "$3" "$SEED" "$4" "$1" "$HERE/gen_har.py" <<'EOF'
import json, os, re, sys
m = json.load(open(sys.argv[1]))
gv = int(re.search(r"^GEN_VERSION = (\d+)", open(sys.argv[5]).read(), re.M).group(1))
ok = (m.get("seed") == int(sys.argv[2]) and float(m.get("size_mb")) == float(sys.argv[3])
      and m.get("out") == sys.argv[4] and m.get("generator_version") == gv and os.path.getsize(sys.argv[4]) == m.get("bytes"))
sys.exit(0 if ok else 1)
EOF
}
LABELS=""
for s in $SIZES; do
  label=${s%%:*} mib=${s#*:}
  har="$CORPUS/session-$label.har" truth="$OUT/session-$label-truth.jsonl" meta="$OUT/session-$label-truth.meta.json"
  if har_ok "$har" "$truth" "$meta" "$mib"; then
    log "HAR present: $har ($(stat -c %s "$har") bytes)"
  else
    log "generating $har ($mib MiB, seed $SEED)"
    "$PY" "$HERE/gen_har.py" --size-mb "$mib" --seed "$SEED" --out "$har" --truth "$truth" --meta "$meta" > /dev/null
    log "  $("$PY" "$HERE/score.py" describe --meta "$meta")"
  fi
  LABELS="$LABELS $label"
done

# ---- 3. peers ---------------------------------------------------------------------------
KF_BIN="" KF_CACHE="$PEERS_DIR/kf-cache" HS_BIN="" HC_BIN=""
if has_tool kingfisher || has_tool kingfisher-1c; then
  INSTALL="$ROOT/../shared/bench/install-peers.sh"
  if [ -f "$INSTALL" ]; then
    log "installing peers via $INSTALL"
    PEERS_DIR=$PEERS_DIR bash "$INSTALL" > "$OUT/peers.txt" || log "peer install failed (see above)"
    KF_BIN=$(grep -o '[^ ]*/kingfisher scan' "$OUT/peers.txt" | head -1 | sed 's/ scan$//' || true)
    KF_CACHE=$(grep -o 'KF_RULE_CACHE_DIR=[^ ]*' "$OUT/peers.txt" | head -1 | cut -d= -f2- || echo "$KF_CACHE")
  fi
  [ -n "$KF_BIN" ] || KF_BIN=$(command -v kingfisher || true)
  [ -n "$KF_CACHE" ] || KF_CACHE="$PEERS_DIR/kf-cache"
  [ -n "$KF_BIN" ] && "$KF_BIN" --version 2>/dev/null | head -1 > "$OUT/kingfisher.version" || true
fi
if has_tool har-sanitizer; then  # npm har-sanitizer (Jose F. Romaniello), CLI bin/sanitize
  hs_dir="$PEERS_DIR/har/npm"
  if [ ! -f "$hs_dir/node_modules/har-sanitizer/bin/sanitize" ] && command -v npm > /dev/null; then
    log "installing npm har-sanitizer@2.0.0 into $hs_dir"
    mkdir -p "$hs_dir" && (cd "$hs_dir" && npm install --no-audit --no-fund --silent har-sanitizer@2.0.0) >&2 || true
  fi
  [ -f "$hs_dir/node_modules/har-sanitizer/bin/sanitize" ] && command -v node > /dev/null && HS_BIN="$hs_dir/node_modules/har-sanitizer/bin/sanitize"
  [ -n "$HS_BIN" ] && echo "har-sanitizer $(node -p 'require(process.argv[1]).version' "$hs_dir/node_modules/har-sanitizer/package.json" 2>/dev/null) (node $(node --version))" > "$OUT/har-sanitizer.version"
fi
if has_tool har-capture; then  # PyPI har-capture, `har-capture sanitize`
  hc_dir="$PEERS_DIR/har/venv"
  if [ ! -x "$hc_dir/bin/har-capture" ]; then
    log "installing PyPI har-capture[cli] into $hc_dir"
    { "$PY" -m venv "$hc_dir" && "$hc_dir/bin/pip" install -q --disable-pip-version-check 'har-capture[cli]'; } >&2 || true
  fi
  [ -x "$hc_dir/bin/har-capture" ] && HC_BIN="$hc_dir/bin/har-capture"
  [ -n "$HC_BIN" ] && echo "har-capture $("$hc_dir/bin/pip" show har-capture 2>/dev/null | awk '/^Version/ {print $2}')" > "$OUT/har-capture.version"
fi

# ---- 4. runs ----------------------------------------------------------------------------
ORDER=0
run() {  # run-name, tool label, input label, cores (1 = taskset -c 0, else all), ok exit codes, stdout file or -, command...
  local name=$1 tool=$2 label=$3 cores=$4 okrc=$5 stdout=$6; shift 6
  local har="$CORPUS/session-$label.har" rc=0 i pin=()
  ORDER=$((ORDER + 1))
  rm -f "$OUT/$name".time.* "$OUT/$name".{status,stderr} "$OUT/$name-score.json" "$OUT/$name-report.md" "$OUT/$name-residual.json"
  [ "$cores" = 1 ] && pin=(taskset -c 0)
  printf '{"tool": "%s", "input": "%s", "cores": %s, "bytes": %s, "order": %s}\n' "$tool" "session-$label.har" \
    "$([ "$cores" = 1 ] && echo 1 || nproc)" "$(stat -c %s "$har")" "$ORDER" > "$OUT/$name.runinfo.json"
  local repeat=${RUN_REPEAT:-$REPEAT}
  log "running $name ($repeat x): ${pin[*]} $*"
  cat "$har" > /dev/null  # warm the page cache
  for ((i = 1; i <= repeat; i++)); do
    rc=0
    if [ "$stdout" = "-" ]; then
      "${pin[@]}" /usr/bin/time -v -o "$OUT/$name.time.$i" timeout "$TOOL_TIMEOUT" "$@" > /dev/null 2> "$OUT/$name.stderr" || rc=$?
    else
      "${pin[@]}" /usr/bin/time -v -o "$OUT/$name.time.$i" timeout "$TOOL_TIMEOUT" "$@" > "$stdout" 2> "$OUT/$name.stderr" || rc=$?
    fi
    if [ "$rc" = 124 ]; then echo "timeout (${TOOL_TIMEOUT}s)" > "$OUT/$name.status"; break; fi
    if [[ " $okrc " != *" $rc "* ]]; then
      echo "failed (exit $rc): $( (grep -m1 -E '[A-Za-z]*(Error|error)[: ]' "$OUT/$name.stderr" || tail -c 200 "$OUT/$name.stderr") | tr '\n|' '  ' | cut -c1-200)" > "$OUT/$name.status"
      break
    fi
  done
  log "$name exit $rc"
  [ ! -f "$OUT/$name.status" ]
}

residual() {  # run-name, sanitised HAR, label
  local name=$1 out=$2 label=$3
  [ "${RESIDUAL:-1}" = 1 ] && [ -s "$out" ] || return 0
  "$PY" "$HERE/score.py" residual --har "$out" --truth "$OUT/session-$label-truth.jsonl" --json "$OUT/$name-residual.json" >&2 \
    || echo "residual check failed (output not JSON?)" >> "$OUT/$name.status"
  [ "${KEEP_OUTPUTS:-1}" = 1 ] || rm -f "$out"
}

score() {  # run-name, format, output, label
  local name=$1 fmt=$2 out=$3 label=$4
  if [ -s "$out" ]; then
    "$PY" "$HERE/score.py" score --tool "$name" --format "$fmt" --input "$out" --truth "$OUT/session-$label-truth.jsonl" \
      --json "$OUT/$name-score.json" --report "$OUT/$name-report.md" >&2 || echo "scoring failed" >> "$OUT/$name.status"
  else
    echo "no output" >> "$OUT/$name.status"
  fi
}

kf_warm() {
  mkdir -p "$KF_CACHE"
  local tiny; tiny=$(mktemp -d); echo "x = 1" > "$tiny/a.py"
  KF_RULE_CACHE_DIR=$KF_CACHE "$KF_BIN" scan "$tiny" --no-validate --no-update-check --git-history none \
    --format json --output "$tiny/o.json" -q > /dev/null 2>&1 || true
  rm -rf "$tiny"
}

# start from a clean table: only runs of this invocation are reported
rm -f "$OUT"/*.runinfo.json
mkdir -p "$OUT/inputs"
for label in $LABELS; do
  har="$CORPUS/session-$label.har"
  if has_tool kw-sanitize; then
    o="$OUT/kw-sanitize-$label.har"
    run "kw-sanitize-$label" "keywatch har sanitize" "$label" 1 "0 1" - "$KW_BIN" har sanitize "$har" -o "$o" \
      && residual "kw-sanitize-$label" "$o" "$label" || true
  fi
  for mode in kw-scan kw-scan-1c; do
    has_tool $mode || continue
    cores=all; [ $mode = kw-scan-1c ] && cores=1
    o="$OUT/$mode-$label.json"
    # shellcheck disable=SC2086
    run "$mode-$label" "keywatch har scan" "$label" $cores "0 1" - "$KW_BIN" har scan "$har" --format json --output "$o" ${KW_ARGS:-} || true
    score "$mode-$label" keywatch "$o" "$label"
  done
  for mode in kingfisher kingfisher-1c; do
    has_tool $mode || continue
    if [ -z "$KF_BIN" ]; then echo "not installed" > "$OUT/$mode-$label.status"; continue; fi
    kf_warm
    cores=all; [ $mode = kingfisher-1c ] && cores=1
    o="$OUT/$mode-$label.json"
    # --max-file-size 0: the default (256 MB) would skip the 1 GB HAR
    # shellcheck disable=SC2086
    run "$mode-$label" "kingfisher" "$label" $cores "0 200 205" - env KF_RULE_CACHE_DIR="$KF_CACHE" "$KF_BIN" scan "$har" \
      --no-validate --no-update-check --git-history none --max-file-size 0 --format json --output "$o" ${KF_ARGS:-} || true
    score "$mode-$label" kingfisher "$o" "$label"
  done
  if has_tool har-sanitizer; then
    if [ -z "$HS_BIN" ]; then echo "not installed" > "$OUT/har-sanitizer-$label.status"
    else
      o="$OUT/har-sanitizer-$label.har"
      # reads the whole file into one JS string and JSON.parse()s it; a larger heap so that the
      # default heap limit is not what fails (V8's maximum string length still applies)
      RUN_REPEAT=$PEER_REPEAT run "har-sanitizer-$label" "npm har-sanitizer" "$label" 1 "0" "$o" env NODE_OPTIONS=--max-old-space-size=16384 node "$HS_BIN" "$har" \
        && residual "har-sanitizer-$label" "$o" "$label" || true
    fi
  fi
  if has_tool har-capture; then
    if [ -z "$HC_BIN" ]; then echo "not installed" > "$OUT/har-capture-$label.status"
    else
      o="$OUT/har-capture-$label.har"
      ln -sfn "$har" "$OUT/inputs/session-$label.har"  # it writes <input>.review.json beside its input
      RUN_REPEAT=$PEER_REPEAT run "har-capture-$label" "PyPI har-capture" "$label" 1 "0" - "$HC_BIN" sanitize "$OUT/inputs/session-$label.har" -o "$o" \
        --max-size 0 --patterns base \
        && residual "har-capture-$label" "$o" "$label" || true
    fi
  fi
done

# ---- 5. report --------------------------------------------------------------------------
{
  echo "## Keywatch HAR benchmark ($(date -u +%Y-%m-%d))"
  echo
  for label in $LABELS; do
    echo "- session-$label.har: $("$PY" "$HERE/score.py" describe --meta "$OUT/session-$label-truth.meta.json")"
  done
  echo
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr); warm page cache."
  echo "Versions: $(cat "$OUT"/{keywatch,kingfisher,har-sanitizer,har-capture}.version 2>/dev/null | tr '\n' ';' | sed 's/;$//; s/;/; /g')."
  echo "MB = 10^6 bytes; MB/s = input bytes / wall. Wall and peak RSS: medians of the runs counted in 'runs'. cores 1 = taskset -c 0."
  echo "Scanners: recall of planted secrets and findings not in the truth (score.py); sanitisers: planted secrets still present in the output (score.py residual)."
  echo
  "$PY" "$HERE/score.py" table --out-dir "$OUT"
} > "$OUT/results.md"
cat "$OUT/results.md"
