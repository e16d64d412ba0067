#!/usr/bin/env bash
# Read benchmark: one run, printed as a markdown table.
#   - cold sequential read of a 1 GiB file through the mount vs curl straight from the emulator
#   - warm re-read; `ls -lR` time and API calls on a 10,000-file tree
#   - random 4 KiB read IOPS (fio); peak RSS of the mount daemon
# Everything runs on 127.0.0.1 against `boxfs emulator --seed bench` in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v fio >/dev/null 2>&1 || need+=(fio)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else echo "missing: ${need[*]}" >&2; exit 1; fi
fi

cargo build --release --locked -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/boxfs
WORK=$(mktemp -d /tmp/boxfs-bench.XXXXXX)
MNT=$WORK/mnt
mkdir -p "$MNT"
EMU_PID=""; MOUNT_PID=""
cleanup() {
  fusermount3 -uz "$MNT" 2>/dev/null || true
  [ -n "$MOUNT_PID" ] && kill "$MOUNT_PID" 2>/dev/null || true
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

echo "seeding the benchmark data set (1 GiB + 10,000 files)..." >&2
"$BIN" emulator --data "$WORK/emu" --seed bench > "$WORK/env" 2> "$WORK/emu.log" &
EMU_PID=$!
for _ in $(seq 1 600); do [ "$(wc -l < "$WORK/env")" -ge 3 ] && break; sleep 0.5; done
# shellcheck disable=SC1091
. "$WORK/env"
export BOX_API_URL BOX_UPLOAD_URL BOX_ACCESS_TOKEN
BASE=${BOX_API_URL%/2.0}
api() { curl -sf -H "Authorization: Bearer $BOX_ACCESS_TOKEN" "$BOX_API_URL$1"; }
stat_total() { curl -sf "$BASE/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_requests"])'; }
stat_listings() { curl -sf "$BASE/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"].get("GET /2.0/folders/{id}/items",0))'; }
reset_stats() { curl -sf -X DELETE "$BASE/_emulator/stats" >/dev/null; }

BENCH_ID=$(api "/folders/0/items" | python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin)["entries"] if e["name"]=="bench"][0])')
BIG_ID=$(api "/folders/$BENCH_ID/items" | python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin)["entries"] if e["name"]=="big.bin"][0])')

# Direct: curl of the same file from the emulator (the physical limit here).
t0=$(now); curl -sfL -H "Authorization: Bearer $BOX_ACCESS_TOKEN" -o /dev/null "$BOX_API_URL/files/$BIG_ID/content"; t1=$(now)
DIRECT=$(elapsed "$t0" "$t1")

BOXFS_NOTIFY_READY=1 "$BIN" mount "$MNT" --foreground --cache-dir "$WORK/cache" --read-only > "$WORK/ready" 2> "$WORK/mount.log" &
MOUNT_PID=$!
for _ in $(seq 1 100); do grep -q ready "$WORK/ready" 2>/dev/null && break; sleep 0.2; done
grep -q ready "$WORK/ready" || { echo "mount failed:" >&2; cat "$WORK/mount.log" >&2; exit 1; }

sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
# Dropping caches also evicted the emulator's copy of the file, which the direct curl above read
# from memory: read it once more (untimed) so both sides are served by the same, warm, emulator.
# "Cold" is boxfs's state: a fresh mount with an empty cache dir.
curl -sfL -H "Authorization: Bearer $BOX_ACCESS_TOKEN" -o /dev/null "$BOX_API_URL/files/$BIG_ID/content"
t0=$(now); cat "$MNT/bench/big.bin" > /dev/null; t1=$(now)
COLD=$(elapsed "$t0" "$t1")
t0=$(now); cat "$MNT/bench/big.bin" > /dev/null; t1=$(now)
WARM=$(elapsed "$t0" "$t1")

reset_stats
t0=$(now); ls -lR "$MNT/bench/tree" > /dev/null; t1=$(now)
LS_COLD=$(elapsed "$t0" "$t1"); LS_CALLS=$(stat_total); LS_LISTINGS=$(stat_listings)
reset_stats
t0=$(now); ls -lR "$MNT/bench/tree" > /dev/null; t1=$(now)
LS_WARM=$(elapsed "$t0" "$t1"); LS_WARM_CALLS=$(stat_total)

FIO_JSON=$(fio --name=randread --filename="$MNT/bench/big.bin" --readonly --rw=randread --bs=4k --size=1G \
  --ioengine=psync --numjobs=4 --runtime=15 --time_based --group_reporting --output-format=json 2>/dev/null)
IOPS=$(echo "$FIO_JSON" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))')

RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$MOUNT_PID/status")
MIB=1024
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
mbps() { python3 -c "print(f'{$MIB / $1:.0f}')"; }

cat <<TABLE
| measurement | result |
|---|---|
| cold sequential read, 1 GiB, through the mount | ${COLD} s ($(mbps "$COLD") MiB/s) |
| same file with curl straight from the emulator | ${DIRECT} s ($(mbps "$DIRECT") MiB/s) |
| mount / direct throughput ratio (target ≥ 0.9) | $(ratio "$DIRECT" "$COLD") |
| warm re-read, 1 GiB | ${WARM} s ($(mbps "$WARM") MiB/s) |
| \`ls -lR\` of 10,000 files in 100 folders, cold | ${LS_COLD} s, ${LS_CALLS} API calls (${LS_LISTINGS} listings) |
| \`ls -lR\` again within the TTL | ${LS_WARM} s, ${LS_WARM_CALLS} API calls |
| random 4 KiB reads (fio, 4 jobs, psync) | ${IOPS} IOPS |
| peak RSS of the mount daemon (target ≤ 100 MiB) | $((RSS_KB / 1024)) MiB |
TABLE
