#include "guest/agent/launch_plan.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/unique_fd.h"
#include "guest/agent/path_in_root.h"

namespace s2z::guest {

namespace {

bool isExecutableFile(int rootFd, const std::string& path) {
  UniqueFd fd = openInRoot(rootFd, path, 0);
  struct stat st{};
  if (!fd || ::fstat(fd.get(), &st) != 0) return false;
  return S_ISREG(st.st_mode) && (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0;
}

const std::string* findEnv(const std::vector<std::string>& env, const std::string& key) {
  for (const auto& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') return &e;
  }
  return nullptr;
}

std::string joinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir == "/") return "/" + name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

Result<std::string> resolveCommand(int rootFd, const std::string& command, const std::string& searchPath,
                                   const std::string& workingDir) {
  if (command.find('/') != std::string::npos) {
    std::string path = command[0] == '/' ? command : joinPath(workingDir, command);
    if (isExecutableFile(rootFd, path)) return path;
  } else {
    size_t start = 0;
    for (;;) {
      size_t colon = searchPath.find(':', start);
      std::string dir = searchPath.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (dir.empty()) dir = workingDir;  // an empty PATH entry means the current directory
      std::string path = joinPath(dir, command);
      if (isExecutableFile(rootFd, path)) return path;
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  return makeError(ErrorCode::kNotFound, "command \"" + command +
                                             "\" not found in the task's root filesystem (PATH=" + searchPath + ")");
}

}  // namespace

Result<LaunchPlan> makeLaunchPlan(const std::string& rootDir, const agent::v1::StartWorkload& spec) {
  if (spec.argv_size() == 0 || spec.argv(0).empty()) {
    return makeError(ErrorCode::kInvalidArgument, "start workload: empty command (argv)");
  }
  UniqueFd rootFd(::open(rootDir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootFd) return systemError("start workload: open root " + rootDir);

  LaunchPlan plan;
  plan.argv.assign(spec.argv().begin(), spec.argv().end());
  plan.env.assign(spec.env().begin(), spec.env().end());

  auto credentials = lookupUser(rootDir, spec.user());
  if (!credentials.ok()) return credentials.error();
  plan.credentials = *credentials;

  plan.workingDir = spec.working_dir().empty() ? "/" : spec.working_dir();
  if (plan.workingDir[0] != '/') plan.workingDir = "/" + plan.workingDir;
  if (!openInRoot(rootFd.get(), plan.workingDir, O_DIRECTORY)) {
    return systemError("working directory \"" + plan.workingDir + "\" not usable in the task's root filesystem");
  }

  const std::string* path = findEnv(plan.env, "PATH");
  std::string searchPath = path ? path->substr(5) : kDefaultPath;
  auto executable = resolveCommand(rootFd.get(), plan.argv[0], searchPath, plan.workingDir);
  if (!executable.ok()) return executable.error();
  plan.executable = *executable;

  // Like docker: a PATH, HOME and USER the image's programs can rely on.
  if (!path) plan.env.push_back(std::string("PATH=") + kDefaultPath);
  if (!findEnv(plan.env, "HOME")) plan.env.push_back("HOME=" + plan.credentials.home);
  if (!findEnv(plan.env, "USER") && !plan.credentials.name.empty()) {
    plan.env.push_back("USER=" + plan.credentials.name);
  }
  return plan;
}

}  // namespace s2z::guest
