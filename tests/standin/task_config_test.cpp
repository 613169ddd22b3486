// A YAML task becomes the TaskConfig a Nomad client would send.
#include <sys/stat.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "spec_test_util.h"
#include "standin/task_config_builder.h"

using namespace s2z::standin;
using namespace s2z::standin::testutil;

namespace {

const char* kTaskYaml = R"(
name: web
driver: s2z-kata
resources: { cpu: 500, memory: 256 }
ports: [ { label: http, value: 28080, to: 8080 } ]
env: { GREETING: hello }
config:
  kernel: ${NOMAD_TASK_DIR}/vmlinuz
  ports: [http]
  scale_to_zero: { enabled: true, idle_timeout: "10s" }
)";

hclspec::Spec taskSpec() {
  return object({
      {"kernel", attr("string", true)},
      {"initrd", attr("string")},
      {"ports", attr("list(string)")},
      {"scale_to_zero", block(object({{"enabled", attr("bool")}, {"idle_timeout", attr("string")}}))},
  });
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/s2z-standin-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST_CASE("YAML task -> TaskConfig as the client builds it") {
  auto task = TaskFile::parse(kTaskYaml);
  REQUIRE_MESSAGE(task.ok(), task.error().message);
  CHECK(task->name == "web");
  CHECK(task->driver == "s2z-kata");
  REQUIRE(task->ports.size() == 1);

  TempDir dir;
  std::string allocId = randomUuid();
  CHECK(std::regex_match(allocId, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  auto layout = prepareAllocDir(dir.path, allocId, "web");
  REQUIRE(layout.ok());
  NodeInfo node{"node-1", "host", 5000, NomadCgroups::v2At("/sys/fs/cgroup")};
  auto cfg = buildTaskConfig(*task, taskSpec(), allocId, *layout, node);
  REQUIRE_MESSAGE(cfg.ok(), cfg.error().message);

  CHECK(std::regex_match(cfg->id(), std::regex(allocId + "/web/[0-9a-f]{8}")));
  CHECK(cfg->alloc_id() == allocId);
  CHECK(cfg->name() == "web");
  CHECK(cfg->env().at("NOMAD_ALLOC_ID") == allocId);
  CHECK(cfg->env().at("NOMAD_TASK_NAME") == "web");
  CHECK(cfg->env().at("NOMAD_PORT_http") == "8080");
  CHECK(cfg->env().at("NOMAD_HOST_PORT_http") == "28080");
  CHECK(cfg->env().at("GREETING") == "hello");
  CHECK(cfg->resources().allocated_resources().cpu().cpu_shares() == 500);
  CHECK(cfg->resources().allocated_resources().memory().memory_mb() == 256);
  CHECK(cfg->resources().linux_resources().memory_limit_bytes() == 256LL << 20);
  CHECK(cfg->resources().linux_resources().percentticks() == doctest::Approx(0.1));
  // Nomad 1.7+ on cgroup v2: the task's own scope under the share slice.
  CHECK(cfg->resources().linux_resources().cpuset_cgroup() ==
        "/sys/fs/cgroup/nomad.slice/share.slice/" + allocId + ".web.scope");
  REQUIRE(cfg->resources().ports_size() == 1);
  CHECK(cfg->resources().ports(0).label() == "http");
  CHECK(cfg->resources().ports(0).value() == 28080);
  CHECK(cfg->resources().ports(0).to() == 8080);
  CHECK_FALSE(cfg->has_network_isolation_spec());
  CHECK(cfg->alloc_dir() == layout->allocDir);

  struct stat st {};
  REQUIRE(stat(cfg->stdout_path().c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  REQUIRE(stat(cfg->stderr_path().c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(std::filesystem::is_directory(layout->taskDir + "/local"));

  // The driver config is interpolated and encoded against the spec.
  YAML::Node expectedBody = YAML::Load(
      "kernel: " + layout->taskDir + "/local/vmlinuz\nports: [http]\n"
      "scale_to_zero: { enabled: true, idle_timeout: \"10s\" }");
  CHECK(cfg->msgpack_driver_config() == encodeWithSpec(taskSpec(), expectedBody).value());

  auto again = buildTaskConfig(*task, taskSpec(), allocId, *layout, node);
  REQUIRE(again.ok());
  CHECK(again->id() != cfg->id());
}

TEST_CASE("config errors surface as Failed Validation before any RPC") {
  TempDir dir;
  std::string allocId = randomUuid();
  auto layout = prepareAllocDir(dir.path, allocId, "web");
  REQUIRE(layout.ok());
  NodeInfo node{"n", "h", 1000, NomadCgroups::off()};

  auto unknown = TaskFile::parse("name: web\nconfig: { kernel: /k, colour: red }");
  REQUIRE(unknown.ok());
  auto r = buildTaskConfig(*unknown, taskSpec(), allocId, *layout, node);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("Failed Validation") != std::string::npos);
  CHECK(r.error().message.find("colour") != std::string::npos);

  auto badVar = TaskFile::parse("name: web\nconfig: { kernel: \"${NOMAD_NOPE}\" }");
  REQUIRE(badVar.ok());
  auto v = buildTaskConfig(*badVar, taskSpec(), allocId, *layout, node);
  REQUIRE_FALSE(v.ok());
  CHECK(v.error().message.find("NOMAD_NOPE") != std::string::npos);

  // Raw mode hands the body to the driver untouched.
  auto raw = TaskFile::parse("name: web\nraw_config: true\nconfig: { colour: red }");
  REQUIRE(raw.ok());
  auto rawCfg = buildTaskConfig(*raw, taskSpec(), allocId, *layout, node);
  REQUIRE(rawCfg.ok());
  CHECK(rawCfg->msgpack_driver_config() == bytes({0x81}) + str("colour") + str("red"));
}

TEST_CASE("reserved cores: the node's last usable ones, as cpuset_cpus, with the task's scope under the reserve slice") {
  TempDir root;  // a v2 tree that is not there, but for the usable cores
  std::ofstream(root.path + "/cpuset.cpus.effective") << "0-3\n";
  const NodeInfo node{"n", "h", 4000, NomadCgroups::v2At(root.path)};
  CHECK(node.cgroups.reserveCores(0).value().empty());
  CHECK(node.cgroups.reserveCores(1).value() == "3");
  CHECK(node.cgroups.reserveCores(2).value() == "2,3");
  auto tooMany = node.cgroups.reserveCores(5);
  REQUIRE_FALSE(tooMany.ok());
  CHECK(tooMany.error().message == "resources.cores: 5 asked, the node has 4");

  auto task = TaskFile::parse("name: web\nresources: { cpu: 2000, memory: 256, cores: 2 }");
  REQUIRE_MESSAGE(task.ok(), task.error().message);
  CHECK(task->cores == 2);
  task->config = YAML::Load("{kernel: /k}");
  TempDir dir;
  auto layout = prepareAllocDir(dir.path, "a", "web");
  REQUIRE(layout.ok());
  auto cfg = buildTaskConfig(*task, taskSpec(), "a", *layout, node);
  REQUIRE_MESSAGE(cfg.ok(), cfg.error().message);
  CHECK(cfg->resources().linux_resources().cpuset_cpus() == "2,3");
  CHECK(cfg->resources().linux_resources().cpuset_cgroup() == root.path + "/nomad.slice/reserve.slice/a.web.scope");

  CHECK_FALSE(TaskFile::parse("name: web\nresources: { cores: -1 }").ok());
  task->cores = 5;
  CHECK_FALSE(buildTaskConfig(*task, taskSpec(), "a", *layout, node).ok());
}

TEST_CASE("task files reject unknown keys and group mode carries the netns path") {
  CHECK_FALSE(TaskFile::parse("name: web\nresorces: {cpu: 1}").ok());
  auto group = TaskFile::parse("name: web\nnetwork: { mode: group, path: /var/run/netns/a }");
  REQUIRE(group.ok());
  TempDir dir;
  auto layout = prepareAllocDir(dir.path, "a", "web");
  REQUIRE(layout.ok());
  group->config = YAML::Load("{kernel: /k}");
  auto cfg = buildTaskConfig(*group, taskSpec(), "a", *layout, NodeInfo{"n", "h", 1000, NomadCgroups::off()});
  REQUIRE(cfg.ok());
  CHECK(cfg->network_isolation_spec().mode() == drivers::NetworkIsolationSpec::GROUP);
  CHECK(cfg->network_isolation_spec().path() == "/var/run/netns/a");
}
