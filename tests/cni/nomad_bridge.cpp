#include "tests/cni/nomad_bridge.h"

#include <chrono>
#include <thread>

#include "tests/cni/cni_plugin_runner.h"

namespace s2z::cni_test {

using nlohmann::json;

json nomadBridgeConflist(const std::string& dataDir, bool hairpinMode) {
  // client/allocrunner/cni/bridge.go, NewNomadBridgeConflist (Nomad 1.10):
  // cniVersion 0.4.0, name "nomad", these four plugins in this order.
  return json{
      {"cniVersion", "0.4.0"},
      {"name", "nomad"},
      {"plugins",
       json::array({
           json{{"type", "loopback"}},
           json{{"type", "bridge"},
                {"bridge", kBridgeName},
                {"ipMasq", true},
                {"isGateway", true},
                {"forceAddress", true},
                {"hairpinMode", hairpinMode},  // the client's bridge_network_hairpin_mode
                {"ipam",
                 {{"type", "host-local"},
                  {"ranges", json::array({json::array({json{{"subnet", kBridgeSubnet}}})})},
                  {"routes", json::array({json{{"dst", "0.0.0.0/0"}}})},
                  {"dataDir", dataDir}}}},
           json{{"type", "firewall"}, {"backend", "iptables"}, {"iptablesAdminChainName", "NOMAD-ADMIN"}},
           json{{"type", "portmap"}, {"capabilities", {{"portMappings", true}}}, {"snat", true}},
       })},
  };
}

Result<HostSide> HostSide::at(const std::string& netnsPath) {
  HostSide side;
  if (netnsPath.empty()) return side;
  auto ns = agent::NetnsHandle::open(netnsPath);
  if (!ns.ok()) return ns.error();
  side.netns_ = std::make_shared<const agent::NetnsHandle>(std::move(*ns));
  return side;
}

Result<std::string> HostSide::tool(const std::vector<std::string>& argv) const {
  if (!netns_) return runTool(argv);
  return netns_->run([&] { return runTool(argv); });
}

Result<std::string> HostSide::plugin(const std::string& type, const CniInvocation& call,
                                     const std::string& config) const {
  if (!netns_) return runCniPlugin(type, call, config);
  return netns_->run([&] { return runCniPlugin(type, call, config); });
}

Result<void> ensureNomadAdminChain(const HostSide& host) {
  // networking_iptables.go: ensure the chain, then the rule if missing.
  (void)host.tool({"iptables", "-w", "-t", "filter", "-N", "NOMAD-ADMIN"});
  const std::vector<std::string> rule = {"-o", kBridgeName, "-d", kBridgeSubnet, "-j", "ACCEPT"};
  std::vector<std::string> check = {"iptables", "-w", "-t", "filter", "-C", "NOMAD-ADMIN"};
  check.insert(check.end(), rule.begin(), rule.end());
  if (host.tool(check).ok()) return okResult();
  std::vector<std::string> append = {"iptables", "-w", "-t", "filter", "-A", "NOMAD-ADMIN"};
  append.insert(append.end(), rule.begin(), rule.end());
  auto done = host.tool(append);
  if (!done.ok()) return done.error().wrap("NOMAD-ADMIN rule");
  return okResult();
}

Result<std::string> inNetns(const std::string& netnsName, const std::vector<std::string>& argv) {
  std::vector<std::string> full = {"ip", "netns", "exec", netnsName};
  full.insert(full.end(), argv.begin(), argv.end());
  return runTool(full);
}

Result<void> addMacvlanParent(const HostSide& host) {
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"ip", "link", "add", "s2zmparent", "type", "veth", "peer", "name", "s2zmpeer"},
           {"ip", "addr", "add", std::string(kMacvlanGateway) + "/24", "dev", "s2zmpeer"},
           {"ip", "link", "set", "s2zmparent", "up"},
           {"ip", "link", "set", "s2zmpeer", "up"}}) {
    auto done = host.tool(argv);
    if (!done.ok()) return done.error().wrap("macvlan parent");
  }
  return okResult();
}

nlohmann::json macvlanConflist(const std::string& dataDir) {
  using nlohmann::json;
  return {{"cniVersion", "0.4.0"},
          {"name", "macnet"},
          {"plugins", json::array({json{{"type", "macvlan"},
                                        {"master", "s2zmparent"},
                                        {"mode", "bridge"},
                                        {"ipam",
                                         {{"type", "host-local"},
                                          {"ranges", json::array({json::array({json{{"subnet", "192.168.77.0/24"}}})})},
                                          {"routes", json::array({json{{"dst", "0.0.0.0/0"}}})},
                                          {"dataDir", dataDir}}}}})}};
}

std::string netnsState(const CniAlloc& alloc) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto addrs = inNetns(alloc.netnsName(), {"ip", "addr", "show"});
    if (!addrs.ok() || addrs->find("tentative") == std::string::npos) break;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string out;
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"ip", "-d", "link", "show", "dev", "eth0"},
           {"ip", "-o", "link", "show"},
           {"ip", "addr", "show"},
           {"ip", "route", "show", "table", "all"},
           {"tc", "qdisc", "show", "dev", "eth0"},
           {"tc", "filter", "show", "dev", "eth0", "ingress"}}) {
    auto text = inNetns(alloc.netnsName(), argv);
    out += text.ok() ? *text : "(" + text.error().describe() + ")\n";
  }
  return out;
}

