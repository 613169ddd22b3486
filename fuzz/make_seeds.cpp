// Writes the seed corpora: fuzz/corpus/<target>/<name>, a handful of small
// valid inputs per target, made with the real encoders (msgpack-cxx as go-cty
// writes it, toJson/encodeTaskState, encodeFrame) and the HTTP messages Cloud
// Hypervisor sends. Usage: build-fuzz/make_seeds <repo>/fuzz/corpus
// Regression inputs (crashes found and fixed) live beside these as
// regression-* and are not touched.
#include <msgpack.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "agent/instance_record_json.h"
#include "bpf/wake_record.h"
#include "driver/plugin_config.h"
#include "driver/task_config.h"
#include "driver/task_state.h"
#include "guestlink/frame_codec.h"
#include "vmm/cloud_hypervisor/ch_http.h"
#include "vmm/snapshot_manifest.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Packer = msgpack::packer<msgpack::sbuffer>;

fs::path root;
int invalid = 0;

// Each seed must be a valid input, or it only tests the first error path.
bool valid(const std::string& target, const std::string& bytes) {
  if (target == "plugin_config") return s2z::driver::decodePluginConfig(bytes).ok();
  if (target == "task_config") return s2z::driver::decodeTaskConfig(bytes).ok();
  if (target == "instance_record") {
    if (bytes.rfind("{\"instance\"", 0) == 0) return s2z::driver::decodeTaskState(bytes).ok();
    return s2z::agent::instanceRecordFromJson(json::parse(bytes)).ok();
  }
  if (target == "ch_http") {
    s2z::vmm::ch::HttpParser p(bytes[0] ? s2z::vmm::ch::HttpParser::Kind::kRequest
                                        : s2z::vmm::ch::HttpParser::Kind::kResponse);
    return p.feed(std::string_view(bytes).substr(1)).ok() && p.finish().ok();
  }
  if (target == "snapshot_manifest") {
    return s2z::vmm::decodeSnapshotManifest(bytes.substr(1)).ok();  // byte 0 = 0: the text as it is
  }
  if (target == "wake_record") return bytes.size() == 17 && s2z::bpf::decodeWakeRecord(bytes.data() + 1, 16);
  return true;  // guestlink_frame: made by encodeFrame
}

void write(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(root / target);
  std::ofstream(root / target / name, std::ios::binary) << bytes;
  if (!valid(target, bytes)) {
    std::cerr << "make_seeds: " << target << "/" << name << " does not decode\n";
    ++invalid;
  }
}

// A config map as the Nomad client writes it: every key listed, sorted by the
// caller, nil when absent; fn packs the value of each key (or nil).
using Value = std::function<void(Packer&)>;
std::string config(const std::vector<std::pair<std::string, Value>>& keys) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_map(static_cast<uint32_t>(keys.size()));
  for (const auto& [k, v] : keys) {
    pk.pack(k);
    if (v) v(pk);
    else pk.pack_nil();
  }
  return {buf.data(), buf.size()};
}
Value str(std::string s) { return [s](Packer& p) { p.pack(s); }; }
Value bin(std::string s) {
  return [s](Packer& p) { p.pack_bin(static_cast<uint32_t>(s.size())); p.pack_bin_body(s.data(), static_cast<uint32_t>(s.size())); };
}
Value boolean(bool b) { return [b](Packer& p) { p.pack(b); }; }
Value integer(int64_t n) { return [n](Packer& p) { p.pack(n); }; }
Value real(double d) { return [d](Packer& p) { p.pack(d); }; }
Value list(std::vector<std::string> items) { return [items](Packer& p) { p.pack(items); }; }
Value block(std::vector<std::pair<std::string, Value>> keys, bool asList = false) {
  return [keys, asList](Packer& p) {
    if (asList) p.pack_array(1);
    p.pack_map(static_cast<uint32_t>(keys.size()));
    for (const auto& [k, v] : keys) {
      p.pack(k);
      if (v) v(p);
      else p.pack_nil();
    }
  };
}

