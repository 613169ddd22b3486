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

#include "tests/cni/nomad_bridge.h"
#include "tests/cni/stand_in_host.h"
#include "tests/integration/test_env.h"

namespace s2z::cni_test {
namespace {

using namespace std::chrono_literals;
using integration::TestEnv;

// What CNI made in the alloc's netns (see group_network_test.cpp).
std::string netnsState(const CniAlloc& alloc) {
  std::string out;
  for (const auto& argv : std::vector<std::vector<std::string>>{{"ip", "-d", "link", "show", "dev", "eth0"},
                                                                {"ip", "-o", "link", "show"},
                                                                {"ip", "addr", "show"},
                                                                {"ip", "route", "show", "table", "all"},
                                                                {"tc", "qdisc", "show", "dev", "eth0"}}) {
    auto text = inNetns(alloc.netnsName(), argv);
    out += text.ok() ? *text : "(" + text.error().describe() + ")\n";
  }
  return out;
}

TEST_CASE("plugin: a bridge-mode group task gets the alloc's address, serves on host_ip:port, sleeps, wakes, and survives a plugin restart asleep") {
  REQUIRE(integration::guestAvailable());
  TestEnv env;
  auto host = HostSide::at(env.netnsPath());
  REQUIRE_MESSAGE(host.ok(), host.error().describe());
  auto node = host->tool({"ip", "addr", "add", std::string(kNodeAddress) + "/32", "dev", "lo"});
  REQUIRE_MESSAGE(node.ok(), node.error().describe());
  const std::string tag = std::to_string(::getpid());
  auto a = CniAlloc::add("plugin-alloc-" + tag, "s2zt-plg-a-" + tag, {{28080, 8080, kNodeAddress}},
                         env.root() + "/cni", *host);
  REQUIRE_MESSAGE(a.ok(), a.error().describe());
  CniAlloc& alloc = **a;
  const std::string cniState = netnsState(alloc);

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
  REQUIRE_MESSAGE(loaded.ok(), loaded.error().describe());
  standin::NomadClient& c = **loaded;

  auto task = integration::webTask("  scale_to_zero: { enabled: true, idle_timeout: \"3s\" }\n");
  task.networkMode = "group";
  task.netnsPath = alloc.netnsPath();
  task.ports[0].hostIp = kNodeAddress;
  auto started = c.startTask(task);
  REQUIRE_MESSAGE(started.ok(), started.error().describe());
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
  REQUIRE_MESSAGE(recovered.ok(), recovered.error().describe());
  auto again = env.httpGet(kNodeAddress, 28080, "/", 10s);
  CHECK_MESSAGE(again.status == 200, again.error);
  CHECK(c.waitUntil(10s, [&] { return integration::eventsMatching(c, t.allocId, "woken") > 1; }));

  REQUIRE(c.stopTask(t.id, 5s).ok());
  REQUIRE(c.destroyTask(t.id).ok());
  CHECK(netnsState(alloc) == cniState);
  auto checked = alloc.check();
  CHECK_MESSAGE(checked.ok(), checked.error().describe());
}

}  // namespace
}  // namespace s2z::cni_test
