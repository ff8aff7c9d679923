#!/usr/bin/env bash
# Keywatch benchmark: generate the corpus (if absent), install the peer scanners, build
# Keywatch, run each tool on the corpus under /usr/bin/time -v with a warm page cache, score
# the results by location against the ground truth, and print a Markdown table.
#
# Environment:
#   TOOLS="keywatch kingfisher ripsecrets detect-secrets"  tools to run (any subset, any order)
#   SEED=20240611 SIZE_MB=520      corpus parameters (a different value regenerates the corpus)
#   CORPUS=bench/corpus OUT=bench/out
#   TOOL_TIMEOUT=3600              seconds before a tool run is killed (reported as timeout)
#   KW_ARGS / KF_ARGS / RS_ARGS / DS_ARGS   extra arguments for keywatch / kingfisher /
#                                  ripsecrets / detect-secrets
#   SKIP_BUILD=1                   use the existing target/release/keywatch
#   SCORE_ONLY=1                   run nothing: re-score the outputs already in $OUT
#   REPEAT=3                       run each tool N times (default 1): the table shows the
#                                  median wall time and the largest peak RSS; the last run is scored
# Outputs in $OUT: <tool>.{json,txt} raw output, <tool>.time (time -v), <tool>.stderr,
# <tool>-score.json, <tool>-report.md (per-provider recall, FP locations), results.md.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(git -C "$BENCH" rev-parse --show-toplevel 2>/dev/null || (cd "$BENCH/.." && pwd))
CORPUS=${CORPUS:-$BENCH/corpus}
OUT=${OUT:-$BENCH/out}
SEED=${SEED:-20240611}
SIZE_MB=${SIZE_MB:-520}
TOOLS=${TOOLS:-"keywatch kingfisher ripsecrets detect-secrets"}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-3600}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$(dirname "$CORPUS")"
CORPUS=$(cd "$(dirname "$CORPUS")" && pwd)/$(basename "$CORPUS")
OUT=$(cd "$OUT" && pwd)
META=$(dirname "$CORPUS")/corpus-meta.json
TRUTH=$(dirname "$CORPUS")/corpus-truth.jsonl

log() { printf '==> %s\n' "$*" >&2; }

for t in $TOOLS; do
  case $t in keywatch|kingfisher|ripsecrets|detect-secrets) ;; *) echo "unknown tool: $t" >&2; exit 2 ;; esac
done

# ---- 1. corpus --------------------------------------------------------------------------
corpus_ok() {
  [ -d "$CORPUS" ] && [ -f "$META" ] && [ -f "$TRUTH" ] || return 1
  "$PY" - "$META" "$SEED" "$SIZE_MB" "$CORPUS" "$BENCH/gen_corpus.py" <<'EOF'
import json, re, sys
m = json.load(open(sys.argv[1]))
gv = int(re.search(r"^GEN_VERSION = (\d+)", open(sys.argv[5]).read(), re.M).group(1))
ok = (m.get("seed") == int(sys.argv[2]) and float(m.get("size_mb")) == float(sys.argv[3])
      and m.get("out") == sys.argv[4] and m.get("truth_problems", 0) == 0 and m.get("generator_version") == gv)
sys.exit(0 if ok else 1)
EOF
}
if corpus_ok; then
  log "corpus present: $CORPUS ($(grep -o '"bytes": [0-9]*' "$META" | cut -d' ' -f2) bytes)"
else
  log "generating corpus (seed $SEED, $SIZE_MB MiB) into $CORPUS"
  "$PY" "$BENCH/gen_corpus.py" --seed "$SEED" --size-mb "$SIZE_MB" --out "$CORPUS" >/dev/null
fi

