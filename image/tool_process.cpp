#include "image/tool_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/unique_fd.h"

extern char** environ;

namespace s2z::image {
namespace {

using Clock = std::chrono::steady_clock;

// The last few lines: a tool's stderr may be long, its reason is at the end.
std::string tail(std::string text, size_t maxBytes = 600) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > maxBytes) text = "..." + text.substr(text.size() - maxBytes);
  return text;
}

}  // namespace

Result<ToolOutput> runTool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                           const ToolTicker* ticker) {
  int outPipe[2], errPipe[2];
  if (::pipe2(outPipe, O_CLOEXEC) != 0) return systemError("pipe");
  UniqueFd outRead(outPipe[0]), outWrite(outPipe[1]);
  if (::pipe2(errPipe, O_CLOEXEC) != 0) return systemError("pipe");
  UniqueFd errRead(errPipe[0]), errWrite(errPipe[1]);

  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, outWrite.get(), 1);
  ::posix_spawn_file_actions_adddup2(&actions, errWrite.get(), 2);
  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  // Its own process group: a timeout kills the tool and its helpers.
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  ::posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  outWrite.reset();
  errWrite.reset();
  if (rc != 0) return Error{ErrorCode::kFailedPrecondition, rc, "run " + argv[0]};

  ToolOutput result;
  std::string err;
  auto deadline = Clock::now() + timeout;
  auto nextTick = ticker ? Clock::now() + ticker->interval : Clock::time_point::max();
  bool timedOut = false;
  pollfd fds[2] = {{outRead.get(), POLLIN, 0}, {errRead.get(), POLLIN, 0}};
  int open = 2;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      timedOut = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    if (ticker && Clock::now() >= nextTick) {
      ticker->tick();
      nextTick = Clock::now() + ticker->interval;
    }
    if (ticker) {
      left = std::min<long long>(left, std::chrono::duration_cast<std::chrono::milliseconds>(nextTick - Clock::now()).count() + 1);
    }
    int n = ::poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        fds[i].fd = -1;
        --open;
        continue;
      }
      (i == 0 ? result.out : err).append(buf, static_cast<size_t>(got));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timedOut) {
    return makeError(ErrorCode::kTimeout, argv[0] + " did not finish within " + std::to_string(timeout.count() / 1000) +
                                               " s");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return result;
  return makeError(ErrorCode::kSystem, argv[0] + ": " + tail(err.empty() ? result.out : err));
}

}  // namespace s2z::image
