#include "tests/integration/test_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/proc_cmdline.h"
#include "common/unique_fd.h"

namespace s2z::integration {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string uniqueSuffix() {
  static std::atomic<int> counter{0};
  return std::to_string(getpid()) + "-" + std::to_string(counter++);
}

int nextSubnetOctet() {
  // Distinct per test in this process; every test has its own netns anyway.
  static std::atomic<int> counter{0};
  return 200 + (counter++ % 50);
}

HttpReply httpGetHere(const std::string& address, int port, const std::string& path,
                      std::chrono::milliseconds timeout) {
  HttpReply reply;
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
    reply.error = "bad address " + address;
    return reply;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto remaining = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<long>(0, left.count()));
  };
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
    reply.error = std::string("connect: ") + std::strerror(errno);
    return reply;
  }
  pollfd p{fd.get(), POLLOUT, 0};
  if (poll(&p, 1, remaining()) <= 0) {
    reply.error = "connect timeout";
    return reply;
  }
  int soerr = 0;
  socklen_t len = sizeof soerr;
  getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
  if (soerr != 0) {
    reply.error = std::string("connect: ") + std::strerror(soerr);
    return reply;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + address + "\r\nConnection: close\r\n\r\n";
  if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    reply.error = "send failed";
    return reply;
  }
  std::string data;
  char buf[4096];
  for (;;) {
    pollfd r{fd.get(), POLLIN, 0};
    if (poll(&r, 1, remaining()) <= 0) {
      reply.error = "read timeout";
      break;
    }
    ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  if (data.rfind("HTTP/1.", 0) == 0 && data.size() > 12) reply.status = std::atoi(data.c_str() + 9);
  auto body = data.find("\r\n\r\n");
  if (body != std::string::npos) reply.body = data.substr(body + 4);
  return reply;
}

}  // namespace

CommandResult runCommand(const std::vector<std::string>& argv) {
  CommandResult result;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return result;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pipefd[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) result.output.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string guestDir() {
  const char* env = std::getenv("S2Z_GUEST_DIR");
  return env ? env : S2Z_GUEST_DIR;
}

bool guestAvailable() {
  return fs::exists(guestDir() + "/vmlinuz") && fs::exists(guestDir() + "/initrd.img");
}

std::string agentGuestDir() { return S2Z_AGENT_GUEST_BUILD_DIR; }

std::string testRootfs() {
  const char* env = std::getenv("S2Z_ROOTFS_DIR");
  return std::string(env ? env : S2Z_ROOTFS_DIR) + "/debian-test.ext4";
}

std::string testOciArchive() {
  const char* env = std::getenv("S2Z_ROOTFS_DIR");
  return std::string(env ? env : S2Z_ROOTFS_DIR) + "/debian-test.oci.tar";
}

bool agentGuestAvailable() {
  return fs::exists(agentGuestDir() + "/vmlinuz") && fs::exists(agentGuestDir() + "/initrd.img") &&
         fs::exists(testRootfs());
}

TestEnv::TestEnv() {
  std::string suffix = uniqueSuffix();
  netns_ = "s2zt-int-" + suffix;
  auto add = runCommand({"ip", "netns", "add", netns_});
  if (add.exitCode != 0) throw std::runtime_error("ip netns add: " + add.output);
  runCommand({"ip", "-n", netns_, "link", "set", "lo", "up"});
  root_ = "/tmp/s2zt-int-" + suffix;
  stateDir_ = root_ + "/state";
  fs::create_directories(stateDir_);
  int octet = nextSubnetOctet();
  prefix_ = "10.89." + std::to_string(octet) + ".";
  subnet_ = prefix_ + "0/24";
}

TestEnv::~TestEnv() {
  // Anything a failed test left running in the namespace (plugin, VMMs).
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto left = pids();
    if (left.empty()) break;
    for (int pid : left) kill(pid, SIGKILL);
    std::this_thread::sleep_for(100ms);
  }
  runCommand({"ip", "netns", "del", netns_});
  std::error_code ec;
  fs::remove_all(root_, ec);
}

YAML::Node TestEnv::pluginConfig() const {
  YAML::Node n;
  n["hypervisor"] = "qemu";
  n["accelerator"] = "auto";
  n["state_dir"] = stateDir_;
  n["kernel"] = guestDir() + "/vmlinuz";
  n["initrd"] = guestDir() + "/initrd.img";
  n["agent_kernel"] = agentGuestDir() + "/vmlinuz";
  n["agent_initrd"] = agentGuestDir() + "/initrd.img";
  n["subnet"] = subnet_;
  n["idle_timeout"] = "5m";
  return n;
}

standin::ClientOptions TestEnv::clientOptions() const {
  standin::ClientOptions o;
  o.launch.path = S2Z_PLUGIN_PATH;
  o.launch.netnsPath = netnsPath();
  o.launch.extraEnv = {{"TMPDIR", root_}};
  o.pluginConfig = pluginConfig();
  o.dataDir = root_ + "/data";
  return o;
}

