// Unit tests of the vmm module's pieces that need no VM: QEMU command line,
// accelerator detection, QMP message handling (against a scripted peer on a
// socketpair), version parsing, and VmmProcess on ordinary processes.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include <doctest/doctest.h>

#include "vmm/qemu/qemu_command_line.h"
#include "vmm/qemu/qemu_vmm.h"
#include "vmm/qemu/qmp_client.h"
#include "vmm/vmm.h"
#include "vmm/vmm_process.h"
#include "tests/err_text.h"

namespace s2z::vmm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

VmConfig sampleConfig() {
  VmConfig c;
  c.name = "t1";
  c.runDir = "/var/lib/s2z/run/t1";
  c.binary = "/usr/bin/qemu-system-x86_64";
  c.kernel = "/guest/vmlinuz";
  c.initrd = "/guest/initrd.img";
  c.cmdline = "console=ttyS0 ip=10.89.0.2::10.89.0.1:255.255.255.0::eth0:off";
  c.vcpus = 2;
  c.memoryMib = 512;
  c.tapFd = 17;
  c.mac = "52:54:00:aa:bb:cc";
  c.consoleFd = 23;
  return c;
}

bool has(const std::vector<std::string>& argv, const std::string& item) {
  return std::find(argv.begin(), argv.end(), item) != argv.end();
}
// The value following option `opt` ("" if absent).
std::string after(const std::vector<std::string>& argv, const std::string& opt) {
  auto it = std::find(argv.begin(), argv.end(), opt);
  return it == argv.end() || it + 1 == argv.end() ? "" : *(it + 1);
}

bool cpuHasVirtualization() {
  std::ifstream in("/proc/cpuinfo");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.find(" vmx") != std::string::npos || text.find(" svm") != std::string::npos;
}

}  // namespace

