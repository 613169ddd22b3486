#include "driver/task_lifecycle.h"

#include <functional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/rollback_stack.h"
#include "driver/error_status.h"
#include "driver/node_compute.h"
#include "driver/registry_access.h"
#include "driver/task_config.h"
#include "driver/task_resolve.h"
#include "driver/task_state.h"

namespace s2z::driver {
namespace {

constexpr int32_t kHandleVersion = 1;

// Routes an instance's events to the TaskEvents streams with the Nomad
// identifiers the client routes by (alloc_id + task_name).
agent::EventSink eventSinkFor(EventBus& bus, const pb::TaskConfig& task) {
  return [&bus, taskId = task.id(), allocId = task.alloc_id(),
          taskName = task.name()](const agent::InstanceEvent& e) {
    bus.publish(DriverEvent{taskId, allocId, taskName, e.message, e.annotations, e.time});
  };
}

bool isTransient(const Error& e) {
  return e.code == ErrorCode::kUnavailable || e.code == ErrorCode::kTimeout;
}

grpc::Status fail(const std::string& taskId, const char* stage, const Error& error) {
  Error wrapped = error.wrap(fmt::format("start task {}: {}", taskId, stage));
  spdlog::error("{}", wrapped.describe());
  if (isTransient(error)) return recoverableStatus(wrapped, true);
  return toStatus(wrapped);
}

TaskNetwork networkFor(const agent::InstanceRecord& record, const TaskConfig& config,
                       const pb::Resources& resources) {
  TaskNetwork net;
  net.address = record.network.address;
  auto ports = portMapFor(config.ports, resources);
  if (ports.ok()) net.portMap = *ports;
  return net;
}

std::chrono::system_clock::time_point fromUnixNs(int64_t ns) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns)));
}

}  // namespace

pb::NetworkOverride toNetworkOverride(const TaskNetwork& network) {
  pb::NetworkOverride out;
  out.set_addr(network.address);
  out.set_auto_advertise(true);
  for (const auto& [label, port] : network.portMap) (*out.mutable_port_map())[label] = port;
  return out;
}

