// Consul Connect beside a VM task in a bridge network, shown rather than
// assumed. Nomad runs the Connect sidecar (Envoy, a docker task) in the
// alloc's netns: it listens on a port of the alloc's address for inbound
// mTLS traffic and forwards it to `local_service_address` (127.0.0.1 by
// default). With every frame that arrives on eth0 redirected to the VM's
// tap (Kata's tcfilter model, agent/README.md), neither half can work:
//  - a process in the netns cannot reach the VM's service: 127.0.0.1 is the
//    netns's own loopback, and the alloc's address is the netns's own too
//    (eth0 keeps it, or CNI CHECK fails), so such a connection never leaves
//    the netns;
//  - a listener of the netns on the alloc's address is unreachable from
//    outside: its packets go to the VM.
// What does work is everything that does not involve a second process in
// the netns: the VM's service on alloc_ip:to and host_ip:host_port.
#include <doctest/doctest.h>

#include "agent/agent.h"
#include "tests/agent/agent_test_support.h"
#include "tests/agent/integration_env.h"
#include "tests/cni/nomad_bridge.h"
#include "tests/cni/stand_in_host.h"
#include "tests/err_text.h"

namespace s2z::cni_test {
namespace {

using namespace std::chrono_literals;

constexpr int kTo = 8080;            // the task's `to` port (the test guest serves 8080)
constexpr int kSidecarPort = 21000;  // the sidecar's inbound listener (Nomad maps it like any port)

// One connection from inside the alloc's netns, as a sidecar would make it:
// "reply <first bytes>" or "error <strerror>".
std::string connectFromNetns(const CniAlloc& alloc, const std::string& address, int port) {
  static const char* kConnect =
      "import socket, sys\n"
      "s = socket.socket()\n"
      "s.settimeout(2)\n"
      "try:\n"
      "    s.connect((sys.argv[1], int(sys.argv[2])))\n"
      "    s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
      "    print('reply', s.recv(64).decode(errors='replace').split('\\n')[0])\n"
      "except OSError as e:\n"
      "    print('error', e.strerror or e)\n";
  auto out = inNetns(alloc.netnsName(), {"python3", "-c", kConnect, address, std::to_string(port)});
  return out.ok() ? *out : "(" + out.error().describe() + ")";
}

}  // namespace

TEST_CASE("Connect sidecar beside a VM task: it can neither reach the VM's service nor be reached itself") {
  if (!agent::testing::guestAvailable()) FAIL("test guest missing in " << agent::testing::guestDir());
  agent::testing::IntegrationEnv env("grpconn");
  {
    auto node = addNodeAddress();
    REQUIRE_MESSAGE(node.ok(), s2z::tests::errText(node));
  }
  const std::string tag = std::to_string(::getpid());
  auto a = CniAlloc::add("conn-" + tag, "s2zt-conn-" + tag, {{28080, kTo, kNodeAddress}},
                         env.stateDir().string() + "/cni");
  REQUIRE_MESSAGE(a.ok(), s2z::tests::errText(a));
  CniAlloc& alloc = **a;

  agent::AgentConfig config;
  config.stateDir = env.stateDir();
  config.bpfPinRoot = env.pinRoot();
  auto made = agent::makeAgent(config);
  REQUIRE_MESSAGE(made.ok(), s2z::tests::errText(made));
  auto spec = agent::testing::testGuestSpec(env.stateDir(), "conn-web-" + tag);
  spec.group.netnsPath = alloc.netnsPath();
  agent::testing::EventLog events;
  auto started = (*made)->start(spec, events.sink());
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  auto inst = *started;

  // What works: the VM's service on the alloc's address and the mapped port.
  REQUIRE_MESSAGE(agent::testing::waitUntil(
                      [&] { return agent::testing::httpGet(alloc.address(), kTo, "/", 1s).status == 200; }, 60s),
                  "the VM never answered on its alloc address");
  CHECK(agent::testing::httpGet(kNodeAddress, 28080, "/", 2s).status == 200);

  // A sidecar's way to the service, from inside the netns: refused both ways.
  std::string viaLoopback = connectFromNetns(alloc, "127.0.0.1", kTo);
  std::string viaAllocAddress = connectFromNetns(alloc, alloc.address(), kTo);
  MESSAGE("from the alloc's netns: 127.0.0.1:" << kTo << " -> " << viaLoopback << "; " << alloc.address() << ":"
                                               << kTo << " -> " << viaAllocAddress);
  CHECK(viaLoopback.rfind("error Connection refused", 0) == 0);
  CHECK(viaAllocAddress.rfind("error Connection refused", 0) == 0);

  // A sidecar's own listener: up inside the netns, unreachable from outside.
  TinyServer sidecar(alloc.netnsPath(), kSidecarPort, "sidecar\n");
  REQUIRE(sidecar.listening());
  CHECK(connectFromNetns(alloc, "127.0.0.1", kSidecarPort) == "reply sidecar\n");
  CHECK(tcpFetch(alloc.address(), kSidecarPort, 2s).empty());  // its packets went to the VM

  REQUIRE(inst->stop(2s, 0).ok());
  CHECK(inst->destroy().ok());
}

}  // namespace s2z::cni_test
