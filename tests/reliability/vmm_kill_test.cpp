// Issue 13, case 4: the VMM (QEMU) SIGKILLed while the VM runs, during a
// snapshot, while the standby waits, and during a restore. Each prints what
// WaitTask and the task events said, checks it against what driver/README
// and agent/README document, and checks that DestroyTask leaves nothing
// (the leak inventory back at its baseline). The VMM is found through the
// task's record (instance.json: vmm.pid), checked to be a QEMU before the kill.
//
// Phases are hit on purpose, not by racing:
// - snapshot: an inotify watch on the snapshot dir; the kill is sent when
//   QEMU's stream file `state.tmp` is created (before `stop`/`migrate`; the
//   phase actually hit is read back from the events and printed);
// - restore: the standby QEMU is SIGSTOPped before the request, the kill is
//   sent once the record says Waking (the plugin is then waiting on QMP).
#include <doctest/doctest.h>

#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <thread>

#include "common/unique_fd.h"
#include "tests/integration/agent_task_helpers.h"
#include "tests/reliability/inventory.h"
#include "tests/reliability/reliability_support.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::reliability;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

// What VmInstance::exitOfAgentTask reports when the VM ends before its guest
// agent reported the workload's exit (agent/instance_workload.cpp).
constexpr char kAgentVmGone[] = "the VM exited before its guest agent reported the workload's end";

std::string describeExit(const ExitResult& e) {
  return "result=" + std::string(e.hasResult ? "set" : "unset") + " exit_code=" + std::to_string(e.exitCode) +
         " signal=" + std::to_string(e.signal) + " err=\"" + e.err + "\"";
}

struct Fixture {
  ReliabilityEnv renv;
  integration::TestEnv& env = renv.env();
  std::unique_ptr<NomadClient> client = renv.loadPlugin();
  NomadClient& c = *client;
  pid_t plugin = c.process().pid();
  Inventory baseline = Inventory::take(env, plugin, renv.subnetPrefix());

  void destroyAndCheckBaseline(const std::string& taskId) {
    integration::destroyAndCheckClean(c, env, taskId);
    std::string left = waitForBaseline(baseline, env, plugin, renv.subnetPrefix(), 15s);
    CHECK_MESSAGE(left.empty(), "not back at baseline after DestroyTask:\n" << left);
  }
};

pid_t vmmPidOrFail(const integration::TestEnv& env) {
  auto pid = liveVmmPid(env);
  REQUIRE_MESSAGE(pid.has_value(), "no live QEMU in the task's record; netns: " << env.describePids());
  return *pid;
}

