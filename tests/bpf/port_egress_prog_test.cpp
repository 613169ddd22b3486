// BPF_PROG_TEST_RUN fixture table for s2z_port_egress (tc_idle.bpf.c), the
// classifier on the host end of an alloc veth that is a bridge port (Nomad
// group networks): only frames addressed to the instance count and wake;
// frames flooded there for other ports pass while it runs and are dropped
// while it sleeps; a unicast ARP probe neither counts nor wakes. Private
// maps, nothing attached; needs root.
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

using namespace test;

constexpr uint32_t kLoopback = 1;  // test_run needs a real device
constexpr uint32_t kHealthMark = 0x40000;
constexpr int kOk = 0;    // TC_ACT_OK
constexpr int kShot = 2;  // TC_ACT_SHOT

Bytes withTarget(Bytes arp, const char* target) {
  uint32_t t = ipv4(target);
  std::memcpy(arp.data() + sizeof(ethhdr) + 24, &t, 4);
  return arp;
}

Bytes unicastArpProbe() {
  Bytes f = arpFrame(1);  // a request for 10.89.0.2 ...
  std::memcpy(f.data(), kVmMac, ETH_ALEN);  // ... sent to the MAC it knows
  return f;
}

Bytes ipv6Multicast() {
  const uint8_t mld[ETH_ALEN] = {0x33, 0x33, 0x00, 0x00, 0x00, 0x16};
  return concat({ethHeader(ETH_P_IPV6, mld), ipv6Header(58, 0)});
}

struct Case {
  const char* name;
  Bytes frame;
  uint32_t stateBefore;
  uint32_t mark;
  int verdict;
  uint64_t counted, health;
  uint32_t stateAfter;
  size_t events;
};

std::vector<Case> cases() {
  const Bytes forVm = tcpSynFrame(ipv4("10.89.0.1"), ipv4("10.89.0.2"), 8080);
  const Bytes forOther = tcpSynFrame(ipv4("10.89.0.1"), ipv4("10.89.0.3"), 8080);
  const Bytes arpForVm = arpFrame(1);
  const Bytes arpForOther = withTarget(arpFrame(1), "10.89.0.3");
  return {
      {"running: IPv4 to the VM counts", forVm, S2Z_STATE_RUNNING, 0, kOk, 1, 0, S2Z_STATE_RUNNING, 0},
      {"running: IPv4 to another port's host passes, not counted", forOther, S2Z_STATE_RUNNING, 0, kOk,
       0, 0, S2Z_STATE_RUNNING, 0},
      {"running: health-marked IPv4 counts only as health", forVm, S2Z_STATE_RUNNING, kHealthMark, kOk,
       0, 1, S2Z_STATE_RUNNING, 0},
      {"running: unicast ARP probe is not activity", unicastArpProbe(), S2Z_STATE_RUNNING, 0, kOk, 0, 0,
       S2Z_STATE_RUNNING, 0},
      {"running: broadcast ARP for the VM is activity", arpForVm, S2Z_STATE_RUNNING, 0, kOk, 1, 0,
       S2Z_STATE_RUNNING, 0},
      {"sleeping: IPv4 to the VM wakes", forVm, S2Z_STATE_SLEEPING, 0, kOk, 1, 0, S2Z_STATE_WAKING, 1},
      {"sleeping: broadcast ARP for the VM wakes", arpForVm, S2Z_STATE_SLEEPING, 0, kOk, 1, 0,
       S2Z_STATE_WAKING, 1},
      {"sleeping: unicast ARP probe neither wakes nor is dropped", unicastArpProbe(), S2Z_STATE_SLEEPING,
       0, kOk, 0, 0, S2Z_STATE_SLEEPING, 0},
      {"sleeping: health-marked IPv4 never wakes", forVm, S2Z_STATE_SLEEPING, kHealthMark, kOk, 0, 1,
       S2Z_STATE_SLEEPING, 0},
      {"sleeping: another port's IPv4 is dropped, no wake", forOther, S2Z_STATE_SLEEPING, 0, kShot, 0, 0,
       S2Z_STATE_SLEEPING, 0},
      {"sleeping: broadcast ARP for another address is dropped", arpForOther, S2Z_STATE_SLEEPING, 0,
       kShot, 0, 0, S2Z_STATE_SLEEPING, 0},
      {"sleeping: IPv6 multicast is dropped", ipv6Multicast(), S2Z_STATE_SLEEPING, 0, kShot, 0, 0,
       S2Z_STATE_SLEEPING, 0},
      {"waking: flooded frames still dropped", forOther, S2Z_STATE_WAKING, 0, kShot, 0, 0,
       S2Z_STATE_WAKING, 0},
      {"booting: a client's SYN to the VM is dropped (stolen), not counted", forVm, S2Z_STATE_BOOTING, 0, 4, 0,
       0, S2Z_STATE_BOOTING, 0},
      {"booting: the agent's probe SYN passes", forVm, S2Z_STATE_BOOTING, S2Z_BOOT_PROBE_MARK, kOk, 1, 0,
       S2Z_STATE_BOOTING, 0},
      {"booting: a health-marked SYN passes", forVm, S2Z_STATE_BOOTING, kHealthMark, kOk, 0, 1,
       S2Z_STATE_BOOTING, 0},
  };
}

