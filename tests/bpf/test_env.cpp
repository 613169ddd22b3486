#include "tests/bpf/test_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "bpf/cgroup2.h"
#include "bpf/health_check_hooks.h"
#include "bpf/kernel_scale_to_zero.h"
#include "tests/err_text.h"

namespace s2z::bpf::test {
namespace {

namespace fs = std::filesystem;

std::string uniqueName(const std::string& prefix, const std::string& tag) {
  return prefix + std::to_string(::getpid()) + "-" + tag;
}

void mustSh(const std::string& command) {
  INFO("command: " << command);
  REQUIRE(sh(command) == 0);
}

uint32_t ifindexIn(const TestNetns& ns, const std::string& dev) {
  ns.enter();  // if_nametoindex asks the calling thread's namespace
  uint32_t idx = if_nametoindex(dev.c_str());
  REQUIRE_MESSAGE(idx != 0, "no device " << dev << " in " << ns.name());
  return idx;
}

}  // namespace

int sh(const std::string& command) {
  int status = std::system((command + " >/dev/null 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TestNetns::TestNetns(const std::string& tag) : name_(uniqueName("s2zt-", tag)) {
  original_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  REQUIRE(original_.valid());
  mustSh("ip netns add " + name_);
  if (sh("ip -n " + name_ + " link set lo up") != 0 ||
      sh("ip netns exec " + name_ +
         " sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1") != 0) {
    sh("ip netns del " + name_);
    FAIL("set up netns " << name_);
  }
  enter();
}

void TestNetns::enter() const {
  UniqueFd fd(::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd.valid());
  REQUIRE(::setns(fd.get(), CLONE_NEWNET) == 0);
}

TestNetns::~TestNetns() {
  ::setns(original_.get(), CLONE_NEWNET);
  sh("ip netns del " + name_);
}

TestTap::TestTap(const TestNetns& ns) {
  ns.enter();  // the tap is created in the namespace of the opener
  fd_.reset(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  REQUIRE(fd_.valid());
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, "s2ztap0", IFNAMSIZ - 1);
  REQUIRE(::ioctl(fd_.get(), TUNSETIFF, &ifr) == 0);
  const std::string in = "ip -n " + ns.name() + " ";
  mustSh(in + "addr add " + kHostAddr + "/24 dev s2ztap0");
  mustSh(in + "link set s2ztap0 up");
  mustSh(in + "neigh replace " + kVmAddr + " lladdr 52:54:00:12:34:56 dev s2ztap0 nud permanent");
  ifindex_ = ifindexIn(ns, "s2ztap0");
}

std::vector<std::vector<uint8_t>> TestTap::drainFrames() const {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint8_t> buf(65536);
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n <= 0) break;
    frames.emplace_back(buf.begin(), buf.begin() + n);
  }
  return frames;
}

TestVethVm::TestVethVm(const TestNetns& host, const TestNetns& vm) {
  const std::string in = "ip -n " + host.name() + " ";
  const std::string inVm = "ip -n " + vm.name() + " ";
  mustSh(in + "link add s2zveth0 type veth peer name eth0 netns " + vm.name());
  mustSh(in + "addr add 10.89.1.1/24 dev s2zveth0");
  mustSh(in + "link set s2zveth0 up");
  mustSh(inVm + "link set eth0 address 52:54:00:00:00:02");
  mustSh(inVm + "addr add " + kVmAddr + "/24 dev eth0");
  mustSh(inVm + "link set eth0 up");
  // Both directions resolved up front: no ARP on the counted device.
  mustSh(in + "neigh replace " + kVmAddr + " lladdr 52:54:00:00:00:02 dev s2zveth0 nud permanent");
  mustSh(inVm + "neigh replace 10.89.1.1 lladdr $(ip -n " + host.name() +
         " -br link show s2zveth0 | awk '{print $3}') dev eth0 nud permanent");
  hostIfindex_ = ifindexIn(host, "s2zveth0");
}

TestCgroup::TestCgroup(const std::string& tag) : relPath_("/" + uniqueName("s2z-test-", tag)) {
  auto mount = cgroup2MountPoint();
  REQUIRE_MESSAGE(mount.ok(), s2z::tests::errText(mount));
  dir_ = *mount / relPath_.substr(1);
  REQUIRE(fs::create_directory(dir_));
}

TestCgroup::~TestCgroup() {
  // Kill leftovers (a child that outlived a failed test) so rmdir works.
  std::ifstream procs(dir_ / "cgroup.procs");
  for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
  for (int i = 0; i < 50 && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

TestPinRoot::TestPinRoot(const std::string& tag)
    : path_(fs::path("/sys/fs/bpf") / uniqueName("s2z-test-", tag)) {}

TestPinRoot::~TestPinRoot() {
  auto detached = KernelHealthCheckHooks::detachPinned(path_);
  if (!detached.ok()) MESSAGE("cleanup: " << detached.error().describe());
  std::error_code ec;
  fs::remove_all(path_, ec);
}

int runChild(const TestCgroup* cgroup, const std::function<int()>& fn) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::alarm(20);
    if (cgroup != nullptr) {
      std::ofstream procs(cgroup->dir() / "cgroup.procs");
      procs << 0 << std::flush;  // "0" moves the writer itself
      if (!procs) ::_exit(100);
    }
    ::_exit(fn());
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void sendUdp(const char* addr, uint16_t port, int count, size_t payload) {
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  REQUIRE(inet_pton(AF_INET, addr, &dst.sin_addr) == 1);
  std::vector<char> data(payload, 'x');
  for (int i = 0; i < count; ++i)
    REQUIRE(::sendto(fd.get(), data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&dst),
                     sizeof(dst)) == static_cast<ssize_t>(payload));
}

UniqueFd startTcpConnect(const char* addr, uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  inet_pton(AF_INET, addr, &dst.sin_addr);
  int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
  if (rc != 0 && errno != EINPROGRESS) return UniqueFd();
  return fd;
}

FrameInfo parseFrame(const std::vector<uint8_t>& frame) {
  FrameInfo info;
  if (frame.size() < sizeof(ethhdr) + sizeof(iphdr)) return info;
  ethhdr eth{};
  std::memcpy(&eth, frame.data(), sizeof(eth));
  if (ntohs(eth.h_proto) != ETH_P_IP) return info;
  iphdr ip{};
  std::memcpy(&ip, frame.data() + sizeof(ethhdr), sizeof(ip));
  info.dstBe = ip.daddr;
  info.protocol = ip.protocol;
  const size_t l4 = sizeof(ethhdr) + ip.ihl * 4u;
  if (ip.protocol == IPPROTO_TCP && frame.size() >= l4 + sizeof(tcphdr)) {
    tcphdr tcp{};
    std::memcpy(&tcp, frame.data() + l4, sizeof(tcp));
    info.dport = ntohs(tcp.dest);
    info.syn = tcp.syn && !tcp.ack;
  } else if (ip.protocol == IPPROTO_UDP && frame.size() >= l4 + sizeof(udphdr)) {
    udphdr udp{};
    std::memcpy(&udp, frame.data() + l4, sizeof(udp));
    info.dport = ntohs(udp.dest);
  }
  return info;
}

}  // namespace s2z::bpf::test
