// Guest-agent tasks end to end: the plugin boots the agent guest (its kernel
// and initramfs as installed defaults) on the Debian test root filesystem,
// and everything Nomad sees of the task is the workload's, not the VM's:
// its argv/env/user/working dir, its stdout and stderr in their own FIFOs,
// its exit code and signal, its signal handlers, its graceful shutdown, and
// its wall clock after a sleep. The workloads are Debian's programs (sh,
// id, python3) from the root filesystem.
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "tests/integration/agent_task_helpers.h"
#include "tests/integration/test_env.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

std::optional<TaskEventRecord> lastEvent(const NomadClient& c, const std::string& allocId,
                                         const std::string& message) {
  std::optional<TaskEventRecord> found;
  for (const auto& e : c.events()) {
    if (e.allocId == allocId && e.message == message) found = e;
  }
  return found;
}

double unixNowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace


TEST_CASE("the workload runs with the task's command, args, env, user and working_dir; its stdout and stderr go to their own FIFOs; exit 0") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  const char* script =
      "echo \"argv: $0 $1 $2\"; echo \"uid=$(id -u) gid=$(id -g) user=$(id -un)\"; "
      "echo \"pwd=$(pwd)\"; echo \"FOO=$FOO\"; echo \"task=$NOMAD_TASK_NAME\"; "
      "echo \"only-on-stderr\" >&2";
  auto started = c.startTask(agentTask("/bin/sh", {"-c", script, "first", "second word"},
                                       "user: app\nenv: { FOO: \"bar baz\" }\n",
                                       "  working_dir: /tmp\n"));
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  auto exit = waitExit(c, started->id);
  CHECK(exit.exitCode == 0);
  CHECK(exit.signal == 0);
  CHECK_FALSE(exit.oomKilled);
  CHECK(outputHas(c, started->id, "argv: first second word"));
  CHECK(outputHas(c, started->id, "uid=1000 gid=1000 user=app"));
  CHECK(outputHas(c, started->id, "pwd=/tmp"));
  CHECK(outputHas(c, started->id, "FOO=bar baz"));
  CHECK(outputHas(c, started->id, "task=app"));
  CHECK(outputHas(c, started->id, "only-on-stderr", /*stderrFifo=*/true));
  CHECK(c.taskStdout(started->id).find("only-on-stderr") == std::string::npos);
  // The kernel console is not the task's output.
  CHECK(c.taskStdout(started->id).find("Linux version") == std::string::npos);
  // The last writers close when the task has exited: Nomad's reader ends.
  CHECK(c.waitUntil(10s, [&] { return c.taskStdoutClosed(started->id); }));
  destroyAndCheckClean(c, env, started->id);
}

TEST_CASE("exit code 3 and a numeric uid:gid reach WaitTask; a missing command or user fails StartTask naming it") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;

  auto three = c.startTask(agentTask("sh", {"-c", "id -u; id -g; exit 3"}, "user: \"4242:4343\"\n"));
  REQUIRE_MESSAGE(three.ok(), s2z::tests::errText(three));
  auto exit = waitExit(c, three->id);
  CHECK(exit.exitCode == 3);
  CHECK(exit.signal == 0);
  CHECK(outputHas(c, three->id, "4242\n4343"));
  destroyAndCheckClean(c, env, three->id);

  auto missing = c.startTask(agentTask("no-such-program", {}));
  REQUIRE_FALSE(missing.ok());
  CHECK_MESSAGE(missing.error().message.find("\"no-such-program\" not found") != std::string::npos,
                missing.error().describe());
  auto nobody = c.startTask(agentTask("sh", {"-c", "true"}, "user: nosuchuser\n"));
  REQUIRE_FALSE(nobody.ok());
  CHECK_MESSAGE(nobody.error().message.find("unknown user \"nosuchuser\"") != std::string::npos,
                nobody.error().describe());
  // Nothing of either failed start is left.
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 5s), env.describePids());
  CHECK(env.links().empty());
}

TEST_CASE("SignalTask reaches the workload's handler; SIGKILL ends it with signal 9") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  StartedTask t = startServer(c, env);
  REQUIRE(c.signalTask(t.id, "SIGUSR1").ok());
  CHECK(outputHas(c, t.id, "got SIGUSR1"));
  // The VMM was not signalled: the task still serves.
  CHECK(env.httpGet(t.networkAddr, 8080, "/", 10s).status == 200);
  REQUIRE(c.signalTask(t.id, "SIGKILL").ok());
  auto exit = waitExit(c, t.id);
  CHECK(exit.signal == 9);
  CHECK_FALSE(exit.oomKilled);
  destroyAndCheckClean(c, env, t.id);
}

