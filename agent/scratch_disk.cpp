#include "agent/scratch_disk.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/unique_fd.h"

extern char** environ;

namespace s2z::agent {
namespace {

// Runs argv (PATH search), returning its stderr when it fails.
Result<void> run(const std::vector<std::string>& argv) {
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) return systemError("pipe");
  UniqueFd readEnd(pipeFds[0]), writeEnd(pipeFds[1]);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, writeEnd.get(), 2);
  ::posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  writeEnd.reset();
  if (rc != 0) return Error{ErrorCode::kFailedPrecondition, rc, "run " + argv[0]};
  std::string err;
  char buf[512];
  for (ssize_t n; (n = ::read(readEnd.get(), buf, sizeof buf)) > 0;) err.append(buf, n);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return okResult();
  while (!err.empty() && err.back() == '\n') err.pop_back();
  return makeError(ErrorCode::kSystem, argv[0] + " failed: " + err);
}

}  // namespace

Result<void> createScratchDisk(const std::filesystem::path& path, uint64_t mib) {
  {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) return systemError("create " + path.string());
    if (::ftruncate(fd.get(), static_cast<off_t>(mib) << 20) != 0) {
      auto e = systemError("size " + path.string());
      ::unlink(path.c_str());
      return e;
    }
  }
  // Lazy init: the guest's kernel zeroes inode tables in the background
  // instead of mke2fs writing them all now.
  auto formatted = run({"mke2fs", "-q", "-t", "ext4", "-F", "-E",
                        "lazy_itable_init=1,lazy_journal_init=1", "-L", "s2z-scratch",
                        path.string()});
  if (!formatted.ok()) {
    ::unlink(path.c_str());
    return formatted.error().wrap("format " + path.string());
  }
  return okResult();
}

}  // namespace s2z::agent
