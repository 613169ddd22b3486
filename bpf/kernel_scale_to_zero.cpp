#include "bpf/kernel_scale_to_zero.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <arpa/inet.h>
#include <net/if.h>

#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "bpf/bpffs.h"
#include "bpf/link_master.h"
#include "bpf/map_pins.h"
#include "bpf/s2z_types.h"
#include "bpf/s2z_types_check.h"
#include "bpf/wake_record.h"

namespace s2z::bpf {
namespace {

std::string instanceName(uint32_t ifindex) { return "instance ifindex " + std::to_string(ifindex); }

// Insert unless present: recovery calls addInstance for known instances.
Result<void> insertIfAbsent(int mapFd, const void* key, const void* value, const char* map) {
  if (bpf_map_update_elem(mapFd, key, value, BPF_NOEXIST) == 0 || errno == EEXIST)
    return okResult();
  return systemError(std::string("insert into ") + map);
}

Result<void> deleteIfPresent(int mapFd, const void* key, const char* map) {
  if (bpf_map_delete_elem(mapFd, key) == 0 || errno == ENOENT) return okResult();
  return systemError(std::string("delete from ") + map);
}

}  // namespace

Result<std::unique_ptr<KernelScaleToZero>> KernelScaleToZero::open(
    const std::filesystem::path& pinRoot, uint32_t healthMark) {
  const auto dir = layoutDir(pinRoot);
  S2Z_TRY(ensurePinDir(dir), "open scale-to-zero maps");
  auto program = TcIdleProgram::load(dir);
  if (!program.ok()) return program.error().wrap("open scale-to-zero maps in " + dir.string());
  if ((*program)->replacedMaps() > 0)
    spdlog::warn("bpf: {} pinned map(s) in {} replaced after a layout change; instances must be "
                 "registered again",
                 (*program)->replacedMaps(), dir.string());
  std::unique_ptr<KernelScaleToZero> self(new KernelScaleToZero(std::move(*program)));
  S2Z_TRY(self->setHealthMark(healthMark), "open scale-to-zero maps");
  self->ring_ = ring_buffer__new(self->program_->wakeRingFd(), &KernelScaleToZero::onWakeRecord,
                                 self.get(), nullptr);
  if (self->ring_ == nullptr) return systemError("open wake ring buffer s2z_wake_rb");
  auto stale = self->drainWakeEvents();
  if (!stale.empty())
    spdlog::info("bpf: dropped {} wake record(s) left by a previous process", stale.size());
  return self;
}

KernelScaleToZero::~KernelScaleToZero() { ring_buffer__free(ring_); }

Result<void> KernelScaleToZero::setHealthMark(uint32_t mark) {
  S2Z_TRY(program_->setHealthMask(mark), "set health mark");
  return okResult();
}

Result<void> KernelScaleToZero::checkAddressFree(uint32_t vmAddrBe, uint32_t ifindex) const {
  uint32_t owner = 0;
  if (vmAddrBe == 0 || bpf_map_lookup_elem(program_->addrMapFd(), &vmAddrBe, &owner) != 0 || owner == ifindex)
    return okResult();
  // An entry whose instance is gone (a plugin killed before it removed it)
  // is stale: replacing it harms nobody. A live one belongs to a VM in
  // another network namespace with the same address, and sharing it would
  // send that VM's health checks to whichever registered last.
  s2z_state_value st{};
  char name[IF_NAMESIZE] = {};
  if (bpf_map_lookup_elem(program_->stateMapFd(), &owner, &st) != 0 || ::if_indextoname(owner, name) == nullptr)
    return okResult();
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &vmAddrBe, text, sizeof text);
  return makeError(ErrorCode::kAlreadyExists,
                   std::string("VM address ") + text + " is already another task's (interface " + name +
                       "): are two networks' subnets overlapping?");
}

Result<void> KernelScaleToZero::addInstance(uint32_t ifindex, uint32_t vmAddrBe) {
  const std::string ctx = "add " + instanceName(ifindex);
  // Before anything is registered: a refused instance leaves no entries.
  S2Z_TRY(checkAddressFree(vmAddrBe, ifindex), ctx);
  s2z_state_value st{};
  st.state = S2Z_STATE_RUNNING;
  S2Z_TRY(insertIfAbsent(program_->stateMapFd(), &ifindex, &st, "s2z_state"), ctx);
  s2z_counters_value zero{};
  S2Z_TRY(insertIfAbsent(program_->countersMapFd(), &ifindex, &zero, "s2z_counters"), ctx);
  if (vmAddrBe != 0 && bpf_map_update_elem(program_->addrMapFd(), &vmAddrBe, &ifindex, BPF_ANY) != 0)
    return systemError("insert into s2z_addr").wrap(ctx);
  // Registered first, attached second: the first packet is already counted.
  auto port = hasMasterDevice(ifindex);
  if (!port.ok()) return port.error().wrap(ctx);
  S2Z_TRY(*port ? program_->attachPort(ifindex) : program_->attach(ifindex), ctx);
  return okResult();
}

namespace {
s2z_hostport_key hostPortKey(uint32_t hostAddrBe, uint16_t port) {
  s2z_hostport_key key{};
  key.addr_be = hostAddrBe;
  key.port_be = htons(port);
  return key;
}
}  // namespace

