// The Driver and BasePlugin unary RPCs over a real gRPC connection, backed
// by fakes of the agent and host.
#include <doctest/doctest.h>

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <atomic>
#include <algorithm>
#include <csignal>
#include <thread>

#include "driver/error_status.h"
#include "driver/node_compute.h"
#include "driver/task_resolve.h"
#include "driver/task_state.h"
#include "tests/driver/driver_fixture.h"

namespace s2z::driver::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using google::protobuf::util::MessageDifferencer;

TEST_CASE("PluginInfo, ConfigSchema, TaskConfigSchema and Capabilities") {
  DriverFixture f;
  basepb::PluginInfoResponse info;
  REQUIRE(f.base->PluginInfo(f.ctx().get(), {}, &info).ok());
  CHECK(info.type() == basepb::DRIVER);
  REQUIRE(info.plugin_api_versions_size() == 1);
  CHECK(info.plugin_api_versions(0) == "v0.1.0");
  CHECK(info.plugin_version() == "0.1.0");
  CHECK(info.name() == "s2z-kata");

  basepb::ConfigSchemaResponse schema;
  REQUIRE(f.base->ConfigSchema(f.ctx().get(), {}, &schema).ok());
  REQUIRE(schema.has_spec());
  CHECK(schema.spec().object().attributes().count("idle_timeout") == 1);

  pb::TaskConfigSchemaResponse taskSchema;
  REQUIRE(f.driver->TaskConfigSchema(f.ctx().get(), {}, &taskSchema).ok());
  REQUIRE(taskSchema.has_spec());
  CHECK(taskSchema.spec().object().attributes().count("scale_to_zero") == 1);

  pb::CapabilitiesResponse caps;
  REQUIRE(f.driver->Capabilities(f.ctx().get(), {}, &caps).ok());
  const auto& c = caps.capabilities();
  CHECK(c.send_signals());
  CHECK(c.exec());
  CHECK(c.fs_isolation() == pb::DriverCapabilities::IMAGE);
  REQUIRE(c.network_isolation_modes_size() == 2);
  CHECK(c.network_isolation_modes(0) == pb::NetworkIsolationSpec::HOST);
  CHECK(c.network_isolation_modes(1) == pb::NetworkIsolationSpec::GROUP);
  CHECK_FALSE(c.must_create_network());
  CHECK(c.mount_configs() == pb::DriverCapabilities::ANY_MOUNTS);
  CHECK_FALSE(c.disable_log_collection());
}

