#include "tests/cni/cni_plugin_runner.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "common/unique_fd.h"

extern char** environ;

namespace s2z::cni_test {
namespace {

// posix_spawn from the calling thread: the child starts in that thread's
// network namespace, like the tests' stand-in host.
Result<std::string> spawnWithInput(const std::vector<std::string>& argv,
                                   const std::vector<std::string>& env, const std::string& input) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return systemError("pipe");
  UniqueFd inRead(in[0]), inWrite(in[1]), outRead(out[0]), outWrite(out[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, inRead.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, outWrite.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, outWrite.get(), 2);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return systemError("spawn " + argv[0], rc);
  inRead.reset();
  outWrite.reset();
  // The writer thread keeps a large config from dead-locking against output.
  std::thread writer([fd = std::move(inWrite), &input]() mutable {
    size_t done = 0;
    while (done < input.size()) {
      ssize_t n = ::write(fd.get(), input.data() + done, input.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  });
  std::string output;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(outRead.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  writer.join();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return makeError(ErrorCode::kInternal, argv[0] + " failed (status " + std::to_string(status) +
                                               "): " + output);
  }
  return output;
}

std::vector<std::string> baseEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    if (kv.rfind("CNI_", 0) != 0) env.push_back(kv);
  }
  return env;
}

}  // namespace

Result<std::string> runCniPlugin(const std::string& type, const CniInvocation& call,
                                 const std::string& config) {
  auto env = baseEnvironment();
  env.push_back("CNI_COMMAND=" + call.command);
  env.push_back("CNI_CONTAINERID=" + call.containerId);
  env.push_back("CNI_NETNS=" + call.netns);
  env.push_back("CNI_IFNAME=" + call.ifname);
  env.push_back("CNI_ARGS=" + call.args);
  env.push_back(std::string("CNI_PATH=") + kCniPath);
  auto out = spawnWithInput({std::string(kCniPath) + "/" + type}, env, config);
  if (!out.ok()) return out.error().wrap("CNI " + call.command + " " + type);
  return out;
}

Result<std::string> runTool(const std::vector<std::string>& argv) {
  std::vector<std::string> resolved = argv;
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    if (!resolved[0].empty() && resolved[0][0] != '/' && ::access((dir + argv[0]).c_str(), X_OK) == 0) {
      resolved[0] = dir + argv[0];
    }
  }
  return spawnWithInput(resolved, baseEnvironment(), "");
}

}  // namespace s2z::cni_test