void pluginConfigSeeds() {
  write("plugin_config", "empty", "");
  write("plugin_config", "nil", std::string(1, '\xc0'));
  write("plugin_config", "all-nil",
        config({{"accelerator", {}}, {"agent_initrd", {}}, {"agent_kernel", {}}, {"auth", {}},
                {"cloud_hypervisor_path", {}}, {"health_check_cgroup", {}},
                {"health_check_mark", {}}, {"hypervisor", {}}, {"idle_timeout", {}},
                {"image_gc", {}}, {"initrd", {}}, {"kata_config", {}}, {"kernel", {}},
                {"qemu_path", {}}, {"registry_certs_dir", {}}, {"registry_tls_verify", {}},
                {"state_dir", {}}, {"subnet", {}}}));
  write("plugin_config", "typical",
        config({{"accelerator", str("auto")}, {"health_check_cgroup", str("/system.slice/consul.service")},
                {"health_check_mark", integer(0x40000)}, {"hypervisor", str("qemu")},
                {"idle_timeout", str("5m")}, {"kernel", str("/boot/vmlinuz")},
                {"state_dir", str("/var/lib/s2z-kata")}, {"subnet", str("10.89.0.0/24")}}));
  write("plugin_config", "blocks",
        config({{"auth", block({{"config", str("/etc/docker/config.json")}})},
                {"hypervisor", bin("cloud-hypervisor")},
                {"image_gc", block({{"delay", str("3m")}, {"enabled", boolean(true)}}, true)},
                {"registry_certs_dir", str("/etc/containers/certs.d")},
                {"registry_tls_verify", boolean(false)}}));
}

void taskConfigSeeds() {
  write("task_config", "nil", std::string(1, '\xc0'));
  write("task_config", "kernel",
        config({{"cmdline", str("quiet")}, {"hypervisor", {}}, {"initrd", str("/k/initrd")},
                {"kernel", str("/k/vmlinuz")}, {"ports", list({"http", "admin"})}, {"rootfs", {}},
                {"scale_to_zero", block({{"enabled", boolean(true)}, {"idle_timeout", str("10s")}})},
                {"vcpus", integer(2)}}));
  write("task_config", "command",
        config({{"args", list({"-c", "echo hi"})}, {"command", str("/bin/sh")},
                {"rootfs", str("/srv/root.ext4")}, {"vcpus", real(4.0)},
                {"working_dir", str("/srv")}, {"writable_disk_mb", str("2048")}}));
  write("task_config", "image",
        config({{"auth", block({{"password", str("secret")}, {"username", str("u")}})},
                {"auth_soft_fail", boolean(true)}, {"entrypoint", list({"/app"})},
                {"force_pull", boolean(false)}, {"image", str("registry.local:5000/app:1")},
                {"image_pull_timeout", str("1m30s")}, {"readonly_rootfs", boolean(true)},
                {"scale_to_zero",
                 block({{"script_checks", str("wake")}, {"wake_to_stop", boolean(false)}}, true)}}));
}

s2z::agent::InstanceRecord record(bool workload) {
  s2z::agent::InstanceRecord r;
  r.spec.taskId = "f3a1/web/0";
  r.spec.name = "web-f3a1";
  r.spec.binary = "/usr/bin/qemu-system-x86_64";
  r.spec.kernel = "/boot/vmlinuz";
  r.spec.initrd = "/boot/initrd.img";
  r.spec.cmdline = "quiet";
  r.spec.vcpus = 2;
  r.spec.memoryMib = 512;
  r.spec.stdoutPath = "/alloc/logs/.web.stdout.fifo";
  r.spec.stderrPath = "/alloc/logs/.web.stderr.fifo";
  r.spec.scaleToZero = true;
  if (workload) {
    s2z::agent::WorkloadSpec w;
    w.argv = {"/app", "--port", "8080"};
    w.env = {"PATH=/usr/bin:/bin", "NOMAD_TASK_NAME=web"};
    w.user = "app";
    w.dnsServers = {"10.0.0.2"};
    w.localDir = "/var/lib/nomad/alloc/f3a1/web/local";
    w.volumes.push_back({"/dev/vdb", "/data", true});
    w.readonlyRoot = true;
    w.stopSignal = 2;
    r.spec.workload = w;
    r.spec.rootfs = "/var/lib/s2z-kata/images/sha256-ab.ext4";
    r.spec.lightSleepCache = s2z::vmm::LightSleepCache::kDrop;
    r.spec.cgroup = "/sys/fs/cgroup/cpuset/nomad/share";  // Nomad 1.7+ on a cgroup v1 host
    r.spec.cgroupScope = "f3a1.web";
  }
  r.network = {"s2z-web", 17, "10.89.0.2", "10.89.0.1", 24, "52:54:00:12:34:56"};
  r.runDir = "/var/lib/s2z-kata/run/web-f3a1";
  r.state = workload ? s2z::agent::InstanceState::kSleeping : s2z::agent::InstanceState::kRunning;
  r.vmm = {4242, 123456789};
  r.logHolder = {4243, 123456790};
  r.snapshotDir = "/var/lib/s2z-kata/run/web-f3a1/snapshot";
  r.startedAtUnixNs = 1700000000000000000;
  r.workloadExit = {true, 3, 0, false};
  return r;
}

