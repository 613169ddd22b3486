// s2z-group-bench: wake latency of a VM task in Nomad's group network
// (network { mode = "bridge" }: the alloc's netns made by Debian's CNI
// plugins from the client's conflist, the VM joined to eth0 by TC
// redirects) beside the same task in host networking, per sleep tier. The
// same agent, guest and idle timeout for every row; each cycle waits for
// "Sleeping", then times one GET from the stand-in host: to
// host_ip:host_port (portmap) in the group network, to the VM's address in
// host networking. Prints a markdown table. Run as root; everything happens
// in namespaces it creates and removes (the CNI tests' fixture).
//
// A third pair of rows measures the routed alternative for Consul Connect
// (agent/README.md, "Consul Connect") before it is built: the VM on a
// routed /30 inside the alloc's netns, behind a Connect sidecar there. It
// is laid out with what exists: a second agent whose threads live in the
// alloc's netns runs the task with host networking, which in that netns is
// exactly the routed layout (the tap and its /30 gateway in the netns, the
// BPF classifier on the tap). socat plays the sidecar (Envoy's inbound
// listener on alloc_ip:21000 forwarding to local_service_address = the
// VM); the timed GET goes from the stand-in host to the sidecar, so a wake
// is started by the sidecar's connection to the sleeping VM.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/agent.h"
#include "agent/netns.h"
#include "bpf/kernel_scale_to_zero.h"
#include "common/unique_fd.h"
#include "bench/event_log.h"
#include "bench/stats.h"
#include "tests/agent/integration_env.h"
#include "tests/cni/nomad_bridge.h"
#include "tests/cni/stand_in_host.h"