grpc::Status startTask(Plugin& plugin, const pb::TaskConfig& task, pb::StartTaskResponse* response) {
  const std::string& id = task.id();
  if (id.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "start task: empty task id");
  if (plugin.tasks().get(id)) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS,
                        fmt::format("start task {}: already started", id));
  }

  // Stage: decode config.
  auto config = decodeTaskConfig(task.msgpack_driver_config());
  if (!config.ok()) return fail(id, "decode config", config.error());
  auto ports = portMapFor(config->ports, task.resources());
  if (!ports.ok()) return fail(id, "decode config", ports.error());

  // Stage: resolve defaults.
  PluginConfig pluginConfig = plugin.config();
  std::optional<vmm::kata::KataDefaults> kata;
  if (!pluginConfig.kataConfig.empty()) {
    auto loaded = plugin.host().loadKataConfig(pluginConfig.kataConfig);
    if (!loaded.ok()) {
      return fail(id, "resolve defaults",
                  Error{ErrorCode::kFailedPrecondition, 0, loaded.error().describe()}.wrap("kata_config"));
    }
    kata = *loaded;
  }
  // Stage: pull the image (the docker driver's events: progress, then ready).
  std::optional<image::PreparedImage> pulled;
  if (!config->image.empty()) {
    auto agent = plugin.agent();
    if (!agent.ok()) return fail(id, "agent", agent.error());
    auto events = eventSinkFor(plugin.events(), task);
    auto access = registryAccessFor(*config, pluginConfig);
    if (!access.ok()) return fail(id, "pull image", access.error());
    if (!access->softFailure.empty()) {
      events(agent::InstanceEvent{"Pulling without registry credentials",
                                  {{"image", config->image}, {"reason", access->softFailure}},
                                  std::chrono::system_clock::now()});
    }
    auto prepared = (*agent)->prepareImage(config->image, access->options, [&](const std::string& stage) {
      events(agent::InstanceEvent{stage, {{"image", config->image}}, std::chrono::system_clock::now()});
    });
    if (!prepared.ok()) return fail(id, "pull image", prepared.error());
    events(agent::InstanceEvent{"Image ready",
                                {{"image", config->image},
                                 {"digest", prepared->digest},
                                 {"size_bytes", std::to_string(prepared->diskBytes)},
                                 {"seconds", fmt::format("{:.1f}", prepared->seconds)},
                                 {"cached", prepared->cached ? "true" : "false"}},
                                std::chrono::system_clock::now()});
    pulled = std::move(*prepared);
  }

  ResolveInputs inputs{&task, &*config, &pluginConfig, kata ? &*kata : nullptr,
                       plugin.acceleratorFor(pluginConfig), plugin.pathEnv(), pulled ? &*pulled : nullptr,
                       cpusThisProcessMayUse()};
  auto spec = resolveInstanceSpec(inputs);
  if (!spec.ok()) {
    Error e = spec.error();
    if (e.code == ErrorCode::kNotFound) e.code = ErrorCode::kFailedPrecondition;  // node problem
    return fail(id, "resolve defaults", e);
  }

  // Stage: check files.
  auto files = checkInstanceFiles(*spec);
  if (!files.ok()) return fail(id, "check files", files.error());

  // Stage: start the VM.
  auto agent = plugin.agent();
  if (!agent.ok()) return fail(id, "agent", agent.error());
  RollbackStack undo;
  auto instance = (*agent)->start(*spec, eventSinkFor(plugin.events(), task));
  if (!instance.ok()) return fail(id, "start VM", instance.error());
  std::shared_ptr<agent::Instance> vm = *instance;
  undo.push([vm, agent = *agent, id] {
    auto destroyed = vm->destroy();
    if (!destroyed.ok()) spdlog::warn("start task {}: undo: {}", id, destroyed.error().describe());
    agent->forget(id);
  });

  // Stage: persist the handle.
  agent::InstanceRecord record = vm->record();
  TaskNetwork network{record.network.address, *ports};
  auto startedAt = record.startedAtUnixNs > 0 ? fromUnixNs(record.startedAtUnixNs)
                                              : std::chrono::system_clock::now();
  auto handle = std::make_shared<TaskHandle>(task, vm, network, startedAt);
  if (plugin.tasks().insertOrGet(handle) != handle) {
    return fail(id, "persist handle",
                makeError(ErrorCode::kAlreadyExists, "a concurrent StartTask won"));
  }
  auto* h = response->mutable_handle();
  h->set_version(kHandleVersion);
  *h->mutable_config() = task;
  h->set_state(pb::TaskState::RUNNING);
  h->set_driver_state(encodeTaskState(record));
  *response->mutable_network_override() = toNetworkOverride(network);
  response->set_result(pb::StartTaskResponse::SUCCESS);
  undo.commit();
  spdlog::info("task {} started: vm {} at {} ({} MiB, {} vcpus, scale_to_zero={})", id,
               spec->name, network.address, spec->memoryMib, spec->vcpus, spec->scaleToZero);
  return grpc::Status::OK;
}

grpc::Status recoverTask(Plugin& plugin, const pb::TaskHandle& handle) {
  const std::string& id = handle.config().id();
  if (id.empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "recover task: handle has no config.id");
  }
  if (plugin.tasks().get(id)) return grpc::Status::OK;

  auto record = decodeTaskState(handle.driver_state());
  if (!record.ok()) return toStatus(record.error().wrap(fmt::format("recover task {}", id)));
  auto agent = plugin.agent();
  if (!agent.ok()) return toStatus(agent.error().wrap(fmt::format("recover task {}", id)));
  auto instance = (*agent)->recover(*record, eventSinkFor(plugin.events(), handle.config()));
  if (!instance.ok()) {
    Error e = instance.error();
    std::string what = e.code == ErrorCode::kNotFound ? "the VM is gone" : "reattach failed";
    Error wrapped = e.wrap(fmt::format("recover task {}: {}", id, what));
    spdlog::warn("{}", wrapped.describe());
    return toStatus(wrapped);
  }

  // The port map Nomad stored with the handle stays in force; we only need
  // ours for InspectTask, so a task config that no longer decodes is not fatal.
  TaskConfig config;
  auto decoded = decodeTaskConfig(handle.config().msgpack_driver_config());
  if (decoded.ok()) config = *decoded;
  agent::InstanceRecord now = (*instance)->record();
  auto startedAt = now.startedAtUnixNs > 0 ? fromUnixNs(now.startedAtUnixNs)
                                           : std::chrono::system_clock::now();
  auto tracked = std::make_shared<TaskHandle>(handle.config(), *instance,
                                              networkFor(now, config, handle.config().resources()),
                                              startedAt);
  plugin.tasks().insertOrGet(tracked);
  spdlog::info("task {} recovered: vm {} state {}", id, now.spec.name,
               agent::instanceStateName(now.state));
  return grpc::Status::OK;
}

}  // namespace s2z::driver
