// TaskOutput against the client's real reader: the stand-in's LogCollector
// reads the FIFOs exactly as Nomad's logmon does (one blocking open, copy to
// EOF, never reopened), and the holder is the built plugin binary.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/log_holder_image.h"
#include "agent/log_holder_install.h"
#include "agent/task_cgroup.h"
#include "agent/task_output.h"
#include "standin/log_collector.h"
#include "tests/err_text.h"
#include "tests/scratch_dir.h"

namespace s2z::agent {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Fifos {
  std::filesystem::path dir;
  OutputPaths paths;
  Fifos() {
    char tmpl[] = "/tmp/s2zt-output-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    paths = {dir / ".web.stdout.fifo", dir / ".web.stderr.fifo"};
    REQUIRE(::mkfifo(paths.stdoutPath.c_str(), 0600) == 0);
    REQUIRE(::mkfifo(paths.stderrPath.c_str(), 0600) == 0);
  }
  ~Fifos() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::unique_ptr<standin::LogCollector> collect() const {
    auto c = standin::LogCollector::start(paths.stdoutPath, paths.stderrPath, dir, "web");
    REQUIRE(c.ok());
    return std::move(*c);
  }
};

// The embedded holder, installed as makeAgent does, into a scratch state dir
// that goes when the test program ends.
OutputHolderCommand holderCommand() {
  static const s2z::tests::ScratchDir stateDir("s2zt-holder");
  static const std::filesystem::path installed = [] {
    REQUIRE_FALSE(stateDir.path.empty());
    auto path = installLogHolder(stateDir.path, logHolderImage());
    REQUIRE_MESSAGE(path.ok(), s2z::tests::errText(path));
    return *path;
  }();
  return {{installed.string(), "web"}, {}};
}

template <typename Pred>
bool waitFor(Pred pred, std::chrono::milliseconds timeout = 3s) {
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

void say(int fd, const std::string& text) {
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

// Running, not a zombie (a holder we spawned stays one until reaped).
bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (pid <= 0 || !std::getline(in, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

std::string fdTarget(pid_t pid, int fd) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd), ec)
      .string();
}

std::string comm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

TEST_CASE("the reader sees EOF only at release: not when the plugin's copies go, not after a recovery") {
  Fifos f;
  auto reader = f.collect();
  auto out = TaskOutput::open(f.paths, holderCommand(), 2s);
  REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
  vmm::ProcessIdentity holder = (*out)->holder();
  REQUIRE(alive(holder.pid));
  CHECK(waitFor([&] { return comm(holder.pid) == "s2z-log-holder"; }));
  CHECK(fdTarget(holder.pid, kHolderStdoutFd) == f.paths.stdoutPath.string());
  CHECK(fdTarget(holder.pid, kHolderStderrFd) == f.paths.stderrPath.string());
  CHECK(::getsid(holder.pid) == holder.pid);  // its own session: outlives the plugin

  say((*out)->stdoutFd(), "before the plugin died\n");
  say((*out)->stderrFd(), "an error line\n");
  // The plugin dies: its copies close, the holder's stay.
  out->reset();
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(reader->stdoutState().eof);
  CHECK_FALSE(reader->stderrState().eof);

  auto again = TaskOutput::recover(f.paths, holder, holderCommand());
  REQUIRE_MESSAGE(again.ok(), s2z::tests::errText(again));
  CHECK((*again)->lost().empty());
  CHECK((*again)->holder().pid == holder.pid);  // the same holder, adopted
  say((*again)->stdoutFd(), "after the recovery\n");
  CHECK(waitFor([&] {
    return reader->stdoutText() == "before the plugin died\nafter the recovery\n";
  }));
  CHECK(reader->stderrText() == "an error line\n");

  (*again)->release();
  CHECK(waitFor([&] { return reader->stdoutState().eof && reader->stderrState().eof; }));
  CHECK(waitFor([&] { return !alive(holder.pid); }));
  (*again)->release();  // idempotent
}

TEST_CASE("no reader yet: the open is retried without blocking; never a reader: a clear error in time") {
  Fifos f;
  std::unique_ptr<standin::LogCollector> reader;
  std::thread late([&] {
    std::this_thread::sleep_for(300ms);
    reader = f.collect();
  });
  auto t0 = Clock::now();
  auto out = TaskOutput::open(f.paths, holderCommand(), 5s);
  late.join();
  REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
  CHECK(Clock::now() - t0 >= 250ms);
  say((*out)->stdoutFd(), "late but not lost\n");
  CHECK(waitFor([&] { return reader->stdoutText() == "late but not lost\n"; }));
  (*out)->release();

  Fifos lonely;
  t0 = Clock::now();
  auto none = TaskOutput::open(lonely.paths, holderCommand(), 200ms);
  auto waited = Clock::now() - t0;
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::kUnavailable);
  CHECK(none.error().message.find(lonely.paths.stdoutPath.string()) != std::string::npos);
  CHECK(none.error().message.find("no reader") != std::string::npos);
  CHECK(waited >= 200ms);
  CHECK(waited < 1s);
}

TEST_CASE("a killed holder is replaced from the VMM's reader; once the reader is gone the loss is reported") {
  Fifos f;
  auto reader = f.collect();
  auto out = TaskOutput::open(f.paths, holderCommand(), 2s);
  REQUIRE(out.ok());
  vmm::ProcessIdentity first = (*out)->holder();

  // While the plugin runs, a dead holder is replaced from our own copies.
  REQUIRE(::kill(first.pid, SIGKILL) == 0);
  REQUIRE(waitFor([&] { return !alive(first.pid); }));
  REQUIRE((*out)->ensureHolder().ok());
  vmm::ProcessIdentity second = (*out)->holder();
  CHECK(second.pid != first.pid);
  CHECK(alive(second.pid));

  // The plugin dies and the holder with it, but a VMM still writes to
  // stdout: that reader is there, so a recovery reopens stdout and starts a
  // holder. stderr had no other writer: its reader saw EOF, and that is said.
  UniqueFd vmmCopy(::fcntl((*out)->stdoutFd(), F_DUPFD_CLOEXEC, 0));
  out->reset();
  REQUIRE(::kill(second.pid, SIGKILL) == 0);
  std::this_thread::sleep_for(100ms);
  auto recovered = TaskOutput::recover(f.paths, second, holderCommand());
  REQUIRE_MESSAGE(recovered.ok(), s2z::tests::errText(recovered));
  CHECK((*recovered)->lost() == f.paths.stderrPath.string() + " has no reader any more");
  CHECK(reader->stderrState().eof);
  CHECK(alive((*recovered)->holder().pid));
  vmmCopy.reset();
  say((*recovered)->stdoutFd(), "still reaching the reader\n");
  CHECK(waitFor([&] { return reader->stdoutText() == "still reaching the reader\n"; }));

  // Nothing held the FIFOs at all: the reader saw EOF and is gone for good.
  vmm::ProcessIdentity third = (*recovered)->holder();
  recovered->reset();
  REQUIRE(::kill(third.pid, SIGKILL) == 0);
  CHECK(waitFor([&] { return reader->stdoutState().eof; }));
  auto lost = TaskOutput::recover(f.paths, third, holderCommand());
  REQUIRE(lost.ok());
  CHECK((*lost)->lost().find("no reader") != std::string::npos);
  CHECK((*lost)->stdoutFd() < 0);
  (*lost)->release();
}

TEST_CASE("the holder runs in the task's cgroup, a replacement too, and leaves it empty at release") {
  // A cgroup of its own for this test, in the memory hierarchy (v1) or v2's.
  std::filesystem::path root;
  for (const auto& m : readCgroupMounts()) {
    bool memory = std::find(m.controllers.begin(), m.controllers.end(), "memory") != m.controllers.end();
    if (memory || (m.v2 && root.empty())) root = m.dir;
    if (memory) break;
  }
  REQUIRE_FALSE(root.empty());
  const auto cgroup = root / ("s2zt-holder-" + std::to_string(::getpid()));
  REQUIRE(::mkdir(cgroup.c_str(), 0755) == 0);
  struct Removed {
    std::filesystem::path dir;
    ~Removed() { ::rmdir(dir.c_str()); }
  } removed{cgroup};
  auto members = [&] {
    std::ifstream in(cgroup / "cgroup.procs");
    std::vector<pid_t> pids;
    for (pid_t pid = 0; in >> pid;) pids.push_back(pid);
    return pids;
  };

  Fifos f;
  auto reader = f.collect();
  auto command = holderCommand();
  command.cgroups = {cgroup};
  auto out = TaskOutput::open(f.paths, command, 2s);
  REQUIRE_MESSAGE(out.ok(), s2z::tests::errText(out));
  pid_t first = (*out)->holder().pid;
  CHECK(members() == std::vector<pid_t>{first});

  REQUIRE(::kill(first, SIGKILL) == 0);
  REQUIRE(waitFor([&] { return !alive(first); }));
  REQUIRE((*out)->ensureHolder().ok());
  CHECK(members() == std::vector<pid_t>{(*out)->holder().pid});

  (*out)->release();
  CHECK(members().empty());
  CHECK(::rmdir(cgroup.c_str()) == 0);  // what the task's destroy does next
}

}  // namespace
}  // namespace s2z::agent

