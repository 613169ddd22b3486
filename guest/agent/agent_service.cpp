#include "guest/agent/agent_service.h"

#include <time.h>

#include "guest/agent/clock_and_entropy.h"
#include "guest/agent/console_log.h"
#include "guest/agent/launch_plan.h"
#include "guest/agent/task_files.h"

#ifndef S2Z_AGENT_VERSION
#define S2Z_AGENT_VERSION "dev"
#endif

namespace s2z::guest {

namespace {

using agent::v1::Frame;

// The host says Hello again every few ms until it is answered (5, 10, 20, ...
// ms apart), so a guest that was slow to run after a restore reads several
// at once. One reply is enough, to the last: it carries the newest ack. The
// others would cost the guest a reply and a resend each, in the first
// milliseconds after the wake, when the workload needs the vCPU most.
bool supersededHello(const std::vector<Frame>& frames, size_t i) {
  if (i + 1 >= frames.size() || !frames[i].has_hello() || !frames[i + 1].has_hello()) return false;
  const auto& a = frames[i].hello();
  const auto& b = frames[i + 1].hello();
  return a.session() == b.session() && a.protocol_version() == b.protocol_version();
}

}  // namespace

void AgentService::onFrames(const std::vector<Frame>& frames) {
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& frame = frames[i];
    if (!session_.receive(frame)) continue;  // duplicate or out of order: resent later
    switch (frame.body_case()) {
      case Frame::kHello:
        if (!supersededHello(frames, i)) handleHello(frame.hello(), frame.ack());
        break;
      case Frame::kRequest: {
        if (refused_) break;
        Frame reply;
        *reply.mutable_response() = handleRequest(frame.request());
        sendSequenced(std::move(reply));
        break;
      }
      default:
        break;  // a pure ack (no body), or something a host should not send
    }
  }
  if (session_.ackOwed()) {
    channel_.send(session_.unsequenced(Frame()));
    session_.ackSent();
  }
}

void AgentService::handleHello(const agent::v1::Hello& hello, uint64_t hostAck) {
  if (!sawSession_ || hello.session() != sessionId_) {
    // A restarted plugin numbers from 1 again: forget the old receive position.
    session_.resetReceive();
    // Nobody reads the old session's exec'd processes any more.
    if (sawSession_) execs_.killAll();
    sessionId_ = hello.session();
    sawSession_ = true;
  }
  Frame reply;
  auto* r = reply.mutable_hello_reply();
  r->set_protocol_version(guestlink::kProtocolVersion);
  r->set_agent_version(S2Z_AGENT_VERSION);
  auto* status = r->mutable_workload();
  status->set_started(workload_.state() != WorkloadState::kNotStarted);
  status->set_exited(workload_.state() == WorkloadState::kExited);
  status->set_pid(workload_.pid());
  refused_ = hello.protocol_version() != guestlink::kProtocolVersion;
  if (refused_) {
    r->set_error("protocol version " + std::to_string(hello.protocol_version()) + " not supported (agent speaks " +
                 std::to_string(guestlink::kProtocolVersion) + ")");
    logLine("refusing host: " + r->error());
    channel_.send(session_.unsequenced(std::move(reply)));
    return;
  }
  std::vector<Frame> again = session_.resendAfter(hostAck);
  r->set_next_seq(again.empty() ? session_.nextSeq() : again.front().seq());
  channel_.send(session_.unsequenced(std::move(reply)));
  for (const Frame& frame : again) channel_.send(frame);
}

void AgentService::sendSequenced(Frame frame) { channel_.send(session_.send(std::move(frame))); }

