// The restore watchdog (VmConfig::restoreTimeout) on the Cloud Hypervisor
// backend: whatever step of a restore a VMM hangs in (its start, vm.restore,
// vm.resume) or however it stops answering (SIGSTOP), restore
// returns kTimeout naming that step within the budget plus a small margin,
// the VMM process is gone (not even a zombie) with its socket, and the next
// restore of the same snapshot works: the agent can cold boot or retry at once.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <csignal>

#include "tests/cloud_hypervisor/ch_test_env.h"
#include "tests/cloud_hypervisor/test_util.h"
#include "vmm/cloud_hypervisor/ch_api_client.h"
#include "vmm/cloud_hypervisor/ch_vmm.h"
#include "vmm/vmm_process.h"

using namespace s2z;
using namespace s2z::tests::ch;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

using Strings = std::vector<std::string>;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kBudget{300};
// Process start, SIGKILL and reaping on a loaded CI machine.
constexpr milliseconds kMargin{500};

// A VM put to sleep under env's (well-behaved) fake, ready to be restored.
struct Slept {
  explicit Slept(ChTestEnv& env) : vmm(vmm::makeCloudHypervisorVmm()), config(env.config(tap.fd())) {
    config.restoreTimeout = kBudget;
    auto booted = vmm->boot(config);
    REQUIRE_MESSAGE(booted.ok(), errText(booted));
    auto slept = vmm->sleep(env.snapshotDir(), kStamp);
    REQUIRE_MESSAGE(slept.ok(), errText(slept));
  }
  NetnsTap tap;
  std::unique_ptr<vmm::Vmm> vmm;
  vmm::VmConfig config;
};

// The pids the fake VMMs reported in their vmm.ping answers.
std::vector<pid_t> pingedPids(const ChTestEnv& env) {
  std::vector<pid_t> out;
  for (const auto& r : env.requests()) {
    if (r.endpoint != "vmm.ping" || r.status != 200) continue;
    out.push_back(static_cast<pid_t>(nlohmann::json::parse(r.reply).at("pid").get<int64_t>()));
  }
  return out;
}

struct Timed {
  Result<void> result;
  milliseconds took;
};

Timed timedRestore(vmm::Vmm& vmm, const vmm::VmConfig& config, const fs::path& snapshot) {
  auto began = Clock::now();
  auto r = vmm.restore(config, snapshot, kStamp);
  return {r, std::chrono::duration_cast<milliseconds>(Clock::now() - began)};
}

// The restore gave up in time with kTimeout naming `pending`.
void checkTimedOut(const Timed& t, const std::string& pending) {
  REQUIRE_FALSE(t.result.ok());
  INFO(t.result.error().describe());
  CHECK(t.result.error().code == ErrorCode::kTimeout);
  CHECK(t.result.error().message.find(pending + " still pending") != std::string::npos);
  CHECK(t.took >= kBudget - milliseconds(20));  // it was not some other, early failure
  CHECK(t.took < kBudget + kMargin);
}

// Nothing of the VMMs (`pids`) is left: no process, no zombie child of ours,
// no API socket, and the backend holds none.
void checkNothingLeft(const ChTestEnv& env, const vmm::Vmm& vmm, const std::vector<pid_t>& pids) {
  CHECK_FALSE(vmm.process().has_value());
  CHECK_FALSE(vmm.standby());
  for (pid_t pid : pids) {
    CAPTURE(pid);
    CHECK(::kill(pid, 0) != 0);  // neither running nor a zombie (that would still take signals)
  }
  CHECK(childProcesses().empty());
  CHECK(vmm::processesMentioning(env.dir().string()).empty());
  CHECK_FALSE(fs::exists(env.dir() / "ch.sock"));
  CHECK_FALSE(fs::exists(env.dir() / "ch-standby.sock"));
}

// With a well-behaved VMM again, the same snapshot restores and runs.
void checkNextRestoreWorks(ChTestEnv& env, Slept& s) {
  env.setFakeArgs({});
  auto again = s.vmm->restore(s.config, env.snapshotDir(), kStamp);
  REQUIRE_MESSAGE(again.ok(), errText(again));
  vmm::ch::ChApiClient api(env.dir() / "ch.sock");
  auto info = api.info();
  REQUIRE(info.ok());
  CHECK((*info)["state"] == "Running");
  REQUIRE(s.vmm->shutdown(milliseconds(3000)).ok());
  CHECK(childProcesses().empty());
}

}  // namespace