// The same record as an older plugin wrote it.
json asVersion(json j, int version) {
  j["version"] = version;
  if (version < 8) j["spec"].erase("cgroupScope");
  if (version < 7) j["spec"].erase("lightSleepCache");
  if (version < 6) j.erase("snapshotGeneration");
  if (version < 5) {
    j.erase("sleepingTier");
    for (const char* key : {"sleepTier", "deepSleepAfterMs", "cgroup", "group"}) j["spec"].erase(key);
  }
  if (version < 4 && j["spec"]["workload"].is_object()) {
    j["spec"]["workload"].erase("readonlyRoot");
    j["spec"]["workload"].erase("stopSignal");
  }
  if (version < 3) {
    j["spec"].erase("workload");
    j["spec"].erase("scratchMib");
    j.erase("workloadExit");
  }
  if (version < 2) j.erase("logHolder");
  if (version == 1) {
    j["spec"]["consolePath"] = j["spec"]["stdoutPath"];
    j["spec"].erase("stdoutPath");
    j["spec"].erase("stderrPath");
  }
  return j;
}

void instanceRecordSeeds() {
  json plain = s2z::agent::toJson(record(false));
  json agentTask = s2z::agent::toJson(record(true));
  write("instance_record", "v8-kernel.json", plain.dump());
  write("instance_record", "v8-workload.json", agentTask.dump(2));
  write("instance_record", "v7-kernel.json", asVersion(plain, 7).dump());
  write("instance_record", "v7-workload.json", asVersion(agentTask, 7).dump(2));
  write("instance_record", "v6-kernel.json", asVersion(plain, 6).dump());
  write("instance_record", "v6-workload.json", asVersion(agentTask, 6).dump(2));
  write("instance_record", "v5-kernel.json", asVersion(plain, 5).dump());
  write("instance_record", "v4-kernel.json", asVersion(plain, 4).dump());
  write("instance_record", "v4-workload.json", asVersion(agentTask, 4).dump(2));
  write("instance_record", "v3-workload.json", asVersion(agentTask, 3).dump());
  write("instance_record", "v2-kernel.json", asVersion(plain, 2).dump());
  write("instance_record", "v1-kernel.json", asVersion(plain, 1).dump());
  write("instance_record", "driver-state-v1", s2z::driver::encodeTaskState(record(true)));
  write("instance_record", "driver-state-old-record",
        json{{"version", 1}, {"instance", asVersion(plain, 1)}}.dump());
}

std::string frames(const std::vector<s2z::agent::v1::Frame>& list) {
  std::string out;
  for (const auto& f : list) out += s2z::guestlink::encodeFrame(f);
  return out;
}

