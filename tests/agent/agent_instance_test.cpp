// Start, stop, destroy, exits and recovery of instances against fakes.
#include <doctest/doctest.h>

#include <csignal>

#include "agent/run_dir.h"
#include "agent/vm_instance.h"
#include "tests/agent/agent_test_support.h"
#include "tests/err_text.h"

namespace s2z::agent {
namespace {

using namespace std::chrono_literals;
using testing::Harness;
using testing::waitUntil;

TEST_CASE("start lays out the run dir, tap, address and BPF registration") {
  Harness h;
  h.makeAgent();
  auto inst = h.startOk(h.spec("alloc1/web/abc", false, 1s));
  auto rec = inst->record();
  CHECK(rec.runDir == h.stateDir / "tasks" / instanceDirName("web", "alloc1/web/abc"));
  CHECK(rec.runDir.filename().string().rfind("web-", 0) == 0);
  CHECK(rec.network.tapName == tapNameFor("alloc1/web/abc"));
  CHECK(rec.network.tapName.size() <= 15);
  CHECK(rec.network.address == "10.89.0.2");
  CHECK(rec.network.gateway == "10.89.0.1");
  CHECK(h.kernel.registered(rec.network.ifindex));
  CHECK(rec.vmm.pid != 0);
  CHECK(rec.state == InstanceState::kRunning);
  auto disk = loadRecord(rec.runDir);
  REQUIRE(disk.ok());
  CHECK(disk->state == InstanceState::kRunning);
  CHECK(disk->vmm.pid == rec.vmm.pid);
  auto dup = h.agent->start(h.spec("alloc1/web/abc", false, 1s), h.events.sink());
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().code == ErrorCode::kAlreadyExists);
  auto attrs = inst->attributes();
  CHECK(attrs.at("state") == "running");
  CHECK(attrs.at("address") == "10.89.0.2");
  CHECK(attrs.at("packets") == "0");
}

TEST_CASE("names: sanitized task name plus a stable hash; taps fit IFNAMSIZ") {
  CHECK(taskIdHash("a") == taskIdHash("a"));
  CHECK(taskIdHash("a") != taskIdHash("b"));
  CHECK(taskIdHash("").size() == 8);
  CHECK(instanceDirName("my web/app", "id") == "my-web-app-" + taskIdHash("id"));
  CHECK(instanceDirName("..", "id") == "task-" + taskIdHash("id"));
  CHECK(tapNameFor("anything at all").size() == 11);
}

TEST_CASE("guest agent's network parameters: the MTU unless 1500, each route with its gateway if it has one") {
  Lease lease{"172.26.64.5", "172.26.64.1", 20, "255.255.240.0"};
  CHECK(guestAgentNetworkParams(lease) == "");
  lease.mtu = 1500;
  CHECK(guestAgentNetworkParams(lease) == "");
  lease.mtu = 1400;
  lease.routes = {{"10.1.0.0", 16, ""}, {"192.0.2.0", 24, "172.26.64.9"}};
  CHECK(guestAgentNetworkParams(lease) == " s2z.mtu=1400 s2z.route=10.1.0.0/16 s2z.route=192.0.2.0/24,172.26.64.9");
}

TEST_CASE("guest command line: console=ttyS0 unless the user names a console; ip= last") {
  CHECK(guestCmdline("", "A") == "console=ttyS0 ip=A");
  CHECK(guestCmdline("quiet", "A") == "quiet console=ttyS0 ip=A");
  CHECK(guestCmdline("console=hvc0 quiet", "A") == "console=hvc0 quiet ip=A");
  CHECK(guestCmdline("quiet console=ttyS1,115200", "A") == "quiet console=ttyS1,115200 ip=A");
  // Only a whole parameter names a console.
  CHECK(guestCmdline("xconsole=1", "A") == "xconsole=1 console=ttyS0 ip=A");

  Harness h;
  h.makeAgent();
  auto s = h.spec("alloc1/web/console", false, 1s);
  s.cmdline = "quiet panic=-1";
  auto inst = h.startOk(s);
  std::lock_guard lock(h.world->mutex);
  REQUIRE(h.world->bootCmdlines.size() == 1);
  CHECK(h.world->bootCmdlines[0] == "quiet panic=-1 console=ttyS0 ip=10.89.0.2::10.89.0.1:"
                                    "255.255.255.0::eth0:off");
}

TEST_CASE("a failing boot undoes every completed stage") {
  Harness h;
  // A factory that returns a VMM whose boot fails.
  struct FailingVmm : testing::FakeVmm {
    using FakeVmm::FakeVmm;
    Result<void> boot(const vmm::VmConfig&) override {
      return makeError(ErrorCode::kVmmError, "qemu said no");
    }
  };
  AgentDependencies deps;
  deps.vmmFactory = [w = h.world](vmm::Hypervisor) { return std::make_unique<FailingVmm>(w); };
  deps.network = testing::makeFakeNetwork(h.net);
  deps.kernel = std::make_unique<testing::KernelRef>(h.kernel);
  auto agent = ScaleToZeroAgent::create(h.config, std::move(deps));
  REQUIRE(agent.ok());
  auto r = (*agent)->start(h.spec("task-fails", false, 1s), h.events.sink());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "start task-fails: boot: qemu said no");
  std::lock_guard lock(h.net->mutex);
  CHECK(h.net->taps.empty());
  CHECK(h.net->leases.empty());
  CHECK(h.net->plumbed.empty());
  CHECK_FALSE(h.kernel.registered(10));
  CHECK(std::filesystem::is_empty(h.stateDir / "tasks"));
  CHECK((*agent)->status().instances == 0);
}

