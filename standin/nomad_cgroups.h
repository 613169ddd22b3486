// What Nomad 1.7+'s client does with cgroups, whatever the driver
// (client/lib/cgroupslib, client/lib/proclib, the task runner's wrangler
// hook):
//
// | when | cgroup v2 (/sys/fs/cgroup is cgroup2) | cgroup v1 |
// |---|---|---|
// | client start (cgroupslib.Init) | nomad.slice/{share,reserve}.slice, cpu memory io pids (and cpuset) enabled down to them | <freezer\|memory\|cpu\|cpuset>/nomad; cpuset nomad/{share,reserve} with the usable cores and mems |
// | TaskConfig cpuset_cgroup | nomad.slice/share.slice/<alloc_id>.<task>.scope | cpuset/nomad/share (every task without reserved cores) |
// | task prestart (wrangler Initialize) | that scope made | <freezer\|cpu\|memory>/nomad/<alloc_id>.<task> made |
// | task stop hooks, after DestroyTask (wrangler Kill, Cleanup) | cgroup.kill, then the scope removed | freezer FROZEN, SIGKILL to its procs, THAWED; then the three removed |
//
// The stand-in has no reserved cores: every task gets the share partition.
#pragma once

#include <string>

namespace s2z::standin {

class NomadCgroups {
 public:
  enum class Mode { kOff, kV1, kV2 };

  // cgroupslib.Init on this host; kOff when neither tree can be made.
  static NomadCgroups init();
  // A tree that is not there (tests of the TaskConfig alone).
  static NomadCgroups v2At(std::string root) { return NomadCgroups(Mode::kV2, std::move(root)); }
  static NomadCgroups off() { return NomadCgroups(Mode::kOff, ""); }

  Mode mode() const { return mode_; }
  // TaskConfig resources.linux_resources.cpuset_cgroup; empty when off.
  std::string cpusetCgroup(const std::string& allocId, const std::string& task) const;
  // Where the task's memory is charged (v1: its memory cgroup, v2: its
  // scope) and the file that holds the charge; empty when off.
  std::string memoryCgroup(const std::string& allocId, const std::string& task) const;
  // The task's cgroup of one controller (v1: <controller>/nomad/<alloc_id>.<task>,
  // v2: its scope, whatever the controller); empty when off.
  std::string controllerCgroup(const std::string& controller, const std::string& allocId,
                               const std::string& task) const;
  std::string memoryChargeFile() const;
  // The wrangler hook's prestart (its errors are logged, as Nomad's are).
  void setUpTask(const std::string& allocId, const std::string& task) const;
  // The wrangler hook's stop: whatever is left in the task's cgroups is
  // killed, then they are removed.
  void tearDownTask(const std::string& allocId, const std::string& task) const;

 private:
  NomadCgroups(Mode mode, std::string root) : mode_(mode), root_(std::move(root)) {}
  std::string v1Dir(const std::string& controller, const std::string& allocId, const std::string& task) const;
  std::string v2Scope(const std::string& allocId, const std::string& task) const;

  Mode mode_ = Mode::kOff;
  std::string root_;  // /sys/fs/cgroup
};

}  // namespace s2z::standin
