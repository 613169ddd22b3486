// The built binary as a go-plugin process: magic cookie, stdout discipline,
// signals and Controller/Shutdown timing. No VM boots.
#include <signal.h>

#include <doctest/doctest.h>

#include <thread>

#include "tests/integration/test_env.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;

TEST_CASE("without the magic cookie the binary exits 1, explains on stderr, prints nothing on stdout") {
  LaunchOptions opts;
  opts.path = S2Z_PLUGIN_PATH;
  opts.setMagicCookie = false;
  opts.unsetEnv = {kMagicCookieKey};
  auto p = PluginProcess::spawn(opts);
  REQUIRE(p.ok());
  auto hs = (*p)->awaitHandshake(10s);
  REQUIRE_FALSE(hs.ok());
  auto status = (*p)->waitExit(10s);
  REQUIRE(status.ok());
  CHECK(describeWaitStatus(*status) == "exit 1");
  CHECK((*p)->stdoutLines().empty());
  MESSAGE("stderr: " << (*p)->stderrText());
  CHECK_FALSE((*p)->stderrText().empty());
}

TEST_CASE("a wrong magic cookie is refused too") {
  LaunchOptions opts;
  opts.path = S2Z_PLUGIN_PATH;
  opts.setMagicCookie = false;
  opts.extraEnv = {{kMagicCookieKey, "not-the-cookie"}};
  auto p = PluginProcess::spawn(opts);
  REQUIRE(p.ok());
  CHECK_FALSE((*p)->awaitHandshake(10s).ok());
  auto status = (*p)->waitExit(10s);
  REQUIRE(status.ok());
  CHECK(describeWaitStatus(*status) == "exit 1");
}

TEST_CASE("handshake is the only stdout output; SIGINT is ignored; Shutdown exits within 2 s") {
  REQUIRE(guestAvailable());
  TestEnv env;
  auto loaded = NomadClient::loadPlugin(env.clientOptions());
  REQUIRE_MESSAGE(loaded.ok(), s2z::tests::errText(loaded));
  NomadClient& c = **loaded;
  REQUIRE(c.waitForFingerprint(50s));
  CHECK(c.capabilities().ok());

  const auto& hs = c.process().handshake();
  CHECK(hs.protocol == "grpc");
  CHECK(hs.network == "unix");
  CHECK(hs.address.front() == '/');

  // A Ctrl-C to the agent's process group must not take the plugin down.
  kill(c.process().pid(), SIGINT);
  std::this_thread::sleep_for(300ms);
  CHECK(c.process().running());
  CHECK(c.capabilities().ok());

  CHECK(c.process().stdoutLines().size() == 1);
  auto output = c.outputSummary();
  CHECK(output.processes == 3);
  CHECK(output.extraStdoutLines == 0);
  CHECK(output.logViolations == 0);
  CHECK(output.nonJsonLines == 0);
  for (const auto& line : output.samples) MESSAGE("offending output: " << line);
  auto report = c.shutdownPlugin();
  CHECK(report.shutdownRpcOk);
  CHECK_FALSE(report.sigkilled);
  CHECK(report.timeToExit < 2s);
  MESSAGE("exit after Controller/Shutdown: " << report.timeToExit.count() << " ms");
  CHECK(describeWaitStatus(report.waitStatus) == "exit 0");
}
