#include "bpf/health_cgroup_program.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/cgroup_link.h"
#include "bpf/libbpf_log.h"
#include "bpf/map_pins.h"
#include "bpf/s2z_types.h"
#include "health_cgroup.skel.h"

namespace s2z::bpf {
namespace {

// Pin names of the links in the link dir (short, like the kernel's names).
constexpr const char* kSockCreateLink = "hc_sock_create";
constexpr const char* kConnect4Link = "hc_connect4";
constexpr const char* kConnect6Link = "hc_connect6";

}  // namespace

Result<std::unique_ptr<HealthCgroupProgram>> HealthCgroupProgram::load(
    const std::filesystem::path& pinDir, uint32_t sockMark) {
  routeLibbpfLogs();
  s2z_health_cgroup* skel = s2z_health_cgroup__open();
  if (skel == nullptr) return systemError("open health_cgroup skeleton");
  std::unique_ptr<HealthCgroupProgram> prog(new HealthCgroupProgram(skel));
  skel->rodata->s2z_sock_mark = sockMark;
  if (!pinDir.empty()) {
    auto replaced = pinMapsUnder(skel->obj, pinDir);
    if (!replaced.ok()) return replaced.error().wrap("health_cgroup: pin maps");
    prog->replacedMaps_ = *replaced;
  }
  if (int err = s2z_health_cgroup__load(skel); err != 0)
    return systemError("load health_cgroup programs", -err);
  return prog;
}

HealthCgroupProgram::~HealthCgroupProgram() { s2z_health_cgroup__destroy(skel_); }

Result<void> HealthCgroupProgram::attachAll(int cgroupFd, uint64_t cgroupId,
                                            const std::filesystem::path& linkDir) {
  S2Z_TRY(attachPinnedCgroupLink(skel_->progs.s2z_hc_sock_create, cgroupFd, cgroupId,
                                 linkDir / kSockCreateLink),
          "attach cgroup/sock_create");
  S2Z_TRY(attachPinnedCgroupLink(skel_->progs.s2z_hc_connect4, cgroupFd, cgroupId,
                                 linkDir / kConnect4Link),
          "attach cgroup/connect4");
  S2Z_TRY(attachPinnedCgroupLink(skel_->progs.s2z_hc_connect6, cgroupFd, cgroupId,
                                 linkDir / kConnect6Link),
          "attach cgroup/connect6");
  return okResult();
}

Result<void> HealthCgroupProgram::detachAll(const std::filesystem::path& linkDir) {
  // Try all three even if one fails, and report the first failure.
  Result<void> first;
  for (const char* name : {kSockCreateLink, kConnect4Link, kConnect6Link}) {
    auto r = detachPinnedCgroupLink(linkDir / name);
    if (!r.ok() && first.ok()) first = r;
  }
  return first;
}

Result<void> HealthCgroupProgram::setResponder(uint32_t addrBe, uint16_t port) {
  uint32_t key = 0;
  s2z_responder resp{};
  resp.addr_be = addrBe;
  resp.port_be = htons(port);
  if (bpf_map_update_elem(responderMapFd(), &key, &resp, BPF_ANY) != 0)
    return systemError("set responder in s2z_resp");
  return okResult();
}

int HealthCgroupProgram::responderMapFd() const { return bpf_map__fd(skel_->maps.s2z_resp); }

}  // namespace s2z::bpf
