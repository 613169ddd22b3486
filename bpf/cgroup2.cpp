#include "bpf/cgroup2.h"

#include <fstream>
#include <sstream>

namespace s2z::bpf {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescapeMountField(const std::string& in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    const bool octal = in[i] == '\\' && i + 3 < in.size() && in[i + 1] >= '0' &&
                       in[i + 1] <= '3';
    if (octal) {
      out.push_back(static_cast<char>(std::stoi(in.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

Result<std::filesystem::path> cgroup2MountPoint() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return systemError("read /proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source super
    std::istringstream fields(line);
    std::string id, parent, dev, root, mountPoint, field;
    fields >> id >> parent >> dev >> root >> mountPoint;
    while (fields >> field && field != "-") {
    }
    std::string fsType;
    fields >> fsType;
    if (fsType == "cgroup2") return std::filesystem::path(unescapeMountField(mountPoint));
  }
  return makeError(ErrorCode::kNotFound, "no cgroup2 mount in /proc/self/mountinfo");
}

Result<std::filesystem::path> cgroup2Dir(const std::string& relPath) {
  auto mount = cgroup2MountPoint();
  if (!mount.ok()) return mount.error().wrap("cgroup " + relPath);
  std::string rel = relPath;
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  for (const auto& part : std::filesystem::path(rel))
    if (part == "..")
      return makeError(ErrorCode::kInvalidArgument, "cgroup " + relPath + ": '..' not allowed");
  auto dir = *mount / rel;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return makeError(ErrorCode::kNotFound, "cgroup " + relPath + ": no directory " + dir.string());
  return dir;
}

}  // namespace s2z::bpf
