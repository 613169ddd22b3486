// Error paths: the VMM's messages are quoted, a failed sleep leaves the VM
// running, a wrong fd count is never sent, failed starts leave no process.
#include <doctest/doctest.h>

#include <algorithm>

#include "tests/cloud_hypervisor/ch_test_env.h"
#include "tests/cloud_hypervisor/test_util.h"
#include "vmm/cloud_hypervisor/ch_api_client.h"
#include "vmm/cloud_hypervisor/ch_json.h"
#include "vmm/cloud_hypervisor/ch_vmm.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::tests::ch;
namespace fs = std::filesystem;

namespace {
using Strings = std::vector<std::string>;
}

TEST_CASE("a 500 on vm.snapshot resumes the VM and quotes the VMM's message") {
  ChTestEnv env("45.0", {"--fake-fail 'vm.snapshot=500:Error snapshotting VM: No space left on device'"});
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto config = env.config(tap.fd());
  REQUIRE(vmm->boot(config).ok());
  auto id = *vmm->process();

  auto slept = vmm->sleep(env.snapshotDir(), kStamp);
  REQUIRE_FALSE(slept.ok());
  CHECK(slept.error().code == ErrorCode::kVmmError);
  CHECK(slept.error().message.find("HTTP 500: Error snapshotting VM: No space left on device") !=
        std::string::npos);
  auto eps = env.endpoints();
  CHECK(Strings(eps.end() - 3, eps.end()) == Strings{"vm.pause", "vm.snapshot", "vm.resume"});
  CHECK_FALSE(fs::exists(env.snapshotDir()));
  CHECK_FALSE(fs::exists(env.dir() / "snapshot.tmp"));

  // The guest keeps running in the same VMM.
  CHECK(processAlive(id));
  CHECK(vmm->process()->pid == id.pid);
  vmm::ch::ChApiClient api(env.dir() / "ch.sock");
  auto info = api.info();
  REQUIRE(info.ok());
  CHECK((*info)["state"] == "Running");
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(3000)).ok());
  CHECK_FALSE(processAlive(id));
}

TEST_CASE("a failed vm.create is quoted and leaves no process behind") {
  ChTestEnv env("45.0", {"--fake-fail 'vm.create=500:Error booting VM: cannot open kernel /k'"});
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto booted = vmm->boot(env.config(tap.fd()));
  REQUIRE_FALSE(booted.ok());
  CHECK(booted.error().code == ErrorCode::kVmmError);
  CHECK(booted.error().message.find("Error booting VM: cannot open kernel /k") !=
        std::string::npos);
  CHECK_FALSE(vmm->process().has_value());
  CHECK(env.endpoints() == Strings{"vmm.ping", "vm.create", "vmm.shutdown"});
  CHECK_FALSE(fs::exists(env.dir() / "ch.sock"));
}

TEST_CASE("a VMM too old for net_fds is refused at start") {
  ChTestEnv env("39.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto booted = vmm->boot(env.config(tap.fd()));
  REQUIRE_FALSE(booted.ok());
  CHECK(booted.error().code == ErrorCode::kFailedPrecondition);
  CHECK(booted.error().message.find("too old") != std::string::npos);
  CHECK_FALSE(vmm->process().has_value());
}

TEST_CASE("a failing restore quotes the VMM and leaves no process; missing snapshot is kNotFound") {
  ChTestEnv env("45.0", {"--fake-fail 'vm.restore=500:Error restoring VM: invalid snapshot state'"});
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto config = env.config(tap.fd());

  auto missing = vmm->restore(config, env.snapshotDir(), kStamp);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kNotFound);
  CHECK(env.requests().empty());  // nothing was started

  REQUIRE(vmm->boot(config).ok());
  REQUIRE(vmm->sleep(env.snapshotDir(), kStamp).ok());
  auto restored = vmm->restore(config, env.snapshotDir(), kStamp);
  REQUIRE_FALSE(restored.ok());
  CHECK(restored.error().code == ErrorCode::kVmmError);
  CHECK(restored.error().message.find("Error restoring VM: invalid snapshot state") !=
        std::string::npos);
  CHECK_FALSE(vmm->process().has_value());
  auto eps = env.endpoints();
  CHECK(eps.back() == "vmm.shutdown");
}

TEST_CASE("fd count mismatches: the client never sends one, the stand-in would reject it") {
  ChTestEnv env("45.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto config = env.config(tap.fd());
  REQUIRE(vmm->boot(config).ok());
  REQUIRE(vmm->sleep(env.snapshotDir(), kStamp).ok());
  REQUIRE(vmm->prepareRestore(config).ok());  // a VMM with no VM, ready for vm.restore
  vmm::ch::ChApiClient api(env.dir() / "ch-standby.sock");
  auto body = vmm::ch::buildRestoreConfig(env.snapshotDir(), 1);
  size_t before = env.requests().size();

  // The client refuses to send a body announcing 1 fd with 0 or 2 attached.
  auto none = api.restore(body, {});
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::kInvalidArgument);
  int two[2] = {tap.fd(), tap.fd()};
  CHECK_FALSE(api.restore(body, two).ok());
  CHECK(env.requests().size() == before);  // nothing reached the VMM

  // Sent raw anyway, the stand-in answers 400 and the client quotes it.
  auto raw = api.call("PUT", "vm.restore", &body);
  REQUIRE_FALSE(raw.ok());
  CHECK(raw.error().code == ErrorCode::kVmmError);
  CHECK(raw.error().message.find("HTTP 400") != std::string::npos);
  CHECK(raw.error().message.find("0 fds received, 1 announced") != std::string::npos);

  // The right count still works on the same VMM.
  int one[1] = {tap.fd()};
  REQUIRE(api.restore(body, one).ok());
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(3000)).ok());
}

