#include "tests/integration/agent_task_helpers.h"
#include "tests/err_text.h"

#include <doctest/doctest.h>

namespace s2z::integration {

using namespace s2z::standin;
using namespace std::chrono_literals;

std::unique_ptr<NomadClient> loadPlugin(const TestEnv& env, std::chrono::milliseconds logCollectorDelay) {
  return env.loadPlugin([&](ClientOptions& o) { o.logCollectorDelay = logCollectorDelay; });
}

bool outputHas(NomadClient& c, const std::string& taskId, const std::string& text, bool stderrFifo) {
  bool seen = c.waitUntil(20s, [&] {
    std::string all = stderrFifo ? c.taskStderr(taskId) : c.taskStdout(taskId);
    return all.find(text) != std::string::npos;
  });
  if (!seen) {
    MESSAGE("stdout: " << c.taskStdout(taskId) << "\nstderr: " << c.taskStderr(taskId));
  }
  return seen;
}

ExitResult waitExit(NomadClient& c, const std::string& taskId) {
  auto exit = c.waitTask(taskId, 60s);
  REQUIRE_MESSAGE(exit.ok(), s2z::tests::errText(exit));
  return *exit;
}

void destroyAndCheckClean(NomadClient& c, const TestEnv& env, const std::string& taskId) {
  REQUIRE(c.destroyTask(taskId).ok());
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 5s), env.describePids());
}

void stopAndDestroy(NomadClient& c, const TestEnv& env, const std::string& taskId, std::chrono::milliseconds timeout) {
  REQUIRE(c.stopTask(taskId, timeout).ok());
  waitExit(c, taskId);
  destroyAndCheckClean(c, env, taskId);
}

const char* const kServer = R"PY(
import signal, socket, sys, time
def usr1(signum, frame):
    print("got SIGUSR1", flush=True)
def term(signum, frame):
    print("graceful shutdown", flush=True)
    sys.exit(7)
signal.signal(signal.SIGUSR1, usr1)
signal.signal(signal.SIGTERM, term)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(16)
print("serving", flush=True)
n = 0
while True:
    c, _ = s.accept()
    c.recv(4096)
    n += 1
    print("out %d" % n, flush=True)
    print("err %d" % n, file=sys.stderr, flush=True)
    body = "%d %.6f\n" % (n, time.time())
    c.sendall(("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
    c.close()
)PY";

StartedTask startServer(NomadClient& c, const TestEnv& env, const std::string& extraConfig,
                        const std::string& extraTaskYaml) {
  auto started = c.startTask(agentTask("python3", {"-u", "-c", kServer}, extraTaskYaml, extraConfig));
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  REQUIRE(env.waitHttp(started->networkAddr, 8080, 60s));
  return *started;
}

}  // namespace s2z::integration
