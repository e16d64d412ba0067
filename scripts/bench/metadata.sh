#!/usr/bin/env bash
# Metadata benchmark: walks of 100,000 files in 100 folders (`boxfs emulator --seed walk`), in one
# run, printed as a markdown table: `ls -lR`, `du -s` and `find -name`, each cold and warm, on
# the local disk (the same tree, made here), through boxfs on plain loopback, and through boxfs
# at Box's latency (the emulator's --latency 100: every response 100 ms late); with the API
# calls (about items; the event stream's aside) of each boxfs walk, and the floor: the same
# listing pages fetched with curl. "Cold" is a fresh mount with an empty cache dir and the
# kernel's caches dropped (the emulator's database then read back by serving the pages once, as
# Box's servers do not forget with our page cache; the emulator keeps those pages and answers the
# walk's identical requests from memory while nothing changed, so that the loopback column
# measures boxfs, not the emulator sharing its two cores); "warm" is the same walk right after it.
# Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

. scripts/bench/lib.sh
bench_setup metadata curl fusermount3 python3

echo "seeding 100,000 files in 100 folders..." >&2
start_emulator --seed walk
BASE=${BOX_API_URL%/2.0}
# Requests about items: all but the event stream's (its long-poll runs on its own schedule).
item_calls() {
  curl -sf "$BASE/_emulator/stats" | python3 -c 'import json,sys
s = json.load(sys.stdin)
print(s["total_requests"] - sum(s["requests"].get(r, 0) for r in ("GET /subscribe", "OPTIONS /2.0/events", "GET /2.0/events")))'
}
reset_stats() { curl -sf -X DELETE "$BASE/_emulator/stats" >/dev/null; }
network() { curl -sf -X PUT --data "$1" "$BASE/_emulator/network" >/dev/null; }
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# The same tree on the local disk: same names, same sizes.
LOCAL=$WORK/local
python3 - "$LOCAL/walk" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.makedirs(f"{root}/d{d:03}")
    for f in range(1000):
        with open(f"{root}/d{d:03}/f{f:04}.txt", "wb") as out:
            out.write(b"x" * (f % 16))
PY

WALKS=("ls -lR" "du -s" "find -name")
run_walk() {
  case $1 in
    "ls -lR") ls -lR "$2" > /dev/null ;;
    "du -s") du -s "$2" > /dev/null ;;
    "find -name") find "$2" -name 'f0042.txt' > /dev/null ;;
  esac
}

# One column: each walk cold and warm over the tree at $1, into R_<column>_<walk>_{cold,warm,calls}.
# $2: "mount" to walk a fresh boxfs mount per walk (counting API calls), else the local disk.
measure() {
  local col=$1 how=$2 i t0 t1 dir
  for i in "${!WALKS[@]}"; do
    if [ "$how" = mount ]; then
      CACHE_DIR=$WORK/cache-$col-$i start_mount --read-only
      dir=$MNT/walk
    else
      dir=$LOCAL/walk
    fi
    drop_caches
    if [ "$how" = mount ]; then warm_server; reset_stats; fi
    t0=$(now); run_walk "${WALKS[$i]}" "$dir"; t1=$(now)
    printf -v "R_${col}_${i}_cold" '%s' "$(elapsed "$t0" "$t1")"
    [ "$how" = mount ] && printf -v "R_${col}_${i}_calls" '%s' "$(item_calls)"
    [ "$how" = mount ] && reset_stats
    t0=$(now); run_walk "${WALKS[$i]}" "$dir"; t1=$(now)
    printf -v "R_${col}_${i}_warm" '%s' "$(elapsed "$t0" "$t1")"
    if [ "$how" = mount ]; then
      printf -v "R_${col}_${i}_warmcalls" '%s' "$(item_calls)"
      printf -v "R_${col}_${i}_rss" '%s' "$(($(awk '/VmHWM/ {print $2}' "/proc/$MOUNT_PID/status") / 1024))"
      stop_mount
    fi
  done
  echo "measured: $col" >&2
}

# The floor for any client of this emulator: the same 102 listing pages fetched by one `curl`,
# level by level (the root, walk/, then its 100 folders 8 at a time, as boxfs lists ahead), with
# the fields boxfs asks a listing for (boxfs-api's LIST_FIELDS).
FIELDS="type,id,sequence_id,etag,name,size,sha1,file_version,created_at,modified_at,content_created_at,content_modified_at,permissions,url,lock,metadata.global.properties"
page() { curl -sf -o /dev/null -H "Authorization: Bearer $BOX_ACCESS_TOKEN" "$BOX_API_URL/folders/$1/items?usemarker=true&limit=1000&fields=$FIELDS"; }
children() {
  curl -sf -H "Authorization: Bearer $BOX_ACCESS_TOKEN" "$BOX_API_URL/folders/$1/items?limit=1000&fields=name" \
    | python3 -c 'import json,sys; [print(e["id"], e["name"]) for e in json.load(sys.stdin)["entries"]]'
}
WALK_ID=$(children 0 | awk '$2 == "walk" { print $1 }')
for id in $(children "$WALK_ID" | awk '{ print $1 }'); do
  printf 'url = "%s"\noutput = "/dev/null"\n' "$BOX_API_URL/folders/$id/items?usemarker=true&limit=1000&fields=$FIELDS"
done > "$WORK/folder-pages.curl"
folder_pages() { curl -sf -Z --parallel-max 8 -H "Authorization: Bearer $BOX_ACCESS_TOKEN" -K "$WORK/folder-pages.curl" 2>/dev/null; }
# Every listing page once, level by level. Dropping the kernel's caches before a cold walk also
# evicts the emulator's own database, which Box's servers never see: the emulator reads it back
# (serving the pages once, which it then keeps) before each walk.
warm_server() { page 0; page "$WALK_ID"; folder_pages; }
floor() {
  local t0 t1
  t0=$(now); warm_server; t1=$(now)
  elapsed "$t0" "$t1"
}

measure local disk
network ""
measure loop mount
FLOOR_loop=$(floor)
network "latency=100"
measure lat mount
FLOOR_lat=$(floor)
network ""

v() { local name="R_$1"; echo "${!name}"; }
ratio() { python3 -c "print(f'{$1 / max($2, 0.01):.1f}')"; }
echo "| 100,000 files in 100 folders | local disk | boxfs, loopback | boxfs, --latency 100 | API calls (loopback / latency 100) | daemon peak RSS (loopback) |"
echo "|---|---|---|---|---|---|"
for i in "${!WALKS[@]}"; do
  for phase in cold warm; do
    local_s=$(v "local_${i}_$phase"); loop_s=$(v "loop_${i}_$phase"); lat_s=$(v "lat_${i}_$phase")
    if [ $phase = cold ]; then calls="$(v "loop_${i}_calls") / $(v "lat_${i}_calls")"; rss=""
    else calls="$(v "loop_${i}_warmcalls") / $(v "lat_${i}_warmcalls")"; rss="$(v "loop_${i}_rss") MiB"; fi
    echo "| \`${WALKS[$i]}\`, $phase | ${local_s} s | ${loop_s} s ($(ratio "$loop_s" "$local_s")x) | ${lat_s} s | $calls | $rss |"
  done
done
echo "| floor: the same 102 listing pages with one \`curl\`, 8 at a time | | ${FLOOR_loop} s | ${FLOOR_lat} s | 102 / 102 | |"
echo
echo "Listing calls needed: 102 (the root, walk/ and its 100 folders, one page each). Targets: warm" \
  "\`ls -lR\` <= 2x local disk; cold <= 3x local disk on loopback and <= 5 s at --latency 100."
