// Image tasks pulled from a real registry (tests/registry: Debian's
// docker-registry with TLS from a test CA, htpasswd or public, reached from
// the plugin's network namespace over a veth pair): credentials from the task
// or the plugin's docker config.json, a wrong password's clear error,
// auth_soft_fail, the multi-layer image's whiteouts, setuid binary and USER
// as the workload sees them, its StopSignal as the stop signal, and image_gc
// removing the image once its task is gone.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/integration/agent_task_helpers.h"
#include "tests/integration/test_env.h"
#include "tests/registry/test_registry.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;
using s2z::testing::TestRegistry;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<TestRegistry> startRegistry(const TestEnv& env, bool auth) {
  TestRegistry::Options options;
  options.auth = auth;
  options.clientNetns = env.netnsName();
  auto started = TestRegistry::start(options);
  REQUIRE_MESSAGE(started.ok(), s2z::tests::errText(started));
  return std::move(*started);
}

std::unique_ptr<NomadClient> loadPluginWith(const TestEnv& env, const std::function<void(YAML::Node&)>& edit) {
  return env.loadPlugin([&](ClientOptions& o) { edit(o.pluginConfig); });
}

TaskFile registryTask(const std::string& name, const std::string& image, const std::string& extraConfigYaml) {
  auto t = TaskFile::parse("name: " + name + "\ndriver: s2z-kata\nresources: { cpu: 500, memory: 256 }\n"
                           "config:\n  image: \"" + image + "\"\n" + extraConfigYaml);
  REQUIRE_MESSAGE(t.ok(), s2z::tests::errText(t));
  return *t;
}

bool hasEvent(const NomadClient& c, const std::string& allocId, const std::string& message) {
  for (const auto& e : c.events()) {
    if (e.allocId == allocId && e.message == message) return true;
  }
  return false;
}

// A small image made of Debian's static busybox: Cmd serves HTTP on 8080.
struct BusyboxImage {
  fs::path dir;
  BusyboxImage() {
    char tmpl[] = "/tmp/s2zt-busybox-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    const std::string d = dir.string();
    REQUIRE(std::system(("umoci init --layout " + d + "/layout && umoci new --image " + d +
                         "/layout:t && umoci unpack --image " + d + "/layout:t " + d + "/bundle >/dev/null && "
                         "mkdir -p " + d + "/bundle/rootfs/bin " + d + "/bundle/rootfs/www && "
                         "cp /bin/busybox " + d + "/bundle/rootfs/bin/busybox && "
                         "ln -s busybox " + d + "/bundle/rootfs/bin/sh && "
                         "echo busybox-image > " + d + "/bundle/rootfs/www/index.html && "
                         "umoci repack --image " + d + "/layout:t " + d + "/bundle && "
                         "umoci config --image " + d + "/layout:t --config.cmd /bin/busybox --config.cmd httpd "
                         "--config.cmd -f --config.cmd -p --config.cmd 8080 --config.cmd -h --config.cmd /www && "
                         "skopeo copy --quiet oci:" + d + "/layout:t oci-archive:" + d + "/busybox.oci.tar:t")
                            .c_str()) == 0);
  }
  ~BusyboxImage() { fs::remove_all(dir); }
  fs::path archive() const { return dir / "busybox.oci.tar"; }
};

}  // namespace

