// Who can read a VM (issue 13, case 11): nothing of a task's run dir or
// snapshot dir may carry a group or other permission bit, whoever created it
// (the plugin, QEMU, the standby QEMU of a sleeping task), for a running and
// a sleeping task: an agent-less guest (QMP and qga sockets, guest RAM, VMM
// log) and a guest-agent task (agent.sock, console.log, scratch.ext4). Real
// QEMU (TCG) in a network namespace, as agent_integration_tests.
#include <sys/stat.h>

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "agent/agent.h"
#include "agent/run_dir.h"
#include "tests/agent/agent_test_support.h"
#include "tests/agent/integration_env.h"
#include "tests/err_text.h"

namespace s2z::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::EventLog;
using testing::IntegrationEnv;
using testing::waitUntil;

constexpr auto kIdle = 3s;
constexpr int kPort = 8080;  // the test guest's HTTP server

fs::path agentGuestDir() {
  if (const char* env = std::getenv("S2Z_AGENT_GUEST_DIR"); env && *env) return env;
  return S2Z_AGENT_GUEST_DIR;
}

fs::path rootfsImage() {
  if (const char* env = std::getenv("S2Z_ROOTFS_IMAGE"); env && *env) return env;
  return S2Z_ROOTFS_IMAGE;
}

AgentConfig configFor(const IntegrationEnv& env) {
  AgentConfig c;
  c.stateDir = env.stateDir();
  c.subnet = "10.89.0.0/24";
  c.idlePollInterval = 50ms;
  c.bpfPinRoot = env.pinRoot();
  c.standbyVmms = 4;
  return c;
}

InstanceSpec baseSpec(const IntegrationEnv& env, const std::string& taskId) {
  InstanceSpec s;
  s.taskId = taskId;
  s.name = taskId;
  s.binary = "/usr/bin/qemu-system-x86_64";
  s.memoryMib = 256;
  s.stdoutPath = env.stateDir() / (taskId + ".stdout");
  s.stderrPath = env.stateDir() / (taskId + ".stderr");
  std::ofstream(s.stdoutPath, std::ios::app).close();
  std::ofstream(s.stderrPath, std::ios::app).close();
  s.scaleToZero = true;
  s.idleTimeout = kIdle;
  s.sleepTier = SleepTier::kDeep;  // snapshot files are what is checked
  return s;
}

// The test guest: its own init, qemu-guest-agent on the qga port.
InstanceSpec plainSpec(const IntegrationEnv& env) {
  InstanceSpec s = baseSpec(env, "modes-plain");
  s.kernel = testing::guestDir() / "vmlinuz";
  s.initrd = testing::guestDir() / "initrd.img";
  s.cmdline = "console=ttyS0 quiet panic=-1";
  return s;
}

// The agent guest running a long sleep in the Debian test root.
InstanceSpec agentSpec(const IntegrationEnv& env) {
  InstanceSpec s = baseSpec(env, "modes-agent");
  s.kernel = agentGuestDir() / "vmlinuz";
  s.initrd = agentGuestDir() / "initrd.img";
  s.rootfs = rootfsImage();
  s.cmdline = "quiet panic=-1";
  s.scratchMib = 256;
  WorkloadSpec w;
  w.argv = {"/bin/sleep", "3600"};
  w.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  s.workload = w;
  return s;
}

struct Entry {
  fs::path path;
  unsigned mode = 0;  // permission bits (07777)
  char type = '?';    // d, f, s (socket), l, p, ...
};

char typeOf(mode_t m) {
  if (S_ISDIR(m)) return 'd';
  if (S_ISREG(m)) return 'f';
  if (S_ISSOCK(m)) return 's';
  if (S_ISLNK(m)) return 'l';
  if (S_ISFIFO(m)) return 'p';
  return '?';
}

// `dir` itself and everything below it, symlinks not followed (lstat).
std::vector<Entry> walk(const fs::path& dir) {
  std::vector<Entry> out;
  auto add = [&](const fs::path& p) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) return;  // gone meanwhile (a temp file)
    out.push_back({p, static_cast<unsigned>(st.st_mode & 07777), typeOf(st.st_mode)});
  };
  add(dir);
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    add(it->path());
  }
  return out;
}

std::string octal(unsigned mode) {
  std::ostringstream s;
  s << "0" << std::oct << mode;
  return s.str();
}

std::string listing(const std::vector<Entry>& entries) {
  std::string s;
  for (const auto& e : entries) {
    s += "  " + std::string(1, e.type) + " " + octal(e.mode) + " " + e.path.string() + "\n";
  }
  return s;
}

// Walks the instance's run dir (and its snapshot dir if that lives
// elsewhere), fails on any group/other bit, and checks that each of
// `expected` (names relative to the run dir) was there, so an empty walk
// cannot pass. `when` names the phase in messages.
void checkOwnerOnly(const InstanceRecord& rec, const std::vector<std::string>& expected,
                    const std::string& when) {
  auto entries = walk(rec.runDir);
  if (!rec.snapshotDir.empty() && rec.snapshotDir.string().rfind(rec.runDir.string(), 0) != 0) {
    auto more = walk(rec.snapshotDir);
    entries.insert(entries.end(), more.begin(), more.end());
  }
  MESSAGE(rec.spec.name << " " << when << ":\n" << listing(entries));
  for (const auto& e : entries) {
    const std::string what = when + ": " + e.path.string() + " is " + octal(e.mode) + " (" + e.type + ")";
    CHECK_MESSAGE((e.mode & 077) == 0, what);
  }
  for (const auto& name : expected) {
    fs::path p = rec.runDir / name;
    bool found = false;
    for (const auto& e : entries) found = found || e.path == p;
    CHECK_MESSAGE(found, when << ": expected " << p.string());
  }
  for (const auto& e : entries) {
    if (e.path == rec.runDir) CHECK(e.mode == 0700);
  }
}