TEST_CASE("a VMM crash while running is the task's exit, with the error") {
  Harness h;
  h.makeAgent();
  auto inst = h.startOk(h.spec("task-crash", false, 1s));
  CHECK_FALSE(inst->waitExit(20ms).has_value());
  h.onlyVmm()->crash(0, 9);
  auto exit = inst->waitExit(3s);
  REQUIRE(exit.has_value());
  CHECK(exit->signal == 9);
  CHECK(exit->error == "VM process killed by signal 9");
  CHECK(inst->state() == InstanceState::kExited);
  CHECK(loadRecord(inst->record().runDir)->state == InstanceState::kExited);
}

TEST_CASE("a clean guest power-off exits with code 0 and no error") {
  Harness h;
  h.makeAgent();
  auto inst = h.startOk(h.spec("task-poweroff", false, 1s));
  h.onlyVmm()->crash(0, 0);
  auto exit = inst->waitExit(3s);
  REQUIRE(exit.has_value());
  CHECK(exit->exitCode == 0);
  CHECK(exit->error.empty());
}

TEST_CASE("stop and destroy: from running and from sleeping, both idempotent") {
  Harness h;
  h.makeAgent();
  auto running = h.startOk(h.spec("task-a", false, 1s));
  auto sleeper = h.startOk(h.spec("task-b", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));

  REQUIRE(running->stop(1s, SIGTERM).ok());
  CHECK(running->state() == InstanceState::kExited);
  REQUIRE(running->waitExit(0ms).has_value());
  REQUIRE(running->stop(1s, SIGTERM).ok());  // idempotent

  REQUIRE(sleeper->stop(1s, SIGTERM).ok());  // kills the standby
  CHECK(sleeper->state() == InstanceState::kExited);
  CHECK(sleeper->record().vmm.pid == 0);
  CHECK(*h.kernel.state(sleeper->record().network.ifindex) == bpf::InstanceState::kRunning);

  auto dir = sleeper->record().runDir;
  REQUIRE(sleeper->destroy().ok());
  REQUIRE(sleeper->destroy().ok());
  CHECK_FALSE(std::filesystem::exists(dir));
  CHECK_FALSE(h.kernel.registered(sleeper->record().network.ifindex));
  // destroy() without stop() first stops it.
  auto third = h.startOk(h.spec("task-c", false, 1s));
  REQUIRE(third->destroy().ok());
  CHECK(third->state() == InstanceState::kExited);
  REQUIRE(running->destroy().ok());
  std::lock_guard lock(h.net->mutex);
  CHECK(h.net->taps.empty());
  CHECK(h.net->leases.empty());
}

