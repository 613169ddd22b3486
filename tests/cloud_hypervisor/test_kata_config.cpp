#include <doctest/doctest.h>

#include "tests/cloud_hypervisor/test_util.h"

#include "vmm/kata/kata_config.h"

using namespace s2z;
using namespace s2z::vmm::kata;

namespace {
const std::filesystem::path kData = S2Z_CH_TEST_DATA;
}

TEST_CASE("configuration-clh.toml: Cloud Hypervisor with a block image") {
  auto k = loadKataConfig(kData / "configuration-clh.toml");
  REQUIRE_MESSAGE(k.ok(), s2z::tests::ch::errText(k));
  CHECK(k->hypervisor == s2z::vmm::Hypervisor::kCloudHypervisor);
  CHECK(k->hypervisorPath == "/opt/kata/bin/cloud-hypervisor");
  CHECK(k->kernel == "/opt/kata/share/kata-containers/vmlinux.container");
  CHECK(k->image == "/opt/kata/share/kata-containers/kata-containers.img");
  CHECK(k->initrd.empty());
  CHECK(k->memoryMib == 2048u);
  CHECK(k->vcpus == 1u);
}

TEST_CASE("configuration-qemu.toml: QEMU with an initrd and float vcpus") {
  auto k = loadKataConfig(kData / "configuration-qemu.toml");
  REQUIRE_MESSAGE(k.ok(), s2z::tests::ch::errText(k));
  CHECK(k->hypervisor == s2z::vmm::Hypervisor::kQemu);
  CHECK(k->hypervisorPath == "/usr/bin/qemu-system-x86_64");
  CHECK(k->initrd == "/opt/kata/share/kata-containers/kata-containers-initrd.img");
  CHECK(k->image.empty());
  CHECK(k->vcpus == 2u);
  CHECK(k->memoryMib == 512u);
}

TEST_CASE("virtio-fs is refused and the message says why") {
  auto k = loadKataConfig(kData / "configuration-clh-virtiofs.toml");
  REQUIRE_FALSE(k.ok());
  CHECK(k.error().code == ErrorCode::kInvalidArgument);
  CHECK(k.error().message.find("virtio-fs breaks snapshot restore in Cloud Hypervisor") !=
        std::string::npos);
  CHECK(k.error().message.find("shared_fs = \"none\"") != std::string::npos);
  CHECK(k.error().message.rfind("kata config ", 0) == 0);  // names the file first

  auto nydus = parseKataConfig(
      "[hypervisor.clh]\npath=\"/ch\"\nkernel=\"/k\"\nshared_fs=\"virtio-fs-nydus\"\n", "t");
  REQUIRE_FALSE(nydus.ok());
  CHECK(nydus.error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("missing file, bad TOML, wrong types, unsupported hypervisors") {
  auto missing = loadKataConfig(kData / "nope.toml");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kNotFound);

  auto broken = parseKataConfig("[hypervisor.clh\npath=", "broken.toml");
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.error().code == ErrorCode::kInvalidArgument);
  CHECK(broken.error().message.find("broken.toml") != std::string::npos);

  auto memType = parseKataConfig(
      "[hypervisor.clh]\npath=\"/ch\"\nkernel=\"/k\"\ndefault_memory=\"2G\"\n", "t");
  REQUIRE_FALSE(memType.ok());
  CHECK(memType.error().message.find("default_memory") != std::string::npos);

  auto vcpus = parseKataConfig(
      "[hypervisor.clh]\npath=\"/ch\"\nkernel=\"/k\"\ndefault_vcpus=1.5\n", "t");
  CHECK_FALSE(vcpus.ok());

  auto fc = parseKataConfig("[hypervisor.firecracker]\npath=\"/fc\"\nkernel=\"/k\"\n", "t");
  REQUIRE_FALSE(fc.ok());
  CHECK(fc.error().message.find("firecracker") != std::string::npos);

  auto none = parseKataConfig("[runtime]\nenable_debug=true\n", "t");
  CHECK_FALSE(none.ok());

  auto noKernel = parseKataConfig("[hypervisor.clh]\npath=\"/ch\"\n", "t");
  REQUIRE_FALSE(noKernel.ok());
  CHECK(noKernel.error().message.find("kernel") != std::string::npos);
}
