#include "bench/image_scenarios.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <thread>

#include "agent/agent.h"
#include "bench/agent_scenarios.h"
#include "bench/bench_guards.h"
#include "bench/event_log.h"
#include "bench/http_probe.h"
#include "bench/task_logs.h"
#include "bpf/kernel_scale_to_zero.h"
#include "image/image_store.h"
#include "tests/registry/test_registry.h"

namespace s2z::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double msSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// An image task as the driver would resolve it: the agent guest, the image's
// disk as the read-only root, the image's Entrypoint + Cmd, Env, WorkingDir
// and User (the test image's Cmd serves /srv with busybox httpd on 8080).
agent::InstanceSpec imageSpec(const BenchConfig& c, const std::string& taskId, bool scaleToZero,
                              const image::PreparedImage& img, const TaskLogs& logs) {
  agent::InstanceSpec s = agentGuestSpec(c, taskId, scaleToZero, logs);
  s.rootfs = img.disk;
  s.workload->argv = img.config.entrypoint;
  s.workload->argv.insert(s.workload->argv.end(), img.config.cmd.begin(), img.config.cmd.end());
  s.workload->env = img.config.env;
  s.workload->workingDir = img.config.workingDir;
  s.workload->user = img.config.user;
  return s;
}

// StartTask of one image task -> its first full HTTP response (connects
// refused while the server comes up are retried, as in the cold-boot rows).
// `prepare` false: the disk of `known` is used as a prebuilt root.
Result<ImageStartSample> startOnce(const BenchConfig& c, agent::Agent& agent, const std::string& taskId,
                                   const std::string& ref, const image::PullOptions& pull, bool prepare,
                                   const image::PreparedImage& known) {
  auto logs = openTaskLogs(c.workDir, taskId);
  if (!logs.ok()) return logs.error().wrap("task logs");
  EventLog log;
  ImageStartSample s;
  auto t0 = Clock::now();
  image::PreparedImage img = known;
  if (prepare) {
    auto prepared = agent.prepareImage(ref, pull, {});
    if (!prepared.ok()) return prepared.error().wrap("prepare " + ref);
    img = std::move(*prepared);
    s.prepareMs = msSince(t0);
  }
  auto started = agent.start(imageSpec(c, taskId, false, img, *logs), log.sink());
  if (!started.ok()) return started.error().wrap("start " + taskId);
  std::shared_ptr<agent::Instance> instance = *started;
  const std::string addr = instance->record().network.address;
  HttpTiming t;
  const auto deadline = t0 + 90s;
  while (Clock::now() < deadline) {
    t = timedGet(addr, c.guestPort, "/", std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    if (t.errnum != ECONNREFUSED) break;
    std::this_thread::sleep_for(20ms);
  }
  s.ms = msSince(t0);
  (void)instance->destroy();
  agent.forget(taskId);
  if (t.status != 200) return makeError(ErrorCode::kUnavailable, taskId + ": " + t.error + "; " + logs->reader->stderrText());
  return s;
}

}  // namespace