# ---- 2. peers ---------------------------------------------------------------------------
KF_BIN="" KF_CACHE="" RS_BIN="" DS_BIN=""
INSTALL="$ROOT/../shared/bench/install-peers.sh"
needs_peers=0
for t in $TOOLS; do [ "$t" != keywatch ] && needs_peers=1; done
if [ "$needs_peers" = 1 ]; then
  if [ "${SCORE_ONLY:-0}" = 1 ]; then
    [ -f "$OUT/peers.txt" ] || : > "$OUT/peers.txt"
    KF_BIN=$(grep -o '[^ ]*/kingfisher scan' "$OUT/peers.txt" | head -1 | sed 's/ scan$//' || true)
    RS_BIN=$(grep '^ripsecrets:' "$OUT/peers.txt" | awk '{print $2}' || true)
    DS_BIN=$(grep -o '[^ ]*/detect-secrets scan' "$OUT/peers.txt" | head -1 | sed 's/ scan$//' || true)
  elif [ -f "$INSTALL" ]; then
    log "installing peers via $INSTALL"
    bash "$INSTALL" > "$OUT/peers.txt"
    KF_BIN=$(grep -o '[^ ]*/kingfisher scan' "$OUT/peers.txt" | head -1 | sed 's/ scan$//' || true)
    KF_CACHE=$(grep -o 'KF_RULE_CACHE_DIR=[^ ]*' "$OUT/peers.txt" | head -1 | cut -d= -f2- || true)
    RS_BIN=$(grep '^ripsecrets:' "$OUT/peers.txt" | awk '{print $2}' || true)
    DS_BIN=$(grep -o '[^ ]*/detect-secrets scan' "$OUT/peers.txt" | head -1 | sed 's/ scan$//' || true)
  else
    log "no $INSTALL: skipping the peer install (peers on PATH are still used)"
  fi
  [ -n "$KF_BIN" ] || KF_BIN=$(command -v kingfisher || true)
  [ -n "$RS_BIN" ] || RS_BIN=$(command -v ripsecrets || true)
  [ -n "$DS_BIN" ] || DS_BIN=$(command -v detect-secrets || true)
  [ -n "$KF_CACHE" ] || KF_CACHE="$OUT/kf-cache"
fi

# ---- 3. keywatch build ------------------------------------------------------------------
KW_BIN="$ROOT/target/release/keywatch"
KW_BUILD_FAILED=0
if [[ " $TOOLS " == *" keywatch "* ]] && [ "${SKIP_BUILD:-0}" != 1 ] && [ "${SCORE_ONLY:-0}" != 1 ]; then
  log "building keywatch (release)"
  if ! (cd "$ROOT" && cargo build --release -p keywatch) > "$OUT/keywatch-build.log" 2>&1; then
    log "keywatch build failed: see $OUT/keywatch-build.log"
    KW_BUILD_FAILED=1
  fi
fi

# ---- 4. warm cache ----------------------------------------------------------------------
if [ "${SCORE_ONLY:-0}" != 1 ]; then
  log "warming the page cache"
  find "$CORPUS" -type f -print0 | xargs -0 cat > /dev/null
fi

# ---- 5. run and score -------------------------------------------------------------------
run_tool() {  # name, output file, ok exit codes, cwd, command...
  local name=$1 outf=$2 okrc=$3 cwd=$4; shift 4
  [ "${SCORE_ONLY:-0}" = 1 ] && return 0
  rm -f "$OUT/$name".{json,txt,time,stderr,status,version} "$OUT/$name".time.* "$OUT/$name-score.json" "$OUT/$name-report.md"
  log "running $name: $*"
  local rc=0 i
  for ((i = 1; i <= ${REPEAT:-1}; i++)); do
    rc=0
    if [ "$outf" = "-" ]; then
      (cd "$cwd" && /usr/bin/time -v -o "$OUT/$name.time.$i" timeout "$TOOL_TIMEOUT" "$@") \
        > /dev/null 2> "$OUT/$name.stderr" || rc=$?
    else
      (cd "$cwd" && /usr/bin/time -v -o "$OUT/$name.time.$i" timeout "$TOOL_TIMEOUT" "$@") \
        > "$outf" 2> "$OUT/$name.stderr" || rc=$?
    fi
    cp "$OUT/$name.time.$i" "$OUT/$name.time"
    [ "$rc" = 124 ] && break
  done
  if [ "$rc" = 124 ]; then
    echo "timeout (${TOOL_TIMEOUT}s)" > "$OUT/$name.status"
  elif [[ " $okrc " != *" $rc "* ]]; then
    echo "failed (exit $rc)" > "$OUT/$name.status"
  fi
  log "$name exit $rc"
}

score_tool() {  # name, format, input, cwd
  local name=$1 fmt=$2 input=$3 cwd=$4
  if [ -s "$input" ]; then
    "$PY" "$BENCH/score.py" score --tool "$name" --format "$fmt" --input "$input" --truth "$TRUTH" \
      --corpus "$CORPUS" --cwd "$cwd" --json "$OUT/$name-score.json" --report "$OUT/$name-report.md" >&2 \
      || echo "scoring failed" >> "$OUT/$name.status"
  else
    echo "no output" >> "$OUT/$name.status"
  fi
}

