#include "agent/lifecycle.h"

#include <doctest/doctest.h>

#include "tests/agent/agent_test_support.h"

namespace s2z::agent {
namespace {

using namespace std::chrono_literals;
using testing::Harness;

TEST_CASE("lifecycle: the full scale-to-zero cycle goes through the named transitions") {
  Lifecycle l;
  CHECK(l.state() == InstanceState::kBooting);
  REQUIRE(l.booted().ok());
  REQUIRE(l.beginSleep().ok());
  CHECK(l.state() == InstanceState::kSnapshotting);
  REQUIRE(l.slept().ok());
  CHECK(l.state() == InstanceState::kSleeping);
  REQUIRE(l.beginWake().ok());
  CHECK(l.state() == InstanceState::kWaking);
  REQUIRE(l.woke().ok());
  CHECK(l.state() == InstanceState::kRunning);
  REQUIRE(l.beginSleep().ok());
  REQUIRE(l.sleepFailed().ok());
  CHECK(l.state() == InstanceState::kRunning);
  REQUIRE(l.beginStop().ok());
  REQUIRE(l.exited().ok());
  CHECK(l.state() == InstanceState::kExited);
}

TEST_CASE("lifecycle: a transition in the wrong state is a typed error naming both") {
  Lifecycle l;
  auto r = l.beginSleep();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kFailedPrecondition);
  CHECK(r.error().message == "sleep: instance is booting");
  CHECK(l.state() == InstanceState::kBooting);  // unchanged

  REQUIRE(l.booted().ok());
  auto wake = l.beginWake();
  REQUIRE_FALSE(wake.ok());
  CHECK(wake.error().message == "wake: instance is running");

  REQUIRE(l.exited().ok());
  for (auto step : {&Lifecycle::booted, &Lifecycle::beginSleep, &Lifecycle::slept,
                    &Lifecycle::beginWake, &Lifecycle::woke, &Lifecycle::beginStop,
                    &Lifecycle::exited}) {
    auto e = (l.*step)();
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == ErrorCode::kFailedPrecondition);
    CHECK(e.error().message.find("instance is exited") != std::string::npos);
  }
}

TEST_CASE("instance: signal while sleeping is refused naming state and operation") {
  Harness h;
  h.makeAgent();
  auto inst = h.startOk(h.spec("task-sig", true, 100ms));
  REQUIRE(h.events.waitFor("Sleeping", 3s));
  auto r = inst->signal(15);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kFailedPrecondition);
  CHECK(r.error().message == "signal: instance is sleeping");
}

}  // namespace
}  // namespace s2z::agent
