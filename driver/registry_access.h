// The credentials and TLS settings an image pull uses, the docker driver's
// way: the task's auth { username, password } first, else the plugin's
// auth { config } (a docker config.json; skopeo finds the image's registry
// in its "auths", none there means an anonymous pull), else none. TLS:
// registry_tls_verify, and a CA directory for the image's registry under
// registry_certs_dir (<dir>/<host[:port]>/) when there is one.
#pragma once

#include <string>

#include "common/result.h"
#include "driver/plugin_config.h"
#include "driver/task_config.h"
#include "image/image_store.h"

namespace s2z::driver {

struct RegistryAccess {
  image::PullOptions options;
  // Set when auth_soft_fail let a credentials failure pass: why the pull
  // goes without credentials (for a task event).
  std::string softFailure;
};

// kFailedPrecondition naming the auth config file when it cannot be used
// and the task has no auth_soft_fail.
Result<RegistryAccess> registryAccessFor(const TaskConfig& task, const PluginConfig& plugin);

}  // namespace s2z::driver