Result<void> KernelScaleToZero::addHostPort(uint32_t hostAddrBe, uint16_t port, uint32_t ifindex) {
  s2z_hostport_key key = hostPortKey(hostAddrBe, port);
  if (bpf_map_update_elem(program_->hostPortMapFd(), &key, &ifindex, BPF_ANY) != 0)
    return systemError("insert port " + std::to_string(port) + " into s2z_hostport");
  return okResult();
}

Result<void> KernelScaleToZero::removeHostPort(uint32_t hostAddrBe, uint16_t port) {
  s2z_hostport_key key = hostPortKey(hostAddrBe, port);
  return deleteIfPresent(program_->hostPortMapFd(), &key, "s2z_hostport");
}

Result<void> KernelScaleToZero::removeInstance(uint32_t ifindex, uint32_t vmAddrBe) {
  const std::string ctx = "remove " + instanceName(ifindex);
  S2Z_TRY(program_->detach(ifindex), ctx);
  if (vmAddrBe != 0) {
    // Only drop the address if it still points at this instance.
    uint32_t owner = 0;
    if (bpf_map_lookup_elem(program_->addrMapFd(), &vmAddrBe, &owner) == 0 && owner == ifindex)
      S2Z_TRY(deleteIfPresent(program_->addrMapFd(), &vmAddrBe, "s2z_addr"), ctx);
  }
  S2Z_TRY(deleteIfPresent(program_->stateMapFd(), &ifindex, "s2z_state"), ctx);
  S2Z_TRY(deleteIfPresent(program_->countersMapFd(), &ifindex, "s2z_counters"), ctx);
  return okResult();
}

Result<void> KernelScaleToZero::setState(uint32_t ifindex, InstanceState state) {
  s2z_state_value st{};
  st.state = static_cast<uint32_t>(state);
  if (bpf_map_update_elem(program_->stateMapFd(), &ifindex, &st, BPF_EXIST) != 0) {
    if (errno == ENOENT)
      return makeError(ErrorCode::kNotFound, "set state: " + instanceName(ifindex) + " unknown");
    return systemError("set state of " + instanceName(ifindex));
  }
  return okResult();
}

Result<s2z_state_value> KernelScaleToZero::stateValue(uint32_t ifindex) const {
  s2z_state_value st{};
  if (bpf_map_lookup_elem(program_->stateMapFd(), &ifindex, &st) != 0) {
    if (errno == ENOENT)
      return makeError(ErrorCode::kNotFound, "state: " + instanceName(ifindex) + " unknown");
    return systemError("read state of " + instanceName(ifindex));
  }
  return st;
}

Result<InstanceState> KernelScaleToZero::state(uint32_t ifindex) const {
  auto value = stateValue(ifindex);
  if (!value.ok()) return value.error();
  const s2z_state_value& st = *value;
  switch (st.state) {
    case S2Z_STATE_RUNNING: return InstanceState::kRunning;
    case S2Z_STATE_SLEEPING: return InstanceState::kSleeping;
    case S2Z_STATE_WAKING: return InstanceState::kWaking;
    case S2Z_STATE_BOOTING: return InstanceState::kBooting;
  }
  return makeError(ErrorCode::kInternal, "state of " + instanceName(ifindex) + ": unknown value " +
                                             std::to_string(st.state));
}

Result<uint16_t> KernelScaleToZero::waitingPort(uint32_t ifindex) const {
  auto value = stateValue(ifindex);
  if (!value.ok()) return value.error();
  return static_cast<uint16_t>(value->waiting_port);
}

Result<InstanceCounters> KernelScaleToZero::counters(uint32_t ifindex) const {
  s2z_counters_value v{};
  if (bpf_map_lookup_elem(program_->countersMapFd(), &ifindex, &v) != 0) {
    if (errno == ENOENT)
      return makeError(ErrorCode::kNotFound, "counters: " + instanceName(ifindex) + " unknown");
    return systemError("read counters of " + instanceName(ifindex));
  }
  InstanceCounters c;
  c.packets = v.packets;
  c.bytes = v.bytes;
  c.healthPackets = v.health_packets;
  c.lastActivityNs = v.last_activity_ns;
  return c;
}

int KernelScaleToZero::wakeEventFd() const { return ring_buffer__epoll_fd(ring_); }

std::vector<WakeEvent> KernelScaleToZero::drainWakeEvents() {
  draining_.clear();
  int n = ring_buffer__consume(ring_);
  if (n < 0) spdlog::warn("bpf: consume wake ring buffer: {}", std::strerror(-n));
  return std::exchange(draining_, {});
}

int KernelScaleToZero::onWakeRecord(void* self, void* data, size_t size) {
  if (auto event = decodeWakeRecord(data, size)) {
    static_cast<KernelScaleToZero*>(self)->draining_.push_back(*event);
  }
  return 0;  // go on with the next record either way
}

Result<void> KernelScaleToZero::removePins(const std::filesystem::path& pinRoot) {
  S2Z_TRY(removePinTree(layoutDir(pinRoot)), "remove scale-to-zero pins");
  return okResult();
}

}  // namespace s2z::bpf
