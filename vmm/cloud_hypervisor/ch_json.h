// Request bodies of the Cloud Hypervisor REST API, built from our own types.
// Pure functions (unit-tested); field names and types follow API_FACTS.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "vmm/cloud_hypervisor/ch_version.h"
#include "vmm/vmm.h"

namespace s2z::vmm::ch {

// The id of our one NIC. Fixed rather than derived from the tap name so the
// id recorded in a snapshot's config.json always matches net_fds on restore.
inline constexpr const char* kNetId = "net0";
// One tap fd carries one rx/tx queue pair; num_queues counts queues.
inline constexpr int kNetQueuesPerFd = 2;
// The console fd is inherited as fd 3 and named "/dev/fd/3" as the serial
// file: Cloud Hypervisor reopens it through /proc, which for a FIFO whose
// reader is still there (we hold a writer, so it is) does not block. A restored
// VMM gets the same fd number, so the path in a snapshot's config stays right.
inline constexpr int kConsoleChildFd = 3;
// The id of the one memory zone, backed by the run dir's guest-ram file.
inline constexpr const char* kRamZoneId = "ram0";
// The guest's vsock CID (any above 2 will do: each VM has its own device).
inline constexpr uint32_t kGuestCid = 3;
// Tells the guest agent its channel is vsock (guest/agent/main.cpp).
inline constexpr const char* kAgentVsockParameter = "s2z.channel=vsock";

// "file:///abs/dir" for snapshot destination_url / restore source_url.
std::string fileUrl(const std::filesystem::path& dir);

// VmConfig for vm.create: payload (kernel, initramfs, cmdline), cpus, memory
// (one zone: the shared file guestRamPath(runDir), which must exist), serial
// to the inherited console fd (mode File, or Null without one), console Off,
// and the rootfs as a disk. With the guest agent: its disks by serial (root
// read-only, scratch, volumes), a vsock device on the agent socket, and
// kAgentVsockParameter on the cmdline. No NIC: it is added with its fd by
// vm.add-net, because fds are never taken from JSON.
nlohmann::json buildVmConfig(const VmConfig& config);

// NetConfig for vm.add-net: id, mac, num_queues (no fds: SCM_RIGHTS carries
// them) and, unless 0, the MTU the guest is told (VmConfig::mtu).
nlohmann::json buildNetConfig(const std::string& mac, uint32_t mtu = 0);

// VmSnapshotConfig for vm.snapshot.
nlohmann::json buildSnapshotConfig(const std::filesystem::path& dir);

// RestoreConfig for vm.restore: source_url, prefault false, net_fds announcing
// netFdCount fds for kNetId. The default memory_restore_mode (Copy) copies
// nothing: the RAM is the zone's file, mapped again. "OnDemand" (v52) would
// fail, as it opens a memory-ranges file that such a snapshot does not have.
// No resume: the VM comes up paused, so the RAM file is marked in use
// (snapshot_manifest.h) before the guest writes to it.
nlohmann::json buildRestoreConfig(const std::filesystem::path& dir, int netFdCount);

// Sum of net_fds[].num_fds in a RestoreConfig: the fds that must travel with it.
int announcedNetFds(const nlohmann::json& restoreConfig);

}  // namespace s2z::vmm::ch
