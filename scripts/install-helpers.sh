#!/bin/sh
# Makes boxfs usable from mount(8) and /etc/fstab: symlinks SBINDIR/mount.fuse.boxfs (type
# fuse.boxfs) and SBINDIR/mount.boxfs (type boxfs) to the boxfs binary, which behaves as the
# mount helper under those names. Run as root:
#
#   sudo scripts/install-helpers.sh [PATH_TO_BOXFS]     # default: boxfs on PATH
#   SBINDIR=/usr/sbin sudo -E scripts/install-helpers.sh
#
# Then `mount -t fuse.boxfs ACCOUNT MOUNTPOINT -o OPTIONS` and fstab lines such as
#   work  /mnt/box  fuse.boxfs  _netdev,allow_other,metadata_ttl=30  0 0
# work. The account is looked up in the config dir of the user running mount(8) (root at boot:
# log in with `sudo boxfs login --account work`).
set -eu
bin=${1:-$(command -v boxfs || true)}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "install-helpers.sh: boxfs not found; pass its path (e.g. target/release/boxfs)" >&2
  exit 1
fi
bin=$(readlink -f "$bin")
sbindir=${SBINDIR:-/sbin}
for name in mount.fuse.boxfs mount.boxfs; do
  ln -sf "$bin" "$sbindir/$name"
  echo "$sbindir/$name -> $bin"
done