TEST_CASE("qemu command line: microvm, file-backed RAM, tap fd 4, QMP, console") {
  VmConfig c = sampleConfig();
  auto argv = qemu::buildQemuArgv(c, {false, 2600000});
  CHECK(argv.front() == "/usr/bin/qemu-system-x86_64");
  CHECK(after(argv, "-M") ==
        "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,memory-backend=mem0,"
        "suppress-vmdesc=on");
  CHECK(has(argv, "-nodefaults"));
  CHECK(has(argv, "-no-user-config"));
  CHECK(has(argv, "-no-reboot"));
  CHECK(after(argv, "-accel") == "tcg,tb-size=32");
  CHECK(after(argv, "-smp") == "2");
  CHECK(after(argv, "-m") == "512M");
  CHECK(after(argv, "-object") ==
        "memory-backend-file,id=mem0,size=512M,mem-path=/var/lib/s2z/run/t1/guest-ram,share=on");
  // The console is our fd in QEMU's fd set 1: QEMU never opens the FIFO by name.
  CHECK(after(argv, "-add-fd") == "fd=5,set=1");
  CHECK(after(argv, "-chardev") == "file,id=con0,append=on,path=/dev/fdset/1");
  CHECK(after(argv, "-serial") == "chardev:con0");
  CHECK(after(argv, "-kernel") == "/guest/vmlinuz");
  CHECK(after(argv, "-initrd") == "/guest/initrd.img");
  CHECK(after(argv, "-netdev") == "tap,id=n0,fd=4");
  CHECK(after(argv, "-device") == "virtio-net-device,netdev=n0,mac=52:54:00:aa:bb:cc");
  // QMP listens on a socket the plugin bound and passed as fd 8.
  CHECK(has(argv, "socket,id=qmp,fd=8,server=on,wait=off"));
  CHECK(after(argv, "-mon") == "chardev=qmp,mode=control");
  CHECK_FALSE(has(argv, "-qmp"));
  CHECK_FALSE(has(argv, "-incoming"));
  CHECK_FALSE(has(argv, "-S"));
  std::string append = after(argv, "-append");
  CHECK(append.find("ip=10.89.0.2::10.89.0.1:255.255.255.0::eth0:off") != std::string::npos);
  CHECK(append.find("tsc_early_khz=2600000") != std::string::npos);
  CHECK(append.find("no_timer_check") != std::string::npos);
  CHECK_FALSE(has(argv, "-drive"));

  SUBCASE("restore adds -S -incoming defer, loads no kernel") {
    auto in = qemu::buildQemuArgv(c, {true, 2600000});
    CHECK(has(in, "-S"));
    CHECK(after(in, "-incoming") == "defer");
    // The guest runs on from its RAM file.
    CHECK_FALSE(has(in, "-kernel"));
    CHECK_FALSE(has(in, "-initrd"));
    CHECK_FALSE(has(in, "-append"));
  }
  SUBCASE("kvm: no TSC hints") {
    c.accelerator = Accelerator::kKvm;
    auto k = qemu::buildQemuArgv(c, {false, 0});
    CHECK(after(k, "-accel") == "kvm");
    CHECK(after(k, "-append").find("tsc_early_khz") == std::string::npos);
    CHECK(after(k, "-append").find("no_timer_check") == std::string::npos);
  }
  SUBCASE("caller's tsc_early_khz wins, not duplicated") {
    c.cmdline = "console=ttyS0 tsc_early_khz=1000 no_timer_check";
    std::string line = qemu::guestCmdline(c, 2600000);
    CHECK(line == "console=ttyS0 tsc_early_khz=1000 no_timer_check");
  }
  SUBCASE("no console, rootfs, commas escaped") {
    c.consoleFd = -1;
    c.rootfs = "/images/a,b.raw";
    auto r = qemu::buildQemuArgv(c, {false, 0});
    CHECK(after(r, "-serial") == "null");
    CHECK(std::count(r.begin(), r.end(), "-chardev") == 1);  // QMP's only
    CHECK_FALSE(has(r, "-add-fd"));
    CHECK(after(r, "-drive") == "file=/images/a,,b.raw,if=none,id=d0,format=raw,werror=report,rerror=report");
    CHECK(has(r, "virtio-blk-device,drive=d0"));
  }
  SUBCASE("an MTU other than 1500: the NIC tells the guest (a restore's NIC the same)") {
    c.mtu = 1400;
    for (bool incoming : {false, true}) {
      auto r = qemu::buildQemuArgv(c, {incoming, 0});
      CHECK(has(r, "virtio-net-device,netdev=n0,mac=52:54:00:aa:bb:cc,host_mtu=1400"));
    }
  }
  SUBCASE("no tap: no NIC") {
    c.tapFd = -1;
    auto r = qemu::buildQemuArgv(c, {false, 0});
    CHECK_FALSE(has(r, "-netdev"));
  }
  SUBCASE("a run dir too long for a socket address gets a relative socket path") {
    c.runDir = "/" + std::string(120, 'x');
    c.guestAgentSocket = c.runDir / "qga.sock";
    auto r = qemu::buildQemuArgv(c, {false, 0});
    CHECK(has(r, "socket,id=qga,path=qga.sock,server=on,wait=off"));
  }
}

TEST_CASE("host TSC frequency is known (needed by TCG guests)") {
  uint64_t khz = qemu::hostTscKhz();
  CHECK(khz > 100000);     // > 100 MHz
  CHECK(khz < 10000000);   // < 10 GHz
}

TEST_CASE("accelerator detection explains its choice") {
  AcceleratorProbe probe = detectAccelerator();
  CHECK_FALSE(probe.reason.empty());
  MESSAGE("accelerator: " << std::string(acceleratorName(probe.accelerator)) << " (" << probe.reason << ")");
  if (!cpuHasVirtualization()) {
    // E.g. a /dev/kvm backed by kvm_pvm: opening it works, guests hang.
    CHECK(probe.accelerator == Accelerator::kTcg);
  }
  if (::access("/dev/kvm", R_OK | W_OK) != 0) CHECK(probe.accelerator == Accelerator::kTcg);
}

TEST_CASE("QMP message interpretation") {
  auto ok = qemu::interpretQmpMessage(json::parse(R"({"return": {"status": "running"}, "id": 7})"), 7);
  REQUIRE(ok.ok());
  REQUIRE(ok->has_value());
  CHECK((**ok)["status"] == "running");

  auto event = qemu::interpretQmpMessage(
      json::parse(R"({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}})"), 7);
  REQUIRE(event.ok());
  CHECK_FALSE(event->has_value());

  auto other = qemu::interpretQmpMessage(json::parse(R"({"return": {}, "id": 6})"), 7);
  REQUIRE(other.ok());
  CHECK_FALSE(other->has_value());

  auto err = qemu::interpretQmpMessage(
      json::parse(R"({"error": {"class": "GenericError", "desc": "No such file"}, "id": 7})"), 7);
  REQUIRE_FALSE(err.ok());
  CHECK(err.error().code == ErrorCode::kVmmError);
  CHECK(err.error().message.find("No such file") != std::string::npos);

  std::string buf = "{\"a\":1}\r\n{\"b\"";
  CHECK(qemu::takeLine(buf) == std::optional<std::string>("{\"a\":1}"));
  CHECK_FALSE(qemu::takeLine(buf).has_value());
  buf += ":2}\n";
  CHECK(qemu::takeLine(buf) == std::optional<std::string>("{\"b\":2}"));
}

