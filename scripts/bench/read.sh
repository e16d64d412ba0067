#!/usr/bin/env bash
# Read benchmark: one run, printed as a markdown table with two columns of results, on plain
# loopback and at Box-like network conditions (the emulator's --latency 100 --bandwidth
# 100000000: every response 100 ms late, each connection paced to 100 MB/s):
#   - cold sequential read of a 1 GiB file through the mount vs a single-connection curl straight
#     from the emulator (targets: >= 0.9x on loopback, >= 4x at latency 100, where the link is
#     per connection and only many ranged requests in flight fill it), and vs `cat` of the
#     same bytes from the local disk (the emulator's blob file, page cache dropped)
#   - warm re-read; `ls -lR` time and API calls on a 10,000-file tree
#   - random 4 KiB read IOPS (fio); peak RSS of the mount daemon
#   - on loopback, the floor of a cold read for any FUSE client on this machine
#     (examples/fuse_floor.rs)
# Everything runs on 127.0.0.1 against `boxfs emulator --seed bench` in a temp dir; each column
# has its own fresh mount and cache dir.
set -euo pipefail
cd "$(dirname "$0")/../.."

. scripts/bench/lib.sh
bench_setup bench fio curl fusermount3 python3
cargo build --release --locked -q --example fuse_floor
FLOOR_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/fuse_floor
CONDITIONS="latency=100,bandwidth=100000000"

echo "seeding the benchmark data set (1 GiB + 10,000 files)..." >&2
start_emulator --seed bench
BASE=${BOX_API_URL%/2.0}
api() { curl -sf -H "Authorization: Bearer $BOX_ACCESS_TOKEN" "$BOX_API_URL$1"; }
stat_total() { curl -sf "$BASE/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_requests"])'; }
stat_listings() { curl -sf "$BASE/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"].get("GET /2.0/folders/{id}/items",0))'; }
reset_stats() { curl -sf -X DELETE "$BASE/_emulator/stats" >/dev/null; }
network() { curl -sf -X PUT --data "$1" "$BASE/_emulator/network" >/dev/null; }
fetch_big() { curl -sfL -H "Authorization: Bearer $BOX_ACCESS_TOKEN" -o /dev/null "$BOX_API_URL/files/$BIG_ID/content"; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

BENCH_ID=$(api "/folders/0/items" | python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin)["entries"] if e["name"]=="bench"][0])')
BIG_ID=$(api "/folders/$BENCH_ID/items" | python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin)["entries"] if e["name"]=="big.bin"][0])')
# The emulator keeps big.bin's bytes in one blob file: the local-disk reference.
BIG_BLOB=$(find "$WORK/emu/blobs" -type f -size +1000M | head -n 1)
[ -n "$BIG_BLOB" ] || { echo "big.bin's blob not found in $WORK/emu/blobs" >&2; exit 1; }

# One column: every measurement at the conditions in force, into R_<name>.
measure() {
  # Direct: curl of the same file from the emulator (the physical limit here), once seeding's
  # writes are on disk.
  sync
  t0=$(now); fetch_big; t1=$(now)
  R_DIRECT=$(elapsed "$t0" "$t1")

  CACHE_DIR=$WORK/cache-$1 start_mount --read-only
  drop_caches
  # Dropping caches also evicted the emulator's copy of the file, which the direct curl above
  # read from memory: read it once more (untimed, unpaced) so both sides are served by the same,
  # warm, emulator. "Cold" is boxfs's state: a fresh mount with an empty cache dir.
  network ""; fetch_big; network "$2"
  t0=$(now); cat "$MNT/bench/big.bin" > /dev/null; t1=$(now)
  R_COLD=$(elapsed "$t0" "$t1")
  t0=$(now); cat "$MNT/bench/big.bin" > /dev/null; t1=$(now)
  R_WARM=$(elapsed "$t0" "$t1")

  reset_stats
  t0=$(now); ls -lR "$MNT/bench/tree" > /dev/null; t1=$(now)
  R_LS_COLD=$(elapsed "$t0" "$t1"); R_LS_CALLS=$(stat_total); R_LS_LISTINGS=$(stat_listings)
  reset_stats
  t0=$(now); ls -lR "$MNT/bench/tree" > /dev/null; t1=$(now)
  R_LS_WARM=$(elapsed "$t0" "$t1"); R_LS_WARM_CALLS=$(stat_total)

  local fio_json
  fio_json=$(fio --name=randread --filename="$MNT/bench/big.bin" --readonly --rw=randread --bs=4k --size=1G \
    --ioengine=psync --numjobs=4 --runtime=15 --time_based --group_reporting --output-format=json 2>/dev/null)
  R_IOPS=$(echo "$fio_json" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["jobs"][0]["read"]["iops"]))')
  R_RSS_MIB=$(($(awk '/VmHWM/ {print $2}' "/proc/$MOUNT_PID/status") / 1024))
  stop_mount
  echo "measured: $1" >&2
}

