// The Cloud Hypervisor backend driven through a whole task life against the
// fake cloud-hypervisor: real processes, real API socket, a real tap fd.
#include <doctest/doctest.h>

#include "tests/cloud_hypervisor/test_util.h"

#include <poll.h>

#include <algorithm>
#include <csignal>

#include <sys/stat.h>

#include <fstream>

#include "tests/cloud_hypervisor/ch_test_env.h"
#include "vmm/cloud_hypervisor/ch_api_client.h"
#include "vmm/cloud_hypervisor/ch_vmm.h"
#include "vmm/hybrid_vsock.h"

using namespace s2z;
using namespace s2z::tests::ch;
namespace fs = std::filesystem;

namespace {

using Strings = std::vector<std::string>;

// Every request the backend sent was one the documented API accepts, with
// exactly the fds its body announced, attached to the request's first part.
void checkAllAccepted(const ChTestEnv& env) {
  for (const auto& r : env.requests()) {
    INFO(r.method << " " << r.endpoint << " -> " << r.status << " " << r.reply);
    CHECK(r.status < 400);
    CHECK(r.fdsReceived == r.fdsExpected);
    CHECK(r.fdsWithFirstChunk);
  }
}

const RecordedRequest& find(const std::vector<RecordedRequest>& rs, const std::string& ep) {
  auto it = std::find_if(rs.begin(), rs.end(), [&](const auto& r) { return r.endpoint == ep; });
  REQUIRE(it != rs.end());
  return *it;
}

// The first bytes of a guest RAM file: the fake guest's boot marker, if it booted on it.
std::string ramMarker(const fs::path& ram) {
  std::string text(sizeof(StandinRam::kBootMarker) - 1, '\0');
  std::ifstream(ram).read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

// The tap fd arrived as the very tap we hold.
void checkTapFd(const RecordedRequest& r, const NetnsTap& tap) {
  REQUIRE(r.fds.size() == 1);
  CHECK(r.fds[0].valid);
  CHECK(r.fds[0].isTap);
  CHECK(r.fds[0].tapName == tap.name());
}

}  // namespace

TEST_CASE("probe: version accepted, too old refused, missing binary not found") {
  ChTestEnv v45("45.0");
  auto info = vmm::probeCloudHypervisor(v45.binary());
  REQUIRE_MESSAGE(info.ok(), s2z::tests::ch::errText(info));
  CHECK(info->version == "v45.0");

  ChTestEnv v39("39.0");
  auto old = vmm::probeCloudHypervisor(v39.binary());
  REQUIRE_FALSE(old.ok());
  CHECK(old.error().code == ErrorCode::kFailedPrecondition);
  CHECK(old.error().message.find(
            "cloud-hypervisor v39.0 is too old: v40 or newer is needed to pass tap fds on "
            "restore") != std::string::npos);

  auto missing = vmm::probeCloudHypervisor(v45.dir() / "no-such-binary");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kNotFound);

  auto notCh = vmm::probeCloudHypervisor("/bin/true");  // prints nothing
  REQUIRE_FALSE(notCh.ok());
  CHECK(notCh.error().code == ErrorCode::kFailedPrecondition);
}

