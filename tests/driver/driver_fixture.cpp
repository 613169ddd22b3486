#include "tests/driver/driver_fixture.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <stdexcept>

#include "driver/config_schema.h"
#include "tests/driver/nomad_msgpack.h"

namespace s2z::driver::test {

TempDir::TempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "s2z-driver-test-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path TempDir::write(const std::string& rel, const std::string& content,
                                     bool executable) const {
  auto p = path_ / rel;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << content;
  ::chmod(p.c_str(), executable ? 0755 : 0644);
  return p;
}

DriverFixture::DriverFixture(std::shared_ptr<FakeAgentState> shared)
    : agentState(shared ? shared : std::make_shared<FakeAgentState>()) {
  dir.write("bin/qemu-system-x86_64", "#!/bin/sh\nexit 0\n", true);
  kernel = dir.write("images/vmlinuz", "kernel");
  initrd = dir.write("images/initrd.img", "initrd");
  dir.write("alloc/web/local/disk.img", "disk");

  auto fakeHost = std::make_unique<FakeHost>(agentState);
  host = fakeHost.get();
  PluginOptions options;
  options.fingerprintCheckInterval = std::chrono::milliseconds(50);
  options.fingerprintResendInterval = std::chrono::milliseconds(300);
  options.cancelPollInterval = std::chrono::milliseconds(20);
  options.cpuMhzPerCore = 2000;
  options.pathEnv = (dir.path() / "bin").string();
  plugin = std::make_unique<Plugin>(std::move(fakeHost), options);

  baseService_ = std::make_unique<BaseService>(*plugin);
  driverService_ = std::make_unique<DriverService>(*plugin);
  healthService_ = std::make_unique<HealthService>();
  controllerService_ = std::make_unique<ControllerService>([this] { ++shutdownRequests; });
  stdioService_ = std::make_unique<StdioService>();
  brokerService_ = std::make_unique<BrokerService>();
  ServeOptions serve;
  serve.socketParent = dir.path();
  auto started = PluginServer::start({baseService_.get(), driverService_.get(), healthService_.get(),
                                      controllerService_.get(), stdioService_.get(),
                                      brokerService_.get()},
                                     serve);
  if (!started.ok()) throw std::runtime_error(started.error().describe());
  server = std::move(started).value();

  auto channel = grpc::CreateChannel("unix:" + server->socketPath().string(),
                                     grpc::InsecureChannelCredentials());
  driver = pb::Driver::NewStub(channel);
  base = basepb::BasePlugin::NewStub(channel);
  health = grpc::health::v1::Health::NewStub(channel);
  controller = ::plugin::GRPCController::NewStub(channel);
}

DriverFixture::~DriverFixture() {
  server->shutdown(std::chrono::milliseconds(100));
}

std::unique_ptr<grpc::ClientContext> DriverFixture::ctx(std::chrono::milliseconds deadline) const {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + deadline);
  return c;
}

namespace {

basepb::SetConfigRequest setConfigRequest(const DriverFixture& f, const nlohmann::json& extra) {
  nlohmann::json config = {{"kernel", f.kernel.string()},
                           {"initrd", f.initrd.string()},
                           {"state_dir", (f.dir.path() / "state").string()}};
  for (const auto& [k, v] : extra.items()) config[k] = v;
  basepb::SetConfigRequest req;
  req.set_msgpack_config(encodeLikeNomad(pluginConfigSpec(), config));
  return req;
}

}  // namespace

grpc::Status DriverFixture::setConfig(const nlohmann::json& extra) {
  auto req = setConfigRequest(*this, extra);
  basepb::SetConfigResponse resp;
  return base->SetConfig(ctx().get(), req, &resp);
}

grpc::Status DriverFixture::setConfig(const nlohmann::json& extra, const basepb::ClientTopology& topology) {
  auto req = setConfigRequest(*this, extra);
  *req.mutable_nomad_config()->mutable_driver()->mutable_topology() = topology;
  basepb::SetConfigResponse resp;
  return base->SetConfig(ctx().get(), req, &resp);
}

pb::TaskConfig DriverFixture::taskConfig(const std::string& name, const nlohmann::json& config) const {
  pb::TaskConfig t;
  t.set_alloc_id("5f1c2d3e-aaaa-bbbb-cccc-0123456789ab");
  t.set_name(name);
  t.set_id(t.alloc_id() + "/" + name + "/1a2b3c4d");
  t.set_msgpack_driver_config(encodeLikeNomad(taskConfigSpec(), config));
  t.set_alloc_dir((dir.path() / "alloc").string());
  t.set_stdout_path((dir.path() / "alloc/logs/.web.stdout.fifo").string());
  t.set_stderr_path((dir.path() / "alloc/logs/.web.stderr.fifo").string());
  t.set_job_name("demo");
  (*t.mutable_env())["NOMAD_TASK_NAME"] = name;
  auto* res = t.mutable_resources();
  res->mutable_allocated_resources()->mutable_memory()->set_memory_mb(512);
  res->mutable_allocated_resources()->mutable_memory()->set_memory_max_mb(1024);
  res->mutable_allocated_resources()->mutable_cpu()->set_cpu_shares(500);
  res->mutable_linux_resources()->set_cpu_shares(500);
  res->mutable_linux_resources()->set_memory_limit_bytes(int64_t{1024} << 20);
  auto* http = res->add_ports();
  http->set_label("http");
  http->set_value(23456);
  http->set_to(8080);
  auto* admin = res->add_ports();
  admin->set_label("admin");
  admin->set_value(24000);
  admin->set_to(0);
  return t;
}

grpc::Status DriverFixture::start(const pb::TaskConfig& task, pb::StartTaskResponse* out) {
  pb::StartTaskRequest req;
  *req.mutable_task() = task;
  return driver->StartTask(ctx().get(), req, out);
}

nlohmann::json webTaskConfig() {
  return {{"ports", {"http", "admin"}},
          {"vcpus", 2},
          {"cmdline", "quiet"},
          {"scale_to_zero", {{"idle_timeout", "45s"}}}};
}

pb::StartTaskResponse startWeb(DriverFixture& f, const nlohmann::json& config) {
  REQUIRE(f.setConfig().ok());
  pb::StartTaskResponse resp;
  auto status = f.start(f.taskConfig("web", config), &resp);
  INFO(status.error_message());
  REQUIRE(status.ok());
  return resp;
}

}  // namespace s2z::driver::test