TEST_CASE("SetConfig: repeatable, side-effect free, bad config names the key") {
  DriverFixture f;
  REQUIRE(f.setConfig().ok());
  REQUIRE(f.setConfig({{"idle_timeout", "2m"}}).ok());
  CHECK(*f.host->makeAgentCalls == 0);  // validation launches must not touch the host
  CHECK(f.plugin->config().idleTimeout == 2min);

  auto bad = f.setConfig({{"subnet", "10.89.0.0/31"}});
  CHECK(bad.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(bad.error_message().find("\"subnet\"") != std::string::npos);
  CHECK(f.plugin->config().idleTimeout == 2min);  // the previous config stays

  basepb::SetConfigRequest garbage;
  garbage.set_msgpack_config("\xde\xad\xbe\xef");
  basepb::SetConfigResponse resp;
  CHECK(f.base->SetConfig(f.ctx().get(), garbage, &resp).error_code() ==
        grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("StartTask echoes the config and returns the VM's network") {
  DriverFixture f;
  auto task = f.taskConfig("web", webTaskConfig());
  REQUIRE(f.setConfig().ok());
  pb::StartTaskResponse resp;
  auto status = f.start(task, &resp);
  INFO(status.error_message());
  REQUIRE(status.ok());

  const auto& handle = resp.handle();
  CHECK(handle.version() == 1);
  CHECK(handle.state() == pb::TaskState::RUNNING);
  CHECK(MessageDifferencer::Equals(handle.config(), task));
  auto record = decodeTaskState(handle.driver_state());
  REQUIRE(record.ok());
  CHECK(record->spec.taskId == task.id());
  CHECK(record->network.address == "10.89.0.2");

  const auto& net = resp.network_override();
  CHECK(net.addr() == "10.89.0.2");
  CHECK(net.auto_advertise());
  CHECK(net.port_map().at("http") == 8080);   // the group mapping's `to`
  CHECK(net.port_map().at("admin") == 24000);  // `value` when `to` is 0

  REQUIRE(f.agentState->started.size() == 1);
  const auto& spec = f.agentState->started[0];
  CHECK(spec.kernel == f.kernel);
  CHECK(spec.initrd == f.initrd);
  CHECK(spec.binary == f.dir.path() / "bin/qemu-system-x86_64");
  CHECK(spec.memoryMib == 512);  // memory_mb, never memory_max_mb
  // The cgroups' limits: memory_max and memory with the VMM's overhead
  // (the plugin's default 128 MiB), cpu as shares.
  CHECK(spec.limits.memoryMaxBytes == uint64_t{1024 + 128} << 20);
  CHECK(spec.limits.memoryLowBytes == uint64_t{512 + 128} << 20);
  CHECK(spec.limits.cpuShares == 500);
  CHECK(spec.limits.cpusetCpus.empty());
  CHECK(spec.vcpus == 2);
  CHECK(spec.cmdline == "quiet");
  CHECK(spec.stdoutPath == task.stdout_path());
  CHECK(spec.stderrPath == task.stderr_path());
  CHECK(spec.scaleToZero);
  CHECK(spec.idleTimeout == 45s);
  CHECK(spec.accelerator == vmm::Accelerator::kTcg);
  CHECK(*f.host->makeAgentCalls == 1);
  CHECK(f.host->lastAgentConfig->stateDir == f.dir.path() / "state");
}

TEST_CASE("StartTask: relative rootfs resolves in the task dir; scale_to_zero off by default") {
  DriverFixture f;
  startWeb(f, {{"rootfs", "local/disk.img"}});
  const auto& spec = f.agentState->started.at(0);
  CHECK(spec.rootfs == f.dir.path() / "alloc/web/local/disk.img");
  CHECK_FALSE(spec.scaleToZero);
  CHECK(spec.idleTimeout == 5min);  // the plugin's idle_timeout
  CHECK(spec.sleepTier == agent::SleepTier::kLight);  // the plugin's sleep
  CHECK(spec.deepSleepAfter == 30min);
  CHECK(spec.lightSleepCache == vmm::LightSleepCache::kKeep);  // the plugin's light_sleep_cache
  CHECK(spec.vcpus == 1);
}

TEST_CASE("StartTask: reserved cores are the task's cgroup cores and, unless vcpus says otherwise, its vCPUs") {
  DriverFixture f;
  REQUIRE(f.setConfig().ok());
  auto task = f.taskConfig("web", {{"ports", {"http", "admin"}}});
  task.mutable_resources()->mutable_linux_resources()->set_cpuset_cpus("2,3");
  pb::StartTaskResponse resp;
  auto status = f.start(task, &resp);
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(f.agentState->started.at(0).limits.cpusetCpus == "2,3");
  CHECK(f.agentState->started.at(0).vcpus == 2);

  auto oneVcpu = f.taskConfig("api", {{"ports", {"http", "admin"}}, {"vcpus", 1}});
  oneVcpu.mutable_resources()->mutable_linux_resources()->set_cpuset_cpus("2,3");
  status = f.start(oneVcpu, &resp);
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(f.agentState->started.at(1).vcpus == 1);
}

// The Topology a Nomad 1.7 client on a node of `cores` cores at `mhz` sends.
basepb::ClientTopology topologyOf(int cores, uint64_t mhz) {
  basepb::ClientTopology topology;
  topology.add_node_ids(0);
  for (int i = 0; i < cores; ++i) {
    auto* core = topology.add_cores();
    core->set_core_id(static_cast<uint32_t>(i));
    core->set_base_speed(mhz);
  }
  return topology;
}

TEST_CASE("StartTask: on a node of more than 262144 MHz (SetConfig's Topology), cpu shares are scaled as Nomad's drivers scale them") {
  DriverFixture f;
  REQUIRE(f.setConfig(nlohmann::json::object(), topologyOf(128, 2500)).ok());  // 320000 MHz
  CHECK(f.plugin->config().nodeTotalComputeMhz == 320000);
  auto task = f.taskConfig("web", {{"ports", {"http", "admin"}}});
  task.mutable_resources()->mutable_linux_resources()->set_cpu_shares(2500);
  pb::StartTaskResponse resp;
  auto status = f.start(task, &resp);
  INFO(status.error_message());
  REQUIRE(status.ok());
  CHECK(f.agentState->started.at(0).limits.cpuShares == 2048);  // 2500 / 320000 of 262144

  SUBCASE("the client's cpu_total_compute override wins over the cores' speeds") {
    auto overridden = topologyOf(2, 2000);
    overridden.set_override_total_compute(6000);
    REQUIRE(f.setConfig(nlohmann::json::object(), overridden).ok());
    CHECK(f.plugin->config().nodeTotalComputeMhz == 6000);
  }
}

TEST_CASE("StartTask: cpu_hard_limit becomes a CFS quota of the task's share of the node, or a clear error") {
  DriverFixture f;
  REQUIRE(f.setConfig().ok());
  auto task = f.taskConfig("web", {{"ports", {"http", "admin"}}, {"cpu_hard_limit", true}});
  task.mutable_resources()->mutable_linux_resources()->set_percentticks(0.125);
  pb::StartTaskResponse resp;
  auto status = f.start(task, &resp);
  INFO(status.error_message());
  REQUIRE(status.ok());
  const auto& limits = f.agentState->started.at(0).limits;
  CHECK(limits.cpuPeriodMicros == 100000);  // docker's default period
  CHECK(limits.cpuQuotaMicros == 12500 * cpusThisProcessMayUse());

  auto tiny = f.taskConfig("api", {{"ports", {"http", "admin"}}, {"cpu_hard_limit", true}, {"cpu_cfs_period", 1000}});
  tiny.mutable_resources()->mutable_linux_resources()->set_percentticks(0.0001);
  status = f.start(tiny, &resp);
  CHECK(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(status.error_message().find("\"cpu_hard_limit\"") != std::string::npos);
  CHECK(f.agentState->started.size() == 1);  // nothing started for it
}

TEST_CASE("StartTask: scale_to_zero.light_sleep_cache overrides the plugin's") {
  DriverFixture f;
  auto config = webTaskConfig();
  config["scale_to_zero"]["light_sleep_cache"] = "drop";
  startWeb(f, config);
  CHECK(f.agentState->started.at(0).lightSleepCache == vmm::LightSleepCache::kDrop);
}

TEST_CASE("StartTask with command: the agent guest by default, the workload from command/args and Nomad's user, env and dns") {
  DriverFixture f;
  auto agentKernel = f.dir.write("agent/vmlinuz", "k");
  auto agentInitrd = f.dir.write("agent/initrd.img", "i");
  auto image = f.dir.write("images/app.ext4", "fs");
  REQUIRE(f.setConfig({{"agent_kernel", agentKernel.string()},
                       {"agent_initrd", agentInitrd.string()}}).ok());
  pb::TaskConfig task = f.taskConfig("app", {{"command", "python3"},
                                             {"args", {"-u", "app.py"}},
                                             {"working_dir", "/srv"},
                                             {"rootfs", image.string()},
                                             {"scale_to_zero", {{"wake_to_stop", false}}}});
  task.set_user("app");
  (*task.mutable_env())["GREETING"] = "hello world";
  task.mutable_dns()->add_servers("10.0.0.2");
  task.mutable_dns()->add_searches("service.consul");
  pb::StartTaskResponse resp;
  auto s = f.start(task, &resp);
  REQUIRE_MESSAGE(s.ok(), s.error_message());
  const auto& spec = f.agentState->started.at(0);
  CHECK(spec.kernel == agentKernel);  // not the plugin's `kernel`: that guest has no agent
  CHECK(spec.initrd == agentInitrd);
  CHECK(spec.rootfs == image);
  REQUIRE(spec.workload);
  CHECK(spec.workload->argv == std::vector<std::string>{"python3", "-u", "app.py"});
  CHECK(spec.workload->workingDir == "/srv");
  CHECK(spec.workload->user == "app");
  CHECK(std::find(spec.workload->env.begin(), spec.workload->env.end(), "GREETING=hello world") !=
        spec.workload->env.end());
  CHECK(spec.workload->dnsServers == std::vector<std::string>{"10.0.0.2"});
  CHECK(spec.workload->dnsSearches == std::vector<std::string>{"service.consul"});
  CHECK_FALSE(spec.workload->wakeToStop);

  // A task with command needs something to run it in.
  auto noRoot = f.start(f.taskConfig("bare", {{"command", "sh"}}), &resp);
  CHECK(noRoot.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(noRoot.error_message().find("config key \"rootfs\"") != std::string::npos);
  // Without command the task's guest is its own.
  pb::StartTaskResponse plainResp;
  REQUIRE(f.start(f.taskConfig("plain", json::object()), &plainResp).ok());
  CHECK_FALSE(f.agentState->started.back().workload);
  CHECK(f.agentState->started.back().kernel == f.kernel);
}

TEST_CASE("StartTask with image: the image's disk is the root, its config the workload's with docker's rules; events; a transient pull error is recoverable") {
  DriverFixture f;
  auto agentKernel = f.dir.write("agent/vmlinuz", "k");
  auto agentInitrd = f.dir.write("agent/initrd.img", "i");
  auto disk = f.dir.write("images/sha256-x/rootfs.ext4", "fs");
  REQUIRE(f.setConfig({{"agent_kernel", agentKernel.string()}, {"agent_initrd", agentInitrd.string()}}).ok());
  image::PreparedImage prepared;
  prepared.digest = "sha256:" + std::string(64, 'b');
  prepared.disk = disk;
  prepared.diskBytes = 2;
  prepared.config.entrypoint = {"/entry"};
  prepared.config.cmd = {"serve", "--port", "80"};
  prepared.config.env = {"A=image", "B=image"};
  prepared.config.workingDir = "/srv";
  prepared.config.user = "www";
  f.agentState->image = prepared;

  pb::TaskConfig task = f.taskConfig("web", {{"image", "registry.local/web:1"}});
  (*task.mutable_env())["B"] = "task";
  auto events = f.plugin->events().subscribe();
  pb::StartTaskResponse resp;
  auto s = f.start(task, &resp);
  REQUIRE_MESSAGE(s.ok(), s.error_message());
  CHECK(f.agentState->imagesAsked == std::vector<std::string>{"registry.local/web:1"});
  const auto& spec = f.agentState->started.at(0);
  CHECK(spec.rootfs == disk);
  CHECK(spec.kernel == agentKernel);
  REQUIRE(spec.workload);
  CHECK(spec.workload->argv == std::vector<std::string>{"/entry", "serve", "--port", "80"});
  CHECK(spec.workload->workingDir == "/srv");
  CHECK(spec.workload->user == "www");
  auto& env = spec.workload->env;
  CHECK(std::find(env.begin(), env.end(), "A=image") != env.end());
  CHECK(std::find(env.begin(), env.end(), "B=task") != env.end());  // the task wins
  std::vector<std::string> seen;
  while (auto e = events->next(std::chrono::milliseconds(100))) seen.push_back(e->message);
  CHECK(seen == std::vector<std::string>{"Downloading image registry.local/web:1", "Image ready"});

  // command/args replace Cmd; the task's entrypoint drops the image's Cmd.
  TaskConfig t;
  CHECK(imageArgv(t, prepared.config) == std::vector<std::string>{"/entry", "serve", "--port", "80"});
  t.args = {"--debug"};
  CHECK(imageArgv(t, prepared.config) == std::vector<std::string>{"/entry", "--debug"});
  t.command = "run";
  CHECK(imageArgv(t, prepared.config) == std::vector<std::string>{"/entry", "run", "--debug"});
  t = driver::TaskConfig{};
  t.entrypoint = std::vector<std::string>{"/bin/sh"};
  CHECK(imageArgv(t, prepared.config) == std::vector<std::string>{"/bin/sh"});

  f.agentState->image = makeError(ErrorCode::kUnavailable, "image \"x\": registry unreachable");
  auto unreachable = f.start(f.taskConfig("again", {{"image", "registry.local/web:1"}}), &resp);
  CHECK(unreachable.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(unreachable.error_message().find("pull image") != std::string::npos);
  CHECK(decodeRecoverableDetails(unreachable.error_details()) == std::optional<bool>(true));
  auto both = f.start(f.taskConfig("both", {{"image", "x"}, {"rootfs", disk.string()}}), &resp);
  CHECK(both.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(both.error_message().find("config key \"rootfs\": not with image") != std::string::npos);
}

TEST_CASE("StartTask: missing files and bad config are INVALID_ARGUMENT naming the key") {
  DriverFixture f;
  REQUIRE(f.setConfig().ok());
  pb::StartTaskResponse resp;
  auto missing = f.start(f.taskConfig("web", {{"kernel", "/nonexistent/vmlinuz"}}), &resp);
  CHECK(missing.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(missing.error_message().find("config key \"kernel\"") != std::string::npos);
  CHECK(missing.error_message().find("/nonexistent/vmlinuz") != std::string::npos);

  auto badPort = f.start(f.taskConfig("web", {{"ports", {"grpc"}}}), &resp);
  CHECK(badPort.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(badPort.error_message().find("\"grpc\"") != std::string::npos);

  pb::TaskConfig badVcpus = f.taskConfig("web", {{"vcpus", 100}});
  auto vcpus = f.start(badVcpus, &resp);
  CHECK(vcpus.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(vcpus.error_message().find("config key \"vcpus\"") != std::string::npos);
  CHECK(f.agentState->started.empty());
}

TEST_CASE("StartTask: no kernel anywhere is INVALID_ARGUMENT naming kernel") {
  DriverFixture f;
  REQUIRE(f.setConfig({{"kernel", nullptr}}).ok());
  pb::StartTaskResponse resp;
  auto s = f.start(f.taskConfig("web", json::object()), &resp);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(s.error_message().find("config key \"kernel\"") != std::string::npos);
}

TEST_CASE("StartTask: a missing hypervisor binary names it") {
  DriverFixture f;
  REQUIRE(f.setConfig({{"qemu_path", "qemu-system-riscv"}}).ok());
  pb::StartTaskResponse resp;
  auto s = f.start(f.taskConfig("web", json::object()), &resp);
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(s.error_message().find("qemu binary \"qemu-system-riscv\" not found in PATH") !=
        std::string::npos);
  CHECK(decodeRecoverableDetails(s.error_details()) == std::nullopt);
}

TEST_CASE("StartTask: transient agent failure is recoverable, others are not") {
  DriverFixture f;
  REQUIRE(f.setConfig().ok());
  pb::StartTaskResponse resp;
  f.agentState->startError = makeError(ErrorCode::kUnavailable, "address pool busy");
  auto transient = f.start(f.taskConfig("web", json::object()), &resp);
  CHECK(transient.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(transient.error_message().find("address pool busy") != std::string::npos);
  CHECK(decodeRecoverableDetails(transient.error_details()) == std::optional<bool>(true));

  f.agentState->startError = makeError(ErrorCode::kVmmError, "qemu: bad machine");
  auto fatal = f.start(f.taskConfig("web", json::object()), &resp);
  CHECK(fatal.error_code() == grpc::StatusCode::INTERNAL);
  CHECK(fatal.error_message().find("qemu: bad machine") != std::string::npos);
  CHECK(decodeRecoverableDetails(fatal.error_details()) == std::nullopt);
  CHECK(f.plugin->tasks().size() == 0);

  // After the failures the same task starts fine.
  CHECK(f.start(f.taskConfig("web", json::object()), &resp).ok());
}

TEST_CASE("kata_config supplies defaults; an unusable Kata file is a config error") {
  DriverFixture f;
  auto kataKernel = f.dir.write("kata/vmlinux.container", "k");
  auto kataImage = f.dir.write("kata/kata-containers.img", "img");
  vmm::kata::KataDefaults kata;
  kata.hypervisor = vmm::Hypervisor::kQemu;
  kata.hypervisorPath = f.dir.path() / "bin/qemu-system-x86_64";
  kata.kernel = kataKernel;
  kata.image = kataImage;
  kata.vcpus = 3;
  kata.memoryMib = 2048;
  *f.host->kata = kata;
  REQUIRE(f.setConfig({{"kernel", nullptr}, {"initrd", nullptr},
                       {"kata_config", "/etc/kata/configuration-qemu.toml"}}).ok());
  pb::StartTaskResponse resp;
  auto s = f.start(f.taskConfig("web", json::object()), &resp);
  INFO(s.error_message());
  REQUIRE(s.ok());
  const auto& spec = f.agentState->started.at(0);
  CHECK(spec.kernel == kataKernel);
  CHECK(spec.rootfs == kataImage);  // no initrd anywhere: Kata's image is the root disk
  CHECK(spec.initrd.empty());
  CHECK(spec.vcpus == 3);
  CHECK(spec.memoryMib == 512);  // the task's resources win over default_memory

  *f.host->kataError = makeError(ErrorCode::kInvalidArgument,
                                 "shared_fs \"virtio-fs\" is not supported (snapshots need block devices)");
  auto bad = f.setConfig({{"kata_config", "/etc/kata/configuration-clh.toml"}});
  CHECK(bad.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(bad.error_message().find("config key \"kata_config\"") != std::string::npos);
  CHECK(bad.error_message().find("virtio-fs") != std::string::npos);
}

TEST_CASE("RecoverableError details round-trip") {
  auto bytes = encodeRecoverableDetails(grpc::StatusCode::FAILED_PRECONDITION, "tap busy", true);
  CHECK(decodeRecoverableDetails(bytes) == std::optional<bool>(true));
  CHECK(decodeRecoverableDetails(
            encodeRecoverableDetails(grpc::StatusCode::FAILED_PRECONDITION, "x", false)) ==
        std::optional<bool>(false));
  CHECK(decodeRecoverableDetails("") == std::nullopt);
  CHECK(decodeRecoverableDetails("\x1a\x05junk!") == std::nullopt);
  CHECK(grpcCode(ErrorCode::kNotFound) == grpc::StatusCode::NOT_FOUND);
  CHECK(grpcCode(ErrorCode::kTimeout) == grpc::StatusCode::DEADLINE_EXCEEDED);
  auto st = toStatus(systemError("open tap", ENOENT));
  CHECK(st.error_code() == grpc::StatusCode::INTERNAL);
  CHECK(st.error_message() == "open tap: No such file or directory");
}

TEST_CASE("WaitTask blocks until exit, always sets result, honours cancellation") {
  DriverFixture f;
  auto resp = startWeb(f);
  std::string id = resp.handle().config().id();
  auto vm = f.agentState->instance(id);
  REQUIRE(vm);

  // Cancelled by the client's deadline while the VM runs (or sleeps).
  vm->setState(agent::InstanceState::kSleeping);
  pb::WaitTaskRequest req;
  req.set_task_id(id);
  pb::WaitTaskResponse waitResp;
  auto t0 = std::chrono::steady_clock::now();
  auto cancelled = f.driver->WaitTask(f.ctx(300ms).get(), req, &waitResp);
  CHECK(cancelled.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(std::chrono::steady_clock::now() - t0 >= 290ms);

  std::thread exiter([&] {
    std::this_thread::sleep_for(200ms);
    vm->exitWith(3);
  });
  auto done = f.driver->WaitTask(f.ctx().get(), req, &waitResp);
  exiter.join();
  REQUIRE(done.ok());
  REQUIRE(waitResp.has_result());
  CHECK(waitResp.result().exit_code() == 3);
  CHECK(waitResp.err().empty());

  // Already exited: returns at once with the same result.
  pb::WaitTaskResponse again;
  REQUIRE(f.driver->WaitTask(f.ctx(1000ms).get(), req, &again).ok());
  CHECK(again.result().exit_code() == 3);

  pb::WaitTaskRequest unknown;
  unknown.set_task_id("nope");
  CHECK(f.driver->WaitTask(f.ctx().get(), unknown, &again).error_code() ==
        grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("StopTask and DestroyTask are idempotent and OK for unknown ids") {
  DriverFixture f;
  pb::StopTaskRequest stop;
  stop.set_task_id("unknown/task/00000000");
  pb::StopTaskResponse stopResp;
  CHECK(f.driver->StopTask(f.ctx().get(), stop, &stopResp).ok());
  pb::DestroyTaskRequest destroy;
  destroy.set_task_id("unknown/task/00000000");
  destroy.set_force(true);
  pb::DestroyTaskResponse destroyResp;
  CHECK(f.driver->DestroyTask(f.ctx().get(), destroy, &destroyResp).ok());

  auto resp = startWeb(f);
  std::string id = resp.handle().config().id();
  auto vm = f.agentState->instance(id);

  destroy.set_task_id(id);
  destroy.set_force(false);
  auto refused = f.driver->DestroyTask(f.ctx().get(), destroy, &destroyResp);
  CHECK(refused.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK_FALSE(vm->destroyed());

  stop.set_task_id(id);
  *stop.mutable_timeout() = google::protobuf::util::TimeUtil::MillisecondsToDuration(7000);
  stop.set_signal("SIGTERM");
  REQUIRE(f.driver->StopTask(f.ctx().get(), stop, &stopResp).ok());
  CHECK(vm->lastStopTimeout() == 7000ms);
  CHECK(vm->lastStopSignal() == SIGTERM);  // for the workload (guest agent tasks)
  REQUIRE(f.driver->StopTask(f.ctx().get(), stop, &stopResp).ok());  // again: fine

  REQUIRE(f.driver->DestroyTask(f.ctx().get(), destroy, &destroyResp).ok());
  CHECK(vm->destroyed());
  CHECK(f.agentState->forgotten == std::vector<std::string>{id});
  REQUIRE(f.driver->DestroyTask(f.ctx().get(), destroy, &destroyResp).ok());  // again: fine

  pb::WaitTaskRequest wait;
  wait.set_task_id(id);
  pb::WaitTaskResponse waitResp;
  CHECK(f.driver->WaitTask(f.ctx().get(), wait, &waitResp).error_code() ==
        grpc::StatusCode::NOT_FOUND);
  pb::InspectTaskRequest inspect;
  inspect.set_task_id(id);
  pb::InspectTaskResponse inspectResp;
  CHECK(f.driver->InspectTask(f.ctx().get(), inspect, &inspectResp).error_code() ==
        grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("DestroyTask with force stops a running task first; SIGKILL stops at once") {
  DriverFixture f;
  auto resp = startWeb(f);
  std::string id = resp.handle().config().id();
  auto vm = f.agentState->instance(id);
  pb::StopTaskRequest stop;
  stop.set_task_id(id);
  stop.set_signal("SIGKILL");
  *stop.mutable_timeout() = google::protobuf::util::TimeUtil::MillisecondsToDuration(30000);
  pb::StopTaskResponse stopResp;
  REQUIRE(f.driver->StopTask(f.ctx().get(), stop, &stopResp).ok());
  CHECK(vm->lastStopTimeout() == 0ms);

  auto second = f.start(f.taskConfig("api", json::object()), &resp);
  REQUIRE(second.ok());
  auto vm2 = f.agentState->instance(resp.handle().config().id());
  pb::DestroyTaskRequest destroy;
  destroy.set_task_id(resp.handle().config().id());
  destroy.set_force(true);
  pb::DestroyTaskResponse destroyResp;
  REQUIRE(f.driver->DestroyTask(f.ctx().get(), destroy, &destroyResp).ok());
  CHECK(vm2->destroyed());
  CHECK(vm2->lastStopTimeout() > 0ms);
  CHECK(vm2->lastStopSignal() == SIGKILL);
}

TEST_CASE("InspectTask reports status, driver attributes and network") {
  DriverFixture f;
  auto resp = startWeb(f);
  std::string id = resp.handle().config().id();
  f.agentState->instance(id)->setState(agent::InstanceState::kSleeping);
  pb::InspectTaskRequest req;
  req.set_task_id(id);
  pb::InspectTaskResponse out;
  REQUIRE(f.driver->InspectTask(f.ctx().get(), req, &out).ok());
  CHECK(out.task().id() == id);
  CHECK(out.task().name() == "web");
  CHECK(out.task().state() == pb::TaskState::RUNNING);  // sleeping is running to Nomad
  CHECK(out.task().has_started_at());
  CHECK(out.task().has_completed_at());
  CHECK(out.task().has_result());
  CHECK(out.task().started_at().seconds() == 1714557600);
  const auto& attrs = out.driver().attributes();
  CHECK(attrs.at("sleeping") == "true");
  CHECK(attrs.at("address") == "10.89.0.2");
  CHECK(attrs.at("packets") == "7");
  CHECK(out.network_override().addr() == "10.89.0.2");

  f.agentState->instance(id)->exitWith(0, 15);
  REQUIRE(f.driver->InspectTask(f.ctx().get(), req, &out).ok());
  CHECK(out.task().state() == pb::TaskState::EXITED);
  CHECK(out.task().result().signal() == 15);
  CHECK(out.task().completed_at().seconds() > 0);
}

TEST_CASE("SignalTask maps names; unknown names are INVALID_ARGUMENT") {
  DriverFixture f;
  auto resp = startWeb(f);
  std::string id = resp.handle().config().id();
  pb::SignalTaskRequest req;
  req.set_task_id(id);
  req.set_signal("SIGHUP");
  pb::SignalTaskResponse out;
  REQUIRE(f.driver->SignalTask(f.ctx().get(), req, &out).ok());
  req.set_signal("usr1");
  REQUIRE(f.driver->SignalTask(f.ctx().get(), req, &out).ok());
  CHECK(f.agentState->instance(id)->signals() == std::vector<int>{SIGHUP, SIGUSR1});
  req.set_signal("SIGFOO");
  auto bad = f.driver->SignalTask(f.ctx().get(), req, &out);
  CHECK(bad.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(bad.error_message().find("SIGFOO") != std::string::npos);
  req.set_task_id("gone");
  req.set_signal("SIGHUP");
  CHECK(f.driver->SignalTask(f.ctx().get(), req, &out).error_code() == grpc::StatusCode::NOT_FOUND);
}

TEST_CASE("ExecTask: output, exit code, no stdin; unknown task and empty command refused") {
  DriverFixture f;
  std::string id = startWeb(f).handle().config().id();
  auto exec = f.agentState->instance(id)->fakeExec();
  using Kind = agent::ExecEvent::Kind;
  exec->events = {{Kind::kStdout, "ok ", false, 0, 0}, {Kind::kStderr, "warn", false, 0, 0},
                  {Kind::kStdout, "done", true, 0, 0}, {Kind::kStderr, "", true, 0, 0},
                  {Kind::kExited, "", false, 3, 0}};
  pb::ExecTaskRequest req;
  req.set_task_id(id);
  req.add_command("/bin/check");
  req.add_command("--deep");
  req.mutable_timeout()->set_seconds(5);
  pb::ExecTaskResponse out;
  REQUIRE(f.driver->ExecTask(f.ctx().get(), req, &out).ok());
  CHECK(out.stdout() == "ok done");
  CHECK(out.stderr() == "warn");
  CHECK(out.result().exit_code() == 3);
  CHECK(exec->lastSpec.argv == std::vector<std::string>{"/bin/check", "--deep"});
  CHECK_FALSE(exec->lastSpec.tty);
  CHECK(exec->stdinClosed);
  CHECK(exec->sessionClosed);

  req.set_task_id("gone");
  CHECK(f.driver->ExecTask(f.ctx().get(), req, &out).error_code() == grpc::StatusCode::NOT_FOUND);
  req.set_task_id(id);
  req.clear_command();
  CHECK(f.driver->ExecTask(f.ctx().get(), req, &out).error_code() == grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_CASE("ExecTask: a timeout kills the command and is DEADLINE_EXCEEDED") {
  DriverFixture f;
  std::string id = startWeb(f).handle().config().id();
  auto exec = f.agentState->instance(id)->fakeExec();
  exec->hang = true;
  pb::ExecTaskRequest req;
  req.set_task_id(id);
  req.add_command("sleep");
  req.mutable_timeout()->set_nanos(200 * 1000 * 1000);
  pb::ExecTaskResponse out;
  auto s = f.driver->ExecTask(f.ctx().get(), req, &out);
  CHECK(s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(s.error_message().find("timed out after 200 ms") != std::string::npos);
  CHECK(exec->signals == std::vector<int>{SIGKILL});
}

TEST_CASE("ExecTask: a sleeping task passes the check unrun; the agent's refusal is the status") {
  DriverFixture f;
  std::string id = startWeb(f).handle().config().id();
  auto instance = f.agentState->instance(id);
  instance->setState(agent::InstanceState::kSleeping);
  pb::ExecTaskRequest req;
  req.set_task_id(id);
  req.add_command("check");
  pb::ExecTaskResponse out;
  REQUIRE(f.driver->ExecTask(f.ctx().get(), req, &out).ok());
  CHECK(out.result().exit_code() == 0);
  CHECK(instance->fakeExec()->runs == 0);
  CHECK_FALSE(instance->fakeExec()->lastSpec.wakeIfAsleep);

  instance->fakeExec()->error = makeError(ErrorCode::kFailedPrecondition, "exec needs the guest agent");
  auto s = f.driver->ExecTask(f.ctx().get(), req, &out);
  CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(s.error_message().find("exec needs the guest agent") != std::string::npos);
}

TEST_CASE("Networks are UNIMPLEMENTED with a clear message") {
  DriverFixture f;
  pb::CreateNetworkRequest net;
  pb::CreateNetworkResponse netOut;
  CHECK(f.driver->CreateNetwork(f.ctx().get(), net, &netOut).error_code() ==
        grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace s2z::driver::test
