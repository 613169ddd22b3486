#include "agent/tap_device.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "agent/rtnetlink.h"

namespace s2z::agent {
namespace {

// Enough for a burst of SYNs and retries while the VM restores; the design's
// measurements assume the ethernet default.
constexpr int kTxQueueLen = 1000;

Result<void> checkName(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('/') != std::string::npos)
    return makeError(ErrorCode::kInvalidArgument, "bad tap name '" + name + "'");
  return okResult();
}

// Opens /dev/net/tun and attaches it to tap `name` (creating a non-persistent
// one if it does not exist yet).
Result<UniqueFd> attach(const std::string& name) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return systemError("open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  // No IFF_VNET_HDR: QEMU's fd-backed netdev probes and works without it.
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) return systemError("TUNSETIFF " + name);
  return fd;
}

Result<void> setTxQueueLen(const std::string& name, int len) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return systemError("socket");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_qlen = len;
  if (::ioctl(sock.get(), SIOCSIFTXQLEN, &ifr) < 0) return systemError("SIOCSIFTXQLEN " + name);
  return okResult();
}

// The VM network is IPv4 only. With IPv6 on, the host would send router
// solicitations and MLD reports into the tap: they take queue slots while the
// VM sleeps and would look like traffic for it. Absent IPv6 support is fine.
Result<void> disableIpv6(const std::string& name) {
  std::string path = "/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6";
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno == ENOENT ? okResult() : systemError("open " + path);
  if (::write(fd.get(), "1", 1) != 1) return systemError("write " + path);
  return okResult();
}

Result<uint32_t> bringUp(const std::string& name) {
  auto index = RtNetlink::ifindex(name);
  if (!index.ok()) return index.error();
  S2Z_TRY(disableIpv6(name), "disable IPv6 on " + name);
  auto nl = RtNetlink::open();
  if (!nl.ok()) return nl.error();
  S2Z_TRY(nl->setLinkUp(*index, true), "link up " + name);
  return *index;
}

}  // namespace

Result<TapDevice> TapDevice::create(const std::string& name) {
  S2Z_TRY(checkName(name), "create tap");
  auto fd = attach(name);
  if (!fd.ok()) return fd.error().wrap("create tap");
  if (::ioctl(fd->get(), TUNSETPERSIST, 1) < 0) return systemError("create tap: TUNSETPERSIST " + name);
  // From here on the tap outlives our fd: undo persistence on any failure.
  TapDevice tap(std::move(*fd), name, 0);
  if (auto r = setTxQueueLen(name, kTxQueueLen); !r.ok()) {
    (void)tap.destroy();
    return r.error().wrap("create tap");
  }
  auto index = bringUp(name);
  if (!index.ok()) {
    (void)tap.destroy();
    return index.error().wrap("create tap");
  }
  tap.ifindex_ = *index;
  return tap;
}

Result<TapDevice> TapDevice::reopen(const std::string& name) {
  S2Z_TRY(checkName(name), "reopen tap");
  // TUNSETIFF would silently create a fresh tap: check existence first.
  auto index = RtNetlink::ifindex(name);
  if (!index.ok()) return index.error().wrap("reopen tap");
  auto fd = attach(name);
  if (!fd.ok()) return fd.error().wrap("reopen tap");
  // Keep it persistent (a half-finished earlier destroy may have cleared it).
  if (::ioctl(fd->get(), TUNSETPERSIST, 1) < 0) return systemError("reopen tap: TUNSETPERSIST " + name);
  auto up = bringUp(name);
  if (!up.ok()) return up.error().wrap("reopen tap");
  return TapDevice(std::move(*fd), name, *up);
}

Result<void> TapDevice::destroy() {
  if (!fd_) return okResult();
  if (::ioctl(fd_.get(), TUNSETPERSIST, 0) < 0) return systemError("destroy tap: TUNSETPERSIST 0 " + name_);
  fd_.reset();
  return okResult();
}

}  // namespace s2z::agent