void guestlinkSeeds() {
  using namespace s2z::agent::v1;
  Frame hello;
  hello.mutable_hello()->set_protocol_version(s2z::guestlink::kProtocolVersion);
  hello.mutable_hello()->set_session(0x5eed);
  Frame reply;
  reply.mutable_hello_reply()->set_protocol_version(1);
  reply.mutable_hello_reply()->set_agent_version("0.1.0");
  reply.mutable_hello_reply()->mutable_workload()->set_started(true);
  reply.mutable_hello_reply()->mutable_workload()->set_pid(42);
  reply.mutable_hello_reply()->set_next_seq(3);
  Frame start;
  start.set_seq(1);
  auto* sw = start.mutable_request()->mutable_start_workload();
  start.mutable_request()->set_id(1);
  sw->add_argv("/bin/sh");
  sw->add_argv("-c");
  sw->add_env("PATH=/bin");
  sw->set_user("1000:1000");
  auto* host = sw->add_hosts();
  host->set_address("10.89.0.1");
  host->add_names("gateway");
  auto* vol = sw->add_volumes();
  vol->set_serial("s2z-vol-0");
  vol->set_target("/data");
  Frame copy;
  copy.set_seq(2);
  copy.set_ack(1);
  auto* cf = copy.mutable_request()->mutable_copy_file();
  cf->set_path("/local/config.txt");
  cf->set_mode(0644);
  cf->set_file_size(5);
  cf->set_data("hello");
  Frame response;
  response.set_seq(1);
  response.set_ack(2);
  response.mutable_response()->set_id(1);
  response.mutable_response()->mutable_start_workload()->set_pid(7);
  Frame exited;
  exited.set_seq(2);
  exited.mutable_event()->mutable_workload_exited()->set_exit_code(3);
  Frame ack;
  ack.set_ack(2);

  write("guestlink_frame", "host-to-guest", frames({hello, start, copy}));
  write("guestlink_frame", "guest-to-host", frames({reply, response, exited, ack}));
  write("guestlink_frame", "one-frame-body", start.SerializeAsString());
  write("guestlink_frame", "empty-frame", frames({Frame()}));
  std::string partial = frames({reply, response});
  write("guestlink_frame", "partial", partial.substr(0, partial.size() - 3));
}

void chHttpSeeds() {
  // Byte 0: 0 = parse as a response (what the client reads), 1 = as a request.
  auto response = [](const std::string& name, const std::string& text) {
    write("ch_http", name, std::string(1, '\0') + text);
  };
  response("204", "HTTP/1.1 204 No Content\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n");
  response("200-length",
           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n"
           "{\"state\":\"Running\",\"x\":[1]}");
  response("200-chunked",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "7;ext=1\r\n{\"a\":1}\r\n3\r\n[2]\r\n0\r\nTrailer: x\r\n\r\n");
  response("500-to-eof", "HTTP/1.0 500 Internal Server Error\r\nServer: ch\r\n\r\nVmBoot(...)");
  write("ch_http", "request-put",
        std::string(1, '\1') +
            "PUT /api/v1/vm.boot HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n"
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
}

void snapshotManifestSeeds() {
  // Byte 0 = 0: manifest.json's text as the plugin writes it.
  using s2z::vmm::ManifestFile;
  s2z::vmm::SnapshotManifest qemu{{"3f0c7a2e-alloc/web/0", 4},
                                  {ManifestFile{"state", 57344, 0x8e1f03aau, 0, 0},
                                   ManifestFile{"/var/lib/s2z-kata/tasks/3f0c/guest-ram", 268435456, {}, 1835021,
                                                1733450000123456789}}};
  s2z::vmm::SnapshotManifest ch{{"alloc/api/1", 1},
                                {ManifestFile{"config.json", 3120, 0x1234abcdu, 0, 0},
                                 ManifestFile{"state.json", 40960, 0x0badf00du, 0, 0},
                                 ManifestFile{"memory-ranges", 134217728, {}, 77, 1733450000000000000}}};
  write("snapshot_manifest", "qemu", std::string(1, '\0') + s2z::vmm::encodeSnapshotManifest(qemu));
  write("snapshot_manifest", "cloud-hypervisor", std::string(1, '\0') + s2z::vmm::encodeSnapshotManifest(ch));
}

void wakeRecordSeeds() {
  // A length byte, then struct s2z_wake_event: ifindex, pad, timestamp (ns).
  s2z_wake_event ev{};
  ev.ifindex = 7;
  ev.timestamp_ns = 123456789012345ull;
  std::string record(1, static_cast<char>(sizeof ev));
  record.append(reinterpret_cast<const char*>(&ev), sizeof ev);
  write("wake_record", "one", record);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds <repo>/fuzz/corpus\n";
    return 2;
  }
  root = argv[1];
  pluginConfigSeeds();
  taskConfigSeeds();
  instanceRecordSeeds();
  guestlinkSeeds();
  chHttpSeeds();
  snapshotManifestSeeds();
  wakeRecordSeeds();
  std::cout << "seeds written under " << root << "\n";
  return invalid == 0 ? 0 : 1;
}
