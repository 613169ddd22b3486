#include "tests/vmm/vm_net_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace s2z::vmm::testing {
namespace {

using Clock = std::chrono::steady_clock;

void run(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("command failed: " + cmd);
}

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

}  // namespace

HttpReply httpGet(const std::string& address, int port, const std::string& path,
                  std::chrono::milliseconds timeout) {
  HttpReply reply;
  auto deadline = Clock::now() + timeout;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    reply.error = std::string("connect: ") + std::strerror(errno);
    return reply;
  }
  pollfd pfd{fd.get(), POLLOUT, 0};
  if (::poll(&pfd, 1, msLeft(deadline)) <= 0) {
    reply.error = "connect timed out";
    return reply;
  }
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    reply.error = std::string("connect: ") + std::strerror(err);
    return reply;
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + address +
                        "\r\nConnection: close\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    reply.error = "send failed";
    return reply;
  }
  std::string raw;
  for (;;) {
    pollfd in{fd.get(), POLLIN, 0};
    if (::poll(&in, 1, msLeft(deadline)) <= 0) {
      reply.error = "read timed out";
      return reply;
    }
    char buf[4096];
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EAGAIN) continue;
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  if (raw.rfind("HTTP/1.", 0) != 0 || raw.size() < 12) {
    reply.error = "not HTTP: " + raw.substr(0, 40);
    return reply;
  }
  reply.status = std::atoi(raw.c_str() + 9);
  auto body = raw.find("\r\n\r\n");
  if (body != std::string::npos) reply.body = raw.substr(body + 4);
  return reply;
}

std::filesystem::path guestDir() {
  if (const char* env = std::getenv("S2Z_GUEST_DIR"); env != nullptr && *env != '\0') return env;
  return S2Z_GUEST_DIR;
}

bool guestAvailable() {
  return std::filesystem::exists(guestDir() / "vmlinuz") &&
         std::filesystem::exists(guestDir() / "initrd.img");
}

VmNet::VmNet() {
  static std::atomic<int> counter{0};
  int n = counter++;
  netns_ = "s2zt-vmm-" + std::to_string(::getpid()) + "-" + std::to_string(n);
  int subnet = 60 + n % 100;
  hostAddress_ = "10.89." + std::to_string(subnet) + ".1";
  vmAddress_ = "10.89." + std::to_string(subnet) + ".2";
  char mac[32];
  std::snprintf(mac, sizeof(mac), "52:54:00:89:%02x:02", subnet);
  mac_ = mac;
  try {
    run("ip netns add " + netns_);
    original_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    UniqueFd target(::open(("/var/run/netns/" + netns_).c_str(), O_RDONLY | O_CLOEXEC));
    if (!original_ || !target || ::setns(target.get(), CLONE_NEWNET) != 0) {
      throw std::runtime_error("enter netns " + netns_);
    }
    entered_ = true;
    // The tap is created in the netns this thread is in now.
    tap_.reset(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!tap_) throw std::runtime_error("open /dev/net/tun");
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, tapName_.c_str(), IFNAMSIZ - 1);
    if (::ioctl(tap_.get(), TUNSETIFF, &ifr) != 0) throw std::runtime_error("TUNSETIFF");
    run("ip link set lo up");
    run("ip link set " + tapName_ + " up");
    run("ip addr add " + hostAddress_ + "/32 dev " + tapName_);
    run("ip route add " + vmAddress_ + "/32 dev " + tapName_);
    run("ip neigh replace " + vmAddress_ + " lladdr " + mac_ + " dev " + tapName_ +
        " nud permanent");
    runDir_ = std::filesystem::temp_directory_path() / ("s2zt-vmm-run-" + netns_);
    std::filesystem::remove_all(runDir_);
    std::filesystem::create_directories(runDir_);
    console_.reset(::open(consoleLog().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!console_) throw std::runtime_error("open " + consoleLog().string());
  } catch (...) {
    cleanup();
    throw;
  }
}

VmNet::~VmNet() { cleanup(); }

void VmNet::cleanup() {
  // A test that failed mid-way may have left a QEMU behind: kill what runs from our dir.
  if (!runDir_.empty()) {
    for (pid_t pid : processesMentioning(runDir_.string())) ::kill(pid, SIGKILL);
  }
  tap_.reset();
  if (entered_) ::setns(original_.get(), CLONE_NEWNET);
  entered_ = false;
  if (!netns_.empty()) (void)std::system(("ip netns del " + netns_ + " 2>/dev/null").c_str());
  netns_.clear();
  if (!runDir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(runDir_, ec);
  }
  runDir_.clear();
}

VmConfig VmNet::config(const std::string& name) const {
  VmConfig c;
  c.name = name;
  c.runDir = runDir_;
  c.binary = "/usr/bin/qemu-system-x86_64";
  c.accelerator = Accelerator::kTcg;
  c.kernel = guestDir() / "vmlinuz";
  c.initrd = guestDir() / "initrd.img";
  c.cmdline = "console=ttyS0 quiet panic=-1 ip=" + vmAddress_ + "::" + hostAddress_ +
              ":255.255.255.255::eth0:off";
  c.vcpus = 1;
  c.memoryMib = 256;
  c.tapFd = tap_.get();
  c.tapName = tapName_;
  c.mac = mac_;
  c.consoleFd = console_.get();
  return c;
}

bool VmNet::waitHttp(std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    auto start = Clock::now();
    if (httpGet(vmAddress_, 8080, "/", std::chrono::milliseconds(400)).status == 200) return true;
    std::this_thread::sleep_until(start + std::chrono::milliseconds(100));
  }
  return false;
}

unsigned long counterOf(const VmNet& net) {
  auto r = httpGet(net.vmAddress(), 8080, "/counter", std::chrono::seconds(10));
  REQUIRE_MESSAGE(r.status == 200, r.error);
  return std::stoul(r.body);
}

}  // namespace s2z::vmm::testing
