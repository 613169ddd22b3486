#include "tests/agent/integration_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "bpf/health_check_hooks.h"
#include "bpf/kernel_scale_to_zero.h"

namespace s2z::agent::testing {
namespace {

const std::filesystem::path kCgroupMount = "/sys/fs/cgroup/unified";

double nowMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

int run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }

// Connect-and-GET with no allocation, so a forked child may use it too.
// Returns the HTTP status (0 on failure); fills body (NUL-terminated).
int rawGet(uint32_t addrBe, int port, const char* path, int timeoutMs, char* buf, size_t len,
           double* connectMs, unsigned* retrans) {
  double t0 = nowMs();
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = addrBe;
  int status = 0;
  size_t got = 0;
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  pollfd p{fd, POLLOUT, 0};
  if (rc != 0 && errno == EINPROGRESS) rc = ::poll(&p, 1, timeoutMs) == 1 ? 0 : -1;
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  if (rc == 0) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  if (connectMs) *connectMs = nowMs() - t0;
  if (rc == 0 && soerr == 0) {
    char req[256];
    int n = std::snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: vm\r\nConnection: close\r\n\r\n",
                          path);
    if (::send(fd, req, static_cast<size_t>(n), MSG_NOSIGNAL) == n) {
      double deadline = t0 + timeoutMs;
      while (got + 1 < len) {
        int left = static_cast<int>(deadline - nowMs());
        pollfd r{fd, POLLIN, 0};
        if (left <= 0 || ::poll(&r, 1, left) != 1) break;
        ssize_t m = ::recv(fd, buf + got, len - 1 - got, 0);
        if (m <= 0) break;
        got += static_cast<size_t>(m);
      }
      buf[got] = '\0';
      if (std::strncmp(buf, "HTTP/1.", 7) == 0 && got > 12) status = std::atoi(buf + 9);
    }
  }
  if (retrans) {
    tcp_info info{};
    socklen_t il = sizeof info;
    *retrans = ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &il) == 0 ? info.tcpi_total_retrans : 0;
  }
  if (got < len) buf[got] = '\0';
  ::close(fd);
  return status;
}

// Field `field` of the `prefix` rows (a header line, then a values line) in
// a /proc/net/{snmp,netstat} file; 0 if absent.
uint64_t snmpField(const std::string& file, const std::string& prefix, const std::string& field) {
  std::ifstream in(file);
  std::string header, values;
  while (std::getline(in, header)) {
    if (header.rfind(prefix + ":", 0) != 0) continue;
    if (!std::getline(in, values)) break;
    std::istringstream names(header), numbers(values);
    std::string name, number;
    while (names >> name && numbers >> number) {
      if (name == field) return std::stoull(number);
    }
  }
  return 0;
}

}  // namespace

TcpRetransCounters tcpRetransCounters() {
  TcpRetransCounters c;
  c.retransSegs = snmpField("/proc/thread-self/net/snmp", "Tcp", "RetransSegs");
  c.synRetrans = snmpField("/proc/thread-self/net/netstat", "TcpExt", "TCPSynRetrans");
  return c;
}

std::filesystem::path guestDir() {
  if (const char* env = std::getenv("S2Z_GUEST_DIR"); env && *env) return env;
  return S2Z_GUEST_DIR;
}

InstanceSpec testGuestSpec(const std::filesystem::path& stateDir, const std::string& taskId) {
  InstanceSpec spec;
  spec.taskId = taskId;
  spec.name = "web";
  spec.binary = "/usr/bin/qemu-system-x86_64";
  spec.kernel = guestDir() / "vmlinuz";
  spec.initrd = guestDir() / "initrd.img";
  spec.cmdline = "console=ttyS0 quiet panic=-1";
  spec.memoryMib = 256;
  spec.stdoutPath = stateDir / (taskId + ".console");
  std::ofstream(spec.stdoutPath, std::ios::app).close();
  return spec;
}

bool guestAvailable() {
  return std::filesystem::exists(guestDir() / "vmlinuz") &&
         std::filesystem::exists(guestDir() / "initrd.img");
}

bool processAlive(pid_t pid, uint64_t startTime) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  std::istringstream f(line.substr(line.rfind(')') + 2));
  std::string field;
  for (int n = 3; n <= 22 && f >> field; ++n) {
    if (n == 22) return std::stoull(field) == startTime;
  }
  return false;
}

