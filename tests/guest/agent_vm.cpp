#include "tests/guest/agent_vm.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace s2z::guest::testing {

namespace {

using namespace std::chrono_literals;

// Under TCG the guest cannot calibrate its TSC quickly: tell it the host's.
uint64_t hostTscKhz() {
  std::ifstream khzFile("/sys/devices/system/cpu/cpu0/tsc_freq_khz");
  uint64_t khz = 0;
  if (khzFile >> khz && khz > 0) return khz;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    return static_cast<uint64_t>(std::strtod(line.c_str() + line.find(':') + 1, nullptr) * 1000);
  }
  return 0;
}

void run(const std::vector<std::string>& argv) {
  std::string cmd;
  for (const auto& a : argv) cmd += "'" + a + "' ";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
}

}  // namespace

std::filesystem::path agentGuestDir() {
  if (const char* env = std::getenv("S2Z_AGENT_GUEST_DIR")) return env;
  return S2Z_AGENT_GUEST_DIR;
}

std::filesystem::path rootfsImage() {
  if (const char* env = std::getenv("S2Z_ROOTFS_IMAGE")) return env;
  return S2Z_ROOTFS_IMAGE;
}

AgentVm::AgentVm(const AgentVmExtras& extras) {
  std::string templ = (std::filesystem::temp_directory_path() / "s2z-agent-vm.XXXXXX").string();
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  dir_ = templ;
  auto scratch = dir_ / "scratch.ext4";
  { std::ofstream create(scratch); }
  std::filesystem::resize_file(scratch, 512ull << 20);  // sparse
  run({"mke2fs", "-q", "-t", "ext4", "-F", scratch.string()});

  const std::string d = dir_.string();
  const std::string guest = agentGuestDir().string();
  std::vector<std::string> args = {
      "qemu-system-x86_64",
      "-M", "microvm,x-option-roms=off,isa-serial=on,rtc=on,pit=on",
      "-accel", "tcg", "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
      "-m", "256M",
      "-kernel", guest + "/vmlinuz", "-initrd", guest + "/initrd.img",
      "-append", "console=ttyS0 tsc_early_khz=" + std::to_string(hostTscKhz()) + " no_timer_check" +
                    (extras.cmdline.empty() ? "" : " " + extras.cmdline),
      "-device", "virtio-serial-device,max_ports=4",
      "-chardev", "socket,id=agent,path=" + d + "/agent.sock,server=on,wait=off",
      "-device", "virtserialport,chardev=agent,name=s2z.agent",
      "-chardev", "file,id=out,path=" + d + "/stdout.log",
      "-device", "virtserialport,chardev=out,name=s2z.stdout",
      "-chardev", "file,id=err,path=" + d + "/stderr.log",
      "-device", "virtserialport,chardev=err,name=s2z.stderr",
      "-drive", "file=" + rootfsImage().string() + ",if=none,id=root,format=raw,readonly=on",
      "-device", "virtio-blk-device,drive=root,serial=s2z-root",
      "-drive", "file=" + d + "/scratch.ext4,if=none,id=scratch,format=raw",
      "-device", "virtio-blk-device,drive=scratch,serial=s2z-scratch",
      "-serial", "file:" + d + "/console.log",
  };
  args.insert(args.end(), extras.qemuArgs.begin(), extras.qemuArgs.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  startedAt_ = std::chrono::steady_clock::now();
  if (::posix_spawnp(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
    pid_ = -1;
    std::filesystem::remove_all(dir_);
    throw std::runtime_error("cannot start qemu-system-x86_64");
  }
}

AgentVm::~AgentVm() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (std::getenv("S2Z_KEEP_VM_DIR")) return;  // for debugging a failure
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

bool AgentVm::waitExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return true;
  for (auto deadline = std::chrono::steady_clock::now() + timeout;; std::this_thread::sleep_for(20ms)) {
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
}

std::string AgentVm::read(const char* name) const {
  std::ifstream in(dir_ / name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace s2z::guest::testing
