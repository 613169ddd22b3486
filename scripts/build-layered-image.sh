#!/usr/bin/env bash
# Builds the multi-layer TEST image for the image store's registry tests:
#   <out>/layered-test.oci.tar  an oci-archive, tag "test": the layer of
#                               <out>/debian-test.oci.tar (scripts/build-rootfs.sh)
#                               and three layers on top:
#     2 (umoci repack)   /etc/s2z-deleted; /opt/s2z-opaque/{a,b};
#                        /usr/local/bin/busybox-netbind, a copy of busybox with
#                        security.capability cap_net_bind_service=+ep (setcap; the
#                        "busybox" prefix keeps it the multi-call binary);
#                        /usr/local/bin/s2z-setuid-id, a copy of id, root, mode 4755
#     3 (umoci repack)   /etc/s2z-deleted removed: the whiteout etc/.wh.s2z-deleted
#     4 (GNU tar, umoci raw add-layer)  opt/s2z-opaque/.wh..wh..opq and
#                        opt/s2z-opaque/c: after unpacking, the directory holds c only
#   config: the base's Entrypoint, Cmd (busybox httpd on 8080), Env and
#   WorkingDir; User app (uid 1000 in the base's /etc/passwd); StopSignal SIGQUIT.
# <out> is the first argument, else $S2Z_ROOTFS_DIR, else <repo>/.cache/rootfs.
# Needs root (setcap, a setuid-root file, owners kept by umoci) and the base
# image; nothing from the network.
# Cached: does nothing when <out>/.layered.stamp matches the hash of this
# script and of the base image.
# Usage: scripts/build-layered-image.sh [out-dir] [--force]
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
base=$out/debian-test.oci.tar
image=$out/layered-test.oci.tar

mkdir -p "$out"
# Several test runs may ask at once: one builder, the others wait and reuse.
exec 9>"$out/.layered.lock"
flock 9
# build-rootfs.sh holds .lock while it replaces the base: read the base under it.
exec 8>"$out/.lock"
flock -s 8

[ -f "$base" ] || { echo "build-layered-image: no base image $base (run scripts/build-rootfs.sh first)" >&2; exit 1; }
key=$(cat "$0" "$base" | sha256sum | cut -d' ' -f1)
if [ -z "$force" ] && [ -f "$out/.layered.stamp" ] && [ "$(cat "$out/.layered.stamp")" = "$key" ] &&
   [ -f "$image" ]; then
  echo "build-layered-image: up to date: $image"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "build-layered-image: needs root (setcap, setuid root file, ownership)" >&2; exit 1; }

work=$(mktemp -d "$out/.work-layered.XXXXXX")
trap 'rm -rf "$work"' EXIT
oci=$work/oci:test

skopeo copy --quiet "oci-archive:$base" "oci:$oci"
umoci unpack --image "$oci" "$work/bundle" >/dev/null
root=$work/bundle/rootfs

# Layer 2: what the upper layers delete or hide, and the special files.
echo "in layer 2, deleted by layer 3" > "$root/etc/s2z-deleted"
mkdir -p "$root/opt/s2z-opaque"
echo a > "$root/opt/s2z-opaque/a"
echo b > "$root/opt/s2z-opaque/b"
install -m 0755 -o root -g root "$root/bin/busybox" "$root/usr/local/bin/busybox-netbind"
setcap cap_net_bind_service=+ep "$root/usr/local/bin/busybox-netbind"
install -m 4755 -o root -g root "$root/usr/bin/id" "$root/usr/local/bin/s2z-setuid-id"
umoci repack --refresh-bundle --history.created_by "s2z layer 2: files, capability, setuid" \
  --image "$oci" "$work/bundle"

# Layer 3: repack records the removal as the whiteout etc/.wh.s2z-deleted.
rm "$root/etc/s2z-deleted"
umoci repack --refresh-bundle --history.created_by "s2z layer 3: whiteout /etc/s2z-deleted" \
  --image "$oci" "$work/bundle"

# Layer 4: repack never writes an opaque whiteout, so the tar is made by hand.
layer=$work/layer4
mkdir -p "$layer/opt/s2z-opaque"
: > "$layer/opt/s2z-opaque/.wh..wh..opq"
echo c > "$layer/opt/s2z-opaque/c"
chmod 0755 "$layer/opt/s2z-opaque"
chmod 0644 "$layer/opt/s2z-opaque/.wh..wh..opq" "$layer/opt/s2z-opaque/c"
tar --create --format=pax --numeric-owner --owner=0 --group=0 --sort=name \
  -C "$layer" -f "$work/layer4.tar" opt/s2z-opaque
umoci raw add-layer --history.created_by "s2z layer 4: opaque /opt/s2z-opaque with c" \
  --image "$oci" "$work/layer4.tar"

umoci config --image "$oci" --config.user app --config.stopsignal SIGQUIT
skopeo copy --quiet "oci:$oci" "oci-archive:$work/image.oci.tar:test"
chmod 0644 "$work/image.oci.tar"

# Publish atomically: the image first, the stamp last.
mv "$work/image.oci.tar" "$image.tmp" && mv "$image.tmp" "$image"
echo "$key" > "$out/.layered.stamp"
echo "build-layered-image: built $image ($(( $(stat -c %s "$image") / 1048576 )) MiB," \
  "$(skopeo inspect --format '{{len .Layers}}' "oci-archive:$image") layers)"
