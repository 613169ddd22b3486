#include "tests/cloud_hypervisor/ch_test_env.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "vmm/vmm_process.h"

namespace s2z::tests::ch {
namespace fs = std::filesystem;
namespace {

std::atomic<int> counter{0};

int run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

}  // namespace

NetnsTap::NetnsTap() {
  int n = counter++;
  netns_ = "s2zt-ch-" + std::to_string(::getpid()) + "-" + std::to_string(n);
  tapName_ = "s2zch" + std::to_string(n);
  REQUIRE(run("ip netns add " + netns_) == 0);
  // The tap is created from a thread that joined the namespace, so it lives
  // there (and vanishes with it); the fd works from any thread.
  int tapFd = -1;
  std::string err;
  std::thread creator([&] {
    UniqueFd ns(::open(("/var/run/netns/" + netns_).c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns || ::unshare(CLONE_FS) != 0 || ::setns(ns.get(), CLONE_NEWNET) != 0) {
      err = std::string("enter netns: ") + std::strerror(errno);
      return;
    }
    int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      err = std::string("open /dev/net/tun: ") + std::strerror(errno);
      return;
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    std::strncpy(ifr.ifr_name, tapName_.c_str(), IFNAMSIZ - 1);
    if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
      err = std::string("TUNSETIFF: ") + std::strerror(errno);
      ::close(fd);
      return;
    }
    tapFd = fd;
  });
  creator.join();
  REQUIRE_MESSAGE(tapFd >= 0, err);
  fd_.reset(tapFd);
}

NetnsTap::~NetnsTap() {
  fd_.reset();
  run("ip netns del " + netns_);
}

ChTestEnv::ChTestEnv(const std::string& version, const std::vector<std::string>& extraArgs)
    : version_(version) {
  char tmpl[] = "/tmp/s2zt-ch-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  dir_ = tmpl;
  setFakeArgs(extraArgs);
  const auto log = dir_ / "console.log";
  console_.reset(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  REQUIRE(console_.valid());
}

void ChTestEnv::setFakeArgs(const std::vector<std::string>& extraArgs) {
  // Written aside and renamed: a VMM starting meanwhile never runs half a script.
  const auto temp = dir_ / "cloud-hypervisor.new";
  std::ofstream script(temp);
  script << "#!/bin/sh\nexec '" << S2Z_FAKE_CH << "' --fake-version " << version_
         << " --fake-record '" << (dir_ / "requests.jsonl").string() << "'";
  for (const auto& a : extraArgs) script << " " << a;
  script << " \"$@\"\n";
  script.close();
  REQUIRE(script.good());
  fs::permissions(temp, fs::perms::owner_all);
  fs::rename(temp, binary());
}

ChTestEnv::~ChTestEnv() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

vmm::VmConfig ChTestEnv::config(int tapFd) const {
  vmm::VmConfig c;
  c.name = "ch-test";
  c.runDir = dir_;
  c.binary = binary();
  c.kernel = dir_ / "vmlinuz";
  c.initrd = dir_ / "initrd.img";
  c.cmdline = "console=ttyS0 quiet";
  c.vcpus = 1;
  c.memoryMib = 128;
  c.tapFd = tapFd;
  c.tapName = "s2zch";
  c.mac = "52:54:00:12:34:56";
  c.consoleFd = console_.get();
  return c;
}

std::string ChTestEnv::consoleText() const {
  std::ifstream in(dir_ / "console.log");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<RecordedRequest> ChTestEnv::requests() const {
  std::vector<RecordedRequest> out;
  std::ifstream in(dir_ / "requests.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(RecordedRequest::fromJson(nlohmann::json::parse(line)));
  }
  return out;
}

std::vector<std::string> ChTestEnv::endpoints() const {
  std::vector<std::string> out;
  for (const auto& r : requests()) out.push_back(r.endpoint);
  return out;
}

bool processAlive(const vmm::ProcessIdentity& id) {
  auto start = vmm::processStartTime(id.pid);
  if (!start.ok() || *start != id.startTime) return false;
  std::ifstream stat("/proc/" + std::to_string(id.pid) + "/stat");
  std::string pid, comm, state;
  stat >> pid >> comm >> state;
  return state != "Z";
}

std::vector<pid_t> childProcesses() {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == self) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

}  // namespace s2z::tests::ch
