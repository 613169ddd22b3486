// The health-check hooks on a real cgroup: every packet of the health
// checker carries the mark (counted only as health traffic), and while an
// instance sleeps its connects land on the responder, not on the tap.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <poll.h>

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "bpf/health_check_hooks.h"
#include "bpf/kernel_scale_to_zero.h"
#include "tests/bpf/http_peer.h"
#include "tests/bpf/test_env.h"
#include "tests/err_text.h"

namespace s2z::bpf {
namespace {

using namespace test;

constexpr uint32_t kHealthMark = 0x4000;

uint32_t addrBe(const char* dotted) {
  in_addr a{};
  inet_pton(AF_INET, dotted, &a);
  return a.s_addr;
}

std::unique_ptr<KernelScaleToZero> openKernel(const TestPinRoot& pins) {
  auto opened = KernelScaleToZero::open(pins.path(), kHealthMark);
  REQUIRE_MESSAGE(opened.ok(), s2z::tests::errText(opened));
  return std::move(*opened);
}

std::unique_ptr<KernelHealthCheckHooks> attachHooks(const TestPinRoot& pins,
                                                    const TestCgroup& cgroup) {
  auto hooks = KernelHealthCheckHooks::attach(pins.path(), cgroup.relPath(), kHealthMark);
  REQUIRE_MESSAGE(hooks.ok(), s2z::tests::errText(hooks));
  return std::move(*hooks);
}

// Programs attached to `cgroupDir` for `type` (through links or not).
uint32_t attachedCount(const std::filesystem::path& cgroupDir, bpf_attach_type type) {
  UniqueFd fd(::open(cgroupDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(fd.valid());
  uint32_t ids[8] = {};
  uint32_t count = 8;
  uint32_t flags = 0;
  REQUIRE(bpf_prog_query(fd.get(), type, 0, &flags, ids, &count) == 0);
  return count;
}

InstanceCounters countersOf(const KernelScaleToZero& k, uint32_t ifindex) {
  auto c = k.counters(ifindex);
  REQUIRE_MESSAGE(c.ok(), s2z::tests::errText(c));
  return *c;
}

}  // namespace

TEST_CASE("health hooks: 30 connection attempts from the health cgroup add nothing to activity") {
  TestPinRoot pins("hc30");
  TestCgroup cgroup("hc30");
  TestNetns ns("hc30");
  TestTap tap(ns);
  auto kernel = openKernel(pins);
  REQUIRE(kernel->addInstance(tap.ifindex(), addrBe(TestTap::kVmAddr)).ok());
  auto hooks = attachHooks(pins, cgroup);
  tap.drainFrames();

  int rc = runChild(&cgroup, [] {
    for (int i = 0; i < 30; ++i)
      if (!startTcpConnect(TestTap::kVmAddr, 8080).valid()) return 1;
    return 0;
  });
  REQUIRE(rc == 0);
  auto c = countersOf(*kernel, tap.ifindex());
  CHECK(c.packets == 0);
  CHECK(c.healthPackets == 30);
  CHECK(c.lastActivityNs == 0);
  CHECK(tap.drainFrames().size() == 30);  // the SYNs did reach the tap

  // The same attempts from outside the cgroup are activity.
  rc = runChild(nullptr, [] { return startTcpConnect(TestTap::kVmAddr, 8080).valid() ? 0 : 1; });
  REQUIRE(rc == 0);
  CHECK(countersOf(*kernel, tap.ifindex()).packets == 1);
}

TEST_CASE("health hooks: every packet of full HTTP checks carries the mark") {
  TestPinRoot pins("hchttp");
  TestCgroup cgroup("hchttp");
  TestNetns vm("hchttp-vm");
  TestNetns host("hchttp");  // constructed last: this thread ends up here
  TestVethVm veth(host, vm);
  auto kernel = openKernel(pins);
  REQUIRE(kernel->addInstance(veth.hostIfindex(), addrBe(TestVethVm::kVmAddr)).ok());
  auto hooks = attachHooks(pins, cgroup);

  vm.enter();
  HttpServer server(TestVethVm::kVmAddr, 8080);
  host.enter();

  constexpr int kChecks = 30;
  int rc = runChild(&cgroup, [] {
    for (int i = 0; i < kChecks; ++i)
      if (int r = httpGet(TestVethVm::kVmAddr, 8080); r != 0) return 10 + r;
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(server.accepted() == kChecks);
  auto c = countersOf(*kernel, veth.hostIfindex());
  CHECK(c.packets == 0);
  // SYN, ACK, request, ACK of the reply, FIN, last ACK: at least 5 each.
  CHECK(c.healthPackets >= 5u * kChecks);
  MESSAGE("30 HTTP checks: " << c.healthPackets << " health packets, " << c.packets
                             << " counted");

  // One request from outside the health cgroup is real activity.
  rc = runChild(nullptr, [] { return httpGet(TestVethVm::kVmAddr, 8080); });
  REQUIRE(rc == 0);
  CHECK(countersOf(*kernel, veth.hostIfindex()).packets >= 5);
}

TEST_CASE("health hooks: ACKs sent from TIME_WAIT carry the mark too") {
  TestPinRoot pins("hctw");
  TestCgroup cgroup("hctw");
  TestNetns vm("hctw-vm");
  TestNetns host("hctw");
  TestVethVm veth(host, vm);
  auto kernel = openKernel(pins);
  REQUIRE(kernel->addInstance(veth.hostIfindex(), addrBe(TestVethVm::kVmAddr)).ok());
  auto hooks = attachHooks(pins, cgroup);
  vm.enter();
  HttpServer server(TestVethVm::kVmAddr, 8080);
  host.enter();
  // The "VM" drops the client's pure ACKs, so it keeps retransmitting its
  // FIN after the client closed, and the client's TIME_WAIT socket (no
  // process owns it any more) answers each one.
  REQUIRE(sh("ip netns exec " + vm.name() +
             " iptables -A INPUT -p tcp --dport 8080 --tcp-flags SYN,ACK,FIN,RST,PSH ACK -j DROP") ==
          0);

  REQUIRE(runChild(&cgroup, [] { return httpGet(TestVethVm::kVmAddr, 8080); }) == 0);
  const auto atExit = countersOf(*kernel, veth.hostIfindex());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // FIN retransmits (RTO >= 200 ms)
  const auto later = countersOf(*kernel, veth.hostIfindex());
  CHECK(later.healthPackets > atExit.healthPackets);  // TIME_WAIT ACKs were sent...
  CHECK(later.packets == 0);                          // ...and none counted as activity
  MESSAGE("TIME_WAIT ACKs after the checker exited: "
          << later.healthPackets - atExit.healthPackets << ", counted " << later.packets);

  // Control: the same exchange from outside the cgroup leaves TIME_WAIT ACKs
  // that do count, so the check above could fail.
  REQUIRE(runChild(nullptr, [] { return httpGet(TestVethVm::kVmAddr, 8080); }) == 0);
  const auto plainExit = countersOf(*kernel, veth.hostIfindex());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  CHECK(countersOf(*kernel, veth.hostIfindex()).packets > plainExit.packets);
}

TEST_CASE("health hooks: connects to a sleeping instance land on the responder") {
  TestPinRoot pins("hcredir");
  TestCgroup cgroup("hcredir");
  TestNetns ns("hcredir");
  TestTap tap(ns);
  auto kernel = openKernel(pins);
  REQUIRE(kernel->addInstance(tap.ifindex(), addrBe(TestTap::kVmAddr)).ok());
  auto hooks = attachHooks(pins, cgroup);
  HttpServer responder("127.0.0.1", 0);
  REQUIRE(hooks->setResponder(addrBe("127.0.0.1"), responder.port()).ok());
  tap.drainFrames();

  REQUIRE(kernel->setState(tap.ifindex(), InstanceState::kSleeping).ok());
  int rc = runChild(&cgroup, [] { return httpGet(TestTap::kVmAddr, 8080); });
  CHECK(rc == 0);
  rc = runChild(&cgroup, [] { return httpGet("::ffff:10.89.0.2", 8080); });  // connect6
  CHECK(rc == 0);
  CHECK(responder.accepted() == 2);
  auto c = countersOf(*kernel, tap.ifindex());
  CHECK(c.packets == 0);
  CHECK(c.healthPackets == 0);  // nothing reached the tap at all
  CHECK(tap.drainFrames().empty());
  CHECK(*kernel->state(tap.ifindex()) == InstanceState::kSleeping);
  CHECK(kernel->drainWakeEvents().empty());

  // Outside the health cgroup nothing is redirected: the SYN goes to the
  // tap and wakes the instance.
  rc = runChild(nullptr, [] { return startTcpConnect(TestTap::kVmAddr, 8080).valid() ? 0 : 1; });
  CHECK(rc == 0);
  CHECK(kernel->drainWakeEvents().size() == 1);

  // While running, the health cgroup's connect goes to the VM address.
  REQUIRE(kernel->setState(tap.ifindex(), InstanceState::kRunning).ok());
  tap.drainFrames();
  rc = runChild(&cgroup, [] { return startTcpConnect(TestTap::kVmAddr, 8080).valid() ? 0 : 1; });
  CHECK(rc == 0);
  int syns = 0;
  for (const auto& frame : tap.drainFrames()) {
    auto info = parseFrame(frame);
    if (info.syn && info.dport == 8080 && info.dstBe == addrBe(TestTap::kVmAddr)) ++syns;
  }
  CHECK(syns == 1);
  CHECK(responder.accepted() == 2);
  CHECK(countersOf(*kernel, tap.ifindex()).healthPackets == 1);
}

TEST_CASE("health hooks: re-attaching never attaches twice; detach removes them") {
  TestPinRoot pins("hcre");
  TestCgroup first("hcre-a");
  TestCgroup second("hcre-b");
  const auto types = {BPF_CGROUP_INET_SOCK_CREATE, BPF_CGROUP_INET4_CONNECT,
                      BPF_CGROUP_INET6_CONNECT};
  {
    auto hooks = attachHooks(pins, first);
    auto again = attachHooks(pins, first);  // while the first object lives
  }
  auto restarted = attachHooks(pins, first);  // a new process would do this
  for (auto type : types) CHECK(attachedCount(first.dir(), type) == 1);

  // Configured for another cgroup: moved, not duplicated.
  auto moved = attachHooks(pins, second);
  for (auto type : types) {
    CHECK(attachedCount(first.dir(), type) == 0);
    CHECK(attachedCount(second.dir(), type) == 1);
  }
  REQUIRE(moved->detach().ok());
  for (auto type : types) CHECK(attachedCount(second.dir(), type) == 0);
  CHECK(moved->detach().ok());  // again: nothing to do

  auto missing = KernelHealthCheckHooks::attach(pins.path(), "/s2z-no-such-cgroup", kHealthMark);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("/s2z-no-such-cgroup") != std::string::npos);
}

}  // namespace s2z::bpf
