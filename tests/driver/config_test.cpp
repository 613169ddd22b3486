// Plugin and task config decoding through the real schema-derived msgpack.
#include <doctest/doctest.h>

#include <msgpack.hpp>

#include <random>

#include "driver/config_schema.h"
#include "driver/go_duration.h"
#include "driver/msgpack_config.h"
#include "driver/plugin_config.h"
#include "driver/task_config.h"
#include "tests/driver/nomad_msgpack.h"
#include "tests/err_text.h"

namespace s2z::driver {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using test::encodeLikeNomad;

Result<PluginConfig> plugin(const json& user) {
  return decodePluginConfig(encodeLikeNomad(pluginConfigSpec(), user));
}
Result<TaskConfig> task(const json& user) {
  return decodeTaskConfig(encodeLikeNomad(taskConfigSpec(), user));
}

// Task config with one key replaced by raw msgpack written by fn (all other
// schema keys nil), to control the exact wire encoding.
template <typename Fn>
std::string taskWithRaw(const std::string& key, Fn fn) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  std::vector<std::string> keys = {"cmdline", "hypervisor", "initrd", "kernel", "ports",
                                   "rootfs",  "scale_to_zero", "vcpus"};
  pk.pack_map(static_cast<uint32_t>(keys.size()));
  for (const auto& k : keys) {
    pk.pack(k);
    if (k == key) fn(pk);
    else pk.pack_nil();
  }
  return std::string(buf.data(), buf.size());
}

template <typename T>
void expectInvalid(const Result<T>& r, const std::string& needle) {
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kInvalidArgument);
  INFO(r.error().message);
  CHECK(r.error().message.find(needle) != std::string::npos);
}

TEST_CASE("plugin config: empty block decodes to the documented defaults") {
  auto c = plugin(json::object());
  REQUIRE(c.ok());
  CHECK(c->hypervisor == vmm::Hypervisor::kQemu);
  CHECK(c->qemuPath == "qemu-system-x86_64");
  CHECK(c->cloudHypervisorPath == "cloud-hypervisor");
  CHECK(c->accelerator == AcceleratorChoice::kAuto);
  CHECK(c->stateDir == "/var/lib/s2z-kata");
  CHECK(c->subnet == "10.89.0.0/24");
  CHECK(c->idleTimeout == 5min);
  CHECK(c->sleep == agent::SleepTier::kLight);
  CHECK(c->deepSleepAfter == 30min);
  CHECK(c->standbyVmms == 0u);
  CHECK(c->vmmMemoryOverheadMib == 128u);
  CHECK(c->quarantineKept == 4u);
  CHECK(c->healthCheckMark == 0);
  CHECK(c->kernel.empty());
  CHECK(c->kataConfig.empty());
}

TEST_CASE("plugin config: every key decodes") {
  auto c = plugin({{"hypervisor", "cloud-hypervisor"},
                   {"qemu_path", "/opt/qemu/bin/qemu"},
                   {"cloud_hypervisor_path", "/usr/local/bin/ch"},
                   {"accelerator", "tcg"},
                   {"state_dir", "/srv/s2z"},
                   {"kernel", "/boot/vmlinuz"},
                   {"initrd", "/boot/initrd.img"},
                   {"subnet", "10.89.4.0/22"},
                   {"idle_timeout", "1h30m"},
                   {"sleep", "deep"},
                   {"deep_sleep_after", "2h"},
                   {"light_sleep_cache", "drop"},
                   {"standby_vmms", 3},
                   {"vmm_memory_overhead", 96},
                   {"quarantine_kept", 10},
                   {"health_check_mark", 0x4000},
                   {"health_check_cgroup", "system.slice/nomad.service"},
                   {"kata_config", "/etc/kata/configuration-clh.toml"}});
  REQUIRE(c.ok());
  CHECK(c->hypervisor == vmm::Hypervisor::kCloudHypervisor);
  CHECK(c->qemuPath == "/opt/qemu/bin/qemu");
  CHECK(c->cloudHypervisorPath == "/usr/local/bin/ch");
  CHECK(c->accelerator == AcceleratorChoice::kTcg);
  CHECK(c->stateDir == "/srv/s2z");
  CHECK(c->kernel == "/boot/vmlinuz");
  CHECK(c->initrd == "/boot/initrd.img");
  CHECK(c->subnet == "10.89.4.0/22");
  CHECK(c->idleTimeout == 90min);
  CHECK(c->sleep == agent::SleepTier::kDeep);
  CHECK(c->deepSleepAfter == 120min);
  CHECK(c->lightSleepCache == vmm::LightSleepCache::kDrop);
  CHECK(c->standbyVmms == 3u);
  CHECK(c->vmmMemoryOverheadMib == 96u);
  CHECK(c->quarantineKept == 10u);
  CHECK(c->healthCheckMark == 0x4000);
  CHECK(c->healthCheckCgroup == "system.slice/nomad.service");
  CHECK(c->kataConfig == "/etc/kata/configuration-clh.toml");
}

