#!/usr/bin/env bash
# Builds the test guest from Debian packages only:
#   <out>/vmlinuz     the Debian cloud kernel (linux-image-cloud-amd64's dependency)
#   <out>/initrd.img  busybox-static initramfs (cpio newc, gzip) with the virtio,
#                     ACPI button and evdev modules, guest/init, guest/power-button
#                     and guest/guest_httpd (static)
# <out> is $S2Z_GUEST_DIR or <repo>/.cache/guest. The kernel package is fetched with
# `apt-get download` and unpacked with dpkg-deb; nothing is installed on the host.
# Cached: does nothing when <out>/.stamp matches the hash of this script and guest/.
# Usage: scripts/build-guest.sh [--force]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${S2Z_GUEST_DIR:-$repo/.cache/guest}
debs=$repo/.cache/guest-debs
force=${1:-}

# Modules the guest needs; their dependencies are added from modules.dep.
# button + evdev turn the VMM's ACPI power button into an input event for acpid.
wanted=(virtio_mmio virtio_pci virtio_net virtio_blk button evdev)

mkdir -p "$out" "$debs"
# Tests of several helpers may build the guest at once: one builder at a time.
exec 9>"$out/.lock"
flock 9

key=$(cat "$0" "$repo"/guest/init "$repo"/guest/power-button "$repo"/guest/guest_httpd.c |
      sha256sum | cut -d' ' -f1)
if [ "$force" != "--force" ] && [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$key" ] &&
   [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
  echo "build-guest: up to date in $out"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Kernel package: the versioned image the cloud meta-package depends on.
kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$kpkg" ] || { echo "build-guest: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
deb=$(ls "$debs"/"${kpkg}"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
  (cd "$debs" && apt-get download "$kpkg")
  deb=$(ls "$debs"/"${kpkg}"_*.deb | head -n1)
fi
echo "build-guest: kernel from $(basename "$deb")"
dpkg-deb -x "$deb" "$work/kernel"
kver=$(ls "$work/kernel/lib/modules" | head -n1)
# The package ships no modules.dep (depmod runs at install time): make one here.
depmod -b "$work/kernel" "$kver"
moddir=$work/kernel/lib/modules/$kver

# 2. Module load order: depth-first over modules.dep, dependencies first.
declare -A seen=()
order=()
path_of() {  # module name -> path relative to moddir, from modules.dep
  awk -F: -v m="$1" '{n=$1; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n);
                       if (n == m) {print $1; exit}}' "$moddir/modules.dep"
}
visit() {  # $1: path relative to moddir
  local p=$1 dep
  [ -n "${seen[$p]:-}" ] && return
  seen[$p]=1
  for dep in $(awk -F: -v p="$p" '$1 == p {print $2; exit}' "$moddir/modules.dep"); do
    visit "$dep"
  done
  order+=("$p")
}
for m in "${wanted[@]}"; do
  p=$(path_of "$m")
  [ -n "$p" ] || { echo "build-guest: module $m not in $kver" >&2; exit 1; }
  visit "$p"
done

# 3. Initramfs tree.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc/acpi/PWRF,lib/modules}
# busybox-static's binary: the initramfs has no shared libraries.
busybox=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$')
cp "$busybox" "$root/bin/busybox"
install -m 0755 "$repo/guest/init" "$root/init"
# busybox acpid maps KEY_POWER to the action PWRF/00000080 under /etc/acpi.
install -m 0755 "$repo/guest/power-button" "$root/etc/acpi/PWRF/00000080"
gcc -static -O2 -Wall -Wextra -o "$root/bin/guest_httpd" "$repo/guest/guest_httpd.c"
strip "$root/bin/guest_httpd"
: > "$root/etc/modules.order"
for p in "${order[@]}"; do
  name=$(basename "$p"); name=${name%%.ko*}
  # busybox insmod reads plain ELF only: decompress here if the kernel compresses.
  case "$p" in
    *.ko.xz)  xz -dc "$moddir/$p" > "$root/lib/modules/$name.ko" ;;
    *.ko.zst) zstd -qdc "$moddir/$p" > "$root/lib/modules/$name.ko" ;;
    *.ko.gz)  gzip -dc "$moddir/$p" > "$root/lib/modules/$name.ko" ;;
    *)        cp "$moddir/$p" "$root/lib/modules/$name.ko" ;;
  esac
  echo "$name" >> "$root/etc/modules.order"
done
echo "build-guest: modules $(tr '\n' ' ' < "$root/etc/modules.order")"
# The kernel opens /dev/console for /init's stdio before devtmpfs is mounted.
# Creating the node needs root; without it /init reattaches to the console itself.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null ||
  echo "build-guest: not root, initramfs without /dev/console (init reopens it)"

(cd "$root" && find . -print0 | sort -z | cpio --null -o -H newc --owner=0:0 --quiet) |
  gzip -9 > "$work/initrd.img"

# 4. Publish atomically: files first, stamp last.
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
cp "$work/initrd.img" "$out/initrd.img.tmp" && mv "$out/initrd.img.tmp" "$out/initrd.img"
echo "$kver" > "$out/kernel-version"
echo "$key" > "$out/.stamp"
echo "build-guest: built $out (kernel $kver, initrd $(stat -c %s "$out/initrd.img") bytes)"