# The floor: the two costs no FUSE client of this emulator can avoid, on the same two cores:
# downloading the file (curl) and handing 1 GiB through FUSE (`cat` of a filesystem that answers
# reads from memory), run at once. curl's time over this is the best ratio any client could reach.
measure_floor() {
  local floor_mnt=$WORK/floor; mkdir -p "$floor_mnt"
  "$FLOOR_BIN" "$floor_mnt" $((1024 * 1024 * 1024)) 2>> "$WORK/floor.log" &
  EXTRA_PIDS+=($!); EXTRA_MNTS+=("$floor_mnt")
  for _ in $(seq 1 100); do mountpoint -q "$floor_mnt" && break; sleep 0.1; done
  drop_caches
  fetch_big
  t0=$(now)
  fetch_big &
  local curl_pid=$!
  cat "$floor_mnt/big" > /dev/null
  wait "$curl_pid"; t1=$(now)
  FLOOR=$(elapsed "$t0" "$t1")
  fusermount3 -u "$floor_mnt"
}

sync; drop_caches
t0=$(now); cat "$BIG_BLOB" > /dev/null; t1=$(now)
LOCAL_COLD=$(elapsed "$t0" "$t1")
network ""
measure loopback ""
for v in DIRECT COLD WARM LS_COLD LS_CALLS LS_LISTINGS LS_WARM LS_WARM_CALLS IOPS RSS_MIB; do eval "L_$v=\$R_$v"; done
measure_floor
network "$CONDITIONS"
measure box "$CONDITIONS"
network ""

MIB=1024
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
mbps() { python3 -c "print(f'{$MIB / $1:.0f}')"; }

cat <<TABLE
| measurement | loopback | latency 100 ms, 100 MB/s per connection |
|---|---|---|
| cold sequential read, 1 GiB, through the mount | ${L_COLD} s ($(mbps "$L_COLD") MiB/s) | ${R_COLD} s ($(mbps "$R_COLD") MiB/s) |
| same file with curl (one connection) straight from the emulator | ${L_DIRECT} s ($(mbps "$L_DIRECT") MiB/s) | ${R_DIRECT} s ($(mbps "$R_DIRECT") MiB/s) |
| mount / curl throughput ratio (targets: ≥ 0.9 on loopback, ≥ 4 at latency) | $(ratio "$L_DIRECT" "$L_COLD") | $(ratio "$R_DIRECT" "$R_COLD") |
| same bytes from the local disk (\`cat\` of the emulator's blob file, cold) | ${LOCAL_COLD} s ($(mbps "$LOCAL_COLD") MiB/s) | |
| floor: curl of the file and \`cat\` through a FUSE fs serving from memory, at once | ${FLOOR} s | |
| best ratio any FUSE client could reach here (direct / floor) | $(ratio "$L_DIRECT" "$FLOOR") | |
| warm re-read, 1 GiB | ${L_WARM} s ($(mbps "$L_WARM") MiB/s) | ${R_WARM} s ($(mbps "$R_WARM") MiB/s) |
| \`ls -lR\` of 10,000 files in 100 folders, cold | ${L_LS_COLD} s, ${L_LS_CALLS} API calls (${L_LS_LISTINGS} listings) | ${R_LS_COLD} s, ${R_LS_CALLS} API calls (${R_LS_LISTINGS} listings) |
| \`ls -lR\` again within the TTL | ${L_LS_WARM} s, ${L_LS_WARM_CALLS} API calls | ${R_LS_WARM} s, ${R_LS_WARM_CALLS} API calls |
| random 4 KiB reads (fio, 4 jobs, psync) | ${L_IOPS} IOPS | ${R_IOPS} IOPS |
| peak RSS of the mount daemon (target ≤ 100 MiB) | ${L_RSS_MIB} MiB | ${R_RSS_MIB} MiB |
TABLE
