#include "vmm/qemu/qemu_command_line.h"

#include <cpuid.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "vmm/guest_ram_file.h"
#include "vmm/vmm_socket_path.h"

namespace s2z::vmm::qemu {
namespace {

// A disk write that fails on the host (its file cannot grow: state_dir full)
// is the guest's I/O error, as a full disk is a container's ENOSPC. QEMU's
// default (werror=enospc) would stop the whole VM instead, until space came
// back: a task that stops serving (measured: the disk-full reliability test).
constexpr char kWritableDiskErrors[] = ",werror=report,rerror=report";

bool hasParam(const std::string& cmdline, const std::string& name) {
  std::istringstream in(cmdline);
  for (std::string tok; in >> tok;) {
    if (tok == name || tok.rfind(name + "=", 0) == 0) return true;
  }
  return false;
}

// QEMU option values are comma-separated: a literal comma is written twice.
std::string escapeOption(const std::string& value) {
  std::string out;
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

// A chardev writing to an inherited fd: `-add-fd` puts the child's fd in a
// set that `-chardev file` opens as /dev/fdset/N (a dup, never an open of the
// FIFO). append=on because without it QEMU would ftruncate, which a FIFO refuses.
void addFdChardev(std::vector<std::string>& a, const std::string& id, int childFd, int set) {
  const std::string n = std::to_string(set);
  a.insert(a.end(), {"-add-fd", "fd=" + std::to_string(childFd) + ",set=" + n, "-chardev",
                     "file,id=" + id + ",append=on,path=/dev/fdset/" + n});
}

// virtio-serial ports named for the guest agent: its channel (a socket QEMU
// listens on; the plugin connects and reconnects) and the workload's output.
void addAgentDevices(std::vector<std::string>& a, const VmConfig::AgentDevices& agent) {
  a.insert(a.end(), {"-device", "virtio-serial-device,max_ports=4", "-chardev",
                     "socket,id=agent,path=" + escapeOption(vmmBindPath(agent.socket)) +
                         ",server=on,wait=off",
                     "-device", "virtserialport,chardev=agent,name=s2z.agent"});
  struct Port {
    int fd;
    const char* id;
    int childFd, set;
    const char* name;
  };
  for (const Port& p : {Port{agent.stdoutFd, "out", kStdoutChildFd, kStdoutFdSet, "s2z.stdout"},
                        Port{agent.stderrFd, "err", kStderrChildFd, kStderrFdSet, "s2z.stderr"}}) {
    if (p.fd >= 0) {
      addFdChardev(a, p.id, p.childFd, p.set);
    } else {
      a.insert(a.end(), {"-chardev", std::string("null,id=") + p.id});
    }
    a.insert(a.end(), {"-device", std::string("virtserialport,chardev=") + p.id + ",name=" + p.name});
  }
}

}  // namespace

QemuPaths qemuPaths(const std::filesystem::path& runDir) {
  return {runDir / "qmp.sock", guestRamPath(runDir), runDir / "qemu.log"};
}

std::string guestCmdline(const VmConfig& config, uint64_t tscKhz) {
  std::string cmdline = config.cmdline;
  if (config.accelerator == Accelerator::kTcg) {
    // Under TCG the guest's TSC calibration against the PIT is unreliable and
    // slow; telling it the frequency and skipping the timer check makes boot work.
    if (tscKhz > 0 && !hasParam(cmdline, "tsc_early_khz")) {
      cmdline += " tsc_early_khz=" + std::to_string(tscKhz);
    }
    if (!hasParam(cmdline, "no_timer_check")) cmdline += " no_timer_check";
  }
  if (!cmdline.empty() && cmdline.front() == ' ') cmdline.erase(0, 1);
  return cmdline;
}

std::vector<std::string> buildQemuArgv(const VmConfig& config, const QemuLaunch& launch) {
  QemuPaths paths = qemuPaths(config.runDir);
  std::vector<std::string> a;
  auto add = [&a](std::initializer_list<std::string> items) { a.insert(a.end(), items); };

  a.push_back(config.binary.string());
  // The RAM lives in a shared file on disk: with x-ignore-shared the snapshot
  // holds only device state, and a sleeping VM frees its memory. The stream's
  // JSON self-description (vmdesc) serves only debugging tools: 57 -> 41 KiB.
  add({"-M",
       "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on,memory-backend=mem0,"
       "suppress-vmdesc=on"});
  add({"-nodefaults", "-no-user-config", "-no-reboot", "-display", "none"});
  if (config.accelerator == Accelerator::kTcg) {
    // TCG's translation buffer is most of QEMU's own memory, and the one
    // part a light sleep cannot release: the default (up to 1 GiB, grown as
    // used) reached 80 MiB anonymous for a 256 MiB guest here, 32 MiB keeps
    // it to 65 MiB (16 MiB: 47 MiB, at the cost of retranslation).
    add({"-accel", std::string("tcg,tb-size=") + std::to_string(kTcgTranslationBufferMib)});
  } else {
    add({"-accel", acceleratorName(config.accelerator)});
  }
  add({"-smp", std::to_string(config.vcpus)});
  add({"-m", std::to_string(config.memoryMib) + "M"});
  add({"-object", "memory-backend-file,id=mem0,size=" + std::to_string(config.memoryMib) +
                      "M,mem-path=" + escapeOption(paths.guestRam.string()) + ",share=on"});
  if (config.consoleFd < 0) {
    add({"-serial", "null"});
  } else {
    addFdChardev(a, "con0", kConsoleChildFd, kConsoleFdSet);
    add({"-serial", "chardev:con0"});
  }
  // A restored guest runs from the RAM file: loading the kernel and initrd
  // again (into fw_cfg, for a firmware that never runs) cost ~30 ms of each
  // wake.
  if (!launch.incoming) {
    add({"-kernel", config.kernel.string()});
    if (!config.initrd.empty()) add({"-initrd", config.initrd.string()});
    add({"-append", guestCmdline(config, launch.tscKhz)});
  }
  if (config.agent) {
    // The image is shared by every task that runs it: read-only; the guest
    // agent stacks the scratch disk on it with overlayfs.
    if (!config.rootfs.empty()) {
      add({"-drive", "file=" + escapeOption(config.rootfs.string()) +
                         ",if=none,id=d0,format=raw,readonly=on",
           "-device", std::string("virtio-blk-device,drive=d0,serial=") + kRootDiskSerial});
    }
    if (!config.agent->scratchDisk.empty()) {
      add({"-drive", "file=" + escapeOption(config.agent->scratchDisk.string()) +
                         ",if=none,id=d1,format=raw" + kWritableDiskErrors,
           "-device", std::string("virtio-blk-device,drive=d1,serial=") + kScratchDiskSerial});
    }
    for (size_t i = 0; i < config.agent->volumes.size(); ++i) {
      const auto& v = config.agent->volumes[i];
      const std::string id = "v" + std::to_string(i);
      add({"-drive", "file=" + escapeOption(v.path.string()) + ",if=none,id=" + id + ",format=raw" +
                         (v.readonly ? ",readonly=on" : kWritableDiskErrors),
           "-device", "virtio-blk-device,drive=" + id + ",serial=" + escapeOption(v.serial)});
    }
    addAgentDevices(a, *config.agent);
  } else if (!config.rootfs.empty()) {
    add({"-drive", "file=" + escapeOption(config.rootfs.string()) + ",if=none,id=d0,format=raw" +
                       kWritableDiskErrors,
         "-device", "virtio-blk-device,drive=d0"});
  }
  if (!config.agent && !config.guestAgentSocket.empty()) {
    // The standard qemu-guest-agent channel (its name is what qemu-ga and
    // distributions' units look for).
    add({"-device", "virtio-serial-device,id=qga0,max_ports=2", "-chardev",
         "socket,id=qga,path=" + escapeOption(vmmBindPath(config.guestAgentSocket)) + ",server=on,wait=off",
         "-device", "virtserialport,bus=qga0.0,chardev=qga,name=org.qemu.guest_agent.0"});
  }
  if (config.tapFd >= 0) {
    std::string nic = "virtio-net-device,netdev=n0";
    if (!config.mac.empty()) nic += ",mac=" + config.mac;
    if (config.mtu != 0) nic += ",host_mtu=" + std::to_string(config.mtu);
    add({"-netdev", "tap,id=n0,fd=" + std::to_string(kTapChildFd), "-device", nic});
  }
  add({"-chardev", "socket,id=qmp,fd=" + std::to_string(kQmpChildFd) + ",server=on,wait=off",
       "-mon", "chardev=qmp,mode=control"});
  if (launch.incoming) add({"-S", "-incoming", "defer"});
  return a;
}

namespace {

// TSC frequency from CPUID: leaf 0x15 (crystal clock and ratio, Intel) or the
// hypervisor timing leaf 0x40000010 (KVM/VMware guests). 0 when not reported.
uint64_t cpuidTscKhz() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) >= 0x15) {
    __cpuid_count(0x15, 0, a, b, c, d);
    if (a != 0 && b != 0 && c != 0) return uint64_t{c} * b / a / 1000;
  }
  __cpuid(0x40000000, a, b, c, d);
  if (a >= 0x40000010) {
    __cpuid(0x40000010, a, b, c, d);
    if (a != 0) return a;
  }
#endif
  return 0;
}

}  // namespace

uint64_t hostTscKhz() {
  if (uint64_t khz = cpuidTscKhz(); khz > 0) return khz;
  {
    std::ifstream in("/sys/devices/system/cpu/cpu0/tsc_freq_khz");
    uint64_t khz = 0;
    if (in >> khz && khz > 0) return khz;
  }
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    double mhz = std::strtod(line.c_str() + colon + 1, nullptr);
    if (mhz > 0) return static_cast<uint64_t>(std::llround(mhz * 1000.0));
  }
  return 0;
}

}  // namespace s2z::vmm::qemu
