// BPF_PROG_TEST_RUN fixture table for the TC classifier (tc_idle.bpf.c) on
// private maps: input packet (mark), instance state before, expected verdict
// and expected map effect. Needs root; no network namespace, nothing attached.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <linux/bpf.h>

#include <memory>
#include <string>
#include <vector>

#include "bpf/s2z_types.h"
#include "bpf/tc_idle_program.h"
#include "packets.h"
#include "tests/err_text.h"

namespace s2z::bpf {
namespace {

using test::ipv4;
using test::tcpSynFrame;

constexpr uint32_t kLoopback = 1;  // test_run needs a real device: lo exists everywhere
constexpr uint32_t kHealthMark = 0x4000;
constexpr int kTcActOk = 0;
constexpr uint32_t kUnregistered = 0;

struct Case {
  const char* name;
  uint32_t stateBefore;  // kUnregistered: ifindex not in the maps
  uint32_t healthMask;
  uint32_t mark;
  int packets;           // how many times the frame is run
  // expected
  uint64_t counted;
  uint64_t healthCounted;
  uint32_t stateAfter;
  int events;
};

const Case kCases[] = {
    {"plain packet is counted", S2Z_STATE_RUNNING, kHealthMark, 0, 1, 1, 0, S2Z_STATE_RUNNING, 0},
    {"health-marked packet counts only as health", S2Z_STATE_RUNNING, kHealthMark, kHealthMark, 3,
     0, 3, S2Z_STATE_RUNNING, 0},
    {"health bit among other mark bits", S2Z_STATE_RUNNING, kHealthMark, kHealthMark | 0x3, 1, 0, 1,
     S2Z_STATE_RUNNING, 0},
    {"other mark bits are activity", S2Z_STATE_RUNNING, kHealthMark, 0x2000, 1, 1, 0,
     S2Z_STATE_RUNNING, 0},
    {"mask 0: health filtering off", S2Z_STATE_RUNNING, 0, kHealthMark, 1, 1, 0, S2Z_STATE_RUNNING,
     0},
    {"RUNNING: 10 packets, no event", S2Z_STATE_RUNNING, kHealthMark, 0, 10, 10, 0,
     S2Z_STATE_RUNNING, 0},
    {"SLEEPING: 10 packets -> WAKING, exactly one event", S2Z_STATE_SLEEPING, kHealthMark, 0, 10,
     10, 0, S2Z_STATE_WAKING, 1},
    {"SLEEPING: health packets never wake", S2Z_STATE_SLEEPING, kHealthMark, kHealthMark, 10, 0, 10,
     S2Z_STATE_SLEEPING, 0},
    {"WAKING: counted, no further event", S2Z_STATE_WAKING, kHealthMark, 0, 5, 5, 0,
     S2Z_STATE_WAKING, 0},
};

int countEvent(void* ctx, void* data, size_t size) {
  auto* seen = static_cast<std::vector<s2z_wake_event>*>(ctx);
  REQUIRE(size == sizeof(s2z_wake_event));
  seen->push_back(*static_cast<s2z_wake_event*>(data));
  return 0;
}

struct RingDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};

// Runs `frame` through the program once with skb->ifindex and skb->mark set.
int runOnce(int progFd, const std::vector<uint8_t>& frame, uint32_t ifindex, uint32_t mark) {
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  ctx.mark = mark;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = 1);
  REQUIRE(bpf_prog_test_run_opts(progFd, &opts) == 0);
  return static_cast<int>(opts.retval);
}

}  // namespace

