// Which credentials and TLS settings an image pull gets from the task and
// plugin config (driver/registry_access.h).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "driver/registry_access.h"
#include "tests/scratch_dir.h"

namespace s2z::driver {
namespace {

namespace fs = std::filesystem;

TaskConfig imageTask(const std::string& image) {
  TaskConfig t;
  t.image = image;
  return t;
}

TEST_CASE("registry access: the task's auth wins over the plugin's auth config") {
  tests::ScratchDir dir;
  std::ofstream(dir.path / "auth.json") << R"({"auths": {}})";
  PluginConfig plugin;
  plugin.authConfig = dir.path / "auth.json";
  TaskConfig task = imageTask("registry.example.com/app:1");
  task.auth = RegistryAuth{"ci", "s3cret"};
  auto access = registryAccessFor(task, plugin);
  REQUIRE(access.ok());
  CHECK(access->options.username == "ci");
  CHECK(access->options.password == "s3cret");
  CHECK(access->options.authFile.empty());

  task.auth.reset();
  auto fromFile = registryAccessFor(task, plugin);
  REQUIRE(fromFile.ok());
  CHECK(fromFile->options.username.empty());
  CHECK(fromFile->options.authFile == plugin.authConfig);
  CHECK(fromFile->softFailure.empty());
}

TEST_CASE("registry access: an unusable auth config fails the task unless auth_soft_fail") {
  tests::ScratchDir dir;
  std::ofstream(dir.path / "broken.json") << "{not json";
  PluginConfig plugin;
  TaskConfig task = imageTask("registry.example.com/app:1");
  for (auto [file, why] : {std::pair{dir.path / "broken.json", "not a docker config.json"},
                           {dir.path / "missing.json", "cannot be read"}}) {
    CAPTURE(file);
    plugin.authConfig = file;
    task.authSoftFail = false;
    auto refused = registryAccessFor(task, plugin);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::kFailedPrecondition);
    CHECK(refused.error().message.find("auth config \"" + file.string() + "\": " + why) != std::string::npos);
    CHECK(refused.error().message.find("registry.example.com/app:1") != std::string::npos);

    task.authSoftFail = true;
    auto soft = registryAccessFor(task, plugin);
    REQUIRE(soft.ok());
    CHECK(soft->options.authFile.empty());
    CHECK(soft->softFailure.find("pulling without credentials") != std::string::npos);
  }
}

TEST_CASE("registry access: TLS verification and the registry's CA directory") {
  tests::ScratchDir dir;
  fs::create_directories(dir.path / "registry.example.com:5000");
  PluginConfig plugin;
  plugin.registryCertsDir = dir.path;
  auto withCa = registryAccessFor(imageTask("registry.example.com:5000/app:1"), plugin);
  REQUIRE(withCa.ok());
  CHECK(withCa->options.certDir == dir.path / "registry.example.com:5000");
  CHECK(withCa->options.tlsVerify);
  // No directory for this registry (docker.io): skopeo's own trust.
  auto other = registryAccessFor(imageTask("redis:7"), plugin);
  REQUIRE(other.ok());
  CHECK(other->options.certDir.empty());
  plugin.registryTlsVerify = false;
  auto insecure = registryAccessFor(imageTask("redis:7"), plugin);
  REQUIRE(insecure.ok());
  CHECK_FALSE(insecure->options.tlsVerify);
}

}  // namespace
}  // namespace s2z::driver
