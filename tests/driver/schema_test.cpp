// The hclspec schemas follow the client's conversion rules (protocol doc §2.3).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <set>

#include "driver/config_schema.h"

namespace s2z::driver {
namespace {

// Every Attr under a Default carries the name of its map key; every Literal
// is a valid expression (our literals are all JSON-compatible).
void checkObject(const hclspec::Object& object) {
  for (const auto& [key, child] : object.attributes()) {
    CAPTURE(key);
    switch (child.block_case()) {
      case hclspec::Spec::kAttr:
        CHECK((child.attr().name().empty() || child.attr().name() == key));
        CHECK_FALSE(child.attr().type().empty());
        break;
      case hclspec::Spec::kDefault: {
        const auto& d = child.default_();
        REQUIRE(d.primary().block_case() == hclspec::Spec::kAttr);
        CHECK(d.primary().attr().name() == key);
        REQUIRE(d.default_().block_case() == hclspec::Spec::kLiteral);
        auto parsed = nlohmann::json::parse(d.default_().literal().value(), nullptr, false);
        CHECK_FALSE(parsed.is_discarded());
        break;
      }
      case hclspec::Spec::kBlockValue:
        CHECK(child.block_value().name() == key);
        REQUIRE(child.block_value().nested().block_case() == hclspec::Spec::kObject);
        checkObject(child.block_value().nested().object());
        break;
      default: FAIL("unexpected spec kind under " << key);
    }
  }
}

std::set<std::string> keysOf(const hclspec::Spec& spec) {
  std::set<std::string> out;
  for (const auto& [k, v] : spec.object().attributes()) out.insert(k);
  return out;
}

TEST_CASE("plugin schema: public key names and well-formed defaults") {
  auto spec = pluginConfigSpec();
  REQUIRE(spec.block_case() == hclspec::Spec::kObject);
  CHECK(keysOf(spec) == std::set<std::string>{"hypervisor", "qemu_path", "cloud_hypervisor_path",
                                              "accelerator", "state_dir", "kernel", "initrd",
                                              "agent_kernel", "agent_initrd", "subnet", "idle_timeout", "sleep", "deep_sleep_after", "light_sleep_cache", "standby_vmms", "vmm_memory_overhead", "quarantine_kept", "health_check_mark",
                                              "health_check_cgroup", "kata_config", "registry_tls_verify",
                                              "registry_certs_dir", "auth", "image_gc"});
  checkObject(spec.object());
}

TEST_CASE("task schema: public key names and the scale_to_zero block") {
  auto spec = taskConfigSpec();
  REQUIRE(spec.block_case() == hclspec::Spec::kObject);
  CHECK(keysOf(spec) == std::set<std::string>{"kernel", "initrd", "rootfs", "cmdline", "vcpus",
                                              "ports", "scale_to_zero", "hypervisor", "command",
                                              "args", "working_dir", "image", "entrypoint",
                                              "force_pull", "image_pull_timeout", "auth", "auth_soft_fail",
                                              "readonly_rootfs", "writable_disk_mb", "cpu_hard_limit",
                                              "cpu_cfs_period"});
  CHECK(spec.object().attributes().at("ports").attr().type() == "list(string)");
  CHECK(spec.object().attributes().at("args").attr().type() == "list(string)");
  const auto& block = spec.object().attributes().at("scale_to_zero").block_value();
  std::set<std::string> inner;
  for (const auto& [k, v] : block.nested().object().attributes()) inner.insert(k);
  CHECK(inner == std::set<std::string>{"enabled", "idle_timeout", "wake_to_stop", "script_checks", "sleep", "deep_sleep_after", "light_sleep_cache"});
  checkObject(spec.object());
}

}  // namespace
}  // namespace s2z::driver