TEST_CASE("API errors are quoted for state errors too (405 on a running VM's resume)") {
  ChTestEnv env("45.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  REQUIRE(vmm->boot(env.config(tap.fd())).ok());
  vmm::ch::ChApiClient api(env.dir() / "ch.sock");
  auto r = api.resume();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kVmmError);
  CHECK(r.error().message == "PUT vm.resume: HTTP 405: vm.resume: not allowed while the VM is Running");
  auto counters = api.counters();
  CHECK(counters.ok());
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(3000)).ok());
}

TEST_CASE("a snapshot whose RAM file was lost or replaced is not resumed, and no VMM is started") {
  ChTestEnv env("45.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto config = env.config(tap.fd());
  REQUIRE(vmm->boot(config).ok());
  REQUIRE(vmm->sleep(env.snapshotDir(), kStamp).ok());
  const auto ram = env.dir() / "guest-ram";
  fs::rename(ram, env.dir() / "guest-ram.kept");
  size_t before = env.requests().size();
  auto lost = vmm->restore(config, env.snapshotDir(), kStamp);
  REQUIRE_FALSE(lost.ok());
  CHECK(lost.error().code == ErrorCode::kDataLoss);
  CHECK(lost.error().message.find("guest-ram") != std::string::npos);

  // Same size, another file (a copy over it): its identity differs.
  fs::copy_file(env.dir() / "guest-ram.kept", ram);
  auto replaced = vmm->restore(config, env.snapshotDir(), kStamp);
  REQUIRE_FALSE(replaced.ok());
  CHECK(replaced.error().code == ErrorCode::kDataLoss);
  CHECK(env.requests().size() == before);
  CHECK_FALSE(vmm->process().has_value());
  CHECK(childProcesses().empty());
}

TEST_CASE("a VMM that dies before its API answers: the log tail is quoted, nothing is left") {
  ChTestEnv env("45.0", {"--no-such-option"});  // the fake exits at once, like a bad CLI
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto booted = vmm->boot(env.config(tap.fd()));
  REQUIRE_FALSE(booted.ok());
  CHECK(booted.error().code == ErrorCode::kVmmError);
  CHECK(booted.error().message.find("exited before its API answered") != std::string::npos);
  CHECK(booted.error().message.find("unknown option --no-such-option") != std::string::npos);
  CHECK_FALSE(vmm->process().has_value());
}

TEST_CASE("light sleep is vm.pause and vm.resume, the RAM written back and paged out; going "
          "deep from it snapshots the paused VM and a failure leaves it paused") {
  ChTestEnv env("45.0", {"--fake-fail 'vm.snapshot=500:Error snapshotting VM: No space left on device'"});
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  auto config = env.config(tap.fd());
  REQUIRE(vmm->boot(config).ok());
  vmm::ch::ChApiClient api(env.dir() / "ch.sock");

  auto paused = vmm->pause(vmm::LightSleepCache::kKeep);
  REQUIRE_MESSAGE(paused.ok(), s2z::tests::errText(paused));
  // What the fake guest wrote left the VMM's mapping, clean, into the page cache.
  CHECK(paused->unmappedBytes >= StandinRam::kTouchedBytes);
  CHECK(paused->cachedBytes >= StandinRam::kTouchedBytes);
  CHECK(env.endpoints().back() == "vm.pause");
  CHECK((*api.info())["state"] == "Paused");

  // Deeper from light: no second vm.pause, and the failed snapshot does not resume it.
  auto slept = vmm->sleep(env.snapshotDir(), kStamp);
  REQUIRE_FALSE(slept.ok());
  auto eps = env.endpoints();
  CHECK(Strings(eps.end() - 2, eps.end()) == Strings{"vm.info", "vm.snapshot"});
  CHECK((*api.info())["state"] == "Paused");

  REQUIRE(vmm->resume().ok());
  CHECK(env.endpoints().back() == "vm.resume");
  CHECK((*api.info())["state"] == "Running");

  // A light wake is vm.resume alone: the backend paused it and knows its state.
  REQUIRE(vmm->pause(vmm::LightSleepCache::kKeep).ok());
  size_t before = env.requests().size();
  REQUIRE(vmm->resume().ok());
  auto lightWake = env.endpoints();
  CHECK(Strings(lightWake.begin() + static_cast<long>(before), lightWake.end()) ==
        Strings{"vm.resume"});
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(0)).ok());
}

TEST_CASE("light sleep cache modes: 'mapped' leaves the RAM mapped in the VMM, 'drop' drops it "
          "from the page cache too") {
  ChTestEnv env("45.0");
  NetnsTap tap;
  auto vmm = vmm::makeCloudHypervisorVmm();
  REQUIRE(vmm->boot(env.config(tap.fd())).ok());

  auto mapped = vmm->pause(vmm::LightSleepCache::kMapped);
  REQUIRE_MESSAGE(mapped.ok(), errText(mapped));
  CHECK(mapped->unmappedBytes == 0);
  CHECK(mapped->cachedBytes >= StandinRam::kTouchedBytes);
  REQUIRE(vmm->resume().ok());  // the fake guest writes its pages again

  auto dropped = vmm->pause(vmm::LightSleepCache::kDrop);
  REQUIRE_MESSAGE(dropped.ok(), errText(dropped));
  CHECK(dropped->unmappedBytes >= StandinRam::kTouchedBytes);
  CHECK(dropped->cachedBytes == 0);
  REQUIRE(vmm->resume().ok());
  REQUIRE(vmm->shutdown(std::chrono::milliseconds(0)).ok());
}