TEST_CASE("watchdog: a vm.restore that never answers is killed at restoreTimeout") {
  ChTestEnv env("45.0");
  Slept s(env);
  REQUIRE(childProcesses().empty());
  env.setFakeArgs({"--fake-hang", "vm.restore"});
  size_t before = env.requests().size();

  auto t = timedRestore(*s.vmm, s.config, env.snapshotDir());
  checkTimedOut(t, "vm.restore");
  auto eps = env.endpoints();
  CHECK(Strings(eps.begin() + static_cast<long>(before), eps.end()) ==
        Strings{"vmm.ping", "vm.restore"});  // no vmm.shutdown to a VMM that hangs
  checkNothingLeft(env, *s.vmm, pingedPids(env));
  checkNextRestoreWorks(env, s);
}

TEST_CASE("watchdog: a SIGSTOPped standby VMM is killed at restoreTimeout") {
  ChTestEnv env("45.0");
  Slept s(env);
  REQUIRE(s.vmm->prepareRestore(s.config).ok());
  auto standby = s.vmm->process();
  REQUIRE(standby.has_value());
  REQUIRE(s.vmm->signal(SIGSTOP).ok());

  auto t = timedRestore(*s.vmm, s.config, env.snapshotDir());
  checkTimedOut(t, "vm.restore");
  checkNothingLeft(env, *s.vmm, {standby->pid});
  checkNextRestoreWorks(env, s);
}

TEST_CASE("watchdog: a vm.resume that never answers is killed at restoreTimeout") {
  ChTestEnv env("45.0");
  Slept s(env);
  env.setFakeArgs({"--fake-hang", "vm.resume"});
  size_t before = env.requests().size();

  auto t = timedRestore(*s.vmm, s.config, env.snapshotDir());
  checkTimedOut(t, "vm.resume");
  auto reqs = env.requests();
  REQUIRE(reqs.size() == before + 3);
  CHECK(reqs[before + 1].endpoint == "vm.restore");
  CHECK(reqs[before + 1].status == 204);  // the restore itself went through
  CHECK(reqs[before + 2].endpoint == "vm.resume");
  checkNothingLeft(env, *s.vmm, pingedPids(env));
  // Once vm.resume was sent the guest may have run on its RAM file: the
  // snapshot no longer matches it and is refused; the agent cold boots.
  env.setFakeArgs({});
  auto stale = s.vmm->restore(s.config, env.snapshotDir(), kStamp);
  REQUIRE_FALSE(stale.ok());
  CHECK(stale.error().code == ErrorCode::kDataLoss);
  CHECK(childProcesses().empty());
  auto booted = s.vmm->boot(s.config);
  REQUIRE_MESSAGE(booted.ok(), errText(booted));
  REQUIRE(s.vmm->shutdown(milliseconds(3000)).ok());
}

TEST_CASE("watchdog: a VMM whose API never comes up is killed at restoreTimeout") {
  ChTestEnv env("45.0");
  Slept s(env);
  env.setFakeArgs({"--fake-listen-delay", "60000"});
  size_t before = env.requests().size();

  auto t = timedRestore(*s.vmm, s.config, env.snapshotDir());
  checkTimedOut(t, "the cloud-hypervisor start");
  CHECK(env.requests().size() == before);  // it never answered anything
  checkNothingLeft(env, *s.vmm, pingedPids(env));
  checkNextRestoreWorks(env, s);
}

TEST_CASE("watchdog: a restore within the budget is untouched, and boot after a timeout works") {
  ChTestEnv env("45.0");
  Slept s(env);
  env.setFakeArgs({"--fake-hang", "vm.restore"});
  checkTimedOut(timedRestore(*s.vmm, s.config, env.snapshotDir()), "vm.restore");

  // The agent's answer to kTimeout is a cold boot: the same backend object boots.
  env.setFakeArgs({});
  auto booted = s.vmm->boot(s.config);
  REQUIRE_MESSAGE(booted.ok(), errText(booted));
  REQUIRE(s.vmm->sleep(env.snapshotDir(), kStamp).ok());
  // A normal restore takes far less than the budget and is not cut short.
  auto t = timedRestore(*s.vmm, s.config, env.snapshotDir());
  REQUIRE_MESSAGE(t.result.ok(), errText(t.result));
  CHECK(t.took < kBudget);
  REQUIRE(s.vmm->shutdown(milliseconds(3000)).ok());
  CHECK(childProcesses().empty());
}
