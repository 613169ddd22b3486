// The guest agent in a real VM (QEMU, TCG) with the Debian test rootfs: the
// workload's argv, env, user, directory and output; exit codes, signals and
// the OOM killer; start errors; the clock; reconnects; power off at the end.
// Each case boots its own VM (3-5 s under TCG).
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <chrono>
#include <random>
#include <thread>

#include <doctest/doctest.h>

#include "tests/guest/agent_client.h"
#include "tests/guest/agent_vm.h"

namespace s2z::guest::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kBoot = 60s;  // generous: TCG on a loaded 2-core machine
constexpr auto kCall = 20s;

uint64_t randomSession() { return std::random_device{}() | (uint64_t{std::random_device{}()} << 32); }

// Boots a VM and says Hello; prints boot-to-HelloReply time once per case.
struct Booted {
  AgentVm vm;
  AgentClient client{vm.agentSocket()};
  uint64_t session = randomSession();
  explicit Booted(const AgentVmExtras& extras = {}) : vm(extras) {
    auto reply = client.connect(session, kBoot);
    REQUIRE(reply.error().empty());
    CHECK(reply.protocol_version() == 1);
    CHECK_FALSE(reply.agent_version().empty());
    CHECK_FALSE(reply.workload().started());
    MESSAGE("boot to HelloReply: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - vm.startedAt()).count() << " ms");
  }
};

// Waits until `text` shows up in the VM's stdout.log.
bool waitStdout(const AgentVm& vm, const std::string& text, std::chrono::milliseconds timeout) {
  for (auto deadline = Clock::now() + timeout; Clock::now() < deadline; std::this_thread::sleep_for(20ms)) {
    if (vm.stdoutText().find(text) != std::string::npos) return true;
  }
  return false;
}

// The exit event, acknowledged; then the VM must power off (QEMU exits 0).
pb::WorkloadExited expectExitAndPowerOff(Booted& b, std::chrono::milliseconds timeout = 30s) {
  INFO("console:\n" << b.vm.consoleText());
  pb::Event event = b.client.waitEvent(timeout);
  REQUIRE(event.has_workload_exited());
  b.client.ack();
  CHECK_MESSAGE(b.vm.waitExit(20s), "the VM did not power off after the exit was acknowledged\n"
                                        << b.vm.consoleText());
  CHECK(WIFEXITED(b.vm.exitStatus()));
  return event.workload_exited();
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("agent: argv, env, working dir and a named user; stdout and stderr apart; exit 3; power off") {
  Booted b;
  const std::string script =
      "echo \"argv:$0:$1\"; echo \"uid:$(id -u) gid:$(id -g) groups:$(id -G) user:$(id -un)\"; "
      "echo \"pwd:$(pwd)\"; env | sort | sed 's/^/env:/'; echo only-on-stderr >&2; exit 3";
  auto r = b.client.call(
      startWorkload({"sh", "-c", script, "zero", "one"}, "app", "/home/app", {"GREETING=hello world", "EMPTY="}),
      kCall);
  REQUIRE_MESSAGE(r.error().empty(), r.error());
  CHECK(r.start_workload().pid() > 1);
  auto exited = expectExitAndPowerOff(b);
  CHECK(exited.exit_code() == 3);
  CHECK(exited.signal() == 0);
  CHECK_FALSE(exited.oom_killed());

  std::string out = b.vm.stdoutText();
  INFO("stdout:\n" << out);
  CHECK(out.find("argv:zero:one\n") != std::string::npos);
  CHECK(out.find("uid:1000 gid:1000 groups:1000 user:app\n") != std::string::npos);
  CHECK(out.find("pwd:/home/app\n") != std::string::npos);
  CHECK(out.find("env:GREETING=hello world\n") != std::string::npos);
  CHECK(out.find("env:EMPTY=\n") != std::string::npos);
  CHECK(out.find("env:HOME=/home/app\n") != std::string::npos);
  CHECK(out.find("env:USER=app\n") != std::string::npos);
  CHECK(out.find("env:PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n") != std::string::npos);
  CHECK(out.find("only-on-stderr") == std::string::npos);
  CHECK(b.vm.stderrText() == "only-on-stderr\n");
}

TEST_CASE("agent: numeric uid:gid, default working dir, exit 0, the agent's own footprint") {
  Booted b;
  auto r = b.client.call(
      startWorkload({"/bin/sh", "-c",
                     "echo \"ids:$(id -u):$(id -g) pwd:$(pwd) home:$HOME\"; grep VmRSS /proc/1/status; "
                     "cat /etc/hostname; busybox true && echo busybox-ok; python3 -c 'print(\"py-ok\")'"},
                    "1000:1000", "", {"PATH=/usr/bin:/bin"}),
      kCall);
  REQUIRE_MESSAGE(r.error().empty(), r.error());
  auto exited = expectExitAndPowerOff(b);
  CHECK(exited.exit_code() == 0);
  CHECK(exited.signal() == 0);
  std::string out = b.vm.stdoutText();
  INFO("stdout:\n" << out);
  CHECK(out.find("ids:1000:1000 pwd:/ home:/home/app\n") != std::string::npos);
  CHECK(out.find("agent-test\n") != std::string::npos);
  CHECK(out.find("busybox-ok\n") != std::string::npos);
  CHECK(out.find("py-ok\n") != std::string::npos);
  auto rss = out.find("VmRSS:");
  REQUIRE(rss != std::string::npos);
  long kib = std::strtol(out.c_str() + rss + 6, nullptr, 10);
  MESSAGE("agent (PID 1) VmRSS in the guest: " << kib << " kB");
  CHECK(kib > 0);
  CHECK(kib <= 2048);
}

TEST_CASE("agent: start errors name the command, user and directory; signals; a second start") {
  Booted b;
  auto r = b.client.call(signalProcess(SIGTERM), kCall);
  CHECK(r.error().find("not started") != std::string::npos);

  r = b.client.call(startWorkload({"no-such-program", "x"}), kCall);
  CHECK_MESSAGE(r.error().find("command \"no-such-program\" not found in the task's root filesystem (PATH=") !=
                    std::string::npos,
                r.error());
  r = b.client.call(startWorkload({"/opt/missing/tool"}), kCall);
  CHECK_MESSAGE(r.error().find("command \"/opt/missing/tool\" not found") != std::string::npos, r.error());
  r = b.client.call(startWorkload({"sh", "-c", "true"}, "nobody-here"), kCall);
  CHECK_MESSAGE(r.error().find("unknown user \"nobody-here\": not in the root filesystem's /etc/passwd") !=
                    std::string::npos,
                r.error());
  r = b.client.call(startWorkload({"sh", "-c", "true"}, "", "/no/such/dir"), kCall);
  CHECK_MESSAGE(r.error().find("/no/such/dir") != std::string::npos, r.error());
  r = b.client.call(startWorkload({}), kCall);
  CHECK_FALSE(r.error().empty());

  // Failed starts leave the agent ready for a good one.
  r = b.client.call(startWorkload({"sh", "-c", "echo sleeping; exec sleep 600"}), kCall);
  REQUIRE_MESSAGE(r.error().empty(), r.error());
  r = b.client.call(startWorkload({"sh", "-c", "echo second"}), kCall);
  CHECK(r.error() == "workload already started");
  REQUIRE(waitStdout(b.vm, "sleeping\n", 20s));
  r = b.client.call(signalProcess(SIGKILL), kCall);
  CHECK_MESSAGE(r.error().empty(), r.error());
  auto exited = expectExitAndPowerOff(b);
  CHECK(exited.signal() == SIGKILL);
  CHECK(exited.exit_code() == 128 + SIGKILL);
  CHECK_FALSE(exited.oom_killed());
  CHECK(b.vm.stdoutText().find("second") == std::string::npos);
}

TEST_CASE("agent: a workload that handles SIGTERM exits 0") {
  Booted b;
  const char* program =
      "import signal, sys, time\n"
      "def stop(signo, frame):\n"
      "    print('got SIGTERM', flush=True)\n"
      "    sys.exit(0)\n"
      "signal.signal(signal.SIGTERM, stop)\n"
      "print('ready', flush=True)\n"
      "while True:\n"
      "    time.sleep(0.1)\n";
  auto r = b.client.call(startWorkload({"python3", "-c", program}), kCall);
  REQUIRE_MESSAGE(r.error().empty(), r.error());
  REQUIRE_MESSAGE(waitStdout(b.vm, "ready\n", 30s), b.vm.stdoutText() << b.vm.stderrText());
  r = b.client.call(signalProcess(SIGTERM), kCall);
  CHECK_MESSAGE(r.error().empty(), r.error());
  auto exited = expectExitAndPowerOff(b);
  CHECK(exited.exit_code() == 0);
  CHECK(exited.signal() == 0);
  CHECK(b.vm.stdoutText() == "ready\ngot SIGTERM\n");
  // After the exit the agent refuses signals (not sent: the VM is gone).
}

TEST_CASE("agent: the OOM killer ends the workload, not the agent") {
  Booted b;
  const char* program =
      "chunks = []\n"
      "while True:\n"
      "    chunks.append(b'\\x01' * (8 << 20))\n";
  auto r = b.client.call(startWorkload({"python3", "-c", program}), kCall);
  REQUIRE_MESSAGE(r.error().empty(), r.error());
  auto exited = expectExitAndPowerOff(b, 90s);
  CHECK(exited.oom_killed());
  CHECK(exited.signal() == SIGKILL);
  // Killed at the workload cgroup's limit, with the rest of the guest free.
  CHECK_MESSAGE(b.vm.consoleText().find("Memory cgroup out of memory: Killed process") != std::string::npos,
                b.vm.consoleText());
}

TEST_CASE("agent: SetGuestDateTime then GetGuestDateTime; ReseedRandomDev") {
  Booted b;
  const int64_t setSec = 2000000000;  // 2033-05-18, far from the guest's own idea
  const int64_t setUsec = 250000;
  pb::Request set;
  set.mutable_set_guest_date_time()->set_sec(setSec);
  set.mutable_set_guest_date_time()->set_usec(setUsec);
  auto sent = Clock::now();
  auto r = b.client.call(set, kCall);
  REQUIRE_MESSAGE(r.error().empty(), r.error());
  pb::Request get;
  get.mutable_get_guest_date_time();
  r = b.client.call(get, kCall);
  auto elapsedUs = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent).count();
  REQUIRE_MESSAGE(r.error().empty(), r.error());
  REQUIRE(r.has_guest_date_time());
  int64_t gotUs = r.guest_date_time().sec() * 1000000 + r.guest_date_time().usec();
  int64_t setUs = setSec * 1000000 + setUsec;
  MESSAGE("guest clock after set: +" << (gotUs - setUs) << " us, round trips took " << elapsedUs << " us");
  CHECK(gotUs >= setUs);
  CHECK(gotUs <= setUs + elapsedUs + 50000);

  pb::Request bad;
  bad.mutable_set_guest_date_time()->set_sec(setSec);
  bad.mutable_set_guest_date_time()->set_usec(2000000);
  CHECK_FALSE(b.client.call(bad, kCall).error().empty());

  pb::Request seed;
  seed.mutable_reseed_random_dev()->set_data(std::string(64, '\x5a'));
  r = b.client.call(seed, kCall);
  CHECK_MESSAGE(r.error().empty(), r.error());
}

TEST_CASE("agent: a reconnect with the same session loses and duplicates nothing") {
  Booted b;
  // The request goes out, the connection drops before the response is read:
  // the response must come after the next Hello, once, and the request must
  // not run twice although the host sends it again.
  uint64_t id = b.client.send(startWorkload({"sh", "-c", "echo started; exec sleep 600"}));
  b.client.disconnect();
  std::this_thread::sleep_for(500ms);  // the guest runs it and answers into the void
  auto reply = b.client.connect(b.session, kCall);
  REQUIRE(reply.error().empty());
  auto r = b.client.waitResponse(id, kCall);
  CHECK_MESSAGE(r.error().empty(), r.error());
  CHECK(r.start_workload().pid() > 1);
  REQUIRE(waitStdout(b.vm, "started\n", 20s));

  // Again, with the drop right after sending, and a second reconnect.
  pb::Request get;
  get.mutable_get_guest_date_time();
  uint64_t id2 = b.client.send(get);
  b.client.disconnect();
  reply = b.client.connect(b.session, kCall);
  REQUIRE(reply.error().empty());
  CHECK(reply.workload().started());
  CHECK_FALSE(reply.workload().exited());
  CHECK(b.client.waitResponse(id2, kCall).has_guest_date_time());

  r = b.client.call(signalProcess(SIGKILL), kCall);
  CHECK_MESSAGE(r.error().empty(), r.error());
  auto exited = expectExitAndPowerOff(b);
  CHECK(exited.signal() == SIGKILL);

  // Exactly once: one delivery per guest seq, one response per request id.
  uint64_t expect = 1;
  size_t responsesToFirst = 0;
  for (const auto& f : b.client.delivered()) {
    CHECK(f.seq() == expect++);
    if (f.has_response() && f.response().id() == id) ++responsesToFirst;
  }
  CHECK(responsesToFirst == 1);
  CHECK(count(b.vm.stdoutText(), "started\n") == 1);
}

TEST_CASE("agent: Hellos read at once are answered once") {
  // A restored guest that was slow to run finds the host's repeated Hellos
  // together: one HelloReply, and nothing resent twice.
  Booted b;
  uint64_t id = b.client.send(startWorkload({"sh", "-c", "exec sleep 600"}));
  b.client.disconnect();
  std::this_thread::sleep_for(500ms);  // its response goes into the void
  int before = b.client.helloReplies();
  auto reply = b.client.connect(b.session, kCall, 1, 4);
  REQUIRE(reply.error().empty());
  auto r = b.client.waitResponse(id, kCall);
  CHECK_MESSAGE(r.error().empty(), r.error());
  pb::Request get;
  get.mutable_get_guest_date_time();
  CHECK(b.client.call(get, kCall).has_guest_date_time());  // later than any other reply
  CHECK(b.client.helloReplies() - before == 1);
  size_t responses = 0;
  for (const auto& f : b.client.delivered()) responses += f.has_response() && f.response().id() == id;
  CHECK(responses == 1);
}

TEST_CASE("agent: a host speaking another protocol version is refused") {
  Booted b;
  AgentClient other(b.vm.agentSocket());
  b.client.disconnect();
  auto reply = other.connect(b.session + 1, kCall, 99);
  CHECK(reply.error().find("protocol version 99") != std::string::npos);
  other.disconnect();
  // A host with the right version is served again.
  reply = b.client.connect(b.session, kCall);
  CHECK(reply.error().empty());
  pb::Request get;
  get.mutable_get_guest_date_time();
  CHECK(b.client.call(get, kCall).has_guest_date_time());
}

TEST_CASE("agent: eth0 from ip=, with a gateway outside the netmask") {
  // A /32 address: the gateway is reachable only through the host route the
  // agent adds before the default route.
  Booted b(AgentVmExtras{{"-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-device,netdev=n0"},
                         "ip=10.89.0.2::10.89.1.1:255.255.255.255::eth0:off"});
  auto r = b.client.call(
      startWorkload({"sh", "-c", "cat /proc/net/route; busybox ip -4 addr show dev eth0; busybox ip -4 addr show dev lo"}),
      kCall);
  REQUIRE_MESSAGE(r.error().empty(), r.error());
  auto exited = expectExitAndPowerOff(b);
  CHECK(exited.exit_code() == 0);
  std::string out = b.vm.stdoutText();
  INFO("stdout:\n" << out << "\nconsole:\n" << b.vm.consoleText());
  // /proc/net/route: hex little-endian; 10.89.1.1 = 0101590A, flags 0005 = UP|HOST, 0003 = UP|GATEWAY.
  CHECK(out.find("eth0\t0101590A\t00000000\t0005") != std::string::npos);
  CHECK(out.find("eth0\t00000000\t0101590A\t0003") != std::string::npos);
  CHECK(out.find("inet 10.89.0.2/32") != std::string::npos);
  CHECK(out.find("inet 127.0.0.1/8") != std::string::npos);
}

}  // namespace s2z::guest::testing