TEST_CASE("v45: boot, sleep, restore (copy, then vm.resume), shutdown") {
  ChTestEnv env("45.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  CHECK(vmm->kind() == vmm::Hypervisor::kCloudHypervisor);
  auto config = env.config(tap.fd());

  // Boot: ping, create, add-net with the tap fd, boot.
  auto booted = vmm->boot(config);
  REQUIRE_MESSAGE(booted.ok(), s2z::tests::ch::errText(booted));
  CHECK(env.endpoints() == Strings{"vmm.ping", "vm.create", "vm.add-net", "vm.boot"});
  auto reqs = env.requests();
  checkTapFd(find(reqs, "vm.add-net"), tap);
  CHECK(find(reqs, "vm.add-net").body == nlohmann::json::parse(
                                             R"({"id":"net0","mac":"52:54:00:12:34:56","num_queues":2})"));
  // The console is our fd (inherited as 3); the VMM's serial output reaches it.
  CHECK(find(reqs, "vm.create").body["serial"]["file"] == "/dev/fd/3");
  CHECK(env.consoleText() == "fake cloud-hypervisor: guest booted\n");
  auto first = vmm->process();
  REQUIRE(first.has_value());
  CHECK(processAlive(*first));
  CHECK(vmm->exitFd() >= 0);
  CHECK_FALSE(vmm->standby());
  // Its RAM is the run dir's guest-ram: owner-only, the guest's size, and
  // what the guest wrote is in it.
  const auto ram = env.dir() / "guest-ram";
  struct stat st {};
  REQUIRE(::stat(ram.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(st.st_size == static_cast<off_t>(config.memoryMib) << 20);
  CHECK(find(reqs, "vm.create").body["memory"]["zones"][0]["file"] == ram.string());
  CHECK(ramMarker(ram) == StandinRam::kBootMarker);

  // Sleep: (is it paused already? a light sleep going deeper would be)
  // pause, snapshot into a temp dir, renamed into place, VMM exits.
  auto slept = vmm->sleep(env.snapshotDir(), kStamp);
  REQUIRE_MESSAGE(slept.ok(), s2z::tests::ch::errText(slept));
  CHECK(env.endpoints() == Strings{"vmm.ping", "vm.create", "vm.add-net", "vm.boot", "vm.info", "vm.pause",
                                   "vm.snapshot", "vmm.shutdown"});
  reqs = env.requests();
  CHECK(find(reqs, "vm.snapshot").body["destination_url"] ==
        "file://" + (env.dir() / "snapshot.tmp").string());
  for (const char* f : {"config.json", "state.json", "manifest.json"}) {
    CHECK(fs::is_regular_file(env.snapshotDir() / f));
  }
  // The RAM stays in its file: the snapshot is device state only, and the
  // file is part of what the snapshot needs (it moves with it).
  CHECK_FALSE(fs::exists(env.snapshotDir() / "memory-ranges"));
  CHECK(slept->bytes < 64 * 1024);
  CHECK(vmm->snapshotFiles(config, env.snapshotDir()) ==
        std::vector<fs::path>{env.snapshotDir(), ram});
  CHECK_FALSE(fs::exists(env.dir() / "snapshot.tmp"));
  CHECK(slept->dir == env.snapshotDir());
  CHECK(slept->duration.count() > 0);
  CHECK(slept->ramCacheDropped > 0);  // what the guest wrote, no longer cached
  CHECK_FALSE(vmm->process().has_value());
  CHECK(vmm->exitFd() == -1);
  CHECK_FALSE(processAlive(*first));

  // Restore: a new VMM, vm.restore with net_fds [net0:1] and exactly one fd
  // (our tap), copy mode (nothing to copy: the RAM file is mapped), then vm.resume.
  auto restored = vmm->restore(config, env.snapshotDir(), kStamp);
  REQUIRE_MESSAGE(restored.ok(), s2z::tests::ch::errText(restored));
  reqs = env.requests();
  REQUIRE(reqs.size() == 11);
  CHECK(reqs[8].endpoint == "vmm.ping");
  CHECK(reqs[9].endpoint == "vm.restore");
  CHECK(reqs[10].endpoint == "vm.resume");
  const auto& restore = reqs[9];
  CHECK(restore.body == nlohmann::json{{"source_url", "file://" + env.snapshotDir().string()},
                                       {"prefault", false},
                                       {"net_fds", {{{"id", "net0"}, {"num_fds", 1}}}}});
  checkTapFd(restore, tap);
  // The restored VMM has the same console fd: its output follows the boot's.
  CHECK(env.consoleText() ==
        "fake cloud-hypervisor: guest booted\nfake cloud-hypervisor: guest restored\n");
  CHECK(ramMarker(ram) == StandinRam::kBootMarker);  // the same RAM, not a new one
  auto second = vmm->process();
  REQUIRE(second.has_value());
  CHECK(second->pid != first->pid);
  CHECK(processAlive(*second));

  // The restored VM really is running in the VMM's eyes.
  vmm::ch::ChApiClient api(env.dir() / "ch.sock");
  auto info = api.info();
  REQUIRE(info.ok());
  CHECK((*info)["state"] == "Running");

  // Shutdown: the power button; the guest powers off and the VMM exits with it.
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(3000)).ok());
  CHECK(env.endpoints().back() == "vm.power-button");
  CHECK_FALSE(vmm->process().has_value());
  CHECK_FALSE(processAlive(*second));
  CHECK(vmm->shutdown(std::chrono::milliseconds(100)).ok());  // idempotent
  checkAllAccepted(env);
}

TEST_CASE("v52: no OnDemand restore (it would look for memory-ranges); the guest runs only "
          "after its RAM file is marked in use, so the snapshot cannot be restored twice") {
  ChTestEnv env("52.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto config = env.config(tap.fd());
  REQUIRE(vmm->boot(config).ok());
  REQUIRE(vmm->sleep(env.snapshotDir(), kStamp).ok());
  auto restored = vmm->restore(config, env.snapshotDir(), kStamp);
  REQUIRE_MESSAGE(restored.ok(), s2z::tests::ch::errText(restored));
  auto reqs = env.requests();
  const auto& restore = find(reqs, "vm.restore");
  CHECK_FALSE(restore.body.contains("memory_restore_mode"));
  CHECK_FALSE(restore.body.contains("resume"));
  CHECK(reqs.back().endpoint == "vm.resume");
  checkTapFd(restore, tap);
  vmm::ch::ChApiClient api(env.dir() / "ch.sock");
  auto info = api.info();
  REQUIRE(info.ok());
  CHECK((*info)["state"] == "Running");
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(3000)).ok());
  checkAllAccepted(env);

  // The guest ran on past its snapshot: restoring it again would pair old
  // device state with newer memory.
  auto again = vmm->restore(config, env.snapshotDir(), kStamp);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == ErrorCode::kDataLoss);
  CHECK_FALSE(vmm->process().has_value());
}