// A scripted QMP peer: answers by the id it reads, writes in small pieces.
class FakeQmp {
 public:
  FakeQmp() {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    client_.reset(sv[0]);
    server_.reset(sv[1]);
  }
  UniqueFd takeClient() { return std::move(client_); }
  void sendPieces(const std::string& text) {
    for (size_t i = 0; i < text.size(); i += 7) {
      auto piece = text.substr(i, 7);
      REQUIRE(::write(server_.get(), piece.data(), piece.size()) == static_cast<ssize_t>(piece.size()));
      std::this_thread::sleep_for(1ms);
    }
  }
  // Reads one request line; returns it parsed, with any passed fd in *fd.
  json readRequest(int* fd = nullptr) {
    std::string line;
    char c;
    for (;;) {
      char control[CMSG_SPACE(sizeof(int))];
      iovec iov{&c, 1};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      if (::recvmsg(server_.get(), &msg, 0) != 1) return json();
      if (cmsghdr* h = CMSG_FIRSTHDR(&msg); h != nullptr && fd != nullptr) {
        std::memcpy(fd, CMSG_DATA(h), sizeof(int));
      }
      if (c == '\n') return json::parse(line);
      line += c;
    }
  }
  void close() { server_.reset(); }

 private:
  UniqueFd client_, server_;
};

TEST_CASE("QMP client: greeting, capabilities, events skipped, errors, fd passing") {
  FakeQmp peer;
  std::thread server([&] {
    peer.sendPieces(R"({"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}})" "\n");
    json caps = peer.readRequest();
    CHECK(caps["execute"] == "qmp_capabilities");
    peer.sendPieces(R"({"return": {}, "id": )" + caps["id"].dump() + "}\n");

    json status = peer.readRequest();
    CHECK(status["execute"] == "query-status");
    peer.sendPieces(R"({"event": "RESUME", "timestamp": {"seconds": 1, "microseconds": 0}})" "\n");
    peer.sendPieces(R"({"return": {"status": "stale"}, "id": 999})" "\n");
    peer.sendPieces(R"({"return": {"status": "running"}, "id": )" + status["id"].dump() + "}\n");

    json bad = peer.readRequest();
    CHECK(bad["arguments"]["uri"] == "fd:nope");
    peer.sendPieces(R"({"error": {"class": "GenericError", "desc": "File descriptor named 'nope' not found"}, "id": )" +
                    bad["id"].dump() + "}\n");

    int passed = -1;
    json getfd = peer.readRequest(&passed);
    CHECK(getfd["execute"] == "getfd");
    CHECK(getfd["arguments"]["fdname"] == "snap");
    CHECK(passed >= 0);
    if (passed >= 0) ::close(passed);
    peer.sendPieces(R"({"return": {}, "id": )" + getfd["id"].dump() + "}\n");

    peer.readRequest();  // never answered: the client times out
    peer.readRequest();  // answered by closing, as QEMU does after quit
    peer.close();
  });

  auto client = qemu::QmpClient::fromConnectedFd(peer.takeClient(), 2s);
  REQUIRE_MESSAGE(client.ok(), s2z::tests::errText(client));
  auto status = client->execute("query-status");
  REQUIRE(status.ok());
  CHECK((*status)["status"] == "running");

  auto bad = client->execute("migrate", {{"uri", "fd:nope"}});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::kVmmError);
  CHECK(bad.error().message.find("'nope' not found") != std::string::npos);

  UniqueFd devNull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  CHECK(client->sendFd("snap", devNull.get()).ok());

  auto slow = client->execute("query-migrate", json::object(), 100ms);
  REQUIRE_FALSE(slow.ok());
  CHECK(slow.error().code == ErrorCode::kTimeout);

  auto quit = client->execute("quit", json::object(), 2s);
  REQUIRE_FALSE(quit.ok());
  CHECK(quit.error().code == ErrorCode::kUnavailable);
  CHECK_FALSE(client->connected());
  server.join();
}

