// s2z-wake-bench: sleep/wake cycles through the real agent, against cold
// boots and a tap that is not held while the VM sleeps; prints one markdown
// table (or --json). Run as root; everything happens in its own netns, under
// a temp dir and its own bpffs pins, all removed at exit.
#include <sys/utsname.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "bench/bench_netns.h"
#include "bench/report.h"
#include "bench/tier_report.h"
#include "vmm/vmm.h"

#ifndef S2Z_GUEST_DIR
#define S2Z_GUEST_DIR ""
#endif
#ifndef S2Z_AGENT_GUEST_BUILD_DIR
#define S2Z_AGENT_GUEST_BUILD_DIR ""
#endif
#ifndef S2Z_ROOTFS_DIR
#define S2Z_ROOTFS_DIR ""
#endif

namespace s2z::bench {
namespace {

constexpr const char* kUsage =
    "usage: s2z-wake-bench [--cycles N] [--cold N] [--direct N] [--json] [--verbose]\n"
    "  --cycles N  measured held-tap wakes through the agent (default 20)\n"
    "  --cold N    cold boots through the agent (default 3)\n"
    "  --no-images skip the image task rows (registry pulls, conversions, image starts)\n"
    "  --direct N  wakes per mode with the tap held / not held, vmm direct (default 5)\n"
    "  --tiers N   measured wakes per sleep tier (light, light with its cache dropped, deep, deep + standby;\n"
    "              default 10, 0: none)\n"
    "  --density N tasks of 128 MiB asleep at once per tier (default 20, 0: none)\n"
    "  --plot FILE the sleep tiers as a PNG (gnuplot)\n"
    "  --json      machine-readable output instead of the markdown table\n"
    "Needs root, QEMU and the test guest (S2Z_GUEST_DIR, default " S2Z_GUEST_DIR ").\n";

struct Options {
  BenchConfig config;
  bool json = false;
  bool verbose = false;
  bool images = true;  // the image task rows (a registry, conversions, starts)
  std::string plot;    // PNG of the tier rows; empty: none
};

// Parses argv; nullopt (after printing why) on bad usage.
std::optional<Options> parse(int argc, char** argv) {
  Options o;
  auto count = [&](int& i, int& out) {
    if (i + 1 >= argc) return false;
    char* end = nullptr;
    long v = std::strtol(argv[++i], &end, 10);
    if (*end != '\0' || v < 0 || v > 10000) return false;
    out = static_cast<int>(v);
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool ok = true;
    if (a == "--cycles") ok = count(i, o.config.cycles) && o.config.cycles > 0;
    else if (a == "--cold") ok = count(i, o.config.coldRuns);
    else if (a == "--direct") ok = count(i, o.config.directCycles);
    else if (a == "--tiers") ok = count(i, o.config.tierCycles);
    else if (a == "--density") ok = count(i, o.config.densityTasks);
    else if (a == "--plot" && i + 1 < argc) o.plot = argv[++i];
    else if (a == "--json") o.json = true;
    else if (a == "--verbose") o.verbose = true;
    else if (a == "--no-images") o.images = false;
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "bad argument '%s'\n%s", a.c_str(), kUsage);
      return std::nullopt;
    }
  }
  const char* env = std::getenv("S2Z_GUEST_DIR");
  o.config.guestDir = env && *env ? env : S2Z_GUEST_DIR;
  o.config.agentGuestDir = S2Z_AGENT_GUEST_BUILD_DIR;
  const char* rootfsDir = std::getenv("S2Z_ROOTFS_DIR");
  o.config.rootfs = std::filesystem::path(rootfsDir && *rootfsDir ? rootfsDir : S2Z_ROOTFS_DIR) /
                    "debian-test.ext4";
  return o;
}

std::string hostDescription(const BenchConfig& c) {
  utsname u{};
  ::uname(&u);
  auto qemu = vmm::probeHypervisor(vmm::Hypervisor::kQemu, c.qemu);
  auto accel = vmm::detectAccelerator();
  return fmt::format("Linux {}, {} cores, QEMU {}, {}", u.release,
                     std::thread::hardware_concurrency(),
                     qemu.ok() ? qemu->version : std::string("?"),
                     vmm::acceleratorName(accel.accelerator));
}