TEST_CASE("plugin config: bad values name the key") {
  expectInvalid(plugin({{"hypervisor", "firecracker"}}), "config key \"hypervisor\"");
  expectInvalid(plugin({{"accelerator", "hvf"}}), "config key \"accelerator\"");
  expectInvalid(plugin({{"idle_timeout", "5 minutes"}}), "config key \"idle_timeout\"");
  expectInvalid(plugin({{"idle_timeout", "300"}}), "config key \"idle_timeout\"");
  expectInvalid(plugin({{"idle_timeout", "-5m"}}), "config key \"idle_timeout\"");
  expectInvalid(plugin({{"idle_timeout", "0s"}}), "config key \"idle_timeout\"");
  expectInvalid(plugin({{"sleep", "hibernate"}}),
                "config key \"sleep\": must be \"light\" or \"deep\", not \"hibernate\"");
  expectInvalid(plugin({{"deep_sleep_after", "soon"}}), "config key \"deep_sleep_after\"");
  expectInvalid(plugin({{"light_sleep_cache", "evict"}}),
                "config key \"light_sleep_cache\": must be \"keep\", \"drop\" or \"mapped\", not \"evict\"");
  expectInvalid(plugin({{"standby_vmms", -1}}), "config key \"standby_vmms\"");
  expectInvalid(plugin({{"standby_vmms", "two"}}), "config key \"standby_vmms\"");
  expectInvalid(plugin({{"vmm_memory_overhead", -1}}), "config key \"vmm_memory_overhead\"");
  expectInvalid(plugin({{"vmm_memory_overhead", 65537}}), "config key \"vmm_memory_overhead\"");
  expectInvalid(plugin({{"quarantine_kept", 0}}), "config key \"quarantine_kept\"");
  expectInvalid(plugin({{"quarantine_kept", 1025}}), "config key \"quarantine_kept\"");
  expectInvalid(plugin({{"subnet", "10.89.0.0"}}), "config key \"subnet\"");
  expectInvalid(plugin({{"subnet", "10.89.0.0/30"}}), "config key \"subnet\"");
  expectInvalid(plugin({{"subnet", "10.89.0.0/33"}}), "config key \"subnet\"");
  expectInvalid(plugin({{"subnet", "300.89.0.0/24"}}), "config key \"subnet\"");
  expectInvalid(plugin({{"subnet", "fd00::/64"}}), "config key \"subnet\"");
  expectInvalid(plugin({{"subnet", "10.89.0.7/24"}}), "did you mean \"10.89.0.0/24\"");
  expectInvalid(plugin({{"health_check_mark", -1}}), "config key \"health_check_mark\"");
  expectInvalid(plugin({{"health_check_mark", 4294967296LL}}), "config key \"health_check_mark\"");
  expectInvalid(plugin({{"health_check_mark", 1.5}}), "config key \"health_check_mark\"");
  expectInvalid(plugin({{"health_check_mark", "lots"}}), "config key \"health_check_mark\"");
  expectInvalid(plugin({{"state_dir", "relative/dir"}}), "config key \"state_dir\"");
  expectInvalid(plugin({{"kernel", "vmlinuz"}}), "config key \"kernel\"");
  expectInvalid(plugin({{"qemu_path", ""}}), "config key \"qemu_path\"");
  expectInvalid(plugin({{"kata_config", json::array({"a"})}}), "config key \"kata_config\"");
  expectInvalid(plugin({{"health_check_cgroup", "/system.slice/consul.service"}}),
                "config key \"health_check_mark\": must be set (a non-zero bit) when health_check_cgroup is");
}

