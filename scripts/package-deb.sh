#!/usr/bin/env bash
# Builds the Debian package: target/debian/boxfs_VERSION_ARCH.deb (its path is the last line
# printed). A plain staged tree plus DEBIAN/control, packed by `dpkg-deb --build`:
#
#   /usr/bin/boxfs                                  the release binary (debug info stripped)
#   /usr/share/man/man1/boxfs*.1.gz                 the man pages of man/
#   /usr/share/bash-completion/completions/boxfs    `boxfs completions bash`
#   /usr/share/zsh/vendor-completions/_boxfs        `boxfs completions zsh`
#   /usr/share/fish/vendor_completions.d/boxfs.fish `boxfs completions fish`
#   /usr/lib/systemd/user/boxfs@.service            scripts/boxfs@.service, running /usr/bin/boxfs
#   SBIN/mount.boxfs, SBIN/mount.fuse.boxfs         mount(8) helper links to the binary, in the
#                                                   directory where fuse3 keeps mount.fuse3
#   /usr/share/doc/boxfs/copyright
#
# Depends: fuse3 (fusermount3) and the shared libraries the binary links (dpkg-shlibdeps).
# Maintainer: $BOXFS_DEB_MAINTAINER, else the author of the packaged commit.
#
#   scripts/package-deb.sh && sudo apt install ./target/debian/boxfs_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

for tool in dpkg-deb strip; do
  command -v "$tool" >/dev/null || { echo "package-deb.sh: $tool is missing (apt-get install dpkg binutils)" >&2; exit 1; }
done

cargo build --release --locked --bin boxfs
target=$(realpath -m "${CARGO_TARGET_DIR:-target}")
bin=$target/release/boxfs

# The version of [workspace.package] in Cargo.toml, which the binary reports too.
version=$(awk '/^\[/ { section = $0 } section == "[workspace.package]" && $1 == "version" { gsub(/"/, "", $3); print $3 }' Cargo.toml)
arch=$(dpkg --print-architecture)
maintainer=${BOXFS_DEB_MAINTAINER:-$(git log -1 --format='%an <%ae>' 2>/dev/null || true)}
if [ -z "$version" ] || [ -z "$maintainer" ]; then
  echo "package-deb.sh: no version in Cargo.toml or no maintainer (set BOXFS_DEB_MAINTAINER='Name <email>')" >&2
  exit 1
fi

# mount(8) looks for mount.TYPE helpers where the fuse3 package puts mount.fuse3.
sbindir=$(dpkg -L fuse3 2>/dev/null | sed -n 's|/mount\.fuse3$||p' | head -n1)
sbindir=${sbindir:-/sbin}

out=$target/debian
root=$out/boxfs_${version}_$arch
rm -rf "$root"
mkdir -p "$root/DEBIAN"

install -D -m755 "$bin" "$root/usr/bin/boxfs"
strip --strip-debug "$root/usr/bin/boxfs"

mkdir -p "$root/usr/share/man/man1"
for page in man/*.1; do
  gzip -9n < "$page" > "$root/usr/share/man/man1/$(basename "$page").gz"
done

install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"
"$bin" completions bash > "$root/usr/share/bash-completion/completions/boxfs"
"$bin" completions zsh > "$root/usr/share/zsh/vendor-completions/_boxfs"
"$bin" completions fish > "$root/usr/share/fish/vendor_completions.d/boxfs.fish"

unit=$root/usr/lib/systemd/user/boxfs@.service
install -D -m644 scripts/boxfs@.service "$unit"
sed -i 's|/usr/local/bin/boxfs|/usr/bin/boxfs|g; s|install -Dm644 scripts/boxfs@.service ~/.config/systemd/user/boxfs@.service|(installed by the boxfs package)|' "$unit"
grep -q '^ExecStart=/usr/bin/boxfs ' "$unit" || { echo "package-deb.sh: the unit's ExecStart was not rewritten" >&2; exit 1; }

# Links within /usr are relative, links from / into /usr absolute (Debian policy 10.5).
case $sbindir in
  /usr/*) link=../bin/boxfs ;;
  *) link=/usr/bin/boxfs ;;
esac
install -d "$root$sbindir"
ln -s "$link" "$root$sbindir/mount.boxfs"
ln -s "$link" "$root$sbindir/mount.fuse.boxfs"

install -d "$root/usr/share/doc/boxfs"
cat > "$root/usr/share/doc/boxfs/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: boxfs
Comment: boxfs is distributed under either of the MIT license or the Apache License 2.0, at
 your option (the license field of its Cargo.toml). The binary statically links Rust crates
 under their own licenses (MIT, Apache-2.0 and compatible), listed in its Cargo.lock.

Files: *
Copyright: the boxfs authors
License: MIT or Apache-2.0

License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.

License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this
 software and associated documentation files (the "Software"), to deal in the Software
 without restriction, including without limitation the rights to use, copy, modify, merge,
 publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
 to whom the Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
 INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
 PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
 FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
 OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
 DEALINGS IN THE SOFTWARE.
EOF

# The packages of the shared libraries the binary links: dpkg-shlibdeps (dpkg-dev) gives them
# with minimum versions; without it, the packages owning what ldd resolves.
if command -v dpkg-shlibdeps >/dev/null; then
  # It reads debian/control of the source it runs in: give it an empty one.
  shlibs_dir=$(mktemp -d)
  trap 'rm -rf "$shlibs_dir"' EXIT
  mkdir "$shlibs_dir/debian"
  touch "$shlibs_dir/debian/control"
  shlibs=$(cd "$shlibs_dir" && dpkg-shlibdeps -O "$root/usr/bin/boxfs" | sed -n 's/^shlibs:Depends=//p')
else
  shlibs=$(ldd "$bin" | awk '$3 ~ /^\// { print $3 }' | xargs -r dpkg -S 2>/dev/null \
    | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
fi

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: boxfs
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: fuse3${shlibs:+, $shlibs}
Section: utils
Priority: optional
Description: mount a Box.com account as a local directory (FUSE)
 boxfs mounts a Box account on Linux: browse, read and write with ordinary tools, with a
 durable write-back queue, conflicted copies instead of overwrites, POSIX modes and owners
 kept in Box metadata, and live freshness from Box's event stream. The same binary ships a
 local Box API emulator (boxfs emulator) and is the mount(8) helper for type fuse.boxfs.
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"

deb=$out/boxfs_${version}_$arch.deb
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null
echo "$deb"
