#include "tests/reliability/reliability_support.h"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/agent_task_helpers.h"
#include "common/proc_cmdline.h"
#include "tests/reliability/inventory.h"
#include "tests/err_text.h"

namespace s2z::reliability {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using integration::runCommand;

const char* const kCheckedServer = R"PY(
import binascii, random, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080))
s.listen(256)
print("serving", flush=True)
n = 0
while True:
    c, _ = s.accept()
    try:
        c.recv(4096)
        n += 1
        payload = random.Random(n).randbytes(65536 - 20)
        body = b"%010d %08x\n" % (n, binascii.crc32(payload)) + payload
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 65536\r\n\r\n" + body)
    except OSError as e:
        print("request %d: %s" % (n, e), flush=True)
    c.close()
)PY";

uint32_t crc32(const std::string& data, size_t offset) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = offset; i < data.size(); ++i) {
    crc = table[(crc ^ static_cast<uint8_t>(data[i])) & 0xFF] ^ (crc >> 8);
  }
  return crc ^ 0xFFFFFFFFu;
}

CheckedReply checkReply(const integration::HttpReply& reply) {
  CheckedReply r;
  if (reply.status != 200) {
    r.why = "status " + std::to_string(reply.status) + (reply.error.empty() ? "" : " (" + reply.error + ")");
    return r;
  }
  const std::string& b = reply.body;
  if (b.size() >= 20 && b[10] == ' ' && b[19] == '\n') {
    r.counter = std::strtol(b.substr(0, 10).c_str(), nullptr, 10);
  }
  if (b.size() != kBodyBytes) {
    r.why = "body " + std::to_string(b.size()) + " bytes, want " + std::to_string(kBodyBytes) +
            (reply.error.empty() ? "" : " (" + reply.error + ")");
    return r;
  }
  if (r.counter < 0) {
    r.why = "malformed first line";
    return r;
  }
  uint32_t want = static_cast<uint32_t>(std::strtoul(b.substr(11, 8).c_str(), nullptr, 16));
  uint32_t got = crc32(b, 20);
  if (got != want) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "crc32 %08x, the guest says %08x", got, want);
    r.why = buf;
    return r;
  }
  r.ok = true;
  return r;
}

ReliabilityEnv::ReliabilityEnv() {
  // 10.89.100-199: not the integration tests' 200-249 nor the default 0.
  // A subnet no s2z_addr entry uses: the map is pinned for the host, and a
  // test that died before DestroyTask (here or in an earlier run) leaves its
  // entry behind; the leak inventory would count it as ours.
  static int next = 0;
  for (int tries = 0; tries < 100; ++tries) {
    int octet = 100 + (static_cast<int>(getpid()) + next++) % 100;
    prefix_ = "10.89." + std::to_string(octet) + ".";
    auto stale = addrMapKeysIn(prefix_);
    if (stale.empty()) break;
    MESSAGE("subnet " << prefix_ << "0/24 skipped: s2z_addr holds " << stale.front() << " from an earlier test");
  }
  // Filler links so the plugin's tap is not ifindex 2 like every other test's.
  int pairs = 2 + static_cast<int>(getpid()) % 12;
  for (int i = 0; i < pairs; ++i) {
    std::string a = "rlf" + std::to_string(i);
    auto r = runCommand({"ip", "-n", env_.netnsName(), "link", "add", a, "type", "veth", "peer",
                         "name", a + "p"});
    if (r.exitCode != 0) throw std::runtime_error("filler veth: " + r.output);
  }
}

std::unique_ptr<standin::NomadClient> ReliabilityEnv::loadPlugin() const {
  return load(env_.clientOptions());
}

std::unique_ptr<standin::NomadClient> ReliabilityEnv::loadFailpointPlugin(const std::string& failpoint) const {
  auto opts = env_.clientOptions();
  opts.launch.path = S2Z_FAILPOINT_PLUGIN_PATH;
  if (!failpoint.empty()) opts.launch.extraEnv["S2Z_FAILPOINT"] = failpoint;
  return load(std::move(opts));
}

