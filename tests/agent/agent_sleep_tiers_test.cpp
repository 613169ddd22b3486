// The sleep tiers end to end (real kernel programs, real QEMU under TCG, the
// test guest in a namespace this test creates): light sleep keeps a paused
// VMM whose guest RAM has left host memory and wakes it by resuming; light
// goes deep after deep_sleep_after (event "Sleeping deeper"), after which no
// process is left for the task; every tier answers health checks asleep,
// keeps the guest's memory across the wake, holds the first packet, and
// survives a plugin restart.
#include <fcntl.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <sstream>
#include <set>
#include <thread>

#include "agent/agent.h"
#include "agent/process_usage.h"
#include "common/unique_fd.h"
#include "tests/agent/guest_scenarios.h"
#include "tests/agent/integration_env.h"
#include "vmm/guest_ram_release.h"
#include "tests/err_text.h"

namespace s2z::agent {
namespace {

using namespace std::chrono_literals;
using testing::EventLog;
using testing::HttpResult;
using testing::IntegrationEnv;
using testing::annotation;
using testing::counterOf;
using testing::httpGet;
using testing::kGuestPort;
using testing::waitUntil;

// "Sleeping" events only: "Sleeping deeper" is the demotion's.
size_t sleeps(const EventLog& log) {
  auto all = log.find("Sleeping");
  return static_cast<size_t>(std::count_if(all.begin(), all.end(),
                                           [](const InstanceEvent& e) { return e.message == "Sleeping"; }));
}

bool waitSleeps(const EventLog& log, size_t n) {
  return waitUntil([&] { return sleeps(log) >= n; }, testing::kGuestIdle + 15s);
}

uint64_t guestRamCached(const InstanceRecord& rec) {
  UniqueFd fd(::open((rec.runDir / "guest-ram").c_str(), O_RDONLY | O_CLOEXEC));
  auto bytes = fd ? vmm::cachedBytes(fd.get()) : Result<uint64_t>(Error{});
  return bytes.ok() ? *bytes : ~0ULL;
}

uint64_t rssOf(pid_t pid) {
  auto t = readProcessTimes(pid);
  return t.ok() ? t->rssBytes : 0;
}

constexpr double kMiB = 1024.0 * 1024.0;

// The VMM's mapping of its guest RAM file as /proc/<pid>/smaps counts it.
struct RamMapping {
  uint64_t rss = 0, dirty = 0;  // bytes
};
RamMapping guestRamMapping(pid_t pid, const std::filesystem::path& ram) {
  std::ifstream smaps("/proc/" + std::to_string(pid) + "/smaps");
  RamMapping m;
  bool inRam = false;
  for (std::string line; std::getline(smaps, line);) {
    // A mapping's header line ends in its path; its fields are "Name: N kB".
    if (line.find(" kB") == std::string::npos) {
      inRam = line.size() >= ram.string().size() &&
              line.compare(line.size() - ram.string().size(), std::string::npos, ram.string()) == 0;
      continue;
    }
    if (!inRam) continue;
    std::istringstream fields(line);
    std::string name;
    uint64_t kib = 0;
    fields >> name >> kib;
    if (name == "Rss:") m.rss += kib << 10;
    if (name == "Shared_Dirty:" || name == "Private_Dirty:") m.dirty += kib << 10;
  }
  return m;
}

// A started test guest that answered, with its first counter value.
struct Guest {
  std::shared_ptr<Instance> inst;
  InstanceRecord handle;  // what Nomad keeps from StartTask
  std::string vm;
  int counter = 0;
};

Guest startGuest(Agent& agent, const InstanceSpec& spec, EventLog& events) {
  auto started = agent.start(spec, events.sink());
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  Guest g{*started, (*started)->record(), (*started)->record().network.address, 0};
  REQUIRE_MESSAGE(testing::waitGuestHttp(g.vm, 40s), "guest never answered HTTP");
  g.counter = counterOf(httpGet(g.vm, kGuestPort, "/counter", 2s));
  return g;
}

// A request to a sleeping guest: answered with the next counter value, no
// SYN retransmitted (the first packet waited for the guest).
int expectWake(const std::string& vm, int counter, const std::string& what) {
  auto before = testing::tcpRetransCounters();
  auto woke = httpGet(vm, kGuestPort, "/counter", 10s);
  auto after = testing::tcpRetransCounters();
  REQUIRE_MESSAGE(woke.status == 200, what << ": " << woke.error);
  CHECK(counterOf(woke) == counter + 1);
  CHECK(woke.retransmits == 0);
  CHECK(after.synRetrans == before.synRetrans);
  MESSAGE(what << ": answered in " << woke.totalMs << " ms (connect " << woke.connectMs << " ms)");
  return counterOf(woke);
}

TEST_CASE("tiers: light sleep pauses the VMM and releases its RAM; a request resumes it; a burst is one wake; a plugin restart keeps it") {
  if (!testing::guestAvailable()) {
    FAIL("test guest missing in " << testing::guestDir() << " (run scripts/build-guest.sh)");
  }
  IntegrationEnv env("tl");
  EventLog events;
  auto made = makeAgent(testing::guestAgentConfig(env, 0));
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  std::unique_ptr<Agent> agent = std::move(*made);
  InstanceSpec spec = testing::testGuestSpec(env, "it-tl", SleepTier::kLight);
  spec.deepSleepAfter = 0ms;  // stays light
  Guest guest = startGuest(*agent, spec, events);
  auto inst = guest.inst;
  auto handle = guest.handle;
  const std::string vm = guest.vm;
  int counter = guest.counter;
  const uint64_t rssRunning = rssOf(handle.vmm.pid);
  const uint64_t cachedRunning = guestRamCached(handle);

  REQUIRE(waitSleeps(events, 1));
  CHECK(inst->state() == InstanceState::kSleeping);
  CHECK(annotation(events, "Sleeping", "tier") == "light");
  CHECK(inst->attributes().at("sleep_tier") == "light");
  // The VMM is still there (same process), its RAM no longer in memory.
  CHECK(testing::processAlive(handle.vmm.pid, handle.vmm.startTime));
  const uint64_t rssAsleep = rssOf(handle.vmm.pid);
  const uint64_t cachedAsleep = guestRamCached(inst->record());
  // Paged out of the VMM, kept clean in the page cache (the kernel's first
  // pick under pressure, no I/O): written back, so dropping it loses nothing.
  CHECK(rssAsleep + 32 * 1024 * 1024 < rssRunning);
  CHECK(std::stod(annotation(events, "Sleeping", "ram_unmapped_mib")) > 32);
  CHECK(std::stod(annotation(events, "Sleeping", "ram_cached_mib")) > 0);
  {
    UniqueFd ram(::open((inst->record().runDir / "guest-ram").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(ram);
    CHECK(::posix_fadvise(ram.get(), 0, 0, POSIX_FADV_DONTNEED) == 0);
  }
  const uint64_t droppable = cachedAsleep - std::min(cachedAsleep, guestRamCached(inst->record()));
  CHECK(droppable + 16 * 1024 * 1024 >= cachedAsleep);
  CHECK(inst->usage().measured);  // the paused VMM's memory is reported
  MESSAGE("light sleep: VMM RSS " << rssRunning / kMiB << " -> " << rssAsleep / kMiB
          << " MiB, guest RAM cached " << cachedRunning / kMiB << " -> " << cachedAsleep / kMiB
          << " MiB (" << droppable / kMiB << " MiB of it droppable at once), pause "
          << annotation(events, "Sleeping", "pause_ms") << " ms");

  // Health checks asleep: answered by the host, no wake.
  auto checks = env.healthChecks(vm, kGuestPort, 5);
  REQUIRE(checks.size() == 5);
  CHECK(std::all_of(checks.begin(), checks.end(), [](auto& c) { return c.status == 200; }));
  std::this_thread::sleep_for(200ms);
  CHECK(inst->state() == InstanceState::kSleeping);
  CHECK(testing::countEvents(events, "Woken") == 0);

  counter = expectWake(vm, counter, "request to a light sleeper");
  REQUIRE(waitUntil([&] { return testing::countEvents(events, "Woken") == 1; }, 2s));
  CHECK(annotation(events, "Woken", "tier") == "light");
  CHECK(annotation(events, "Woken", "cold_boot") == "?");
  CHECK(inst->record().vmm.pid == handle.vmm.pid);  // resumed, not restored
  MESSAGE("light wake_ms " << annotation(events, "Woken", "wake_ms"));

  // A burst: one resume, every connection answered.
  REQUIRE(waitSleeps(events, 2));
  std::vector<std::future<HttpResult>> burst;
  for (int i = 0; i < 8; ++i) {
    burst.push_back(std::async(std::launch::async, [&] { return httpGet(vm, kGuestPort, "/counter", 10s); }));
  }
  std::set<int> seen;
  for (auto& f : burst) {
    auto r = f.get();
    CHECK_MESSAGE(r.status == 200, r.error);
    seen.insert(counterOf(r));
  }
  CHECK(seen.size() == 8);
  CHECK(*seen.begin() == counter + 1);
  counter = *seen.rbegin();
  std::this_thread::sleep_for(300ms);
  CHECK(testing::countEvents(events, "Woken") == 2);

  // The plugin dies while the task sleeps lightly; a new one adopts the
  // paused VMM and the next request still resumes it.
  REQUIRE(waitSleeps(events, 3));
  handle = inst->record();
  inst.reset();
  guest.inst.reset();
  agent.reset();
  CHECK(testing::processAlive(handle.vmm.pid, handle.vmm.startTime));
  made = makeAgent(testing::guestAgentConfig(env, 0));
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  agent = std::move(*made);
  auto recovered = agent->recover(handle, events.sink());
  REQUIRE_MESSAGE(recovered.ok(), s2z::tests::errText(recovered));
  inst = *recovered;
  CHECK(inst->state() == InstanceState::kSleeping);
  checks = env.healthChecks(vm, kGuestPort, 3);
  REQUIRE(checks.size() == 3);
  CHECK(checks[0].status == 200);
  CHECK(inst->state() == InstanceState::kSleeping);
  counter = expectWake(vm, counter, "request after a plugin restart (light)");
  CHECK(inst->record().vmm.pid == handle.vmm.pid);

  REQUIRE(inst->destroy().ok());
  CHECK_FALSE(testing::processAlive(handle.vmm.pid, handle.vmm.startTime));
}

TEST_CASE("tiers: light sleep with light_sleep_cache = drop leaves none of the guest's RAM in the page cache; a request resumes it from disk") {
  if (!testing::guestAvailable()) {
    FAIL("test guest missing in " << testing::guestDir() << " (run scripts/build-guest.sh)");
  }
  IntegrationEnv env("tld");
  EventLog events;
  auto made = makeAgent(testing::guestAgentConfig(env, 0));
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  InstanceSpec spec = testing::testGuestSpec(env, "it-tld", SleepTier::kLight);
  spec.deepSleepAfter = 0ms;  // stays light
  spec.lightSleepCache = vmm::LightSleepCache::kDrop;
  Guest guest = startGuest(**made, spec, events);
  const uint64_t cachedRunning = guestRamCached(guest.handle);
  const uint64_t rssRunning = rssOf(guest.handle.vmm.pid);

  REQUIRE(waitSleeps(events, 1));
  CHECK(annotation(events, "Sleeping", "tier") == "light");
  // The paused VMM is the task's only memory: out of it, and out of the cache.
  CHECK(testing::processAlive(guest.handle.vmm.pid, guest.handle.vmm.startTime));
  const uint64_t rssAsleep = rssOf(guest.handle.vmm.pid);
  const uint64_t cachedAsleep = guestRamCached(guest.inst->record());
  CHECK(rssAsleep + 32 * 1024 * 1024 < rssRunning);
  CHECK(cachedRunning > 32 * 1024 * 1024);
  CHECK(cachedAsleep < 4 * 1024 * 1024);
  CHECK(std::stod(annotation(events, "Sleeping", "ram_cached_mib")) < 4);
  MESSAGE("light sleep, cache dropped: VMM RSS " << rssRunning / kMiB << " -> " << rssAsleep / kMiB
          << " MiB, guest RAM cached " << cachedRunning / kMiB << " -> " << cachedAsleep / kMiB << " MiB, pause "
          << annotation(events, "Sleeping", "pause_ms") << " ms");

  // The wake maps the guest's working set back from the file: answered,
  // RAM intact, no SYN retransmit.
  expectWake(guest.vm, guest.counter, "light wake, cache dropped");
  REQUIRE(waitUntil([&] { return !events.find("Woken").empty(); }, 5s));
  CHECK(annotation(events, "Woken", "tier") == "light");
  REQUIRE(guest.inst->stop(2s, 0).ok());
  CHECK(guest.inst->destroy().ok());
}

TEST_CASE("tiers: light sleep with light_sleep_cache = mapped leaves the guest's RAM mapped in the VMM, written back; a request resumes it") {
  if (!testing::guestAvailable()) {
    FAIL("test guest missing in " << testing::guestDir() << " (run scripts/build-guest.sh)");
  }
  IntegrationEnv env("tlm");
  EventLog events;
  auto made = makeAgent(testing::guestAgentConfig(env, 0));
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  InstanceSpec spec = testing::testGuestSpec(env, "it-tlm", SleepTier::kLight);
  spec.deepSleepAfter = 0ms;  // stays light
  spec.lightSleepCache = vmm::LightSleepCache::kMapped;
  Guest guest = startGuest(**made, spec, events);
  const auto ram = guest.handle.runDir / "guest-ram";
  const RamMapping running = guestRamMapping(guest.handle.vmm.pid, ram);

  REQUIRE(waitSleeps(events, 1));
  CHECK(annotation(events, "Sleeping", "tier") == "light");
  CHECK(testing::processAlive(guest.handle.vmm.pid, guest.handle.vmm.startTime));
  // Still mapped, but clean: the kernel can reclaim it without writing.
  const RamMapping asleep = guestRamMapping(guest.handle.vmm.pid, ram);
  CHECK(running.rss > 32 * 1024 * 1024);
  CHECK(running.dirty > 0);
  CHECK(asleep.rss > 32 * 1024 * 1024);
  CHECK(asleep.dirty == 0);
  MESSAGE("light sleep, kept mapped: guest RAM mapped " << running.rss / kMiB << " -> " << asleep.rss / kMiB
          << " MiB, dirty " << running.dirty / kMiB << " -> " << asleep.dirty / kMiB << " MiB, pause "
          << annotation(events, "Sleeping", "pause_ms") << " ms");

  expectWake(guest.vm, guest.counter, "light wake, kept mapped");
  REQUIRE(waitUntil([&] { return !events.find("Woken").empty(); }, 5s));
  CHECK(annotation(events, "Woken", "tier") == "light");
  REQUIRE(guest.inst->stop(2s, 0).ok());
  CHECK(guest.inst->destroy().ok());
}

TEST_CASE("tiers: light goes deep after deep_sleep_after; no process and no page cache left; requests during the demotion and after a restart are answered") {
  if (!testing::guestAvailable()) {
    FAIL("test guest missing in " << testing::guestDir() << " (run scripts/build-guest.sh)");
  }
  IntegrationEnv env("td");
  EventLog events;
  auto made = makeAgent(testing::guestAgentConfig(env, 0));  // standby_vmms = 0
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  std::unique_ptr<Agent> agent = std::move(*made);
  InstanceSpec spec = testing::testGuestSpec(env, "it-td", SleepTier::kLight);
  spec.deepSleepAfter = 2s;
  Guest guest = startGuest(*agent, spec, events);
  auto inst = guest.inst;
  auto handle = guest.handle;
  const std::string vm = guest.vm;
  int counter = guest.counter;

  REQUIRE(waitSleeps(events, 1));
  CHECK(annotation(events, "Sleeping", "tier") == "light");
  REQUIRE(testing::waitEvents(events, "Sleeping deeper", 1));
  CHECK(inst->state() == InstanceState::kSleeping);
  CHECK(inst->attributes().at("sleep_tier") == "deep");
  auto deep = inst->record();
  // Nothing runs for the task: no VMM, no standby; its RAM file not cached.
  CHECK(deep.vmm.pid == 0);
  CHECK_FALSE(testing::processAlive(handle.vmm.pid, handle.vmm.startTime));
  CHECK(guestRamCached(deep) < 4 * 1024 * 1024);
  CHECK(std::stod(annotation(events, "Sleeping deeper", "memory_freed_mib")) > 10);
  CHECK_FALSE(inst->usage().measured);
  MESSAGE("sleeping deeper: freed " << annotation(events, "Sleeping deeper", "memory_freed_mib")
          << " MiB after " << annotation(events, "Sleeping deeper", "light_for"));

  counter = expectWake(vm, counter, "request to a deep sleeper (no standby)");
  REQUIRE(waitUntil([&] { return testing::countEvents(events, "Woken") == 1; }, 2s));
  CHECK(annotation(events, "Woken", "tier") == "deep");
  CHECK(annotation(events, "Woken", "cold_boot") == "?");
  MESSAGE("deep wake_ms " << annotation(events, "Woken", "wake_ms"));

  // A request while the light sleep is going deep: the demotion's snapshot
  // either finishes first (then a restore answers) or the request wins; it
  // is answered either way, its SYN not lost.
  REQUIRE(waitSleeps(events, 2));
  REQUIRE(waitUntil([&] { return inst->state() == InstanceState::kSnapshotting; }, 10s));
  counter = expectWake(vm, counter, "request during the demotion");
  REQUIRE(waitUntil([&] { return inst->state() == InstanceState::kRunning; }, 5s));

  // The plugin dies while the task sleeps deep; the new one wakes it from the snapshot.
  REQUIRE(testing::waitEvents(events, "Sleeping deeper", testing::countEvents(events, "Sleeping deeper") + 1));
  handle = inst->record();
  inst.reset();
  guest.inst.reset();
  agent.reset();
  made = makeAgent(testing::guestAgentConfig(env, 0));
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  agent = std::move(*made);
  auto recovered = agent->recover(handle, events.sink());
  REQUIRE_MESSAGE(recovered.ok(), s2z::tests::errText(recovered));
  inst = *recovered;
  CHECK(inst->state() == InstanceState::kSleeping);
  CHECK(inst->record().vmm.pid == 0);  // still no standby: the budget is 0
  counter = expectWake(vm, counter, "request after a plugin restart (deep)");

  REQUIRE(inst->destroy().ok());
}

}  // namespace
}  // namespace s2z::agent
