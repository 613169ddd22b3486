// Long-lived Driver RPCs (TaskStats, TaskEvents, Fingerprint) over a real
// gRPC connection: cancellation, cadence, required fields.
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

TEST_CASE("TaskStats streams samples with timestamp and usage, zero while asleep") {
  DriverFixture f;
  auto resp = startWeb(f);
  std::string id = resp.handle().config().id();
  auto vm = f.agentState->instance(id);
  agent::ResourceUsage u;
  u.cpuPercent = 50;
  u.userPercent = 40;
  u.systemPercent = 10;
  u.rssBytes = 200u << 20;
  u.measured = true;
  u.throttledPeriods = 12;  // a hard CPU limit held it back
  u.throttledNanoseconds = 3'000'000;
  u.throttlingMeasured = true;
  vm->setUsage(u);

  pb::TaskStatsRequest req;
  req.set_task_id(id);
  *req.mutable_collection_interval() = google::protobuf::util::TimeUtil::MillisecondsToDuration(100);
  auto ctx = f.ctx(3000ms);
  auto reader = f.driver->TaskStats(ctx.get(), req);
  pb::TaskStatsResponse sample;
  REQUIRE(reader->Read(&sample));
  const auto& s = sample.stats();
  CHECK(s.id() == id);
  REQUIRE(s.has_timestamp());
  CHECK(s.timestamp().seconds() > 0);
  REQUIRE(s.has_agg_resource_usage());
  const auto& cpu = s.agg_resource_usage().cpu();
  CHECK(cpu.percent() == doctest::Approx(50));
  CHECK(cpu.total_ticks() == doctest::Approx(1000));  // 50% of a 2000 MHz core
  CHECK(cpu.user_mode() == doctest::Approx(40));
  CHECK(cpu.throttled_periods() == 12);
  CHECK(cpu.throttled_time() == 3'000'000);
  CHECK(cpu.measured_fields_size() == 6);
  CHECK(s.agg_resource_usage().memory().rss() == (200u << 20));
  CHECK(s.agg_resource_usage().memory().measured_fields(0) == pb::MemoryUsage::RSS);

  vm->setUsage(agent::ResourceUsage{});  // asleep: no VMM process
  vm->setState(agent::InstanceState::kSleeping);
  auto t0 = std::chrono::steady_clock::now();
  bool sawZero = false;
  for (int i = 0; i < 10 && !sawZero; ++i) {
    REQUIRE(reader->Read(&sample));
    REQUIRE(sample.stats().has_timestamp());
    REQUIRE(sample.stats().has_agg_resource_usage());
    sawZero = sample.stats().agg_resource_usage().cpu().percent() == 0 &&
              sample.stats().agg_resource_usage().memory().rss() == 0;
  }
  CHECK(sawZero);
  CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);

  // Destroying the task ends the stream.
  vm->exitWith(0);
  pb::DestroyTaskRequest destroy;
  destroy.set_task_id(id);
  destroy.set_force(true);
  pb::DestroyTaskResponse destroyResp;
  REQUIRE(f.driver->DestroyTask(f.ctx().get(), destroy, &destroyResp).ok());
  while (reader->Read(&sample)) {
  }
  CHECK(reader->Finish().ok());
}

