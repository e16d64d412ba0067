# Shared setup of the benchmark scripts (sourced, not run): installs what is missing, builds
# the release binary, makes a temp dir that is cleaned up on exit with every process and
# mount the script started, and starts the emulator and the mount.
#   bench_setup NAME TOOL...     tools to have (apt-get install when root)
#   start_emulator [ARGS...]     `boxfs emulator` in $WORK/emu; exports BOX_API_URL etc.
#   start_mount [ARGS...]        `boxfs mount $MNT --foreground` with ${CACHE_DIR:-$WORK/cache};
#                                waits for ready
#   stop_mount                   unmounts $MNT and waits for the daemon to exit
#   EXTRA_MNTS / EXTRA_PIDS      further mounts and processes a script started, for the cleanup
#   now / elapsed T0 T1          wall-clock stamps and their difference (2 decimals)
set -euo pipefail

bench_setup() {
  local name=$1; shift
  local need=() tool pkg
  for tool in "$@"; do
    pkg=$tool; [ "$tool" = fusermount3 ] && pkg=fuse3
    command -v "$tool" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else echo "missing: ${need[*]}" >&2; exit 1; fi
  fi
  cargo build --release --locked -q
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/boxfs
  WORK=$(mktemp -d "/tmp/boxfs-$name.XXXXXX")
  MNT=$WORK/mnt; mkdir -p "$MNT"
  EMU_PID=""; MOUNT_PID=""; EXTRA_MNTS=(); EXTRA_PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local m p
  for m in "$MNT" "${EXTRA_MNTS[@]}"; do fusermount3 -uz "$m" 2>/dev/null || true; done
  for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  # A bench's pending uploads are not wanted: the daemon is not asked to drain them.
  [ -n "$MOUNT_PID" ] && kill -9 "$MOUNT_PID" 2>/dev/null || true
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

start_emulator() {
  "$BIN" emulator --data "$WORK/emu" "$@" > "$WORK/env" 2> "$WORK/emu.log" &
  EMU_PID=$!
  # Seeding (--seed bench) takes a while before the three lines appear.
  for _ in $(seq 1 3000); do [ "$(wc -l < "$WORK/env" 2>/dev/null || echo 0)" -ge 3 ] && break; sleep 0.1; done
  # shellcheck disable=SC1091
  . "$WORK/env"
  export BOX_API_URL BOX_UPLOAD_URL BOX_ACCESS_TOKEN
}

start_mount() {
  BOXFS_NOTIFY_READY=1 "$BIN" mount "$MNT" --foreground --cache-dir "${CACHE_DIR:-$WORK/cache}" "$@" \
    > "$WORK/ready" 2> "$WORK/mount.log" &
  MOUNT_PID=$!
  for _ in $(seq 1 200); do grep -q ready "$WORK/ready" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$WORK/ready" || { echo "mount failed:" >&2; cat "$WORK/mount.log" >&2; exit 1; }
}

stop_mount() {
  fusermount3 -u "$MNT"
  wait "$MOUNT_PID" 2>/dev/null || true
  MOUNT_PID=""
}

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
