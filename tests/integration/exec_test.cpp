// Exec in agent tasks, through the built plugin and the stand-in as Nomad
// drives it: script checks (ExecTask) and `nomad alloc exec`
// (ExecTaskStreaming, with and without a terminal), run inside the
// workload's root filesystem with its user and environment; and how both
// behave while the task sleeps.
#include <doctest/doctest.h>

#include <thread>

#include "tests/integration/agent_task_helpers.h"
#include "tests/integration/test_env.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

const std::string kSleepQuickly = "  scale_to_zero: { enabled: true, idle_timeout: \"2s\" }\n";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The names of the processes running in the guest (from its /proc).
std::string guestProcesses(NomadClient& c, const std::string& taskId) {
  auto ps = c.execTask(taskId, {"sh", "-c", "cat /proc/[0-9]*/comm"}, 10s);
  REQUIRE_MESSAGE(ps.ok(), s2z::tests::errText(ps));
  return ps->stdoutText;
}

}  // namespace

TEST_CASE("ExecTask runs a script check as the workload's user with its env: stdout, stderr, exit code; a timeout kills it") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  StartedTask t = startServer(c, env, "", "user: app\nenv: { FOO: \"bar baz\" }\n");

  auto check = c.execTask(t.id, {"sh", "-c", "id -un; echo \"$FOO\"; pwd; echo oops >&2; exit 3"}, 10s);
  REQUIRE_MESSAGE(check.ok(), s2z::tests::errText(check));
  CHECK_FALSE(check->timedOut);
  CHECK(check->stdoutText == "app\nbar baz\n/\n");
  CHECK(check->stderrText == "oops\n");
  CHECK(check->exitCode == 3);

  auto slow = c.execTask(t.id, {"sleep", "30"}, 1s);
  REQUIRE_MESSAGE(slow.ok(), s2z::tests::errText(slow));
  CHECK(slow->timedOut);
  CHECK(c.waitUntil(5s, [&] { return !has(guestProcesses(c, t.id), "sleep\n"); }));

  auto missing = c.execTask(t.id, {"no-such-check"}, 10s);
  REQUIRE_FALSE(missing.ok());
  CHECK(has(missing.error().message, "no-such-check"));
  CHECK(has(missing.error().message, "not found"));

  stopAndDestroy(c, env, t.id, 10s);
}

TEST_CASE("ExecTaskStreaming without a terminal: stdin in, stdout and stderr apart, exit code, and the driver ends the stream") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  StartedTask t = startServer(c, env);

  auto call = c.execStreaming(t.id, {"sh", "-c", "read line; echo \"got $line\"; echo err >&2; exit 4"}, false);
  REQUIRE_MESSAGE(call.ok(), s2z::tests::errText(call));
  REQUIRE((*call)->sendStdin("hello\n").ok());
  ExecStreamOutcome out = (*call)->waitEnd(30s);
  CHECK(out.stdoutText == "got hello\n");
  CHECK(out.stderrText == "err\n");
  CHECK(out.stdoutClosed);
  CHECK(out.stderrClosed);
  CHECK(out.exited);
  CHECK(out.hasResult);
  CHECK(out.exitCode == 4);
  // Nomad's client never closes its side: the driver must end the stream.
  CHECK(out.streamEnded);
  CHECK_MESSAGE(out.statusOk, out.statusMessage);
  CHECK(out.messagesAfterExited == 0);

  // stdin's close is the program's EOF; a large input arrives whole.
  std::string big(300 * 1024, 'x');
  auto cat = c.execStreaming(t.id, {"sh", "-c", "wc -c"}, false);
  REQUIRE(cat.ok());
  REQUIRE((*cat)->sendStdin(big).ok());
  REQUIRE((*cat)->closeStdin().ok());
  out = (*cat)->waitEnd(60s);
  CHECK(out.stdoutText == "307200\n");
  CHECK(out.exitCode == 0);

  // A user who leaves (the call is cancelled) leaves nothing running.
  auto idle = c.execStreaming(t.id, {"sleep", "300"}, false);
  REQUIRE(idle.ok());
  CHECK(c.waitUntil(10s, [&] { return has(guestProcesses(c, t.id), "sleep\n"); }));
  idle->reset();
  CHECK(c.waitUntil(10s, [&] { return !has(guestProcesses(c, t.id), "sleep\n"); }));

  stopAndDestroy(c, env, t.id, 10s);
}

