// Issue 13, case 3: the plugin SIGKILLed at failpoints (common/failpoint.h,
// armed in the s2z-kata-failpoints build by S2Z_FAILPOINT) on the sleep, wake
// and recovery paths. After a new plugin recovers the task, it must be Running
// or Sleeping on its newest snapshot (the guest's counter only grows: no older
// snapshot, no cold boot, no quarantine), with never two VMMs for it, and its
// next request (or the one in flight during the crash) answered.
#include <doctest/doctest.h>

#include <future>
#include <thread>

#include "tests/integration/agent_task_helpers.h"
#include "tests/reliability/reliability_support.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::reliability;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

// Where the failpoint sits (the plugin dies there):
struct Point {
  const char* name;
  const char* what;
  bool wakeSide;  // on the wake path: a request is in flight when the plugin dies
};
constexpr Point kPoints[] = {
    {"sleep-started", "sleep started (state Snapshotting recorded, guest running)", false},
    {"snapshot-streaming", "device state half-written (guest stopped, stream under way)", false},
    {"snapshot-written-not-renamed", "device state written and fsynced, not renamed", false},
    {"vmm-exited", "snapshot durable, VMM exited, Sleeping not recorded", false},
    {"wake-event-taken", "wake event taken from the ring buffer, nothing done", true},
    {"restore-started", "restore started (record Waking, standby not yet loaded)", true},
};

bool waitPluginDeath(NomadClient& c, std::chrono::seconds timeout) {
  return c.waitUntil(timeout, [&] { return !c.process().running(); });
}

void relaunchAndRecover(NomadClient& c, const StartedTask& t, const std::string& failpoint) {
  c.setPluginEnv("S2Z_FAILPOINT", failpoint);
  auto relaunched = c.relaunchPlugin();
  REQUIRE_MESSAGE(relaunched.ok(), s2z::tests::errText(relaunched));
  auto recovered = c.recoverTask(t);
  REQUIRE_MESSAGE(recovered.ok(), s2z::tests::errText(recovered));
}

// The state the recovered task settles in, and how many VMMs it has.
void checkSettled(NomadClient& c, const integration::TestEnv& env, const StartedTask& t) {
  int state = 0;
  bool settled = c.waitUntil(30s, [&] {
    auto r = readTaskRecord(env);
    state = r ? r->state : 0;
    return state == kStateRunning || state == kStateSleeping;
  });
  CHECK_MESSAGE(settled, "record state " << state << "\n" << describeEvents(c, t.allocId));
  CHECK_MESSAGE(qemuPids(env).size() <= 1, "two VMMs for one task: " << env.describePids());
  CHECK_FALSE(c.backgroundExit(t.id).has_value());
  CHECK(eventsStarting(c, t.allocId, "Snapshot quarantined").empty());
  for (const auto& woken : eventsStarting(c, t.allocId, "Woken")) CHECK(woken.annotations.count("cold_boot") == 0);
}

}  // namespace

TEST_CASE("plugin SIGKILLed at each failpoint: the new plugin recovers the task on its newest snapshot") {
  REQUIRE(integration::agentGuestAvailable());
  ReliabilityEnv renv;
  auto& env = renv.env();
  auto client = renv.loadFailpointPlugin("");
  NomadClient& c = *client;
  int passed = 0;

  for (const Point& at : kPoints) {
    const std::string name = at.name;
    CAPTURE(name);
    c.setPluginEnv("S2Z_FAILPOINT", at.name);
    REQUIRE(c.relaunchPlugin().ok());
    StartedTask t = startCheckedServer(c, env, "1s");
    auto before = checkReply(env.httpGet(t.networkAddr, 8080, "/", 30s));
    REQUIRE_MESSAGE(before.ok, before.why);

    std::future<integration::HttpReply> inFlight;
    if (at.wakeSide) {
      REQUIRE(c.waitUntil(60s, [&] { return !eventsStarting(c, t.allocId, "Sleeping").empty(); }));
      // The standby is up: a wake restores into it.
      REQUIRE(c.waitUntil(30s, [&] {
        auto r = readTaskRecord(env);
        return r && r->standby && liveVmmPid(env).has_value();
      }));
      inFlight = std::async(std::launch::async, [&] { return env.httpGet(t.networkAddr, 8080, "/", 120s); });
    }
    REQUIRE_MESSAGE(waitPluginDeath(c, 60s), "the plugin did not reach failpoint " << name << "\n"
                                                                                   << describeEvents(c, t.allocId));
    auto atCrash = readTaskRecord(env);
    relaunchAndRecover(c, t, "");
    CheckedReply after;
    if (at.wakeSide) {
      after = checkReply(inFlight.get());
      CHECK_MESSAGE(after.ok, "the request in flight: " << after.why);
    } else {
      after = checkReply(env.httpGet(t.networkAddr, 8080, "/", 60s));
      CHECK_MESSAGE(after.ok, after.why);
    }
    CHECK_MESSAGE(after.counter > before.counter, "guest counter " << before.counter << " -> " << after.counter);
    checkSettled(c, env, t);
    MESSAGE("failpoint " << name << " (" << std::string(at.what) << "): record state at the crash "
                         << (atCrash ? atCrash->state : -1) << "; recovered, guest counter " << before.counter
                         << " -> " << after.counter << "\n"
                         << describeEvents(c, t.allocId));
    REQUIRE(c.stopTask(t.id, 10s).ok());
    integration::waitExit(c, t.id);
    integration::destroyAndCheckClean(c, env, t.id);
    ++passed;
  }

  // Inside RecoverTask: the first new plugin dies recovering; a second one
  // recovers what neither finished.
  {
    c.setPluginEnv("S2Z_FAILPOINT", "");
    REQUIRE(c.relaunchPlugin().ok());
    StartedTask t = startCheckedServer(c, env, "1s");
    auto before = checkReply(env.httpGet(t.networkAddr, 8080, "/", 30s));
    REQUIRE_MESSAGE(before.ok, before.why);
    REQUIRE(c.waitUntil(60s, [&] { return !eventsStarting(c, t.allocId, "Sleeping").empty(); }));
    c.crashPlugin();
    c.setPluginEnv("S2Z_FAILPOINT", "recover-task");
    REQUIRE(c.relaunchPlugin().ok());
    CHECK_FALSE(c.recoverTask(t).ok());
    CHECK(waitPluginDeath(c, 10s));
    relaunchAndRecover(c, t, "");
    auto after = checkReply(env.httpGet(t.networkAddr, 8080, "/", 60s));
    CHECK_MESSAGE(after.ok, after.why);
    CHECK_MESSAGE(after.counter > before.counter, "guest counter " << before.counter << " -> " << after.counter);
    checkSettled(c, env, t);
    MESSAGE("failpoint recover-task: recovered by the next plugin, guest counter " << before.counter << " -> "
                                                                                   << after.counter);
    REQUIRE(c.stopTask(t.id, 10s).ok());
    integration::waitExit(c, t.id);
    integration::destroyAndCheckClean(c, env, t.id);
    ++passed;
  }
  MESSAGE("failpoints: " << passed << " of " << std::size(kPoints) + 1 << " recovered");
}