agent::v1::Response AgentService::handleRequest(const agent::v1::Request& request) {
  agent::v1::Response response;
  response.set_id(request.id());
  auto fail = [&](const Error& e) { response.set_error(e.describe()); };
  switch (request.call_case()) {
    case agent::v1::Request::kStartWorkload:
      startWorkload(request.start_workload(), response);
      break;
    case agent::v1::Request::kSignalProcess: {
      const auto& sig = request.signal_process();
      auto r = sig.exec_id() == 0 ? workload_.signal(sig.signal()) : execs_.signal(sig.exec_id(), sig.signal());
      if (!r.ok()) fail(r.error());
      break;
    }
    case agent::v1::Request::kExecProcess:
      execProcess(request.exec_process(), response);
      break;
    case agent::v1::Request::kWriteStream:
      if (auto r = execs_.writeStdin(request.write_stream()); !r.ok()) fail(r.error());
      break;
    case agent::v1::Request::kTtyWinResize:
      if (auto r = execs_.resize(request.tty_win_resize()); !r.ok()) fail(r.error());
      break;
    case agent::v1::Request::kSetGuestDateTime: {
      const auto& t = request.set_guest_date_time();
      WallClock before = wallClock();
      if (auto r = setWallClock(t.sec(), t.usec()); !r.ok()) {
        fail(r.error());
        break;
      }
      WallClock after = wallClock();
      auto* result = response.mutable_set_guest_date_time();
      result->mutable_before()->set_sec(before.sec);
      result->mutable_before()->set_usec(before.usec);
      result->mutable_after()->set_sec(after.sec);
      result->mutable_after()->set_usec(after.usec);
      break;
    }
    case agent::v1::Request::kGetGuestDateTime: {
      WallClock now = wallClock();
      response.mutable_guest_date_time()->set_sec(now.sec);
      response.mutable_guest_date_time()->set_usec(now.usec);
      break;
    }
    case agent::v1::Request::kReseedRandomDev:
      if (auto r = addEntropy(request.reseed_random_dev().data()); !r.ok()) fail(r.error());
      break;
    case agent::v1::Request::kCopyFile:
      // Files may come before the workload starts (its config, secrets).
      if (auto r = root_.mount(); !r.ok()) fail(r.error());
      else if (auto c = copyTaskFile(kRootDir, request.copy_file()); !c.ok()) fail(c.error());
      break;
    case agent::v1::Request::kRemovePath:
      if (auto r = root_.mount(); !r.ok()) fail(r.error());
      else if (auto c = removeTaskPath(kRootDir, request.remove_path().path()); !c.ok()) fail(c.error());
      break;
    default:
      response.set_error("unknown request (a newer host?)");
      break;
  }
  return response;
}

void AgentService::startWorkload(const agent::v1::StartWorkload& spec, agent::v1::Response& response) {
  if (workload_.state() != WorkloadState::kNotStarted) {
    response.set_error("workload already started");
    return;
  }
  auto fail = [&](const Error& e) {
    response.set_error(e.describe());
    logLine("start workload failed: " + e.describe());
  };
  if (auto r = root_.mount(); !r.ok()) return fail(r.error());
  if (auto r = root_.writeIdentity(spec); !r.ok()) return fail(r.error());
  if (auto r = root_.mountVolumes(spec); !r.ok()) return fail(r.error());
  if (spec.readonly_root()) {
    if (auto r = root_.makeRootReadOnly(); !r.ok()) return fail(r.error());
  }
  auto plan = makeLaunchPlan(kRootDir, spec);
  if (!plan.ok()) return fail(plan.error());
  auto pid = workload_.start(kRootDir, *plan);
  if (!pid.ok()) return fail(pid.error());
  workloadSpec_ = spec;
  response.mutable_start_workload()->set_pid(*pid);
  logLine("workload started: pid " + std::to_string(*pid) + " " + plan->executable);
}

void AgentService::execProcess(const agent::v1::ExecProcess& request, agent::v1::Response& response) {
  if (workload_.state() != WorkloadState::kRunning) {
    response.set_error(workload_.state() == WorkloadState::kExited ? "the workload has exited"
                                                                   : "the workload has not started");
    return;
  }
  agent::v1::StartWorkload spec = workloadSpec_;
  spec.clear_argv();
  for (const auto& a : request.argv()) spec.add_argv(a);
  auto plan = makeLaunchPlan(kRootDir, spec);
  if (!plan.ok()) {
    response.set_error(plan.error().describe());
    return;
  }
  auto pid = execs_.start(kRootDir, *plan, request);
  if (!pid.ok()) {
    response.set_error(pid.error().describe());
    return;
  }
  response.mutable_exec_process()->set_pid(*pid);
}

void AgentService::sendEvent(agent::v1::Event event) {
  Frame frame;
  *frame.mutable_event() = std::move(event);
  sendSequenced(std::move(frame));
}

void AgentService::onWorkloadExited(const ExitStatus& status) {
  Frame frame;
  auto* exited = frame.mutable_event()->mutable_workload_exited();
  exited->set_exit_code(status.exitCode);
  exited->set_signal(status.signal);
  exited->set_oom_killed(status.oomKilled);
  logLine("workload exited: code " + std::to_string(status.exitCode) + " signal " + std::to_string(status.signal) +
          (status.oomKilled ? " (OOM killed)" : ""));
  sendSequenced(std::move(frame));
  exitEventSent_ = true;
}

}  // namespace s2z::guest
