// Image tasks end to end: `image` names an OCI archive built from Debian
// packages (scripts/build-rootfs.sh); the plugin converts it to a disk once
// (events "Downloading image" ... "Image ready"), the image's Entrypoint,
// Cmd, Env, WorkingDir and User run the workload unless the task overrides
// them, and data written in the task's writable layer survives a sleep and a
// plugin restart.
#include <doctest/doctest.h>

#include <filesystem>

#include "tests/integration/agent_task_helpers.h"
#include "tests/integration/test_env.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::integration;
using namespace s2z::standin;
using namespace std::chrono_literals;

namespace {

TaskFile imageTask(const std::string& extraTaskYaml, const std::string& extraConfigYaml) {
  auto t = TaskFile::parse("name: app\n"
                           "driver: s2z-kata\n"
                           "resources: { cpu: 500, memory: 256 }\n"
                           "ports: [ { label: http, value: 28080, to: 8080 } ]\n" +
                           extraTaskYaml + "config:\n  image: \"oci-archive:" + testOciArchive() +
                           "\"\n  ports: [ http ]\n" + extraConfigYaml);
  REQUIRE_MESSAGE(t.ok(), s2z::tests::errText(t));
  return *t;
}

std::optional<TaskEventRecord> eventOf(const NomadClient& c, const std::string& allocId, const std::string& message) {
  for (const auto& e : c.events()) {
    if (e.allocId == allocId && e.message == message) return e;
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("an OCI image runs with its Entrypoint, Cmd, Env, WorkingDir and User, converted once; the task overrides them") {
  REQUIRE(agentGuestAvailable());
  REQUIRE(std::filesystem::exists(testOciArchive()));
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;

  auto first = c.startTask(imageTask("", ""));
  REQUIRE_MESSAGE(first.ok(), s2z::tests::errText(first));
  CHECK(outputHas(c, first->id, "user=app pwd=/srv GREETING=hello-from-the-image"));
  REQUIRE(env.waitHttp(first->networkAddr, 8080, 60s));
  CHECK(env.httpGet(first->networkAddr, 8080, "/index.html", 10s).body == "hello from the image\n");
  auto ready = eventOf(c, first->allocId, "Image ready");
  REQUIRE(ready);
  CHECK(ready->annotations["cached"] == "false");
  CHECK(ready->annotations["digest"].rfind("sha256:", 0) == 0);
  CHECK(eventOf(c, first->allocId, "Downloading image oci-archive:" + testOciArchive()));
  auto whoami = c.execTask(first->id, {"sh", "-c", "id -un; pwd"}, 10s);
  REQUIRE_MESSAGE(whoami.ok(), s2z::tests::errText(whoami));
  CHECK(whoami->stdoutText == "app\n/srv\n");
  stopAndDestroy(c, env, first->id, 5s);

  // From the cache; command/args replace Cmd, the task's env and user win.
  auto second = c.startTask(imageTask("user: root\nenv: { GREETING: from-the-task }\n",
                                      "  command: \"echo override $GREETING $(id -un); exec busybox httpd -f -p 8080\"\n"
                                      "  entrypoint: [ \"/bin/sh\", \"-c\" ]\n"));
  REQUIRE_MESSAGE(second.ok(), s2z::tests::errText(second));
  CHECK(outputHas(c, second->id, "override from-the-task root"));
  auto cached = eventOf(c, second->allocId, "Image ready");
  REQUIRE(cached);
  CHECK(cached->annotations["cached"] == "true");
  CHECK(cached->annotations["digest"] == ready->annotations["digest"]);
  CHECK_FALSE(eventOf(c, second->allocId, "Downloading image oci-archive:" + testOciArchive()));
  stopAndDestroy(c, env, second->id, 5s);

  auto gone = TaskFile::parse("name: gone\ndriver: s2z-kata\nconfig: { image: \"oci-archive:/nonexistent.tar\" }\n");
  REQUIRE(gone.ok());
  auto missing = c.startTask(*gone);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("image \"oci-archive:/nonexistent.tar\": not found") != std::string::npos);
}

TEST_CASE("an image task's writable layer keeps its data across a sleep and a plugin restart") {
  REQUIRE(agentGuestAvailable());
  TestEnv env;
  auto client = loadPlugin(env);
  NomadClient& c = *client;
  auto t = c.startTask(imageTask("", "  scale_to_zero: { enabled: true, idle_timeout: \"2s\" }\n"));
  REQUIRE_MESSAGE(t.ok(), s2z::tests::errText(t));
  REQUIRE(env.waitHttp(t->networkAddr, 8080, 60s));
  auto wrote = c.execTask(t->id, {"sh", "-c", "echo kept > /srv/data.txt && sync"}, 10s);
  REQUIRE(wrote.ok());
  REQUIRE(c.waitUntil(30s, [&] { return eventsMatching(c, t->allocId, "sleeping") >= 1; }));
  CHECK(env.httpGet(t->networkAddr, 8080, "/data.txt", 10s).body == "kept\n");  // the request wakes it

  c.crashPlugin();
  REQUIRE(c.relaunchPlugin().ok());
  REQUIRE(c.recoverTask(*t).ok());
  auto read = c.execTask(t->id, {"cat", "/srv/data.txt"}, 10s);
  REQUIRE_MESSAGE(read.ok(), s2z::tests::errText(read));
  CHECK(read->stdoutText == "kept\n");
  stopAndDestroy(c, env, t->id, 5s);
}