TEST_CASE("plugin config: registries and image_gc") {
  auto defaults = plugin(json::object());
  REQUIRE(defaults.ok());
  CHECK(defaults->registryTlsVerify);
  CHECK(defaults->authConfig.empty());
  CHECK(defaults->registryCertsDir.empty());
  CHECK(defaults->imageGc.enabled);
  CHECK(defaults->imageGc.delay == 3min);
  auto c = plugin({{"auth", {{"config", "/etc/s2z/auth.json"}}},
                   {"registry_tls_verify", false},
                   {"registry_certs_dir", "/etc/s2z/certs.d"},
                   {"image_gc", {{"enabled", false}, {"delay", "10m"}}}});
  REQUIRE_MESSAGE(c.ok(), s2z::tests::errText(c));
  CHECK(c->authConfig == "/etc/s2z/auth.json");
  CHECK_FALSE(c->registryTlsVerify);
  CHECK(c->registryCertsDir == "/etc/s2z/certs.d");
  CHECK_FALSE(c->imageGc.enabled);
  CHECK(c->imageGc.delay == 10min);
  auto gcDefaults = plugin({{"image_gc", json::object()}});
  REQUIRE(gcDefaults.ok());
  CHECK(gcDefaults->imageGc.enabled);  // the schema's defaults inside the block
  CHECK(gcDefaults->imageGc.delay == 3min);
  expectInvalid(plugin({{"auth", {{"config", "auth.json"}}}}), "config key \"auth.config\": expected an absolute path");
  expectInvalid(plugin({{"registry_certs_dir", "certs"}}), "config key \"registry_certs_dir\"");
  expectInvalid(plugin({{"image_gc", {{"delay", "soon"}}}}), "config key \"image_gc.delay\"");
}

TEST_CASE("plugin config: largest 32-bit mark and a /8 subnet are fine") {
  auto c = plugin({{"health_check_mark", 0xffffffffLL}, {"subnet", "10.0.0.0/8"}});
  REQUIRE(c.ok());
  CHECK(c->healthCheckMark == 0xffffffffu);
}

TEST_CASE("plugin config: unknown key is rejected by name") {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(2);
  pk.pack(std::string("hypervisor"));
  pk.pack(std::string("qemu"));
  pk.pack(std::string("gpu_passthrough"));
  pk.pack_true();
  expectInvalid(decodePluginConfig(std::string_view(buf.data(), buf.size())),
                "config key \"gpu_passthrough\": unknown key");
}

TEST_CASE("plugin config: every key nil, or no bytes at all, gives defaults") {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  const auto spec = pluginConfigSpec();  // by value: keep it alive while its map is read
  const auto& attrs = spec.object().attributes();
  pk.pack_map(static_cast<uint32_t>(attrs.size()));
  for (const auto& [k, v] : attrs) {
    pk.pack(k);
    pk.pack_nil();
  }
  auto c = decodePluginConfig(std::string_view(buf.data(), buf.size()));
  REQUIRE(c.ok());
  CHECK(c->subnet == "10.89.0.0/24");
  CHECK(c->idleTimeout == 5min);
  auto empty = decodePluginConfig("");
  REQUIRE(empty.ok());
  CHECK(empty->qemuPath == "qemu-system-x86_64");
}

TEST_CASE("plugin config: strings as msgpack bin are accepted") {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(1);
  pk.pack(std::string("subnet"));
  pk.pack_bin(12);
  pk.pack_bin_body("10.89.8.0/24", 12);
  auto c = decodePluginConfig(std::string_view(buf.data(), buf.size()));
  REQUIRE(c.ok());
  CHECK(c->subnet == "10.89.8.0/24");
}

TEST_CASE("task config: typical job decodes") {
  auto t = task({{"kernel", "/images/vmlinuz"},
                 {"initrd", "local/initrd.img"},
                 {"cmdline", "quiet"},
                 {"vcpus", 2},
                 {"ports", {"http", "metrics"}},
                 {"scale_to_zero", {{"idle_timeout", "30s"}}},
                 {"hypervisor", "qemu"}});
  REQUIRE(t.ok());
  CHECK(t->kernel == "/images/vmlinuz");
  CHECK(t->initrd == "local/initrd.img");
  CHECK(t->cmdline == "quiet");
  CHECK(t->vcpus == 2u);
  CHECK(t->ports == std::vector<std::string>{"http", "metrics"});
  CHECK(t->scaleToZero.enabled);  // the block's default
  CHECK(t->scaleToZero.idleTimeout == 30s);
  CHECK(t->hypervisor == vmm::Hypervisor::kQemu);
}

