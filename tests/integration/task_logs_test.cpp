// Task logs under Nomad's real log collector. The stand-in reads the stdout
// and stderr FIFOs as logmon does (one blocking open, copy until the last
// writer closes, never reopened), so every line the guest prints after a
// sleep, a wake or a plugin crash must still arrive — and the reader must see
// EOF exactly once: when the task has exited. The guest prints
// "s2z-guest: counter <n>" on its console for every GET /counter.
#include <doctest/doctest.h>

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <vector>

#include "tests/integration/agent_task_helpers.h"
#include "tests/integration/test_env.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// GET /counter and the console line it must produce.
struct Counted {
  int status = 0;
  std::string line;
};

Counted count(const TestEnv& env, const StartedTask& t) {
  auto reply = env.httpGet(t.networkAddr, 8080, "/counter", 15s);
  Counted c;
  c.status = reply.status;
  std::string n = reply.body;
  while (!n.empty() && (n.back() == '\n' || n.back() == '\r')) n.pop_back();
  c.line = "s2z-guest: counter " + n + "\r\n";  // the guest's serial tty writes CR LF
  return c;
}

bool arrives(NomadClient& c, const StartedTask& t, const std::string& text) {
  bool seen = c.waitUntil(10s, [&] { return c.taskStdout(t.id).find(text) != std::string::npos; });
  if (!seen) {
    std::string all = c.taskStdout(t.id);
    MESSAGE("stdout so far (last 600 bytes): " << all.substr(all.size() > 600 ? all.size() - 600 : 0));
  }
  return seen;
}

// The test guest with scale to zero after 3 s idle (in the plugin's default
// tier unless `sleep` names one), serving.
StartedTask startSleepyWeb(NomadClient& c, const TestEnv& env, const std::string& sleep = "") {
  std::string tier = sleep.empty() ? "" : ", sleep: \"" + sleep + "\"";
  auto started = c.startTask(webTask("  scale_to_zero: { enabled: true, idle_timeout: \"3s\"" + tier + " }\n"));
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  REQUIRE(env.waitHttp(started->networkAddr, 8080, 60s));
  return *started;
}

// StopTask, WaitTask: the last writers close with the task, so logmon's
// reader finishes; DestroyTask leaves no process but the plugin.
void stopSeeingEof(NomadClient& c, const TestEnv& env, const StartedTask& t) {
  REQUIRE(c.stopTask(t.id, 5s).ok());
  auto exit = c.waitTask(t.id, 20s);
  REQUIRE_MESSAGE(exit.ok(), s2z::tests::errText(exit));
  CHECK(c.waitUntil(5s, [&] { return c.taskStdoutClosed(t.id); }));
  REQUIRE(c.destroyTask(t.id).ok());
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 3s), env.describePids());
}

}  // namespace

