# Shared by scripts/build-guest.sh and scripts/build-agent-guest.sh: the Debian
# cloud kernel and the closure of the modules a guest initramfs needs.
# Source it from bash with `set -euo pipefail`; every function reports errors on
# stderr prefixed with $log_prefix (the calling script's name) and exits.

log_prefix=${log_prefix:-guest-kernel}

# guest_cache_check <out-dir> <force> <input-file>...
# Takes <out-dir>/.lock for the rest of the script (tests of several helpers
# may build at once: one builder at a time), sets the global `key` (the hash
# of the inputs) and exits the script when <out-dir> already holds vmlinuz
# and initrd.img built from them, unless <force> is --force.
guest_cache_check() {
  local out=$1 force=$2
  shift 2
  mkdir -p "$out"
  exec 9>"$out/.lock"
  flock 9
  key=$(cat "$@" | sha256sum | cut -d' ' -f1)
  if [ "$force" != "--force" ] && [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$key" ] &&
     [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; then
    echo "$log_prefix: up to date in $out"
    exit 0
  fi
}

# publish_guest <out-dir> <work-dir> <initrd>
# Moves the kernel and <initrd> into <out-dir> atomically, the stamp last.
publish_guest() {
  local out=$1 work=$2 initrd=$3
  cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
  cp "$initrd" "$out/initrd.img.tmp" && mv "$out/initrd.img.tmp" "$out/initrd.img"
  echo "$kver" > "$out/kernel-version"
  echo "$key" > "$out/.stamp"
}

# fetch_cloud_kernel <debs-dir> <work-dir>
# Unpacks the versioned image that linux-image-cloud-amd64 depends on into
# <work-dir>/kernel (fetched with `apt-get download` into <debs-dir> once, then
# reused), runs depmod there (the package ships no modules.dep: depmod runs at
# install time) and sets the globals kver (kernel release) and moddir.
fetch_cloud_kernel() {
  local debs=$1 work=$2 kpkg deb
  kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$kpkg" ] || { echo "$log_prefix: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }
  deb=$(ls "$debs"/"${kpkg}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    (cd "$debs" && apt-get download "$kpkg")
    deb=$(ls "$debs"/"${kpkg}"_*.deb | head -n1)
  fi
  echo "$log_prefix: kernel from $(basename "$deb")"
  dpkg-deb -x "$deb" "$work/kernel"
  kver=$(ls "$work/kernel/lib/modules" | head -n1)
  depmod -b "$work/kernel" "$kver"
  moddir=$work/kernel/lib/modules/$kver
}

# module_closure <module>...
# Sets the global array module_order: the paths (relative to $moddir) of the
# given modules and everything they depend on per modules.dep, dependencies
# first (depth-first), each once. A module built into the kernel
# (modules.builtin) needs no file and is skipped; an unknown one is an error.
module_closure() {
  local m p
  declare -gA module_seen=()
  module_order=()
  for m in "$@"; do
    p=$(_module_path_of "$m")
    if [ -z "$p" ]; then
      if _module_builtin "$m"; then
        echo "$log_prefix: module $m is built into $kver"
        continue
      fi
      echo "$log_prefix: module $m not in $kver" >&2
      exit 1
    fi
    _module_visit "$p"
  done
}

_module_path_of() {  # module name -> path relative to moddir, from modules.dep
  awk -F: -v m="$1" '{n=$1; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n);
                       if (n == m) {print $1; exit}}' "$moddir/modules.dep"
}

_module_builtin() {  # modules.builtin spells names with '_' or '-' as in the source tree
  local m=$1
  [ -f "$moddir/modules.builtin" ] || return 1
  awk -v a="$m" -v b="${m//_/-}" '{n=$1; sub(/.*\//, "", n); sub(/\.ko$/, "", n);
                                   if (n == a || n == b) {found=1; exit}} END {exit !found}' \
    "$moddir/modules.builtin"
}

_module_visit() {  # $1: path relative to moddir
  local p=$1 dep
  [ -n "${module_seen[$p]:-}" ] && return
  module_seen[$p]=1
  for dep in $(awk -F: -v p="$p" '$1 == p {print $2; exit}' "$moddir/modules.dep"); do
    _module_visit "$dep"
  done
  module_order+=("$p")
}

# install_modules <initramfs-root>
# Copies every module of module_order to <root>/lib/modules/<name>.ko,
# decompressed (busybox insmod and finit_module without flags read plain ELF),
# and writes their names, in load order, to <root>/etc/modules.order.
install_modules() {
  local root=$1 p name
  mkdir -p "$root/lib/modules" "$root/etc"
  : > "$root/etc/modules.order"
  for p in "${module_order[@]}"; do
    name=$(basename "$p"); name=${name%%.ko*}
    case "$p" in
      *.ko.xz)  xz -dc "$moddir/$p" > "$root/lib/modules/$name.ko" ;;
      *.ko.zst) zstd -qdc "$moddir/$p" > "$root/lib/modules/$name.ko" ;;
      *.ko.gz)  gzip -dc "$moddir/$p" > "$root/lib/modules/$name.ko" ;;
      *)        cp "$moddir/$p" "$root/lib/modules/$name.ko" ;;
    esac
    echo "$name" >> "$root/etc/modules.order"
  done
  echo "$log_prefix: modules $(tr '\n' ' ' < "$root/etc/modules.order")"
}

# pack_initramfs <root> <out-file>: cpio newc (owner root), gzip -9, stable order.
pack_initramfs() {
  (cd "$1" && find . -print0 | sort -z | cpio --null -o -H newc --owner=0:0 --quiet) |
    gzip -9 > "$2"
}
