#!/usr/bin/env bash
# Builds the test guest from Debian packages only:
#   <out>/vmlinuz     the Debian cloud kernel (linux-image-cloud-amd64's dependency)
#   <out>/initrd.img  busybox-static initramfs (cpio newc, gzip) with the virtio,
#                     ACPI button and evdev modules, guest/init, guest/power-button
#                     and guest/guest_httpd (static), plus qemu-guest-agent
#                     (Debian's qemu-ga with the host's copies of its libraries)
# <out> is $S2Z_GUEST_DIR or <repo>/.cache/guest. The kernel package is fetched with
# `apt-get download` and unpacked with dpkg-deb; nothing is installed on the host.
# Cached: does nothing when <out>/.stamp matches the hash of this script and guest/.
# Usage: scripts/build-guest.sh [--force]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${S2Z_GUEST_DIR:-$repo/.cache/guest}
debs=$repo/.cache/guest-debs
force=${1:-}
log_prefix=build-guest  # shellcheck disable=SC2034  # read by lib/guest-kernel.sh
# shellcheck source=lib/guest-kernel.sh
. "$repo/scripts/lib/guest-kernel.sh"

# Modules the guest needs; their dependencies are added from modules.dep.
# button + evdev turn the VMM's ACPI power button into an input event for acpid.
# virtio_console carries qemu-guest-agent's port.
wanted=(virtio_mmio virtio_pci virtio_net virtio_blk virtio_console button evdev)

mkdir -p "$debs"
guest_cache_check "$out" "$force" "$0" "$repo"/scripts/lib/guest-kernel.sh "$repo"/guest/init \
  "$repo"/guest/power-button "$repo"/guest/guest_httpd.c

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Kernel package, 2. module load order (scripts/lib/guest-kernel.sh).
fetch_cloud_kernel "$debs" "$work"
module_closure "${wanted[@]}"

# 3. Initramfs tree.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc/acpi/PWRF,lib/modules}
# busybox-static: the shell and tools need no shared libraries (only qemu-ga does).
busybox=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$')
cp "$busybox" "$root/bin/busybox"
install -m 0755 "$repo/guest/init" "$root/init"
# busybox acpid maps KEY_POWER to the action PWRF/00000080 under /etc/acpi.
install -m 0755 "$repo/guest/power-button" "$root/etc/acpi/PWRF/00000080"
gcc -static -O2 -Wall -Wextra -o "$root/bin/guest_httpd" "$repo/guest/guest_httpd.c"
strip "$root/bin/guest_httpd"
install_modules "$root"
# qemu-guest-agent: the plugin sets an agent-less guest's clock through it
# after a wake. Its libraries are the host's: the same Debian release.
qga_deb=$(ls "$debs"/qemu-guest-agent_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$qga_deb" ]; then
  (cd "$debs" && apt-get download qemu-guest-agent)
  qga_deb=$(ls "$debs"/qemu-guest-agent_*.deb | head -n1)
fi
dpkg-deb -x "$qga_deb" "$work/qga"
install -m 0755 "$work/qga/usr/sbin/qemu-ga" "$root/bin/qemu-ga"
for lib in $(ldd "$root/bin/qemu-ga" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/lib64\// {print $1}'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# guest-set-time runs /sbin/hwclock -w after setting the clock.
mkdir -p "$root/sbin"
ln -sf /bin/busybox "$root/sbin/hwclock"
# The kernel opens /dev/console for /init's stdio before devtmpfs is mounted.
# Creating the node needs root; without it /init reattaches to the console itself.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null ||
  echo "build-guest: not root, initramfs without /dev/console (init reopens it)"

pack_initramfs "$root" "$work/initrd.img"

# 4. Publish atomically: files first, stamp last.
publish_guest "$out" "$work" "$work/initrd.img"
echo "build-guest: built $out (kernel $kver, initrd $(stat -c %s "$out/initrd.img") bytes)"
