// A group-network (network { mode = "bridge" }) task through the built
// plugin and the Nomad-client stand-in: the client accepts the group
// because the driver declares GROUP, passes the alloc's netns (made by the
// CNI plugins from the client's conflist, in the stand-in host netns the
// plugin runs in) in network_isolation_spec; the task's driver network is
// the alloc address with the `to` ports; it serves on host_ip:host_port,
// sleeps, wakes on a request there; the netns is left as CNI made it.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <cctype>
#include <thread>

#include "tests/cni/nomad_bridge.h"
#include "tests/cni/stand_in_host.h"
#include "tests/integration/agent_task_helpers.h"
#include "tests/integration/test_env.h"
#include "tests/err_text.h"

namespace s2z::cni_test {
namespace {

using namespace std::chrono_literals;
using integration::TestEnv;

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// The stand-in host (the test's netns, with the node address) and a plugin
// loaded into it for group tasks.
struct GroupPluginHost {
  TestEnv env;
  HostSide host;
  std::unique_ptr<standin::NomadClient> client;
  const std::string tag = std::to_string(::getpid());

  GroupPluginHost() {
    REQUIRE(integration::guestAvailable());
    auto at = HostSide::at(env.netnsPath());
    REQUIRE_MESSAGE(at.ok(), s2z::tests::errText(at));
    host = *at;
    auto node = host.tool({"ip", "addr", "add", std::string(kNodeAddress) + "/32", "dev", "lo"});
    REQUIRE_MESSAGE(node.ok(), s2z::tests::errText(node));
  }