TEST_CASE("StopTask: SIGTERM runs the workload's own shutdown; one that ignores it is killed after the timeout") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  StartedTask t = startServer(c, env);
  REQUIRE(c.stopTask(t.id, 10s).ok());
  auto exit = waitExit(c, t.id);
  CHECK(exit.exitCode == 7);
  CHECK(exit.signal == 0);
  CHECK(outputHas(c, t.id, "graceful shutdown"));
  destroyAndCheckClean(c, env, t.id);

  auto stubborn = c.startTask(agentTask("sh", {"-c", "trap 'echo ignoring TERM' TERM; echo up; "
                                                     "while true; do sleep 0.2; done"}));
  REQUIRE_MESSAGE(stubborn.ok(), s2z::tests::errText(stubborn));
  REQUIRE(outputHas(c, stubborn->id, "up"));
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(c.stopTask(stubborn->id, 2s).ok());
  auto took = std::chrono::steady_clock::now() - t0;
  auto killed = waitExit(c, stubborn->id);
  CHECK(killed.signal == 9);
  CHECK(outputHas(c, stubborn->id, "ignoring TERM"));
  CHECK(took >= 2s);
  CHECK(took < 15s);
  destroyAndCheckClean(c, env, stubborn->id);
}

namespace {

// Serves requests across `cycles` sleep/wake cycles of a task whose config
// ends with extraConfig; every request's "out k" and "err k" lines must be in
// their own FIFO exactly once, the clock corrected after each wake, and the
// workload's graceful shutdown (exit 7) seen.
void checkOutputAcrossSleeps(const std::string& extraConfig, int cycles) {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  StartedTask t = startServer(c, env, "  scale_to_zero: { enabled: true, idle_timeout: \"2s\" }\n" + extraConfig);
  // waitHttp's requests were 1..k; count from what the server says.
  auto first = env.httpGet(t.networkAddr, 8080, "/", 10s);
  REQUIRE(first.status == 200);
  int n = std::stoi(first.body);
  for (int i = 1; i <= cycles; ++i) {
    REQUIRE_MESSAGE(c.waitUntil(30s, [&] { return eventsMatching(c, t.allocId, "sleeping") >= size_t(i); }),
                    "no Sleeping event for cycle " << i);
    auto reply = env.httpGet(t.networkAddr, 8080, "/", 15s);
    REQUIRE(reply.status == 200);
    n = std::stoi(reply.body);
    REQUIRE(c.waitUntil(15s, [&] { return eventsMatching(c, t.allocId, "woken") >= size_t(i); }));
  }
  // Every request's lines, exactly once, each in its own FIFO.
  for (int k = 1; k <= n; ++k) {
    std::string out = "out " + std::to_string(k) + "\n", err = "err " + std::to_string(k) + "\n";
    CHECK(outputHas(c, t.id, out));
    CHECK(outputHas(c, t.id, err, true));
    std::string all = c.taskStdout(t.id);
    CHECK_MESSAGE(all.find(out) == all.rfind(out), out << " appears twice");
    CHECK(all.find(err) == std::string::npos);
    std::string allErr = c.taskStderr(t.id);
    CHECK_MESSAGE(allErr.find(err) == allErr.rfind(err), err << " appears twice");
  }
  auto woken = lastEvent(c, t.allocId, "Woken");
  REQUIRE(woken);
  CHECK(woken->annotations["clock"] == "corrected");
  MESSAGE("last Woken: clock_lag_ms=" << woken->annotations["clock_lag_ms"]
                                      << " clock_error_ms=" << woken->annotations["clock_error_ms"]);
  REQUIRE(c.stopTask(t.id, 10s).ok());
  // Seen once in CI (stop 20): SIGTERM right after a wake, no exit within
  // 10 s, so SIGKILL (137). Whether the handler ran tells which side lost it.
  int code = waitExit(c, t.id).exitCode;
  std::string out = c.taskStdout(t.id);
  CHECK_MESSAGE(code == 7, "exit " << code << "; stdout ends: " << out.substr(out.size() > 120 ? out.size() - 120 : 0));
  // Its last words came before its exit was reported.
  CHECK(out.find("graceful shutdown\n") != std::string::npos);
  destroyAndCheckClean(c, env, t.id);
}

}  // namespace

TEST_CASE("across 5 sleep/wake cycles every stdout and stderr line arrives once, in its FIFO; the guest clock is corrected after each wake") {
  checkOutputAcrossSleeps("", 5);
}

