#include "guest/agent/network_config.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/unique_fd.h"

namespace s2z::guest {

namespace {

std::string dottedNetmask(unsigned prefix) {
  in_addr mask{htonl(prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix))};
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &mask, text, sizeof text);
  return text;
}

// "<dst>/<len>" or "<dst>/<len>,<gateway>".
std::optional<IpRoute> parseRoute(const std::string& text) {
  size_t slash = text.find('/'), comma = text.find(',');
  if (slash == std::string::npos) return std::nullopt;
  std::string dst = text.substr(0, slash);
  std::string len = text.substr(slash + 1, comma == std::string::npos ? std::string::npos : comma - slash - 1);
  std::string gateway = comma == std::string::npos ? "" : text.substr(comma + 1);
  char* rest = nullptr;
  unsigned long prefix = std::strtoul(len.c_str(), &rest, 10);
  in_addr d{}, g{};
  if (len.empty() || *rest != '\0' || prefix < 1 || prefix > 32 || ::inet_pton(AF_INET, dst.c_str(), &d) != 1) {
    return std::nullopt;
  }
  if (comma != std::string::npos && ::inet_pton(AF_INET, gateway.c_str(), &g) != 1) return std::nullopt;
  if ((ntohl(d.s_addr) & ~(~uint32_t{0} << (32 - prefix))) != 0) return std::nullopt;
  return IpRoute{dst, dottedNetmask(static_cast<unsigned>(prefix)), gateway};
}

}  // namespace

std::optional<IpConfig> parseIpParameter(const std::string& cmdline) {
  size_t pos = 0;
  std::string value;
  bool found = false;
  unsigned long mtu = 0;
  std::vector<IpRoute> routes;
  while (pos < cmdline.size()) {  // the last ip= wins, as in the kernel
    size_t end = cmdline.find_first_of(" \n", pos);
    if (end == std::string::npos) end = cmdline.size();
    if (cmdline.compare(pos, 3, "ip=") == 0) {
      value = cmdline.substr(pos + 3, end - pos - 3);
      found = true;
    } else if (cmdline.compare(pos, 8, "s2z.mtu=") == 0) {
      std::string digits = cmdline.substr(pos + 8, end - pos - 8);
      char* rest = nullptr;
      mtu = std::strtoul(digits.c_str(), &rest, 10);
      if (digits.empty() || *rest != '\0' || mtu < 68 || mtu > 65535) mtu = 0;  // IPv4's minimum
    } else if (cmdline.compare(pos, 10, "s2z.route=") == 0) {
      if (auto route = parseRoute(cmdline.substr(pos + 10, end - pos - 10))) routes.push_back(*route);
    }
    pos = end + 1;
  }
  if (!found) return std::nullopt;
  // <client>:<server>:<gw>:<netmask>:<hostname>:<device>:<autoconf>
  std::vector<std::string> fields;
  size_t start = 0;
  for (;;) {
    size_t colon = value.find(':', start);
    fields.push_back(value.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (fields.size() < 4 || fields[0].empty()) return std::nullopt;
  in_addr probe{};
  if (::inet_pton(AF_INET, fields[0].c_str(), &probe) != 1) return std::nullopt;
  IpConfig config;
  config.address = fields[0];
  config.gateway = fields[2];
  config.netmask = fields[3].empty() ? "255.255.255.0" : fields[3];
  if (fields.size() > 5 && !fields[5].empty()) config.device = fields[5];
  config.mtu = static_cast<unsigned>(mtu);
  config.routes = std::move(routes);
  return config;
}

namespace {

Result<sockaddr> inetAddress(const std::string& text) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  if (::inet_pton(AF_INET, text.c_str(), &sin.sin_addr) != 1) {
    return makeError(ErrorCode::kInvalidArgument, "bad IPv4 address \"" + text + "\"");
  }
  sockaddr sa{};
  std::memcpy(&sa, &sin, sizeof sin);
  return sa;
}

Result<void> setUp(int sock, const std::string& device) {
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, device.c_str(), IFNAMSIZ - 1);
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) return systemError("get flags of " + device);
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) return systemError("bring up " + device);
  return okResult();
}

Result<void> addRoute(int sock, const std::string& device, const std::string& dst,
                      const std::string& mask, const std::string& gateway) {
  rtentry rt{};
  auto d = inetAddress(dst);
  auto m = inetAddress(mask);
  if (!d.ok()) return d.error();
  if (!m.ok()) return m.error();
  rt.rt_dst = *d;
  rt.rt_genmask = *m;
  rt.rt_flags = RTF_UP;
  if (!gateway.empty()) {
    auto g = inetAddress(gateway);
    if (!g.ok()) return g.error();
    rt.rt_gateway = *g;
    rt.rt_flags |= RTF_GATEWAY;
  } else if (mask == "255.255.255.255") {
    rt.rt_flags |= RTF_HOST;
  }
  std::string dev = device;  // rt_dev is a non-const char*
  rt.rt_dev = dev.data();
  if (::ioctl(sock, SIOCADDRT, &rt) != 0 && errno != EEXIST) {
    return systemError("add route " + dst + "/" + mask + (gateway.empty() ? "" : " via " + gateway));
  }
  return okResult();
}

}  // namespace

Result<void> bringUpLoopback() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return systemError("socket");
  return setUp(sock.get(), "lo");
}

Result<void> configureInterface(const IpConfig& config) {
  const std::string& dev = config.device;
  // virtio_net was just loaded: its probe may still be registering the device.
  for (int i = 0; ::if_nametoindex(dev.c_str()) == 0; ++i) {
    if (i == 100) return makeError(ErrorCode::kNotFound, "network device " + dev + " did not appear within 5 s");
    timespec pause{0, 50 * 1000 * 1000};
    ::nanosleep(&pause, nullptr);
  }
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return systemError("socket");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, dev.c_str(), IFNAMSIZ - 1);
  if (config.mtu != 0) {
    // Before the link is up: frames the host's tap cannot take (a CNI
    // bridge below 1500) would otherwise be dropped there without a word.
    ifr.ifr_mtu = static_cast<int>(config.mtu);
    if (::ioctl(sock.get(), SIOCSIFMTU, &ifr) != 0) {
      return systemError("set mtu " + std::to_string(config.mtu) + " of " + dev);
    }
  }
  auto addr = inetAddress(config.address);
  if (!addr.ok()) return addr.error();
  ifr.ifr_addr = *addr;
  if (::ioctl(sock.get(), SIOCSIFADDR, &ifr) != 0) return systemError("set address of " + dev);
  auto mask = inetAddress(config.netmask);
  if (!mask.ok()) return mask.error();
  ifr.ifr_netmask = *mask;
  if (::ioctl(sock.get(), SIOCSIFNETMASK, &ifr) != 0) return systemError("set netmask of " + dev);
  S2Z_TRY(setUp(sock.get(), dev), "configure " + dev);
  if (!config.gateway.empty()) {
    S2Z_TRY(addRoute(sock.get(), dev, config.gateway, "255.255.255.255", ""), "configure " + dev);
    S2Z_TRY(addRoute(sock.get(), dev, "0.0.0.0", "0.0.0.0", config.gateway), "configure " + dev);
  }
  for (const auto& route : config.routes) {
    S2Z_TRY(addRoute(sock.get(), dev, route.destination, route.netmask, route.gateway), "configure " + dev);
  }
  return okResult();
}

}  // namespace s2z::guest
