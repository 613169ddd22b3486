#include "driver/config_schema.h"

#include <map>
#include <string>

namespace s2z::driver {
namespace {

hclspec::Spec attr(const std::string& type, bool required = false, const std::string& name = "") {
  hclspec::Spec spec;
  auto* a = spec.mutable_attr();
  a->set_name(name);
  a->set_type(type);
  a->set_required(required);
  return spec;
}

// An attribute with a default: Default{primary: Attr (explicit name), default: Literal}.
hclspec::Spec withDefault(const std::string& name, const std::string& type,
                          const std::string& literal) {
  hclspec::Spec spec;
  auto* d = spec.mutable_default_();
  *d->mutable_primary() = attr(type, false, name);
  d->mutable_default_()->mutable_literal()->set_value(literal);
  return spec;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// An optional block of attributes (hclspec Block, nested Object).
hclspec::Spec block(const std::string& name, const std::map<std::string, hclspec::Spec>& attributes) {
  hclspec::Spec spec;
  auto* b = spec.mutable_block_value();
  b->set_name(name);
  auto& inner = *b->mutable_nested()->mutable_object()->mutable_attributes();
  for (const auto& [key, value] : attributes) inner[key] = value;
  return spec;
}

}  // namespace

hclspec::Spec pluginConfigSpec() {
  hclspec::Spec spec;
  auto& a = *spec.mutable_object()->mutable_attributes();
  a["hypervisor"] = withDefault("hypervisor", "string", quoted("qemu"));
  a["qemu_path"] = withDefault("qemu_path", "string", quoted("qemu-system-x86_64"));
  a["cloud_hypervisor_path"] =
      withDefault("cloud_hypervisor_path", "string", quoted("cloud-hypervisor"));
  a["accelerator"] = withDefault("accelerator", "string", quoted("auto"));
  a["state_dir"] = withDefault("state_dir", "string", quoted("/var/lib/s2z-kata"));
  a["kernel"] = attr("string");
  a["initrd"] = attr("string");
  a["agent_kernel"] = attr("string");
  a["agent_initrd"] = attr("string");
  a["subnet"] = withDefault("subnet", "string", quoted("10.89.0.0/24"));
  a["idle_timeout"] = withDefault("idle_timeout", "string", quoted("5m"));
  a["sleep"] = withDefault("sleep", "string", quoted("light"));
  a["deep_sleep_after"] = withDefault("deep_sleep_after", "string", quoted("30m"));
  a["light_sleep_cache"] = withDefault("light_sleep_cache", "string", quoted("keep"));
  a["standby_vmms"] = withDefault("standby_vmms", "number", "0");
  a["vmm_memory_overhead"] = withDefault("vmm_memory_overhead", "number", "128");
  a["quarantine_kept"] = withDefault("quarantine_kept", "number", "4");
  a["health_check_mark"] = withDefault("health_check_mark", "number", "0");
  a["health_check_cgroup"] = attr("string");
  a["kata_config"] = attr("string");
  a["registry_tls_verify"] = withDefault("registry_tls_verify", "bool", "true");
  a["registry_certs_dir"] = attr("string");
  a["auth"] = block("auth", {{"config", attr("string")}});
  a["image_gc"] = block("image_gc", {{"enabled", withDefault("enabled", "bool", "true")},
                                     {"delay", withDefault("delay", "string", quoted("3m"))}});
  return spec;
}

hclspec::Spec taskConfigSpec() {
  hclspec::Spec spec;
  auto& a = *spec.mutable_object()->mutable_attributes();
  a["kernel"] = attr("string");
  a["initrd"] = attr("string");
  a["rootfs"] = attr("string");
  a["cmdline"] = attr("string");
  a["command"] = attr("string");
  a["args"] = attr("list(string)");
  a["working_dir"] = attr("string");
  a["image"] = attr("string");
  a["entrypoint"] = attr("list(string)");
  a["force_pull"] = attr("bool");
  a["image_pull_timeout"] = attr("string");
  // No Default: absent means "kata default_vcpus, else 1" (task_config.h).
  a["vcpus"] = attr("number");
  a["cpu_hard_limit"] = attr("bool");
  a["cpu_cfs_period"] = withDefault("cpu_cfs_period", "number", "100000");  // docker's default
  a["ports"] = attr("list(string)");
  a["hypervisor"] = attr("string");

  a["auth"] = block("auth", {{"username", attr("string")}, {"password", attr("string")}});
  a["auth_soft_fail"] = attr("bool");
  a["readonly_rootfs"] = attr("bool");
  a["writable_disk_mb"] = attr("number");
  a["scale_to_zero"] = block("scale_to_zero", {{"enabled", withDefault("enabled", "bool", "true")},
                                               {"idle_timeout", attr("string")},
                                               {"wake_to_stop", withDefault("wake_to_stop", "bool", "true")},
                                               {"script_checks", withDefault("script_checks", "string", quoted("pass"))},
                                               {"sleep", attr("string")},
                                               {"deep_sleep_after", attr("string")},
                                               {"light_sleep_cache", attr("string")}});
  return spec;
}

}  // namespace s2z::driver
