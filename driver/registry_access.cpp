#include "driver/registry_access.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "image/image_reference.h"

namespace s2z::driver {
namespace {

// The plugin's auth config must be a readable docker config.json; skopeo
// would otherwise fail every pull with its own, less clear, words.
Result<void> checkAuthConfig(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) {
    return makeError(ErrorCode::kFailedPrecondition,
                     fmt::format("auth config \"{}\": cannot be read ({})", file.string(), std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto doc = nlohmann::json::parse(text.str(), nullptr, false);
  if (!doc.is_object()) {
    return makeError(ErrorCode::kFailedPrecondition,
                     fmt::format("auth config \"{}\": not a docker config.json (a JSON object)", file.string()));
  }
  if (doc.contains("auths") && !doc["auths"].is_object()) {
    return makeError(ErrorCode::kFailedPrecondition,
                     fmt::format("auth config \"{}\": \"auths\" must be an object", file.string()));
  }
  return okResult();
}

}  // namespace

Result<RegistryAccess> registryAccessFor(const TaskConfig& task, const PluginConfig& plugin) {
  RegistryAccess access;
  image::PullOptions& o = access.options;
  o.timeout = task.imagePullTimeout;
  o.forcePull = task.forcePull;
  o.tlsVerify = plugin.registryTlsVerify;

  if (task.auth) {
    o.username = task.auth->username;
    o.password = task.auth->password;
  } else if (!plugin.authConfig.empty()) {
    if (auto usable = checkAuthConfig(plugin.authConfig); usable.ok()) {
      o.authFile = plugin.authConfig;
    } else if (task.authSoftFail) {
      access.softFailure = usable.error().message + "; pulling without credentials (auth_soft_fail)";
    } else {
      return usable.error().wrap(fmt::format("image \"{}\": credentials", task.image));
    }
  }

  if (!plugin.registryCertsDir.empty()) {
    auto ref = image::skopeoReference(task.image);
    std::string host = ref.ok() ? image::registryHost(*ref) : "";
    std::error_code ec;
    if (!host.empty() && std::filesystem::is_directory(plugin.registryCertsDir / host, ec)) {
      o.certDir = plugin.registryCertsDir / host;
    }
  }
  return access;
}

}  // namespace s2z::driver