  // After the alloc's netns exists: the plugin's mount namespace is private,
  // so a netns mounted under /run/netns later would not be seen in it.
  standin::NomadClient& loadPlugin() {
    auto opts = env.clientOptions();
    opts.skipProbeAndValidation = true;
    // Plugins share their pinned BPF maps and wake ring through
    // /sys/fs/bpf/s2z-kata (one plugin per host); another plugin running on
    // this machine (a parallel test run) would take this one's wake events.
    // So this plugin gets a bpffs of its own, in a mount namespace of its own.
    const std::string wrapper = env.root() + "/s2z-kata-private-bpffs";
    {
      std::ofstream out(wrapper);
      out << "#!/bin/sh\n"
             "exec unshare --mount --propagation private sh -c "
             "'mount -t bpf bpf /sys/fs/bpf && exec \"$0\" \"$@\"' "
          << opts.launch.path << " \"$@\"\n";
    }
    REQUIRE(::chmod(wrapper.c_str(), 0755) == 0);
    opts.launch.path = wrapper;
    auto loaded = standin::NomadClient::loadPlugin(opts);
    REQUIRE_MESSAGE(loaded.ok(), s2z::tests::errText(loaded));
    client = std::move(*loaded);
    return *client;
  }
};

// `task` into `alloc`'s group network, port http reachable on the node address.
standin::TaskFile inGroup(standin::TaskFile task, const CniAlloc& alloc) {
  task.networkMode = "group";
  task.netnsPath = alloc.netnsPath();
  task.ports[0].hostIp = kNodeAddress;
  return task;
}

TEST_CASE("plugin: a bridge-mode group task gets the alloc's address, serves on host_ip:port, sleeps, wakes, and survives a plugin restart asleep") {
  GroupPluginHost g;
  TestEnv& env = g.env;
  auto a = CniAlloc::add("plugin-alloc-" + g.tag, "s2zt-plg-a-" + g.tag, {{28080, 8080, kNodeAddress}},
                         env.root() + "/cni", g.host);
  REQUIRE_MESSAGE(a.ok(), s2z::tests::errText(a));
  CniAlloc& alloc = **a;
  const std::string cniState = netnsState(alloc);
  standin::NomadClient& c = g.loadPlugin();

  auto task = inGroup(integration::webTask("  scale_to_zero: { enabled: true, idle_timeout: \"3s\" }\n"), alloc);
  auto started = c.startTask(task);
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  const standin::StartedTask& t = *started;
  // address_mode = "driver": the alloc's address and the `to` port.
  CHECK(t.hasNetworkOverride);
  CHECK(t.networkAddr == alloc.address());
  CHECK(t.portMap.at("http") == 8080);

  REQUIRE_MESSAGE(env.waitHttp(kNodeAddress, 28080, 60s), "no answer on host_ip:host_port");
  REQUIRE_MESSAGE(c.waitUntil(30s, [&] { return integration::eventsMatching(c, t.allocId, "sleeping") > 0; }),
                  "no Sleeping event");
  auto woke = env.httpGet(kNodeAddress, 28080, "/", 10s);
  CHECK_MESSAGE(woke.status == 200, woke.error);
  CHECK(c.waitUntil(10s, [&] { return integration::eventsMatching(c, t.allocId, "woken") > 0; }));

  // The plugin dies while the task sleeps; the new one joins the alloc's
  // netns again from the record, finds the tap there, and the next request
  // to host_ip:host_port still wakes it.
  REQUIRE(c.waitUntil(30s, [&] { return integration::eventsMatching(c, t.allocId, "sleeping") > 1; }));
  c.crashPlugin();
  REQUIRE(c.relaunchPlugin().ok());
  auto recovered = c.recoverTask(t);
  REQUIRE_MESSAGE(recovered.ok(), s2z::tests::errText(recovered));
  auto again = env.httpGet(kNodeAddress, 28080, "/", 10s);
  CHECK_MESSAGE(again.status == 200, again.error);
  CHECK(c.waitUntil(10s, [&] { return integration::eventsMatching(c, t.allocId, "woken") > 1; }));

  REQUIRE(c.stopTask(t.id, 5s).ok());
  REQUIRE(c.destroyTask(t.id).ok());
  CHECK(netnsState(alloc) == cniState);
  auto checked = alloc.check();
  CHECK_MESSAGE(checked.ok(), s2z::tests::errText(checked));
}

TEST_CASE("plugin: a task asking to scale to zero on a macvlan network (no host veth) runs awake, and the client's "
          "task events say why") {
  GroupPluginHost g;
  TestEnv& env = g.env;
  REQUIRE(addMacvlanParent(g.host).ok());
  auto a = CniAlloc::addWith(macvlanConflist(env.root() + "/cni"), "plugin-mac-" + g.tag, "s2zt-plg-mac-" + g.tag, {},
                             g.host);
  REQUIRE_MESSAGE(a.ok(), s2z::tests::errText(a));
  CniAlloc& alloc = **a;
  const std::string cniState = netnsState(alloc);
  standin::NomadClient& c = g.loadPlugin();

  auto task = inGroup(integration::webTask("  scale_to_zero: { enabled: true, idle_timeout: \"2s\" }\n"), alloc);
  auto started = c.startTask(task);
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  const standin::StartedTask& t = *started;
  CHECK(t.networkAddr == alloc.address());
  REQUIRE_MESSAGE(env.waitHttp(alloc.address(), 8080, 60s), "no answer on the alloc's address");
  REQUIRE(c.waitUntil(10s, [&] { return integration::eventsMatching(c, t.allocId, "scale to zero off") == 1; }));
  for (const auto& e : c.events()) {
    if (e.allocId == t.allocId && contains(e.message, "Scale to zero off")) {
      MESSAGE(e.message);
      CHECK(contains(e.message, "macvlan"));
      CHECK(e.annotations.at("scale_to_zero") == "off");
    }
  }
  // Idle for more than twice its timeout: never asleep, still serving.
  std::this_thread::sleep_for(5s);
  CHECK(integration::eventsMatching(c, t.allocId, "sleeping") == 0);
  auto still = env.httpGet(alloc.address(), 8080, "/", 5s);
  CHECK_MESSAGE(still.status == 200, still.error);

  integration::stopAndDestroy(c, env, t.id, 5s);
  CHECK(netnsState(alloc) == cniState);
}

// The guest's IPv4 routing table, one "<dst>/<len>[ via <gateway>]" a line,
// read from /proc/net/route (the guest image has python, not iproute2).
constexpr char kPrintRoutes[] =
    "import socket, struct\n"
    "dotted = lambda h: socket.inet_ntoa(struct.pack('<I', int(h, 16)))\n"
    "for f in [l.split() for l in open('/proc/net/route').readlines()[1:]]:\n"
    "    route = dotted(f[1]) + '/' + str(bin(int(f[7], 16)).count('1'))\n"
    "    print(route + (' via ' + dotted(f[2]) if int(f[3], 16) & 2 else ''))\n";

TEST_CASE("plugin: a guest-agent task in a bridge network with MTU 1400 and extra routes: the guest's eth0 gets "
          "them, serves, sleeps, wakes") {
  GroupPluginHost g;
  TestEnv& env = g.env;
  // A CNI bridge below Ethernet's 1500 (the bridge plugin's "mtu", as an
  // overlay or a VPN underneath makes operators set): the alloc's eth0 has
  // 1400, the tap gets it, and ip= cannot tell the guest. host-local's
  // "routes" beyond the default one (one via the bridge, one via another
  // router on the subnet): ip= cannot carry those either.
  auto conflist = nomadBridgeConflist(env.root() + "/cni");
  conflist["plugins"][1]["mtu"] = 1400;
  conflist["plugins"][1]["ipam"]["routes"].push_back({{"dst", "10.123.0.0/16"}});
  conflist["plugins"][1]["ipam"]["routes"].push_back({{"dst", "192.0.2.0/24"}, {"gw", "172.26.64.254"}});
  auto a = CniAlloc::addWith(conflist, "plugin-mtu-" + g.tag, "s2zt-plg-m-" + g.tag, {{28080, 8080, kNodeAddress}},
                             g.host);
  REQUIRE_MESSAGE(a.ok(), s2z::tests::errText(a));
  CniAlloc& alloc = **a;
  auto eth0 = inNetns(alloc.netnsName(), {"cat", "/sys/class/net/eth0/mtu"});
  REQUIRE(eth0.ok());
  REQUIRE(*eth0 == "1400\n");
  auto cniRoutes = inNetns(alloc.netnsName(), {"ip", "-4", "route", "show", "dev", "eth0"});
  REQUIRE(cniRoutes.ok());
  REQUIRE_MESSAGE(contains(*cniRoutes, "10.123.0.0/16 via 172.26.64.1"), *cniRoutes);
  REQUIRE_MESSAGE(contains(*cniRoutes, "192.0.2.0/24 via 172.26.64.254"), *cniRoutes);
  const std::string cniState = netnsState(alloc);
  standin::NomadClient& c = g.loadPlugin();

  auto task = inGroup(integration::agentTask("python3", {"-u", "-c", integration::kServer}, "",
                                             "  scale_to_zero: { enabled: true, idle_timeout: \"4s\" }\n"),
                      alloc);
  auto started = c.startTask(task);
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  const standin::StartedTask& t = *started;
  CHECK(t.networkAddr == alloc.address());
  REQUIRE_MESSAGE(env.waitHttp(kNodeAddress, 28080, 60s), "no answer on host_ip:host_port");

  auto mtu = c.execTask(t.id, {"cat", "/sys/class/net/eth0/mtu"}, 10s);
  REQUIRE_MESSAGE(mtu.ok(), s2z::tests::errText(mtu));
  CHECK(mtu->stdoutText == "1400\n");
  CHECK(mtu->exitCode == 0);
  // The guest's stack sizes its datagrams to it: with don't-fragment set
  // (IP_MTU_DISCOVER = IP_PMTUDISC_DO), 1372 bytes of UDP (1400 on the wire)
  // go out, 1373 are refused with EMSGSIZE in the guest itself.
  const std::string send =
      "import socket, sys\n"
      "k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
      "k.setsockopt(socket.IPPROTO_IP, 10, 2)\n"
      "k.connect((sys.argv[1], 9))\n"
      "for n in (1372, 1373):\n"
      "    try:\n"
      "        k.send(b'x' * n); print(n, 'sent')\n"
      "    except OSError as e:\n"
      "        print(n, e.strerror)\n";
  auto sizes = c.execTask(t.id, {"python3", "-c", send, alloc.gateway()}, 15s);
  REQUIRE_MESSAGE(sizes.ok(), s2z::tests::errText(sizes));
  CHECK_MESSAGE(sizes->stdoutText == "1372 sent\n1373 Message too long\n", sizes->stdoutText << sizes->stderrText);
  // eth0's routes, as CNI made them, are the guest's too.
  auto routes = c.execTask(t.id, {"python3", "-c", kPrintRoutes}, 15s);
  REQUIRE_MESSAGE(routes.ok(), s2z::tests::errText(routes));
  CHECK_MESSAGE(contains(routes->stdoutText, "0.0.0.0/0 via " + alloc.gateway() + "\n"), routes->stdoutText);
  CHECK_MESSAGE(contains(routes->stdoutText, "10.123.0.0/16 via 172.26.64.1\n"), routes->stdoutText);
  CHECK_MESSAGE(contains(routes->stdoutText, "192.0.2.0/24 via 172.26.64.254\n"), routes->stdoutText);

  // Sleeps; a request to host_ip:host_port wakes it and the agent is back.
  REQUIRE_MESSAGE(c.waitUntil(30s, [&] { return integration::eventsMatching(c, t.allocId, "sleeping") > 0; }),
                  "no Sleeping event");
  auto woke = env.httpGet(kNodeAddress, 28080, "/", 10s);
  CHECK_MESSAGE(woke.status == 200, woke.error);
  CHECK(c.waitUntil(10s, [&] { return integration::eventsMatching(c, t.allocId, "woken") > 0; }));
  auto after = c.execTask(t.id, {"cat", "/sys/class/net/eth0/mtu"}, 10s);
  REQUIRE(after.ok());
  CHECK(after->stdoutText == "1400\n");

  integration::stopAndDestroy(c, env, t.id, 5s);
  CHECK(netnsState(alloc) == cniState);
}

}  // namespace
}  // namespace s2z::cni_test