namespace s2z::agent {
namespace {

TEST_CASE("the embedded holder is installed once under state_dir/bin, owner-only, and reused") {
  char tmpl[] = "/tmp/s2zt-install-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  std::filesystem::path stateDir = tmpl;
  auto first = installLogHolder(stateDir, logHolderImage());
  REQUIRE_MESSAGE(first.ok(), s2z::tests::errText(first));
  CHECK(first->parent_path() == stateDir / "bin");
  CHECK(std::filesystem::file_size(*first) == logHolderImage().size());
  struct stat st {};
  REQUIRE(::stat(first->c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  REQUIRE(::stat((stateDir / "bin").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  auto mtime = std::filesystem::last_write_time(*first);
  auto second = installLogHolder(stateDir, logHolderImage());
  REQUIRE(second.ok());
  CHECK(*second == *first);
  CHECK(std::filesystem::last_write_time(*second) == mtime);
  // Another version of the program gets a name of its own beside it.
  auto other = installLogHolder(stateDir, "#!/bin/sh\nexit 0\n");
  REQUIRE(other.ok());
  CHECK(*other != *first);
  CHECK(std::distance(std::filesystem::directory_iterator(stateDir / "bin"),
                      std::filesystem::directory_iterator()) == 2);
  std::filesystem::remove_all(stateDir);
}

}  // namespace
}  // namespace s2z::agent
