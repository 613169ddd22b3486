// NomadClient: the plugin loader and the long-lived plugin instance.
// Task RPCs are in nomad_client_tasks.cpp.
#include "standin/nomad_client.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "standin/go_version.h"
#include "standin/log_collector.h"
#include "standin/nomad_client_internal.h"
#include "standin/plugin_instance.h"
#include "standin/proto_records.h"
#include "standin/recorder.h"
#include "standin/rpc_error.h"
#include "standin/spec_encoder.h"

namespace s2z::standin {

namespace {

// A fresh directory of its own for each client (mkdtemp: unique without a
// counter shared between clients). Should it fail, prepareAllocDir reports
// the path it could not use.
std::string defaultDataDir() {
  std::string dir = "/tmp/s2z-standin-" + std::to_string(getpid()) + "-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return "/tmp/s2z-standin-" + std::to_string(getpid());
  return dir;
}

// Keeps one server stream open for the instance's lifetime, re-opening it
// (after a short pause, to avoid a hot loop) whenever the plugin ends it.
template <typename Request, typename Response, typename OpenFn, typename OnMessage>
void keepStreamOpen(PluginInstance* inst, Recorder* recorder, const char* name, OpenFn open,
                    OnMessage onMessage) {
  for (;;) {
    auto ctx = inst->background().newContext();
    if (!ctx) return;
    Request request;
    auto reader = open(ctx.get(), request);
    Response response;
    while (reader->Read(&response)) onMessage(response);
    grpc::Status status = reader->Finish();
    recorder->noteStreamEnd(name);
    if (inst->background().stopping() || !inst->process().running()) return;
    spdlog::warn("standin: {} stream ended ({}), re-opening", name, statusText(status));
    if (!inst->background().sleepFor(std::chrono::milliseconds(100))) return;
  }
}

// A single-socket, single-NUMA-node topology of this machine, the shape a
// 1.7+ client sends for ordinary hosts.
void fillTopology(base::ClientTopology* topology) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  std::ifstream in("/proc/cpuinfo");
  uint64_t mhz = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("cpu MHz", 0) == 0 && line.find(':') != std::string::npos) {
      mhz = static_cast<uint64_t>(std::atof(line.c_str() + line.find(':') + 1));
      break;
    }
  }
  topology->add_node_ids(0);
  topology->mutable_distances()->set_dimension(1);
  topology->mutable_distances()->add_values(10);
  for (long i = 0; i < cores; ++i) {
    auto* core = topology->add_cores();
    core->set_core_id(static_cast<uint32_t>(i));
    core->set_core_grade(base::Performance);  // no efficiency cores on ordinary hosts
    core->set_base_speed(mhz);
    core->set_max_speed(mhz);
  }
}

}  // namespace

NomadClient::NomadClient(ClientOptions options)
    : options_(std::move(options)), recorder_(std::make_unique<Recorder>()) {
  if (options_.dataDir.empty()) options_.dataDir = defaultDataDir();
}

NomadClient::~NomadClient() {
  instance_.reset();
  std::lock_guard lock(tasksMu_);
  tasks_.clear();
}

Result<std::unique_ptr<NomadClient>> NomadClient::loadPlugin(ClientOptions options) {
  std::unique_ptr<NomadClient> client(new NomadClient(std::move(options)));
  S2Z_TRY(client->probe(), "probe launch");
  if (!client->options_.skipProbeAndValidation) S2Z_TRY(client->validate(), "validation launch");
  S2Z_TRY(client->startLongLived(), "long-lived launch");
  return client;
}

