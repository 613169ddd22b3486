#include "tests/registry/test_registry.h"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

namespace s2z::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// /30 slots of 10.231.0.0/16, each held by a flock for a fixture's life.
constexpr int kSlots = 1 << 14;
constexpr char kSlotDir[] = "/run/s2z-test-registry";
constexpr char kNetnsLink[] = "reg0";  // the registry's end, inside its namespace
constexpr char kTempPrefix[] = "/tmp/s2zt-registry-";
constexpr milliseconds kToolTimeout{120 * 1000};

int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::max<int64_t>(0, left));
}

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

std::string lastLines(const std::string& text, size_t lines) {
  size_t pos = text.size();
  while (lines-- > 0 && pos > 0) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

// Runs argv without a shell, stdin from /dev/null, stdout and stderr captured
// together. Fails with kSystem and the output's end on a non-zero exit, with
// kTimeout (the process group killed) after `timeout`.
Result<std::string> run(const std::vector<std::string>& argv, milliseconds timeout = kToolTimeout) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return systemError("pipe for " + argv[0]);
  UniqueFd readEnd(fds[0]), writeEnd(fds[1]);
  UniqueFd devNull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devNull) return systemError("open /dev/null");
  pid_t pid = ::fork();
  if (pid < 0) return systemError("fork for " + argv[0]);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(devNull.get(), 0);
    ::dup2(writeEnd.get(), 1);
    ::dup2(writeEnd.get(), 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  writeEnd.reset();
  std::string out;
  bool timedOut = false;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    pollfd p{readEnd.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, msLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      timedOut = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    char buf[4096];
    ssize_t n = ::read(readEnd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timedOut) return makeError(ErrorCode::kTimeout, joined(argv) + ": no exit within " +
                                                          std::to_string(timeout.count()) + " ms");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                        : "signal " + std::to_string(WTERMSIG(status));
    return makeError(ErrorCode::kSystem, joined(argv) + ": " + how + ": " + lastLines(out, 8));
  }
  return out;
}

Result<void> runQuiet(const std::vector<std::string>& argv) {
  auto r = run(argv);
  if (!r.ok()) return r.error();
  return okResult();
}

Result<void> writeFile(const fs::path& path, const std::string& data, mode_t mode = 0644) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd || ::fchmod(fd.get(), mode) != 0) return systemError("write " + path.string());
  if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    return systemError("write " + path.string());
  }
  return okResult();
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string randomHex(size_t bytes) {
  std::random_device rd;
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes; ++i) {
    unsigned v = rd() & 0xff;
    out += kDigits[v >> 4];
    out += kDigits[v & 0xf];
  }
  return out;
}

std::string base64(const std::string& in) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t n = uint8_t(in[i]) << 16;
    if (rest == 2) n |= uint8_t(in[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<TestRegistry>> TestRegistry::start(Options options) {
  // The destructor undoes whatever the failed step left made.
  std::unique_ptr<TestRegistry> r(new TestRegistry(options));
  S2Z_TRY(r->takeSlot(), "test registry: take an address slot");
  S2Z_TRY(r->makeNetwork(), "test registry: network namespace " + r->netns_);
  S2Z_TRY(r->makeCredentials(), "test registry: CA, certificate, htpasswd");
  S2Z_TRY(r->startRegistry(), "test registry: start docker-registry");
  S2Z_TRY(r->waitUntilAnswering(milliseconds(15000)), "test registry: " + r->host());
  return r;
}

TestRegistry::~TestRegistry() {
  stopRegistry();
  if (linkMade_) (void)run(clientIp({"link", "del", hostLink_}));
  if (netnsMade_) (void)run({"ip", "netns", "del", netns_});
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
  if (slotLock_) {
    // Unlinked while still locked: whoever opens the path next gets a new file.
    ::unlink(slotLockPath_.c_str());
    slotLock_.reset();
  }
}

Result<void> TestRegistry::takeSlot() {
  std::error_code ec;
  fs::create_directories(kSlotDir, ec);
  if (ec) return makeError(ErrorCode::kSystem, std::string(kSlotDir) + ": " + ec.message());
  const int first = static_cast<int>(::getpid() % kSlots);
  for (int i = 0; i < kSlots; ++i) {
    const int slot = (first + i) % kSlots;
    const fs::path path = fs::path(kSlotDir) / ("slot-" + std::to_string(slot) + ".lock");
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return systemError("open " + path.string());
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) continue;  // another fixture's
      return systemError("flock " + path.string());
    }
    // Its previous holder may have unlinked it between our open and flock.
    struct stat held {}, named {};
    if (::fstat(fd.get(), &held) != 0 || ::stat(path.c_str(), &named) != 0 || held.st_ino != named.st_ino ||
        held.st_dev != named.st_dev) {
      continue;
    }
    // A fixture killed with its process left its temp dir's name here.
    char stale[256] = {};
    if (::pread(fd.get(), stale, sizeof stale - 1, 0) > 0 && std::string(stale).rfind(kTempPrefix, 0) == 0) {
      fs::remove_all(stale, ec);
    }
    slot_ = slot;
    slotLock_ = std::move(fd);
    slotLockPath_ = path;
    const std::string net = "10.231." + std::to_string(slot / 64) + ".";
    const int base = (slot % 64) * 4;
    hostIp_ = net + std::to_string(base + 1);
    ip_ = net + std::to_string(base + 2);
    hostLink_ = "s2zreg" + std::to_string(slot);
    netns_ = "s2z-reg-" + std::to_string(::getpid()) + "-" + std::to_string(slot);
    return okResult();
  }
  return makeError(ErrorCode::kUnavailable, "all " + std::to_string(kSlots) + " slots in use");
}

