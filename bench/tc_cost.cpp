#include "bench/tc_cost.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <algorithm>
#include <array>
#include <vector>

#include "bpf/s2z_types.h"
#include "bpf/tc_idle_program.h"
#include "common/unique_fd.h"
#include "tests/bpf/packets.h"

namespace s2z::bench {
namespace {

constexpr uint32_t kHealthMark = 0x4000;

Result<double> nsPerRun(int progFd, const std::vector<uint8_t>& frame, uint32_t mark,
                        unsigned repeat) {
  std::array<uint32_t, 3> runs{};
  for (auto& r : runs) {
    __sk_buff ctx{};
    ctx.ifindex = 1;
    ctx.mark = mark;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(repeat));
    if (int err = bpf_prog_test_run_opts(progFd, &opts); err != 0)
      return Error{ErrorCode::kSystem, -err, "BPF_PROG_TEST_RUN"};
    r = opts.duration;
  }
  std::sort(runs.begin(), runs.end());
  return static_cast<double>(runs[1]);
}

}  // namespace

Result<TcCost> measureTcCost(unsigned repeat) {
  auto program = bpf::TcIdleProgram::load({});
  if (!program.ok()) return program.error().wrap("tc cost: load tc_idle");
  bpf::TcIdleProgram& prog = **program;
  S2Z_TRY(prog.setHealthMask(kHealthMark), "tc cost");
  uint32_t ifindex = 1;
  s2z_state_value st{};
  st.state = S2Z_STATE_RUNNING;
  s2z_counters_value zero{};
  if (bpf_map_update_elem(prog.stateMapFd(), &ifindex, &st, BPF_ANY) != 0 ||
      bpf_map_update_elem(prog.countersMapFd(), &ifindex, &zero, BPF_ANY) != 0)
    return systemError("tc cost: register ifindex 1");
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = TC_ACT_OK
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  UniqueFd empty(bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "s2z_empty", "GPL", insns, 2, nullptr));
  if (!empty) return systemError("tc cost: load empty classifier");

  // A TCP SYN toward a VM, as tap egress sees it (same frame as the BPF tests).
  const auto frame =
      bpf::test::tcpSynFrame(bpf::test::ipv4("10.89.0.1"), bpf::test::ipv4("10.89.0.2"), 8080);
  TcCost cost;
  auto e = nsPerRun(empty.get(), frame, 0, repeat);
  auto c = nsPerRun(prog.programFd(), frame, 0, repeat);
  auto h = nsPerRun(prog.programFd(), frame, kHealthMark, repeat);
  for (auto* r : {&e, &c, &h})
    if (!r->ok()) return r->error().wrap("tc cost");
  cost.emptyNs = *e;
  cost.countedNs = *c;
  cost.healthNs = *h;
  return cost;
}

}  // namespace s2z::bench