Result<void> NomadClient::probe() {
  auto inst = PluginInstance::start(options_.launch);
  if (!inst.ok()) return inst.error();
  base::PluginInfoRequest infoReq;
  base::PluginInfoResponse infoResp;
  grpc::ClientContext infoCtx;
  withDeadline(infoCtx, kUnaryTimeout);
  grpc::Status st = (*inst)->base().PluginInfo(&infoCtx, infoReq, &infoResp);
  if (!st.ok()) return rpcError("PluginInfo", st);
  info_ = toRecord(infoResp);
  if (infoResp.type() != base::DRIVER) {
    return makeError(ErrorCode::kInvalidArgument, "PluginInfo: unknown plugin type " + info_.type);
  }
  auto wanted = GoVersion::parse("0.1.0");
  for (const auto& v : info_.apiVersions) {
    auto parsed = GoVersion::parse(v);
    if (parsed && parsed->equals(*wanted)) {
      info_.chosenApiVersion = v;
      break;
    }
  }
  if (info_.chosenApiVersion.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "PluginInfo: no plugin API version compatible with v0.1.0");
  }
  if (!GoVersion::parse(info_.version)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "PluginInfo: plugin_version \"" + info_.version + "\" is not a valid version");
  }
  if (info_.name.empty()) return makeError(ErrorCode::kInvalidArgument, "PluginInfo: empty name");

  base::ConfigSchemaRequest schemaReq;
  base::ConfigSchemaResponse schemaResp;
  grpc::ClientContext schemaCtx;
  withDeadline(schemaCtx, kUnaryTimeout);
  st = (*inst)->base().ConfigSchema(&schemaCtx, schemaReq, &schemaResp);
  if (!st.ok()) return rpcError("ConfigSchema", st);
  hasConfigSchema_ = schemaResp.has_spec();
  configSchema_ = schemaResp.spec().SerializeAsString();
  loader_.probeKill = (*inst)->kill();
  retire(**inst);

  // The client encodes the agent's config block against the schema (§3.2).
  if (options_.rawPluginConfig) {
    auto raw = encodeRaw(options_.pluginConfig);
    if (!raw.ok()) return raw.error().wrap("plugin config");
    pluginConfigMsgpack_ = *raw;
  } else if (hasConfigSchema_) {
    auto encoded = encodeWithSpec(schemaResp.spec(), options_.pluginConfig);
    if (!encoded.ok()) return encoded.error().wrap("plugin config");
    pluginConfigMsgpack_ = *encoded;
  } else if (options_.pluginConfig.IsDefined() && !options_.pluginConfig.IsNull()) {
    return makeError(ErrorCode::kInvalidArgument, "plugin config given but the plugin has no schema");
  }
  return okResult();
}

Result<void> NomadClient::validate() {
  if (!hasConfigSchema_) return okResult();
  auto inst = PluginInstance::start(options_.launch);
  if (!inst.ok()) return inst.error();
  S2Z_TRY(setConfig(**inst, false), "first SetConfig");
  S2Z_TRY(setConfig(**inst, false), "second SetConfig");
  loader_.validationRan = true;
  loader_.validationKill = (*inst)->kill();
  retire(**inst);
  return okResult();
}

Result<void> NomadClient::setConfig(PluginInstance& inst, bool withNomadConfig) {
  base::SetConfigRequest req;
  req.set_msgpack_config(pluginConfigMsgpack_);
  req.set_plugin_api_version(info_.chosenApiVersion);
  if (withNomadConfig) {
    auto* driver = req.mutable_nomad_config()->mutable_driver();
    driver->set_clientminport(options_.clientMinPort);
    driver->set_clientmaxport(options_.clientMaxPort);
    if (options_.sendTopology) fillTopology(driver->mutable_topology());
  }
  base::SetConfigResponse resp;
  grpc::ClientContext ctx;
  withDeadline(ctx, kUnaryTimeout);
  grpc::Status st = inst.base().SetConfig(&ctx, req, &resp);
  if (!st.ok()) return rpcError("SetConfig", st);
  return okResult();
}

Result<void> NomadClient::startLongLived() {
  auto inst = PluginInstance::start(options_.launch);
  if (!inst.ok()) return inst.error();
  S2Z_TRY(setConfig(**inst, true), "SetConfig");
  PluginInstance* raw = inst->get();
  Recorder* recorder = recorder_.get();
  raw->background().spawn([raw, recorder] {
    keepStreamOpen<drivers::FingerprintRequest, drivers::FingerprintResponse>(
        raw, recorder, "fingerprint",
        [raw](grpc::ClientContext* ctx, const drivers::FingerprintRequest& req) {
          return raw->driver().Fingerprint(ctx, req);
        },
        [recorder](const drivers::FingerprintResponse& r) {
          auto rec = toRecord(r);
          spdlog::info("standin: fingerprint health={} \"{}\" ({} attributes)",
                       static_cast<int>(rec.health), rec.description, rec.attributes.size());
          recorder->addFingerprint(std::move(rec));
        });
  });
  raw->background().spawn([raw, recorder] {
    keepStreamOpen<drivers::TaskEventsRequest, drivers::DriverTaskEvent>(
        raw, recorder, "task_events",
        [raw](grpc::ClientContext* ctx, const drivers::TaskEventsRequest& req) {
          return raw->driver().TaskEvents(ctx, req);
        },
        [recorder](const drivers::DriverTaskEvent& e) {
          spdlog::info("standin: event {} \"{}\"", e.task_name(), e.message());
          recorder->addEvent(toRecord(e));
        });
  });
  instance_ = std::move(*inst);
  return okResult();
}

