// What Nomad 1.7+'s client does with cgroups, whatever the driver
// (client/lib/cgroupslib, client/lib/proclib, the task runner's wrangler
// hook):
//
// | when | cgroup v2 (/sys/fs/cgroup is cgroup2) | cgroup v1 |
// |---|---|---|
// | client start (cgroupslib.Init) | nomad.slice/{share,reserve}.slice, cpu memory io pids (and cpuset) enabled down to them | <freezer\|memory\|cpu\|cpuset>/nomad; cpuset nomad/{share,reserve} with the usable cores and mems |
// | TaskConfig cpuset_cgroup | nomad.slice/share.slice/<alloc_id>.<task>.scope | cpuset/nomad/share (every task without reserved cores) |
// | ... with reserved cores (`resources.cores`) | nomad.slice/reserve.slice/<alloc_id>.<task>.scope | cpuset/nomad/reserve/<alloc_id>.<task> |
// | alloc prerun (the cpuparts hook: partition Reserve) | reserve.slice's cpuset.cpus gains the task's cores, share.slice's loses them | the same in cpuset nomad/{reserve,share} |
// | task prestart (wrangler Setup) | that scope made | <freezer\|cpu\|memory>/nomad/<alloc_id>.<task> made; a reserved-cores task's cpuset too, given only the parent's cpuset.mems (its cores are the driver's to write) |
// | task stop hooks, after DestroyTask (wrangler Kill, Cleanup) | cgroup.kill, then the scope removed | freezer FROZEN, SIGKILL to its procs, THAWED; then the task's cgroups removed |
// | alloc postrun (partition Release) | the cores go back to share.slice | the same in cpuset |
//
// The stand-in's scheduler gives a reserved-cores task the last N usable
// cores; it places one such task at a time.
#pragma once

#include <string>

#include "common/result.h"

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
  // The cores a task with `resources.cores = n` gets (linux_resources
  // .cpuset_cpus, "1,3"): the last n usable ones. "" for n = 0, or when off;
  // an error when the node has fewer.
  Result<std::string> reserveCores(int n) const;
  // TaskConfig resources.linux_resources.cpuset_cgroup; empty when off.
  std::string cpusetCgroup(const std::string& allocId, const std::string& task, const std::string& cores = "") const;
  // Where the task's memory is charged (v1: its memory cgroup, v2: its
  // scope) and the file that holds the charge; empty when off.
  std::string memoryCgroup(const std::string& allocId, const std::string& task) const;
  // The task's cgroup of one controller (v1: <controller>/nomad/<alloc_id>.<task>,
  // v2: its scope, whatever the controller); empty when off.
  std::string controllerCgroup(const std::string& controller, const std::string& allocId,
                               const std::string& task) const;
  std::string memoryChargeFile() const;
  // The partition's Reserve of `cores` (reserveCores) and the wrangler
  // hook's prestart (their errors are logged, as Nomad's are).
  void setUpTask(const std::string& allocId, const std::string& task, const std::string& cores = "") const;
  // The wrangler hook's stop: whatever is left in the task's cgroups is
  // killed, then they are removed; then the partition's Release of `cores`.
  void tearDownTask(const std::string& allocId, const std::string& task, const std::string& cores = "") const;

 private:
  NomadCgroups(Mode mode, std::string root) : mode_(mode), root_(std::move(root)) {}
  std::string v1Dir(const std::string& controller, const std::string& allocId, const std::string& task) const;
  // The task's scope: under reserve.slice when the wrangler made it there.
  std::string v2Scope(const std::string& allocId, const std::string& task) const;
  std::string v2Scope(const std::string& allocId, const std::string& task, bool reserved) const;
  std::string v1ReservedCpuset(const std::string& allocId, const std::string& task) const;
  // The partition files: cpuset.cpus of share and reserve.
  std::string partitionCpus(const char* partition) const;
  // Moves `cores` into the reserve partition (reserve) or back (release).
  void movePartitionCores(const std::string& cores, bool reserve) const;

  Mode mode_ = Mode::kOff;
  std::string root_;  // /sys/fs/cgroup
};

}  // namespace s2z::standin
