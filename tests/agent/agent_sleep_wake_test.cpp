// Scale-to-zero logic of the agent against fakes: idle detection, sleep,
// wake, their failure paths and event de-duplication.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>

#include "agent/instance_record_json.h"
#include "agent/process_usage.h"
#include "agent/run_dir.h"
#include "tests/agent/agent_test_support.h"

namespace s2z::agent {
namespace {

using namespace std::chrono_literals;
using testing::Harness;
using testing::waitUntil;

bool isState(const std::shared_ptr<Instance>& i, InstanceState s) { return i->state() == s; }

TEST_CASE("idle instance goes to sleep after idle_timeout, not before") {
  Harness h;
  h.makeAgent();
  auto t0 = std::chrono::steady_clock::now();
  auto inst = h.startOk(h.spec("task-idle", true, 300ms));
  CHECK(inst->state() == InstanceState::kRunning);
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
  // The standby starts right after the event (the snapshot is durable
  // first), so it is waited for: under TSan it once came after the check.
  REQUIRE(waitUntil([&] { return inst->record().standby; }, 3s));

  auto rec = inst->record();
  CHECK(*h.kernel.state(rec.network.ifindex) == bpf::InstanceState::kSleeping);
  CHECK(h.world->count(&testing::FakeWorld::sleeps) == 1);
  CHECK(h.world->count(&testing::FakeWorld::standbys) == 1);  // standby waits for the wake
  auto sleeping = h.events.find("Sleeping");
  REQUIRE(sleeping.size() == 1);
  CHECK(sleeping[0].annotations.count("idle_time") == 1);
  CHECK(sleeping[0].annotations.at("snapshot_bytes") == "12");
  CHECK(sleeping[0].annotations.at("snapshot_ms") == "3.0");
  // The persisted record follows the transition.
  auto disk = loadRecord(rec.runDir);
  REQUIRE(disk.ok());
  CHECK(disk->state == InstanceState::kSleeping);
  CHECK(h.agent->status().sleeping == 1);
  // Asleep: usage is zero, not measured; waitExit keeps blocking.
  CHECK_FALSE(inst->usage().measured);
  CHECK_FALSE(inst->waitExit(50ms).has_value());
}

TEST_CASE("packets keep an instance awake; instances without scale_to_zero never sleep") {
  Harness h;
  h.makeAgent();
  auto busy = h.startOk(h.spec("task-busy", true, 500ms));
  auto plain = h.startOk(h.spec("task-plain", false, 50ms));
  uint32_t ifindex = busy->record().network.ifindex;
  for (int i = 0; i < 10; ++i) {
    h.kernel.packet(ifindex);
    std::this_thread::sleep_for(80ms);
    CHECK(busy->state() == InstanceState::kRunning);
  }
  CHECK(plain->state() == InstanceState::kRunning);
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  CHECK(plain->state() == InstanceState::kRunning);
}

TEST_CASE("a wake event restores the instance with the tap queue held since the sleep edge") {
  Harness h;
  h.makeAgent();
  auto inst = h.startOk(h.spec("task-wake", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  uint32_t ifindex = inst->record().network.ifindex;
  h.kernel.packet(ifindex);
  REQUIRE(waitUntil([&] { return h.events.find("Woken").size() == 1; }, 3s));
  CHECK(inst->state() == InstanceState::kRunning);
  CHECK(*h.kernel.state(ifindex) == bpf::InstanceState::kRunning);
  {
    std::lock_guard lock(h.world->mutex);
    REQUIRE(h.world->bootTapFds.size() == 1);
    REQUIRE(h.world->restoreTapFds.size() == 1);
    // The sleep switched to a fresh queue before stopping the VMM; the
    // restored VMM gets that one (it holds every frame since the switch).
    CHECK(h.world->restoreTapFds[0] != h.world->bootTapFds[0]);
    CHECK(h.world->restoreTapFds[0] >= 0);
    CHECK(h.world->bootTapFds[0] >= 0);
    CHECK(h.world->boots == 1);  // no cold boot
    // The agent appended the guest network to the user's command line.
    CHECK(h.world->bootCmdlines[0] ==
          "console=ttyS0 ip=10.89.0.2::10.89.0.1:255.255.255.0::eth0:off");
  }
  auto woken = h.events.find("Woken")[0];
  CHECK(woken.annotations.count("wake_ms") == 1);
  CHECK(woken.annotations.count("sleep_duration") == 1);
  CHECK(woken.annotations.count("cold_boot") == 0);
  CHECK(loadRecord(inst->record().runDir)->state == InstanceState::kRunning);
  // Awake again, it sleeps again after another idle timeout.
  REQUIRE(waitUntil([&] { return h.events.find("Sleeping").size() == 2; }, 3s));
  CHECK(h.world->count(&testing::FakeWorld::sleeps) == 2);
}

TEST_CASE("an instance.json that cannot be written: one event per failing stretch, the old record stays whole") {
  Harness h;
  h.makeAgent();
  auto inst = h.startOk(h.spec("task-record", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  const auto runDir = inst->record().runDir;
  // The temp file's name taken by a directory: the write fails (root ignores
  // modes, so a read-only run dir would not do).
  const auto blocker = runDir / "instance.json.tmp";
  // A write in flight holds that name for a moment: try again until it is ours.
  auto block = [&] {
    return waitUntil([&] { std::error_code ec; return std::filesystem::create_directory(blocker, ec); }, 3s);
  };
  REQUIRE(block());
  const auto before = loadRecord(runDir);
  REQUIRE(before.ok());

  h.kernel.packet(inst->record().network.ifindex);  // wake: its record write fails
  REQUIRE(h.events.waitFor("Task state not saved", 3s));
  // It sleeps and wakes on (the guest does not care), writing on every step.
  size_t sleeps = h.events.find("Sleeping").size();
  REQUIRE(waitUntil([&] { return h.events.find("Sleeping").size() > sleeps; }, 3s));
  h.kernel.packet(inst->record().network.ifindex);
  REQUIRE(waitUntil([&] { return h.events.find("Woken").size() >= 2; }, 3s));
  auto failed = h.events.find("Task state not saved");
  CHECK(failed.size() == 1);
  CHECK(failed[0].message.find("instance.json.tmp") != std::string::npos);
  CHECK(failed[0].annotations.at("record") == (runDir / "instance.json").string());
  auto kept = loadRecord(runDir);
  REQUIRE(kept.ok());  // still whole: the previous record
  CHECK(kept->state == before->state);

  // Writable again: the next write lands (a rename: a new inode); a new
  // failure is a new event.
  auto inode = [&] {
    struct stat st {};
    return ::stat(recordPath(runDir).c_str(), &st) == 0 ? st.st_ino : 0;
  };
  const auto oldInode = inode();
  std::filesystem::remove(blocker);
  h.kernel.packet(inst->record().network.ifindex);
  REQUIRE(waitUntil([&] { return inode() != oldInode; }, 3s));
  REQUIRE(loadRecord(runDir).ok());
  REQUIRE(block());
  REQUIRE(waitUntil([&] { return isState(inst, InstanceState::kSleeping); }, 3s));
  h.kernel.packet(inst->record().network.ifindex);
  REQUIRE(waitUntil([&] { return h.events.find("Task state not saved").size() == 2; }, 3s));
  std::filesystem::remove(blocker);
}

TEST_CASE("a failed snapshot leaves the VM running, says why, and retries after idle_timeout") {
  Harness h;
  h.makeAgent();
  {
    std::lock_guard lock(h.world->mutex);
    h.world->failSleep = "disk full";
  }
  auto inst = h.startOk(h.spec("task-fail", true, 200ms));
  REQUIRE(h.events.waitFor("Sleep failed", 3s));
  CHECK(h.events.find("Sleep failed")[0].message == "Sleep failed: disk full");
  CHECK(inst->state() == InstanceState::kRunning);
  CHECK(*h.kernel.state(inst->record().network.ifindex) == bpf::InstanceState::kRunning);
  {
    // The VMM resumed on its own queue: the sleep edge's switch was undone.
    std::lock_guard lock(h.net->mutex);
    CHECK(h.net->diverts >= 1);
    CHECK(h.net->reverts == h.net->diverts);
  }
  // The next attempt comes only after another idle timeout.
  REQUIRE(waitUntil([&] { return h.world->count(&testing::FakeWorld::sleeps) == 2; }, 3s));
  {
    std::lock_guard lock(h.world->mutex);
    CHECK(h.world->sleepCalls[1] - h.world->sleepCalls[0] >= 200ms);
  }
  {
    std::lock_guard lock(h.world->mutex);
    h.world->failSleep.clear();
  }
  REQUIRE(h.events.waitFor("Sleeping", 3s));
}

TEST_CASE("a missing snapshot is reported, then the instance cold-boots instead of hanging") {
  Harness h;
  h.makeAgent();
  auto inst = h.startOk(h.spec("task-missing", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  std::filesystem::remove_all(inst->record().snapshotDir);
  h.kernel.packet(inst->record().network.ifindex);
  REQUIRE(h.events.waitFor("Woken", 3s));
  CHECK(inst->state() == InstanceState::kRunning);
  auto missing = h.events.find("Snapshot missing");
  REQUIRE(missing.size() == 1);
  CHECK(missing[0].message.find("cold booting") != std::string::npos);
  CHECK(h.world->count(&testing::FakeWorld::boots) == 2);
  CHECK(h.world->count(&testing::FakeWorld::restores) == 0);
  auto woken = h.events.find("Woken");
  REQUIRE(woken.size() == 1);
  CHECK(woken[0].annotations.at("cold_boot") == "true");
}

TEST_CASE("a stop during a cold boot's gate does not wait for the gate") {
  Harness h;
  h.config.bootGate.clientWait = 20s;  // no client comes here: the gate would hold this long
  h.makeAgent();
  auto inst = h.startOk(h.spec("task-gate", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  std::filesystem::remove_all(inst->record().snapshotDir);
  h.kernel.packet(inst->record().network.ifindex);
  // The replacement guest is booted: the wake job now holds the gate.
  REQUIRE(waitUntil([&] { return h.world->count(&testing::FakeWorld::boots) == 2; }, 3s));
  auto start = std::chrono::steady_clock::now();
  REQUIRE(inst->stop(1s, SIGTERM).ok());
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(inst->state() == InstanceState::kExited);
}

TEST_CASE("a corrupt snapshot is reported as unusable, then the instance cold-boots") {
  Harness h;
  h.makeAgent();
  auto inst = h.startOk(h.spec("task-corrupt", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  std::ofstream(inst->record().snapshotDir / "state", std::ios::trunc) << "corrupt\n";
  h.kernel.packet(inst->record().network.ifindex);
  REQUIRE(h.events.waitFor("Woken", 3s));
  CHECK(inst->state() == InstanceState::kRunning);
  auto unusable = h.events.find("Snapshot unusable");
  REQUIRE(unusable.size() == 1);
  CHECK(unusable[0].message.find("is corrupt") != std::string::npos);
  CHECK(h.world->count(&testing::FakeWorld::boots) == 2);
}

TEST_CASE("usage: CPU ticks and RSS of a live process, percentages between samples") {
  UsageSampler sampler;
  auto first = sampler.sample(::getpid());
  REQUIRE(first.measured);
  CHECK(first.rssBytes > 0);
  CHECK(first.cpuPercent == 0);  // no interval yet
  auto until = std::chrono::steady_clock::now() + 200ms;
  volatile uint64_t spin = 0;
  while (std::chrono::steady_clock::now() < until) spin = spin + 1;
  auto second = sampler.sample(::getpid());
  CHECK(second.cpuTicksTotal >= first.cpuTicksTotal);
  CHECK(second.cpuPercent > 5);  // we spun a core (the machine is shared: not 100)
  CHECK(second.cpuPercent < 250);
  CHECK(second.cpuPercent == doctest::Approx(second.userPercent + second.systemPercent));
  CHECK_FALSE(sampler.sample(0).measured);
}

TEST_CASE("concurrent wake events cause exactly one restore") {
  Harness h;
  h.makeAgent();
  auto inst = h.startOk(h.spec("task-burst", true, 150ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  uint32_t ifindex = inst->record().network.ifindex;
  // Many packets from many threads: the CAS yields one event; duplicates
  // that reach the agent anyway (e.g. re-delivered) must be ignored too.
  std::vector<std::thread> senders;
  for (int t = 0; t < 8; ++t) {
    senders.emplace_back([&] {
      for (int i = 0; i < 20; ++i) h.kernel.packet(ifindex);
    });
  }
  for (int i = 0; i < 5; ++i) h.kernel.injectEvent(ifindex);
  for (auto& s : senders) s.join();
  REQUIRE(waitUntil([&] { return isState(inst, InstanceState::kRunning); }, 3s));
  std::this_thread::sleep_for(100ms);  // room for any duplicate to (wrongly) act
  CHECK(h.world->count(&testing::FakeWorld::restores) == 1);
  CHECK(h.events.find("Woken").size() == 1);
}

TEST_CASE("a packet during the snapshot wakes the instance right after it, without a standby") {
  Harness h;
  h.makeAgent();
  {
    std::lock_guard lock(h.world->mutex);
    h.world->sleepDelay = 300ms;
  }
  auto inst = h.startOk(h.spec("task-during", true, 100ms));
  uint32_t ifindex = inst->record().network.ifindex;
  REQUIRE(waitUntil([&] { return h.world->sleepInProgress.load(); }, 3s));
  CHECK(inst->state() == InstanceState::kSnapshotting);
  h.kernel.packet(ifindex);  // BPF state is SLEEPING already: this emits the wake
  {
    std::lock_guard lock(h.world->mutex);
    h.world->sleepDelay = 0ms;
  }
  REQUIRE(waitUntil([&] { return h.events.find("Woken").size() == 1; }, 3s));
  CHECK(h.world->count(&testing::FakeWorld::standbys) == 0);
  CHECK(h.world->count(&testing::FakeWorld::restores) == 1);
  CHECK(inst->state() == InstanceState::kRunning);
}

TEST_CASE("a wake of one instance does not wait behind another instance's slow sleep") {
  Harness h;
  h.makeAgent();
  auto b = h.startOk(h.spec("task-b", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  {
    std::lock_guard lock(h.world->mutex);
    h.world->sleepDelay = 1500ms;  // every sleep from now on is slow
  }
  auto a = h.startOk(h.spec("task-a", true, 100ms));
  REQUIRE(waitUntil([&] { return a->state() == InstanceState::kSnapshotting; }, 3s));
  auto sent = std::chrono::steady_clock::now();
  h.kernel.packet(b->record().network.ifindex);
  REQUIRE(waitUntil([&] { return h.events.find("Woken").size() == 1; }, 3s));
  auto waited = std::chrono::steady_clock::now() - sent;
  CHECK(waited < 700ms);
  CHECK(a->state() == InstanceState::kSnapshotting);  // a's sleep still runs
  CHECK(h.world->count(&testing::FakeWorld::restores) == 1);
  {
    std::lock_guard lock(h.world->mutex);
    h.world->sleepDelay = 0ms;
  }
  REQUIRE(waitUntil([&] { return a->state() == InstanceState::kSleeping; }, 5s));
}

TEST_CASE("without the kernel side instances run but never sleep, and status says why") {
  Harness h;
  h.makeAgent(/*withKernel=*/false);
  auto inst = h.startOk(h.spec("task-nobpf", true, 50ms));
  std::this_thread::sleep_for(300ms);
  CHECK(inst->state() == InstanceState::kRunning);
  auto s = h.agent->status();
  CHECK_FALSE(s.scaleToZeroReady);
  CHECK(s.problem == "no kernel in this test");
  CHECK(s.instances == 1);
}

}  // namespace
}  // namespace s2z::agent
