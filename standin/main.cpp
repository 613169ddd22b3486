// s2z-nomad-standin: drives a task-driver plugin binary the way a Nomad client
// does and prints what happens (handshake, fingerprints, events, stats, exit).
//
//   s2z-nomad-standin --plugin BIN --task task.yaml [--plugin-config plugin.yaml]
//                     [--run-for 30s] [--state-file F] [--keep] [--netns PATH]
//                     [--data-dir DIR] [--exec-fifo PATH]
//
// --exec-fifo makes a FIFO at PATH; each line written to it runs, like
// `nomad alloc exec -i=false <task> /bin/sh -c "<line>"`, through
// ExecTaskStreaming, and its output and exit code are printed ("exec: ...").
// With --state-file, an existing file is recovered (RecoverTask) instead of a
// new StartTask, and the task is written there after starting; --keep leaves
// the task running at the end (plugin shut down, like an agent restart).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "common/unique_fd.h"
#include "standin/nomad_client.h"
#include "standin/plugin_process.h"

namespace {

using namespace s2z::standin;

std::atomic<bool> gInterrupted{false};

struct Args {
  std::string plugin, pluginConfig, task, stateFile, netns, dataDir, execFifo;
  std::chrono::milliseconds runFor{30000};
  bool keep = false;
};

std::chrono::milliseconds parseDuration(const std::string& s) {
  double v = std::atof(s.c_str());
  if (s.ends_with("ms")) return std::chrono::milliseconds(static_cast<long>(v));
  if (s.ends_with("m")) return std::chrono::milliseconds(static_cast<long>(v * 60000));
  return std::chrono::milliseconds(static_cast<long>(v * 1000));
}

bool parseArgs(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (k == "--plugin") a.plugin = next();
    else if (k == "--plugin-config") a.pluginConfig = next();
    else if (k == "--task") a.task = next();
    else if (k == "--run-for") a.runFor = parseDuration(next());
    else if (k == "--state-file") a.stateFile = next();
    else if (k == "--netns") a.netns = next();
    else if (k == "--data-dir") a.dataDir = next();
    else if (k == "--keep") a.keep = true;
    else if (k == "--exec-fifo") a.execFifo = next();
    else return false;
  }
  return !a.plugin.empty() && !a.task.empty();
}

void saveTask(const std::string& path, const StartedTask& t) {
  YAML::Node n;
  n["id"] = t.id;
  n["alloc_id"] = t.allocId;
  n["name"] = t.name;
  n["handle"] = YAML::Binary(reinterpret_cast<const unsigned char*>(t.handle.data()), t.handle.size());
  n["alloc_dir"] = t.allocDir;
  n["stdout_path"] = t.stdoutPath;
  n["stderr_path"] = t.stderrPath;
  std::ofstream(path) << n << "\n";
}

bool loadTask(const std::string& path, StartedTask& t) {
  std::ifstream in(path);
  if (!in) return false;
  YAML::Node n = YAML::Load(in);
  if (!n["handle"]) return false;
  t.id = n["id"].as<std::string>();
  t.allocId = n["alloc_id"].as<std::string>();
  t.name = n["name"].as<std::string>();
  auto bin = n["handle"].as<YAML::Binary>();
  t.handle.assign(reinterpret_cast<const char*>(bin.data()), bin.size());
  t.allocDir = n["alloc_dir"].as<std::string>();
  t.stdoutPath = n["stdout_path"].as<std::string>();
  t.stderrPath = n["stderr_path"].as<std::string>();
  return true;
}

