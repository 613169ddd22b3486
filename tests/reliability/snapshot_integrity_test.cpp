// Issue 13, cases 6 and 7 through the plugin: a deep-sleeping task whose
// snapshot is damaged (corrupt device state, or put back to the previous
// sleep's: stale) is never resumed. The files move to the quarantine with an
// event, the task cold boots, and the request that woke it is answered by the
// new guest (agent/boot_gate.h holds the client's SYNs until it serves). A restore that hangs (the
// standby SIGSTOPped) is killed by the watchdog (VmConfig::restoreTimeout,
// 5 s) and the task cold boots. (vmm/snapshot_manifest_test.cpp covers every
// kind of damage on files; this is the whole path.)
#include <doctest/doctest.h>

#include <signal.h>

#include <fstream>
#include <future>
#include <thread>

#include "tests/integration/agent_task_helpers.h"
#include "tests/reliability/reliability_support.h"

using namespace s2z;
using namespace s2z::reliability;
using namespace s2z::standin;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

bool asleepWithStandby(NomadClient& c, const integration::TestEnv& env) {
  return c.waitUntil(60s, [&] {
    auto r = readTaskRecord(env);
    return r && r->state == kStateSleeping && r->standby && liveVmmPid(env).has_value();
  });
}

void flipByte(const fs::path& file, std::streamoff at) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  char c = 0;
  f.get(c);
  f.seekp(at);
  f.put(static_cast<char>(c ^ 0x5a));
}

// The wake after the damage: the request in flight and what followed it.
struct ColdWake {
  integration::HttpReply inFlight;
  double ms = 0;
};
ColdWake wakeWithRequest(NomadClient& c, const integration::TestEnv& env, const StartedTask& t,
                         size_t wokenBefore) {
  ColdWake w;
  auto sent = std::chrono::steady_clock::now();
  w.inFlight = env.httpGet(t.networkAddr, 8080, "/", 60s);
  w.ms = msSince(sent);
  REQUIRE_MESSAGE(c.waitUntil(90s, [&] { return eventsStarting(c, t.allocId, "Woken").size() > wokenBefore; }),
                  describeEvents(c, t.allocId));
  return w;
}

// After a cold boot the workload starts again: it serves once it listens.
// coldBoots: how many cold boots the task has had by now (the refused
// restore's among them; with idle_timeout 1s the new guest may have slept and
// woken again before the client's retransmission came).
void checkServesAgain(NomadClient& c, const integration::TestEnv& env, const StartedTask& t, const ColdWake& w,
                      size_t coldBoots) {
  size_t cold = 0;
  for (const auto& woken : eventsStarting(c, t.allocId, "Woken")) cold += woken.annotations.count("cold_boot");
  CHECK(cold == coldBoots);
  CHECK_FALSE(c.backgroundExit(t.id).has_value());
  REQUIRE(env.waitHttp(t.networkAddr, 8080, 90s));
  auto next = checkReply(env.httpGet(t.networkAddr, 8080, "/", 30s));
  CHECK_MESSAGE(next.ok, next.why);
  // The boot gate held the client's retransmitted SYN until the new guest
  // served: the request that woke the task is answered, by the new guest.
  auto inFlight = checkReply(w.inFlight);
  CHECK_MESSAGE(inFlight.ok, "the request in flight during the refused restore: " << inFlight.why);
  MESSAGE("the request in flight during the refused restore: "
          << std::string(inFlight.ok ? "answered" : "not answered") << " after " << w.ms << " ms");
  CHECK_MESSAGE(qemuPids(env).size() <= 1, env.describePids());
}

// A checked server, deep sleep with a standby, answered once.
struct ServingTask {
  ReliabilityEnv renv;
  integration::TestEnv& env = renv.env();
  std::unique_ptr<NomadClient> client = renv.loadPlugin();
  NomadClient& c = *client;
  StartedTask t = startCheckedServer(c, env, "1s");
  ServingTask() {
    auto first = checkReply(env.httpGet(t.networkAddr, 8080, "/", 30s));
    REQUIRE_MESSAGE(first.ok, first.why);
  }
};

}  // namespace