Result<void> TestRegistry::makeNetwork() {
  // Holding the slot, anything still named after it is a killed fixture's.
  if (::if_nametoindex(hostLink_.c_str()) != 0) S2Z_TRY(runQuiet({"ip", "link", "del", hostLink_}), "stale link");
  const std::string slotSuffix = "-" + std::to_string(slot_);
  std::vector<std::string> stale;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("s2z-reg-", 0) == 0 && name.size() > slotSuffix.size() &&
        name.compare(name.size() - slotSuffix.size(), slotSuffix.size(), slotSuffix) == 0) {
      stale.push_back(name);
    }
  }
  for (const auto& name : stale) S2Z_TRY(runQuiet({"ip", "netns", "del", name}), "stale netns");

  S2Z_TRY(runQuiet({"ip", "netns", "add", netns_}), "add");
  netnsMade_ = true;
  S2Z_TRY(runQuiet(clientIp({"link", "add", hostLink_, "type", "veth", "peer", "name", kNetnsLink, "netns", netns_})),
          "veth");
  linkMade_ = true;
  S2Z_TRY(runQuiet(clientIp({"addr", "add", hostIp_ + "/30", "dev", hostLink_})), "host address");
  S2Z_TRY(runQuiet(clientIp({"link", "set", hostLink_, "up"})), "host link up");
  S2Z_TRY(runQuiet({"ip", "-n", netns_, "addr", "add", ip_ + "/30", "dev", kNetnsLink}), "registry address");
  S2Z_TRY(runQuiet({"ip", "-n", netns_, "link", "set", kNetnsLink, "up"}), "registry link up");
  return okResult();
}

