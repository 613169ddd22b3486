// RecoverTask across plugin processes, the versioned driver_state, and
// go-plugin's own services.
#include <doctest/doctest.h>

#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>

#include <atomic>
#include <csignal>
#include <thread>

#include "driver/error_status.h"
#include "driver/task_state.h"
#include "tests/driver/driver_fixture.h"

namespace s2z::driver::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using google::protobuf::util::MessageDifferencer;

TEST_CASE("RecoverTask: new plugin process re-adopts; idempotent; gone VM is NOT_FOUND") {
  auto shared = std::make_shared<FakeAgentState>();
  pb::StartTaskResponse resp;
  {
    DriverFixture first(shared);
    resp = startWeb(first);
  }
  // The first plugin process is gone; its VM is still alive in the fake agent.
  shared->instances.clear();
  DriverFixture second(shared);
  REQUIRE(second.setConfig().ok());
  pb::RecoverTaskRequest req;
  *req.mutable_handle() = resp.handle();  // task_id left empty, like the client
  pb::RecoverTaskResponse out;
  auto status = second.driver->RecoverTask(second.ctx().get(), req, &out);
  INFO(status.error_message());
  REQUIRE(status.ok());
  REQUIRE(second.driver->RecoverTask(second.ctx().get(), req, &out).ok());  // again
  CHECK(second.plugin->tasks().size() == 1);

  pb::InspectTaskRequest inspect;
  inspect.set_task_id(resp.handle().config().id());
  pb::InspectTaskResponse inspectOut;
  REQUIRE(second.driver->InspectTask(second.ctx().get(), inspect, &inspectOut).ok());
  CHECK(inspectOut.network_override().port_map().at("http") == 8080);

  // A VM that vanished.
  pb::RecoverTaskRequest gone = req;
  auto record = decodeTaskState(resp.handle().driver_state());
  REQUIRE(record.ok());
  record->spec.taskId = "5f1c2d3e-aaaa-bbbb-cccc-0123456789ab/db/99999999";
  gone.mutable_handle()->mutable_config()->set_id(record->spec.taskId);
  gone.mutable_handle()->set_driver_state(encodeTaskState(*record));
  auto notFound = second.driver->RecoverTask(second.ctx().get(), gone, &out);
  CHECK(notFound.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(notFound.error_message().find("the VM is gone") != std::string::npos);

  // Broken driver_state.
  pb::RecoverTaskRequest broken = gone;
  broken.mutable_handle()->set_driver_state("{\"version\":7}");
  auto invalid = second.driver->RecoverTask(second.ctx().get(), broken, &out);
  CHECK(invalid.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(invalid.error_message().find("version 7") != std::string::npos);
}

TEST_CASE("task state: versioned JSON, unknown versions rejected clearly") {
  agent::InstanceRecord r;
  r.spec.taskId = "a/b/c";
  r.spec.name = "a-1";
  r.network.address = "10.89.0.9";
  r.state = agent::InstanceState::kSleeping;
  auto bytes = encodeTaskState(r);
  auto json = nlohmann::json::parse(bytes);
  CHECK(json["version"] == 1);
  auto back = decodeTaskState(bytes);
  REQUIRE(back.ok());
  CHECK(back->network.address == "10.89.0.9");
  CHECK(back->state == agent::InstanceState::kSleeping);
  json["version"] = 2;
  auto v2 = decodeTaskState(json.dump());
  REQUIRE_FALSE(v2.ok());
  CHECK(v2.error().message.find("version 2 is not supported") != std::string::npos);
  CHECK_FALSE(decodeTaskState("").ok());
  CHECK_FALSE(decodeTaskState("not json").ok());
  CHECK_FALSE(decodeTaskState("{\"version\":1}").ok());
}

TEST_CASE("go-plugin services: health, controller, stdio, broker") {
  DriverFixture f;
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse out;
  req.set_service("plugin");
  REQUIRE(f.health->Check(f.ctx().get(), req, &out).ok());
  CHECK(out.status() == grpc::health::v1::HealthCheckResponse::SERVING);
  req.set_service("");
  REQUIRE(f.health->Check(f.ctx().get(), req, &out).ok());
  CHECK(out.status() == grpc::health::v1::HealthCheckResponse::SERVING);

  ::plugin::Empty empty;
  REQUIRE(f.controller->Shutdown(f.ctx().get(), empty, &empty).ok());
  CHECK(f.shutdownRequests == 1);

  auto channel = grpc::CreateChannel("unix:" + f.server->socketPath().string(),
                                     grpc::InsecureChannelCredentials());
  auto stdio = ::plugin::GRPCStdio::NewStub(channel);
  auto ctx = f.ctx(300ms);
  auto reader = stdio->StreamStdio(ctx.get(), google::protobuf::Empty());
  ::plugin::StdioData data;
  CHECK_FALSE(reader->Read(&data));  // nothing sent; held open until our deadline
  CHECK(reader->Finish().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);

  auto broker = ::plugin::GRPCBroker::NewStub(channel);
  grpc::ClientContext bctx;
  auto stream = broker->StartStream(&bctx);
  ::plugin::ConnInfo info;
  info.set_service_id(1);
  CHECK(stream->Write(info));
  CHECK(stream->WritesDone());
  CHECK(stream->Finish().ok());  // ends once the client closes its side
}

}  // namespace
}  // namespace s2z::driver::test
