// The sleep tiers' logic against fakes: light sleep and its resume, light ->
// deep after deep_sleep_after, a wake pending at the demotion, and the
// host-wide standby budget (standby_vmms).
#include <doctest/doctest.h>

#include "agent/standby_budget.h"
#include "tests/agent/agent_test_support.h"

namespace s2z::agent {
namespace {

using namespace std::chrono_literals;
using testing::FakeWorld;
using testing::Harness;
using testing::waitUntil;

TEST_CASE("standby budget: the most recent N deep sleepers keep a standby") {
  StandbyBudget none(0);
  CHECK_FALSE(none.claim("a"));
  CHECK_FALSE(none.holds("a"));

  StandbyBudget two(2);
  CHECK(two.claim("a"));
  CHECK(two.claim("b"));
  CHECK(two.claim("c"));  // "a" loses its place
  CHECK_FALSE(two.holds("a"));
  CHECK(two.holds("b"));
  CHECK(two.holds("c"));
  CHECK(two.claim("b"));  // "b" again: now the most recent
  CHECK(two.claim("d"));  // so "c" goes
  CHECK_FALSE(two.holds("c"));
  CHECK(two.holds("b"));
  two.release("b");
  two.release("b");  // idempotent
  CHECK_FALSE(two.holds("b"));
  CHECK(two.holds("d"));
}

TEST_CASE("light sleep pauses the VMM (no snapshot, no standby) and a packet resumes it") {
  Harness h;
  h.makeAgent();
  auto spec = h.spec("task-light", true, 100ms);
  spec.sleepTier = SleepTier::kLight;
  auto inst = h.startOk(spec);
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  auto sleeping = h.events.find("Sleeping");
  CHECK(sleeping.back().annotations.at("tier") == "light");
  CHECK(sleeping.back().annotations.at("ram_unmapped_mib") == "64.0");
  CHECK(h.world->count(&FakeWorld::pauses) == 1);
  CHECK(h.world->count(&FakeWorld::sleeps) == 0);
  CHECK(h.world->count(&FakeWorld::standbys) == 0);
  auto rec = inst->record();
  CHECK(rec.sleepingTier == SleepTier::kLight);
  CHECK(rec.vmm.pid != 0);  // the paused VMM is still the instance's

  h.kernel.packet(rec.network.ifindex);
  REQUIRE(waitUntil([&] { return h.events.find("Woken").size() == 1; }, 3s));
  CHECK(inst->state() == InstanceState::kRunning);
  CHECK(h.events.find("Woken").back().annotations.at("tier") == "light");
  CHECK(h.world->count(&FakeWorld::resumes) == 1);
  CHECK(h.world->count(&FakeWorld::restores) == 0);
  CHECK(inst->record().vmm.pid == rec.vmm.pid);
}

TEST_CASE("light_sleep_cache: the VMM is told to keep, drop or keep mapped the guest's RAM, and the event says what is left") {
  for (auto cache : {vmm::LightSleepCache::kKeep, vmm::LightSleepCache::kDrop, vmm::LightSleepCache::kMapped}) {
    Harness h;
    h.makeAgent();
    auto spec = h.spec("task-cache", true, 100ms);
    spec.sleepTier = SleepTier::kLight;
    spec.lightSleepCache = cache;
    auto inst = h.startOk(spec);
    REQUIRE(h.events.waitFor("Sleeping", 3s));
    {
      std::lock_guard lock(h.world->mutex);
      REQUIRE(h.world->pauseCaches.size() == 1);
      CHECK(h.world->pauseCaches[0] == cache);
    }
    auto sleeping = h.events.find("Sleeping").back();
    CHECK(sleeping.annotations.at("ram_cached_mib") == (cache == vmm::LightSleepCache::kDrop ? "0.0" : "64.0"));
    CHECK(sleeping.annotations.at("ram_unmapped_mib") == (cache == vmm::LightSleepCache::kMapped ? "0.0" : "64.0"));
  }
}

TEST_CASE("a failed pause leaves the VM running and says why") {
  Harness h;
  h.makeAgent();
  {
    std::lock_guard lock(h.world->mutex);
    h.world->failPause = "no mapping of guest-ram";
  }
  auto spec = h.spec("task-pause-fail", true, 100ms);
  spec.sleepTier = SleepTier::kLight;
  auto inst = h.startOk(spec);
  REQUIRE(h.events.waitFor("Sleep failed", 3s));
  CHECK(h.events.find("Sleep failed")[0].message.find("no mapping of guest-ram") != std::string::npos);
  CHECK(inst->state() == InstanceState::kRunning);
  CHECK(*h.kernel.state(inst->record().network.ifindex) == bpf::InstanceState::kRunning);
}

TEST_CASE("a light sleep goes deep after deep_sleep_after; a pending wake cancels that") {
  Harness h;
  h.config.standbyVmms = 0;
  h.makeAgent();
  auto spec = h.spec("task-deeper", true, 100ms);
  spec.sleepTier = SleepTier::kLight;
  spec.deepSleepAfter = 300ms;
  auto inst = h.startOk(spec);
  REQUIRE(h.events.waitFor("Sleeping deeper", 3s));
  auto deeper = h.events.find("Sleeping deeper").back();
  CHECK(deeper.annotations.count("memory_freed_mib") == 1);
  CHECK(deeper.annotations.count("light_for") == 1);
  auto rec = inst->record();
  CHECK(inst->state() == InstanceState::kSleeping);
  CHECK(rec.sleepingTier == SleepTier::kDeep);
  CHECK(rec.vmm.pid == 0);  // standby_vmms = 0: no process at all
  CHECK(h.world->count(&FakeWorld::standbys) == 0);
  CHECK_FALSE(inst->usage().measured);

  // The wake restores from the snapshot the demotion wrote.
  h.kernel.packet(rec.network.ifindex);
  REQUIRE(waitUntil([&] { return h.events.find("Woken").size() == 1; }, 3s));
  CHECK(h.events.find("Woken").back().annotations.at("tier") == "deep");
  CHECK(h.world->count(&FakeWorld::restores) == 1);

  // Light again; a packet arrives before the demotion is due: it resumes,
  // the demotion never happens.
  REQUIRE(waitUntil([&] { return h.events.find("Sleeping").size() >= 3; }, 3s));  // 2 "Sleeping" + 1 "deeper"
  h.kernel.packet(rec.network.ifindex);
  REQUIRE(waitUntil([&] { return h.events.find("Woken").size() == 2; }, 3s));
  CHECK(h.events.find("Woken").back().annotations.at("tier") == "light");
  CHECK(h.events.find("Sleeping deeper").size() == 1);
}

TEST_CASE("standby_vmms = 1: only the most recent deep sleeper keeps its standby") {
  Harness h;
  h.config.standbyVmms = 1;
  h.makeAgent();
  auto first = h.startOk(h.spec("task-a", true, 100ms));  // deep (the harness's spec)
  REQUIRE(waitUntil([&] { return first->record().standby; }, 3s));
  auto second = h.startOk(h.spec("task-b", true, 100ms));
  REQUIRE(waitUntil([&] { return second->record().standby; }, 3s));
  // The first one's standby goes once the second took the place.
  REQUIRE(waitUntil([&] { return !first->record().standby; }, 3s));
  CHECK(first->state() == InstanceState::kSleeping);
  CHECK(first->record().vmm.pid == 0);
  // Woken without a standby: a restore into a fresh VMM, still answered.
  h.kernel.packet(first->record().network.ifindex);
  REQUIRE(waitUntil([&] { return first->state() == InstanceState::kRunning; }, 3s));
}

}  // namespace
}  // namespace s2z::agent
