// A network namespace held open by an fd (an alloc's netns that Nomad
// bind-mounted at /var/run/netns/<alloc id>), and a way to run code inside
// it without moving the calling thread: run() enters it on a short-lived
// thread of its own (setns is per thread for network namespaces), so the
// plugin's threads and everything they start stay in the host's netns.
#pragma once

#include <filesystem>
#include <optional>
#include <thread>
#include <utility>

#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::agent {

class NetnsHandle {
 public:
  // Opens `path` and checks that it is a network namespace. Fails:
  // kNotFound if missing, kInvalidArgument if it is something else.
  static Result<NetnsHandle> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  int fd() const { return fd_.get(); }

  // Runs fn() (returning a Result<T>) on a new thread that entered the
  // namespace first, and returns its result; kSystem if setns fails. Blocks
  // until fn returns. fn must not keep references beyond the call.
  template <typename F>
  auto run(F&& fn) const -> decltype(fn()) {
    using R = decltype(fn());
    std::optional<R> out;
    std::thread worker([&] {
      auto entered = enter();
      if (!entered.ok()) {
        out.emplace(entered.error());
        return;
      }
      out.emplace(fn());
    });
    worker.join();
    return std::move(*out);
  }

 private:
  NetnsHandle(UniqueFd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  // setns(CLONE_NEWNET) of the calling thread.
  Result<void> enter() const;

  UniqueFd fd_;
  std::filesystem::path path_;
};

}  // namespace s2z::agent
