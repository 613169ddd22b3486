#!/usr/bin/env bash
# Installs every package s2z-kata needs to build, test and demo, from Debian's archive.
# Idempotent: packages already present are left as they are.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # gRPC and protobuf (proto/ and driver/)
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # eBPF (bpf/): clang -target bpf, skeletons, libbpf
  clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev linux-libc-dev
  libclang-rt-14-dev  # libFuzzer and sanitizer runtimes of clang 14 (scripts/fuzz.sh)
  # libraries
  libyaml-cpp-dev libspdlog-dev libfmt-dev doctest-dev libmsgpack-cxx-dev nlohmann-json3-dev
  # Kata configuration*.toml reader (vmm/kata)
  libtomlplusplus-dev
  # VMs and networking
  qemu-system-x86 iproute2 iptables kmod
  # group networking tests: Debian's CNI plugins (bridge, host-local, firewall, portmap, loopback)
  containernetworking-plugins
  # test guest build (scripts/build-guest.sh) and tests
  busybox-static cpio xz-utils zstd curl procps util-linux gettext-base
  # guest agent tests: a Debian root filesystem as an ext4 image (scripts/build-rootfs.sh)
  mmdebstrap e2fsprogs
  # OCI images: pull and unpack (image/), test images (scripts/build-rootfs.sh)
  skopeo umoci
  # image tests: a real registry with htpasswd auth and TLS from a test CA
  docker-registry apache2-utils openssl libcap2-bin
  # benchmark plots (s2z-wake-bench --plot)
  gnuplot-nox
  # the Consul Connect sidecar's stand-in in s2z-group-bench's routed rows (a TCP proxy)
  socat
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
