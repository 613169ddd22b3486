// Finds the VMM's devices by the names the host gave them, not by probe order:
//   virtio-serial ports: /sys/class/virtio-ports/vportNpM/name -> /dev/vportNpM
//   virtio-blk disks:    /sys/block/vdX/serial               -> /dev/vdX
#pragma once

#include <optional>
#include <string>

namespace s2z::guest {

// The /dev path of the virtio-serial port named `name`; nullopt if none.
std::optional<std::string> findVirtioPort(const std::string& name);

// The /dev path of the virtio-blk disk with serial `serial`; nullopt if none.
std::optional<std::string> findDiskBySerial(const std::string& serial);

}  // namespace s2z::guest
