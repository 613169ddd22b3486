// HostNetwork plumbing checked through both our netlink dump and `ip -j`.
#include <doctest/doctest.h>
#include <linux/neighbour.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <memory>
#include <string>

#include "agent/host_network.h"
#include "agent/rtnetlink.h"
#include "agent/tap_device.h"
#include "tests/agent/net_netns.h"

using namespace s2z;
using namespace s2z::agent;

namespace {

nlohmann::json ipJson(const std::string& args) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(("ip -j " + args).c_str(), "r"), ::pclose);
  REQUIRE(p);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

bool hasNeighbour(const nlohmann::json& neigh, const std::string& dst, const std::string& mac) {
  for (const auto& n : neigh) {
    if (n.value("dst", "") != dst || n.value("lladdr", "") != mac) continue;
    for (const auto& s : n.value("state", nlohmann::json::array()))
      if (s == "PERMANENT") return true;
  }
  return false;
}

bool hasRoute(const nlohmann::json& routes, const std::string& dst, const std::string& src) {
  for (const auto& r : routes)
    if (r.value("dst", "") == dst && r.value("prefsrc", "") == src) return true;
  return false;
}

}  // namespace

TEST_CASE("host network: macFor is deterministic and locally administered") {
  CHECK(HostNetwork::macFor("10.89.0.2") == "52:54:00:59:00:02");
  CHECK(HostNetwork::macFor("10.89.1.200") == "52:54:00:59:01:c8");
  CHECK(HostNetwork::macFor("10.89.1.200") == HostNetwork::macFor("10.89.1.200"));
  CHECK(HostNetwork::macFor("10.89.0.3") != HostNetwork::macFor("10.89.0.2"));
}

TEST_CASE("host network: plumb installs address, route and PERMANENT neighbour; unplumb removes") {
  testing::ScopedNetns ns("plumb");
  auto tap = TapDevice::create("s2zplumb");
  REQUIRE_MESSAGE(tap.ok(), testing::why(tap));
  Lease lease{"10.89.0.7", "10.89.0.1", 24, "255.255.255.0"};
  const std::string mac = HostNetwork::macFor(lease.address);

  auto r = HostNetwork::plumb(tap->name(), lease, mac);
  REQUIRE_MESSAGE(r.ok(), testing::why(r));
  // Idempotent: a second plumb (recovery) replaces rather than failing.
  r = HostNetwork::plumb(tap->name(), lease, mac);
  REQUIRE_MESSAGE(r.ok(), testing::why(r));

  const std::string dev = " dev " + tap->name();
  CHECK(hasNeighbour(ipJson("neigh show" + dev), "10.89.0.7", mac));
  CHECK(hasRoute(ipJson("route show" + dev), "10.89.0.7", "10.89.0.1"));
  auto addrs = ipJson("addr show" + dev);
  bool gw = false;
  for (const auto& a : addrs[0]["addr_info"])
    gw |= a.value("local", "") == "10.89.0.1" && a.value("prefixlen", 0) == 32;
  CHECK(gw);

  // The same facts through our own netlink dumps.
  auto nl = RtNetlink::open();
  REQUIRE(nl.ok());
  auto neigh = nl->neighbours(tap->ifindex());
  REQUIRE(neigh.ok());
  REQUIRE(neigh->size() == 1);
  CHECK(formatIpv4((*neigh)[0].addressBe) == "10.89.0.7");
  CHECK((*neigh)[0].state == NUD_PERMANENT);
  auto routes = nl->hostRoutes(tap->ifindex());
  REQUIRE(routes.ok());
  REQUIRE(routes->size() == 1);
  CHECK(formatIpv4((*routes)[0]) == "10.89.0.7");

  r = HostNetwork::unplumb(tap->name(), lease);
  REQUIRE_MESSAGE(r.ok(), testing::why(r));
  CHECK_FALSE(hasNeighbour(ipJson("neigh show" + dev), "10.89.0.7", mac));
  CHECK_FALSE(hasRoute(ipJson("route show" + dev), "10.89.0.7", "10.89.0.1"));
  CHECK(ipJson("addr show" + dev)[0]["addr_info"].empty());
  CHECK(HostNetwork::unplumb(tap->name(), lease).ok());  // idempotent

  REQUIRE(tap->destroy().ok());
  CHECK(HostNetwork::unplumb("s2zplumb", lease).ok());  // tap gone: still ok
}

TEST_CASE("host network: two taps share the gateway; errors name the problem") {
  testing::ScopedNetns ns("plumb2");
  auto t1 = TapDevice::create("s2zp1");
  auto t2 = TapDevice::create("s2zp2");
  REQUIRE(t1.ok());
  REQUIRE(t2.ok());
  Lease l1{"10.89.0.2", "10.89.0.1", 24, "255.255.255.0"};
  Lease l2{"10.89.0.3", "10.89.0.1", 24, "255.255.255.0"};
  REQUIRE(HostNetwork::plumb(t1->name(), l1, HostNetwork::macFor(l1.address)).ok());
  REQUIRE(HostNetwork::plumb(t2->name(), l2, HostNetwork::macFor(l2.address)).ok());
  CHECK(hasRoute(ipJson("route show dev s2zp1"), "10.89.0.2", "10.89.0.1"));
  CHECK(hasRoute(ipJson("route show dev s2zp2"), "10.89.0.3", "10.89.0.1"));
  // Unplumbing one leaves the other intact.
  REQUIRE(HostNetwork::unplumb(t1->name(), l1).ok());
  CHECK(hasNeighbour(ipJson("neigh show dev s2zp2"), "10.89.0.3", HostNetwork::macFor(l2.address)));

  auto noTap = HostNetwork::plumb("s2znone", l1, "52:54:00:00:00:01");
  REQUIRE_FALSE(noTap.ok());
  CHECK(noTap.error().code == ErrorCode::kNotFound);
  auto badMac = HostNetwork::plumb(t1->name(), l1, "52:54:00:zz");
  REQUIRE_FALSE(badMac.ok());
  CHECK(badMac.error().code == ErrorCode::kInvalidArgument);
  auto badAddr = HostNetwork::plumb(t1->name(), Lease{"10.89.0.300", "10.89.0.1", 24, ""}, "52:54:00:00:00:01");
  CHECK(badAddr.error().code == ErrorCode::kInvalidArgument);
  REQUIRE(t1->destroy().ok());
  REQUIRE(t2->destroy().ok());
}