TEST_CASE("a private registry image: a wrong password is a clear error; with auth the layered image runs as built, "
          "stops with its StopSignal and is collected after its task") {
  REQUIRE(agentGuestAvailable());
  REQUIRE(fs::exists(S2Z_LAYERED_IMAGE));
  TestEnv env;
  auto reg = startRegistry(env, true);
  auto pushed = reg->push(S2Z_LAYERED_IMAGE, "s2z/layered:1");
  REQUIRE_MESSAGE(pushed.ok(), s2z::tests::errText(pushed));
  auto client = loadPluginWith(env, [&](YAML::Node& n) {
    n["registry_certs_dir"] = reg->certsDir().string();
    n["image_gc"]["delay"] = "3s";
  });
  NomadClient& c = *client;
  const std::string image = reg->host() + "/s2z/layered:1";

  auto refused = c.startTask(registryTask("refused", image,
                                          "  auth: { username: \"" + reg->username() + "\", password: wrong }\n"));
  REQUIRE_FALSE(refused.ok());
  CHECK_MESSAGE(refused.error().message.find("image \"" + image + "\": unauthorized") != std::string::npos,
                refused.error().message);
  const fs::path images = fs::path(env.stateDir()) / "images";
  bool nothingCached = true;
  std::error_code ec;  // no images directory at all is fine too
  for (const auto& e : fs::directory_iterator(images, ec)) {
    if (e.path().filename().string().rfind("sha256-", 0) == 0) nothingCached = false;
  }
  CHECK(nothingCached);

  // The image's User (app), its layers as the workload sees them, and a
  // setuid-root binary that still works (no nosuid on the root).
  auto t = c.startTask(registryTask(
      "layered", image,
      "  auth: { username: \"" + reg->username() + "\", password: \"" + reg->password() + "\" }\n"
      "  entrypoint: [ \"/bin/sh\", \"-c\" ]\n"
      "  command: \"echo uid=$(id -u) euid-setuid=$(s2z-setuid-id -u) deleted=$(test -e /etc/s2z-deleted && echo "
      "present || echo gone) opaque=$(ls /opt/s2z-opaque | tr '\\\\n' ,); trap 'echo got SIGQUIT; exit 0' QUIT; "
      "while :; do sleep 0.2; done\"\n"));
  REQUIRE_MESSAGE(t.ok(), s2z::tests::errText(t));
  CHECK(outputHas(c, t->id, "uid=1000 euid-setuid=0 deleted=gone opaque=c,"));
  // Nomad gives no kill_signal: the image's StopSignal (SIGQUIT), as docker's stop.
  REQUIRE(c.stopTask(t->id, 10s).ok());
  auto exit = waitExit(c, t->id);
  CHECK(outputHas(c, t->id, "got SIGQUIT"));
  CHECK(exit.exitCode == 0);
  const fs::path entry = images / ("sha256-" + pushed->substr(7));
  CHECK(fs::exists(entry));
  destroyAndCheckClean(c, env, t->id);
  // image_gc { delay = "3s" }: gone within the delay and a quarter of it.
  CHECK(fs::exists(entry));
  CHECK(c.waitUntil(10s, [&] { return !fs::exists(entry); }));
}

TEST_CASE("the plugin's auth config supplies credentials; an unusable one fails the task unless auth_soft_fail") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto priv = startRegistry(env, true);
  auto pub = startRegistry(env, false);
  BusyboxImage busybox;
  REQUIRE(priv->push(busybox.archive(), "s2z/busybox:1").ok());
  REQUIRE(pub->push(busybox.archive(), "s2z/busybox:1").ok());
  const fs::path authFile = fs::path(env.root()) / "auth.json";
  REQUIRE(priv->writeDockerConfig(authFile).ok());
  // Both registries' CAs, each under its host:port.
  const fs::path certs = fs::path(env.root()) / "certs.d";
  for (const auto* reg : {priv.get(), pub.get()}) {
    fs::create_directories(certs / reg->host());
    fs::copy_file(reg->caCert(), certs / reg->host() / "ca.crt");
  }
  auto client = loadPluginWith(env, [&](YAML::Node& n) {
    n["registry_certs_dir"] = certs.string();
    n["auth"]["config"] = authFile.string();
  });
  NomadClient& c = *client;

  auto fromConfig = c.startTask(registryTask("private", priv->host() + "/s2z/busybox:1", ""));
  REQUIRE_MESSAGE(fromConfig.ok(), s2z::tests::errText(fromConfig));
  REQUIRE(env.waitHttp(fromConfig->networkAddr, 8080, 60s));
  CHECK(env.httpGet(fromConfig->networkAddr, 8080, "/index.html", 10s).body == "busybox-image\n");
  stopAndDestroy(c, env, fromConfig->id, 5s);

  // The file is read at each pull: now it is broken.
  std::ofstream(authFile, std::ios::trunc) << "{ not json";
  const std::string publicImage = pub->host() + "/s2z/busybox:1";
  auto hard = c.startTask(registryTask("hard", publicImage, ""));
  REQUIRE_FALSE(hard.ok());
  CHECK_MESSAGE(hard.error().message.find("auth config \"" + authFile.string() + "\": not a docker config.json") !=
                    std::string::npos,
                hard.error().message);
  auto soft = c.startTask(registryTask("soft", publicImage, "  auth_soft_fail: true\n"));
  REQUIRE_MESSAGE(soft.ok(), s2z::tests::errText(soft));
  CHECK(hasEvent(c, soft->allocId, "Pulling without registry credentials"));
  REQUIRE(env.waitHttp(soft->networkAddr, 8080, 60s));
  stopAndDestroy(c, env, soft->id, 5s);
}