std::unique_ptr<standin::NomadClient> ReliabilityEnv::load(standin::ClientOptions opts) const {
  opts.skipProbeAndValidation = true;
  opts.pluginConfig["subnet"] = prefix_ + "0/24";
  // These cases are about snapshots, restores and standbys: deep sleep, a
  // standby for each (the tiers' own tests cover light sleep).
  opts.pluginConfig["sleep"] = "deep";
  opts.pluginConfig["standby_vmms"] = 4;
  auto loaded = standin::NomadClient::loadPlugin(opts);
  REQUIRE_MESSAGE(loaded.ok(), s2z::tests::errText(loaded));
  REQUIRE((*loaded)->waitForFingerprint(30s));
  // gRPC's sync server keeps 1 to 2 idle polling threads: it starts with 1,
  // and ends with 2 once streams (a task's WaitTask, TaskStats) have run
  // beside the long-lived ones. Concurrent calls here bring it to that
  // steady state, so the thread count of a baseline is the one a task
  // leaves when it leaks nothing.
  std::vector<std::thread> callers;
  for (int i = 0; i < 6; ++i) {
    callers.emplace_back([&c = **loaded] {
      for (int k = 0; k < 20; ++k) (void)c.capabilities();
    });
  }
  for (auto& th : callers) th.join();
  std::this_thread::sleep_for(1s);
  return std::move(*loaded);
}

std::optional<TaskRecord> readTaskRecord(const integration::TestEnv& env) {
  std::error_code ec;
  for (const auto& dir : fs::directory_iterator(fs::path(env.stateDir()) / "tasks", ec)) {
    std::ifstream in(dir.path() / "instance.json");
    if (!in) continue;
    auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) continue;  // never half-written (rename), but be safe
    TaskRecord r;
    r.state = j.value("state", 0);
    if (j.contains("vmm")) r.vmmPid = j["vmm"].value("pid", 0);
    r.standby = j.value("standby", false);
    r.runDir = j.value("runDir", "");
    r.snapshotDir = j.value("snapshotDir", "");
    return r;
  }
  return std::nullopt;
}

bool isQemu(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm.rfind("qemu-system", 0) == 0;
}

std::vector<pid_t> qemuPids(const integration::TestEnv& env) {
  std::vector<pid_t> out;
  for (int pid : env.pids()) {
    if (!isQemu(pid)) continue;
    // A VM, not the fingerprint's `qemu-system-x86_64 --version` probe.
    if (processCommandLine(pid).find("memory-backend-file") != std::string::npos) out.push_back(pid);
  }
  return out;
}

std::optional<pid_t> liveVmmPid(const integration::TestEnv& env) {
  auto rec = readTaskRecord(env);
  if (!rec || rec->vmmPid <= 0 || !isQemu(rec->vmmPid)) return std::nullopt;
  return rec->vmmPid;
}

standin::StartedTask startCheckedServer(standin::NomadClient& c, const integration::TestEnv& env,
                                        const std::string& idleTimeout, const std::string& moreScaleToZero) {
  auto started = c.startTask(integration::agentTask(
      "python3", {"-u", "-c", kCheckedServer}, "",
      "  scale_to_zero: { enabled: true, idle_timeout: \"" + idleTimeout + "\"" +
          (moreScaleToZero.empty() ? "" : ", " + moreScaleToZero) + " }\n"));
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  REQUIRE_MESSAGE(env.waitHttp(started->networkAddr, 8080, 90s),
                  "stdout: " << c.taskStdout(started->id) << "\nstderr: " << c.taskStderr(started->id));
  return *started;
}

std::vector<standin::TaskEventRecord> eventsStarting(const standin::NomadClient& c,
                                                     const std::string& allocId,
                                                     const std::string& prefix) {
  std::vector<standin::TaskEventRecord> out;
  for (const auto& e : c.events()) {
    if (e.allocId == allocId && e.message.rfind(prefix, 0) == 0) out.push_back(e);
  }
  return out;
}

std::string describeEvents(const standin::NomadClient& c, const std::string& allocId) {
  std::ostringstream out;
  for (const auto& e : c.events()) {
    if (e.allocId != allocId) continue;
    out << "  event: " << e.message;
    for (const auto& [k, v] : e.annotations) out << " " << k << "=" << v;
    out << "\n";
  }
  return out.str();
}

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace s2z::reliability