namespace s2z::bench {
namespace {

using namespace std::chrono_literals;
using agent::testing::httpGet;
using cni_test::kNodeAddress;

constexpr int kTo = 8080;         // the test guest serves 8080
constexpr int kHostPort = 28080;  // the allocated host port
constexpr auto kIdle = 2s;
constexpr int kSidecarPort = 21000;                    // the sidecar's inbound listener
constexpr const char* kRoutedSubnet = "169.254.254.0/30";  // the tap holds .1, the VM .2
constexpr const char* kRoutedVm = "169.254.254.2";

// One GET to address:port from wherever the rows' client stands.
using Getter = std::function<agent::testing::HttpResult(const std::string& address, int port)>;
agent::testing::HttpResult directGet(const std::string& address, int port) { return httpGet(address, port, "/", 10s); }

struct Row {
  std::string network, tier;
  std::vector<double> requestMs, agentWakeMs;
  unsigned retransmits = 0, answered = 0;
  std::vector<std::string> failures;
};

bool waitHttp(const Getter& get, const std::string& address, int port, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (get(address, port).status == 200) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Boots `spec`, then `cycles` times: sleep, one timed request to address:port.
Result<Row> measure(agent::Agent& agent, const agent::InstanceSpec& spec, const std::string& address, int port,
                    unsigned cycles, const Getter& get = directGet) {
  Row row;
  EventLog events;
  auto started = agent.start(spec, events.sink());
  if (!started.ok()) return started.error().wrap("start " + spec.taskId);
  auto inst = *started;
  const std::string target = address.empty() ? inst->record().network.address : address;
  size_t from = 0;
  if (!waitHttp(get, target, port, 60s)) {
    row.failures.push_back("never served on " + target + ":" + std::to_string(port));
    cycles = 0;
  }
  for (unsigned i = 0; i < cycles; ++i) {
    if (!events.waitFor("Sleeping", from, kIdle + 20s, &from)) {
      row.failures.push_back("no Sleeping event in cycle " + std::to_string(i + 1));
      break;
    }
    auto r = get(target, port);
    auto woken = events.waitFor("Woken", from, 5s, &from);
    row.retransmits += r.retransmits;
    if (r.status != 200) {
      row.failures.push_back("cycle " + std::to_string(i + 1) + ": " + (r.error.empty() ? "no 200" : r.error));
      continue;
    }
    ++row.answered;
    row.requestMs.push_back(r.totalMs);
    if (woken && woken->annotations.count("wake_ms")) row.agentWakeMs.push_back(std::stod(woken->annotations.at("wake_ms")));
  }
  (void)inst->stop(2s, 0);
  if (auto destroyed = inst->destroy(); !destroyed.ok()) row.failures.push_back(destroyed.error().describe());
  agent.forget(spec.taskId);
  return row;
}

agent::InstanceSpec taskSpec(const std::filesystem::path& stateDir, const std::string& id, agent::SleepTier tier) {
  auto spec = agent::testing::testGuestSpec(stateDir, id);
  spec.scaleToZero = true;
  spec.idleTimeout = kIdle;
  spec.sleepTier = tier;
  return spec;
}

// socat as the Connect sidecar, in the calling thread's netns: it listens
// on listen:21000 and forwards each connection to the VM's 8080, as Envoy's
// public listener forwards to local_service_address. Ended with the object.
class SidecarProxy {
 public:
  explicit SidecarProxy(const std::string& listen) {
    const std::string from = "TCP-LISTEN:" + std::to_string(kSidecarPort) + ",bind=" + listen + ",fork,reuseaddr";
    const std::string to = std::string("TCP:") + kRoutedVm + ":" + std::to_string(kTo);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/usr/bin/socat", "socat", from.c_str(), to.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~SidecarProxy() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  SidecarProxy(const SidecarProxy&) = delete;
  SidecarProxy& operator=(const SidecarProxy&) = delete;
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// The routed rows, on a thread inside the alloc's netns (see the top of the
// file); `fromHost` makes the timed requests from the stand-in host.
Result<std::vector<Row>> measureRouted(const agent::testing::IntegrationEnv& env, const std::string& allocAddress,
                                       const std::string& tag, unsigned cycles, const Getter& fromHost) {
  agent::AgentConfig config;
  config.stateDir = env.stateDir() / "routed";
  config.subnet = kRoutedSubnet;
  config.idlePollInterval = 50ms;
  config.bpfPinRoot = env.pinRoot() / "routed";
  std::vector<Row> rows;
  {
    auto made = agent::makeAgent(config);
    if (!made.ok()) return made.error().wrap("routed agent");
    SidecarProxy sidecar(allocAddress);
    if (!sidecar.running()) return makeError(ErrorCode::kSystem, "socat did not start");
    for (auto tier : {agent::SleepTier::kLight, agent::SleepTier::kDeep}) {
      auto spec = taskSpec(env.stateDir(), std::string("bench-routed-") + agent::sleepTierName(tier) + "-" + tag, tier);
      // A request's SYN retransmits include the sidecar's connection to the
      // VM (counted in the alloc's netns, where this thread is): its SYN
      // must wait in the tap, not be lost, while the VM wakes.
      Getter throughSidecar = [&](const std::string& address, int port) {
        auto before = agent::testing::tcpRetransCounters();
        auto r = fromHost(address, port);
        auto after = agent::testing::tcpRetransCounters();
        r.retransmits += static_cast<unsigned>(after.synRetrans - before.synRetrans);
        return r;
      };
      auto row = measure(**made, spec, allocAddress, kSidecarPort, cycles, throughSidecar);
      if (!row.ok()) return row.error();
      row->network = "routed prototype (sidecar on alloc_ip:21000 → VM)";
      row->tier = agent::sleepTierName(tier);
      rows.push_back(std::move(*row));
    }
  }
  (void)bpf::KernelScaleToZero::removePins(config.bpfPinRoot);
  return rows;
}

std::string ms(double v) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(1);
  out << v;
  return out.str();
}

int run(unsigned cycles) {
  if (!agent::testing::guestAvailable()) {
    std::cerr << "s2z-group-bench: test guest missing in " << agent::testing::guestDir()
              << " (run scripts/build-guest.sh)\n";
    return 1;
  }
  agent::testing::IntegrationEnv env("grpbench");
  if (auto node = cni_test::addNodeAddress(); !node.ok()) {
    std::cerr << "s2z-group-bench: " << node.error().describe() << "\n";
    return 1;
  }
  const std::string tag = std::to_string(::getpid());
  auto alloc = cni_test::CniAlloc::add("bench-" + tag, "s2zb-grp-" + tag, {{kHostPort, kTo, kNodeAddress}},
                                       env.stateDir().string() + "/cni");
  if (!alloc.ok()) {
    std::cerr << "s2z-group-bench: CNI ADD: " << alloc.error().describe() << "\n";
    return 1;
  }
  agent::AgentConfig config;
  config.stateDir = env.stateDir();
  config.subnet = "10.89.0.0/24";
  config.idlePollInterval = 50ms;
  config.bpfPinRoot = env.pinRoot();
  auto made = agent::makeAgent(config);
  if (!made.ok()) {
    std::cerr << "s2z-group-bench: " << made.error().describe() << "\n";
    return 1;
  }
  std::vector<Row> rows;
  for (auto tier : {agent::SleepTier::kLight, agent::SleepTier::kDeep}) {
    for (bool group : {false, true}) {
      const std::string id = std::string("bench-") + (group ? "group-" : "host-") + agent::sleepTierName(tier) + "-" + tag;
      auto spec = taskSpec(env.stateDir(), id, tier);
      if (group) spec.group.netnsPath = (*alloc)->netnsPath();
      auto row = group ? measure(**made, spec, kNodeAddress, kHostPort, cycles) : measure(**made, spec, "", kTo, cycles);
      if (!row.ok()) {
        std::cerr << "s2z-group-bench: " << row.error().describe() << "\n";
        return 1;
      }
      row->network = group ? "group (bridge, host_ip:host_port)" : "host (VM address)";
      row->tier = agent::sleepTierName(tier);
      rows.push_back(std::move(*row));
    }
  }
  // The routed rows: the client stays in the stand-in host's netns.
  auto allocNs = agent::NetnsHandle::open((*alloc)->netnsPath());
  UniqueFd hostNs(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!allocNs.ok() || !hostNs) {
    std::cerr << "s2z-group-bench: cannot open the alloc's or the host's netns\n";
    return 1;
  }
  Getter fromHost = [&](const std::string& address, int port) {
    agent::testing::HttpResult r;
    std::thread client([&] {
      if (::setns(hostNs.get(), CLONE_NEWNET) == 0) {
        r = httpGet(address, port, "/", 10s);
      } else {
        r.error = "setns to the stand-in host";
      }
    });
    client.join();
    return r;
  };
  auto routed = allocNs->run([&] { return measureRouted(env, (*alloc)->address(), tag, cycles, fromHost); });
  if (!routed.ok()) {
    std::cerr << "s2z-group-bench: " << routed.error().describe() << "\n";
    return 1;
  }
  for (auto& row : *routed) rows.push_back(std::move(row));

  std::cout << "| network | tier | wakes answered | wake median / p95 (ms, connect → full response) | agent wake_ms "
               "median | SYN/TCP retransmits |\n|---|---|---|---|---|---|\n";
  bool failed = false;
  for (const auto& r : rows) {
    Summary request = summarize(r.requestMs), agentWake = summarize(r.agentWakeMs);
    std::cout << "| " << r.network << " | " << r.tier << " | " << r.answered << "/" << cycles << " | "
              << ms(request.median) << " / " << ms(request.p95) << " | " << ms(agentWake.median) << " | "
              << r.retransmits << " |\n";
    for (const auto& f : r.failures) std::cout << "\n- " << r.network << ", " << r.tier << ": " << f;
    failed = failed || !r.failures.empty();
  }
  std::cout << "\n";
  return failed ? 2 : 0;
}

}  // namespace
}  // namespace s2z::bench

int main(int argc, char** argv) {
  unsigned cycles = 10;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--cycles" && i + 1 < argc) {
      cycles = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      std::cerr << "usage: s2z-group-bench [--cycles N]   (N measured wakes per row, default 10)\n";
      return a == "--help" ? 0 : 1;
    }
  }
  if (cycles == 0) {
    std::cerr << "s2z-group-bench: --cycles must be at least 1\n";
    return 1;
  }
  // The table alone on stdout; the agent's log goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("s2z-group-bench"));
  return s2z::bench::run(cycles);
}