Result<void> TestRegistry::makeCredentials() {
  std::string tmpl = std::string(kTempPrefix) + "XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) return systemError("mkdtemp");
  dir_ = tmpl;
  // For the next holder of the slot, should this process be killed.
  if (::ftruncate(slotLock_.get(), 0) != 0 || ::pwrite(slotLock_.get(), tmpl.data(), tmpl.size(), 0) < 0) {
    return systemError("write " + slotLockPath_.string());
  }
  const std::string d = dir_.string();
  const std::vector<std::string> ecKey{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};

  std::vector<std::string> ca{"openssl", "req", "-x509"};
  ca.insert(ca.end(), ecKey.begin(), ecKey.end());
  ca.insert(ca.end(), {"-keyout", d + "/ca.key", "-out", d + "/ca.crt", "-days", "7", "-subj",
                       "/CN=s2z test registry CA " + ip_});
  S2Z_TRY(runQuiet(ca), "CA");

  std::vector<std::string> csr{"openssl", "req"};
  csr.insert(csr.end(), ecKey.begin(), ecKey.end());
  csr.insert(csr.end(), {"-keyout", d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=" + ip_});
  S2Z_TRY(runQuiet(csr), "server key");
  S2Z_TRY(writeFile(dir_ / "server.ext",
                    "subjectAltName=IP:" + ip_ + "\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
          "server certificate");
  S2Z_TRY(runQuiet({"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.crt", "-CAkey",
                    d + "/ca.key", "-set_serial", "0x" + randomHex(8), "-days", "7", "-extfile",
                    d + "/server.ext", "-out", d + "/server.crt"}),
          "server certificate");

  std::error_code ec;
  fs::create_directories(certsDir() / host(), ec);
  if (!ec) fs::copy_file(dir_ / "ca.crt", caCert(), ec);
  if (ec) return makeError(ErrorCode::kSystem, caCert().string() + ": " + ec.message());

  password_ = "pw-" + randomHex(8);
  auto entry = run({"htpasswd", "-Bbn", username_, password_});  // bcrypt: the registry takes no other
  if (!entry.ok()) return entry.error().wrap("htpasswd");
  S2Z_TRY(writeFile(dir_ / "htpasswd", *entry, 0600), "htpasswd");
  fs::create_directories(dir_ / "storage", ec);
  if (ec) return makeError(ErrorCode::kSystem, "storage dir: " + ec.message());

  std::string config = "version: 0.1\n"
                       "log:\n  level: info\n  formatter: text\n"
                       "storage:\n  filesystem:\n    rootdirectory: " + d + "/storage\n"
                       "  delete:\n    enabled: true\n"
                       "http:\n  addr: " + host() + "\n  secret: " + randomHex(16) + "\n"
                       "  tls:\n    certificate: " + d + "/server.crt\n    key: " + d + "/server.key\n";
  if (options_.auth) {
    config += "auth:\n  htpasswd:\n    realm: s2z-test-registry\n    path: " + d + "/htpasswd\n";
  }
  return writeFile(dir_ / "config.yml", config);
}

Result<void> TestRegistry::startRegistry() {
  const std::vector<std::string> argv{"ip", "netns", "exec", netns_, "docker-registry", "serve",
                                      (dir_ / "config.yml").string()};
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  UniqueFd log(::open(logFile().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  UniqueFd devNull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!log || !devNull) return systemError("open " + logFile().string());
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return systemError("fork");
  if (pid == 0) {
    // Dies with the test (with the thread that started it, strictly).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::setpgid(0, 0);
    ::dup2(devNull.get(), 0);
    ::dup2(log.get(), 1);
    ::dup2(log.get(), 2);
    ::execvp(args[0], args.data());  // ip netns exec execs docker-registry in place
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  registryPid_ = pid;
  return okResult();
}

Result<void> TestRegistry::waitUntilAnswering(milliseconds limit) {
  const std::string want = options_.auth ? "401" : "200";
  const auto deadline = Clock::now() + limit;
  std::string last;
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(registryPid_, &status, WNOHANG) == registryPid_) {
      registryPid_ = -1;
      return makeError(ErrorCode::kUnavailable, "docker-registry exited (status " + std::to_string(status) +
                                                    "); its log:\n" + logTail());
    }
    // Any answer but 000 (no connection yet) is final: TLS and auth are checked with it.
    auto code = run(asClient({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*", "--max-time", "2",
                     "--cacert", caCert().string(), "https://" + host() + "/v2/"}),
                    milliseconds(5000));
    if (code.ok() && *code == want) return okResult();
    last = code.ok() ? "HTTP " + *code : code.error().describe();
    if (code.ok() && *code != "000") break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return makeError(ErrorCode::kUnavailable, "GET /v2/ did not answer " + want + " (last: " + last +
                                                "); the registry's log:\n" + logTail());
}

void TestRegistry::stopRegistry() {
  if (registryPid_ <= 0) return;
  ::kill(-registryPid_, SIGKILL);
  ::kill(registryPid_, SIGKILL);
  while (::waitpid(registryPid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  registryPid_ = -1;
}

std::vector<std::string> TestRegistry::asClient(std::vector<std::string> argv) const {
  if (options_.clientNetns.empty()) return argv;
  argv.insert(argv.begin(), {"ip", "netns", "exec", options_.clientNetns});
  return argv;
}

std::vector<std::string> TestRegistry::clientIp(std::vector<std::string> args) const {
  std::vector<std::string> argv{"ip"};
  if (!options_.clientNetns.empty()) argv.insert(argv.end(), {"-n", options_.clientNetns});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::string TestRegistry::logTail() const { return lastLines(readFile(logFile()), 30); }

Result<std::string> TestRegistry::push(const fs::path& ociArchive, const std::string& repoTag) const {
  static std::atomic<int> pushes{0};
  const fs::path digestFile = dir_ / ("push-" + std::to_string(pushes++) + ".digest");
  std::vector<std::string> argv{"skopeo", "copy", "--quiet", "--dest-cert-dir", (certsDir() / host()).string(),
                                "--digestfile", digestFile.string()};
  if (options_.auth) argv.push_back("--dest-creds=" + username_ + ":" + password_);
  else argv.push_back("--dest-no-creds");
  argv.push_back("oci-archive:" + ociArchive.string());
  argv.push_back("docker://" + host() + "/" + repoTag);
  auto copied = run(asClient(argv));
  if (!copied.ok()) return copied.error().wrap("push " + ociArchive.string() + " to " + host() + "/" + repoTag);
  std::string digest = readFile(digestFile);
  while (!digest.empty() && (digest.back() == '\n' || digest.back() == ' ')) digest.pop_back();
  if (digest.rfind("sha256:", 0) != 0) {
    return makeError(ErrorCode::kInternal, "push " + repoTag + ": no digest in " + digestFile.string());
  }
  return digest;
}

Result<void> TestRegistry::writeDockerConfig(const fs::path& path) const {
  const std::string config = "{\n  \"auths\": {\n    \"" + host() + "\": {\n      \"auth\": \"" +
                             base64(username_ + ":" + password_) + "\"\n    }\n  }\n}\n";
  return writeFile(path, config, 0600);
}

}  // namespace s2z::testing
