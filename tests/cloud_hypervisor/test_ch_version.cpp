#include <doctest/doctest.h>

#include "vmm/cloud_hypervisor/ch_version.h"

using namespace s2z;
using namespace s2z::vmm::ch;

TEST_CASE("parseChVersion reads the --version output and vmm.ping versions") {
  auto v = parseChVersion("cloud-hypervisor v45.0\n");
  REQUIRE(v.ok());
  CHECK(*v == ChVersion{45, 0, 0});
  CHECK(v->str() == "v45.0");

  auto dirty = parseChVersion("cloud-hypervisor v41.0.2-dirty");
  REQUIRE(dirty.ok());
  CHECK(*dirty == ChVersion{41, 0, 2});
  CHECK(dirty->str() == "v41.0.2");

  auto bare = parseChVersion("52.1");
  REQUIRE(bare.ok());
  CHECK(*bare == ChVersion{52, 1, 0});
}

TEST_CASE("parseChVersion refuses text without a version") {
  auto v = parseChVersion("cloud-hypervisor: command not understood");
  REQUIRE_FALSE(v.ok());
  CHECK(v.error().code == ErrorCode::kInvalidArgument);
  CHECK_FALSE(parseChVersion("").ok());
  CHECK_FALSE(parseChVersion("vX.Y").ok());
}

TEST_CASE("capabilities follow the release notes") {
  CHECK_FALSE(capabilitiesFor({39, 0, 0}).netFdsOnRestore);
  CHECK(capabilitiesFor({40, 0, 0}).netFdsOnRestore);
  CHECK(capabilitiesFor({52, 0, 0}).netFdsOnRestore);
}

TEST_CASE("checkSupported refuses versions that cannot pass tap fds on restore") {
  CHECK(checkSupported({40, 0, 0}).ok());
  auto old = checkSupported({39, 0, 0});
  REQUIRE_FALSE(old.ok());
  CHECK(old.error().code == ErrorCode::kFailedPrecondition);
  CHECK(old.error().message ==
        "cloud-hypervisor v39.0 is too old: v40 or newer is needed to pass tap fds on restore");
}