TEST_CASE("console output after every wake reaches Nomad's reader; EOF only when the task exits") {
  REQUIRE(guestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  const StartedTask t = startSleepyWeb(c, env);
  CHECK(arrives(c, t, "s2z-guest: ready " + t.networkAddr + ":8080"));

  constexpr int kCycles = 5;
  size_t bytesAtFirstSleep = 0;
  int answered = 0;
  for (int i = 1; i <= kCycles; ++i) {
    REQUIRE_MESSAGE(c.waitUntil(30s, [&] { return eventsMatching(c, t.allocId, "sleeping") >= size_t(i); }),
                    "no Sleeping event for cycle " << i);
    if (i == 1) bytesAtFirstSleep = c.taskStdout(t.id).size();
    // The VMM that wrote the console is gone; the reader must still be there.
    CHECK_FALSE(c.taskStdoutClosed(t.id));
    auto counted = count(env, t);
    CHECK(counted.status == 200);
    answered += counted.status == 200;
    CHECK_MESSAGE(arrives(c, t, counted.line), "cycle " << i << ": \"" << counted.line
                                                        << "\" never reached the stdout FIFO");
    CHECK(c.waitUntil(10s, [&] { return eventsMatching(c, t.allocId, "woken") >= size_t(i); }));
  }
  size_t afterWakes = c.taskStdout(t.id).size() - bytesAtFirstSleep;
  MESSAGE(kCycles << " sleep/wake cycles: " << answered << " requests answered, " << afterWakes
                  << " bytes of console output read after the first sleep");
  CHECK(answered == kCycles);
  CHECK(c.taskStderr(t.id).empty());

  stopSeeingEof(c, env, t);
}

TEST_CASE("plugin SIGKILL while the task sleeps with no VMM: after RecoverTask a request wakes it and its output arrives") {
  REQUIRE(guestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  const StartedTask t = startSleepyWeb(c, env, "deep");
  auto before = count(env, t);
  REQUIRE(before.status == 200);
  CHECK(arrives(c, t, before.line));
  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, t.allocId, "sleeping") >= 1; }));

  // The plugin dies with the VM asleep, and its standby VMM is killed too:
  // no process of the task but the log holder is left (as in a deep sleep),
  // so it alone keeps Nomad's reader from seeing EOF.
  c.crashPlugin();
  // (A standby the plugin forked just before dying may exec a moment later.)
  std::this_thread::sleep_for(300ms);
  auto qemus = [&] {
    std::vector<int> found;
    for (int pid : env.pids()) {
      std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
      std::string name;
      std::getline(comm, name);
      if (name.rfind("qemu-system", 0) == 0) found.push_back(pid);
    }
    return found;
  };
  for (int pid : qemus()) ::kill(pid, SIGKILL);
  REQUIRE(c.waitUntil(5s, [&] { return qemus().empty(); }));
  std::this_thread::sleep_for(500ms);
  CHECK_FALSE(c.taskStdoutClosed(t.id));
  REQUIRE(c.relaunchPlugin().ok());
  auto recovered = c.recoverTask(t);
  REQUIRE_MESSAGE(recovered.ok(), s2z::tests::errText(recovered));

  auto after = count(env, t);
  CHECK(after.status == 200);
  CHECK_MESSAGE(arrives(c, t, after.line), "\"" << after.line << "\" never reached the stdout FIFO");
  CHECK_FALSE(c.taskStdoutClosed(t.id));
  // And once more through a whole sleep/wake with the new plugin.
  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, t.allocId, "sleeping") >= 2; }));
  auto again = count(env, t);
  CHECK(again.status == 200);
  CHECK(arrives(c, t, again.line));

  stopSeeingEof(c, env, t);
}

TEST_CASE("StartTask before the log collector reads the FIFOs returns without hanging, and nothing is lost") {
  REQUIRE(guestAvailable());
  TestEnv env;
  auto client = loadPlugin(env, 1500ms);
  NomadClient& c = *client;

  auto t0 = Clock::now();
  auto started = c.startTask(webTask());
  auto took = Clock::now() - t0;
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  MESSAGE("StartTask with the reader 1.5 s late took "
          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took >= 1400ms);  // it waited for the reader (without blocking in open)...
  CHECK(took < 20s);      // ...and did not hang
  REQUIRE(env.waitHttp(started->networkAddr, 8080, 60s));
  // The guest's console from boot on is there: the VMM was started only once
  // the reader was.
  CHECK(c.waitUntil(10s, [&] {
    return c.taskStdout(started->id).find("s2z-guest: ready") != std::string::npos;
  }));
  REQUIRE(c.stopTask(started->id, 5s).ok());
  REQUIRE(c.waitTask(started->id, 20s).ok());
  REQUIRE(c.destroyTask(started->id).ok());
}

TEST_CASE("StartTask with no log reader at all fails in bounded time with a recoverable error naming the FIFO") {
  TestEnv env;
  auto plugin = env.loadPlugin([](ClientOptions& o) { o.collectLogs = false; });
  NomadClient& c = *plugin;
  auto t0 = Clock::now();
  auto started = c.startTask(webTask());
  auto took = Clock::now() - t0;
  REQUIRE_FALSE(started.ok());
  MESSAGE(started.error().describe());
  // Nomad retries a recoverable StartTask error under the restart policy.
  CHECK(started.error().message.find("[recoverable]") != std::string::npos);
  CHECK(started.error().message.find(".web.stdout.fifo has no reader") != std::string::npos);
  CHECK(took >= 10s);
  CHECK(took < 20s);
  // Nothing was made: no VMM, no holder, no tap.
  CHECK(env.links().empty());
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 3s), env.describePids());
}