void printNew(NomadClient& client, const std::string& taskId, size_t& events, size_t& fps,
              size_t& stats) {
  auto fpList = client.fingerprints();
  for (; fps < fpList.size(); ++fps) {
    const auto& f = fpList[fps];
    std::printf("fingerprint: health=%s \"%s\"\n",
                f.healthy() ? "healthy" : f.detected() ? "unhealthy" : "undetected",
                f.description.c_str());
    for (const auto& [k, v] : f.attributes) std::printf("  %s = %s\n", k.c_str(), v.c_str());
  }
  auto evList = client.events();
  for (; events < evList.size(); ++events) {
    const auto& e = evList[events];
    std::printf("event: [%s] %s", e.taskName.c_str(), e.message.c_str());
    for (const auto& [k, v] : e.annotations) std::printf(" %s=%s", k.c_str(), v.c_str());
    std::printf("\n");
  }
  auto stList = client.statsSamples(taskId);
  for (; stats < stList.size(); ++stats) {
    const auto& s = stList[stats];
    std::printf("stats: cpu=%.1f%% ticks=%.0fMHz rss=%llu KiB%s\n", s.cpuPercent, s.cpuTotalTicks,
                static_cast<unsigned long long>(s.memoryRss / 1024),
                s.hasTimestamp ? "" : " (NO TIMESTAMP: dropped by Nomad)");
  }
  std::fflush(stdout);
}

// Lines written to the --exec-fifo, read without blocking the main loop. The
// FIFO is also held open for writing, so a writer closing it is no EOF.
class ExecFifo {
 public:
  static std::unique_ptr<ExecFifo> open(const std::string& path) {
    ::unlink(path.c_str());
    if (::mkfifo(path.c_str(), 0600) != 0) return nullptr;
    auto f = std::unique_ptr<ExecFifo>(new ExecFifo);
    f->path_ = path;
    f->read_.reset(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    f->keepOpen_.reset(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    return f->read_ && f->keepOpen_ ? std::move(f) : nullptr;
  }
  ~ExecFifo() { ::unlink(path_.c_str()); }
  std::vector<std::string> lines() {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(read_.get(), buf, sizeof buf)) > 0) pending_.append(buf, static_cast<size_t>(n));
    std::vector<std::string> out;
    for (size_t nl; (nl = pending_.find('\n')) != std::string::npos;) {
      out.push_back(pending_.substr(0, nl));
      pending_.erase(0, nl + 1);
    }
    return out;
  }

 private:
  ExecFifo() = default;
  std::string path_, pending_;
  s2z::UniqueFd read_, keepOpen_;
};

// `nomad alloc exec -i=false`: no terminal, stdin closed at once.
void execLine(NomadClient& c, const std::string& taskId, const std::string& line) {
  std::printf("exec: $ %s\n", line.c_str());
  auto call = c.execStreaming(taskId, {"/bin/sh", "-c", line}, false);
  if (!call.ok()) {
    std::printf("exec: failed: %s\n", call.error().describe().c_str());
    return;
  }
  (void)(*call)->closeStdin();
  auto outcome = (*call)->waitEnd(std::chrono::seconds(60));
  for (const std::string* text : {&outcome.stdoutText, &outcome.stderrText}) {
    size_t at = 0;
    while (at < text->size()) {
      size_t nl = text->find('\n', at);
      if (nl == std::string::npos) nl = text->size();
      std::printf("exec | %s\n", text->substr(at, nl - at).c_str());
      at = nl + 1;
    }
  }
  if (outcome.hasResult) std::printf("exec: exit code %d\n", outcome.exitCode);
  else std::printf("exec: ended without a result (%s)\n", outcome.statusMessage.c_str());
  std::fflush(stdout);
}

