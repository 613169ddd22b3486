// The built s2z-kata binary driven through the Nomad-client stand-in, inside
// its own network namespace, booting the real test guest under QEMU: the
// loader's three launches, fingerprint, StartTask with a DriverNetwork, HTTP
// to the VM, events, stats, a graceful plugin restart and a plugin crash
// (both followed by RecoverTask), StopTask/WaitTask, DestroyTask with no
// leftovers, and idempotent Stop/Destroy. One VM boot for all of it.
#include <doctest/doctest.h>

#include <algorithm>

#include "tests/integration/test_env.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

long long ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

bool hasHealthyFingerprint(const NomadClient& c) {
  for (const auto& f : c.fingerprints()) {
    if (f.healthy()) return true;
  }
  return false;
}

FingerprintRecord lastFingerprint(const NomadClient& c) { return c.fingerprints().back(); }

}  // namespace

TEST_CASE("full task lifecycle, plugin restart and crash recovery through the Nomad protocol") {
  REQUIRE_MESSAGE(guestAvailable(), "test guest missing in " << guestDir()
                                                             << " (scripts/build-guest.sh)");
  TestEnv env;
  auto loaded = NomadClient::loadPlugin(env.clientOptions());
  REQUIRE_MESSAGE(loaded.ok(), s2z::tests::errText(loaded));
  NomadClient& c = **loaded;

  // Loader: probe and validation copies exit promptly on Controller/Shutdown.
  CHECK(c.pluginInfo().name == "s2z-kata");
  CHECK(c.loaderReport().validationRan);
  const auto& probe = c.loaderReport().probeKill;
  CHECK(probe.shutdownRpcOk);
  CHECK_FALSE(probe.sigkilled);
  CHECK(probe.timeToExit < 2s);
  CHECK_FALSE(c.loaderReport().validationKill.sigkilled);
  MESSAGE("probe exit after Shutdown: " << probe.timeToExit.count()
                                        << " ms, validation: "
                                        << c.loaderReport().validationKill.timeToExit.count()
                                        << " ms");

  // Fingerprint: healthy with the driver's attributes.
  REQUIRE(c.waitUntil(50s, [&] { return hasHealthyFingerprint(c); }));
  auto fp = lastFingerprint(c);
  CHECK(fp.healthy());
  CHECK_FALSE(fp.attributes["driver.s2z-kata.version"].empty());
  CHECK(fp.attributes["driver.s2z-kata.hypervisor"] == "qemu");
  CHECK_FALSE(fp.attributes["driver.s2z-kata.hypervisor_version"].empty());
  std::string accel = fp.attributes["driver.s2z-kata.accelerator"];
  CHECK((accel == "tcg" || accel == "kvm"));
  for (const auto& [k, v] : fp.attributes) MESSAGE("fingerprint " << k << " = " << v);

  auto caps = c.capabilities();
  REQUIRE(caps.ok());
  CHECK(std::find(caps->networkIsolationModes.begin(), caps->networkIsolationModes.end(), "HOST") !=
        caps->networkIsolationModes.end());
  CHECK_FALSE(caps->mustCreateNetwork);
  MESSAGE("capabilities: fs_isolation " << caps->fsIsolation << ", signals " << caps->sendSignals
                                        << ", exec " << caps->exec << ", log collection "
                                        << !caps->disableLogCollection);

  // StartTask: a DriverNetwork with the VM address in our subnet and the port map.
  auto startedAt = std::chrono::steady_clock::now();
  // console=ttyS0: the serial console is what the driver writes to stdout_path.
  auto started = c.startTask(
      webTask("  scale_to_zero: { enabled: false }\n  cmdline: \"console=ttyS0 quiet\"\n"));
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  MESSAGE("StartTask returned after " << ms(std::chrono::steady_clock::now() - startedAt) << " ms");
  const StartedTask& t = *started;
  CHECK(t.handleVersion >= 1);
  CHECK(t.handleConfigMatches);
  CHECK(t.hasNetworkOverride);
  CHECK(t.networkAddr.rfind(env.subnetPrefix(), 0) == 0);
  REQUIRE(t.portMap.count("http") == 1);
  CHECK(t.portMap.at("http") == 8080);

  REQUIRE_MESSAGE(env.waitHttp(t.networkAddr, 8080, 30s), "VM at " << t.networkAddr << " never answered");
  MESSAGE("first HTTP 200 after " << ms(std::chrono::steady_clock::now() - startedAt) << " ms");
  auto reply = env.httpGet(t.networkAddr, 8080, "/", 5s);
  CHECK(reply.status == 200);

  // Stats carry timestamps and usage (events are checked in scale_to_zero_test:
  // the driver reports sleep/wake, not plain starts).
  REQUIRE(c.waitForStats(t.id, 2, 10s));
  for (const auto& s : c.statsSamples(t.id)) {
    CHECK(s.hasTimestamp);
    CHECK(s.hasAggUsage);
  }
  auto samples = c.statsSamples(t.id);
  CHECK(std::any_of(samples.begin(), samples.end(),
                    [](const StatsSample& s) { return s.memoryRss > 0 || s.memoryUsage > 0; }));
  // The guest's console reaches the task's stdout (`nomad alloc logs`).
  CHECK_MESSAGE(c.waitUntil(5s, [&] { return c.taskStdout(t.id).find("s2z-guest: ready") != std::string::npos; }),
                "stdout so far: " << c.taskStdout(t.id));

  // Agent restart: graceful plugin kill leaves the VM serving; a new plugin recovers it.
  auto shutdown = c.shutdownPlugin();
  CHECK(shutdown.shutdownRpcOk);
  CHECK_FALSE(shutdown.sigkilled);
  CHECK(shutdown.timeToExit < 2s);
  MESSAGE("long-lived plugin exit after Shutdown: " << shutdown.timeToExit.count() << " ms");
  CHECK(env.httpGet(t.networkAddr, 8080, "/", 5s).status == 200);
  REQUIRE(c.relaunchPlugin().ok());
  auto recovered = c.recoverTask(t);
  REQUIRE_MESSAGE(recovered.ok(), s2z::tests::errText(recovered));
  CHECK(c.recoverTask(t).ok());  // idempotent: already tracked
  auto running = c.waitTask(t.id, 500ms);
  REQUIRE_FALSE(running.ok());
  CHECK(running.error().code == ErrorCode::kTimeout);
  size_t before = c.statsSamples(t.id).size();
  CHECK(c.waitForStats(t.id, before + 1, 10s));

  // Plugin crash: SIGKILL; the VM keeps serving; re-dispense + RecoverTask again.
  c.crashPlugin();
  CHECK(env.httpGet(t.networkAddr, 8080, "/", 5s).status == 200);
  REQUIRE(c.relaunchPlugin().ok());
  auto recoveredAgain = c.recoverTask(t);
  REQUIRE_MESSAGE(recoveredAgain.ok(), s2z::tests::errText(recoveredAgain));
  running = c.waitTask(t.id, 500ms);
  REQUIRE_FALSE(running.ok());
  CHECK(running.error().code == ErrorCode::kTimeout);
  before = c.statsSamples(t.id).size();
  CHECK(c.waitForStats(t.id, before + 1, 10s));
  CHECK(env.httpGet(t.networkAddr, 8080, "/", 5s).status == 200);

  // StopTask, then WaitTask gives a result; the VM is gone.
  auto stopAt = std::chrono::steady_clock::now();
  auto stopped = c.stopTask(t.id, 5s);
  REQUIRE_MESSAGE(stopped.ok(), s2z::tests::errText(stopped));
  auto exit = c.waitTask(t.id, 20s);
  REQUIRE_MESSAGE(exit.ok(), s2z::tests::errText(exit));
  CHECK(exit->hasResult);
  MESSAGE("stop -> exit " << ms(std::chrono::steady_clock::now() - stopAt) << " ms, code "
                          << exit->exitCode << " signal " << exit->signal);
  CHECK(env.httpGet(t.networkAddr, 8080, "/", 2s).status == 0);

  // DestroyTask frees everything: no tap, route, neighbour, VMM, files.
  auto destroyed = c.destroyTask(t.id);
  REQUIRE_MESSAGE(destroyed.ok(), s2z::tests::errText(destroyed));
  auto links = env.links();
  CHECK_MESSAGE(links.empty(), "links left: " << links.size() << " first: " << (links.empty() ? "" : links[0]));
  std::string routes = env.routes();
  CHECK_MESSAGE(routes.find(t.networkAddr) == std::string::npos, routes);
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 3s), env.describePids());
  auto files = env.stateFiles();
  for (const auto& f : files) MESSAGE("state file left: " << f);
  CHECK(std::none_of(files.begin(), files.end(), [&](const std::string& f) {
    return f.find(t.allocId) != std::string::npos || f.find("snapshot") != std::string::npos;
  }));

  // Stop/Destroy are idempotent and fine for unknown ids.
  CHECK(c.stopTask(t.id, 1s).ok());
  CHECK(c.destroyTask(t.id).ok());
  CHECK(c.stopTask("00000000-0000-4000-8000-000000000000/none/00000000", 1s).ok());
  CHECK(c.destroyTask("00000000-0000-4000-8000-000000000000/none/00000000").ok());

  // The plugin spoke hclog JSON only and printed nothing but the handshake.
  // Over all five processes: probe, validation, and three long-lived ones.
  auto output = c.outputSummary();
  CHECK(output.processes == 5);
  CHECK(output.logViolations == 0);
  CHECK(output.nonJsonLines == 0);
  CHECK(output.extraStdoutLines == 0);
  for (const auto& line : output.samples) MESSAGE("offending output: " << line);
  auto last = c.shutdownPlugin();
  CHECK_FALSE(last.sigkilled);
  CHECK(last.timeToExit < 2s);
}