TEST_CASE("ExecTaskStreaming with a terminal: its own /dev/pts, the client's size, echo, and ^D on stdin close") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  StartedTask t = startServer(c, env);

  auto call = c.execStreaming(t.id, {"sh", "-c", "tty; read go; stty size; cat; echo done"}, true);
  REQUIRE_MESSAGE(call.ok(), s2z::tests::errText(call));
  REQUIRE((*call)->resize(30, 100).ok());
  REQUIRE((*call)->sendStdin("go\n").ok());
  auto sized = (*call)->waitFor(20s, [](const ExecStreamOutcome& o) { return has(o.stdoutText, "30 100"); });
  // The terminal echoes input and turns \n into \r\n. Echo and program output
  // interleave at the line discipline's whim, so only pieces are checked.
  CHECK(has(sized.stdoutText, "30 100"));  // rows and columns of the client's resize
  CHECK(has(sized.stdoutText, "/dev/pts/"));
  CHECK(has(sized.stdoutText, "go"));
  CHECK(has(sized.stdoutText, "\r\n"));
  REQUIRE((*call)->sendStdin("typed\n").ok());
  REQUIRE((*call)->closeStdin().ok());  // ^D ends cat
  ExecStreamOutcome out = (*call)->waitEnd(30s);
  CHECK(has(out.stdoutText, "typed"));
  CHECK(has(out.stdoutText, "done"));
  CHECK(out.stderrText.empty());  // a terminal has one output
  CHECK(out.exited);
  CHECK(out.exitCode == 0);
  CHECK_MESSAGE(out.statusOk, out.statusMessage);

  stopAndDestroy(c, env, t.id, 10s);
}

TEST_CASE("while a task sleeps a script check passes unrun, unless script_checks = \"wake\"; alloc exec wakes it, and an open exec session keeps it awake") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;

  StartedTask t = startServer(c, env, kSleepQuickly);
  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, t.allocId, "sleeping") >= 1; }));
  auto check = c.execTask(t.id, {"false"}, 10s);
  REQUIRE_MESSAGE(check.ok(), s2z::tests::errText(check));
  CHECK(check->exitCode == 0);  // passing, and `false` never ran
  CHECK(eventsMatching(c, t.allocId, "woken") == 0);

  auto shell = c.execStreaming(t.id, {"cat"}, false);
  REQUIRE_MESSAGE(shell.ok(), s2z::tests::errText(shell));
  REQUIRE((*shell)->sendStdin("still here\n").ok());
  auto echoed = (*shell)->waitFor(20s, [](const ExecStreamOutcome& o) { return has(o.stdoutText, "still here"); });
  CHECK(echoed.stdoutText == "still here\n");
  CHECK(eventsMatching(c, t.allocId, "woken") == 1);
  // Far past idle_timeout with the session open and no packets: awake.
  std::this_thread::sleep_for(6s);
  CHECK(eventsMatching(c, t.allocId, "sleeping") == 1);
  REQUIRE((*shell)->closeStdin().ok());
  CHECK((*shell)->waitEnd(20s).exitCode == 0);
  shell->reset();
  CHECK(c.waitUntil(30s, [&] { return eventsMatching(c, t.allocId, "sleeping") >= 2; }));
  stopAndDestroy(c, env, t.id, 10s);

  StartedTask woken = startServer(
      c, env, "  scale_to_zero: { enabled: true, idle_timeout: \"2s\", script_checks: \"wake\" }\n");
  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, woken.allocId, "sleeping") >= 1; }));
  auto ran = c.execTask(woken.id, {"sh", "-c", "echo ran; exit 2"}, 20s);
  REQUIRE_MESSAGE(ran.ok(), s2z::tests::errText(ran));
  CHECK(ran->stdoutText == "ran\n");
  CHECK(ran->exitCode == 2);
  CHECK(eventsMatching(c, woken.allocId, "woken") == 1);
  stopAndDestroy(c, env, woken.id, 10s);
}

TEST_CASE("exec in a task without the guest agent is refused with a reason") {
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  auto started = c.startTask(webTask());
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  auto check = c.execTask(started->id, {"true"}, 5s);
  REQUIRE_FALSE(check.ok());
  CHECK(has(check.error().message, "needs the guest agent"));
  auto call = c.execStreaming(started->id, {"sh"}, true);
  REQUIRE(call.ok());  // the stream opens; the driver ends it with the error
  ExecStreamOutcome out = (*call)->waitEnd(10s);
  CHECK(out.streamEnded);
  CHECK_FALSE(out.statusOk);
  CHECK(has(out.statusMessage, "needs the guest agent"));
  stopAndDestroy(c, env, started->id, 2s);
}