for t in $TOOLS; do
  case $t in
    keywatch)
      if [ "$KW_BUILD_FAILED" = 1 ] || [ ! -x "$KW_BIN" ]; then
        rm -f "$OUT"/keywatch.{json,time,status,version} "$OUT/keywatch-score.json"
        echo "not built" > "$OUT/keywatch.status"; continue
      fi
      rel=$(realpath --relative-to="$ROOT" "$CORPUS")
      # shellcheck disable=SC2086
      run_tool keywatch - "0 1" "$ROOT" "$KW_BIN" scan "$rel" --format json --output "$OUT/keywatch.json" ${KW_ARGS:-}
      "$KW_BIN" --version > "$OUT/keywatch.version" 2>/dev/null || echo "keywatch ?" > "$OUT/keywatch.version"
      score_tool keywatch keywatch "$OUT/keywatch.json" "$ROOT"
      ;;
    kingfisher)
      if [ -z "$KF_BIN" ]; then echo "not installed" > "$OUT/kingfisher.status"; continue; fi
      [ "${SCORE_ONLY:-0}" = 1 ] || {
      mkdir -p "$KF_CACHE"
      # one untimed run on a tiny directory so the compiled rule cache exists (a warm start)
      tiny=$(mktemp -d); echo "x = 1" > "$tiny/a.py"
      KF_RULE_CACHE_DIR=$KF_CACHE "$KF_BIN" scan "$tiny" --no-validate --no-update-check --git-history none \
        --format json --output "$tiny/o.json" -q > /dev/null 2>&1 || true
      rm -rf "$tiny"; }
      # shellcheck disable=SC2086
      run_tool kingfisher - "0 200 205" "$BENCH" env KF_RULE_CACHE_DIR="$KF_CACHE" "$KF_BIN" scan "$CORPUS" \
        --no-validate --no-update-check --git-history none --format json --output "$OUT/kingfisher.json" ${KF_ARGS:-}
      "$KF_BIN" --version 2>/dev/null | head -1 > "$OUT/kingfisher.version" || true
      score_tool kingfisher kingfisher "$OUT/kingfisher.json" "$BENCH"
      ;;
    ripsecrets)
      if [ -z "$RS_BIN" ]; then echo "not installed" > "$OUT/ripsecrets.status"; continue; fi
      # shellcheck disable=SC2086
      run_tool ripsecrets "$OUT/ripsecrets.txt" "0 1" "$BENCH" "$RS_BIN" ${RS_ARGS:-} "$CORPUS"
      "$RS_BIN" --version 2>/dev/null | head -1 > "$OUT/ripsecrets.version" || true
      score_tool ripsecrets ripsecrets "$OUT/ripsecrets.txt" "$BENCH"
      ;;
    detect-secrets)
      if [ -z "$DS_BIN" ]; then echo "not installed" > "$OUT/detect-secrets.status"; continue; fi
      # -n: no network verification (the others run with validation off too)
      # shellcheck disable=SC2086
      run_tool detect-secrets "$OUT/detect-secrets.json" "0" "$CORPUS" "$DS_BIN" scan --all-files -n ${DS_ARGS:-} .
      echo "detect-secrets $("$DS_BIN" --version 2>/dev/null)" > "$OUT/detect-secrets.version"
      score_tool detect-secrets detect-secrets "$OUT/detect-secrets.json" "$CORPUS"
      ;;
  esac
done

# ---- 6. report --------------------------------------------------------------------------
{
  echo "## Keywatch benchmark ($(date -u +%Y-%m-%d))"
  echo
  "$PY" - "$META" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"Corpus: {m['files']} files, {m['bytes'] / 1e6:.0f} MB ({m['bytes'] / 2**20:.0f} MiB) in {m['repos']} synthetic repositories, "
      f"{m['secrets']} planted secrets, {m['decoys']} decoys (seed {m['seed']}, tree sha256 {m['tree_sha256'][:16]}).")
EOF
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))," \
       "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr); warm page cache; date $(date -u +%Y-%m-%dT%H:%MZ)."
  echo "MB = 10^6 bytes. findings, TP and FP count distinct (file, line) locations; recall counts planted secrets found."
  echo "Peak RSS is the largest single process (detect-secrets runs a pool of worker processes)."
  echo
  # every tool run now, plus earlier results still in $OUT (same corpus), in a fixed order
  table_tools=""
  for t in keywatch kingfisher ripsecrets detect-secrets; do
    if [[ " $TOOLS " == *" $t "* ]] || [ -f "$OUT/$t-score.json" ]; then table_tools="$table_tools $t"; fi
  done
  "$PY" "$BENCH/score.py" table --out-dir "$OUT" --tools "$table_tools" --baseline kingfisher --corpus-meta "$META"
} > "$OUT/results.md"
cat "$OUT/results.md"
