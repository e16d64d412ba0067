#!/usr/bin/env bash
# Metadata memory benchmark: 1,000,000 files (1,000 folders of 1,000, `--seed million`) seeded
# straight into the emulator. `ls -lR > /dev/null` runs twice over the mount; after each walk it
# prints the daemon's peak RSS (VmHWM) and its RSS now, then its RSS once the kernel dropped its
# dentries and inodes (forgetting them). A second mount with a small --metadata-cache-size
# walks again and prints the same, with the listing calls it took (evicted folders listed again).
#   METADATA_SMALL_CACHE  bytes of the small budget (default 16 MiB)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
bench_setup metadata_memory fusermount3 python3 curl
SMALL=${METADATA_SMALL_CACHE:-16777216}

T0=$(now)
start_emulator --seed million
echo "seeded 1,000,000 files in $(elapsed "$T0" "$(now)") s"

mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
rss() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$MOUNT_PID/status"; }
listing_calls() {
  curl -sf "${BOX_API_URL%/2.0}/_emulator/stats" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"].get("GET /2.0/folders/{id}/items",0))'
}

walk() {
  local label=$1 t0 t1
  t0=$(now); ls -lR "$MNT/million" > /dev/null; t1=$(now)
  echo "| $label | $(elapsed "$t0" "$t1") s | peak $(mib "$(rss VmHWM)") MiB | now $(mib "$(rss VmRSS)") MiB | listing calls so far $(listing_calls) |"
}

forget_all() {
  sync; echo 2 > /proc/sys/vm/drop_caches; sleep 2
  echo "| after the kernel forgot its inodes | | | now $(mib "$(rss VmRSS)") MiB | |"
}

echo "| run | time | daemon peak RSS | daemon RSS | |"
echo "|---|---|---|---|---|"
start_mount "$@"
walk "ls -lR, cold"
walk "ls -lR, again"
[ "$(id -u)" = 0 ] && forget_all
stop_mount

start_mount --metadata-cache-size "$SMALL" "$@"
walk "ls -lR, cold, --metadata-cache-size $SMALL"
walk "ls -lR, again, --metadata-cache-size $SMALL"
[ "$(id -u)" = 0 ] && forget_all
stop_mount
