// StartWorkload checked and resolved against the task's root filesystem before
// anything is forked, so a bad command, user or directory fails StartTask with
// a message that names it instead of an exit code 127 later.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "guest/agent/user_lookup.h"
#include "s2z/agent/v1/agent.pb.h"

namespace s2z::guest {

inline constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct LaunchPlan {
  std::string executable;  // path inside the root, for execve after chroot
  std::vector<std::string> argv;
  std::vector<std::string> env;  // StartWorkload.env + PATH, HOME, USER if absent
  std::string workingDir;        // inside the root
  Credentials credentials;
};

// Resolves argv[0] (with '/': that path, relative ones from working_dir;
// else searched in PATH of env, default kDefaultPath) to an executable regular
// file, the user (user_lookup.h) and working_dir (empty: "/"; must be a
// directory). Paths are resolved as if rootDir were "/" (symlinks included).
Result<LaunchPlan> makeLaunchPlan(const std::string& rootDir, const agent::v1::StartWorkload& spec);

}  // namespace s2z::guest