TEST_CASE("task config: command, args and working_dir for the guest agent") {
  auto t = task({{"command", "python3"},
                 {"args", {"-m", "http.server", "8080"}},
                 {"working_dir", "/srv"},
                 {"rootfs", "/images/app.ext4"},
                 {"scale_to_zero", {{"wake_to_stop", false}, {"script_checks", "wake"}}}});
  REQUIRE_MESSAGE(t.ok(), s2z::tests::errText(t));
  CHECK(t->command == "python3");
  CHECK(t->scaleToZero.scriptChecksWake);
  CHECK(t->args == std::vector<std::string>{"-m", "http.server", "8080"});
  CHECK(t->workingDir == "/srv");
  CHECK_FALSE(t->scaleToZero.wakeToStop);
  auto defaults = task({{"command", "sh"}, {"scale_to_zero", json::object()}});
  REQUIRE(defaults.ok());
  CHECK(defaults->scaleToZero.wakeToStop);  // the schema's default
  CHECK_FALSE(defaults->scaleToZero.scriptChecksWake);
  CHECK_FALSE(defaults->scaleToZero.sleep);  // the plugin's
  CHECK_FALSE(defaults->scaleToZero.deepSleepAfter);
  CHECK_FALSE(defaults->scaleToZero.lightSleepCache);
  auto tiers = task({{"command", "sh"},
                     {"scale_to_zero", {{"sleep", "deep"}, {"deep_sleep_after", "10m"}, {"light_sleep_cache", "drop"}}}});
  REQUIRE_MESSAGE(tiers.ok(), s2z::tests::errText(tiers));
  CHECK(tiers->scaleToZero.sleep == agent::SleepTier::kDeep);
  CHECK(tiers->scaleToZero.deepSleepAfter == 10min);
  CHECK(tiers->scaleToZero.lightSleepCache == vmm::LightSleepCache::kDrop);
  auto mapped = task({{"command", "sh"}, {"scale_to_zero", {{"light_sleep_cache", "mapped"}}}});
  REQUIRE_MESSAGE(mapped.ok(), s2z::tests::errText(mapped));
  CHECK(mapped->scaleToZero.lightSleepCache == vmm::LightSleepCache::kMapped);
  expectInvalid(task({{"command", "sh"}, {"scale_to_zero", {{"light_sleep_cache", "yes"}}}}),
                "config key \"scale_to_zero.light_sleep_cache\": must be \"keep\", \"drop\" or \"mapped\", not \"yes\"");
  expectInvalid(task({{"command", "sh"}, {"scale_to_zero", {{"sleep", "Light"}}}}),
                "config key \"scale_to_zero.sleep\": must be \"light\" or \"deep\", not \"Light\"");
  expectInvalid(task({{"command", "sh"}, {"scale_to_zero", {{"deep_sleep_after", "-1m"}}}}),
                "config key \"scale_to_zero.deep_sleep_after\"");
  expectInvalid(task({{"command", "sh"}, {"scale_to_zero", {{"script_checks", "always"}}}}),
                "config key \"scale_to_zero.script_checks\": must be \"pass\" or \"wake\", not \"always\"");
  expectInvalid(task({{"args", {"-c", "true"}}}), "config key \"args\": needs command");
  expectInvalid(task({{"working_dir", "/srv"}}), "config key \"working_dir\": needs command");
  expectInvalid(task({{"command", "sh"}, {"working_dir", "srv"}}),
                "config key \"working_dir\": must be an absolute path");
  expectInvalid(task(json::parse(R"({"command": ["sh"]})")), "config key \"command\"");
  expectInvalid(task(json::parse(R"({"command": "sh", "args": "-c"})")), "config key \"args\"");
}

