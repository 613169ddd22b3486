#include "agent/tap_device.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

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

// Opens /dev/net/tun and attaches it as a new queue of tap `name` (creating a
// non-persistent one if it does not exist yet).
Result<UniqueFd> attach(const std::string& name) {
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!fd) return systemError("open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  // No IFF_VNET_HDR: QEMU's fd-backed netdev probes and works without it.
  // Multi-queue: a queue of its own for each holder, attached or detached
  // one by one (the sleep edge switches queues; recovery opens new ones).
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) return systemError("TUNSETIFF " + name);
  return fd;
}

// TUNSETQUEUE on the queue behind fd; attaching an attached queue is EINVAL.
Result<void> setQueue(int fd, bool attach, const std::string& name) {
  ifreq ifr{};
  ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
  if (::ioctl(fd, TUNSETQUEUE, &ifr) < 0) {
    return systemError(std::string(attach ? "attach" : "detach") + " a queue of " + name);
  }
  return okResult();
}

// Makes the tap steer every frame to queue 1 % numqueues: the fresh queue
// while a sleep edge has two (the VMM's is queue 0; a new queue is appended),
// the only queue otherwise. The program is "return 1" (a socket filter).
Result<void> steerToSecondQueue(int queueFd, const std::string& name) {
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[0].imm = 1;
  insns[1].code = BPF_JMP | BPF_EXIT;
  static const char kLicense[] = "GPL";
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = reinterpret_cast<uint64_t>(insns);
  attr.insn_cnt = 2;
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  UniqueFd prog(static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr)));
  if (!prog) return systemError("load the steering program of " + name);
  int progFd = prog.get();
  // The tap keeps its own reference to the program.
  if (::ioctl(queueFd, TUNSETSTEERINGEBPF, &progFd) < 0) return systemError("TUNSETSTEERINGEBPF " + name);
  return okResult();
}

// Waits (up to `limit`) until the running VMM has read every frame left in
// its queue; no new frame goes there once the fresh queue takes them all.
void waitDrained(int queueFd, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    pollfd p{queueFd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) return;
    if (std::chrono::steady_clock::now() >= deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Reads every frame waiting in queue fd (without blocking).
std::vector<std::string> drainFrames(int fd) {
  std::vector<std::string> frames;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) break;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    frames.emplace_back(buf, static_cast<size_t>(n));
  }
  return frames;
}

// Sends frames out of tap `ifindex` (towards its reader) as if routed there.
Result<void> resend(uint32_t ifindex, const std::vector<std::string>& frames) {
  if (frames.empty()) return okResult();
  UniqueFd sock(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (!sock) return systemError("packet socket");
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_ifindex = static_cast<int>(ifindex);
  to.sll_halen = ETH_ALEN;
  for (const auto& f : frames) {
    if (f.size() >= ETH_ALEN) std::memcpy(to.sll_addr, f.data(), ETH_ALEN);
    if (::sendto(sock.get(), f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
      return systemError("re-send a held frame");
  }
  return okResult();
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

Result<TapDevice> TapDevice::adopt(UniqueFd fd, const std::string& name) {
  S2Z_TRY(checkName(name), "adopt tap");
  auto index = RtNetlink::ifindex(name);
  if (!index.ok()) return index.error().wrap("adopt tap");
  // A plugin that died during a sleep edge may have left the VMM's queue
  // detached; the fresh queue died with it. EINVAL: attached already.
  if (auto attached = setQueue(fd.get(), true, name); !attached.ok() && attached.error().errnum != EINVAL)
    return attached.error().wrap("adopt tap");
  return TapDevice(std::move(fd), name, *index);
}

Result<void> TapDevice::destroy() {
  if (!fd_) return okResult();
  if (::ioctl(fd_.get(), TUNSETPERSIST, 0) < 0) return systemError("destroy tap: TUNSETPERSIST 0 " + name_);
  fd_.reset();
  previous_.reset();
  return okResult();
}

Result<void> TapDevice::divert() {
  if (previous_) return makeError(ErrorCode::kInternal, "divert " + name_ + ": already diverted");
  // Steering, not detaching: a detach would purge frames the VMM has not
  // read yet; steered away, its queue just drains.
  S2Z_TRY(steerToSecondQueue(fd_.get(), name_), "divert");
  auto fresh = attach(name_);  // queue 1: every frame from now on
  if (!fresh.ok()) return fresh.error().wrap("divert");
  previous_ = std::move(fd_);
  fd_ = std::move(*fresh);
  waitDrained(previous_.get(), std::chrono::milliseconds(100));
  return okResult();
}

void TapDevice::commitDivert() { previous_.reset(); }

Result<void> TapDevice::revertDivert() {
  if (!previous_) return okResult();
  // The fresh queue's frames would be purged with it: read them, close it
  // (the VMM's queue is the only one again) and send them once more.
  std::vector<std::string> held = drainFrames(fd_.get());
  fd_ = std::move(previous_);
  auto sent = resend(ifindex_, held);
  if (!sent.ok()) return sent.error().wrap("revert divert");
  return okResult();
}

size_t TapDevice::discardQueued() {
  if (!fd_) return 0;
  return drainFrames(fd_.get()).size();
}

}  // namespace s2z::agent
