// RAII owner of the health_cgroup skeleton (bpf/health_cgroup.bpf.c): the
// sock_create marker and the connect4/connect6 redirect to the responder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "common/result.h"

struct s2z_health_cgroup;

namespace s2z::bpf {

class HealthCgroupProgram {
 public:
  // Opens the skeleton with `sockMark` as the mark sock_create ORs into
  // every socket, shares the maps through pins under `pinDir` (a
  // layoutDir(); empty: private maps) and loads it. Precondition: `pinDir`
  // exists on a bpffs. Fails with the libbpf error and the step.
  static Result<std::unique_ptr<HealthCgroupProgram>> load(const std::filesystem::path& pinDir,
                                                           uint32_t sockMark);
  ~HealthCgroupProgram();
  HealthCgroupProgram(const HealthCgroupProgram&) = delete;
  HealthCgroupProgram& operator=(const HealthCgroupProgram&) = delete;

  // Attaches the three programs to the cgroup `cgroupFd` through links
  // pinned in `linkDir` (see attachPinnedCgroupLink: idempotent across
  // restarts, never attached twice). Stops at the first failure; programs
  // attached before it stay attached (detachAll undoes them).
  Result<void> attachAll(int cgroupFd, uint64_t cgroupId, const std::filesystem::path& linkDir);
  // Detaches and unpins the three links in `linkDir`; ok for missing ones.
  static Result<void> detachAll(const std::filesystem::path& linkDir);

  // Writes the responder the connect hooks redirect to (0.0.0.0: none).
  Result<void> setResponder(uint32_t addrBe, uint16_t port);

  int responderMapFd() const;  // s2z_resp
  unsigned replacedMaps() const { return replacedMaps_; }

 private:
  explicit HealthCgroupProgram(s2z_health_cgroup* skel) : skel_(skel) {}

  s2z_health_cgroup* skel_;  // owned; destroyed in the destructor
  unsigned replacedMaps_ = 0;
};

}  // namespace s2z::bpf