int collect(void* ctx, void* data, size_t size) {
  static_cast<std::vector<s2z_wake_event>*>(ctx)->push_back(*static_cast<s2z_wake_event*>(data));
  (void)size;
  return 0;
}

struct RingDeleter {
  void operator()(ring_buffer* rb) const { ring_buffer__free(rb); }
};

}  // namespace

TEST_CASE("s2z_port_egress: fixture table (BPF_PROG_TEST_RUN)") {
  for (const Case& c : cases()) {
    const std::string name = c.name;
    CAPTURE(name);
    auto program = TcIdleProgram::load({});
    REQUIRE_MESSAGE(program.ok(), s2z::tests::errText(program));
    TcIdleProgram& prog = **program;
    REQUIRE(prog.setHealthMask(kHealthMark).ok());
    uint32_t ifindex = kLoopback;
    s2z_state_value st{c.stateBefore, 0};
    s2z_counters_value zero{};
    REQUIRE(bpf_map_update_elem(prog.stateMapFd(), &ifindex, &st, BPF_NOEXIST) == 0);
    REQUIRE(bpf_map_update_elem(prog.countersMapFd(), &ifindex, &zero, BPF_NOEXIST) == 0);
    uint32_t vm = ipv4("10.89.0.2"), other = ipv4("10.89.0.3"), otherIfindex = 4242;
    REQUIRE(bpf_map_update_elem(prog.addrMapFd(), &vm, &ifindex, BPF_ANY) == 0);
    REQUIRE(bpf_map_update_elem(prog.addrMapFd(), &other, &otherIfindex, BPF_ANY) == 0);
    std::vector<s2z_wake_event> events;
    std::unique_ptr<ring_buffer, RingDeleter> ring(ring_buffer__new(prog.wakeRingFd(), collect, &events, nullptr));
    REQUIRE(ring);

    __sk_buff ctx{};
    ctx.ifindex = kLoopback;
    ctx.mark = c.mark;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = c.frame.data(),
                .data_size_in = static_cast<uint32_t>(c.frame.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = 1);
    REQUIRE(bpf_prog_test_run_opts(prog.portProgramFd(), &opts) == 0);
    CHECK(static_cast<int>(opts.retval) == c.verdict);

    s2z_counters_value v{};
    REQUIRE(bpf_map_lookup_elem(prog.countersMapFd(), &ifindex, &v) == 0);
    CHECK(v.packets == c.counted);
    CHECK(v.health_packets == c.health);
    REQUIRE(bpf_map_lookup_elem(prog.stateMapFd(), &ifindex, &st) == 0);
    CHECK(st.state == c.stateAfter);
    REQUIRE(ring_buffer__consume(ring.get()) >= 0);
    CHECK(events.size() == c.events);
  }
}

}  // namespace s2z::bpf
