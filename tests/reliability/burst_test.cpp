// Issue 13, case 2: 64 connections at once to a sleeping task. Every one is
// answered (200, a complete 64 KiB body whose CRC matches), each by its own
// request in the guest (64 distinct counter values), and the VM is restored
// exactly once (one Woken event, no cold boot).
#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "tests/integration/agent_task_helpers.h"
#include "tests/reliability/inventory.h"
#include "tests/reliability/reliability_support.h"

using namespace s2z;
using namespace s2z::reliability;
using namespace s2z::standin;
using namespace std::chrono_literals;

TEST_CASE("burst: 64 connections at once to a sleeping task are all answered, with one restore") {
  constexpr int kConnections = 64;
  REQUIRE(integration::agentGuestAvailable());
  ReliabilityEnv renv;
  auto& env = renv.env();
  auto client = renv.loadPlugin();
  NomadClient& c = *client;
  pid_t plugin = c.process().pid();
  Inventory baseline = Inventory::take(env, plugin, renv.subnetPrefix());

  // 2 s: long enough that the burst's own tail cannot sleep and wake it again.
  StartedTask t = startCheckedServer(c, env, "2s");
  auto before = checkReply(env.httpGet(t.networkAddr, 8080, "/", 30s));
  REQUIRE_MESSAGE(before.ok, before.why);
  REQUIRE(c.waitUntil(60s, [&] { return !eventsStarting(c, t.allocId, "Sleeping").empty(); }));
  // The standby is up: the burst meets the usual sleeping task.
  CHECK(c.waitUntil(10s, [&] { auto r = readTaskRecord(env); return r && r->standby && liveVmmPid(env); }));

  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  std::vector<CheckedReply> replies(kConnections);
  std::vector<double> ms(kConnections);
  std::vector<std::thread> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.emplace_back([&, i] {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return go; });
      }
      auto sent = std::chrono::steady_clock::now();
      replies[i] = checkReply(env.httpGet(t.networkAddr, 8080, "/", 120s));
      ms[i] = msSince(sent);
    });
  }
  std::this_thread::sleep_for(200ms);  // every thread waiting at the gate
  {
    std::lock_guard lock(mu);
    go = true;
  }
  cv.notify_all();
  for (auto& th : clients) th.join();

  std::set<long> counters;
  std::string bad;
  for (int i = 0; i < kConnections; ++i) {
    if (!replies[i].ok) bad += "connection " + std::to_string(i) + ": " + replies[i].why + "\n";
    if (replies[i].counter >= 0) counters.insert(replies[i].counter);
  }
  double slowest = *std::max_element(ms.begin(), ms.end());
  MESSAGE(kConnections << " connections: " << (kConnections - std::count_if(replies.begin(), replies.end(),
                                                                            [](auto& r) { return !r.ok; }))
                       << " answered correctly, slowest " << slowest << " ms; guest counters "
                       << (counters.empty() ? 0 : *counters.begin()) << ".."
                       << (counters.empty() ? 0 : *counters.rbegin()));
  CHECK_MESSAGE(bad.empty(), bad);
  CHECK(counters.size() == size_t(kConnections));  // one guest request per connection
  CHECK((counters.empty() || *counters.begin() > before.counter));  // the old guest, not a new one
  CHECK(c.waitUntil(15s, [&] { return !eventsStarting(c, t.allocId, "Woken").empty(); }));
  std::this_thread::sleep_for(500ms);
  auto woken = eventsStarting(c, t.allocId, "Woken");
  CHECK_MESSAGE(woken.size() == 1, describeEvents(c, t.allocId));
  for (const auto& e : woken) CHECK(e.annotations.count("cold_boot") == 0);
  CHECK(eventsStarting(c, t.allocId, "Snapshot").empty());
  CHECK_FALSE(c.backgroundExit(t.id).has_value());

  integration::stopAndDestroy(c, env, t.id, 10s);
  std::string left = waitForBaseline(baseline, env, plugin, renv.subnetPrefix(), 15s);
  CHECK_MESSAGE(left.empty(), "not back at baseline after DestroyTask:\n" << left);
}