TEST_CASE("QMP connect times out on a missing socket") {
  auto start = std::chrono::steady_clock::now();
  auto c = qemu::QmpClient::connect("/nonexistent-s2z/qmp.sock", 150ms);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == ErrorCode::kTimeout);
  CHECK(std::chrono::steady_clock::now() - start >= 150ms);
}

TEST_CASE("qemu version parsing and probe") {
  CHECK(parseQemuVersion("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n") == "7.2.22");
  CHECK(parseQemuVersion("cloud-hypervisor v40.0") == "");
  auto missing = probeHypervisor(Hypervisor::kQemu, "/nonexistent/qemu-system-x86_64");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kNotFound);
  CHECK(missing.error().message.find("qemu binary not found at /nonexistent/qemu-system-x86_64") !=
        std::string::npos);
  auto notQemu = probeQemu("/bin/true");
  REQUIRE_FALSE(notQemu.ok());
  CHECK(notQemu.error().code == ErrorCode::kFailedPrecondition);
  if (std::filesystem::exists("/usr/bin/qemu-system-x86_64")) {
    auto real = probeHypervisor(Hypervisor::kQemu, "/usr/bin/qemu-system-x86_64");
    REQUIRE_MESSAGE(real.ok(), s2z::tests::errText(real));
    CHECK(real->version.rfind("7.", 0) == 0);
    auto byName = probeHypervisor(Hypervisor::kQemu, "qemu-system-x86_64");  // found in PATH
    CHECK_MESSAGE(byName.ok(), s2z::tests::errText(byName));
  }
  auto sh = resolveExecutable("sh");
  REQUIRE(sh.ok());
  CHECK(sh->is_absolute());
  CHECK(resolveExecutable("no-such-program-s2z").error().code == ErrorCode::kNotFound);
  CHECK(std::string(hypervisorName(Hypervisor::kQemu)) == "qemu");
  CHECK(std::string(acceleratorName(Accelerator::kTcg)) == "tcg");
}

TEST_CASE("processesMentioning finds a process by its arguments, and survives processes that exit while it reads") {
  const std::string needle = "s2zt-mention-" + std::to_string(::getpid());
  pid_t sleeper = ::fork();
  if (sleeper == 0) {
    // The needle is the shell's $0; "; :" keeps it from exec'ing sleep. Its
    // own process group, so the sleep goes with it.
    ::setpgid(0, 0);
    ::execlp("sh", "sh", "-c", "sleep 30; :", needle.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  REQUIRE(sleeper > 0);
  std::vector<pid_t> found;
  for (int i = 0; i < 200 && found.empty(); ++i) {  // until the exec has happened
    found = processesMentioning(needle);
    if (found.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(found == std::vector<pid_t>{sleeper});

  // Recovery scans /proc while other processes come and go: one reaped
  // between the open and the read of its cmdline fails the read (ESRCH).
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop) {
      pid_t child = ::fork();
      if (child == 0) ::_exit(0);
      if (child > 0) ::waitpid(child, nullptr, 0);
    }
  });
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  bool threw = false;
  while (std::chrono::steady_clock::now() < until && !threw) {
    try {
      (void)processesMentioning("s2zt-nothing-mentions-this");
    } catch (const std::exception& e) {
      threw = true;
      MESSAGE("threw: " << std::string(e.what()));
    }
  }
  stop = true;
  churn.join();
  CHECK_FALSE(threw);

  ::kill(-sleeper, SIGKILL);
  ::waitpid(sleeper, nullptr, 0);
  CHECK(processesMentioning(needle).empty());
}

TEST_CASE("VmmProcess: own session, chosen fds only, exit status") {
  int pipeFds[2];
  REQUIRE(::pipe2(pipeFds, O_CLOEXEC) == 0);
  UniqueFd out(pipeFds[0]), outWrite(pipeFds[1]);
  UniqueFd extra(::open("/dev/null", O_RDONLY));  // not CLOEXEC: must still not leak
  UniqueFd passed(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c",
               "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; "
               "echo sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$; "
               "readlink /proc/$$/fd/4; exit 3"};
  opts.fds = {{passed.get(), 4}};
  opts.outputFd = outWrite.get();
  auto p = VmmProcess::spawn(opts);
  REQUIRE_MESSAGE(p.ok(), s2z::tests::errText(p));
  outWrite.reset();
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(out.get(), buf, sizeof(buf))) > 0;) text.append(buf, n);
  REQUIRE(p->waitExit(5s));
  ExitStatus st = p->reap();
  CHECK(st.known);
  CHECK(st.exitCode == 3);
  // ls sees its own directory fd (3) besides 0,1,2 and the passed 4.
  CHECK(text.rfind("0 1 2 3 4 \n", 0) == 0);
  CHECK(text.find("/dev/zero") != std::string::npos);
  auto pidPos = text.find("pid=");
  auto sidPos = text.find("sid=");
  REQUIRE(pidPos != std::string::npos);
  CHECK(std::stoi(text.substr(sidPos + 4)) == std::stoi(text.substr(pidPos + 4)));
}

