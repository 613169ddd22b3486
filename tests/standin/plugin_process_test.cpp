// PluginProcess and killPlugin against small real programs (shell scripts)
// standing in for plugin binaries: environment, handshake, stdout/stderr
// handling and the kill timing follow go-plugin.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "standin/log_collector.h"
#include "standin/plugin_connection.h"
#include "standin/plugin_process.h"
#include "tests/err_text.h"

using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

struct ScriptDir {
  std::string path;
  ScriptDir() {
    char tmpl[] = "/tmp/s2z-standin-proc-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~ScriptDir() { std::filesystem::remove_all(path); }
  std::string script(const std::string& name, const std::string& body) {
    std::string file = path + "/" + name;
    std::ofstream(file) << "#!/bin/sh\n" << body;
    std::filesystem::permissions(file, std::filesystem::perms::owner_all);
    return file;
  }
};

// Checks the cookie like a go-plugin server, logs one hclog line, prints the
// handshake and one more stdout line, then waits.
const char* kGoodPlugin = R"(
if [ "$NOMAD_PLUGIN_MAGIC_COOKIE" != "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255" ]; then
  echo "This binary is a plugin. These are not meant to be executed directly." >&2
  exit 1
fi
echo "versions=$PLUGIN_PROTOCOL_VERSIONS min=$PLUGIN_MIN_PORT max=$PLUGIN_MAX_PORT" >&2
echo '{"@level":"info","@message":"plugin starting","@timestamp":"2024-05-01T10:00:00.123456Z"}' >&2
echo '{"@level":"info","@message":"bad stamp","@timestamp":"2024-05-01T10:00:00Z"}' >&2
echo "1|2|unix|/tmp/s2z-test-plugin.sock|grpc|"
echo "after handshake"
exec sleep 30
)";

}  // namespace

TEST_CASE("a plugin is launched with go-plugin's environment and its handshake parsed") {
  ScriptDir dir;
  LaunchOptions opts;
  opts.path = dir.script("good", kGoodPlugin);
  auto p = PluginProcess::launch(opts);
  REQUIRE_MESSAGE(p.ok(), s2z::tests::errText(p));
  CHECK((*p)->handshake().address == "/tmp/s2z-test-plugin.sock");
  CHECK((*p)->handshake().network == "unix");

  // stdout keeps being drained after the handshake; stderr lines are parsed.
  for (int i = 0; i < 100 && ((*p)->stdoutLines().size() < 2 || (*p)->stderrLines().size() < 3); ++i) {
    std::this_thread::sleep_for(20ms);
  }
  auto out = (*p)->stdoutLines();
  REQUIRE(out.size() == 2);
  CHECK(out[1] == "after handshake");
  auto err = (*p)->stderrLines();
  REQUIRE(err.size() == 3);
  CHECK(err[0].raw == "versions=2 min=10000 max=25000");
  CHECK_FALSE(err[0].isJson);
  CHECK(err[1].message == "plugin starting");
  CHECK((*p)->nonJsonLineCount() == 1);
  CHECK((*p)->logViolationCount() == 1);  // the 0-fraction-digit timestamp
  CHECK((*p)->running());
}

TEST_CASE("without the magic cookie the plugin refuses to run and says why") {
  ScriptDir dir;
  LaunchOptions opts;
  opts.path = dir.script("good", kGoodPlugin);
  opts.setMagicCookie = false;
  opts.unsetEnv = {kMagicCookieKey};
  auto p = PluginProcess::spawn(opts);
  REQUIRE(p.ok());
  auto hs = (*p)->awaitHandshake(5s);
  REQUIRE_FALSE(hs.ok());
  CHECK(hs.error().code == s2z::ErrorCode::kUnavailable);
  auto status = (*p)->waitExit(5s);
  REQUIRE(status.ok());
  CHECK(describeWaitStatus(*status) == "exit 1");
  CHECK((*p)->stderrText().find("This binary is a plugin") != std::string::npos);
}

TEST_CASE("bad handshakes and silent plugins fail the launch") {
  ScriptDir dir;
  LaunchOptions opts;
  opts.path = dir.script("netrpc", "echo '1|2|unix|/tmp/x|netrpc|'\nexec sleep 30\n");
  auto bad = PluginProcess::launch(opts);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("netrpc") != std::string::npos);

  opts.path = dir.script("silent", "exec sleep 30\n");
  opts.startTimeout = 300ms;
  auto silent = PluginProcess::launch(opts);
  REQUIRE_FALSE(silent.ok());
  CHECK(silent.error().code == s2z::ErrorCode::kTimeout);

  opts.path = dir.path + "/does-not-exist";
  auto missing = PluginProcess::spawn(opts);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().errnum == ENOENT);
}

TEST_CASE("kill without a Shutdown answer: wait the grace period, then SIGKILL") {
  ScriptDir dir;
  LaunchOptions opts;
  opts.path = dir.script("good", kGoodPlugin);
  auto p = PluginProcess::launch(opts);
  REQUIRE(p.ok());
  auto report = killPlugin(**p, nullptr, 300ms);
  CHECK(report.sigkilled);
  CHECK(report.timeToExit >= 300ms);
  CHECK(report.timeToExit < 2s);
  CHECK(describeWaitStatus(report.waitStatus) == "signal 9");
  CHECK_FALSE((*p)->running());
}

TEST_CASE("the log collector reads each FIFO like Nomad's logmon: one open, until the last writer closes") {
  ScriptDir dir;
  std::string out = dir.path + "/.web.stdout.fifo", err = dir.path + "/.web.stderr.fifo";
  REQUIRE(mkfifo(out.c_str(), 0600) == 0);
  REQUIRE(mkfifo(err.c_str(), 0600) == 0);
  auto logs = LogCollector::start(out, err, dir.path, "web");
  REQUIRE(logs.ok());
  auto waitFor = [&](auto pred) {  // pred runs until true, never again after
    for (int i = 0; i < 300; ++i, std::this_thread::sleep_for(10ms)) {
      if (pred()) return true;
    }
    return false;
  };
  // The reader's open blocks until a writer comes; a non-blocking writer
  // finds it waiting (no ENXIO).
  int first = -1;
  REQUIRE(waitFor([&] {
    first = open(out.c_str(), O_WRONLY | O_NONBLOCK);
    return first >= 0;
  }));
  int second = open(out.c_str(), O_WRONLY);
  REQUIRE(second >= 0);
  REQUIRE(write(first, "first writer\n", 13) == 13);
  close(first);  // another writer remains: no EOF
  REQUIRE(write(second, "second writer\n", 14) == 14);
  CHECK(waitFor([&] { return (*logs)->stdoutText().size() == 27; }));
  CHECK_FALSE((*logs)->stdoutState().eof);
  close(second);  // the last writer: EOF, and the reader is gone for good
  CHECK(waitFor([&] { return (*logs)->stdoutState().eof; }));
  int late = open(out.c_str(), O_WRONLY | O_NONBLOCK);
  CHECK(late < 0);
  CHECK(errno == ENXIO);  // a blocking open here would wait forever
  CHECK((*logs)->stdoutText() == "first writer\nsecond writer\n");
  // stderr never had a writer: its reader is still blocked in open(), and
  // stopping the collector must not hang on it.
  CHECK_FALSE((*logs)->stderrState().opened);
  auto stopAt = std::chrono::steady_clock::now();
  logs->reset();
  CHECK(std::chrono::steady_clock::now() - stopAt < 1s);
  std::ifstream file(dir.path + "/web.stdout.0");
  std::string content((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  CHECK(content == "first writer\nsecond writer\n");
}
