#include "vmm/cloud_hypervisor/ch_json.h"

#include "vmm/guest_ram_file.h"
#include "vmm/vmm_socket_path.h"

namespace s2z::vmm::ch {

using nlohmann::json;

std::string fileUrl(const std::filesystem::path& dir) {
  return "file://" + std::filesystem::absolute(dir).lexically_normal().string();
}

namespace {

// The agent's disks, found in the guest by serial as on QEMU: the root
// read-only (the scratch disk is stacked on it by overlayfs), the scratch
// disk, then the task's volumes.
json agentDisks(const VmConfig& config) {
  json disks = json::array();
  if (!config.rootfs.empty()) {
    disks.push_back({{"path", config.rootfs.string()}, {"id", "disk0"}, {"readonly", true},
                     {"serial", kRootDiskSerial}});
  }
  if (!config.agent->scratchDisk.empty()) {
    disks.push_back({{"path", config.agent->scratchDisk.string()}, {"id", "scratch"},
                     {"serial", kScratchDiskSerial}});
  }
  const auto& volumes = config.agent->volumes;
  for (size_t i = 0; i < volumes.size(); ++i) {
    disks.push_back({{"path", volumes[i].path.string()}, {"id", "vol" + std::to_string(i)},
                     {"readonly", volumes[i].readonly}, {"serial", volumes[i].serial}});
  }
  return disks;
}

}  // namespace

json buildVmConfig(const VmConfig& config) {
  std::string cmdline = config.cmdline;
  // The agent has no virtio-serial here: it listens on vsock and relays the
  // workload's output over that channel (guest/agent/README.md).
  if (config.agent) cmdline += std::string(cmdline.empty() ? "" : " ") + kAgentVsockParameter;
  json payload = {{"kernel", config.kernel.string()}, {"cmdline", cmdline}};
  if (!config.initrd.empty()) payload["initramfs"] = config.initrd.string();

  json vm = {
      {"payload", payload},
      {"cpus", {{"boot_vcpus", config.vcpus}, {"max_vcpus", config.vcpus}}},
      // Guest RAM is the run dir's guest-ram file, mapped shared (size 0: the
      // zones give the memory). The snapshot then skips it (the VMM sees its
      // content persisted in a named file: no memory-ranges), a light sleep
      // can write it back and page it out, and a restore maps it again.
      {"memory",
       {{"size", 0},
        {"shared", true},
        {"zones", nlohmann::json::array({{{"id", kRamZoneId},
                                          {"size", config.memoryMib * 1024 * 1024},
                                          {"file", guestRamPath(config.runDir).string()},
                                          {"shared", true}}})}}},
      {"console", {{"mode", "Off"}}},
  };
  if (config.consoleFd < 0) {
    vm["serial"] = {{"mode", "Null"}};
  } else {
    vm["serial"] = {{"mode", "File"}, {"file", "/dev/fd/" + std::to_string(kConsoleChildFd)}};
  }
  if (config.agent) {
    vm["disks"] = agentDisks(config);
    vm["vsock"] = {{"cid", kGuestCid}, {"socket", vmmBindPath(config.agent->socket)}};
  } else if (!config.rootfs.empty()) {
    vm["disks"] = json::array({{{"path", config.rootfs.string()}, {"id", "disk0"}}});
  }
  return vm;
}

json buildNetConfig(const std::string& mac, uint32_t mtu) {
  json net = {{"id", kNetId}, {"num_queues", kNetQueuesPerFd}};
  if (!mac.empty()) net["mac"] = mac;
  if (mtu != 0) net["mtu"] = mtu;
  return net;
}

json buildSnapshotConfig(const std::filesystem::path& dir) {
  return {{"destination_url", fileUrl(dir)}};
}

json buildRestoreConfig(const std::filesystem::path& dir, int netFdCount) {
  json restore = {{"source_url", fileUrl(dir)}, {"prefault", false}};
  if (netFdCount > 0) {
    restore["net_fds"] = json::array({{{"id", kNetId}, {"num_fds", netFdCount}}});
  }
  return restore;
}

int announcedNetFds(const json& restoreConfig) {
  int total = 0;
  auto it = restoreConfig.find("net_fds");
  if (it == restoreConfig.end() || !it->is_array()) return 0;
  for (const auto& entry : *it) {
    auto n = entry.find("num_fds");
    if (n != entry.end() && n->is_number_integer()) total += n->get<int>();
  }
  return total;
}

}  // namespace s2z::vmm::ch
