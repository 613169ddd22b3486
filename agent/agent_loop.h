// The agent's one background thread: epoll over every instance's VMM exit fd,
// the kernel's wake-event fd and a kick eventfd, plus the idle monitor every
// idlePollInterval. It decides; each instance's sleep and wake run on that
// instance's worker (VmInstance::checkIdle, handleWakeEvent), so one slow
// snapshot delays no other instance. Calls that find an instance busy are
// retried after its operation ends and kicks the loop.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "agent/vm_instance.h"
#include "bpf/scale_to_zero_kernel.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace s2z::agent {

class AgentLoop {
 public:
  using InstanceList = std::function<std::vector<std::shared_ptr<VmInstance>>()>;

  // kernel may be null (no wake events, no idle monitor). `instances` returns
  // the agent's current instances; it is called on the loop thread. Starts the
  // thread. Fails with kSystem if the epoll or eventfd cannot be made.
  static Result<std::unique_ptr<AgentLoop>> start(bpf::ScaleToZeroKernel* kernel,
                                                  std::chrono::milliseconds idlePollInterval,
                                                  InstanceList instances);
  // Stops and joins the thread. Instances keep running (VMs outlive the plugin).
  ~AgentLoop();
  AgentLoop(const AgentLoop&) = delete;
  AgentLoop& operator=(const AgentLoop&) = delete;

  // Makes the loop re-read watch fds and retry pending work soon. Any thread.
  void kick();

 private:
  AgentLoop(bpf::ScaleToZeroKernel* kernel, std::chrono::milliseconds interval,
            InstanceList instances, UniqueFd epollFd, UniqueFd kickFd);
  void run();
  void syncWatches(const std::vector<std::shared_ptr<VmInstance>>& instances);
  void handleExit(const std::vector<std::shared_ptr<VmInstance>>& instances, uint64_t key);
  void drainWakeEvents();
  void dispatchWakes(const std::vector<std::shared_ptr<VmInstance>>& instances);

  struct Watch {
    std::shared_ptr<VmInstance> instance;  // held so its address is not reused meanwhile
    UniqueFd fd;                           // our duplicate of its VMM's exit fd
    uint64_t generation = 0;
  };
  void unwatch(Watch& w);

  bpf::ScaleToZeroKernel* kernel_;
  std::chrono::milliseconds interval_;
  InstanceList instances_;
  UniqueFd epollFd_;
  UniqueFd kickFd_;
  std::atomic<bool> stop_{false};
  // Loop-thread only: registered exit fds by instance (keyed by pointer
  // value, the epoll data; an entry goes when the instance leaves the list), and wake events
  // not yet delivered (by ifindex, earliest timestamp kept).
  std::map<const VmInstance*, Watch> watches_;
  std::map<uint32_t, bpf::WakeEvent> pendingWakes_;
  std::thread thread_;
};

}  // namespace s2z::agent