TEST_CASE("task config: registry auth, readonly_rootfs and the writable disk") {
  auto t = task({{"image", "registry.example.com/app:1"},
                 {"auth", {{"username", "ci"}, {"password", "s3cret"}}},
                 {"auth_soft_fail", true},
                 {"readonly_rootfs", true},
                 {"writable_disk_mb", 256}});
  REQUIRE_MESSAGE(t.ok(), s2z::tests::errText(t));
  REQUIRE(t->auth);
  CHECK(t->auth->username == "ci");
  CHECK(t->auth->password == "s3cret");
  CHECK(t->authSoftFail);
  CHECK(t->readonlyRootfs);
  CHECK(t->writableDiskMib == 256);
  auto plain = task({{"command", "sh"}});
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->auth);
  CHECK_FALSE(plain->readonlyRootfs);
  CHECK(plain->writableDiskMib == 1024);  // the issue's default: 1 GiB, sparse
  expectInvalid(task({{"command", "sh"}, {"auth", {{"username", "u"}, {"password", "p"}}}}),
                "config key \"auth\": needs image");
  expectInvalid(task({{"image", "app"}, {"auth", {{"password", "p"}}}}), "config key \"auth.username\": must not be empty");
  expectInvalid(task({{"command", "sh"}, {"auth_soft_fail", true}}), "config key \"auth_soft_fail\": needs image");
  expectInvalid(task({{"kernel", "/k"}, {"readonly_rootfs", true}}), "config key \"readonly_rootfs\": needs command or image");
  expectInvalid(task({{"image", "app"}, {"writable_disk_mb", 4}}), "config key \"writable_disk_mb\"");
}

TEST_CASE("task config: cpu_hard_limit and cpu_cfs_period, docker's names and default period") {
  auto plain = task(json::object());
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->cpuHardLimit);
  CHECK(plain->cfsPeriodMicros == 100000);  // the schema's default, as Nomad sends it
  auto hard = task({{"cpu_hard_limit", true}, {"cpu_cfs_period", 50000}});
  REQUIRE(hard.ok());
  CHECK(hard->cpuHardLimit);
  CHECK(hard->cfsPeriodMicros == 50000);
  expectInvalid(task({{"cpu_hard_limit", "yes"}}), "config key \"cpu_hard_limit\"");
  expectInvalid(task({{"cpu_cfs_period", 999}}), "config key \"cpu_cfs_period\"");  // the kernel's 1 ms .. 1 s
  expectInvalid(task({{"cpu_cfs_period", 1000001}}), "config key \"cpu_cfs_period\"");
}

TEST_CASE("task config: empty config and disabled scale_to_zero") {
  auto t = task(json::object());
  REQUIRE(t.ok());
  CHECK_FALSE(t->scaleToZero.enabled);
  CHECK_FALSE(t->vcpus.has_value());
  CHECK_FALSE(t->hypervisor.has_value());
  CHECK(t->ports.empty());
  auto off = task({{"scale_to_zero", {{"enabled", false}}}});
  REQUIRE(off.ok());
  CHECK_FALSE(off->scaleToZero.enabled);
  CHECK_FALSE(off->scaleToZero.idleTimeout.has_value());
}

TEST_CASE("task config: vcpus arrives in every msgpack number form") {
  using Pk = msgpack::packer<msgpack::sbuffer>;
  std::vector<std::pair<const char*, std::function<void(Pk&)>>> forms = {
      {"fixint", [](Pk& p) { p.pack(2); }},
      {"uint8", [](Pk& p) { p.pack_fix_uint8(2); }},
      {"uint16", [](Pk& p) { p.pack_fix_uint16(2); }},
      {"uint32", [](Pk& p) { p.pack_fix_uint32(2); }},
      {"uint64", [](Pk& p) { p.pack_fix_uint64(2); }},
      {"int8", [](Pk& p) { p.pack_fix_int8(2); }},
      {"int16", [](Pk& p) { p.pack_fix_int16(2); }},
      {"int32", [](Pk& p) { p.pack_fix_int32(2); }},
      {"int64", [](Pk& p) { p.pack_fix_int64(2); }},
      {"float64", [](Pk& p) { p.pack_double(2.0); }},
      {"float32", [](Pk& p) { p.pack_float(2.0f); }},
      {"decimal string", [](Pk& p) { p.pack(std::string("2")); }},
  };
  for (auto& [name, fn] : forms) {
    CAPTURE(name);
    auto t = decodeTaskConfig(taskWithRaw("vcpus", fn));
    REQUIRE(t.ok());
    CHECK(t->vcpus == 2u);
  }
}