TEST_CASE("a corrupt or stale snapshot is quarantined, never resumed; the task cold boots and serves") {
  REQUIRE(integration::agentGuestAvailable());
  ServingTask f;
  auto& env = f.env;
  NomadClient& c = f.c;
  const StartedTask& t = f.t;
  const fs::path quarantine = fs::path(env.stateDir()) / "quarantine";

  // 1. Corrupt device state.
  REQUIRE(asleepWithStandby(c, env));
  auto rec = readTaskRecord(env);
  REQUIRE(rec.has_value());
  flipByte(rec->snapshotDir / "state", 1000);
  auto w = wakeWithRequest(c, env, t, 0);
  auto quarantined = eventsStarting(c, t.allocId, "Snapshot quarantined");
  REQUIRE_MESSAGE(quarantined.size() == 1, describeEvents(c, t.allocId));
  MESSAGE("corrupt state: " << quarantined[0].annotations["reason"]);
  CHECK(quarantined[0].annotations["reason"].find("state is corrupt") != std::string::npos);
  fs::path entry = quarantined[0].annotations["quarantine"];
  CHECK(entry.parent_path() == quarantine);
  CHECK(fs::exists(entry / "snapshot" / "state"));
  CHECK(fs::exists(entry / "snapshot" / "manifest.json"));
  CHECK(fs::exists(entry / "guest-ram"));
  CHECK((fs::status(entry).permissions() & (fs::perms::group_all | fs::perms::others_all)) == fs::perms::none);
  checkServesAgain(c, env, t, w, 1);

  // 2. Stale: the next sleep's snapshot replaced by a copy of an older one
  //    (this sleep's first snapshot, saved aside, then a second sleep).
  REQUIRE(asleepWithStandby(c, env));
  rec = readTaskRecord(env);
  fs::path older = fs::path(env.stateDir()) / "older-snapshot";
  fs::copy(rec->snapshotDir, older);
  auto woke = checkReply(env.httpGet(t.networkAddr, 8080, "/", 60s));  // a normal wake
  REQUIRE_MESSAGE(woke.ok, woke.why);
  REQUIRE(c.waitUntil(60s, [&] { return eventsStarting(c, t.allocId, "Sleeping").size() >= 3; }));
  REQUIRE(asleepWithStandby(c, env));
  fs::remove_all(rec->snapshotDir);
  fs::rename(older, rec->snapshotDir);
  w = wakeWithRequest(c, env, t, eventsStarting(c, t.allocId, "Woken").size());
  quarantined = eventsStarting(c, t.allocId, "Snapshot quarantined");
  REQUIRE_MESSAGE(quarantined.size() == 2, describeEvents(c, t.allocId));
  MESSAGE("stale snapshot: " << quarantined[1].annotations["reason"]);
  CHECK(quarantined[1].annotations["reason"].find("stale") != std::string::npos);
  checkServesAgain(c, env, t, w, 2);

  REQUIRE(c.stopTask(t.id, 10s).ok());
  integration::waitExit(c, t.id);
  integration::destroyAndCheckClean(c, env, t.id);
  CHECK(fs::exists(quarantine));  // kept after the task: evidence, not state
}

TEST_CASE("restore watchdog: a restore that hangs (standby SIGSTOPped) is killed and the task cold boots") {
  REQUIRE(integration::agentGuestAvailable());
  ServingTask f;
  auto& env = f.env;
  NomadClient& c = f.c;
  const StartedTask& t = f.t;
  REQUIRE(asleepWithStandby(c, env));
  auto standby = liveVmmPid(env);
  REQUIRE(standby.has_value());
  REQUIRE(kill(*standby, SIGSTOP) == 0);
  auto sent = std::chrono::steady_clock::now();
  auto pending = std::async(std::launch::async, [&] { return env.httpGet(t.networkAddr, 8080, "/", 60s); });
  REQUIRE_MESSAGE(c.waitUntil(30s, [&] { return !eventsStarting(c, t.allocId, "Restore timed out").empty(); }),
                  describeEvents(c, t.allocId));
  double firedMs = msSince(sent);
  MESSAGE("restore watchdog fired " << firedMs << " ms after the request (bound: 5000 ms + wake start)");
  CHECK(firedMs < 7000);
  CHECK_FALSE(fs::exists("/proc/" + std::to_string(*standby)));  // killed, and reaped
  ColdWake w;
  w.inFlight = pending.get();
  w.ms = msSince(sent);
  REQUIRE(c.waitUntil(90s, [&] { return !eventsStarting(c, t.allocId, "Woken").empty(); }));
  checkServesAgain(c, env, t, w, 1);
  REQUIRE(c.stopTask(t.id, 10s).ok());
  integration::waitExit(c, t.id);
  integration::destroyAndCheckClean(c, env, t.id);
}
