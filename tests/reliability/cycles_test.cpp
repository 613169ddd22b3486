// Issue 13, case 1: 100 sleep/wake cycles of one guest-agent task through the
// stand-in. Every wake's request gets one complete 64 KiB response whose CRC
// matches, and the counter in the guest's memory grows at every wake (the
// guest never comes back from an older snapshot, never cold-boots); Nomad
// would restart nothing (WaitTask keeps blocking). Then the leak inventory
// after DestroyTask equals the baseline taken before StartTask.
#include <doctest/doctest.h>

#include <thread>

#include "tests/integration/agent_task_helpers.h"
#include "tests/reliability/inventory.h"
#include "tests/reliability/reliability_support.h"

using namespace s2z;
using namespace s2z::reliability;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

constexpr int kCycles = 100;

}  // namespace

TEST_CASE("cycles: 100 sleep/wake cycles, each wake answered with 64 KiB and a checksum, the guest's counter only grows; nothing leaks") {
  REQUIRE(integration::agentGuestAvailable());
  ReliabilityEnv renv;
  auto& env = renv.env();
  auto client = renv.loadPlugin();
  NomadClient& c = *client;
  pid_t plugin = c.process().pid();
  Inventory baseline = Inventory::take(env, plugin, renv.subnetPrefix());
  MESSAGE("baseline: " << baseline.summary());

  auto t0 = std::chrono::steady_clock::now();
  StartedTask t = startCheckedServer(c, env, "1s");
  auto first = checkReply(env.httpGet(t.networkAddr, 8080, "/", 30s));
  REQUIRE_MESSAGE(first.ok, first.why);
  long counter = first.counter;

  std::vector<std::string> failures;
  int maxVmms = 0, answered = 0;
  std::string twoVmms;  // the netns's processes when more than one VM ran
  auto sampleVmms = [&] {
    int n = static_cast<int>(qemuPids(env).size());
    if (n > 1 && twoVmms.empty()) twoVmms = env.describePids();
    maxVmms = std::max(maxVmms, n);
  };
  double slowestMs = 0, totalMs = 0;
  for (int i = 1; i <= kCycles && failures.size() < 5; ++i) {
    std::string cycle = "cycle " + std::to_string(i) + ": ";
    if (!c.waitUntil(60s, [&] { return eventsStarting(c, t.allocId, "Sleeping").size() >= size_t(i); })) {
      failures.push_back(cycle + "no Sleeping event within 60 s");
      break;
    }
    sampleVmms();
    auto sent = std::chrono::steady_clock::now();
    auto reply = checkReply(env.httpGet(t.networkAddr, 8080, "/", 60s));
    double ms = msSince(sent);
    slowestMs = std::max(slowestMs, ms);
    totalMs += ms;
    if (!reply.ok) {
      failures.push_back(cycle + reply.why);
    } else if (reply.counter <= counter) {
      failures.push_back(cycle + "guest counter " + std::to_string(reply.counter) + " after " +
                         std::to_string(counter) + ": an older or a new guest");
    } else {
      ++answered;
    }
    if (reply.counter >= 0) counter = reply.counter;
    if (!c.waitUntil(30s, [&] { return eventsStarting(c, t.allocId, "Woken").size() >= size_t(i); })) {
      failures.push_back(cycle + "no Woken event within 30 s");
      break;
    }
    sampleVmms();
    if (c.backgroundExit(t.id)) {
      failures.push_back(cycle + "WaitTask returned: " + c.backgroundExit(t.id)->err);
      break;
    }
  }
  double cyclesS = msSince(t0) / 1000.0;
  auto woken = eventsStarting(c, t.allocId, "Woken");
  int coldBoots = 0;
  for (const auto& e : woken) coldBoots += e.annotations.count("cold_boot") ? 1 : 0;
  auto sleepFailed = eventsStarting(c, t.allocId, "Sleep failed");
  auto snapshotEvents = eventsStarting(c, t.allocId, "Snapshot");
  MESSAGE(answered << " of " << kCycles << " wakes answered correctly in " << cyclesS << " s (mean request "
                   << (answered ? totalMs / answered : 0) << " ms, slowest " << slowestMs
                   << " ms); guest counter at " << counter << "; most VMM processes seen at once: " << maxVmms
                   << "; Woken " << woken.size() << " (cold boots " << coldBoots << "), Sleep failed "
                   << sleepFailed.size());
  std::string all;
  for (const auto& f : failures) all += f + "\n";
  CHECK_MESSAGE(failures.empty(), all << describeEvents(c, t.allocId));
  CHECK(answered == kCycles);
  CHECK(coldBoots == 0);
  CHECK(snapshotEvents.empty());
  CHECK_MESSAGE(sleepFailed.empty(), describeEvents(c, t.allocId));
  // One VMM: the running one, or the standby while asleep.
  CHECK_MESSAGE(maxVmms <= 1, twoVmms);
  CHECK_FALSE(c.backgroundExit(t.id).has_value());

  // While it sleeps: the standby (agent/README: "standby VMM waits") and the
  // log holder are the task's only processes.
  REQUIRE(c.waitUntil(60s, [&] { return eventsStarting(c, t.allocId, "Sleeping").size() > woken.size(); }));
  CHECK(c.waitUntil(10s, [&] { return qemuPids(env).size() == 1; }));
  MESSAGE("asleep: " << Inventory::take(env, plugin, renv.subnetPrefix()).summary());

  integration::stopAndDestroy(c, env, t.id, 10s);
  std::string left = waitForBaseline(baseline, env, plugin, renv.subnetPrefix(), 15s);
  CHECK_MESSAGE(left.empty(), "not back at baseline after DestroyTask:\n" << left);
}
