// QemuVmm: light sleep. `stop` halts the vCPUs and, with them, virtio-net's
// receive side (it accepts nothing while the VM is not running), so frames for
// the guest wait in the tap queue the QEMU process still holds; `cont` (resume())
// lets the guest take them. The guest RAM file is then written back and paged
// out of the VMM, clean and reclaimable, and with LightSleepCache::kDrop
// dropped from the page cache too; with kMapped it stays mapped, clean
// (vmm/guest_ram_release.h).
#include <spdlog/spdlog.h>

#include "vmm/guest_ram_release.h"
#include "vmm/qemu/qemu_command_line.h"
#include "vmm/qemu/qemu_vmm.h"

namespace s2z::vmm::qemu {

Result<PauseInfo> QemuVmm::pause(LightSleepCache cache) {
  if (!process_.valid() || standby_) {
    return makeError(ErrorCode::kFailedPrecondition, "pause: no running vm for " + config_.name);
  }
  auto q = qmp();
  if (!q.ok()) return q.error().wrap("pause " + config_.name);
  QmpClient& qmp = **q;
  auto started = std::chrono::steady_clock::now();
  if (auto r = qmp.execute("stop"); !r.ok()) return r.error().wrap("pause " + config_.name);
  auto released = releaseGuestRam(process_.exitFd(), process_.identity().pid,
                                  qemuPaths(config_.runDir).guestRam,
                                  cache == LightSleepCache::kMapped ? RamAdvice::kKeepMapped : RamAdvice::kPageOut);
  if (!released.ok()) {
    // A guest whose memory could not be paged out still runs: a light
    // sleep that releases nothing is no sleep.
    if (auto cont = qmp.execute("cont"); !cont.ok()) {
      spdlog::error("vmm {}: resume after failed pause: {}", config_.name, cont.error().describe());
    }
    return released.error().wrap("pause " + config_.name);
  }
  uint64_t cached = released->cachedAfter;
  if (cache == LightSleepCache::kDrop) {
    // After the pageout: the cache drop skips pages the VMM still maps. A
    // failed drop still leaves a paused guest, whose RAM is merely cached.
    auto dropped = dropGuestRamCache(qemuPaths(config_.runDir).guestRam);
    if (dropped.ok()) {
      cached = dropped->cachedAfter;
    } else {
      spdlog::warn("vmm {}: paused, but its RAM stays in the page cache: {}", config_.name,
                   dropped.error().describe());
    }
  }
  lightPaused_ = true;
  auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  spdlog::info("vmm {}: paused; guest RAM written back, {} KiB of it unmapped, {} KiB in the page cache "
               "({}), in {} us", config_.name, released->unmapped() / 1024, cached / 1024,
               lightSleepCacheName(cache), took.count());
  return PauseInfo{released->unmapped(), cached, took};
}

}  // namespace s2z::vmm::qemu
