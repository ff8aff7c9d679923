#!/usr/bin/env bash
# Git-history benchmark: builds a repository whose history adds the first repositories of the
# benchmark corpus over many commits (and rewrites some files in later commits), then times
# `keywatch scan --git` and Kingfisher's history scan on it. Uses the git command to *build*
# the fixture only; Keywatch reads history with libgit2.
#
#   bash bench/git_history.sh            # REPOS=40 COMMITS_PER_REPO=5 by default
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH/.." && pwd)
CORPUS=${CORPUS:-$BENCH/corpus}
OUT=${OUT:-$BENCH/out}
REPO=${GIT_REPO:-$OUT/history-repo}
REPOS=${REPOS:-40}
PEERS=${PEERS_DIR:-$HOME/.cache/keywatch-peers}
mkdir -p "$OUT"
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS: run bench/run.sh first" >&2; exit 2; }

if [ ! -d "$REPO/.git" ]; then
  rm -rf "$REPO"; mkdir -p "$REPO"
  git -C "$REPO" init -q
  git -C "$REPO" config user.name bench; git -C "$REPO" config user.email bench@example.org
  n=0
  for src in $(ls "$CORPUS" | sort | head -n "$REPOS"); do
    # Each corpus repository lands in five commits: its files split by name hash.
    for part in 0 1 2 3 4; do
      (cd "$CORPUS" && find "$src" -type f | sort | awk -v p=$part 'NR % 5 == p') > "$OUT/.batch"
      [ -s "$OUT/.batch" ] || continue
      (cd "$CORPUS" && tar -cf - -T "$OUT/.batch") | tar -xf - -C "$REPO"
      git -C "$REPO" add -A >/dev/null
      n=$((n + 1))
      GIT_AUTHOR_DATE="2024-01-01T00:00:00Z +$n" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z +$n" \
        git -C "$REPO" commit -q -m "add $src part $part"
    done
    # Then an edit: every tenth text file gets a line appended, making new blobs.
    find "$REPO/$src" -type f -name '*.md' | sort | awk 'NR % 10 == 0' | while read -r f; do echo "edited" >> "$f"; done
    git -C "$REPO" add -A >/dev/null
    n=$((n + 1))
    git -C "$REPO" commit -q -m "edit $src" || true
  done
  rm -f "$OUT/.batch"
fi
commits=$(git -C "$REPO" rev-list --all | wc -l)
size=$(du -sb "$REPO/.git" | cut -f1)
echo "repository: $commits commits, .git $((size / 1000000)) MB, worktree $(du -sm --exclude=.git "$REPO" | cut -f1) MiB"
cat "$REPO/.git/objects/pack/"* >/dev/null 2>&1 || true

[ -x "$ROOT/target/release/keywatch" ] || cargo build --release -p keywatch --manifest-path "$ROOT/Cargo.toml"
for i in 1 2 3; do
  /usr/bin/time -f "keywatch wall %e s, user %U s, max RSS %M KB" \
    "$ROOT/target/release/keywatch" scan --git "$REPO" --format json -o "$OUT/history-keywatch.json" || [ $? = 1 ]
done
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); s=d['stats']; print(f\"keywatch: {len(d['findings'])} findings, {s['blobs']} blobs, {s['commits']} commits\")" "$OUT/history-keywatch.json"
if [ -x "$PEERS/venv/bin/kingfisher" ]; then
  for i in 1 2 3; do
    /usr/bin/time -f "kingfisher wall %e s, user %U s, max RSS %M KB" env KF_RULE_CACHE_DIR="$PEERS/kf-cache" \
      "$PEERS/venv/bin/kingfisher" scan "$REPO" --no-validate --no-update-check --format json \
      --output "$OUT/history-kingfisher.json" >/dev/null 2>"$OUT/history-kingfisher.stderr" || true
    tail -1 "$OUT/history-kingfisher.stderr"
  done
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('kingfisher:', len(d.get('findings', [])), 'findings')" "$OUT/history-kingfisher.json"
else
  echo "kingfisher not installed in $PEERS (bash ../shared/bench/install-peers.sh)"
fi
