// A stand-in `cloud-hypervisor` executable for the backend's contract tests:
// answers --version like the real binary and serves ChApiStandin on
// --api-socket path=<p>, so process spawning, socket waiting and fd passing
// are real. Test-only options (ignored by nothing: unknown options fail):
//   --fake-version X.Y         version to claim (default 45.0)
//   --fake-record FILE         append one JSON line per request to FILE
//   --fake-fail EP=STATUS:MSG  answer endpoint EP with STATUS and MSG
//   --fake-no-userfaultfd      OnDemand restores fail as without userfaultfd
//   --fake-power-button exits|stays|ignored
//                              after vm.power-button the guest powers off and
//                              the VMM exits (default) or stays, or nothing happens
//   --fake-hang EP             a request to EP that would succeed is recorded
//                              and never answered: the VMM hangs mid-operation
//                              until killed (repeatable)
//   --fake-listen-delay MS     the API socket appears only after MS ms (a slow
//                              or stuck VMM start)
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <thread>

#include "tests/cloud_hypervisor/ch_api_standin.h"

using s2z::tests::ch::ChApiStandin;
using s2z::tests::ch::InjectedFailure;
using s2z::tests::ch::RecordedRequest;
using s2z::tests::ch::StandinVm;

namespace {

int usage(const std::string& why) {
  std::fprintf(stderr, "fake cloud-hypervisor: %s\n", why.c_str());
  return 2;
}

void appendLine(const std::string& file, const std::string& line) {
  int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  std::string text = line + "\n";
  (void)!::write(fd, text.data(), text.size());  // O_APPEND: one write per line stays whole
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  std::string version = "45.0", socket, record;
  bool printVersion = false;
  bool userfaultfd = true;
  auto powerButton = StandinVm::PowerButton::kGuestOffVmmExits;
  std::vector<std::pair<std::string, InjectedFailure>> failures;
  std::set<std::string> hangs;
  unsigned listenDelayMs = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--version" || arg == "-V") {
      printVersion = true;
    } else if (arg == "--api-socket") {
      std::string v = next();
      if (v.rfind("path=", 0) != 0) return usage("--api-socket needs path=<socket>");
      socket = v.substr(5);
    } else if (arg == "--fake-version") {
      version = next();
    } else if (arg == "--fake-no-userfaultfd") {
      userfaultfd = false;
    } else if (arg == "--fake-power-button") {
      std::string v = next();
      if (v == "exits") powerButton = StandinVm::PowerButton::kGuestOffVmmExits;
      else if (v == "stays") powerButton = StandinVm::PowerButton::kGuestOffVmmStays;
      else if (v == "ignored") powerButton = StandinVm::PowerButton::kIgnored;
      else return usage("--fake-power-button exits|stays|ignored");
    } else if (arg == "--fake-hang") {
      hangs.insert(next());
    } else if (arg == "--fake-listen-delay") {
      listenDelayMs = static_cast<unsigned>(std::stoul(next()));
    } else if (arg == "--fake-record") {
      record = next();
    } else if (arg == "--fake-fail") {
      std::string v = next();
      size_t eq = v.find('='), colon = v.find(':');
      if (eq == std::string::npos || colon == std::string::npos || colon < eq) {
        return usage("--fake-fail EP=STATUS:MSG");
      }
      failures.push_back({v.substr(0, eq),
                          InjectedFailure{std::stoi(v.substr(eq + 1, colon - eq - 1)),
                                          v.substr(colon + 1)}});
    } else {
      return usage("unknown option " + arg);
    }
  }
  if (printVersion) {
    std::printf("cloud-hypervisor v%s\n", version.c_str());
    return 0;
  }
  if (socket.empty()) return usage("--api-socket path=<socket> is required");
  auto parsed = s2z::vmm::ch::parseChVersion(version);
  if (!parsed.ok()) return usage(parsed.error().message);

  std::this_thread::sleep_for(std::chrono::milliseconds(listenDelayMs));
  auto standin = ChApiStandin::listen(socket, *parsed);
  if (!standin.ok()) return usage(standin.error().describe());
  for (auto& [ep, f] : failures) (*standin)->vm().inject(ep, f);
  (*standin)->vm().setUserfaultfd(userfaultfd);
  (*standin)->vm().setPowerButton(powerButton);
  auto served = (*standin)->serve([&](const RecordedRequest& r) {
    if (!record.empty()) appendLine(record, r.toJson().dump());
    // Called before the answer is written: the client waits for good.
    if (hangs.count(r.endpoint) != 0 && r.status < 400) {
      for (;;) ::pause();
    }
  });
  if (!served.ok()) return usage(served.error().describe());
  return 0;
}