Result<ImageResults> runImageScenarios(const BenchConfig& c, const std::string& netns) {
  ImageResults out;
  const fs::path archive = c.rootfs.parent_path() / "debian-test.oci.tar";
  std::error_code ec;
  if (!fs::exists(archive) || !fs::exists(c.agentGuestDir / "initrd.img")) {
    out.problem = "no " + archive.string() + " or agent guest (scripts/build-rootfs.sh, build-agent-guest.sh)";
    return out;
  }
  out.archiveBytes = fs::file_size(archive, ec);

  // Conversion, three times into empty caches.
  for (int i = 0; i < 3; ++i) {
    const fs::path root = c.workDir / ("convert-" + std::to_string(i));
    image::ImageStore store(root);
    auto p = store.prepare("oci-archive:" + archive.string(), image::PullOptions{});
    if (!p.ok()) return p.error().wrap("convert");
    out.convertSeconds.push_back(p->seconds);
    out.unpackedBytes = p->unpackedBytes;
    out.diskBytes = p->diskBytes;
    spdlog::info("bench: image conversion {}/3: {:.2f} s", i + 1, p->seconds);
    p->lease.reset();
    fs::remove_all(root, ec);
  }

  testing::TestRegistry::Options regOptions;
  regOptions.clientNetns = netns;
  auto reg = testing::TestRegistry::start(regOptions);
  if (!reg.ok()) return reg.error().wrap("registry");
  auto pushed = (*reg)->push(archive, "s2z/debian-test:1");
  if (!pushed.ok()) return pushed.error().wrap("push");
  const std::string ref = (*reg)->host() + "/s2z/debian-test:1";
  image::PullOptions pull;
  pull.username = (*reg)->username();
  pull.password = (*reg)->password();
  pull.certDir = (*reg)->certsDir() / (*reg)->host();

  agent::AgentConfig config;
  config.stateDir = c.workDir / "image-agent";
  config.subnet = "10.89.0.0/24";
  config.bpfPinRoot = "/sys/fs/bpf/s2z-bench-img-" + std::to_string(::getpid());
  config.imageGc = false;
  config.standbyVmms = 1;  // the image wake row: a deep sleep with a standby, as the others
  PinsGuard pins{config.bpfPinRoot};
  auto made = agent::makeAgent(config);
  if (!made.ok()) return made.error().wrap("make agent");
  std::unique_ptr<agent::Agent> agent = std::move(*made);

  // Uncached: each run with the cache emptied (the registry stays warm).
  image::PreparedImage known;
  for (int i = 0; i < 2; ++i) {
    fs::remove_all(config.stateDir / "images", ec);
    auto s = startOnce(c, *agent, "img-uncached-" + std::to_string(i), ref, pull, true, known);
    if (!s.ok()) return s.error().wrap("uncached start");
    out.uncached.push_back(*s);
    spdlog::info("bench: uncached image start {}/2: {:.0f} ms (prepare {:.0f} ms)", i + 1, s->ms, s->prepareMs);
  }
  auto kept = agent->prepareImage(ref, pull, {});
  if (!kept.ok()) return kept.error().wrap("prepare");
  known = *kept;
  for (int i = 0; i < 20; ++i) {
    auto t0 = Clock::now();
    auto again = agent->prepareImage(ref, pull, {});
    if (!again.ok() || !again->cached) return makeError(ErrorCode::kInternal, "a cached prepare pulled");
    out.cachedPrepareMs.push_back(msSince(t0));
  }
  // Cached and prebuilt alternate, so drift hits both alike.
  for (int i = 0; i < 3; ++i) {
    auto cached = startOnce(c, *agent, "img-cached-" + std::to_string(i), ref, pull, true, known);
    if (!cached.ok()) return cached.error().wrap("cached start");
    out.cached.push_back(*cached);
    auto prebuilt = startOnce(c, *agent, "img-prebuilt-" + std::to_string(i), ref, pull, false, known);
    if (!prebuilt.ok()) return prebuilt.error().wrap("prebuilt start");
    out.prebuilt.push_back(*prebuilt);
    spdlog::info("bench: image start {}/3: cached {:.0f} ms, prebuilt disk {:.0f} ms", i + 1, cached->ms, prebuilt->ms);
  }
  // Wakes of the image task, as the guest-agent rows measure them: deep
  // (with a standby) and light, the tier a task sleeps in first by default.
  AgentResults scratch;
  SpecMaker deep = [&known](const BenchConfig& cfg, const std::string& id, bool stz, const TaskLogs& logs) {
    return imageSpec(cfg, id, stz, known, logs);
  };
  SpecMaker light = [&known](const BenchConfig& cfg, const std::string& id, bool stz, const TaskLogs& logs) {
    agent::InstanceSpec s = imageSpec(cfg, id, stz, known, logs);
    s.sleepTier = agent::SleepTier::kLight;
    return s;
  };
  S2Z_TRY(wakeCycles(c, *agent, deep, "img-wake", out.wakes, scratch), "image task wakes");
  S2Z_TRY(wakeCycles(c, *agent, light, "img-wake-light", out.lightWakes, scratch), "image task light wakes");
  out.failures = scratch.failures;
  return out;
}

}  // namespace s2z::bench
