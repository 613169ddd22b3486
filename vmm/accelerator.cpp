// Chooses KVM or TCG. Opening /dev/kvm is not enough: some hosts expose a
// paravirtual KVM (e.g. kvm_pvm) that accepts KVM_CREATE_VM but only runs
// specially built guests; `-accel kvm` then starts and the guest hangs in early
// boot (design.md). So KVM also needs vmx/svm in the CPU flags.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "common/unique_fd.h"
#include "vmm/vmm.h"

namespace s2z::vmm {
namespace {

constexpr int kKvmApiVersion = 12;

// "vmx" (Intel VT-x) or "svm" (AMD-V) when the first CPU's flags list one.
std::string hardwareVirtualization() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream flags(line.substr(line.find(':') + 1));
    for (std::string f; flags >> f;) {
      if (f == "vmx" || f == "svm") return f;
    }
    return "";
  }
  return "";
}

}  // namespace

AcceleratorProbe detectAccelerator() {
  UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!kvm) {
    return {Accelerator::kTcg, std::string("/dev/kvm cannot be opened: ") + std::strerror(errno)};
  }
  int api = ::ioctl(kvm.get(), KVM_GET_API_VERSION, 0);
  if (api != kKvmApiVersion) {
    return {Accelerator::kTcg, "/dev/kvm reports API version " + std::to_string(api) + ", need " +
                                   std::to_string(kKvmApiVersion)};
  }
  UniqueFd vm(::ioctl(kvm.get(), KVM_CREATE_VM, 0));
  if (!vm) {
    return {Accelerator::kTcg, std::string("KVM_CREATE_VM failed: ") + std::strerror(errno)};
  }
  std::string hw = hardwareVirtualization();
  if (hw.empty()) {
    return {Accelerator::kTcg,
            "/dev/kvm works but the CPU has no vmx/svm flag (paravirtual KVM such as kvm_pvm "
            "cannot run an ordinary guest)"};
  }
  return {Accelerator::kKvm, "/dev/kvm usable, API 12, CPU has " + hw};
}

}  // namespace s2z::vmm