Result<std::unique_ptr<CniAlloc>> CniAlloc::add(const std::string& allocId, const std::string& netnsName,
                                                const std::vector<PortMapping>& ports,
                                                const std::string& dataDir, HostSide host) {
  S2Z_TRY(ensureNomadAdminChain(host), "CNI ADD " + allocId);
  auto made = runTool({"ip", "netns", "add", netnsName});
  if (!made.ok()) return made.error().wrap("netns for " + allocId);
  std::unique_ptr<CniAlloc> alloc(new CniAlloc(allocId, netnsName, ports, dataDir, std::move(host)));
  alloc->conflist_ = nomadBridgeConflist(dataDir);
  S2Z_TRY(alloc->addChain(), "CNI ADD " + allocId);
  return alloc;
}

Result<std::unique_ptr<CniAlloc>> CniAlloc::addWith(json conflist, const std::string& allocId,
                                                    const std::string& netnsName,
                                                    const std::vector<PortMapping>& ports, HostSide host) {
  auto made = runTool({"ip", "netns", "add", netnsName});
  if (!made.ok()) return made.error().wrap("netns for " + allocId);
  std::unique_ptr<CniAlloc> alloc(new CniAlloc(allocId, netnsName, ports, "", std::move(host)));
  alloc->conflist_ = std::move(conflist);
  S2Z_TRY(alloc->addChain(), "CNI ADD " + allocId);
  return alloc;
}

CniAlloc::~CniAlloc() {
  if (added_) (void)del();
  (void)runTool({"ip", "netns", "del", netnsName_});
}

std::string CniAlloc::cniArgs() const {
  // go-cni joins the labels as K=V;K=V; Nomad's (networking_cni.go Setup).
  return "IgnoreUnknown=true;NOMAD_REGION=global;NOMAD_NAMESPACE=default;NOMAD_JOB_ID=web;"
         "NOMAD_GROUP_NAME=web;NOMAD_ALLOC_ID=" + allocId_;
}

CniInvocation CniAlloc::invocation(const std::string& command) const {
  CniInvocation call;
  call.command = command;
  call.containerId = allocId_;  // Nomad's container id is the alloc id
  call.netns = netnsPath();
  call.args = cniArgs();
  return call;
}

json CniAlloc::pluginConfig(const json& plugin, const json& prevResult) const {
  json conf = plugin;
  conf["name"] = conflist_["name"];
  conf["cniVersion"] = conflist_["cniVersion"];
  if (!prevResult.is_null()) conf["prevResult"] = prevResult;
  // Capabilities the plugin declares get their runtime config (portmap).
  if (plugin.contains("capabilities") && plugin["capabilities"].value("portMappings", false)) {
    json mappings = json::array();
    for (const auto& p : ports_) {
      for (const char* proto : {"tcp", "udp"}) {
        mappings.push_back(json{{"hostPort", p.hostPort},
                                {"containerPort", p.containerPort},
                                {"protocol", proto},
                                {"hostIP", p.hostIp}});
      }
    }
    conf["runtimeConfig"] = json{{"portMappings", mappings}};
  }
  return conf;
}

Result<void> CniAlloc::addChain() {
  CniInvocation call = invocation("ADD");
  json prev;
  added_ = true;  // a half-made chain is torn down by DEL too
  for (const auto& plugin : conflist_["plugins"]) {
    auto out = host_.plugin(plugin["type"], call, pluginConfig(plugin, prev).dump());
    if (!out.ok()) return out.error();
    try {
      prev = json::parse(*out);
    } catch (const std::exception& e) {
      return makeError(ErrorCode::kInternal, "CNI ADD " + plugin["type"].get<std::string>() +
                                                 ": result is not JSON: " + *out);
    }
  }
  result_ = prev;
  return okResult();
}

Result<void> CniAlloc::check() const {
  CniInvocation call = invocation("CHECK");
  for (const auto& plugin : conflist_["plugins"]) {
    // Debian 12's portmap (1.1.1) fails CHECK on any IPv4-only result,
    // looking for ip6tables rules it never made (containernetworking/plugins
    // #819, fixed upstream later). What a VM task changes is eth0, which the
    // bridge plugin's CHECK verifies (its addresses and routes).
    if (plugin["type"] == "portmap") continue;
    auto out = host_.plugin(plugin["type"], call, pluginConfig(plugin, result_).dump());
    if (!out.ok()) return out.error();
  }
  return okResult();
}

Result<void> CniAlloc::del() {
  CniInvocation call = invocation("DEL");
  json plugins = conflist_["plugins"];
  Result<void> first;
  for (auto it = plugins.rbegin(); it != plugins.rend(); ++it) {
    auto out = host_.plugin((*it)["type"], call, pluginConfig(*it, result_).dump());
    if (!out.ok() && first.ok()) first = out.error();
  }
  added_ = false;
  return first;
}

std::string CniAlloc::address() const {
  // The first IPv4 of the sandbox interface (cniToAllocNet), "a.b.c.d/len".
  for (const auto& ip : result_.value("ips", json::array())) {
    std::string cidr = ip.value("address", "");
    if (cidr.find('.') != std::string::npos) return cidr.substr(0, cidr.find('/'));
  }
  return "";
}

std::string CniAlloc::gateway() const {
  for (const auto& ip : result_.value("ips", json::array())) {
    if (ip.contains("gateway")) return ip["gateway"];
  }
  return "";
}

}  // namespace s2z::cni_test
