// Bad plugin and task configurations reach the built plugin (raw, bypassing
// the stand-in's own schema checks where needed) and must come back as clear
// gRPC errors naming the field, without crashing the plugin or leaving
// anything behind. No VM boots.
#include <doctest/doctest.h>

#include "tests/integration/test_env.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

TaskFile rawTask(const std::string& configYaml) {
  auto t = webTask();
  t.rawConfig = true;
  t.config = YAML::Load(configYaml);
  return t;
}

}  // namespace

TEST_CASE("bad task configs: errors name the field, the plugin keeps running") {
  REQUIRE(guestAvailable());
  TestEnv env;
  auto plugin = env.loadPlugin();
  NomadClient& c = *plugin;

  SUBCASE("unknown key") {
    auto r = c.startTask(rawTask("{ ports: [http], colour: red }"));
    REQUIRE_FALSE(r.ok());
    MESSAGE(r.error().message);
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK(contains(r.error().message, "colour"));
  }
  SUBCASE("wrong type") {
    auto r = c.startTask(rawTask("{ ports: [http], vcpus: many }"));
    REQUIRE_FALSE(r.ok());
    MESSAGE(r.error().message);
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK(contains(r.error().message, "vcpus"));
  }
  SUBCASE("wrong type in a block") {
    auto r = c.startTask(rawTask("{ ports: [http], scale_to_zero: { enabled: true, idle_timeout: 5 } }"));
    REQUIRE_FALSE(r.ok());
    MESSAGE(r.error().message);
    CHECK(contains(r.error().message, "idle_timeout"));
  }
  SUBCASE("missing kernel file") {
    auto r = c.startTask(webTask("  kernel: " + env.root() + "/no-such-vmlinuz\n"));
    REQUIRE_FALSE(r.ok());
    MESSAGE(r.error().message);
    CHECK(contains(r.error().message, "kernel"));
    CHECK(contains(r.error().message, "no-such-vmlinuz"));
  }
  SUBCASE("port label not in the group's ports") {
    auto t = webTask();
    t.config["ports"] = YAML::Load("[metrics]");
    auto r = c.startTask(t);
    REQUIRE_FALSE(r.ok());
    MESSAGE(r.error().message);
    CHECK(contains(r.error().message, "metrics"));
  }

  SUBCASE("group (bridge) networking in a netns without CNI's eth0 is refused naming both") {
    auto t = webTask();
    t.networkMode = "group";
    t.netnsPath = env.netnsPath();
    auto r = c.startTask(t);
    REQUIRE_FALSE(r.ok());
    MESSAGE(r.error().message);
    CHECK(contains(r.error().message, "eth0 in " + env.netnsPath()));
  }

  CHECK(c.process().running());
  CHECK(env.links().empty());
  CHECK_MESSAGE(env.onlyProcessLeft(c.process().pid(), 3s), env.describePids());
  CHECK(c.process().logViolationCount() == 0);
}

TEST_CASE("no hypervisor binary: unhealthy fingerprint and a StartTask error naming it") {
  REQUIRE(guestAvailable());
  TestEnv env;
  auto plugin = env.loadPlugin(
      [&](ClientOptions& o) { o.pluginConfig["qemu_path"] = env.root() + "/bin/qemu-system-x86_64"; });
  NomadClient& c = *plugin;
  REQUIRE(c.waitForFingerprint(50s));
  auto fp = c.fingerprints().back();
  CHECK_FALSE(fp.healthy());
  MESSAGE("fingerprint: " << fp.description);
  CHECK(contains(fp.description, "qemu"));

  auto r = c.startTask(webTask());
  REQUIRE_FALSE(r.ok());
  MESSAGE(r.error().message);
  CHECK(contains(r.error().message, "qemu"));
  CHECK(c.process().running());
  CHECK(env.links().empty());
}

TEST_CASE("bad plugin config: the loader's validation launch fails naming the key") {
  TestEnv env;
  SUBCASE("unknown key") {
    auto opts = env.clientOptions();
    opts.rawPluginConfig = true;
    opts.pluginConfig["stat_dir"] = "/tmp/x";
    auto r = NomadClient::loadPlugin(opts);
    REQUIRE_FALSE(r.ok());
    MESSAGE(r.error().message);
    CHECK(contains(r.error().message, "validation launch"));
    CHECK(contains(r.error().message, "SetConfig"));
    CHECK(contains(r.error().message, "stat_dir"));
  }
  SUBCASE("invalid subnet") {
    auto opts = env.clientOptions();
    opts.pluginConfig["subnet"] = "10.89.1.0/33";
    auto r = NomadClient::loadPlugin(opts);
    REQUIRE_FALSE(r.ok());
    MESSAGE(r.error().message);
    CHECK(contains(r.error().message, "subnet"));
  }
  CHECK(env.pids().empty());
}
