// Nomad's TaskConfig.mounts (host volumes, CSI block volumes) for agent
// tasks: each must be a block device (or a regular file holding a disk
// image) and becomes a virtio-blk disk the guest agent mounts at task_path.
// A directory is refused: sharing it would need virtio-fs, and a snapshot
// cannot hold a shared filesystem's state.
#pragma once

#include <vector>

#include "agent/instance.h"
#include "common/result.h"
#include "driver/proto_types.h"

namespace s2z::driver {

// INVALID_ARGUMENT naming the mount ("mounts[1] (task_path /data): ...").
Result<std::vector<agent::VolumeSpec>> resolveVolumes(const pb::TaskConfig& nomad);

}  // namespace s2z::driver