// The temp work dir, removed with everything in it at scope exit.
struct WorkDir {
  std::filesystem::path path;
  ~WorkDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

int run(const Options& o, const std::string& commandLine) {
  const auto t0 = std::chrono::steady_clock::now();
  BenchConfig config = o.config;
  if (::geteuid() != 0) {
    std::fprintf(stderr, "s2z-wake-bench needs root (netns, taps, BPF)\n");
    return 2;
  }
  if (!std::filesystem::exists(config.guestDir / "vmlinuz") ||
      !std::filesystem::exists(config.guestDir / "initrd.img")) {
    std::fprintf(stderr, "no test guest in %s (scripts/build-guest.sh)\n",
                 config.guestDir.c_str());
    return 2;
  }
  std::string tmpl = "/tmp/s2z-bench-XXXXXX";
  WorkDir work{::mkdtemp(tmpl.data()) ? tmpl : ""};
  if (work.path.empty()) {
    std::perror("mkdtemp");
    return 1;
  }
  config.workDir = work.path;

  auto ns = BenchNetns::enter();
  if (!ns.ok()) {
    std::fprintf(stderr, "netns: %s\n", ns.error().describe().c_str());
    return 1;
  }
  BenchResults results;
  results.commandLine = commandLine;
  results.host = hostDescription(config);

  auto tc = measureTcCost(config.tcRepeat);
  if (tc.ok()) results.tc = *tc;
  else results.tcProblem = tc.error().describe();

  auto agent = runAgentScenarios(config);
  if (!agent.ok()) {
    std::fprintf(stderr, "agent scenarios failed: %s\n", agent.error().describe().c_str());
    return 1;
  }
  results.agent = std::move(*agent);
  if (config.directCycles > 0) {
    auto direct = runDirectScenarios(config);
    if (!direct.ok()) {
      std::fprintf(stderr, "direct scenarios failed: %s\n", direct.error().describe().c_str());
      return 1;
    }
    results.direct = std::move(*direct);
  }
  if (o.images) {
    auto images = runImageScenarios(config, (*ns)->name());
    if (!images.ok()) {
      std::fprintf(stderr, "image scenarios failed: %s\n", images.error().describe().c_str());
      return 1;
    }
    results.images = std::move(*images);
  }
  TierResults tiers;
  if (config.tierCycles > 0) {
    auto run = runTierScenarios(config);
    if (!run.ok()) {
      std::fprintf(stderr, "tier scenarios failed: %s\n", run.error().describe().c_str());
      return 1;
    }
    tiers = std::move(*run);
  }
  results.totalSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Summary cold;
  {
    std::vector<double> ms;
    for (const auto& s : results.agent.colds) ms.push_back(s.ms);
    cold = summarize(ms);
  }
  std::cout << (o.json ? jsonReport(results, config) : markdownReport(results, config));
  if (!o.json && config.tierCycles > 0) {
    std::cout << tierTable(tiers, cold);
    for (const auto& f : tiers.failures) std::cout << "\n- tier request failed: " << f;
  }
  if (!o.plot.empty() && config.tierCycles > 0) {
    if (auto plotted = plotTiers(tiers, cold, o.plot); !plotted.ok()) {
      std::fprintf(stderr, "plot: %s\n", plotted.error().describe().c_str());
    }
  }
  return 0;
}

}  // namespace
}  // namespace s2z::bench

int main(int argc, char** argv) {
  // Progress goes to stderr; stdout carries only the table or the JSON.
  spdlog::set_default_logger(spdlog::stderr_color_mt("s2z-wake-bench"));
  auto options = s2z::bench::parse(argc, argv);
  if (!options) return 2;
  spdlog::set_level(options->verbose ? spdlog::level::debug : spdlog::level::info);
  std::string commandLine = "sudo s2z-wake-bench";
  for (int i = 1; i < argc; ++i) commandLine += std::string(" ") + argv[i];
  return s2z::bench::run(*options, commandLine);
}
