#!/usr/bin/env bash
# Read benchmark: one run, printed as a markdown table.
#   - cold sequential read of a 1 GiB file through the mount vs curl straight from the emulator
#   - warm re-read; `ls -lR` time and API calls on a 10,000-file tree
#   - random 4 KiB read IOPS (fio); peak RSS of the mount daemon
#   - the floor of a cold read for any FUSE client on this machine (examples/fuse_floor.rs)
# Everything runs on 127.0.0.1 against `boxfs emulator --seed bench` in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."

. scripts/bench/lib.sh
bench_setup bench fio curl fusermount3 python3
cargo build --release --locked -q --example fuse_floor
FLOOR_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/fuse_floor

echo "seeding the benchmark data set (1 GiB + 10,000 files)..." >&2
start_emulator --seed bench
BASE=${BOX_API_URL%/2.0}
api() { curl -sf -H "Authorization: Bearer $BOX_ACCESS_TOKEN" "$BOX_API_URL$1"; }
stat_total() { curl -sf "$BASE/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_requests"])'; }
stat_listings() { curl -sf "$BASE/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"].get("GET /2.0/folders/{id}/items",0))'; }
reset_stats() { curl -sf -X DELETE "$BASE/_emulator/stats" >/dev/null; }

BENCH_ID=$(api "/folders/0/items" | python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin)["entries"] if e["name"]=="bench"][0])')
BIG_ID=$(api "/folders/$BENCH_ID/items" | python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin)["entries"] if e["name"]=="big.bin"][0])')

# Direct: curl of the same file from the emulator (the physical limit here), once seeding's
# writes are on disk.
sync
t0=$(now); curl -sfL -H "Authorization: Bearer $BOX_ACCESS_TOKEN" -o /dev/null "$BOX_API_URL/files/$BIG_ID/content"; t1=$(now)
DIRECT=$(elapsed "$t0" "$t1")

start_mount --read-only

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

# The floor: the two costs no FUSE client of this emulator can avoid, on the same two cores:
# downloading the file (curl) and handing 1 GiB through FUSE (`cat` of a filesystem that answers
# reads from memory), run at once. curl's time over this is the best ratio any client could reach.
FLOOR_MNT=$WORK/floor; mkdir -p "$FLOOR_MNT"
"$FLOOR_BIN" "$FLOOR_MNT" $((1024 * 1024 * 1024)) 2>> "$WORK/floor.log" &
EXTRA_PIDS+=($!); EXTRA_MNTS+=("$FLOOR_MNT")
for _ in $(seq 1 100); do mountpoint -q "$FLOOR_MNT" && break; sleep 0.1; done
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
curl -sfL -H "Authorization: Bearer $BOX_ACCESS_TOKEN" -o /dev/null "$BOX_API_URL/files/$BIG_ID/content"
t0=$(now)
curl -sfL -H "Authorization: Bearer $BOX_ACCESS_TOKEN" -o /dev/null "$BOX_API_URL/files/$BIG_ID/content" &
CURL_PID=$!
cat "$FLOOR_MNT/big" > /dev/null
wait "$CURL_PID"; t1=$(now)
FLOOR=$(elapsed "$t0" "$t1")
fusermount3 -u "$FLOOR_MNT"
MIB=1024
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
mbps() { python3 -c "print(f'{$MIB / $1:.0f}')"; }

cat <<TABLE
| measurement | result |
|---|---|
| cold sequential read, 1 GiB, through the mount | ${COLD} s ($(mbps "$COLD") MiB/s) |
| same file with curl straight from the emulator | ${DIRECT} s ($(mbps "$DIRECT") MiB/s) |
| mount / direct throughput ratio (target ≥ 0.9) | $(ratio "$DIRECT" "$COLD") |
| floor: curl of the file and \`cat\` through a FUSE fs serving from memory, at once | ${FLOOR} s |
| best ratio any FUSE client could reach here (direct / floor) | $(ratio "$DIRECT" "$FLOOR") |
| warm re-read, 1 GiB | ${WARM} s ($(mbps "$WARM") MiB/s) |
| \`ls -lR\` of 10,000 files in 100 folders, cold | ${LS_COLD} s, ${LS_CALLS} API calls (${LS_LISTINGS} listings) |
| \`ls -lR\` again within the TTL | ${LS_WARM} s, ${LS_WARM_CALLS} API calls |
| random 4 KiB reads (fio, 4 jobs, psync) | ${IOPS} IOPS |
| peak RSS of the mount daemon (target ≤ 100 MiB) | $((RSS_KB / 1024)) MiB |
TABLE
