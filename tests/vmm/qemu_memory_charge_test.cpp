// What a sleeping task costs its cgroup, as the kernel charges it: a real
// QEMU (TCG) spawned into a memory cgroup this test makes (VmConfig::cgroup),
// put through each sleep tier while the cgroup's charge is read. The claims
// under test are the README's "Sleep tiers" table and agent/README.md:
// - the guest RAM's page cache is charged to the VMM's cgroup (the VMM's
//   faults brought it in), so the charge is the task's honest cost;
// - light sleep (keep) leaves it cached but clean: a memory limit takes it
//   back without I/O and without killing the paused VMM, and the guest runs on;
// - light sleep (drop) uncharges it at once;
// - deep sleep leaves (almost) nothing charged, and a restored VMM is charged
//   to the same cgroup again.
// Nomad 1.7+ gives the task a cgroup v2 scope (memory.current). Where the
// memory controller is on cgroup v1 (the test machines), the same memcg code
// charges the same pages and memory.usage_in_bytes reads it, so the test
// runs on whichever hierarchy has the controller.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/err_text.h"
#include "tests/vmm/vm_net_fixture.h"
#include "vmm/guest_ram_file.h"
#include "vmm/guest_ram_release.h"
#include "vmm/vmm.h"

namespace s2z::vmm::testing {
namespace {

using namespace std::chrono_literals;
using s2z::tests::errText;

constexpr uint64_t kMiB = 1024 * 1024;

double mib(uint64_t bytes) { return static_cast<double>(bytes) / kMiB; }

// A memory cgroup made for the test and removed after it. v2 where the
// cgroup2 mount's root delegates the memory controller, else v1's memory
// hierarchy.
class MemoryCgroup {
 public:
  MemoryCgroup() {
    std::ifstream mounts("/proc/mounts");
    std::string dev, dir, type, options, rest;
    std::filesystem::path v2, v1;
    while (mounts >> dev >> dir >> type >> options && std::getline(mounts, rest)) {
      if (type == "cgroup2" && delegatesMemory(dir)) v2 = dir;
      if (type == "cgroup" && hasOption(options, "memory")) v1 = dir;
    }
    v2_ = !v2.empty();
    auto root = v2_ ? v2 : v1;
    if (root.empty()) return;
    dir_ = root / ("s2zt-charge-" + std::to_string(::getpid()));
    if (::mkdir(dir_.c_str(), 0755) != 0) dir_.clear();
  }
  // After VmNet's destructor: a test that failed mid-way had its QEMU
  // killed there, and the cgroup is busy until that process is gone.
  ~MemoryCgroup() {
    for (int i = 0; !dir_.empty() && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY && i < 100; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;

  bool made() const { return !dir_.empty(); }
  const std::filesystem::path& dir() const { return dir_; }
  std::string hierarchy() const { return v2_ ? "cgroup v2 memory.current" : "cgroup v1 memory.usage_in_bytes"; }

  uint64_t charge() const {
    std::ifstream in(dir_ / (v2_ ? "memory.current" : "memory.usage_in_bytes"));
    uint64_t bytes = 0;
    in >> bytes;
    return bytes;
  }
  // Anonymous memory charged (no swap here: what nothing can reclaim).
  uint64_t anon() const { return stat(v2_ ? "anon" : "total_rss"); }
  // Sets the limit; false when the kernel refused (v1: it could not reclaim
  // down to it). 0: no limit.
  bool limit(uint64_t bytes) const {
    std::ofstream out(dir_ / (v2_ ? "memory.max" : "memory.limit_in_bytes"));
    out << (bytes == 0 ? (v2_ ? std::string("max") : std::string("-1")) : std::to_string(bytes));
    out.flush();
    return static_cast<bool>(out);
  }

 private:
  uint64_t stat(const std::string& key) const {
    std::ifstream in(dir_ / "memory.stat");
    std::string name;
    for (uint64_t value = 0; in >> name >> value;)
      if (name == key) return value;
    return ~0ULL;
  }
  static bool hasOption(const std::string& options, const std::string& name) {
    std::istringstream in(options);
    for (std::string o; std::getline(in, o, ',');)
      if (o == name) return true;
    return false;
  }
  static bool delegatesMemory(const std::filesystem::path& mount) {
    std::ifstream in(mount / "cgroup.subtree_control");
    for (std::string c; in >> c;)
      if (c == "memory") return true;
    return false;
  }

  std::filesystem::path dir_;
  bool v2_ = false;
};

uint64_t ramCached(const VmConfig& cfg) {
  UniqueFd fd(::open(guestRamPath(cfg.runDir).c_str(), O_RDONLY | O_CLOEXEC));
  auto bytes = fd ? cachedBytes(fd.get()) : Result<uint64_t>(Error{});
  REQUIRE_MESSAGE(bytes.ok(), "mincore of the guest RAM file failed");
  return *bytes;
}

TEST_CASE("qemu: the task's cgroup is charged the guest RAM's page cache; each sleep tier gives back what it claims") {
  if (!guestAvailable()) FAIL("test guest missing in " << guestDir() << ": run scripts/build-guest.sh");
  MemoryCgroup cgroup;  // declared first: removed last, after the VM is gone
  REQUIRE_MESSAGE(cgroup.made(), "no memory cgroup could be made (neither cgroup v2 with memory nor v1 memory)");
  MESSAGE("charge read from " << cgroup.hierarchy() << " of " << cgroup.dir());
  VmNet net;
  VmConfig cfg = net.config("charge");
  cfg.cgroups = {cgroup.dir()};
  auto vmm = makeVmm(Hypervisor::kQemu);
  REQUIRE(cgroup.charge() < kMiB);

  auto booted = vmm->boot(cfg);
  REQUIRE_MESSAGE(booted.ok(), errText(booted));
  REQUIRE(net.waitHttp(60s));
  unsigned long counter = counterOf(net);
  // Booting touched much of the guest's RAM (the kernel unpacks itself and
  // its initramfs), all of it faulted in by QEMU, so all of it is charged.
  const uint64_t runningCharge = cgroup.charge(), runningCached = ramCached(cfg);
  MESSAGE("running: charge " << mib(runningCharge) << " MiB, guest RAM cached " << mib(runningCached) << " MiB");
  CHECK(runningCached > 64 * kMiB);
  CHECK(runningCharge >= runningCached);

  {  // Light sleep, cache kept: still charged (clean), reclaimable on demand.
    auto paused = vmm->pause(LightSleepCache::kKeep);
    REQUIRE_MESSAGE(paused.ok(), errText(paused));
    const uint64_t charge = cgroup.charge(), cached = ramCached(cfg);
    MESSAGE("light (keep): charge " << mib(charge) << " MiB, guest RAM cached " << mib(cached) << " MiB");
    CHECK(cached > 64 * kMiB);
    CHECK(charge >= cached);
    // A limit of the VMM's own memory plus 16 MiB: the kernel must reclaim
    // the RAM's cache to meet it (there is no swap for anything else). The
    // paused VMM is not killed, and the guest then resumes on its RAM read
    // back from the file.
    const uint64_t limit = charge - cached + 16 * kMiB;
    CHECK_MESSAGE(cgroup.limit(limit), "the kernel could not reclaim down to " << mib(limit) << " MiB");
    MESSAGE("under a limit of " << mib(limit) << " MiB: charge " << mib(cgroup.charge()) << " MiB, cached "
                                << mib(ramCached(cfg)) << " MiB");
    CHECK(cgroup.charge() <= limit);
    REQUIRE(vmm->process().has_value());
    CHECK(::kill(vmm->process()->pid, 0) == 0);  // not OOM-killed
    REQUIRE(cgroup.limit(0));
    auto resumed = vmm->resume();
    REQUIRE_MESSAGE(resumed.ok(), errText(resumed));
    CHECK(counterOf(net) == ++counter);  // the guest's memory came back from its file
  }

  {  // Deep sleep: no VMM, the RAM's cache dropped. What stays charged is
     // the clean cache of files QEMU read (the guest kernel and initramfs,
     // its own libraries): nothing that a limit cannot take back.
    auto slept = vmm->sleep(net.runDir() / "snapshot", {"charge", 1});
    REQUIRE_MESSAGE(slept.ok(), errText(slept));
    const uint64_t charge = cgroup.charge();
    MESSAGE("deep: charge " << mib(charge) << " MiB (anonymous " << mib(cgroup.anon()) << " MiB), guest RAM cached "
                            << mib(ramCached(cfg)) << " MiB");
    CHECK(ramCached(cfg) == 0);
    CHECK(cgroup.anon() < kMiB);
    CHECK_MESSAGE(cgroup.limit(2 * kMiB), "the kernel could not reclaim a deep-sleeping task down to 2 MiB");
    CHECK(cgroup.charge() <= 2 * kMiB);
    REQUIRE(cgroup.limit(0));
    auto restored = vmm->restore(cfg, net.runDir() / "snapshot", {"charge", 1});
    REQUIRE_MESSAGE(restored.ok(), errText(restored));
    CHECK(counterOf(net) == ++counter);
    // The restored VMM joined the same cgroup: what it reads back is charged.
    CHECK(cgroup.charge() >= ramCached(cfg));
    CHECK(cgroup.charge() > charge + 16 * kMiB);
  }

  {  // Light sleep, cache dropped: uncharged at once.
    const uint64_t chargeBefore = cgroup.charge(), cachedBefore = ramCached(cfg);
    auto paused = vmm->pause(LightSleepCache::kDrop);
    REQUIRE_MESSAGE(paused.ok(), errText(paused));
    const uint64_t charge = cgroup.charge(), cached = ramCached(cfg);
    MESSAGE("light (drop): charge " << mib(chargeBefore) << " -> " << mib(charge) << " MiB, guest RAM cached "
                                    << mib(cachedBefore) << " -> " << mib(cached) << " MiB");
    CHECK(cached < kMiB);
    CHECK(charge + cachedBefore * 9 / 10 <= chargeBefore);
    auto resumed = vmm->resume();
    REQUIRE_MESSAGE(resumed.ok(), errText(resumed));
    CHECK(counterOf(net) == ++counter);
  }

  CHECK(vmm->shutdown(5s).ok());
}

}  // namespace
}  // namespace s2z::vmm::testing