// What a Cloud Hypervisor guest does (it has no virtio-serial ports), asked
// for on QEMU with the kernel parameter: the output travels as sequenced
// WorkloadOutput events on the agent channel and the plugin writes the FIFOs.
TEST_CASE("output relayed over the agent channel (s2z.output=channel): across 3 sleep/wake cycles every line arrives once, in its FIFO") {
  checkOutputAcrossSleeps("  cmdline: \"s2z.output=channel\"\n", 3);
}

TEST_CASE("after a 20 s sleep the workload's wall clock is the host's again") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  StartedTask t = startServer(c, env, "  scale_to_zero: { enabled: true, idle_timeout: \"2s\" }\n");
  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, t.allocId, "sleeping") >= 1; }));
  std::this_thread::sleep_for(20s);
  REQUIRE(env.httpGet(t.networkAddr, 8080, "/", 15s).status == 200);
  REQUIRE(c.waitUntil(15s, [&] { return eventsMatching(c, t.allocId, "woken") >= 1; }));
  auto woken = lastEvent(c, t.allocId, "Woken");
  REQUIRE(woken);
  CHECK(woken->annotations["clock"] == "corrected");
  double lagMs = std::stod(woken->annotations["clock_lag_ms"]);
  double errorMs = std::stod(woken->annotations["clock_error_ms"]);
  MESSAGE("clock before correction " << lagMs << " ms behind; after: " << errorMs << " ms");
  CHECK(lagMs > 19000);  // it was frozen for the sleep
  // Corrected, not merely moved: the benchmark holds the 10 ms target.
  CHECK(std::fabs(errorMs) <= 100.0);
  // What the workload itself reads, measured over one request.
  double before = unixNowSeconds();
  auto reply = env.httpGet(t.networkAddr, 8080, "/", 15s);
  double after = unixNowSeconds();
  REQUIRE(reply.status == 200);
  std::istringstream body(reply.body);
  int count = 0;
  double guest = 0;
  body >> count >> guest;
  MESSAGE("guest time.time() - host: " << (guest - (before + after) / 2) * 1e3 << " ms (request took "
                                       << (after - before) * 1e3 << " ms)");
  CHECK(guest >= before - 0.05);
  CHECK(guest <= after + 0.05);
  stopAndDestroy(c, env, t.id, 10s);
}

TEST_CASE("a plugin SIGKILL while the workload runs and exits: RecoverTask gets its exit code, and signals work again") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  // Runs until SIGUSR1 arrives, then exits 5 three seconds later.
  auto started = c.startTask(agentTask(
      "python3", {"-u", "-c",
                  "import signal, time, sys\n"
                  "got = []\n"
                  "signal.signal(signal.SIGUSR1, lambda s, f: got.append(1))\n"
                  "print('waiting', flush=True)\n"
                  "while not got: time.sleep(0.05)\n"
                  "print('got it', flush=True)\n"
                  "time.sleep(3)\n"
                  "sys.exit(5)\n"}));
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  REQUIRE(outputHas(c, started->id, "waiting"));
  // The plugin dies right after sending the signal, before the workload's
  // exit: the guest reports it to nobody, keeps it, and its VM stays up.
  REQUIRE(c.signalTask(started->id, "SIGUSR1").ok());
  c.crashPlugin();
  REQUIRE(outputHas(c, started->id, "got it"));
  std::this_thread::sleep_for(5s);
  CHECK_FALSE(c.taskStdoutClosed(started->id));
  REQUIRE(c.relaunchPlugin().ok());
  REQUIRE(c.recoverTask(*started).ok());
  // The new plugin's session gets the kept exit; the VM then powers off.
  auto exit = waitExit(c, started->id);
  CHECK(exit.exitCode == 5);
  CHECK(exit.signal == 0);
  CHECK(c.waitUntil(10s, [&] { return c.taskStdoutClosed(started->id); }));
  destroyAndCheckClean(c, env, started->id);
}

