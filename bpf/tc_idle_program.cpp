#include "bpf/tc_idle_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>

#include "bpf/libbpf_error.h"
#include "bpf/libbpf_log.h"
#include "bpf/map_pins.h"
#include "bpf/s2z_types.h"
#include "tc_idle.skel.h"

namespace s2z::bpf {
namespace {

// Our slot in the clsact egress chain; fixed so re-attaching replaces.
constexpr uint32_t kTcHandle = 0x5332;   // "S2"
constexpr uint32_t kTcPriority = 0x5a;

bpf_tc_hook egressHook(uint32_t ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = static_cast<int>(ifindex);
  hook.attach_point = BPF_TC_EGRESS;
  return hook;
}

bpf_tc_opts slotOpts() {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = kTcHandle;
  opts.priority = kTcPriority;
  return opts;
}

std::string ifName(uint32_t ifindex) {
  char name[IF_NAMESIZE] = {};
  if (if_indextoname(ifindex, name) == nullptr) return "ifindex " + std::to_string(ifindex);
  return std::string(name) + " (ifindex " + std::to_string(ifindex) + ")";
}

}  // namespace

Result<std::unique_ptr<TcIdleProgram>> TcIdleProgram::load(const std::filesystem::path& pinDir) {
  routeLibbpfLogs();
  s2z_tc_idle* skel = s2z_tc_idle__open();
  if (skel == nullptr) return systemError("open tc_idle skeleton");
  std::unique_ptr<TcIdleProgram> prog(new TcIdleProgram(skel));
  if (!pinDir.empty()) {
    auto replaced = pinMapsUnder(skel->obj, pinDir);
    if (!replaced.ok()) return replaced.error().wrap("tc_idle: pin maps");
    prog->replacedMaps_ = *replaced;
  }
  if (int err = s2z_tc_idle__load(skel); err != 0)
    return libbpfError("load tc_idle program", err);
  return prog;
}

TcIdleProgram::~TcIdleProgram() { s2z_tc_idle__destroy(skel_); }

Result<void> TcIdleProgram::setHealthMask(uint32_t mask) {
  uint32_t key = 0;
  s2z_tc_config cfg{};
  cfg.health_mask = mask;
  if (bpf_map_update_elem(configMapFd(), &key, &cfg, BPF_ANY) != 0)
    return systemError("set health mask in s2z_cfg");
  return okResult();
}

Result<void> TcIdleProgram::attach(uint32_t ifindex) { return attachProgram(ifindex, programFd()); }

Result<void> TcIdleProgram::attachPort(uint32_t ifindex) {
  return attachProgram(ifindex, portProgramFd());
}

Result<void> TcIdleProgram::attachProgram(uint32_t ifindex, int progFd) {
  bpf_tc_hook hook = egressHook(ifindex);
  if (int err = bpf_tc_hook_create(&hook); err != 0 && err != -EEXIST)
    return libbpfError("create clsact on " + ifName(ifindex), err);
  bpf_tc_opts opts = slotOpts();
  opts.prog_fd = progFd;
  opts.flags = BPF_TC_F_REPLACE;
  if (int err = bpf_tc_attach(&hook, &opts); err != 0)
    return libbpfError("attach tc egress on " + ifName(ifindex), err);
  return okResult();
}

Result<void> TcIdleProgram::detach(uint32_t ifindex) {
  bpf_tc_hook hook = egressHook(ifindex);
  bpf_tc_opts opts = slotOpts();
  int err = bpf_tc_detach(&hook, &opts);
  if (err == 0 || err == -ENOENT || err == -ENODEV || err == -EINVAL) return okResult();
  return libbpfError("detach tc egress from " + ifName(ifindex), err);
}

Result<uint32_t> TcIdleProgram::attachedProgramId(uint32_t ifindex) const {
  bpf_tc_hook hook = egressHook(ifindex);
  bpf_tc_opts opts = slotOpts();
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -EINVAL) return 0u;
  if (err != 0) return libbpfError("query tc egress on " + ifName(ifindex), err);
  return opts.prog_id;
}

int TcIdleProgram::programFd() const { return bpf_program__fd(skel_->progs.s2z_tap_egress); }

uint32_t TcIdleProgram::programId() const {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(programFd(), &info, &len) != 0) return 0;
  return info.id;
}

int TcIdleProgram::stateMapFd() const { return bpf_map__fd(skel_->maps.s2z_state); }
int TcIdleProgram::countersMapFd() const { return bpf_map__fd(skel_->maps.s2z_counters); }
int TcIdleProgram::addrMapFd() const { return bpf_map__fd(skel_->maps.s2z_addr); }
int TcIdleProgram::hostPortMapFd() const { return bpf_map__fd(skel_->maps.s2z_hostport); }
int TcIdleProgram::portProgramFd() const { return bpf_program__fd(skel_->progs.s2z_port_egress); }
int TcIdleProgram::configMapFd() const { return bpf_map__fd(skel_->maps.s2z_cfg); }
int TcIdleProgram::wakeRingFd() const { return bpf_map__fd(skel_->maps.s2z_wake_rb); }

}  // namespace s2z::bpf
