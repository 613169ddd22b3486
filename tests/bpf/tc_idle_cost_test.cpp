// Added cost of the TC classifier per packet, measured with
// BPF_PROG_TEST_RUN (repeat = 1e6) against an empty classifier that only
// returns TC_ACT_OK, on the path every packet of a running instance takes.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <doctest/doctest.h>
#include <linux/bpf.h>

#include <algorithm>
#include <vector>

#include "bpf/s2z_types.h"
#include "bpf/tc_idle_program.h"
#include "common/unique_fd.h"
#include "packets.h"
#include "tests/err_text.h"

namespace s2z::bpf {
namespace {

constexpr uint32_t kRepeat = 1'000'000;

// ns per run of `progFd` over `frame` with skb->ifindex = lo.
uint32_t nsPerRun(int progFd, const std::vector<uint8_t>& frame, uint32_t mark) {
  __sk_buff ctx{};
  ctx.ifindex = 1;
  ctx.mark = mark;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
              .ctx_size_in = sizeof(ctx), .repeat = kRepeat);
  REQUIRE(bpf_prog_test_run_opts(progFd, &opts) == 0);
  REQUIRE(opts.retval == 0);
  return opts.duration;
}

UniqueFd loadEmptyClassifier() {
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = TC_ACT_OK
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  return UniqueFd(bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "s2z_empty", "GPL", insns, 2, nullptr));
}

uint32_t median3(uint32_t a, uint32_t b, uint32_t c) {
  return std::max(std::min(a, b), std::min(std::max(a, b), c));
}

}  // namespace

TEST_CASE("tc_idle: added cost per packet (BPF_PROG_TEST_RUN, repeat 1e6)") {
  auto program = TcIdleProgram::load({});
  REQUIRE_MESSAGE(program.ok(), s2z::tests::errText(program));
  TcIdleProgram& prog = **program;
  REQUIRE(prog.setHealthMask(0x4000).ok());
  uint32_t ifindex = 1;
  s2z_state_value st{S2Z_STATE_RUNNING, 0};
  s2z_counters_value zero{};
  REQUIRE(bpf_map_update_elem(prog.stateMapFd(), &ifindex, &st, BPF_NOEXIST) == 0);
  REQUIRE(bpf_map_update_elem(prog.countersMapFd(), &ifindex, &zero, BPF_NOEXIST) == 0);
  UniqueFd empty = loadEmptyClassifier();
  REQUIRE(empty.valid());

  const auto frame = test::tcpSynFrame(test::ipv4("10.89.0.1"), test::ipv4("10.89.0.2"), 8080);
  auto measure = [&](int fd, uint32_t mark) {
    return median3(nsPerRun(fd, frame, mark), nsPerRun(fd, frame, mark), nsPerRun(fd, frame, mark));
  };
  const uint32_t base = measure(empty.get(), 0);
  const uint32_t counted = measure(prog.programFd(), 0);
  const uint32_t health = measure(prog.programFd(), 0x4000);
  MESSAGE("tc_idle per packet: counted path " << counted << " ns, health path " << health
          << " ns, empty classifier " << base << " ns; added ~" << (counted - std::min(counted, base))
          << " ns (counted), ~" << (health - std::min(health, base)) << " ns (health)");

  s2z_counters_value v{};
  REQUIRE(bpf_map_lookup_elem(prog.countersMapFd(), &ifindex, &v) == 0);
  CHECK(v.packets == 3ull * kRepeat);  // every run was counted, none lost
  CHECK(v.health_packets == 3ull * kRepeat);
  // Generous bound: a regression to microseconds per packet would be felt
  // by every task's traffic.
  CHECK(counted < 2000);
}

}  // namespace s2z::bpf
