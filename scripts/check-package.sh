#!/usr/bin/env bash
# Checks the two ways boxfs is installed (README "Install"), run by scripts/test.sh after the
# test suite:
# - scripts/package-deb.sh builds the .deb, and `dpkg-deb --contents`/`--field` show every path
#   it promises (binary, man pages, completions, systemd user unit, mount helper links) and the
#   dependency on fuse3;
# - `cargo install --locked --path .` into a temporary root installs a binary that runs
#   (`boxfs --version`). It shares target/ with the package build, so nothing compiles twice.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-package.sh: $*" >&2; exit 1; }

target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
deb=$(bash scripts/package-deb.sh | tail -n1)
[ -f "$deb" ] || fail "package-deb.sh made no package ($deb)"
contents=$(dpkg-deb --contents "$deb")
has() { grep -Eq "$1" <<<"$contents" || fail "$deb lacks $2"; }

sbindir=$(dpkg -L fuse3 2>/dev/null | sed -n 's|/mount\.fuse3$||p' | head -n1)
sbindir=${sbindir:-/sbin}
has '^-rwxr-xr-x root/root .* \./usr/bin/boxfs$' "an executable /usr/bin/boxfs owned by root"
for page in man/*.1; do
  has " \./usr/share/man/man1/$(basename "$page")\.gz$" "the man page $(basename "$page").gz"
done
has ' \./usr/share/bash-completion/completions/boxfs$' "the bash completion"
has ' \./usr/share/zsh/vendor-completions/_boxfs$' "the zsh completion"
has ' \./usr/share/fish/vendor_completions\.d/boxfs\.fish$' "the fish completion"
has ' \./usr/lib/systemd/user/boxfs@\.service$' "the systemd user unit"
for helper in mount.boxfs mount.fuse.boxfs; do
  has "^l.* \.$sbindir/$helper -> (/usr/bin/boxfs|\.\./bin/boxfs)$" "the link $sbindir/$helper to the binary"
done
has ' \./usr/share/doc/boxfs/copyright$' "its copyright file"

version=$(dpkg-deb --field "$deb" Version)
[ "$version" = "$("$target/release/boxfs" --version | awk '{print $2}')" ] || fail "package version $version is not the binary's"
[ "$(dpkg-deb --field "$deb" Package)" = boxfs ] || fail "package name is not boxfs"
[ "$(dpkg-deb --field "$deb" Architecture)" = "$(dpkg --print-architecture)" ] || fail "wrong architecture"
depends=$(dpkg-deb --field "$deb" Depends)
grep -Eq '(^|, )fuse3(,|$| )' <<<"$depends" || fail "Depends lacks fuse3: $depends"
grep -Eq '(^|, )libc6( |,|$)' <<<"$depends" || fail "Depends lacks libc6: $depends"

unit=$(mktemp -d)
trap 'rm -rf "$unit"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/lib/systemd/user/boxfs@.service > "$unit/unit"
grep -q '^ExecStart=/usr/bin/boxfs mount ' "$unit/unit" || fail "the packaged unit does not run /usr/bin/boxfs"
echo "check-package.sh: $deb ($(du -k "$deb" | cut -f1) KiB): every path, Depends: $depends"

root=$unit/root
cargo install --locked --path . --root "$root" --target-dir "$target" --quiet
out=$("$root/bin/boxfs" --version) || fail "the installed boxfs --version failed"
[ "$out" = "boxfs $version" ] || fail "the installed boxfs says '$out', not 'boxfs $version'"
echo "check-package.sh: cargo install --locked --path . installs a boxfs that says '$out'"
