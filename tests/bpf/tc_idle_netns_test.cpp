// The TC classifier on a real tap in a test namespace: exact counts, frames
// still delivered (queued in the held tap), one wake event per sleep.
#include <arpa/inet.h>
#include <poll.h>
#include <time.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "bpf/kernel_scale_to_zero.h"
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

uint64_t monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + ts.tv_nsec;
}

bool readable(int fd, int timeoutMs) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeoutMs) == 1;
}

struct TapFixture {
  explicit TapFixture(const std::string& tag) : pins(tag), ns(tag), tap(ns) {
    auto opened = KernelScaleToZero::open(pins.path(), kHealthMark);
    REQUIRE_MESSAGE(opened.ok(), s2z::tests::errText(opened));
    kernel = std::move(*opened);
    auto added = kernel->addInstance(tap.ifindex(), addrBe(TestTap::kVmAddr));
    REQUIRE_MESSAGE(added.ok(), s2z::tests::errText(added));
    tap.drainFrames();
  }
  InstanceCounters counters() const {
    auto c = kernel->counters(tap.ifindex());
    REQUIRE_MESSAGE(c.ok(), s2z::tests::errText(c));
    return *c;
  }

  TestPinRoot pins;
  TestNetns ns;
  TestTap tap;
  std::unique_ptr<KernelScaleToZero> kernel;  // destroyed first
};

}  // namespace

TEST_CASE("tc_idle on a tap: N packets toward the VM are counted exactly, and delivered") {
  TapFixture f("count");
  const auto before = f.counters();
  CHECK(before.packets == 0);

  constexpr int kUdp = 40;
  constexpr size_t kPayload = 100;
  sendUdp(TestTap::kVmAddr, 9, kUdp, kPayload);
  constexpr int kTcp = 10;
  for (int i = 0; i < kTcp; ++i) {
    UniqueFd s = startTcpConnect(TestTap::kVmAddr, 8080);
    REQUIRE(s.valid());
  }  // closed in SYN_SENT: nothing more is sent, so exactly one SYN each

  const auto after = f.counters();
  CHECK(after.packets == kUdp + kTcp);
  CHECK(after.healthPackets == 0);
  const uint64_t udpFrame = 14 + 20 + 8 + kPayload;
  CHECK(after.bytes >= kUdp * udpFrame);
  CHECK(after.lastActivityNs > 0);
  CHECK(after.lastActivityNs <= monotonicNs());

  // Never dropped: every frame is queued in the held tap.
  int udp = 0, syn = 0;
  for (const auto& frame : f.tap.drainFrames()) {
    auto info = parseFrame(frame);
    CHECK(info.dstBe == addrBe(TestTap::kVmAddr));
    if (info.protocol == IPPROTO_UDP && info.dport == 9) ++udp;
    if (info.protocol == IPPROTO_TCP && info.dport == 8080 && info.syn) ++syn;
  }
  CHECK(udp == kUdp);
  CHECK(syn == kTcp);
}

TEST_CASE("tc_idle on a tap: a sleeping instance wakes on the first real packet, once") {
  TapFixture f("wake");
  REQUIRE(f.kernel->setState(f.tap.ifindex(), InstanceState::kSleeping).ok());
  CHECK(f.kernel->drainWakeEvents().empty());
  CHECK_FALSE(readable(f.kernel->wakeEventFd(), 0));

  const uint64_t sentAt = monotonicNs();
  sendUdp(TestTap::kVmAddr, 80, 1, 32);
  REQUIRE(readable(f.kernel->wakeEventFd(), 1000));
  const uint64_t seenAt = monotonicNs();
  auto events = f.kernel->drainWakeEvents();
  REQUIRE(events.size() == 1);
  CHECK(events[0].ifindex == f.tap.ifindex());
  CHECK(events[0].timestampNs >= sentAt);
  CHECK(events[0].timestampNs <= seenAt);
  auto state = f.kernel->state(f.tap.ifindex());
  REQUIRE(state.ok());
  CHECK(*state == InstanceState::kWaking);

  // More packets while waking: counted, no second event.
  sendUdp(TestTap::kVmAddr, 80, 9, 32);
  CHECK_FALSE(readable(f.kernel->wakeEventFd(), 100));
  CHECK(f.kernel->drainWakeEvents().empty());
  CHECK(f.counters().packets == 10);
  CHECK(f.tap.drainFrames().size() == 10);  // all queued for the restored VM

  // The next sleep wakes again, with its own single event.
  REQUIRE(f.kernel->setState(f.tap.ifindex(), InstanceState::kSleeping).ok());
  sendUdp(TestTap::kVmAddr, 80, 3, 32);
  REQUIRE(readable(f.kernel->wakeEventFd(), 1000));
  CHECK(f.kernel->drainWakeEvents().size() == 1);
}