TEST_CASE("VmmProcess: spawn failures, adopt by identity, no kill on destruction") {
  auto missing = VmmProcess::spawn({{"/nonexistent/qemu"}, {}, "", -1, "", 077, {}});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::kNotFound);

  pid_t pid = 0;
  ProcessIdentity id;
  {
    auto p = VmmProcess::spawn({{"/bin/sleep", "30"}, {}, "", -1, "", 077, {}});
    REQUIRE(p.ok());
    id = p->identity();
    pid = id.pid;
    CHECK(id.startTime > 0);
    CHECK(p->running());
  }  // destroyed: the process must survive
  CHECK(::kill(pid, 0) == 0);

  ProcessIdentity wrong = id;
  wrong.startTime += 5;
  auto bad = VmmProcess::adopt(wrong);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == ErrorCode::kNotFound);

  auto adopted = VmmProcess::adopt(id);
  REQUIRE_MESSAGE(adopted.ok(), s2z::tests::errText(adopted));
  CHECK(adopted->running());
  CHECK(adopted->signal(0).ok());
  CHECK(adopted->kill().ok());
  CHECK(::kill(pid, 0) != 0);
  CHECK_FALSE(adopted->valid());

  auto gone = VmmProcess::adopt(id);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().code == ErrorCode::kNotFound);
}

namespace {

// The first mount of `type` ("cgroup2", or "cgroup" for a v1 hierarchy) whose
// options mention `option` (a controller, or "" for any).
std::filesystem::path cgroupMount(const std::string& type, const std::string& option = "") {
  std::ifstream mounts("/proc/mounts");
  std::string dev, dir, fsType, options;
  while (mounts >> dev >> dir >> fsType >> options) {
    if (fsType == type && options.find(option) != std::string::npos) return dir;
    mounts.ignore(4096, '\n');
  }
  return {};
}

pid_t firstMember(const std::filesystem::path& cgroup) {
  std::ifstream procs(cgroup / "cgroup.procs");
  pid_t member = 0;
  procs >> member;
  return member;
}

}  // namespace

TEST_CASE("VmmProcess: a child spawned with cgroups runs in each from its first instruction; a missing one fails naming it") {
  auto mount = cgroupMount("cgroup2");
  REQUIRE_MESSAGE(!mount.empty(), "no cgroup2 mount in /proc/mounts");
  std::string name = "s2z-test-" + std::to_string(::getpid());
  auto scope = mount / (name + ".scope");
  REQUIRE(::mkdir(scope.c_str(), 0755) == 0);
  SpawnOptions opts;
  opts.argv = {"/bin/sleep", "30"};
  opts.cgroups = {scope};
  // Nomad on a cgroup v1 host: one directory per hierarchy (here pids, where mounted).
  auto pids = cgroupMount("cgroup", "pids");
  if (!pids.empty()) {
    REQUIRE(::mkdir((pids / name).c_str(), 0755) == 0);
    opts.cgroups.push_back(pids / name);
  }
  auto p = VmmProcess::spawn(opts);
  REQUIRE_MESSAGE(p.ok(), s2z::tests::errText(p));
  for (const auto& dir : opts.cgroups) CHECK(firstMember(dir) == p->identity().pid);
  REQUIRE(p->kill().ok());
  for (const auto& dir : opts.cgroups) CHECK(::rmdir(dir.c_str()) == 0);  // empty again once the child is reaped

  opts.cgroups = {mount / "s2z-no-such.scope"};
  auto missing = VmmProcess::spawn(opts);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("s2z-no-such.scope/cgroup.procs") != std::string::npos);
}

}  // namespace s2z::vmm