TEST_CASE("task config: bad values name the key and what was expected") {
  auto many = decodeTaskConfig(taskWithRaw("vcpus", [](auto& p) { p.pack(std::string("many")); }));
  REQUIRE_FALSE(many.ok());
  CHECK(many.error().message ==
        "config key \"vcpus\": expected a whole number from 1 to 64, got \"many\"");
  expectInvalid(task({{"vcpus", 0}}), "config key \"vcpus\"");
  expectInvalid(task({{"vcpus", 65}}), "config key \"vcpus\"");
  expectInvalid(task({{"vcpus", 1.5}}), "config key \"vcpus\"");
  expectInvalid(task({{"vcpus", -3}}), "config key \"vcpus\"");
  expectInvalid(task({{"vcpus", true}}), "config key \"vcpus\"");
  expectInvalid(task(json::parse(R"({"ports": "http"})")), "config key \"ports\"");
  expectInvalid(task(json::parse(R"({"ports": ["http", 80]})")), "config key \"ports\"");
  expectInvalid(task(json::parse(R"({"ports": ["http", "http"]})")), "listed twice");
  expectInvalid(task({{"hypervisor", "xen"}}), "config key \"hypervisor\"");
  expectInvalid(task(json::parse(R"({"cmdline": []})")), "config key \"cmdline\"");
  expectInvalid(task(json::parse(R"({"kernel": {"path": "/x"}})")), "config key \"kernel\"");
  expectInvalid(task(json::parse(R"({"scale_to_zero": {"idle_timeout": "soon"}})")),
                "config key \"scale_to_zero.idle_timeout\"");
  expectInvalid(task(json::parse(R"({"scale_to_zero": {"enabled": "maybe"}})")),
                "config key \"scale_to_zero.enabled\"");
  auto notBlock = decodeTaskConfig(
      taskWithRaw("scale_to_zero", [](auto& p) { p.pack(std::string("yes")); }));
  expectInvalid(notBlock, "config key \"scale_to_zero\"");
}

TEST_CASE("task config: unknown keys are rejected at both levels") {
  auto top = decodeTaskConfig(taskWithRaw("vcpus", [](auto& p) { p.pack(1); }) );
  REQUIRE(top.ok());
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(1);
  pk.pack(std::string("image_path"));
  pk.pack(std::string("/x.qcow2"));
  expectInvalid(decodeTaskConfig(std::string_view(buf.data(), buf.size())),
                "config key \"image_path\": unknown key");
  auto inner = decodeTaskConfig(taskWithRaw("scale_to_zero", [](auto& p) {
    p.pack_map(1);
    p.pack(std::string("wake_on"));
    p.pack(std::string("http"));
  }));
  expectInvalid(inner, "config key \"scale_to_zero.wake_on\": unknown key");
}

TEST_CASE("task config: malformed msgpack is INVALID_ARGUMENT, not a crash") {
  expectInvalid(decodeTaskConfig(std::string("\x81\xa5vcpus", 7)), "task config");
  expectInvalid(decodeTaskConfig(std::string("\x92\x01\x02", 3)), "expected a block");
  expectInvalid(decodeTaskConfig(std::string("\xc0\xc0", 2)), "unexpected bytes");
  expectInvalid(decodeTaskConfig(std::string("\xdf\xff\xff\xff\xff", 5)), "task config");
  // A map whose key is not a string.
  expectInvalid(decodeTaskConfig(std::string("\x81\x01\x02", 3)), "not a string");
}

