// Nomad `image` values to skopeo references, by docker's naming rules.
#include <doctest/doctest.h>

#include "image/image_reference.h"
#include "tests/err_text.h"

using namespace s2z;
using namespace s2z::image;

namespace {

std::string skopeoRef(const std::string& image) {
  auto r = skopeoReference(image);
  REQUIRE_MESSAGE(r.ok(), s2z::tests::errText(r));
  return *r;
}

}  // namespace

TEST_CASE("docker.io names get library/ and :latest; registries are hosts with '.', ':' or localhost") {
  CHECK(skopeoRef("busybox") == "docker://docker.io/library/busybox:latest");
  CHECK(skopeoRef("redis:7") == "docker://docker.io/library/redis:7");
  CHECK(skopeoRef("team/app") == "docker://docker.io/team/app:latest");
  CHECK(skopeoRef("registry.example.com/team/app:1.2") == "docker://registry.example.com/team/app:1.2");
  CHECK(skopeoRef("10.0.0.1:5000/app") == "docker://10.0.0.1:5000/app:latest");
  CHECK(skopeoRef("localhost/app:dev") == "docker://localhost/app:dev");
  const std::string digest = "sha256:" + std::string(64, 'a');
  CHECK(skopeoRef("app@" + digest) == "docker://docker.io/library/app@" + digest);
  CHECK(skopeoRef("docker://quay.io/x/y:z") == "docker://quay.io/x/y:z");
}

TEST_CASE("local archives and layouts pass as they are") {
  CHECK(skopeoRef("oci-archive:/images/app.tar") == "oci-archive:/images/app.tar");
  CHECK(skopeoRef("docker-archive:/images/app.tar") == "docker-archive:/images/app.tar");
  CHECK(skopeoRef("oci:/images/layout:v1") == "oci:/images/layout:v1");
  CHECK(isLocalReference("oci:/x"));
  CHECK_FALSE(isLocalReference("docker://docker.io/library/x:latest"));
}

TEST_CASE("malformed references are refused naming the image") {
  for (const char* bad : {"", "App:1", "a b", "app:", "app@sha256:abc", "oci-archive:"}) {
    auto r = skopeoReference(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kInvalidArgument);
    CHECK(r.error().message.find(std::string("image \"") + bad + "\"") == 0);
  }
}

TEST_CASE("the registry host of a reference picks the CA directory; local references have none") {
  CHECK(registryHost("docker://registry.example.com:5000/team/app:1") == "registry.example.com:5000");
  CHECK(registryHost("docker://docker.io/library/redis:7") == "docker.io");
  CHECK(registryHost("oci-archive:/images/app.tar").empty());
  CHECK(registryHost("oci:/images/layout:app").empty());
}