TEST_CASE("recovery by a new agent: running and sleeping instances are re-adopted") {
  Harness h;
  h.makeAgent();
  auto running = h.startOk(h.spec("task-run", false, 1s));
  auto sleeper = h.startOk(h.spec("task-sleep", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  // The handles Nomad stored at StartTask say Running; instance.json knows better.
  InstanceRecord runHandle = running->record();
  InstanceRecord sleepHandle = sleeper->record();
  sleepHandle.state = InstanceState::kRunning;
  sleepHandle.vmm = {};
  sleepHandle.standby = false;
  running.reset();
  sleeper.reset();

  h.makeAgent();  // a new Agent object: the plugin restarted
  auto r1 = h.agent->recover(runHandle, h.events.sink());
  REQUIRE_MESSAGE(r1.ok(), s2z::tests::errText(r1));
  CHECK((*r1)->state() == InstanceState::kRunning);
  auto r1again = h.agent->recover(runHandle, h.events.sink());
  REQUIRE(r1again.ok());
  CHECK(r1again->get() == r1->get());  // idempotent

  auto r2 = h.agent->recover(sleepHandle, h.events.sink());
  REQUIRE_MESSAGE(r2.ok(), s2z::tests::errText(r2));
  CHECK((*r2)->state() == InstanceState::kSleeping);
  CHECK((*r2)->record().standby);  // the standby was adopted
  CHECK(h.agent->status().sleeping == 1);
  int restoresBefore = h.world->count(&testing::FakeWorld::restores);
  h.kernel.packet((*r2)->record().network.ifindex);
  bool woke = waitUntil([&] { return (*r2)->state() == InstanceState::kRunning; }, 3s);
  if (!woke) {
    MESSAGE("state " << std::string(instanceStateName((*r2)->state())) << " bpf "
            << static_cast<int>(*h.kernel.state((*r2)->record().network.ifindex)) << " restores "
            << h.world->count(&testing::FakeWorld::restores) << " ifindex "
            << (*r2)->record().network.ifindex << " r1 " << (*r1)->record().network.ifindex);
  }
  REQUIRE(woke);
  CHECK(h.world->count(&testing::FakeWorld::restores) == restoresBefore + 1);
}

TEST_CASE("recovery: a packet that came while no plugin ran wakes the instance at once") {
  Harness h;
  h.makeAgent();
  auto sleeper = h.startOk(h.spec("task-late", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  auto rec = h.abandon(std::move(sleeper));
  h.kernel.packet(rec.network.ifindex);  // flips to WAKING; nobody listens
  (void)h.kernel.drainWakeEvents();      // a new plugin drains stale records
  h.makeAgent();
  auto r = h.agent->recover(rec, h.events.sink());
  REQUIRE_MESSAGE(r.ok(), s2z::tests::errText(r));
  CHECK((*r)->state() == InstanceState::kRunning);
  CHECK(h.events.find("Woken").size() == 1);
}

TEST_CASE("recovery: a running VM whose process is gone is kNotFound and cleaned up") {
  Harness h;
  h.makeAgent();
  auto rec = h.abandon(h.startOk(h.spec("task-gone", false, 1s)));
  {
    std::lock_guard lock(h.world->mutex);
    h.world->alivePids.clear();  // the VMM died while the plugin was down
  }
  h.makeAgent();
  auto r = h.agent->recover(rec, h.events.sink());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kNotFound);
  CHECK(r.error().message.find("VM process " + std::to_string(rec.vmm.pid)) != std::string::npos);
  CHECK(r.error().message.find("is gone") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(rec.runDir));
  std::lock_guard lock(h.net->mutex);
  CHECK(h.net->taps.empty());
  CHECK(h.net->leases.empty());
}

TEST_CASE("recovery: a plugin that died mid-snapshot leaves a sleeping VM, which is woken") {
  Harness h;
  h.makeAgent();
  auto sleeper = h.startOk(h.spec("task-midsnap", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  auto rec = h.abandon(std::move(sleeper));
  {
    std::lock_guard lock(h.world->mutex);
    h.world->alivePids.clear();  // the VMM exited after writing the snapshot
  }
  // What instance.json said when the plugin died: Snapshotting, and the
  // generation before this sleep's (it is recorded once the sleep is done).
  rec.state = InstanceState::kSnapshotting;
  REQUIRE(rec.snapshotGeneration == 1);
  rec.snapshotGeneration = 0;
  REQUIRE(persistRecord(rec).ok());
  h.makeAgent();
  auto r = h.agent->recover(rec, h.events.sink());
  REQUIRE_MESSAGE(r.ok(), s2z::tests::errText(r));
  CHECK((*r)->state() == InstanceState::kRunning);
  CHECK(h.events.find("Woken").size() == 1);
  CHECK((*r)->record().snapshotGeneration == 1);
}

TEST_CASE("recovery: mid-snapshot with the VMM gone and only the previous sleep's snapshot: never restored") {
  Harness h;
  h.makeAgent();
  auto sleeper = h.startOk(h.spec("task-stale", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  auto rec = h.abandon(std::move(sleeper));
  {
    std::lock_guard lock(h.world->mutex);
    h.world->alivePids.clear();  // the VMM died before this sleep's snapshot was whole
  }
  // The snapshot on disk is generation 1, the previous sleep's: its device
  // state is older than the RAM the guest ran on since.
  rec.state = InstanceState::kSnapshotting;
  REQUIRE(persistRecord(rec).ok());
  h.makeAgent();
  auto r = h.agent->recover(rec, h.events.sink());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kNotFound);
  CHECK(h.world->count(&testing::FakeWorld::restores) == 0);
}

TEST_CASE("recovery: a plugin that died mid-snapshot with the VMM alive resumes the guest") {
  Harness h;
  h.makeAgent();
  auto rec = h.abandon(h.startOk(h.spec("task-paused", true, 1h)));
  rec.state = InstanceState::kSnapshotting;  // stopped, the VMM not yet gone
  REQUIRE(persistRecord(rec).ok());
  h.makeAgent();
  auto r = h.agent->recover(rec, h.events.sink());
  REQUIRE_MESSAGE(r.ok(), s2z::tests::errText(r));
  CHECK((*r)->state() == InstanceState::kRunning);
  CHECK(h.world->count(&testing::FakeWorld::resumes) == 1);
  CHECK(h.world->count(&testing::FakeWorld::restores) == 0);
  CHECK(h.events.find("Sleep interrupted").size() == 1);
  CHECK(h.events.find("Woken").empty());
}

TEST_CASE("recovery: a sleeping instance whose standby died gets a new standby") {
  Harness h;
  h.makeAgent();
  auto sleeper = h.startOk(h.spec("task-standby", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  auto rec = h.abandon(std::move(sleeper));
  {
    std::lock_guard lock(h.world->mutex);
    h.world->alivePids.clear();
  }
  int standbys = h.world->count(&testing::FakeWorld::standbys);
  h.makeAgent();
  auto r = h.agent->recover(rec, h.events.sink());
  REQUIRE_MESSAGE(r.ok(), s2z::tests::errText(r));
  CHECK((*r)->state() == InstanceState::kSleeping);
  CHECK(h.world->count(&testing::FakeWorld::standbys) == standbys + 1);
}

}  // namespace
}  // namespace s2z::agent
