#include "tests/cloud_hypervisor/ch_standin_vm.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "tests/cloud_hypervisor/ch_api_schema.h"

namespace s2z::tests::ch {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

StandinReply reply(int status, std::string body = "") {
  return StandinReply{status, std::move(body), false};
}

// "file:///dir" -> "/dir"; nullopt for any other scheme.
std::optional<fs::path> urlPath(const json& url) {
  if (!url.is_string()) return std::nullopt;
  std::string s = url.get<std::string>();
  if (s.rfind("file://", 0) != 0) return std::nullopt;
  return fs::path(s.substr(7));
}

bool writeFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

const char* vmStateName(VmState s) {
  switch (s) {
    case VmState::kNone: return "None";
    case VmState::kCreated: return "Created";
    case VmState::kRunning: return "Running";
    case VmState::kPaused: return "Paused";
    case VmState::kShutdown: return "Shutdown";
  }
  return "?";
}

int StandinVm::expectedFds(const std::string& endpoint, const json& body) {
  if (endpoint == "vm.add-net") return 1;
  if (endpoint == "vm.restore") {
    int total = 0;
    if (body.is_object() && body.contains("net_fds") && body["net_fds"].is_array()) {
      for (const auto& n : body["net_fds"]) {
        if (n.is_object() && n.contains("num_fds") && n["num_fds"].is_number_integer()) {
          total += n["num_fds"].get<int>();
        }
      }
    }
    return total;
  }
  return 0;
}

StandinReply StandinVm::handle(const vmm::ch::HttpMessage& request, int fdCount) {
  const std::string prefix(vmm::ch::kApiBase);
  if (request.target.rfind(prefix, 0) != 0) return reply(404, "unknown path " + request.target);
  std::string endpoint = request.target.substr(prefix.size());
  const EndpointSpec* spec = findEndpoint(endpoint);
  if (!spec) return reply(404, "unknown endpoint " + endpoint);
  if (request.method != spec->method) {
    return reply(405, endpoint + " takes " + std::string(spec->method));
  }
  json body;
  if (!spec->bodySchema.empty()) {
    if (request.body.empty()) return reply(400, endpoint + ": body required");
    if (request.headers.count("content-type") == 0 ||
        request.headers.at("content-type") != "application/json") {
      return reply(400, endpoint + ": Content-Type must be application/json");
    }
    body = json::parse(request.body, nullptr, false);
    if (body.is_discarded()) return reply(400, endpoint + ": body is not JSON");
    auto valid = validateBody(spec->bodySchema, body, version_);
    if (!valid.ok()) return reply(400, valid.error().message);
  } else if (!request.body.empty()) {
    return reply(400, endpoint + " takes no body");
  }
  int expected = expectedFds(endpoint, body);
  if (fdCount != expected) {
    return reply(400, endpoint + ": " + std::to_string(fdCount) + " fds received, " +
                          std::to_string(expected) + " announced");
  }
  if (auto f = failures_.find(endpoint); f != failures_.end()) {
    return reply(f->second.status, f->second.message);
  }
  return dispatch(endpoint, body, fdCount);
}

StandinReply StandinVm::dispatch(const std::string& endpoint, const json& body, int fdCount) {
  if (endpoint == "vmm.ping") {
    return reply(200, json{{"build_version", version_.str() + "-standin"},
                           {"version", version_.str()},
                           {"pid", static_cast<int64_t>(::getpid())},
                           {"features", json::array({"kvm"})}}
                          .dump());
  }
  if (endpoint == "vmm.shutdown") return StandinReply{204, "", true};
  if (endpoint == "vm.create") {
    if (state_ != VmState::kNone) return reply(400, "VM is already created");
    const json& payload = body["payload"];
    if (!payload.contains("kernel") && !payload.contains("firmware")) {
      return reply(400, "payload needs a kernel or firmware");
    }
    if (body.contains("serial") && body["serial"]["mode"] == "File" &&
        !body["serial"].contains("file")) {
      return reply(400, "serial mode File needs a file");
    }
    // Memory size 0 means "the zones are the memory" (MissingMemoryZones
    // otherwise); zones beside a size are refused.
    const json memory = body.value("memory", json::object());
    const bool zones = !memory.value("zones", json::array()).empty();
    if (memory.value("size", uint64_t{1}) == 0 && !zones) {
      return reply(400, "Error creating VM: memory size 0 needs memory zones");
    }
    if (memory.value("size", uint64_t{0}) != 0 && zones) {
      return reply(400, "Error creating VM: memory zones need memory size 0");
    }
    config_ = body;
    state_ = VmState::kCreated;
    return reply(204);
  }
  if (endpoint == "vm.add-net") return addNet(body, fdCount);
  if (endpoint == "vm.snapshot") return snapshot(body);
  if (endpoint == "vm.restore") return restore(body, fdCount);
  if (endpoint == "vm.info") {
    if (state_ == VmState::kNone) return reply(404, "VM is not created");
    return reply(200, json{{"config", config_}, {"state", vmStateName(state_)}}.dump());
  }
  if (endpoint == "vm.power-button") {
    if (state_ == VmState::kNone) return reply(404, "vm.power-button: VM is not created");
    if (state_ != VmState::kRunning) {
      return reply(405, std::string("vm.power-button: VM is not booted, it is ") +
                            vmStateName(state_));
    }
    if (powerButton_ == PowerButton::kIgnored) return reply(204);
    state_ = VmState::kShutdown;
    return StandinReply{204, "", powerButton_ == PowerButton::kGuestOffVmmExits};
  }
  if (endpoint == "vm.counters") {
    if (state_ == VmState::kNone) return reply(404, "VM is not created");
    return reply(200, json{{"net0", {{"rx_bytes", 0}, {"tx_bytes", 0}}}}.dump());
  }
  return transition(endpoint);
}

StandinReply StandinVm::transition(const std::string& endpoint) {
  struct Move { const char* endpoint; VmState from; VmState to; };
  static const Move kMoves[] = {
      {"vm.boot", VmState::kCreated, VmState::kRunning},
      {"vm.pause", VmState::kRunning, VmState::kPaused},
      {"vm.resume", VmState::kPaused, VmState::kRunning},
      {"vm.shutdown", VmState::kRunning, VmState::kShutdown},
      {"vm.shutdown", VmState::kPaused, VmState::kShutdown},
  };
  if (state_ == VmState::kNone) return reply(404, endpoint + ": VM is not created");
  for (const auto& m : kMoves) {
    if (endpoint == m.endpoint && state_ == m.from) {
      StandinReply error;
      if (endpoint == "vm.boot" && !createDevices(error, "Error booting VM")) return error;
      state_ = m.to;
      if (endpoint == "vm.boot") writeSerial("fake cloud-hypervisor: guest booted");
      if (state_ == VmState::kRunning) ram_.touch(endpoint == "vm.boot");
      return reply(204);
    }
  }
  return reply(405, endpoint + ": not allowed while the VM is " + vmStateName(state_));
}

bool StandinVm::createDevices(StandinReply& error, const char* what) {
  auto mapped = ram_.map(config_.value("memory", json::object()));
  if (!mapped.ok()) {
    error = reply(500, std::string(what) + ": " + mapped.error().describe());
    return false;
  }
  if (config_.contains("vsock")) {
    auto vsock = StandinVsock::bind(config_["vsock"].value("socket", ""));
    if (!vsock.ok()) {
      error = reply(500, std::string(what) + ": " + vsock.error().describe());
      return false;
    }
    vsock_ = std::move(*vsock);
  }
  return true;
}

void StandinVm::writeSerial(const std::string& line) const {
  // Cloud Hypervisor opens the serial file itself (by path, write + create);
  // a guest line then lands wherever that path leads, e.g. an inherited fd.
  const json serial = config_.value("serial", json::object());
  if (serial.value("mode", "") != "File") return;
  int fd = ::open(serial.value("file", "").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  std::string text = line + "\n";
  (void)!::write(fd, text.data(), text.size());
  ::close(fd);
}

StandinReply StandinVm::addNet(const json& body, int fdCount) {
  if (state_ == VmState::kNone) return reply(404, "vm.add-net: VM is not created");
  int queues = body.value("num_queues", 2);
  if (queues != 2 * fdCount) {
    return reply(400, "vm.add-net: num_queues " + std::to_string(queues) + " needs " +
                          std::to_string(queues / 2) + " fds, got " + std::to_string(fdCount));
  }
  if (!body.contains("id")) return reply(400, "vm.add-net: the standin needs an id");
  for (const auto& n : config_.value("net", json::array())) {
    if (n.value("id", "") == body["id"]) return reply(409, "vm.add-net: duplicate id");
  }
  json net = body;
  net["num_fds"] = fdCount;  // remembered so restore can check which NICs need fds
  config_["net"].push_back(net);
  if (state_ == VmState::kCreated) return reply(204);
  return reply(200, json{{"id", body["id"]}, {"bdf", "0000:00:05.0"}}.dump());
}

StandinReply StandinVm::snapshot(const json& body) {
  if (state_ == VmState::kNone) return reply(404, "vm.snapshot: VM is not created");
  if (state_ != VmState::kPaused) {
    return reply(405, std::string("vm.snapshot: VM must be paused, it is ") + vmStateName(state_));
  }
  auto dir = urlPath(body["destination_url"]);
  if (!dir) return reply(500, "vm.snapshot: destination_url must be a file:// URL");
  std::error_code ec;
  if (!fs::is_directory(*dir, ec)) {
    return reply(500, "vm.snapshot: " + dir->string() + " is not a directory");
  }
  bool ok = writeFile(*dir / "config.json", config_.dump()) &&
            writeFile(*dir / "state.json", json{{"standin", version_.str()}}.dump());
  // RAM in a named file mapped shared is persisted already: no dump of it,
  // and no memory-ranges at all when that is all of it.
  uint64_t memBytes = StandinRam::bytesToDump(config_["memory"]);
  if (memBytes > 0) {
    std::ofstream(*dir / "memory-ranges", std::ios::trunc).close();
    fs::resize_file(*dir / "memory-ranges", memBytes, ec);  // sparse: a RAM dump's size
  }
  if (!ok || ec) return reply(500, "vm.snapshot: cannot write into " + dir->string());
  return reply(204);
}

StandinReply StandinVm::restore(const json& body, int fdCount) {
  if (state_ != VmState::kNone) return reply(404, "vm.restore: a VM is already created");
  auto dir = urlPath(body["source_url"]);
  if (!dir) return reply(400, "vm.restore: source_url must be a file:// URL");
  std::ifstream in(*dir / "config.json");
  json saved = json::parse(in, nullptr, false);
  std::error_code ec;
  if (saved.is_discarded() || !fs::is_regular_file(*dir / "state.json", ec)) {
    return reply(500, "vm.restore: cannot read the snapshot in " + dir->string());
  }
  const bool hasDump = fs::exists(*dir / "memory-ranges", ec);
  if (!hasDump && StandinRam::bytesToDump(saved.value("memory", json::object())) > 0) {
    return reply(500, "vm.restore: cannot read the snapshot in " + dir->string() +
                          ": memory-ranges missing");
  }
  // Every NIC that was created from fds needs new ones, under its own id.
  json announced = body.value("net_fds", json::array());
  for (const auto& n : saved.value("net", json::array())) {
    if (n.value("num_fds", 0) == 0) continue;
    bool found = false;
    for (const auto& a : announced) {
      if (a["id"] == n["id"]) found = a["num_fds"] == n["num_fds"];
    }
    if (!found) {
      return reply(400, "vm.restore: net " + n.value("id", "") + " was created from " +
                            std::to_string(n.value("num_fds", 0)) + " fds; net_fds must renew them");
    }
  }
  for (const auto& a : announced) {
    bool known = false;
    for (const auto& n : saved.value("net", json::array())) known |= n["id"] == a["id"];
    if (!known) return reply(400, "vm.restore: net_fds names unknown net " + a["id"].dump());
  }
  if (body.value("memory_restore_mode", "Copy") == "OnDemand" && body.value("prefault", false)) {
    return reply(400, "vm.restore: OnDemand restore is incompatible with prefault");
  }
  if (body.value("memory_restore_mode", "Copy") == "OnDemand" && !userfaultfd_) {
    return reply(500, "Error restoring VM: userfaultfd is not available (on-demand restore)");
  }
  // OnDemand serves faults from memory-ranges, which it opens first, even
  // when there is nothing in it to serve (restore_by_uffd).
  if (body.value("memory_restore_mode", "Copy") == "OnDemand" && !hasDump) {
    return reply(500, "Error restoring VM: Error opening snapshot file " +
                          (*dir / "memory-ranges").string() + ": No such file or directory");
  }
  (void)fdCount;  // already checked against the announcement by handle()
  config_ = saved;
  StandinReply error;
  if (!createDevices(error, "Error restoring VM")) {
    config_ = json();
    return error;
  }
  writeSerial("fake cloud-hypervisor: guest restored");
  state_ = body.value("resume", false) ? VmState::kRunning : VmState::kPaused;
  if (state_ == VmState::kRunning) ram_.touch(false);
  return reply(204);
}

}  // namespace s2z::tests::ch