HttpResult httpGet(const std::string& address, int port, const std::string& path,
                   std::chrono::milliseconds timeout) {
  HttpResult r;
  in_addr a{};
  if (::inet_pton(AF_INET, address.c_str(), &a) != 1) {
    r.error = "bad address " + address;
    return r;
  }
  static thread_local char buf[16384];
  double t0 = nowMs();
  r.status = rawGet(a.s_addr, port, path.c_str(), static_cast<int>(timeout.count()), buf,
                    sizeof buf, &r.connectMs, &r.retransmits);
  r.totalMs = nowMs() - t0;
  std::string text(buf);
  auto body = text.find("\r\n\r\n");
  if (body != std::string::npos) r.body = text.substr(body + 4);
  if (r.status == 0) r.error = "no reply after " + std::to_string(r.totalMs) + " ms";
  return r;
}

IntegrationEnv::IntegrationEnv(const std::string& tag) {
  std::string id = tag + "-" + std::to_string(::getpid());
  netns_ = "s2zt-ag-" + id;
  stateDir_ = "/tmp/s2zt-agent-" + id;
  pinRoot_ = "/sys/fs/bpf/s2zt-agent-" + id;
  cgroupRel_ = "/s2zt-agent-" + id;
  cgroupDir_ = kCgroupMount / cgroupRel_.substr(1);
  try {
    if (run("ip netns add " + netns_) != 0) throw std::runtime_error("ip netns add " + netns_);
    original_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    UniqueFd target(::open(("/run/netns/" + netns_).c_str(), O_RDONLY | O_CLOEXEC));
    if (!original_ || !target || ::setns(target.get(), CLONE_NEWNET) != 0) {
      throw std::runtime_error("enter netns " + netns_ + ": " + std::strerror(errno));
    }
    entered_ = true;
    if (run("ip link set lo up") != 0) throw std::runtime_error("lo up");
    std::filesystem::create_directories(stateDir_);
    std::filesystem::create_directories(cgroupDir_);
  } catch (...) {
    cleanup();
    throw;
  }
}

IntegrationEnv::~IntegrationEnv() { cleanup(); }

void IntegrationEnv::cleanup() {
  // QEMUs whose command line names our state dir (a failed test may leave some).
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    pid_t pid = static_cast<pid_t>(std::atoi(entry.path().filename().c_str()));
    if (pid <= 0) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(stateDir_.string()) != std::string::npos) ::kill(pid, SIGKILL);
  }
  (void)bpf::KernelHealthCheckHooks::detachPinned(pinRoot_);
  (void)bpf::KernelScaleToZero::removePins(pinRoot_);
  std::error_code ec;
  std::filesystem::remove_all(pinRoot_, ec);
  if (entered_) {
    ::setns(original_.get(), CLONE_NEWNET);
    entered_ = false;
  }
  run("ip netns del " + netns_);
  for (int i = 0; i < 50 && std::filesystem::exists(cgroupDir_); ++i) {
    if (::rmdir(cgroupDir_.c_str()) == 0) break;
    ::usleep(20000);
  }
  std::filesystem::remove_all(stateDir_, ec);
}

std::vector<HealthCheck> IntegrationEnv::healthChecks(const std::string& address, int port,
                                                      int count) const {
  in_addr a{};
  ::inet_pton(AF_INET, address.c_str(), &a);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  std::string procs = (cgroupDir_ / "cgroup.procs").string();
  pid_t child = ::fork();
  if (child == 0) {
    // Child: join the cgroup (sockets created from now on get the health
    // mark and the connect redirect), then check. No allocation from here.
    ::close(fds[0]);
    int cg = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    char pidText[16];
    int n = std::snprintf(pidText, sizeof pidText, "%d", ::getpid());
    if (cg < 0 || ::write(cg, pidText, static_cast<size_t>(n)) != n) ::_exit(2);
    ::close(cg);
    static char buf[4096];
    for (int i = 0; i < count; ++i) {
      double t0 = nowMs();
      HealthCheck hc;
      hc.status = rawGet(a.s_addr, port, "/healthz", 3000, buf, sizeof buf, nullptr, nullptr);
      hc.ms = nowMs() - t0;
      if (::write(fds[1], &hc, sizeof hc) != sizeof hc) ::_exit(3);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::vector<HealthCheck> out;
  HealthCheck hc;
  while (::read(fds[0], &hc, sizeof hc) == sizeof hc) out.push_back(hc);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  return out;
}

}  // namespace s2z::agent::testing