// The decoder's limits (driver/msgpack_config.h): nesting, value count, size,
// and headers that announce more than the input holds. Each is refused before
// msgpack-cxx allocates anything for it, with a message naming the limit.
TEST_CASE("config decoding: too deep, too many values or too large is INVALID_ARGUMENT") {
  auto nested = [](size_t depth) {
    // {"a": {"a": ... {"a": nil}}} with `depth` maps.
    std::string out;
    for (size_t i = 0; i < depth; ++i) out += std::string("\x81\xa1" "a", 3);
    return out + '\xc0';
  };
  CHECK(MsgpackDocument::parse(nested(kMaxConfigDepth), "task config").ok());
  expectInvalid(decodeTaskConfig(nested(kMaxConfigDepth + 1)), "nested deeper than 32 levels");
  // Deep nesting inside a real key: the same error, not a stack overflow.
  expectInvalid(decodeTaskConfig(std::string("\x81\xa4" "args", 6) + std::string(100000, '\x91')),
                "nested deeper than 32 levels");

  // 60,000 nils in one list parse; 70,000 are beyond the value count.
  std::string many = std::string("\x81\xa4" "args" "\xdc\xea\x60", 9) + std::string(60000, '\xc0');
  CHECK(MsgpackDocument::parse(many, "task config").ok());
  many = std::string("\x81\xa4" "args" "\xdd\x00\x01\x11\x70", 11) +
         std::string(0x11170, '\xc0');
  expectInvalid(decodeTaskConfig(many), "more than 65536 values");

  // Headers announcing 4 billion list items or map entries, or a 4 GiB
  // string, in a few bytes: refused without allocating for them.
  expectInvalid(decodeTaskConfig(std::string("\xdd\xff\xff\xff\xff\xc0", 6)),
                "announces 4294967295 values but 1 bytes follow");
  expectInvalid(decodePluginConfig(std::string("\xdf\xff\xff\xff\xff", 5)),
                "announces 8589934590 values");
  expectInvalid(decodeTaskConfig(std::string("\x81\xa6" "kernel" "\xdb\xff\xff\xff\xff/k", 15)),
                "announces 4294967295 bytes but 2 follow");
  // 32 maps deep, each level's header claiming as many entries as the input
  // has bytes: msgpack-cxx alone would allocate for every level.
  std::string claims;
  for (int i = 0; i < 32; ++i) claims += std::string("\xdf\x00\x00\x40\x00", 5);
  expectInvalid(decodeTaskConfig(claims + std::string(100, '\xc0')), "announces");

  // Larger than kMaxConfigBytes (1 MiB) in all.
  std::string big = std::string("\x81\xa7" "cmdline" "\xdb\x00\x10\x00\x00", 14) +
                    std::string(kMaxConfigBytes, 'x');
  expectInvalid(decodeTaskConfig(big), "byte limit");
  // A byte that starts no msgpack value.
  expectInvalid(decodeTaskConfig(std::string("\x81\xa5vcpus\xc1", 8)), "byte 0xc1");
}

TEST_CASE("config decoders survive random and mutated input") {
  std::mt19937 rng(12345);
  std::string valid = encodeLikeNomad(taskConfigSpec(),
                                      {{"kernel", "/k"}, {"vcpus", 4}, {"ports", {"a", "b"}},
                                       {"scale_to_zero", {{"idle_timeout", "10s"}}}});
  std::string validPlugin = encodeLikeNomad(pluginConfigSpec(), {{"subnet", "10.89.0.0/24"}});
  int decodedOk = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string input;
    int mode = i % 3;
    if (mode == 0) {
      input.resize(rng() % 96);
      for (char& c : input) c = static_cast<char>(rng());
    } else {
      input = mode == 1 ? valid : validPlugin;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) input[rng() % input.size()] = static_cast<char>(rng());
      if (rng() % 4 == 0) input.resize(rng() % input.size());
    }
    auto t = decodeTaskConfig(input);
    auto p = decodePluginConfig(input);
    if (t.ok()) ++decodedOk;
    if (!t.ok()) CHECK(t.error().code == ErrorCode::kInvalidArgument);
    if (!p.ok()) CHECK(p.error().code == ErrorCode::kInvalidArgument);
  }
  MESSAGE("random inputs that decoded as a valid task config: " << decodedOk);
}

TEST_CASE("Go durations") {
  struct Case {
    const char* text;
    std::chrono::nanoseconds want;
  };
  for (auto c : {Case{"5m", 5min}, Case{"10s", 10s}, Case{"250ms", 250ms}, Case{"1h30m", 90min},
                 Case{"1.5h", 90min}, Case{"0", 0s}, Case{"2h45m30.5s", 2h + 45min + 30500ms},
                 Case{"300us", 300us}, Case{"1\xC2\xB5s", 1us}, Case{"7ns", 7ns},
                 Case{"-1m", -1min}, Case{".5s", 500ms}}) {
    CAPTURE(c.text);
    auto d = parseGoDuration(c.text);
    REQUIRE(d.ok());
    CHECK(d->count() == c.want.count());
  }
  for (const char* bad : {"", "5", "m", "5 m", "5min", "1h-5m", "abc", "3d", "--5s", ".s",
                          "99999999999999999999h", "1e3s"}) {
    CAPTURE(bad);
    CHECK_FALSE(parseGoDuration(bad).ok());
  }
  CHECK(formatGoDuration(5min) == "5m0s");
  CHECK(formatGoDuration(90min) == "1h30m0s");
  CHECK(formatGoDuration(250ms) == "250ms");
  CHECK(formatGoDuration(1500ms) == "1.5s");
}

}  // namespace
}  // namespace s2z::driver