std::unique_ptr<standin::NomadClient> TestEnv::loadPlugin(
    const std::function<void(standin::ClientOptions&)>& edit) const {
  auto opts = clientOptions();
  opts.skipProbeAndValidation = true;
  if (edit) edit(opts);
  auto loaded = standin::NomadClient::loadPlugin(opts);
  if (!loaded.ok()) throw std::runtime_error("load plugin: " + loaded.error().describe());
  return std::move(*loaded);
}

HttpReply TestEnv::httpGet(const std::string& address, int port, const std::string& path,
                           std::chrono::milliseconds timeout) const {
  HttpReply reply;
  // setns(CLONE_NEWNET) affects only the calling thread: do it on a fresh one.
  std::thread t([&] {
    UniqueFd ns(open(netnsPath().c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns || setns(ns.get(), CLONE_NEWNET) != 0) {
      reply.error = std::string("setns: ") + std::strerror(errno);
      return;
    }
    reply = httpGetHere(address, port, path, timeout);
  });
  t.join();
  return reply;
}

bool TestEnv::waitHttp(const std::string& address, int port, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (httpGet(address, port, "/", 2s).status == 200) return true;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

std::vector<std::string> TestEnv::links() const {
  std::vector<std::string> out;
  auto r = runCommand({"ip", "-n", netns_, "-o", "link", "show"});
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    // "2: s2z0a1b: <...>" -> name (strip "@peer")
    auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    auto end = line.find(':', colon + 2);
    std::string name = line.substr(colon + 2, end - colon - 2);
    name = name.substr(0, name.find('@'));
    if (name != "lo") out.push_back(name);
  }
  return out;
}

std::string TestEnv::routes() const {
  return runCommand({"ip", "-n", netns_, "route", "show"}).output +
         runCommand({"ip", "-n", netns_, "neigh", "show"}).output;
}

std::vector<int> TestEnv::pids() const {
  std::vector<int> out;
  auto r = runCommand({"ip", "netns", "pids", netns_});
  std::istringstream in(r.output);
  for (int pid; in >> pid;) out.push_back(pid);
  return out;
}

std::string TestEnv::describePids() const {
  std::string out;
  for (int pid : pids()) {
    std::string cmd = processCommandLine(pid);
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    out += std::to_string(pid) + ": " + cmd.substr(0, 200) + "\n";
  }
  return out;
}

bool TestEnv::onlyProcessLeft(int pid, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    if (pids() == std::vector<int>{pid}) return true;
    std::this_thread::sleep_for(100ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::vector<std::string> TestEnv::stateFiles() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(stateDir_, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory()) out.push_back(fs::relative(it->path(), stateDir_).string());
  }
  return out;
}

standin::TaskFile webTask(const std::string& extraConfigYaml) {
  std::string yaml =
      "name: web\n"
      "driver: s2z-kata\n"
      "resources: { cpu: 500, memory: 256 }\n"
      "ports: [ { label: http, value: 28080, to: 8080 } ]\n"
      "config:\n"
      "  ports: [http]\n" +
      extraConfigYaml;
  auto t = standin::TaskFile::parse(yaml);
  if (!t.ok()) throw std::runtime_error(t.error().message);
  return *t;
}

size_t eventsMatching(const standin::NomadClient& c, const std::string& allocId,
                      const std::string& word) {
  size_t n = 0;
  for (const auto& e : c.events()) {
    std::string m = e.message;
    std::transform(m.begin(), m.end(), m.begin(), [](unsigned char ch) { return std::tolower(ch); });
    n += e.allocId == allocId && m.rfind(word, 0) == 0;
  }
  return n;
}

standin::TaskFile agentTask(const std::string& command, const std::vector<std::string>& args,
                            const std::string& extraTaskYaml, const std::string& extraConfigYaml) {
  YAML::Node config;
  config["command"] = command;
  for (const auto& a : args) config["args"].push_back(a);
  config["rootfs"] = testRootfs();
  config["ports"].push_back("http");
  YAML::Emitter out;
  out << config;
  std::string configYaml = out.c_str();
  std::string indented;
  for (size_t at = 0; at < configYaml.size();) {
    size_t nl = configYaml.find('\n', at);
    if (nl == std::string::npos) nl = configYaml.size();
    indented += "  " + configYaml.substr(at, nl - at) + "\n";
    at = nl + 1;
  }
  std::string yaml =
      "name: app\n"
      "driver: s2z-kata\n"
      "resources: { cpu: 500, memory: 256 }\n"
      "ports: [ { label: http, value: 28080, to: 8080 } ]\n" +
      extraTaskYaml + "config:\n" + indented + extraConfigYaml;
  auto t = standin::TaskFile::parse(yaml);
  if (!t.ok()) throw std::runtime_error(t.error().message + "\n" + yaml);
  return *t;
}

}  // namespace s2z::integration
