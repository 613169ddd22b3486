// A minimal task-driver plugin used only to test the stand-in itself: it
// speaks the real protocol (go-plugin handshake, BasePlugin, Driver,
// GRPCController) with trivial "tasks" that are just records, and appends
// every RPC it receives to $FAKE_PLUGIN_LOG so tests can check the client's
// call sequence across the probe/validation/long-lived processes.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "hashicorp/nomad/plugins/base/proto/base.grpc.pb.h"
#include "hashicorp/nomad/plugins/drivers/proto/driver.grpc.pb.h"
#include "hashicorp/nomad/plugins/shared/structs/proto/recoverable_error.pb.h"
#include "plugin/grpc_controller.grpc.pb.h"

namespace base = hashicorp::nomad::plugins::base::proto;
namespace drivers = hashicorp::nomad::plugins::drivers::proto;
namespace hclspec = hashicorp::nomad::plugins::shared::hclspec;
using grpc::ServerContext;
using grpc::Status;

namespace {

std::mutex gMu;  // guards everything below
std::condition_variable gCv;
std::map<std::string, bool> gTasks;  // id -> stopped
std::vector<drivers::DriverTaskEvent> gEvents;

void logRpc(const std::string& line) {
  const char* path = std::getenv("FAKE_PLUGIN_LOG");
  if (!path) return;
  std::ofstream(path, std::ios::app) << getpid() << " " << line << "\n";
}

void hclog(const std::string& msg) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  char ts[64];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", std::gmtime(&secs));
  std::fprintf(stderr, "{\"@level\":\"info\",\"@message\":\"%s\",\"@timestamp\":\"%s.%06lldZ\"}\n",
               msg.c_str(), ts, static_cast<long long>(micros));
  std::fflush(stderr);
}

void setNow(google::protobuf::Timestamp* ts) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch()).count();
  ts->set_seconds(ns / 1000000000);
  ts->set_nanos(static_cast<int>(ns % 1000000000));
}

class Base final : public base::BasePlugin::Service {
  Status PluginInfo(ServerContext*, const base::PluginInfoRequest*, base::PluginInfoResponse* r) override {
    logRpc("PluginInfo");
    r->set_type(base::DRIVER);
    r->add_plugin_api_versions("v0.1.0");
    r->set_plugin_version("0.3.1");
    r->set_name("fake");
    return Status::OK;
  }
  Status ConfigSchema(ServerContext*, const base::ConfigSchemaRequest*, base::ConfigSchemaResponse* r) override {
    logRpc("ConfigSchema");
    auto& attrs = *r->mutable_spec()->mutable_object()->mutable_attributes();
    auto* d = attrs["greeting"].mutable_default_();
    d->mutable_primary()->mutable_attr()->set_name("greeting");
    d->mutable_primary()->mutable_attr()->set_type("string");
    d->mutable_default_()->mutable_literal()->set_value("\"hi\"");
    return Status::OK;
  }
  Status SetConfig(ServerContext*, const base::SetConfigRequest* q, base::SetConfigResponse*) override {
    logRpc("SetConfig nomad=" + std::to_string(q->has_nomad_config()) +
           " min=" + std::to_string(q->nomad_config().driver().clientminport()) +
           " max=" + std::to_string(q->nomad_config().driver().clientmaxport()) +
           " topology=" + std::to_string(q->nomad_config().driver().has_topology()) +
           " api=" + q->plugin_api_version() + " config_bytes=" + std::to_string(q->msgpack_config().size()));
    return Status::OK;
  }
};