TEST_CASE("an agent guest: its vsock socket is the VMM's hybrid-vsock endpoint after boot and after "
          "restore, though the last VMM left its socket file behind") {
  ChTestEnv env("45.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto config = env.config(tap.fd());
  const fs::path socket = env.dir() / "agent.sock";
  config.agent = vmm::VmConfig::AgentDevices{socket, -1, -1, {}, {}};
  // What an earlier VMM of the task leaves: the VMM binds without removing it.
  { std::ofstream(socket) << ""; }

  auto booted = vmm->boot(config);
  REQUIRE_MESSAGE(booted.ok(), s2z::tests::ch::errText(booted));
  CHECK(find(env.requests(), "vm.create").body["vsock"]["socket"] == socket.string());
  // Nothing in the stand-in's guest listens: the VMM closes the stream, which
  // the channel takes as "not yet" (it tries again until the agent listens).
  auto refused = vmm::connectHybridVsock(socket, 1024, std::chrono::milliseconds(2000));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kUnavailable);
  CHECK(refused.error().message.find("nothing in the guest listens") != std::string::npos);

  REQUIRE(vmm->sleep(env.snapshotDir(), kStamp).ok());
  CHECK(fs::exists(socket));  // left behind by the VMM that exited
  auto restored = vmm->restore(config, env.snapshotDir(), kStamp);
  REQUIRE_MESSAGE(restored.ok(), s2z::tests::ch::errText(restored));
  auto again = vmm::connectHybridVsock(socket, 1024, std::chrono::milliseconds(2000));
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code == ErrorCode::kUnavailable);
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(3000)).ok());
  checkAllAccepted(env);
}

TEST_CASE("a run dir too deep for a socket address: the VMM binds its API and vsock sockets by their "
          "names in it, and the host reaches them by the full path") {
  ChTestEnv env("45.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto config = env.config(tap.fd());
  // A Nomad data dir, an alloc id and a task name easily add up to this.
  config.runDir = env.dir() / std::string(100, 'd');
  fs::create_directory(config.runDir);
  const fs::path socket = config.runDir / "agent.sock";
  REQUIRE(socket.string().size() > 108);
  config.agent = vmm::VmConfig::AgentDevices{socket, -1, -1, {}, {}};

  auto booted = vmm->boot(config);
  REQUIRE_MESSAGE(booted.ok(), s2z::tests::ch::errText(booted));
  CHECK(find(env.requests(), "vm.create").body["vsock"]["socket"] == "agent.sock");
  CHECK(fs::is_socket(config.runDir / "ch.sock"));
  auto refused = vmm::connectHybridVsock(socket, 1024, std::chrono::milliseconds(2000));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == ErrorCode::kUnavailable);  // the VMM answered, its guest did not

  REQUIRE(vmm->sleep(env.snapshotDir(), kStamp).ok());
  auto restored = vmm->restore(config, env.snapshotDir(), kStamp);
  REQUIRE_MESSAGE(restored.ok(), s2z::tests::ch::errText(restored));
  CHECK(fs::is_socket(socket));
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(3000)).ok());
  checkAllAccepted(env);
}