TEST_CASE("local/ and secrets/ reach the guest, secrets on a tmpfs; a template re-rendered while the task sleeps is in place when its change signal arrives") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  // Prints what it sees at start and the config again on SIGHUP; serves
  // HTTP so it can sleep and wake.
  const char* script =
      "import os, signal, socket\n"
      "def conf():\n"
      "    return open(os.environ['NOMAD_TASK_DIR'] + '/app.conf').read().strip()\n"
      "def hup(s, f):\n"
      "    print('reloaded conf=' + conf(), flush=True)\n"
      "signal.signal(signal.SIGHUP, hup)\n"
      "fs = [l.split()[2] for l in open('/proc/mounts') if l.split()[1] == '/secrets']\n"
      "print('conf=' + conf(), flush=True)\n"
      "print('task_dir=' + os.environ['NOMAD_TASK_DIR'] + ' alloc_dir=' + os.environ['NOMAD_ALLOC_DIR'], flush=True)\n"
      "print('token=' + open('/secrets/token').read().strip() + ' secrets_fs=' + fs[-1], flush=True)\n"
      "s = socket.socket()\n"
      "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
      "s.bind(('0.0.0.0', 8080))\n"
      "s.listen(16)\n"
      "while True:\n"
      "    c, _ = s.accept()\n"
      "    c.recv(4096)\n"
      "    c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n')\n"
      "    c.close()\n";
  TaskFile task = agentTask("python3", {"-u", "-c", script},
                            "template:\n"
                            "  - { destination: local/app.conf, data: \"version one\\n\", change_mode: signal, change_signal: SIGHUP }\n"
                            "  - { destination: secrets/token, data: \"s3cr3t\\n\", change_mode: noop, perms: \"0600\" }\n",
                            // Long enough for python to start and print under a loaded TCG
                            // host: the idle timer counts packets only, so a task still
                            // starting up sleeps (frozen) once it passes.
                            "  scale_to_zero: { enabled: true, idle_timeout: \"8s\" }\n");
  auto started = c.startTask(task);
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  CHECK(outputHas(c, started->id, "conf=version one"));
  CHECK(outputHas(c, started->id, "task_dir=/local alloc_dir=/alloc"));
  CHECK(outputHas(c, started->id, "token=s3cr3t secrets_fs=tmpfs"));

  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, started->allocId, "sleeping") >= 1; }));
  // Consul's value changed while the task sleeps: the client writes the file
  // and sends SIGHUP; the driver wakes the task, and the workload must read
  // the new file, not the one it had when it went to sleep.
  REQUIRE(c.rerenderTemplate(started->id, "local/app.conf", "version two\n").ok());
  CHECK(outputHas(c, started->id, "reloaded conf=version two"));
  CHECK(eventsMatching(c, started->allocId, "woken") >= 1);
  stopAndDestroy(c, env, started->id, 10s);
}

TEST_CASE("StopTask on a sleeping task wakes it for its graceful shutdown; with wake_to_stop = false it is killed asleep") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  StartedTask woken = startServer(c, env, "  scale_to_zero: { enabled: true, idle_timeout: \"2s\" }\n");
  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, woken.allocId, "sleeping") >= 1; }));
  REQUIRE(c.stopTask(woken.id, 10s).ok());
  auto graceful = waitExit(c, woken.id);
  CHECK(graceful.exitCode == 7);  // its SIGTERM handler ran
  CHECK(eventsMatching(c, woken.allocId, "woken") == 1);
  CHECK(outputHas(c, woken.id, "graceful shutdown"));
  destroyAndCheckClean(c, env, woken.id);

  StartedTask asleep = startServer(
      c, env, "  scale_to_zero: { enabled: true, idle_timeout: \"2s\", wake_to_stop: false }\n");
  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, asleep.allocId, "sleeping") >= 1; }));
  REQUIRE(c.stopTask(asleep.id, 10s).ok());
  auto killed = waitExit(c, asleep.id);
  CHECK(killed.signal == 9);
  CHECK(eventsMatching(c, asleep.allocId, "woken") == 0);
  CHECK(c.taskStdout(asleep.id).find("graceful shutdown") == std::string::npos);
  destroyAndCheckClean(c, env, asleep.id);
}

TEST_CASE("readonly_rootfs: the workload cannot write its root but can write /local, /alloc, /secrets and /run; "
          "writable_disk_mb sizes the writable disk") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  const std::string script =
      "touch /etc/probe 2>/dev/null && echo root=writable || echo root=readonly; "
      "for d in /local /alloc /secrets /run; do echo x > $d/probe && echo $d=writable; done; "
      "sleep 30";
  auto t = c.startTask(agentTask("sh", {"-c", script}, "", "  readonly_rootfs: true\n  writable_disk_mb: 64\n"));
  REQUIRE_MESSAGE(t.ok(), s2z::tests::errText(t));
  CHECK(outputHas(c, t->id, "root=readonly\n/local=writable\n/alloc=writable\n/secrets=writable\n/run=writable"));
  uint64_t scratchBytes = 0;
  for (const auto& file : env.stateFiles()) {
    if (std::filesystem::path(file).filename() == "scratch.ext4") {
      scratchBytes = std::filesystem::file_size(std::filesystem::path(env.stateDir()) / file);
    }
  }
  CHECK(scratchBytes == 64ull << 20);
  stopAndDestroy(c, env, t->id, 2s);
}