// Kills `pid` at the first inotify event in `mask` (IN_CREATE, IN_MODIFY)
// for `file` in `dir`; the time of the kill, or nothing after `timeout`.
std::optional<std::chrono::steady_clock::time_point> killOnEvent(const std::filesystem::path& dir,
                                                                 const std::string& file, uint32_t mask,
                                                                 pid_t pid, std::chrono::milliseconds timeout) {
  UniqueFd in(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  REQUIRE(in.get() >= 0);
  REQUIRE_MESSAGE(inotify_add_watch(in.get(), dir.c_str(), mask) >= 0, std::strerror(errno));
  auto deadline = std::chrono::steady_clock::now() + timeout;
  alignas(inotify_event) char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{in.get(), POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(in.get(), buf, sizeof buf);
    for (ssize_t at = 0; at < n;) {
      auto* ev = reinterpret_cast<inotify_event*>(buf + at);
      if ((ev->mask & mask) && ev->len > 0 && file == ev->name) {
        kill(pid, SIGKILL);
        return std::chrono::steady_clock::now();
      }
      at += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("VMM killed while running: WaitTask reports the exit at once; DestroyTask leaves nothing") {
  REQUIRE(integration::agentGuestAvailable());
  REQUIRE(integration::guestAvailable());
  Fixture f;

  SUBCASE("guest-agent task") {
    StartedTask t = startCheckedServer(f.c, f.env, "5m");
    pid_t vmm = vmmPidOrFail(f.env);
    REQUIRE(kill(vmm, SIGKILL) == 0);
    auto killed = std::chrono::steady_clock::now();
    auto exit = f.c.waitTask(t.id, 30s);
    double ms = msSince(killed);
    REQUIRE_MESSAGE(exit.ok(), s2z::tests::errText(exit));
    MESSAGE("agent task, QEMU SIGKILLed while running: WaitTask after " << ms << " ms: " << describeExit(*exit));
    WARN_MESSAGE(ms <= 1000, "WaitTask took " << ms << " ms (issue 13 target: 1 s; load-dependent)");
    CHECK(exit->hasResult);
    CHECK(exit->exitCode == 1);
    CHECK(exit->signal == 0);
    CHECK(exit->err == kAgentVmGone);
    f.destroyAndCheckBaseline(t.id);
  }
  SUBCASE("task without the guest agent (test guest)") {
    auto started = f.c.startTask(integration::webTask());
    REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
    REQUIRE(f.env.waitHttp(started->networkAddr, 8080, 60s));
    pid_t vmm = vmmPidOrFail(f.env);
    REQUIRE(kill(vmm, SIGKILL) == 0);
    auto killed = std::chrono::steady_clock::now();
    auto exit = f.c.waitTask(started->id, 30s);
    double ms = msSince(killed);
    REQUIRE_MESSAGE(exit.ok(), s2z::tests::errText(exit));
    MESSAGE("agent-less task, QEMU SIGKILLed while running: WaitTask after " << ms
                                                                            << " ms: " << describeExit(*exit));
    WARN_MESSAGE(ms <= 1000, "WaitTask took " << ms << " ms (issue 13 target: 1 s; load-dependent)");
    CHECK(exit->hasResult);
    CHECK(exit->signal == SIGKILL);
    CHECK(exit->err == "VM process killed by signal 9");
    f.destroyAndCheckBaseline(started->id);
  }
}

TEST_CASE("VMM killed during a snapshot: the sleep fails and the task exits (or sleeps, if the snapshot was already durable); nothing left") {
  REQUIRE(integration::agentGuestAvailable());
  Fixture f;
  NomadClient& c = f.c;
  // Two points of the sleep: QEMU's stream file created (the migration
  // settings, before `stop`), and its first write (the guest paused, the
  // device state half-written).
  struct Point {
    std::string name;
    uint32_t mask;
  };
  for (Point at : {Point{"state.tmp created", IN_CREATE}, Point{"state.tmp first written", IN_MODIFY}}) {
    CAPTURE(at.name);
    StartedTask t = startCheckedServer(c, f.env, "1s");
    // One whole cycle first: the snapshot dir exists to be watched.
    REQUIRE(c.waitUntil(60s, [&] { return eventsStarting(c, t.allocId, "Sleeping").size() == 1; }));
    auto woke = checkReply(f.env.httpGet(t.networkAddr, 8080, "/", 60s));
    REQUIRE_MESSAGE(woke.ok, woke.why);
    REQUIRE(c.waitUntil(30s, [&] { return eventsStarting(c, t.allocId, "Woken").size() == 1; }));
    auto rec = readTaskRecord(f.env);
    REQUIRE(rec.has_value());
    pid_t vmm = vmmPidOrFail(f.env);

    auto killedAt = killOnEvent(rec->snapshotDir, "state.tmp", at.mask, vmm, 60s);
    REQUIRE_MESSAGE(killedAt.has_value(), "no snapshot started within 60 s\n" << describeEvents(c, t.allocId));
    double ms = -1;  // kill → the first of: WaitTask returned, a second Sleeping event
    while (msSince(*killedAt) < 30000) {
      if (c.backgroundExit(t.id) || eventsStarting(c, t.allocId, "Sleeping").size() == 2) {
        ms = msSince(*killedAt);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    REQUIRE_MESSAGE(ms >= 0, "neither an exit nor a Sleeping event 30 s after the kill\n"
                                 << describeEvents(c, t.allocId));
    auto failed = eventsStarting(c, t.allocId, "Sleep failed");
    if (auto exit = c.backgroundExit(t.id)) {
      MESSAGE("QEMU SIGKILLed at " << at.name << ": phase hit = before the snapshot "
              "was durable (" << (failed.empty() ? "no Sleep failed event" : failed[0].message)
              << "); WaitTask after " << ms << " ms: " << describeExit(*exit));
      WARN_MESSAGE(ms <= 1000, "WaitTask took " << ms << " ms (issue 13 target: 1 s; load-dependent)");
      // agent/README, sleep on failure: event "Sleep failed: …"; the VM cannot
      // keep running (its VMM is gone), so it ends as a VMM exit while running.
      CHECK(failed.size() == 1);
      CHECK(exit->hasResult);
      CHECK(exit->exitCode == 1);
      CHECK(exit->err == kAgentVmGone);
    } else {
      MESSAGE("QEMU SIGKILLed at " << at.name << ": phase hit = after the snapshot was "
              "durable (the plugin kills QEMU itself then); the task sleeps\n" << describeEvents(c, t.allocId));
      CHECK(failed.empty());
      auto reply = checkReply(f.env.httpGet(t.networkAddr, 8080, "/", 60s));
      CHECK_MESSAGE(reply.ok, reply.why);
      CHECK(reply.counter > woke.counter);
      REQUIRE(c.stopTask(t.id, 10s).ok());
      integration::waitExit(c, t.id);
    }
    CHECK(qemuPids(f.env).size() <= 1);
    f.destroyAndCheckBaseline(t.id);
  }
}

TEST_CASE("VMM killed while asleep (the standby) and during a restore: the wake still answers; nothing left") {
  REQUIRE(integration::agentGuestAvailable());
  Fixture f;
  NomadClient& c = f.c;
  StartedTask t = startCheckedServer(c, f.env, "1s");
  auto standbyUp = [&] {
    return c.waitUntil(30s, [&] {
      auto r = readTaskRecord(f.env);
      return r && r->state == kStateSleeping && r->standby && liveVmmPid(f.env).has_value();
    });
  };
  auto first = checkReply(f.env.httpGet(t.networkAddr, 8080, "/", 30s));
  REQUIRE_MESSAGE(first.ok, first.why);

  // 1. The standby killed while the task sleeps (agent/README: "standby VMM
  //    exited; the next wake starts a fresh one"): nothing of the guest is lost.
  REQUIRE(c.waitUntil(60s, [&] { return eventsStarting(c, t.allocId, "Sleeping").size() == 1; }));
  REQUIRE_MESSAGE(standbyUp(), "no standby VMM\n" << f.env.describePids());
  pid_t standby = vmmPidOrFail(f.env);
  REQUIRE(kill(standby, SIGKILL) == 0);
  std::this_thread::sleep_for(500ms);  // the plugin's loop reaps it
  auto afterStandby = checkReply(f.env.httpGet(t.networkAddr, 8080, "/", 60s));
  CHECK_MESSAGE(afterStandby.ok, afterStandby.why);
  CHECK_MESSAGE(afterStandby.counter > first.counter, "the guest's counter went from " << first.counter
                                                                                        << " to " << afterStandby.counter);
  REQUIRE(c.waitUntil(30s, [&] { return eventsStarting(c, t.allocId, "Woken").size() == 1; }));
  CHECK(eventsStarting(c, t.allocId, "Woken")[0].annotations.count("cold_boot") == 0);
  CHECK_FALSE(c.backgroundExit(t.id).has_value());
  MESSAGE("standby SIGKILLed while asleep: wake answered, counter " << first.counter << " -> "
                                                                   << afterStandby.counter);

  // 2. Killed during the restore: the standby stopped (SIGSTOP) so the
  //    restore waits on it, then killed once the record says Waking.
  REQUIRE(c.waitUntil(60s, [&] { return eventsStarting(c, t.allocId, "Sleeping").size() == 2; }));
  REQUIRE_MESSAGE(standbyUp(), "no standby VMM\n" << f.env.describePids());
  standby = vmmPidOrFail(f.env);
  REQUIRE(kill(standby, SIGSTOP) == 0);
  auto sent = std::chrono::steady_clock::now();
  auto pending = std::async(std::launch::async, [&] { return f.env.httpGet(t.networkAddr, 8080, "/", 120s); });
  bool waking = c.waitUntil(30s, [&] {
    auto r = readTaskRecord(f.env);
    return r && r->state == kStateWaking;
  });
  std::this_thread::sleep_for(300ms);
  kill(standby, SIGKILL);
  REQUIRE_MESSAGE(waking, "the wake did not start\n" << describeEvents(c, t.allocId));
  auto inFlight = pending.get();
  auto inFlightChecked = checkReply(inFlight);
  double ms = msSince(sent);
  bool done = c.waitUntil(60s, [&] {
    // The cold boot's Woken; with idle_timeout 1s the new guest may sleep
    // and wake again (for the request itself) before the client's
    // retransmission reaches it.
    return c.backgroundExit(t.id).has_value() || eventsStarting(c, t.allocId, "Woken").size() >= 2;
  });
  MESSAGE("QEMU SIGKILLed during a restore: the request in flight: "
          << (inFlightChecked.ok ? "answered" : "not answered: " + inFlightChecked.why) << " after " << ms
          << " ms, guest counter " << inFlightChecked.counter << "\n"
          << describeEvents(c, t.allocId));
  REQUIRE(done);
  // agent/README, wake on failure: "Snapshot missing/unusable (…); cold
  // booting", then Woken with cold_boot=true (README: a cold boot starts the
  // workload again from the beginning, so the counter restarts); only if the
  // cold boot fails too: Exited with the error. The guest here is healthy,
  // so its cold boot must work.
  CHECK(eventsStarting(c, t.allocId, "Snapshot unusable").size() == 1);
  auto wakeFailed = eventsStarting(c, t.allocId, "Wake failed");
  CHECK_MESSAGE(wakeFailed.empty(),
                "the cold boot after the failed restore did not start the workload: "
                << (wakeFailed.empty() ? "" : wakeFailed[0].message)
                << " (the guest channel must start a new session for the new guest)");
  if (auto exit = c.backgroundExit(t.id)) {
    MESSAGE("the task exited: " << describeExit(*exit));
    CHECK(exit->hasResult);
    CHECK_FALSE(exit->err.empty());
  } else {
    auto woken = eventsStarting(c, t.allocId, "Woken");
    CHECK(woken[1].annotations.count("cold_boot") == 1);
    REQUIRE(f.env.waitHttp(t.networkAddr, 8080, 60s));
    auto next = checkReply(f.env.httpGet(t.networkAddr, 8080, "/", 60s));
    CHECK_MESSAGE(next.ok, next.why);
    MESSAGE("after the cold boot the guest counter is " << next.counter << " (was " << afterStandby.counter
                                                        << " before the sleep)");
    // The boot gate (agent/boot_gate.h) held the client's SYN retransmission
    // until the cold-booted guest served.
    CHECK_MESSAGE(inFlightChecked.ok, "the request in flight during the failed restore was not answered: "
                                          << inFlightChecked.why);
  }
  CHECK(qemuPids(f.env).size() <= 1);
  if (!c.backgroundExit(t.id)) {
    REQUIRE(c.stopTask(t.id, 10s).ok());
    integration::waitExit(c, t.id);
  }
  f.destroyAndCheckBaseline(t.id);
}