class Driver final : public drivers::Driver::Service {
  Status TaskConfigSchema(ServerContext*, const drivers::TaskConfigSchemaRequest*,
                          drivers::TaskConfigSchemaResponse* r) override {
    auto& attrs = *r->mutable_spec()->mutable_object()->mutable_attributes();
    attrs["command"].mutable_attr()->set_type("string");
    attrs["command"].mutable_attr()->set_required(true);
    return Status::OK;
  }
  Status Capabilities(ServerContext*, const drivers::CapabilitiesRequest*,
                      drivers::CapabilitiesResponse* r) override {
    auto* c = r->mutable_capabilities();
    c->set_send_signals(true);
    c->set_fs_isolation(drivers::DriverCapabilities::IMAGE);
    c->add_network_isolation_modes(drivers::NetworkIsolationSpec::HOST);
    c->add_network_isolation_modes(drivers::NetworkIsolationSpec::GROUP);
    return Status::OK;
  }
  Status Fingerprint(ServerContext* ctx, const drivers::FingerprintRequest*,
                     grpc::ServerWriter<drivers::FingerprintResponse>* w) override {
    drivers::FingerprintResponse r;
    r.set_health(drivers::FingerprintResponse::HEALTHY);
    r.set_health_description("Healthy");
    (*r.mutable_attributes())["driver.fake.version"].set_string_val("0.3.1");
    (*r.mutable_attributes())["driver.fake.cores"].set_int_val(2);
    (*r.mutable_attributes())["driver.fake.ratio"].set_float_val(0.5);
    w->Write(r);
    while (!ctx->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return Status::OK;
  }
  Status TaskEvents(ServerContext* ctx, const drivers::TaskEventsRequest*,
                    grpc::ServerWriter<drivers::DriverTaskEvent>* w) override {
    size_t sent = 0;
    std::unique_lock lock(gMu);
    while (!ctx->IsCancelled()) {
      while (sent < gEvents.size()) w->Write(gEvents[sent++]);
      gCv.wait_for(lock, std::chrono::milliseconds(50));
    }
    return Status::OK;
  }
  Status StartTask(ServerContext*, const drivers::StartTaskRequest* q, drivers::StartTaskResponse* r) override {
    logRpc("StartTask " + q->task().id());
    if (q->task().name() == "fail") {
      hashicorp::nomad::plugins::shared::structs::RecoverableError detail;
      detail.set_recoverable(true);
      google::protobuf::Any any;
      any.set_type_url("type.googleapis.com/hashicorp.nomad.plugins.shared.structs.RecoverableError");
      any.set_value(detail.SerializeAsString());
      // google.rpc.Status{code=9, message, details=[any]} written by hand.
      std::string msg = "no capacity";
      std::string st;
      st += static_cast<char>(0x08); st += static_cast<char>(9);
      st += static_cast<char>(0x12); st += static_cast<char>(msg.size()); st += msg;
      std::string a = any.SerializeAsString();
      st += static_cast<char>(0x1a); st += static_cast<char>(a.size()); st += a;
      return Status(grpc::StatusCode::FAILED_PRECONDITION, msg, st);
    }
    {
      std::ofstream out(q->task().stdout_path());
      out << "hello from " << q->task().name() << "\n";
    }
    std::lock_guard lock(gMu);
    gTasks[q->task().id()] = false;
    drivers::DriverTaskEvent e;
    e.set_task_id(q->task().id());
    e.set_alloc_id(q->task().alloc_id());
    e.set_task_name(q->task().name());
    e.set_message("Started");
    (*e.mutable_annotations())["pid"] = "1";
    setNow(e.mutable_timestamp());
    gEvents.push_back(e);
    gCv.notify_all();
    auto* h = r->mutable_handle();
    h->set_version(1);
    *h->mutable_config() = q->task();
    h->set_state(drivers::RUNNING);
    h->set_driver_state("state-" + q->task().id());
    r->mutable_network_override()->set_addr("10.89.9.2");
    (*r->mutable_network_override()->mutable_port_map())["http"] = 8080;
    return Status::OK;
  }
  Status RecoverTask(ServerContext*, const drivers::RecoverTaskRequest* q, drivers::RecoverTaskResponse*) override {
    logRpc("RecoverTask task_id=" + q->task_id() + " handle=" + q->handle().config().id() +
           " state=" + q->handle().driver_state());
    std::lock_guard lock(gMu);
    gTasks[q->handle().config().id()] = false;
    return Status::OK;
  }
  Status WaitTask(ServerContext* ctx, const drivers::WaitTaskRequest* q, drivers::WaitTaskResponse* r) override {
    std::unique_lock lock(gMu);
    if (!gTasks.count(q->task_id())) return Status(grpc::StatusCode::NOT_FOUND, "task not found");
    while (!gTasks[q->task_id()]) {
      if (ctx->IsCancelled()) return Status::CANCELLED;
      gCv.wait_for(lock, std::chrono::milliseconds(50));
    }
    r->mutable_result()->set_signal(15);
    return Status::OK;
  }
  Status StopTask(ServerContext*, const drivers::StopTaskRequest* q, drivers::StopTaskResponse*) override {
    logRpc("StopTask " + q->task_id() + " timeout=" + std::to_string(q->timeout().seconds()));
    std::lock_guard lock(gMu);
    if (gTasks.count(q->task_id())) gTasks[q->task_id()] = true;
    gCv.notify_all();
    return Status::OK;
  }
  Status DestroyTask(ServerContext*, const drivers::DestroyTaskRequest* q, drivers::DestroyTaskResponse*) override {
    logRpc("DestroyTask " + q->task_id() + " force=" + std::to_string(q->force()));
    std::lock_guard lock(gMu);
    gTasks.erase(q->task_id());
    gCv.notify_all();
    return Status::OK;
  }
  Status TaskStats(ServerContext* ctx, const drivers::TaskStatsRequest* q,
                   grpc::ServerWriter<drivers::TaskStatsResponse>* w) override {
    auto interval = std::chrono::seconds(q->collection_interval().seconds()) +
                    std::chrono::nanoseconds(q->collection_interval().nanos());
    for (;;) {
      {
        std::lock_guard lock(gMu);
        auto it = gTasks.find(q->task_id());
        if (it == gTasks.end() || it->second) return Status::OK;
      }
      drivers::TaskStatsResponse r;
      r.mutable_stats()->set_id(q->task_id());
      setNow(r.mutable_stats()->mutable_timestamp());
      r.mutable_stats()->mutable_agg_resource_usage()->mutable_memory()->set_rss(1 << 20);
      r.mutable_stats()->mutable_agg_resource_usage()->mutable_memory()->add_measured_fields(drivers::MemoryUsage::RSS);
      if (!w->Write(r)) return Status::OK;
      auto until = std::chrono::steady_clock::now() + interval;
      while (std::chrono::steady_clock::now() < until) {
        if (ctx->IsCancelled()) return Status::OK;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
};

class Controller final : public plugin::GRPCController::Service {
  Status Shutdown(ServerContext*, const plugin::Empty*, plugin::Empty*) override {
    logRpc("Shutdown");
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      _exit(0);
    }).detach();
    return Status::OK;
  }
};

}  // namespace

int main() {
  const char* cookie = std::getenv("NOMAD_PLUGIN_MAGIC_COOKIE");
  if (!cookie || std::string(cookie) != "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255") {
    std::fprintf(stderr, "This binary is a plugin. These are not meant to be executed directly.\n");
    return 1;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string socket = std::string(tmp ? tmp : "/tmp") + "/fake-plugin-" + std::to_string(getpid()) + ".sock";
  unlink(socket.c_str());
  Base baseService;
  Driver driverService;
  Controller controller;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&baseService);
  builder.RegisterService(&driverService);
  builder.RegisterService(&controller);
  auto server = builder.BuildAndStart();
  if (!server) return 2;
  hclog("fake plugin listening");
  std::printf("1|2|unix|%s|grpc|\n", socket.c_str());
  std::fflush(stdout);
  server->Wait();
  return 0;
}
