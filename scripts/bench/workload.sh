#!/usr/bin/env bash
# Real tools on the mount against the local disk, in one run: sqlite (200 autocommit inserts;
# one transaction of 10,000), git (clone of a local repository, then 20 commits), tar x of a
# source tree, rsync -a twice, and 100 editor-style saves (write a temp file, fsync, rename
# over the original). Each step runs on the local disk, then on the mount (emulator on
# loopback, default write-back settings); after each mount step `boxfs sync` waits for the
# uploads (not timed) and the emulator's counters give the API calls and uploads the step
# cost. Then everything is checked after a remount with an empty cache: git fsck, sqlite's
# integrity_check, and the trees byte for byte. Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
. scripts/bench/lib.sh
bench_setup workload fusermount3 python3 sqlite3 git rsync tar curl
start_emulator
start_mount
LOCAL=$WORK/local; mkdir -p "$LOCAL"

stats() { curl -s "${BOX_API_URL%/2.0}/_emulator/stats"; }
reset_stats() { curl -s -X DELETE "${BOX_API_URL%/2.0}/_emulator/stats" >/dev/null; }
# calls uploads: from the counters, after a sync.
counts() {
  stats | python3 -c '
import json, sys
s = json.load(sys.stdin)["requests"]
ups = sum(v for k, v in s.items() if k.startswith("POST /api/2.0/files/") and (k.endswith("/content") or k.endswith("upload_sessions")))
print(sum(s.values()), ups)'
}

# A source tree and its tarball (the project's own files at HEAD).
git -C "$REPO" archive --format=tar HEAD > "$WORK/tree.tar"
FILES=$(tar tf "$WORK/tree.tar" | grep -vc '/$')

# SQL for a table and N inserts of 100-byte rows, each its own transaction or all in one.
inserts_sql() {
  python3 - "$1" "$2" <<'PY'
import sys
n, one_transaction = int(sys.argv[1]), sys.argv[2] == "tx"
print("CREATE TABLE t(i INTEGER PRIMARY KEY, s TEXT);")
print("BEGIN;" if one_transaction else "")
for i in range(n):
    print(f"INSERT INTO t(s) VALUES ('row {i} {'x' * 100}');")
print("COMMIT;" if one_transaction else "")
PY
}
sqlite_autocommit() { inserts_sql 200 auto | sqlite3 "$1/auto.db"; }
sqlite_transaction() { inserts_sql 10000 tx | sqlite3 "$1/tx.db"; }
git_work() {
  git clone -q --no-hardlinks "$REPO" "$1/clone"
  for i in $(seq 1 20); do
    echo "change $i" >> "$1/clone/README.md"
    git -C "$1/clone" -c user.name=bench -c user.email=bench@example.com commit -qam "bench commit $i"
  done
}
tar_x() { mkdir "$1/tree" && tar xf "$WORK/tree.tar" -C "$1/tree"; }
rsync_1() { rsync -a "$WORK/src-tree/" "$1/rsync/"; }
rsync_2() { rsync -a "$WORK/src-tree/" "$1/rsync/"; }
saves() {
  python3 - "$1/notes.txt" <<'PY'
import os, sys
path = sys.argv[1]
for i in range(100):
    tmp = f"{path}.{i}.tmp"
    with open(tmp, "w") as f:
        f.write(f"save {i}\n" * 100)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
PY
}
mkdir -p "$WORK/src-tree" && tar xf "$WORK/tree.tar" -C "$WORK/src-tree"

echo "| step | local disk | boxfs | ratio | API calls | uploads |"
echo "|---|---|---|---|---|---|"
run_step() {
  local label=$1 fn=$2 t0 t1 local_s mount_s calls ups
  sync
  t0=$(now); "$fn" "$LOCAL"; t1=$(now); local_s=$(elapsed "$t0" "$t1")
  sync
  reset_stats
  t0=$(now); "$fn" "$MNT"; t1=$(now); mount_s=$(elapsed "$t0" "$t1")
  "$BIN" sync --quiet "$MNT"
  read -r calls ups < <(counts)
  echo "| $label | ${local_s} s | ${mount_s} s | $(python3 -c "print(f'{$mount_s / max($local_s, 0.001):.1f}×')") | $calls | $ups |"
}
run_step "sqlite: 200 autocommit inserts" sqlite_autocommit
run_step "sqlite: one transaction of 10,000 inserts" sqlite_transaction
run_step "git clone (local repository) + 20 commits" git_work
run_step "tar x of a source tree ($FILES files)" tar_x
run_step "rsync -a of that tree" rsync_1
run_step "rsync -a again (nothing to copy)" rsync_2
run_step "100 editor saves (temp, fsync, rename)" saves

# Everything in Box, read back through a fresh mount with an empty cache.
"$BIN" sync --quiet "$MNT"
fusermount3 -u "$MNT"; wait "$MOUNT_PID" 2>/dev/null || true; MOUNT_PID=""
rm -rf "$WORK/cache"
start_mount
fail=0
# check LABEL COMMAND...: one line saying whether COMMAND succeeded.
check() {
  local label=$1; shift
  if "$@" >/dev/null 2>&1; then echo "- ok: $label"; else echo "- FAILED: $label"; fail=1; fi
}
echo
echo "After boxfs sync and a remount with an empty cache:"
check "git fsck --strict of the clone" git -C "$MNT/clone" fsck --strict
check "the clone's last commit has the local clone's tree" \
  test "$(git -C "$MNT/clone" rev-parse "HEAD^{tree}")" = "$(git -C "$LOCAL/clone" rev-parse "HEAD^{tree}")"
check "sqlite integrity_check, 200 rows" \
  test "$(sqlite3 "$MNT/auto.db" 'pragma integrity_check; select count(*) from t')" = "$(printf 'ok\n200')"
check "sqlite integrity_check, 10,000 rows" \
  test "$(sqlite3 "$MNT/tx.db" 'pragma integrity_check; select count(*) from t')" = "$(printf 'ok\n10000')"
check "the tar tree equals the local one byte for byte" diff -r "$LOCAL/tree" "$MNT/tree"
check "the rsync tree equals the local one byte for byte" diff -r "$LOCAL/rsync" "$MNT/rsync"
check "the saved file equals the local one" diff "$LOCAL/notes.txt" "$MNT/notes.txt"
exit $fail
