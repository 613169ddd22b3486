// A plugin restart, as the kernel side sees it: pinned maps keep counters
// and states, TC stays attached, stale ring records are dropped; pinned
// maps of an older layout are replaced; bpffs appears where it is hidden.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <sched.h>
#include <sys/mount.h>

#include <doctest/doctest.h>

#include "bpf/bpffs.h"
#include "bpf/kernel_scale_to_zero.h"
#include "bpf/s2z_types.h"
#include "tests/bpf/test_env.h"
#include "tests/err_text.h"

namespace s2z::bpf {
namespace {

using namespace test;

constexpr uint32_t kHealthMark = 0x4000;

uint32_t vmAddrBe() {
  in_addr a{};
  inet_pton(AF_INET, TestTap::kVmAddr, &a);
  return a.s_addr;
}

std::unique_ptr<KernelScaleToZero> openKernel(const TestPinRoot& pins) {
  auto opened = KernelScaleToZero::open(pins.path(), kHealthMark);
  REQUIRE_MESSAGE(opened.ok(), s2z::tests::errText(opened));
  return std::move(*opened);
}

}  // namespace

TEST_CASE("restart: a reopened KernelScaleToZero finds counters, state and attachment") {
  TestPinRoot pins("restart");
  TestNetns ns("restart");
  TestTap tap(ns);
  uint32_t firstProgram = 0;
  {
    auto kernel = openKernel(pins);
    REQUIRE(kernel->addInstance(tap.ifindex(), vmAddrBe()).ok());
    firstProgram = kernel->program().programId();
    sendUdp(TestTap::kVmAddr, 9, 7, 20);
    REQUIRE(kernel->setState(tap.ifindex(), InstanceState::kSleeping).ok());
    sendUdp(TestTap::kVmAddr, 9, 1, 20);  // wakes: a record nobody drains
  }  // the "plugin" exits without draining

  auto kernel = openKernel(pins);
  CHECK(kernel->replacedMaps() == 0);
  CHECK(kernel->drainWakeEvents().empty());  // the stale record was dropped at open
  auto state = kernel->state(tap.ifindex());
  REQUIRE(state.ok());
  CHECK(*state == InstanceState::kWaking);  // the map remembers the wake
  CHECK(kernel->counters(tap.ifindex())->packets == 8);
  // Still attached (the old program, which uses the same pinned maps).
  CHECK(*kernel->program().attachedProgramId(tap.ifindex()) == firstProgram);
  sendUdp(TestTap::kVmAddr, 9, 2, 20);
  CHECK(kernel->counters(tap.ifindex())->packets == 10);

  // Recovery re-registers: the new program takes over, nothing is reset.
  REQUIRE(kernel->addInstance(tap.ifindex(), vmAddrBe()).ok());
  CHECK(*kernel->program().attachedProgramId(tap.ifindex()) == kernel->program().programId());
  CHECK(kernel->counters(tap.ifindex())->packets == 10);
  REQUIRE(kernel->setState(tap.ifindex(), InstanceState::kSleeping).ok());
  sendUdp(TestTap::kVmAddr, 9, 1, 20);
  CHECK(kernel->drainWakeEvents().size() == 1);
  CHECK(kernel->counters(tap.ifindex())->packets == 11);
}

TEST_CASE("restart: a pinned map of another layout is replaced, not a load failure") {
  TestPinRoot pins("upgrade");
  REQUIRE(ensurePinDir(pins.path() / S2Z_PIN_LAYOUT).ok());
  // What an older plugin could have left: counters with a 16-byte value.
  const auto stalePath = pins.path() / S2Z_PIN_LAYOUT / "s2z_counters";
  {
    UniqueFd old(bpf_map_create(BPF_MAP_TYPE_HASH, "s2z_counters", 4, 16, 64, nullptr));
    REQUIRE(old.valid());
    REQUIRE(bpf_obj_pin(old.get(), stalePath.c_str()) == 0);
  }
  auto kernel = openKernel(pins);
  CHECK(kernel->replacedMaps() == 1);

  UniqueFd pinned(bpf_obj_get(stalePath.c_str()));
  REQUIRE(pinned.valid());
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  REQUIRE(bpf_obj_get_info_by_fd(pinned.get(), &info, &len) == 0);
  CHECK(info.value_size == sizeof(s2z_counters_value));
  CHECK(info.max_entries == S2Z_MAX_INSTANCES);

  // A second open reuses what the first created.
  kernel.reset();
  CHECK(openKernel(pins)->replacedMaps() == 0);
}

TEST_CASE("bpffs: mounted at /sys/fs/bpf when a remounted /sys hides it") {
  // As `ip netns exec` does: a private mount namespace with a fresh sysfs.
  int rc = runChild(nullptr, [] {
    if (::unshare(CLONE_NEWNS) != 0) return 1;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 2;
    if (::umount2("/sys", MNT_DETACH) != 0) return 3;
    if (::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) return 4;
    auto before = isOnBpffs("/sys/fs/bpf");
    if (!before.ok() || *before) return 5;  // hidden, as under ip netns exec
    const std::filesystem::path dir = "/sys/fs/bpf/s2z-test-hidden/v1";
    if (!ensurePinDir(dir).ok()) return 6;
    auto after = isOnBpffs(dir);
    return after.ok() && *after ? 0 : 7;
  });
  CHECK(rc == 0);

  auto outside = ensurePinDir("/tmp/s2z-not-bpffs");
  REQUIRE_FALSE(outside.ok());
  CHECK(outside.error().message.find("/tmp/s2z-not-bpffs") != std::string::npos);
}

}  // namespace s2z::bpf
