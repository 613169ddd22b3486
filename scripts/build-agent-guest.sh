#!/usr/bin/env bash
# Builds the guest that runs the s2z guest agent as PID 1:
#   <out>/vmlinuz     the Debian cloud kernel (as scripts/build-guest.sh gets it)
#   <out>/initrd.img  cpio newc, gzip -9: /init (the static agent), /etc/modules.order,
#                     /lib/modules/*.ko (decompressed) for virtio, vsock, ext4 and overlay
#                     plus their dependencies, /dev/console, empty mount points
# Nothing else: the workload's programs come from the task's root disk.
# Cached: does nothing when <out>/.stamp matches the hash of this script, the
# shared kernel code and the agent binary.
# Usage: scripts/build-agent-guest.sh <agent-binary> <out-dir> [--force]
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 <agent-binary> <out-dir> [--force]" >&2; exit 2; }
agent=$1
out=$2
force=${3:-}
debs=$repo/.cache/guest-debs
log_prefix=build-agent-guest
# shellcheck source=lib/guest-kernel.sh
. "$repo/scripts/lib/guest-kernel.sh"

# What the agent needs from modules; built-in ones are skipped, dependencies added.
# The vsock transport carries its channel on Cloud Hypervisor (no virtio-serial there).
wanted=(virtio_mmio virtio_pci virtio_net virtio_blk virtio_console ext4 overlay
        vmw_vsock_virtio_transport)
# The initramfs is unpacked into guest RAM at every cold boot: keep it small.
max_bytes=$((15 * 1024 * 1024))

[ -x "$agent" ] || { echo "$log_prefix: agent binary $agent missing" >&2; exit 1; }
mkdir -p "$debs"
guest_cache_check "$out" "$force" "$0" "$repo"/scripts/lib/guest-kernel.sh "$agent"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch_cloud_kernel "$debs" "$work"
module_closure "${wanted[@]}"

root=$work/root
mkdir -p "$root"/{dev,proc,sys,run,tmp,etc,lib/modules}
install -m 0755 "$agent" "$root/init"
install_modules "$root"
# The kernel opens /dev/console for /init's stdio before devtmpfs is mounted;
# without the node (not root here) the agent reattaches to the console itself.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null ||
  echo "$log_prefix: not root, initramfs without /dev/console (the agent reopens it)"
pack_initramfs "$root" "$work/initrd.img"

size=$(stat -c %s "$work/initrd.img")
if [ "$size" -gt "$max_bytes" ]; then
  echo "$log_prefix: initrd.img is $size bytes, over the $max_bytes limit" >&2
  exit 1
fi

publish_guest "$out" "$work" "$work/initrd.img"
echo "$log_prefix: built $out (kernel $kver, initrd.img $size bytes = $((size / 1024)) KiB, agent $(stat -c %s "$agent") bytes)"