PluginProcess& NomadClient::process() { return instance_->process(); }
PluginConnection& NomadClient::connection() { return instance_->connection(); }

KillReport NomadClient::shutdownPlugin() { return instance_->kill(); }

void NomadClient::crashPlugin() { instance_->crash(); }

Result<void> NomadClient::relaunchPlugin() {
  if (instance_) {
    instance_->kill();
    retire(*instance_);
  }
  instance_.reset();
  return startLongLived();
}

void NomadClient::setPluginEnv(const std::string& name, const std::string& value) {
  auto& env = options_.launch.extraEnv;
  auto& unset = options_.launch.unsetEnv;
  unset.erase(std::remove(unset.begin(), unset.end(), name), unset.end());
  if (value.empty()) {
    env.erase(name);
    unset.push_back(name);
  } else {
    env[name] = value;
  }
}

Result<Capabilities> NomadClient::capabilities() {
  drivers::CapabilitiesRequest req;
  drivers::CapabilitiesResponse resp;
  grpc::ClientContext ctx;
  withDeadline(ctx, kUnaryTimeout);
  grpc::Status st = instance_->driver().Capabilities(&ctx, req, &resp);
  if (!st.ok()) return rpcError("Capabilities", st);
  return toRecord(resp.capabilities());
}

std::vector<FingerprintRecord> NomadClient::fingerprints() const { return recorder_->fingerprints(); }
std::vector<TaskEventRecord> NomadClient::events() const { return recorder_->events(); }
std::vector<StatsSample> NomadClient::statsSamples(const std::string& id) const {
  return recorder_->stats(id);
}
namespace {

void addOutput(PluginProcess& p, PluginOutputSummary& sum) {
  constexpr size_t kMaxSamples = 10;
  sum.processes += 1;
  auto out = p.stdoutLines();
  for (size_t i = 1; i < out.size(); ++i) {
    sum.extraStdoutLines += 1;
    if (sum.samples.size() < kMaxSamples) sum.samples.push_back("stdout: " + out[i]);
  }
  for (const auto& line : p.stderrLines()) {
    if (!line.isJson) sum.nonJsonLines += 1;
    if (!line.violations.empty()) sum.logViolations += 1;
    if ((!line.isJson || !line.violations.empty()) && sum.samples.size() < kMaxSamples) {
      sum.samples.push_back("stderr: " + line.raw);
    }
  }
}

}  // namespace

void NomadClient::retire(PluginInstance& inst) { addOutput(inst.process(), retired_); }

PluginOutputSummary NomadClient::outputSummary() const {
  PluginOutputSummary sum = retired_;
  if (instance_) addOutput(instance_->process(), sum);
  return sum;
}

int NomadClient::fingerprintStreamEnds() const { return recorder_->streamEnds("fingerprint"); }
std::optional<ExitResult> NomadClient::backgroundExit(const std::string& id) const {
  return recorder_->exit(id);
}

bool NomadClient::waitUntil(std::chrono::milliseconds timeout, const std::function<bool()>& pred) {
  return recorder_->waitUntil(timeout, pred);
}

bool NomadClient::waitForFingerprint(std::chrono::milliseconds timeout) {
  return waitUntil(timeout, [this] { return !recorder_->fingerprints().empty(); });
}

bool NomadClient::waitForStats(const std::string& id, size_t count, std::chrono::milliseconds timeout) {
  return waitUntil(timeout, [&] { return recorder_->stats(id).size() >= count; });
}

}  // namespace s2z::standin
