// The task's cgroup on the real cgroup v2 mount (root): made and removed,
// refused on a v1 or missing parent. On a hybrid host (the test machines:
// the memory controller on cgroup v1, cgroup2 at /sys/fs/cgroup/unified
// without controllers) memory.current is absent: kNotFound, not 0.
#include <unistd.h>

#include <doctest/doctest.h>

#include <fstream>

#include "agent/task_cgroup.h"

namespace s2z::agent {
namespace {

std::filesystem::path cgroup2Mount() {
  std::ifstream mounts("/proc/mounts");
  std::string dev, dir, type;
  while (mounts >> dev >> dir >> type) {
    if (type == "cgroup2") return dir;
    mounts.ignore(4096, '\n');
  }
  return {};
}

TEST_CASE("task cgroup: made under a cgroup v2 parent, removed once empty; a v1 or missing parent is refused") {
  auto mount = cgroup2Mount();
  REQUIRE_MESSAGE(!mount.empty(), "no cgroup2 mount in /proc/mounts");
  auto scope = mount / ("s2z-agent-test-" + std::to_string(::getpid()) + ".scope");
  REQUIRE(ensureTaskCgroup(scope).ok());
  CHECK(std::filesystem::exists(scope / "cgroup.procs"));
  CHECK(ensureTaskCgroup(scope).ok());  // again: already there
  auto charged = cgroupMemoryCurrent(scope);
  if (std::filesystem::exists(scope / "memory.current")) {
    CHECK(charged.ok());
  } else {
    CHECK(charged.error().code == ErrorCode::kNotFound);
  }
  REQUIRE(removeTaskCgroup(scope).ok());
  CHECK_FALSE(std::filesystem::exists(scope));
  CHECK(removeTaskCgroup(scope).ok());  // idempotent

  auto missing = ensureTaskCgroup(mount / "s2z-no-such.slice" / "a.web.scope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kFailedPrecondition);
  auto notV2 = ensureTaskCgroup("/tmp/a.web.scope");
  REQUIRE_FALSE(notV2.ok());
  CHECK(notV2.error().code == ErrorCode::kUnimplemented);
  CHECK_FALSE(std::filesystem::exists("/tmp/a.web.scope"));
}

}  // namespace
}  // namespace s2z::agent