TEST_CASE("TaskEvents delivers instance events with alloc_id and task_name") {
  DriverFixture f;
  auto resp = startWeb(f);
  std::string id = resp.handle().config().id();
  auto ctx = f.ctx(3000ms);
  auto reader = f.driver->TaskEvents(ctx.get(), pb::TaskEventsRequest());
  // The subscription exists once the server has run the handler.
  for (int i = 0; i < 100 && f.plugin->events().subscribers() == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(f.plugin->events().subscribers() == 1);
  f.agentState->instance(id)->emit("Sleeping", {{"snapshot_bytes", "58000"}});
  f.agentState->instance(id)->emit("Woken", {{"latency_ms", "251"}});
  pb::DriverTaskEvent e;
  REQUIRE(reader->Read(&e));
  CHECK(e.task_id() == id);
  CHECK(e.alloc_id() == "5f1c2d3e-aaaa-bbbb-cccc-0123456789ab");
  CHECK(e.task_name() == "web");
  CHECK(e.message() == "Sleeping");
  CHECK(e.annotations().at("snapshot_bytes") == "58000");
  CHECK(e.timestamp().seconds() > 0);
  REQUIRE(reader->Read(&e));
  CHECK(e.message() == "Woken");
  ctx->TryCancel();
  while (reader->Read(&e)) {
  }
  for (int i = 0; i < 100 && f.plugin->events().subscribers() != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(f.plugin->events().subscribers() == 0);  // the handler noticed the cancel
}

TEST_CASE("Fingerprint: immediate, healthy, stays open and resends") {
  DriverFixture f;
  REQUIRE(f.setConfig().ok());
  auto ctx = f.ctx(1000ms);
  auto reader = f.driver->Fingerprint(ctx.get(), pb::FingerprintRequest());
  pb::FingerprintResponse fp;
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(reader->Read(&fp));
  CHECK(std::chrono::steady_clock::now() - t0 < 500ms);
  CHECK(fp.health() == pb::FingerprintResponse::HEALTHY);
  CHECK(fp.health_description() == "Healthy");
  const auto& a = fp.attributes();
  CHECK(a.at("driver.s2z-kata.version").string_val() == "0.1.0");
  CHECK(a.at("driver.s2z-kata.hypervisor").string_val() == "qemu");
  CHECK(a.at("driver.s2z-kata.hypervisor_version").string_val() == "7.2.19");
  CHECK(a.at("driver.s2z-kata.accelerator").string_val() == "tcg");
  CHECK(a.at("driver.s2z-kata.scale_to_zero").bool_val());
  CHECK(a.at("driver.s2z-kata.sleeping_tasks").int_val() == 0);
  CHECK(*f.host->makeAgentCalls == 1);

  // Unchanged facts are resent after the resend interval (300 ms here), and
  // the stream only ends because our deadline cancels it.
  REQUIRE(reader->Read(&fp));
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
  while (reader->Read(&fp)) {
  }
  CHECK(reader->Finish().error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_CASE("Fingerprint: unhealthy with a description naming what is missing") {
  DriverFixture f;
  REQUIRE(f.setConfig({{"qemu_path", "qemu-system-x86_64-nope"}, {"kernel", "/x/vmlinuz"}}).ok());
  auto ctx = f.ctx(1000ms);
  auto reader = f.driver->Fingerprint(ctx.get(), pb::FingerprintRequest());
  pb::FingerprintResponse fp;
  REQUIRE(reader->Read(&fp));
  CHECK(fp.health() == pb::FingerprintResponse::UNHEALTHY);
  CHECK(fp.health_description().find("qemu binary \"qemu-system-x86_64-nope\" not found in PATH") !=
        std::string::npos);
  CHECK(fp.health_description().find("kernel \"/x/vmlinuz\" not found") != std::string::npos);
  ctx->TryCancel();
}

TEST_CASE("Fingerprint: a sleeping task changes the attributes and is sent at once") {
  DriverFixture f;
  auto resp = startWeb(f);
  auto ctx = f.ctx(2000ms);
  auto reader = f.driver->Fingerprint(ctx.get(), pb::FingerprintRequest());
  pb::FingerprintResponse fp;
  REQUIRE(reader->Read(&fp));
  CHECK(fp.attributes().at("driver.s2z-kata.sleeping_tasks").int_val() == 0);
  f.agentState->instance(resp.handle().config().id())->setState(agent::InstanceState::kSleeping);
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(reader->Read(&fp));
  CHECK(fp.attributes().at("driver.s2z-kata.sleeping_tasks").int_val() == 1);
  CHECK(std::chrono::steady_clock::now() - t0 < 250ms);  // before the 300 ms resend
  ctx->TryCancel();
}

TEST_CASE("many long-lived calls at once do not starve unary calls") {
  DriverFixture f;
  REQUIRE(f.setConfig().ok());
  constexpr int kTasks = 12;
  std::vector<std::string> ids;
  for (int i = 0; i < kTasks; ++i) {
    pb::StartTaskResponse resp;
    REQUIRE(f.start(f.taskConfig("t" + std::to_string(i), json::object()), &resp).ok());
    ids.push_back(resp.handle().config().id());
  }
  // Per task one WaitTask and one TaskStats stream, plus the plugin streams.
  std::vector<std::thread> waiters;
  std::atomic<int> waited{0};
  for (const auto& id : ids) {
    waiters.emplace_back([&, id] {
      pb::WaitTaskRequest req;
      req.set_task_id(id);
      pb::WaitTaskResponse out;
      if (f.driver->WaitTask(f.ctx(10000ms).get(), req, &out).ok() && out.has_result()) ++waited;
    });
  }
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<pb::TaskStatsResponse>>> stats;
  for (const auto& id : ids) {
    pb::TaskStatsRequest req;
    req.set_task_id(id);
    contexts.push_back(f.ctx(10000ms));
    stats.push_back(f.driver->TaskStats(contexts.back().get(), req));
  }
  auto fpCtx = f.ctx(10000ms);
  auto fp = f.driver->Fingerprint(fpCtx.get(), pb::FingerprintRequest());
  auto evCtx = f.ctx(10000ms);
  auto events = f.driver->TaskEvents(evCtx.get(), pb::TaskEventsRequest());
  for (auto& s : stats) {
    pb::TaskStatsResponse sample;
    REQUIRE(s->Read(&sample));
  }

  auto t0 = std::chrono::steady_clock::now();
  basepb::PluginInfoResponse info;
  REQUIRE(f.base->PluginInfo(f.ctx(2000ms).get(), {}, &info).ok());
  CHECK(std::chrono::steady_clock::now() - t0 < 500ms);

  for (const auto& id : ids) f.agentState->instance(id)->exitWith(0);
  for (auto& t : waiters) t.join();
  CHECK(waited == kTasks);
  for (auto& c : contexts) c->TryCancel();
  fpCtx->TryCancel();
  evCtx->TryCancel();
  for (auto& s : stats) {
    pb::TaskStatsResponse sample;
    while (s->Read(&sample)) {
    }
  }
}

}  // namespace
}  // namespace s2z::driver::test
