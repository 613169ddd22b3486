#include "vmm/cloud_hypervisor/ch_json.h"

namespace s2z::vmm::ch {

using nlohmann::json;

std::string fileUrl(const std::filesystem::path& dir) {
  return "file://" + std::filesystem::absolute(dir).lexically_normal().string();
}

json buildVmConfig(const VmConfig& config) {
  json payload = {{"kernel", config.kernel.string()}, {"cmdline", config.cmdline}};
  if (!config.initrd.empty()) payload["initramfs"] = config.initrd.string();

  json vm = {
      {"payload", payload},
      {"cpus", {{"boot_vcpus", config.vcpus}, {"max_vcpus", config.vcpus}}},
      // shared: guest RAM is a shared mapping (memfd), which vhost-user devices
      // and the v53 offload path need; the snapshot still writes memory-ranges.
      {"memory", {{"size", config.memoryMib * 1024 * 1024}, {"shared", true}}},
      {"console", {{"mode", "Off"}}},
  };
  if (config.consoleFd < 0) {
    vm["serial"] = {{"mode", "Null"}};
  } else {
    vm["serial"] = {{"mode", "File"}, {"file", "/dev/fd/" + std::to_string(kConsoleChildFd)}};
  }
  if (!config.rootfs.empty()) {
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

json buildRestoreConfig(const std::filesystem::path& dir, int netFdCount,
                        const ChCapabilities& caps) {
  json restore = {{"source_url", fileUrl(dir)}, {"prefault", false}};
  if (netFdCount > 0) {
    restore["net_fds"] = json::array({{{"id", kNetId}, {"num_fds", netFdCount}}});
  }
  // serde spells the enum variant: "OnDemand" (ch-remote's "ondemand" is CLI only).
  if (caps.onDemandRestore) restore["memory_restore_mode"] = "OnDemand";
  if (caps.resumeOnRestore) restore["resume"] = true;
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