TEST_CASE("tc_idle: fixture table (BPF_PROG_TEST_RUN)") {
  const auto frame = tcpSynFrame(ipv4("10.89.0.1"), ipv4("10.89.0.2"), 8080);
  for (const Case& c : kCases) {
    const std::string name = c.name;
    CAPTURE(name);
    auto program = TcIdleProgram::load({});  // fresh private maps per case
    REQUIRE_MESSAGE(program.ok(), s2z::tests::errText(program));
    TcIdleProgram& prog = **program;
    REQUIRE(prog.setHealthMask(c.healthMask).ok());
    uint32_t ifindex = kLoopback;
    if (c.stateBefore != kUnregistered) {
      s2z_state_value st{c.stateBefore, 0};
      s2z_counters_value zero{};
      REQUIRE(bpf_map_update_elem(prog.stateMapFd(), &ifindex, &st, BPF_NOEXIST) == 0);
      REQUIRE(bpf_map_update_elem(prog.countersMapFd(), &ifindex, &zero, BPF_NOEXIST) == 0);
    }
    std::vector<s2z_wake_event> events;
    std::unique_ptr<ring_buffer, RingDeleter> ring(
        ring_buffer__new(prog.wakeRingFd(), countEvent, &events, nullptr));
    REQUIRE(ring);

    for (int i = 0; i < c.packets; ++i)
      CHECK(runOnce(prog.programFd(), frame, kLoopback, c.mark) == kTcActOk);

    s2z_counters_value v{};
    REQUIRE(bpf_map_lookup_elem(prog.countersMapFd(), &ifindex, &v) == 0);
    CHECK(v.packets == c.counted);
    CHECK(v.bytes == c.counted * frame.size());
    CHECK(v.health_packets == c.healthCounted);
    CHECK((v.last_activity_ns != 0) == (c.counted != 0));
    s2z_state_value st{};
    REQUIRE(bpf_map_lookup_elem(prog.stateMapFd(), &ifindex, &st) == 0);
    CHECK(st.state == c.stateAfter);
    REQUIRE(ring_buffer__consume(ring.get()) >= 0);
    CHECK(events.size() == static_cast<size_t>(c.events));
    for (const auto& ev : events) {
      CHECK(ev.ifindex == kLoopback);
      // The first counted packet woke it; later ones moved last activity on.
      CHECK(ev.timestamp_ns > 0);
      CHECK(ev.timestamp_ns <= v.last_activity_ns);
    }
  }
}

TEST_CASE("tc_idle: unknown instance passes untouched") {
  auto program = TcIdleProgram::load({});
  REQUIRE_MESSAGE(program.ok(), s2z::tests::errText(program));
  TcIdleProgram& prog = **program;
  REQUIRE(prog.setHealthMask(kHealthMark).ok());
  // Another instance is registered; lo is not.
  uint32_t other = 4242;
  s2z_state_value st{S2Z_STATE_SLEEPING, 0};
  s2z_counters_value zero{};
  REQUIRE(bpf_map_update_elem(prog.stateMapFd(), &other, &st, BPF_NOEXIST) == 0);
  REQUIRE(bpf_map_update_elem(prog.countersMapFd(), &other, &zero, BPF_NOEXIST) == 0);
  std::vector<s2z_wake_event> events;
  std::unique_ptr<ring_buffer, RingDeleter> ring(
      ring_buffer__new(prog.wakeRingFd(), countEvent, &events, nullptr));
  REQUIRE(ring);

  const auto frame = tcpSynFrame(ipv4("10.89.0.1"), ipv4("10.89.0.2"), 8080);
  for (int i = 0; i < 5; ++i) CHECK(runOnce(prog.programFd(), frame, kLoopback, 0) == kTcActOk);

  uint32_t lo = kLoopback;
  s2z_counters_value v{};
  CHECK(bpf_map_lookup_elem(prog.countersMapFd(), &lo, &v) != 0);  // no entry created
  CHECK(bpf_map_lookup_elem(prog.stateMapFd(), &lo, &st) != 0);
  REQUIRE(bpf_map_lookup_elem(prog.countersMapFd(), &other, &v) == 0);
  CHECK(v.packets == 0);
  REQUIRE(bpf_map_lookup_elem(prog.stateMapFd(), &other, &st) == 0);
  CHECK(st.state == S2Z_STATE_SLEEPING);
  REQUIRE(ring_buffer__consume(ring.get()) >= 0);
  CHECK(events.empty());
}

TEST_CASE("tc_idle: the health mask can change at run time") {
  auto program = TcIdleProgram::load({});
  REQUIRE_MESSAGE(program.ok(), s2z::tests::errText(program));
  TcIdleProgram& prog = **program;
  uint32_t ifindex = kLoopback;
  s2z_state_value st{S2Z_STATE_RUNNING, 0};
  s2z_counters_value zero{};
  REQUIRE(bpf_map_update_elem(prog.stateMapFd(), &ifindex, &st, BPF_NOEXIST) == 0);
  REQUIRE(bpf_map_update_elem(prog.countersMapFd(), &ifindex, &zero, BPF_NOEXIST) == 0);
  const auto frame = tcpSynFrame(ipv4("10.89.0.1"), ipv4("10.89.0.2"), 80);

  REQUIRE(prog.setHealthMask(0x1).ok());
  runOnce(prog.programFd(), frame, kLoopback, 0x100);  // activity under mask 0x1
  REQUIRE(prog.setHealthMask(0x100).ok());
  runOnce(prog.programFd(), frame, kLoopback, 0x100);  // health under mask 0x100

  s2z_counters_value v{};
  REQUIRE(bpf_map_lookup_elem(prog.countersMapFd(), &ifindex, &v) == 0);
  CHECK(v.packets == 1);
  CHECK(v.health_packets == 1);
}

}  // namespace s2z::bpf
