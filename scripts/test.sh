#!/usr/bin/env bash
# The one test command (README.md, .ci/run): installs what a fresh Debian machine lacks (and
# Box's official Python SDK into a virtualenv under target/), then builds with the committed
# Cargo.lock and runs the whole suite (unit, emulator conformance and behaviour, the SDK suite,
# CLI, and FUSE mount tests); with no arguments, then checks the .deb and `cargo install`
# (scripts/check-package.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v fusermount3 >/dev/null 2>&1 || missing+=(fuse3)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v getfattr >/dev/null 2>&1 || missing+=(attr)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
command -v script >/dev/null 2>&1 || missing+=(bsdutils)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v strip >/dev/null 2>&1 || missing+=(binutils)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "scripts/test.sh: missing ${missing[*]}; install them (as root: apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
fi

if [ ! -f ../shared/spec/box-openapi.json ]; then
  echo "scripts/test.sh: note: ../shared/spec/box-openapi.json not found; conformance tests skip (they fail when CI is set)" >&2
fi

# tests/sdk (run by tests/sdk_conformance.rs) needs the pinned SDK in a virtualenv; it is
# (re)made only when tests/sdk/requirements.txt changed since the last install.
venv=$(realpath -m "${CARGO_TARGET_DIR:-target}")/sdk-venv
if ! cmp -s tests/sdk/requirements.txt "$venv/installed-requirements.txt"; then
  echo "scripts/test.sh: installing tests/sdk/requirements.txt into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/sdk/requirements.txt
  cp tests/sdk/requirements.txt "$venv/installed-requirements.txt"
fi
export BOXFS_SDK_VENV=$venv

cargo build --locked --workspace --all-targets
cargo test --locked --workspace --all-targets "$@"

# A whole-suite run (no arguments narrowing it) also checks both ways of installing boxfs:
# the release build they share takes a few minutes, which a narrowed run does not want.
if [ $# -eq 0 ]; then
  bash scripts/check-package.sh
fi