// Issue 11: a light sleep going deep (deep_sleep_after) writes its snapshot
// from a paused VMM. One task through every point of that path, the plugin
// dying at each in turn: the guest resumes or wakes from the new snapshot,
// never an older one, and serves; then it sleeps lightly and goes deep again
// to meet the next point.
TEST_CASE("plugin SIGKILLed while a light sleep goes deep: the new plugin recovers the task, its guest state intact") {
  REQUIRE(integration::agentGuestAvailable());
  constexpr const char* kDemotionPoints[] = {
      "deepen-started",                // Snapshotting recorded, the guest paused, nothing written
      "snapshot-streaming",            // device state half-written
      "snapshot-written-not-renamed",  // written and fsynced, not renamed
      "vmm-exited",                    // snapshot durable, VMM gone, Sleeping (deep) not recorded
  };
  ReliabilityEnv renv;
  auto& env = renv.env();
  auto client = renv.loadFailpointPlugin(kDemotionPoints[0]);
  NomadClient& c = *client;
  StartedTask t = startCheckedServer(c, env, "1s", "sleep: \"light\", deep_sleep_after: \"2s\"");
  auto before = checkReply(env.httpGet(t.networkAddr, 8080, "/", 30s));
  REQUIRE_MESSAGE(before.ok, before.why);
  int passed = 0;
  for (size_t i = 0; i < std::size(kDemotionPoints); ++i) {
    const std::string name = kDemotionPoints[i];
    CAPTURE(name);
    REQUIRE_MESSAGE(waitPluginDeath(c, 60s), "the plugin did not reach failpoint " << name << "\n"
                                                                                   << describeEvents(c, t.allocId));
    auto atCrash = readTaskRecord(env);
    REQUIRE(atCrash.has_value());
    CHECK_MESSAGE(atCrash->state == kStateSnapshotting, "record state at the crash " << atCrash->state);
    auto sleeps = eventsStarting(c, t.allocId, "Sleeping");
    REQUIRE(!sleeps.empty());
    CHECK(sleeps.back().annotations["tier"] == "light");  // it died going deeper, after a light sleep
    relaunchAndRecover(c, t, i + 1 < std::size(kDemotionPoints) ? kDemotionPoints[i + 1] : "");
    auto after = checkReply(env.httpGet(t.networkAddr, 8080, "/", 60s));
    CHECK_MESSAGE(after.ok, after.why);
    CHECK_MESSAGE(after.counter > before.counter, "guest counter " << before.counter << " -> " << after.counter);
    checkSettled(c, env, t);
    MESSAGE("demotion failpoint " << name << ": recovered after light sleep " << sleeps.size() << ", guest counter "
                                  << before.counter << " -> " << after.counter);
    before = after;
    ++passed;
  }
  CHECK(eventsStarting(c, t.allocId, "Sleeping deeper").empty());  // every demotion died
  MESSAGE("demotion failpoints: " << passed << " of " << std::size(kDemotionPoints) << " recovered\n"
                                  << describeEvents(c, t.allocId));
  REQUIRE(c.stopTask(t.id, 10s).ok());
  integration::waitExit(c, t.id);
  integration::destroyAndCheckClean(c, env, t.id);
}