TEST_CASE("standby: prepareRestore starts a waiting VMM that restore then uses") {
  ChTestEnv env("45.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto config = env.config(tap.fd());
  REQUIRE(vmm->boot(config).ok());
  REQUIRE(vmm->sleep(env.snapshotDir(), kStamp).ok());
  REQUIRE(vmm->prepareRestore(config).ok());
  CHECK(vmm->standby());
  auto standby = vmm->process();
  REQUIRE(standby.has_value());
  CHECK(processAlive(*standby));
  size_t before = env.requests().size();

  REQUIRE(vmm->restore(config, env.snapshotDir(), kStamp).ok());
  CHECK_FALSE(vmm->standby());
  CHECK(vmm->process()->pid == standby->pid);
  auto eps = env.endpoints();
  CHECK(Strings(eps.begin() + static_cast<long>(before), eps.end()) ==
        Strings{"vm.restore", "vm.resume"});  // no new process, no new ping

  // After a plugin restart the VM (served on the standby's socket) is found again.
  auto again = vmm::makeCloudHypervisorVmm();
  auto reattached = again->reattach(config, *vmm->process(), false);
  REQUIRE_MESSAGE(reattached.ok(), s2z::tests::ch::errText(reattached));
  REQUIRE(again->shutdown(std::chrono::milliseconds(3000)).ok());
  CHECK(env.endpoints().back() == "vm.power-button");
  (void)vmm->reapExit();
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(3000)).ok());
  CHECK_FALSE(processAlive(*standby));
  checkAllAccepted(env);
}

TEST_CASE("shutdown: the power button first; vm.shutdown only for a guest still up after the grace") {
  struct Case {
    const char* powerButton;  // the stand-in's behaviour after vm.power-button
    std::chrono::milliseconds grace;
    Strings calls;            // the shutdown's last API calls, vm.info polls left out
    bool waitsOutGrace;
  };
  const Case cases[] = {
      {"stays", std::chrono::milliseconds(5000), {"vm.power-button", "vmm.shutdown"}, false},
      {"ignored", std::chrono::milliseconds(300),
       {"vm.power-button", "vm.shutdown", "vmm.shutdown"}, true},
  };
  for (const auto& c : cases) {
    CAPTURE(c.powerButton);
    ChTestEnv env("45.0", {"--fake-power-button", c.powerButton});
    NetnsTap tap;
    auto vmm = vmm::makeCloudHypervisorVmm();
    REQUIRE(vmm->boot(env.config(tap.fd())).ok());
    auto pid = vmm->process()->pid;
    auto began = std::chrono::steady_clock::now();
    REQUIRE(vmm->shutdown(c.grace).ok());
    auto took = std::chrono::steady_clock::now() - began;
    CHECK((took >= c.grace) == c.waitsOutGrace);
    auto eps = env.endpoints();
    eps.erase(std::remove(eps.begin(), eps.end(), "vm.info"), eps.end());
    REQUIRE(eps.size() >= c.calls.size());
    CHECK(Strings(eps.end() - static_cast<long>(c.calls.size()), eps.end()) == c.calls);
    CHECK_FALSE(vmm->process().has_value());
    CHECK(::kill(pid, 0) != 0);
    checkAllAccepted(env);
  }
}

TEST_CASE("reattach adopts a VMM and resume() runs the VM an interrupted sleep paused; "
          "exitFd and reapExit report its end") {
  ChTestEnv env("45.0");
  NetnsTap tap;
  auto config = env.config(tap.fd());
  auto first = vmm::makeCloudHypervisorVmm();
  REQUIRE(first->boot(config).ok());
  auto id = *first->process();
  vmm::ch::ChApiClient api(env.dir() / "ch.sock");
  REQUIRE(api.pause().ok());  // the plugin died after vm.pause

  auto second = vmm::makeCloudHypervisorVmm();  // as after a plugin restart
  REQUIRE(second->reattach(config, id, false).ok());
  CHECK(second->process()->pid == id.pid);
  auto wrong = vmm::makeCloudHypervisorVmm();
  auto bad = wrong->reattach(config, vmm::ProcessIdentity{id.pid, id.startTime + 1}, false);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::kNotFound);
  auto resumed = second->resume();
  REQUIRE_MESSAGE(resumed.ok(), errText(resumed));
  auto info = api.info();
  REQUIRE(info.ok());
  CHECK((*info)["state"] == "Running");
  CHECK(second->resume().ok());  // running already: no vm.resume (which would get a 405)
  checkAllAccepted(env);

  REQUIRE(second->signal(SIGKILL).ok());
  pollfd pfd{second->exitFd(), POLLIN, 0};
  CHECK(::poll(&pfd, 1, 5000) == 1);
  auto status = second->reapExit();
  (void)status;  // adopted: the code may be unknown
  CHECK_FALSE(second->process().has_value());
  CHECK(second->exitFd() == -1);
  (void)first->reapExit();  // the original child: collect it too
}
