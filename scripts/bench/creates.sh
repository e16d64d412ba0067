#!/usr/bin/env bash
# Create benchmark: 5,000 empty files created (and closed) in one folder of the mount, with
# uploads held back by a long write-back delay, so it measures the local create path alone
# (name check, journal, listing edit). Prints a markdown table row.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
bench_setup creates fusermount3 python3
start_emulator
start_mount --writeback-delay-ms 600000
mkdir "$MNT/d"
SECS=$(python3 - "$MNT/d" <<'PY'
import os, sys, time
d = sys.argv[1]; t = time.monotonic()
for i in range(5000):
    os.close(os.open(f"{d}/file-{i:05}.txt", os.O_CREAT | os.O_WRONLY, 0o644))
print(f"{time.monotonic() - t:.2f}")
PY
)
echo "| 5,000 creates in one folder (uploads held back) | ${SECS} s |"
# The pending uploads are not wanted: leave them to the temp dir's removal.
{ kill -9 "$MOUNT_PID"; wait "$MOUNT_PID"; } 2>/dev/null || true
