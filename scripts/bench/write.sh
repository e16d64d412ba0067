#!/usr/bin/env bash
# Write benchmark: one run, printed as markdown table rows.
#   - 1 GiB sequential write into the mount: time to close, time until committed in Box (the
#     mount runs with --fsync box, so fsync waits for the commit)
#   - the same file uploaded directly to the emulator through an upload session (4 parts in
#     flight, like boxfs), the physical limit here
#   - 1,000 x 4 KiB files: time to write them, time until all are committed
#   - peak RSS of the mount daemon
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
bench_setup wbench fusermount3 python3

head -c $((1024 * 1024 * 1024)) /dev/urandom > "$WORK/src.bin"
mkdir -p "$WORK/small"
for i in $(seq 1 1000); do head -c 4096 /dev/urandom > "$WORK/small/f$i"; done

start_emulator --space-amount $((8 * 1024 * 1024 * 1024))

# Each timed step starts with nothing dirty in the page cache, so that the kernel writing back
# an earlier step's data (the 1 GiB source file, the emulator's copy) does not land in it.
sync
# Direct: an upload session from a script, 4 parts in flight.
DIRECT=$(python3 - "$WORK/src.bin" <<'PY'
import base64, hashlib, json, os, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
path = sys.argv[1]; api, up, tok = os.environ["BOX_API_URL"], os.environ["BOX_UPLOAD_URL"], os.environ["BOX_ACCESS_TOKEN"]
def call(method, url, body=None, headers={}):
    req = urllib.request.Request(url, data=body, method=method, headers={"Authorization": f"Bearer {tok}", **headers})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"{}")
size = os.path.getsize(path)
t0 = time.monotonic()
s = call("POST", f"{up}/files/upload_sessions", json.dumps({"folder_id": "0", "file_size": size, "file_name": "direct.bin"}).encode(), {"Content-Type": "application/json"})
ps = s["part_size"]
def part(off):
    with open(path, "rb") as f:
        f.seek(off); data = f.read(ps)
    d = base64.b64encode(hashlib.sha1(data).digest()).decode()
    return call("PUT", s["session_endpoints"]["upload_part"], data, {"Content-Range": f"bytes {off}-{off+len(data)-1}/{size}", "Digest": f"sha={d}", "Content-Type": "application/octet-stream"})["part"]
with ThreadPoolExecutor(4) as ex:
    parts = list(ex.map(part, range(0, size, ps)))
h = hashlib.sha1()
with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""): h.update(chunk)
d = base64.b64encode(h.digest()).decode()
call("POST", s["session_endpoints"]["commit"], json.dumps({"parts": parts}).encode(), {"Digest": f"sha={d}", "Content-Type": "application/json"})
print(f"{time.monotonic() - t0:.2f}")
PY
)

# fsync waits for the commit in Box (--fsync box): that is what "committed" times.
start_mount --fsync box

sync
t0=$(now); cp "$WORK/src.bin" "$MNT/big.bin"; t1=$(now)
python3 -c "import os,sys; f=os.open(sys.argv[1], os.O_RDONLY); os.fsync(f)" "$MNT/big.bin"; t2=$(now)
CLOSE=$(elapsed "$t0" "$t1"); COMMIT=$(elapsed "$t0" "$t2")

sync
t0=$(now); cp -r "$WORK/small" "$MNT/small"; t1=$(now)
python3 - "$MNT/small" <<'PY'
import os, sys
for name in os.listdir(sys.argv[1]):
    fd = os.open(os.path.join(sys.argv[1], name), os.O_RDONLY); os.fsync(fd); os.close(fd)
PY
t2=$(now)
SMALL_CLOSE=$(elapsed "$t0" "$t1"); SMALL_COMMIT=$(elapsed "$t0" "$t2")
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$MOUNT_PID/status")
mbps() { python3 -c "print(f'{1024 / $1:.0f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
cat <<TABLE
| 1 GiB sequential write into the mount: until \`close\` | ${CLOSE} s ($(mbps "$CLOSE") MiB/s) |
| same: until committed in Box (\`fsync\` under \`--fsync box\`) | ${COMMIT} s ($(mbps "$COMMIT") MiB/s) |
| same file, direct upload session to the emulator (4 parts in flight) | ${DIRECT} s ($(mbps "$DIRECT") MiB/s) |
| committed-throughput ratio, mount / direct (target ≥ 0.8) | $(ratio "$DIRECT" "$COMMIT") |
| 1,000 x 4 KiB files: written / all committed | ${SMALL_CLOSE} s / ${SMALL_COMMIT} s |
| peak RSS of the mount daemon during writes (target ≤ 100 MiB) | $((RSS_KB / 1024)) MiB |
TABLE
