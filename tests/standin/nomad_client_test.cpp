// NomadClient against a small real plugin (fake_driver_plugin): the loader
// sequence, streams, task RPCs, crash + recovery and the kill timing as a
// Nomad client performs them.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "standin/nomad_client.h"
#include "tests/err_text.h"

using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

struct Fixture {
  std::string dir;
  std::string rpcLog;
  Fixture() {
    char tmpl[] = "/tmp/s2z-standin-client-XXXXXX";
    dir = mkdtemp(tmpl);
    rpcLog = dir + "/rpc.log";
  }
  ~Fixture() { std::filesystem::remove_all(dir); }

  ClientOptions options() const {
    ClientOptions o;
    o.launch.path = FAKE_PLUGIN_PATH;
    o.launch.extraEnv = {{"FAKE_PLUGIN_LOG", rpcLog}, {"TMPDIR", dir}};
    o.dataDir = dir + "/data";
    return o;
  }
  std::vector<std::string> rpcs() const {
    std::ifstream in(rpcLog);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line.substr(line.find(' ') + 1));
    return out;
  }
  bool logged(const std::string& prefix) const {
    for (const auto& l : rpcs()) {
      if (l.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }
};

TaskFile webTask() {
  auto t = TaskFile::parse("name: web\ndriver: fake\nconfig: { command: run }\n");
  REQUIRE(t.ok());
  return *t;
}

}  // namespace

TEST_CASE("loader: probe, validation and long-lived launches in the client's order") {
  Fixture f;
  auto opts = f.options();
  opts.pluginConfig = YAML::Load("greeting: hello");
  auto client = NomadClient::loadPlugin(opts);
  REQUIRE_MESSAGE(client.ok(), s2z::tests::errText(client));
  auto& c = **client;
  CHECK(c.pluginInfo().name == "fake");
  CHECK(c.pluginInfo().chosenApiVersion == "v0.1.0");
  CHECK(c.loaderReport().validationRan);
  CHECK_FALSE(c.loaderReport().probeKill.sigkilled);
  CHECK(c.loaderReport().probeKill.shutdownRpcOk);
  CHECK(c.loaderReport().probeKill.timeToExit < 2s);

  // {"greeting": "hello"} = 0x81 a8 "greeting" a5 "hello" = 16 bytes.
  std::vector<std::string> expected = {
      "PluginInfo", "ConfigSchema", "Shutdown",
      "SetConfig nomad=0 min=0 max=0 topology=0 api=v0.1.0 config_bytes=16",
      "SetConfig nomad=0 min=0 max=0 topology=0 api=v0.1.0 config_bytes=16", "Shutdown",
      "SetConfig nomad=1 min=14000 max=14512 topology=1 api=v0.1.0 config_bytes=16"};
  CHECK(f.rpcs() == expected);

  REQUIRE(c.waitForFingerprint(5s));
  auto fp = c.fingerprints().front();
  CHECK(fp.healthy());
  CHECK(fp.attributes.at("driver.fake.cores") == "2");
  CHECK(fp.attributes.at("driver.fake.ratio") == "0.5");
  CHECK(c.process().logViolationCount() == 0);
  CHECK(c.process().stdoutLines().size() == 1);
  auto output = c.outputSummary();
  CHECK(output.processes == 3);
  CHECK(output.logViolations == 0);
  CHECK(output.nonJsonLines == 0);
  CHECK(output.extraStdoutLines == 0);

  auto report = c.shutdownPlugin();
  CHECK(report.shutdownRpcOk);
  CHECK_FALSE(report.sigkilled);
  CHECK(report.timeToExit < 2s);
}

TEST_CASE("task lifecycle, config validation and recovery after a plugin crash") {
  Fixture f;
  auto opts = f.options();
  opts.skipProbeAndValidation = true;
  auto client = NomadClient::loadPlugin(opts);
  REQUIRE_MESSAGE(client.ok(), s2z::tests::errText(client));
  auto& c = **client;

  auto bad = TaskFile::parse("name: web\nconfig: { command: run, extra: 1 }\n");
  REQUIRE(bad.ok());
  auto rejected = c.startTask(*bad);
  REQUIRE_FALSE(rejected.ok());
  CHECK(rejected.error().message.find("Failed Validation") != std::string::npos);
  CHECK_FALSE(f.logged("StartTask"));

  auto started = c.startTask(webTask());
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  CHECK(started->handleVersion == 1);
  CHECK(started->handleConfigMatches);
  CHECK(started->networkAddr == "10.89.9.2");
  CHECK(started->portMap.at("http") == 8080);
  CHECK(c.waitUntil(3s, [&] { return c.taskStdout(started->id) == "hello from web\n"; }));
  CHECK(c.waitUntil(3s, [&] {
    for (const auto& e : c.events()) {
      if (e.taskName == "web" && e.message == "Started" && e.hasTimestamp) return true;
    }
    return false;
  }));
  REQUIRE(c.waitForStats(started->id, 2, 4s));
  CHECK(c.statsSamples(started->id)[0].hasTimestamp);
  CHECK(c.statsSamples(started->id)[0].memoryMeasured == std::vector<std::string>{"RSS"});

  // A crash: in-flight calls fail; a new process plus RecoverTask brings it back.
  c.crashPlugin();
  REQUIRE(c.relaunchPlugin().ok());
  REQUIRE(c.recoverTask(*started).ok());
  CHECK(f.logged("RecoverTask task_id= handle=" + started->id + " state=state-" + started->id));
  auto stillRunning = c.waitTask(started->id, 300ms);
  REQUIRE_FALSE(stillRunning.ok());
  CHECK(stillRunning.error().code == s2z::ErrorCode::kTimeout);
  size_t before = c.statsSamples(started->id).size();
  CHECK(c.waitForStats(started->id, before + 1, 3s));

  REQUIRE(c.stopTask(started->id, 5s).ok());
  auto exit = c.waitTask(started->id, 5s);
  REQUIRE(exit.ok());
  CHECK(exit->hasResult);
  CHECK(exit->signal == 15);
  CHECK(c.waitUntil(3s, [&] { return c.backgroundExit(started->id).has_value(); }));
  REQUIRE(c.destroyTask(started->id).ok());
  CHECK(f.logged("DestroyTask " + started->id + " force=1"));
  CHECK(f.logged("StopTask " + started->id + " timeout=5"));
}

TEST_CASE("StartTask errors keep the gRPC code and the RecoverableError detail") {
  Fixture f;
  auto opts = f.options();
  opts.skipProbeAndValidation = true;
  auto client = NomadClient::loadPlugin(opts);
  REQUIRE(client.ok());
  auto t = webTask();
  t.name = "fail";
  auto r = (*client)->startTask(t);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("FAILED_PRECONDITION") != std::string::npos);
  CHECK(r.error().message.find("no capacity") != std::string::npos);
  CHECK(r.error().message.find("[recoverable]") != std::string::npos);
}

TEST_CASE("a plugin that is not a driver, or not a plugin at all, fails the loader") {
  Fixture f;
  auto opts = f.options();
  opts.launch.setMagicCookie = false;
  opts.launch.unsetEnv = {"NOMAD_PLUGIN_MAGIC_COOKIE"};
  auto r = NomadClient::loadPlugin(opts);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("probe launch") != std::string::npos);
  CHECK(r.error().message.find("exited before we could connect") != std::string::npos);
}
