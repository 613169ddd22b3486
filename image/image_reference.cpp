#include "image/image_reference.h"

#include <cctype>
#include <string_view>

namespace s2z::image {
namespace {

Error bad(const std::string& image, const std::string& why) {
  return makeError(ErrorCode::kInvalidArgument, "image \"" + image + "\": " + why);
}

bool validNameChar(char c) {
  return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == '-' || c == '/' || c == ':' || c == '@';
}

}  // namespace

bool isLocalReference(const std::string& ref) {
  for (const char* prefix : {"oci:", "oci-archive:", "docker-archive:"}) {
    if (ref.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::string registryHost(const std::string& ref) {
  constexpr std::string_view kDocker = "docker://";
  if (ref.rfind(kDocker, 0) != 0) return "";
  std::string rest = ref.substr(kDocker.size());
  return rest.substr(0, rest.find('/'));
}

Result<std::string> skopeoReference(const std::string& image) {
  if (image.empty()) return bad(image, "empty");
  if (isLocalReference(image)) {
    if (image.find(':') + 1 == image.size()) return bad(image, "no path after the transport");
    return image;
  }
  std::string name = image;
  if (name.rfind("docker://", 0) == 0) name = name.substr(9);
  for (char c : name) {
    if (!validNameChar(c)) return bad(image, std::string("invalid character '") + c + "' in a registry reference");
  }
  std::string digest;
  if (auto at = name.find('@'); at != std::string::npos) {
    digest = name.substr(at);
    name = name.substr(0, at);
    if (digest.rfind("@sha256:", 0) != 0 || digest.size() != 8 + 64) {
      return bad(image, "a digest must be sha256:<64 hex digits>");
    }
  }
  // The registry: a first component that looks like a host.
  std::string registry = "docker.io";
  std::string path = name;
  if (auto slash = name.find('/'); slash != std::string::npos) {
    std::string first = name.substr(0, slash);
    if (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost") {
      registry = first;
      path = name.substr(slash + 1);
    }
  }
  if (path.empty()) return bad(image, "no repository");
  std::string tag;
  if (auto colon = path.rfind(':'); colon != std::string::npos) {
    tag = path.substr(colon + 1);
    path = path.substr(0, colon);
    if (tag.empty()) return bad(image, "empty tag");
  }
  if (path.find(':') != std::string::npos) return bad(image, "':' in the repository name");
  if (registry == "docker.io" && path.find('/') == std::string::npos) path = "library/" + path;
  if (tag.empty() && digest.empty()) tag = "latest";
  std::string out = "docker://" + registry + "/" + path;
  if (!tag.empty()) out += ":" + tag;
  return out + digest;
}

}  // namespace s2z::image