unsigned modeOf(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 ? st.st_mode & 07777 : ~0u;
}

size_t count(const EventLog& log, const std::string& prefix) { return log.find(prefix).size(); }

}  // namespace

TEST_CASE("integration: run and snapshot dirs are owner-only, running and asleep") {
  if (!testing::guestAvailable()) {
    FAIL("test guest missing in " << testing::guestDir() << " (run scripts/build-guest.sh)");
  }
  const bool withAgent = fs::exists(agentGuestDir() / "vmlinuz") && fs::exists(rootfsImage());
  if (!withAgent) {
    MESSAGE("agent guest or test rootfs missing (" << agentGuestDir() << ", " << rootfsImage()
                                                    << "): only the agent-less task is checked");
  }
  IntegrationEnv env("modes");
  auto made = makeAgent(configFor(env));
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  std::unique_ptr<Agent> agent = std::move(*made);
  REQUIRE_MESSAGE(agent->status().scaleToZeroReady, agent->status().problem);

  // Shared parents: tasks/ and the log holder's bin/ owner-only.
  CHECK(modeOf(tasksDir(env.stateDir())) == 0700);
  CHECK(modeOf(env.stateDir() / "bin") == 0700);

  const std::vector<std::string> plainFiles = {"guest-ram", "qemu.log", "qmp.sock", "qga.sock",
                                               "instance.json"};
  const std::vector<std::string> agentFiles = {"guest-ram",    "qemu.log",    "qmp.sock",
                                               "agent.sock",   "console.log", "scratch.ext4",
                                               "instance.json"};
  // Running: whatever the start and QEMU created (its sockets included),
  // checked right after each start, well inside the idle timeout.
  EventLog plainEvents, agentEvents;
  auto plain = agent->start(plainSpec(env), plainEvents.sink());
  REQUIRE_MESSAGE(plain.ok(), s2z::tests::errText(plain));
  CHECK((*plain)->state() == InstanceState::kRunning);
  checkOwnerOnly((*plain)->record(), plainFiles, "running");
  // Its server up before it may sleep (requests keep it awake meanwhile), so
  // the wake below is answered by a booted guest.
  const std::string plainAddress = (*plain)->record().network.address;
  REQUIRE_MESSAGE(waitUntil([&] { return testing::httpGet(plainAddress, kPort, "/", 1s).status == 200; },
                            40s),
                  "the test guest never answered HTTP");
  std::shared_ptr<Instance> withWorkload;
  if (withAgent) {
    auto started = agent->start(agentSpec(env), agentEvents.sink());
    REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
    withWorkload = *started;
    CHECK(withWorkload->state() == InstanceState::kRunning);
    checkOwnerOnly(withWorkload->record(), agentFiles, "running");
  }

  // Asleep: the snapshot, and the standby QEMU's sockets created afresh.
  REQUIRE(waitUntil([&] { return count(plainEvents, "Sleeping") >= 1; }, kIdle + 30s));
  if (withWorkload) {
    REQUIRE(waitUntil([&] { return count(agentEvents, "Sleeping") >= 1; }, kIdle + 30s));
  }
  auto standbyUp = [&](const std::shared_ptr<Instance>& i, const fs::path& socket) {
    return waitUntil([&] {
      return i->state() == InstanceState::kSleeping && i->record().standby && fs::exists(socket);
    }, 15s);
  };
  auto plainRec = (*plain)->record();
  REQUIRE(standbyUp(*plain, plainRec.runDir / "qmp.sock"));
  plainRec = (*plain)->record();
  auto withSnapshot = [](std::vector<std::string> names, const InstanceRecord& r) {
    auto rel = fs::relative(r.snapshotDir, r.runDir).string();
    names.push_back(rel);
    names.push_back(rel + "/state");
    return names;
  };
  checkOwnerOnly(plainRec, withSnapshot(plainFiles, plainRec), "asleep");
  if (withWorkload) {
    auto rec = withWorkload->record();
    REQUIRE(standbyUp(withWorkload, rec.runDir / "agent.sock"));
    rec = withWorkload->record();
    checkOwnerOnly(rec, withSnapshot(agentFiles, rec), "asleep");
  }

  // Woken by a request: the restored QEMU (the standby) made nothing wider.
  auto reply = testing::httpGet(plainAddress, kPort, "/", 10s);
  CHECK_MESSAGE(reply.status == 200, reply.error);
  REQUIRE(waitUntil([&] { return (*plain)->state() == InstanceState::kRunning; }, 10s));
  checkOwnerOnly((*plain)->record(), withSnapshot(plainFiles, plainRec), "woken");

  REQUIRE((*plain)->destroy().ok());
  if (withWorkload) REQUIRE(withWorkload->destroy().ok());
}

}  // namespace s2z::agent