int run(const Args& a) {
  ClientOptions opts;
  opts.launch.path = a.plugin;
  opts.launch.netnsPath = a.netns;
  opts.dataDir = a.dataDir;
  if (!a.pluginConfig.empty()) {
    auto cfg = loadYamlFile(a.pluginConfig);
    if (!cfg.ok()) {
      std::fprintf(stderr, "plugin config: %s\n", cfg.error().describe().c_str());
      return 2;
    }
    opts.pluginConfig = *cfg;
  }
  auto task = TaskFile::load(a.task);
  if (!task.ok()) {
    std::fprintf(stderr, "%s\n", task.error().describe().c_str());
    return 2;
  }
  auto client = NomadClient::loadPlugin(opts);
  if (!client.ok()) {
    std::printf("loader failed: %s\n", client.error().describe().c_str());
    return 1;
  }
  NomadClient& c = **client;
  const auto& info = c.pluginInfo();
  std::printf("handshake: %s|%s (pid %d)\n", c.process().handshake().network.c_str(),
              c.process().handshake().address.c_str(), c.process().pid());
  std::printf("plugin: name=%s version=%s api=%s\n", info.name.c_str(), info.version.c_str(),
              info.chosenApiVersion.c_str());
  std::printf("probe plugin exited %lld ms after Shutdown%s\n",
              static_cast<long long>(c.loaderReport().probeKill.timeToExit.count()),
              c.loaderReport().probeKill.sigkilled ? " (SIGKILL needed)" : "");

  StartedTask started;
  if (!a.stateFile.empty() && loadTask(a.stateFile, started)) {
    auto rec = c.recoverTask(started);
    if (!rec.ok()) {
      std::printf("recover failed: %s\n", rec.error().describe().c_str());
      return 1;
    }
    std::printf("recovered task %s\n", started.id.c_str());
  } else {
    auto st = c.startTask(*task);
    if (!st.ok()) {
      std::printf("start failed: %s\n", st.error().describe().c_str());
      return 1;
    }
    started = *st;
    std::printf("started task %s addr=%s", started.id.c_str(), started.networkAddr.c_str());
    for (const auto& [k, v] : started.portMap) std::printf(" %s->%d", k.c_str(), v);
    std::printf("\n");
    if (!a.stateFile.empty()) saveTask(a.stateFile, started);
  }

  std::unique_ptr<ExecFifo> execFifo;
  if (!a.execFifo.empty()) {
    execFifo = ExecFifo::open(a.execFifo);
    if (!execFifo) std::printf("exec fifo %s: %s\n", a.execFifo.c_str(), std::strerror(errno));
  }
  size_t events = 0, fps = 0, stats = 0;
  auto deadline = std::chrono::steady_clock::now() + a.runFor;
  while (std::chrono::steady_clock::now() < deadline && !gInterrupted) {
    printNew(c, started.id, events, fps, stats);
    if (execFifo) {
      for (const auto& line : execFifo->lines()) {
        if (!line.empty()) execLine(c, started.id, line);
      }
    }
    if (auto exit = c.backgroundExit(started.id)) {
      std::printf("task exited: code=%d signal=%d err=\"%s\"\n", exit->exitCode, exit->signal,
                  exit->err.c_str());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (a.keep) {
    auto report = c.shutdownPlugin();
    std::printf("plugin shut down in %lld ms; task left running\n",
                static_cast<long long>(report.timeToExit.count()));
    return 0;
  }
  auto stop = c.stopTask(started.id, std::chrono::seconds(5));
  std::printf("stop: %s\n", stop.ok() ? "ok" : stop.error().describe().c_str());
  auto wait = c.waitTask(started.id, std::chrono::seconds(15));
  if (wait.ok()) std::printf("exit: code=%d signal=%d\n", wait->exitCode, wait->signal);
  auto destroy = c.destroyTask(started.id);
  std::printf("destroy: %s\n", destroy.ok() ? "ok" : destroy.error().describe().c_str());
  printNew(c, started.id, events, fps, stats);
  if (!a.stateFile.empty()) std::remove(a.stateFile.c_str());
  auto report = c.shutdownPlugin();
  std::printf("plugin exited %lld ms after Shutdown%s; log violations: %d\n",
              static_cast<long long>(report.timeToExit.count()),
              report.sigkilled ? " (SIGKILL needed)" : "", c.process().logViolationCount());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Lifecycle lines are read live by scripts and people (e.g. the demo tails
  // them from a file), so flush each one.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  Args a;
  if (!parseArgs(argc, argv, a)) {
    std::fprintf(stderr,
                 "usage: s2z-nomad-standin --plugin BIN --task task.yaml [--plugin-config "
                 "plugin.yaml] [--run-for 30s] [--state-file F] [--keep] [--netns PATH] "
                 "[--data-dir DIR]\n");
    return 2;
  }
  // Our own log goes to stderr; stdout carries the lifecycle lines.
  spdlog::set_default_logger(spdlog::stderr_color_mt("standin"));
  signal(SIGINT, [](int) { gInterrupted = true; });
  signal(SIGTERM, [](int) { gInterrupted = true; });
  return run(a);
}
