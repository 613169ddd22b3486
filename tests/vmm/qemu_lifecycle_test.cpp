// The QEMU backend against real QEMU (TCG), the real test guest and a real tap
// in a throw-away netns: boot, HTTP, sleep, a request while asleep, restore
// with and without standby, failed sleeps, reattach, shutdown. Prints the
// measured times so they can be quoted.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <thread>

#include <doctest/doctest.h>

#include "tests/vmm/vm_net_fixture.h"
#include "vmm/qemu/qemu_command_line.h"
#include "vmm/qemu/qmp_client.h"
#include "vmm/vmm.h"

namespace s2z::vmm::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string why(const Result<void>& r) { return r.ok() ? "" : r.error().describe(); }
template <typename T>
std::string why(const Result<T>& r) {
  return r.ok() ? "" : r.error().describe();
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

// A scratch mount for sleep failures; unmounted in the destructor.
class ScratchMount {
 public:
  ScratchMount(const std::filesystem::path& where, const std::string& options) : path_(where) {
    std::filesystem::create_directories(path_);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~ScratchMount() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  void remountReadOnly() {
    mounted_ = mounted_ && ::mount(nullptr, path_.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0;
  }

 private:
  std::filesystem::path path_;
  bool mounted_ = false;
};

// Sends GET /counter while the VM sleeps (the SYN queues in the held tap),
// restores, and returns {reply, request->reply ms, restore call ms}.
struct WakeResult {
  HttpReply reply;
  double requestToReplyMs = 0;
  double restoreMs = 0;
};
WakeResult wakeWithRequest(Vmm& vmm, const VmNet& net, const VmConfig& cfg,
                           const std::filesystem::path& snap, const SnapshotStamp& stamp) {
  WakeResult w;
  auto sent = Clock::now();
  auto pending = std::async(std::launch::async, [&] {
    auto r = httpGet(net.vmAddress(), 8080, "/counter", 15s);
    return std::make_pair(r, msSince(sent));
  });
  std::this_thread::sleep_for(20ms);  // the SYN is now queued in the tap
  auto restoreStart = Clock::now();
  auto restored = vmm.restore(cfg, snap, stamp);
  w.restoreMs = msSince(restoreStart);
  CHECK_MESSAGE(restored.ok(), why(restored));
  auto [reply, ms] = pending.get();
  w.reply = reply;
  w.requestToReplyMs = ms;
  return w;
}

// Does to a running QEMU what a plugin killed in the middle of sleep() leaves
// behind: the guest stopped and, with `complete`, the device state streamed to
// a file (QEMU then sits in "postmigrate"); the VMM itself still runs.
void interruptSleep(const VmConfig& cfg, bool complete) {
  auto qmp = qemu::QmpClient::connect(qemu::qemuPaths(cfg.runDir).qmpSocket, 5s);
  REQUIRE_MESSAGE(qmp.ok(), why(qmp));
  REQUIRE(qmp->execute("stop").ok());
  if (!complete) return;
  auto file = cfg.runDir / "interrupted-state";
  UniqueFd out(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  REQUIRE(out.valid());
  nlohmann::json caps = {{"capabilities", {{{"capability", "x-ignore-shared"}, {"state", true}}}}};
  REQUIRE(qmp->execute("migrate-set-capabilities", caps).ok());
  REQUIRE(qmp->sendFd("interrupted", out.get()).ok());
  REQUIRE(qmp->execute("migrate", {{"uri", "fd:interrupted"}}).ok());
  std::string status;
  for (auto deadline = Clock::now() + 10s; Clock::now() < deadline; std::this_thread::sleep_for(5ms)) {
    auto info = qmp->execute("query-migrate");
    REQUIRE(info.ok());
    status = info->value("status", "");
    if (status == "completed" || status == "failed") break;
  }
  REQUIRE(status == "completed");
  auto state = qmp->execute("query-status");
  REQUIRE(state.ok());
  CHECK(state->value("status", "") == "postmigrate");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

TEST_CASE("qemu: boot, serve, sleep, wake on a queued request, standby, failures, reattach, shutdown") {
  if (!guestAvailable()) {
    FAIL("test guest missing in " << guestDir() << ": run scripts/build-guest.sh");
  }
  VmNet net;
  VmConfig cfg = net.config("lifecycle");
  auto snap = net.runDir() / "snapshot";
  uint64_t generation = 0;  // the manifest stamp of the newest snapshot
  auto vmm = makeVmm(Hypervisor::kQemu);

  auto bootStart = Clock::now();
  auto booted = vmm->boot(cfg);
  REQUIRE_MESSAGE(booted.ok(), why(booted));
  REQUIRE(vmm->process().has_value());
  pid_t firstPid = vmm->process()->pid;
  CHECK(::getsid(firstPid) == firstPid);  // own session: survives the plugin
  REQUIRE(net.waitHttp(60s));
  double bootMs = msSince(bootStart);
  MESSAGE("cold boot to first HTTP 200: " << bootMs << " ms");
  auto consoleText = [&] {
    std::ifstream in(net.consoleLog());
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  std::string ready = "s2z-guest: ready " + net.vmAddress() + ":8080";
  CHECK(consoleText().find(ready) != std::string::npos);

  CHECK(counterOf(net) == 1);
  CHECK(counterOf(net) == 2);
  auto health = httpGet(net.vmAddress(), 8080, "/healthz", 5s);
  CHECK(health.status == 200);

  // Sleep: snapshot written, QEMU gone, tap still ours.
  auto slept = vmm->sleep(snap, {"lifecycle", ++generation});
  REQUIRE_MESSAGE(slept.ok(), why(slept));
  CHECK(std::filesystem::exists(snap / "state"));
  CHECK_FALSE(std::filesystem::exists(snap / "state.tmp"));
  CHECK(std::filesystem::file_size(snap / "state") == slept->bytes);
  CHECK(verifySnapshot(snap, {"lifecycle", generation}).ok());  // the manifest pairs state and RAM
  CHECK(slept->bytes > 1000);
  CHECK_FALSE(vmm->process().has_value());
  CHECK_FALSE(alive(firstPid));
  CHECK(::fcntl(net.tapFd(), F_GETFD) >= 0);
  MESSAGE("snapshot: " << slept->duration.count() / 1000.0 << " ms, " << slept->bytes << " bytes");

  {  // restore without standby answers the request sent while asleep
    auto w = wakeWithRequest(*vmm, net, cfg, snap, {"lifecycle", generation});
    CHECK_MESSAGE(w.reply.status == 200, w.reply.error);
    CHECK(w.reply.body == "3\n");  // the counter continued: guest RAM survived
    MESSAGE("restore without standby: restore() " << w.restoreMs << " ms, request->response "
                                                  << w.requestToReplyMs << " ms");
    CHECK(vmm->process().has_value());
    CHECK_FALSE(vmm->standby());
    CHECK(counterOf(net) == 4);
    // The guest runs on its RAM: that snapshot can never be resumed again.
    auto again = verifySnapshot(snap, {"lifecycle", generation});
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().code == ErrorCode::kDataLoss);
    CHECK(again.error().message.find("guest-ram changed after the snapshot") != std::string::npos);
    // The restored QEMU appended to the console instead of truncating it.
    CHECK(consoleText().find(ready) != std::string::npos);
  }

  {  // restore with standby, repeated, plus failed sleeps and reattach
    std::vector<double> wakes, restores, snapshots;
    std::vector<uint64_t> sizes;
    unsigned long expected = 5;
    for (int i = 0; i < 5; ++i) {
      {
        auto again = vmm->sleep(snap, {"lifecycle", ++generation});
        REQUIRE_MESSAGE(again.ok(), why(again));
        snapshots.push_back(again->duration.count() / 1000.0);
        sizes.push_back(again->bytes);
      }
      auto prepared = vmm->prepareRestore(cfg);
      REQUIRE_MESSAGE(prepared.ok(), why(prepared));
      CHECK(vmm->standby());
      REQUIRE(vmm->process().has_value());
      std::this_thread::sleep_for(300ms);  // a standby is started ahead of time
      auto w = wakeWithRequest(*vmm, net, cfg, snap, {"lifecycle", generation});
      REQUIRE_MESSAGE(w.reply.status == 200, w.reply.error);
      CHECK(w.reply.body == std::to_string(expected++) + "\n");
      CHECK_FALSE(vmm->standby());
      wakes.push_back(w.requestToReplyMs);
      restores.push_back(w.restoreMs);
    }
    std::string all;
    for (double ms : wakes) all += std::to_string(static_cast<int>(ms)) + " ";
    MESSAGE("restore with standby, request->response: median " << median(wakes) << " ms (" << all
                                                                << "ms); restore() median "
                                                                << median(restores) << " ms");
    MESSAGE("snapshot: median " << median(snapshots) << " ms, " << sizes.front() << " bytes");

    // Sleep into a full place: the VM keeps running and answering.
    {
      ScratchMount full(net.runDir() / "full", "size=4k");
      REQUIRE(full.mounted());
      pid_t pid = vmm->process()->pid;
      auto failed = vmm->sleep(net.runDir() / "full" / "snapshot", {"lifecycle", generation + 1});
      CHECK_FALSE(failed.ok());
      MESSAGE("sleep onto a full disk: " << why(failed));
      CHECK(alive(pid));
      CHECK(counterOf(net) == expected++);
      CHECK_FALSE(std::filesystem::exists(net.runDir() / "full" / "snapshot" / "state"));
    }
    {
      ScratchMount ro(net.runDir() / "ro", "size=1m");
      REQUIRE(ro.mounted());
      ro.remountReadOnly();
      REQUIRE(ro.mounted());
      auto failed = vmm->sleep(net.runDir() / "ro" / "snapshot", {"lifecycle", generation + 1});
      CHECK_FALSE(failed.ok());
      CHECK(failed.error().code == ErrorCode::kSystem);
      CHECK(counterOf(net) == expected++);
    }

    // A new plugin process: a second Vmm adopts QEMU by identity and drives it.
    ProcessIdentity id = *vmm->process();
    vmm.reset();  // the old "plugin" goes away; the VM must not
    CHECK(alive(id.pid));
    CHECK(counterOf(net) == expected++);
    auto second = makeVmm(Hypervisor::kQemu);
    ProcessIdentity wrong = id;
    wrong.startTime += 1;
    auto bad = second->reattach(cfg, wrong, false);
    CHECK(!bad.ok());
    CHECK(bad.error().code == ErrorCode::kNotFound);
    auto re = second->reattach(cfg, id, false);
    REQUIRE_MESSAGE(re.ok(), why(re));
    CHECK(second->resume().ok());  // running already: nothing to do
    CHECK(counterOf(net) == expected++);

    // A plugin that died mid-sleep left the guest paused, before and after the
    // stream; the next plugin's resume() lets it serve again.
    for (bool streamed : {false, true}) {
      CAPTURE(streamed);
      second.reset();  // the QMP connection goes with the "plugin"
      interruptSleep(cfg, streamed);
      CHECK(httpGet(net.vmAddress(), 8080, "/counter", 300ms).status != 200);
      second = makeVmm(Hypervisor::kQemu);
      REQUIRE(second->reattach(cfg, id, false).ok());
      auto resumed = second->resume();
      REQUIRE_MESSAGE(resumed.ok(), why(resumed));
      CHECK(counterOf(net) == expected++);
    }
    auto slept2 = second->sleep(snap, {"lifecycle", ++generation});  // proves QMP reconnects after reattach
    REQUIRE_MESSAGE(slept2.ok(), why(slept2));
    CHECK_FALSE(alive(id.pid));
    auto restored = second->restore(cfg, snap, {"lifecycle", generation});
    REQUIRE_MESSAGE(restored.ok(), why(restored));
    CHECK(counterOf(net) == expected++);
    vmm = std::move(second);
  }

  // Shutdown presses the power button: the (restored) guest powers itself off
  // well inside the grace. No process is left, and shutdown is idempotent.
  REQUIRE(vmm->process().has_value());
  pid_t last = vmm->process()->pid;
  auto downAt = Clock::now();
  auto down = vmm->shutdown(10s);
  CHECK_MESSAGE(down.ok(), why(down));
  MESSAGE("power button -> qemu exited: " << msSince(downAt) << " ms");
  CHECK(consoleText().find("s2z-guest: power button pressed") != std::string::npos);
  CHECK(consoleText().find("reboot: Power down") != std::string::npos);
  CHECK_FALSE(vmm->process().has_value());
  CHECK_FALSE(alive(last));
  CHECK(processesMentioning(net.runDir().string()).empty());
  CHECK(vmm->shutdown(100ms).ok());
}

TEST_CASE("qemu: restore failures leave no process") {
  if (!guestAvailable()) FAIL("test guest missing in " << guestDir());
  VmNet net;
  VmConfig cfg = net.config("broken");
  auto snap = net.runDir() / "snapshot";
  auto vmm = makeVmm(Hypervisor::kQemu);

  SUBCASE("missing snapshot: kNotFound before anything starts") {
    auto r = vmm->restore(cfg, snap, {"broken", 0});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kNotFound);
    CHECK_FALSE(vmm->process().has_value());
    CHECK(processesMentioning(net.runDir().string()).empty());
  }

  SUBCASE("corrupt snapshot: kVmmError quoting qemu, no process left") {
    std::filesystem::create_directories(snap);
    {
      std::ofstream state(snap / "state");
      state << "this is not a QEMU migration stream\n";
      // A RAM file as sleep would leave it (sparse, right size).
      std::ofstream ram(net.runDir() / "guest-ram");
    }
    std::filesystem::resize_file(net.runDir() / "guest-ram", 256ull << 20);
    bool withStandby = false;
    SUBCASE("without standby") {}
    SUBCASE("with standby") { withStandby = true; }
    if (withStandby) {
      auto prepared = vmm->prepareRestore(cfg);
      REQUIRE_MESSAGE(prepared.ok(), why(prepared));
      REQUIRE(vmm->standby());
    }
    auto r = vmm->restore(cfg, snap, {"broken", 0});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kVmmError);
    MESSAGE("corrupt snapshot: " << r.error().describe());
    CHECK_FALSE(vmm->process().has_value());
    CHECK(processesMentioning(net.runDir().string()).empty());
  }

  SUBCASE("a standby that exits is seen on exitFd and reaped with its status") {
    std::filesystem::create_directories(snap);
    { std::ofstream ram(net.runDir() / "guest-ram"); }
    std::filesystem::resize_file(net.runDir() / "guest-ram", 256ull << 20);
    auto prepared = vmm->prepareRestore(cfg);
    REQUIRE_MESSAGE(prepared.ok(), why(prepared));
    CHECK(vmm->prepareRestore(cfg).ok());  // already standing by: no second process
    CHECK(processesMentioning(net.runDir().string()).size() == 1);
    int fd = vmm->exitFd();
    REQUIRE(fd >= 0);
    pollfd pfd{fd, POLLIN, 0};
    CHECK(::poll(&pfd, 1, 0) == 0);
    CHECK(vmm->signal(SIGTERM).ok());
    CHECK(::poll(&pfd, 1, 5000) == 1);
    ExitStatus st = vmm->reapExit();
    CHECK(st.known);
    CHECK(st.signal == 0);  // QEMU exits on SIGTERM by itself
    CHECK_FALSE(vmm->process().has_value());
    CHECK(vmm->exitFd() == -1);
    CHECK(vmm->signal(SIGTERM).error().code == ErrorCode::kFailedPrecondition);
    CHECK(processesMentioning(net.runDir().string()).empty());
  }

  SUBCASE("missing kernel: boot fails with qemu's message, no process left") {
    VmConfig broken = cfg;
    broken.kernel = net.runDir() / "no-such-kernel";
    auto r = vmm->boot(broken);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kVmmError);
    CHECK(r.error().message.find("no-such-kernel") != std::string::npos);
    CHECK_FALSE(vmm->process().has_value());
    CHECK(processesMentioning(net.runDir().string()).empty());
  }
}

}  // namespace s2z::vmm::testing
