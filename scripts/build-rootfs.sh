#!/usr/bin/env bash
# Builds the TEST root filesystem for guest-agent tests, from Debian packages:
#   <out>/debian-test.ext4   bookworm minbase + python3-minimal, busybox, coreutils,
#                            a user `app` (uid 1000, group app 1000, home /home/app);
#                            ext4, read-only for the guest (it is the image layer)
#   <out>/debian-test.oci.tar  the same tree as an OCI image (oci-archive, tag "test",
#                            made with umoci and skopeo): Entrypoint /bin/sh -c, a Cmd
#                            that prints its user, directory and $GREETING and serves
#                            /srv with busybox httpd on 8080, Env GREETING, WorkingDir
#                            /srv, User app; /srv/index.html is app's
# <out> is the first argument, else $S2Z_ROOTFS_DIR, else <repo>/.cache/rootfs.
# Needs root and the Debian mirror of /etc/apt/sources.list(.d) only.
# Cached: does nothing when <out>/.stamp matches the hash of this script.
# Usage: scripts/build-rootfs.sh [out-dir] [--force]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${S2Z_ROOTFS_DIR:-$repo/.cache/rootfs}
force=
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    *) out=$a ;;
  esac
done
image=$out/debian-test.ext4

mkdir -p "$out"
# Several test runs may ask at once: one builder, the others wait and reuse.
exec 9>"$out/.lock"
flock 9

key=$(sha256sum < "$0" | cut -d' ' -f1)
if [ -z "$force" ] && [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$key" ] && [ -f "$image" ] &&
   [ -f "$out/debian-test.oci.tar" ]; then
  echo "build-rootfs: up to date: $image"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build-rootfs: needs root (mmdebstrap root mode, mke2fs -d ownership)" >&2; exit 1; }

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The host's Debian sources, exactly (the only network these machines have).
# Entries for other archives are left out: they would fail offline.
sources=$work/sources
{
  if [ -s /etc/apt/sources.list ]; then grep -E '^deb .*debian' /etc/apt/sources.list || true; fi
  for f in /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && { grep -E '^deb .*debian' "$f" || true; }
  done
} > "$sources.list"
deb822=()
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && grep -q 'debian' "$f" && deb822+=("$f")
done
mirrors=()
[ -s "$sources.list" ] && mirrors+=("$sources.list")
mirrors+=("${deb822[@]}")
[ ${#mirrors[@]} -gt 0 ] || { echo "build-rootfs: no Debian source in /etc/apt" >&2; exit 1; }

tree=$work/tree
echo "build-rootfs: mmdebstrap bookworm (minbase) from ${mirrors[*]}"
# Documentation, man pages and locales are dropped: smaller image, faster build.
# The hooks' "$1" is mmdebstrap's, hence single quotes.
# shellcheck disable=SC2016
mmdebstrap --quiet --mode=root --variant=minbase \
  --include=python3-minimal,busybox,coreutils \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='chroot "$1" groupadd -g 1000 app' \
  --customize-hook='chroot "$1" useradd -u 1000 -g 1000 -m -d /home/app -s /bin/sh app' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
  bookworm "$tree" "${mirrors[@]}"

# used + ~30% (ext4 metadata, journal and some headroom), at least 64 MiB.
used_kib=$(du -sk "$tree" | cut -f1)
size_kib=$(( used_kib * 13 / 10 + 16384 ))
[ "$size_kib" -ge 65536 ] || size_kib=65536
mke2fs -q -t ext4 -d "$tree" -F "$work/image.ext4" "${size_kib}k"
chmod 0644 "$work/image.ext4"

# The OCI image of the same tree, for image tasks (tests/integration/image_test.cpp).
mkdir -p "$tree/srv"
echo "hello from the image" > "$tree/srv/index.html"
chown -R 1000:1000 "$tree/srv"
umoci init --layout "$work/oci"
umoci new --image "$work/oci:test"
# repack diffs a bundle against the image: unpack the empty one, swap in the tree.
umoci unpack --image "$work/oci:test" "$work/bundle" >/dev/null
rm -rf "$work/bundle/rootfs"
mv "$tree" "$work/bundle/rootfs"
umoci repack --image "$work/oci:test" "$work/bundle"
# shellcheck disable=SC2016
umoci config --image "$work/oci:test" --config.entrypoint /bin/sh --config.cmd -c \
  --config.cmd 'echo "user=$(id -un) pwd=$(pwd) GREETING=$GREETING"; exec busybox httpd -f -p 8080 -h /srv' \
  --config.env GREETING=hello-from-the-image \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir /srv --config.user app
skopeo copy --quiet "oci:$work/oci:test" "oci-archive:$work/image.oci.tar:test"
chmod 0644 "$work/image.oci.tar"

# Publish atomically: the images first, the stamp last.
mv "$work/image.oci.tar" "$out/debian-test.oci.tar.tmp" && mv "$out/debian-test.oci.tar.tmp" "$out/debian-test.oci.tar"
mv "$work/image.ext4" "$image.tmp" && mv "$image.tmp" "$image"
echo "$key" > "$out/.stamp"
echo "build-rootfs: built $image ($(( $(stat -c %s "$image") / 1048576 )) MiB, tree $(( used_kib / 1024 )) MiB)"