TEST_CASE("tc_idle on a tap: wake latency, packet -> a thread blocked in epoll has the event") {
  TapFixture f("latency");
  constexpr int kRuns = 50;
  std::mutex mu;  // guards latencies
  std::vector<uint64_t> latencies;
  std::atomic<bool> stop{false};
  // The agent's event loop: blocked in poll on the ring's epoll fd.
  std::thread waiter([&] {
    while (!stop) {
      if (!readable(f.kernel->wakeEventFd(), 50)) continue;
      auto events = f.kernel->drainWakeEvents();
      const uint64_t now = monotonicNs();
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& ev : events) latencies.push_back(now - ev.timestampNs);
    }
  });
  auto seen = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return latencies.size();
  };
  for (int i = 0; i < kRuns; ++i) {
    REQUIRE(f.kernel->setState(f.tap.ifindex(), InstanceState::kSleeping).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let the waiter block
    sendUdp(TestTap::kVmAddr, 80, 1, 32);
    for (int t = 0; t < 1000 && seen() < static_cast<size_t>(i + 1); ++t)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  stop = true;
  waiter.join();
  REQUIRE(latencies.size() == kRuns);  // one event per sleep, none lost
  std::sort(latencies.begin(), latencies.end());
  const uint64_t median = latencies[kRuns / 2];
  const uint64_t p98 = latencies[kRuns * 98 / 100];
  MESSAGE("wake event latency over " << kRuns << " sleeps: median " << median / 1000 << " us, p98 "
                                      << p98 / 1000 << " us, max " << latencies.back() / 1000
                                      << " us");
  CHECK(median < 5'000'000);  // far below a restore; a regression to ms would show
  CHECK(f.tap.drainFrames().size() == kRuns);
}

TEST_CASE("tc_idle on a tap: health-marked packets never count and never wake") {
  TapFixture f("mark");
  REQUIRE(f.kernel->setState(f.tap.ifindex(), InstanceState::kSleeping).ok());
  // SO_MARK as the health checker's sockets would carry it.
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(s.valid());
  uint32_t mark = kHealthMark;
  REQUIRE(::setsockopt(s.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(80);
  dst.sin_addr.s_addr = addrBe(TestTap::kVmAddr);
  for (int i = 0; i < 5; ++i)
    REQUIRE(::sendto(s.get(), "hc", 2, 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == 2);
  CHECK_FALSE(readable(f.kernel->wakeEventFd(), 100));
  CHECK(f.counters().packets == 0);
  CHECK(f.counters().healthPackets == 5);
  CHECK(*f.kernel->state(f.tap.ifindex()) == InstanceState::kSleeping);

  // The mark can change at run time: the same packets become activity.
  REQUIRE(f.kernel->setHealthMark(0x8000).ok());
  REQUIRE(::sendto(s.get(), "hc", 2, 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) == 2);
  CHECK(readable(f.kernel->wakeEventFd(), 1000));
  CHECK(f.counters().packets == 1);
}

TEST_CASE("tc_idle on a tap: removeInstance detaches and forgets; addInstance is idempotent") {
  TapFixture f("remove");
  sendUdp(TestTap::kVmAddr, 9, 3, 10);
  // Re-adding keeps counters and state (recovery calls it again).
  REQUIRE(f.kernel->setState(f.tap.ifindex(), InstanceState::kSleeping).ok());
  REQUIRE(f.kernel->addInstance(f.tap.ifindex(), addrBe(TestTap::kVmAddr)).ok());
  CHECK(f.counters().packets == 3);
  CHECK(*f.kernel->state(f.tap.ifindex()) == InstanceState::kSleeping);
  auto attached = f.kernel->program().attachedProgramId(f.tap.ifindex());
  REQUIRE(attached.ok());
  CHECK(*attached == f.kernel->program().programId());

  REQUIRE(f.kernel->removeInstance(f.tap.ifindex(), addrBe(TestTap::kVmAddr)).ok());
  CHECK(f.kernel->counters(f.tap.ifindex()).error().code == ErrorCode::kNotFound);
  CHECK(f.kernel->state(f.tap.ifindex()).error().code == ErrorCode::kNotFound);
  CHECK(f.kernel->setState(f.tap.ifindex(), InstanceState::kRunning).error().code ==
        ErrorCode::kNotFound);
  CHECK(*f.kernel->program().attachedProgramId(f.tap.ifindex()) == 0u);
  CHECK(f.kernel->removeInstance(f.tap.ifindex(), addrBe(TestTap::kVmAddr)).ok());  // again: ok
  f.tap.drainFrames();
  sendUdp(TestTap::kVmAddr, 9, 2, 10);
  CHECK(f.tap.drainFrames().size() == 2);  // still delivered, just not counted
}

}  // namespace s2z::bpf
