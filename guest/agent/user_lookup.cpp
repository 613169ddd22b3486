#include "guest/agent/user_lookup.h"

#include <algorithm>
#include <cstdlib>
#include <optional>

#include "guest/agent/file_io.h"

namespace s2z::guest {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) return out;
    start = pos + 1;
  }
}

std::optional<unsigned long> parseId(const std::string& s) {
  if (s.empty() || s.size() > 10 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  unsigned long v = std::strtoul(s.c_str(), nullptr, 10);
  if (v > 0xfffffffeUL) return std::nullopt;
  return v;
}

// Lines of a colon file with at least `fields` fields; comments skipped.
std::vector<std::vector<std::string>> records(const std::string& path, size_t fields) {
  std::vector<std::vector<std::string>> out;
  auto text = readFile(path);
  if (!text.ok()) return out;
  for (const auto& line : split(*text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, ':');
    if (f.size() >= fields) out.push_back(std::move(f));
  }
  return out;
}

// passwd: name:pw:uid:gid:gecos:home:shell
std::optional<Credentials> findPasswd(const std::string& rootDir, const std::string* name, const uid_t* uid) {
  for (const auto& f : records(rootDir + "/etc/passwd", 7)) {
    auto u = parseId(f[2]);
    auto g = parseId(f[3]);
    if (!u || !g) continue;
    if ((name && f[0] == *name) || (uid && *u == *uid)) {
      Credentials c;
      c.uid = static_cast<uid_t>(*u);
      c.gid = static_cast<gid_t>(*g);
      c.name = f[0];
      c.home = f[5];
      return c;
    }
  }
  return std::nullopt;
}

// group: name:pw:gid:member,member
std::vector<gid_t> supplementaryGroups(const std::string& rootDir, const std::string& user, gid_t primary) {
  std::vector<gid_t> out{primary};
  if (user.empty()) return out;
  for (const auto& f : records(rootDir + "/etc/group", 4)) {
    auto g = parseId(f[2]);
    if (!g) continue;
    for (const auto& member : split(f[3], ',')) {
      if (member == user && std::find(out.begin(), out.end(), *g) == out.end()) {
        out.push_back(static_cast<gid_t>(*g));
      }
    }
  }
  return out;
}

}  // namespace

Result<Credentials> lookupUser(const std::string& rootDir, const std::string& user) {
  std::string spec = user.empty() ? "0" : user;
  auto parts = split(spec, ':');
  auto uid = parseId(parts[0]);
  if (uid && parts.size() <= 2) {  // numeric: taken as is
    std::optional<unsigned long> gid;
    if (parts.size() == 2) {
      gid = parseId(parts[1]);
      if (!gid) return makeError(ErrorCode::kInvalidArgument, "bad user \"" + user + "\": gid is not a number");
    }
    uid_t u = static_cast<uid_t>(*uid);
    Credentials c;
    if (auto known = findPasswd(rootDir, nullptr, &u)) c = *known;
    c.uid = u;
    if (gid) {
      c.gid = static_cast<gid_t>(*gid);
    } else if (c.name.empty()) {
      c.gid = 0;  // like docker: a uid without a passwd entry gets group 0
    }
    c.groups = supplementaryGroups(rootDir, c.name, c.gid);
    if (c.home.empty()) c.home = "/";
    return c;
  }
  if (parts.size() != 1) {
    return makeError(ErrorCode::kInvalidArgument, "bad user \"" + user + "\": expected a name, uid or uid:gid");
  }
  auto known = findPasswd(rootDir, &spec, nullptr);
  if (!known) {
    return makeError(ErrorCode::kNotFound, "unknown user \"" + user + "\": not in the root filesystem's /etc/passwd");
  }
  known->groups = supplementaryGroups(rootDir, known->name, known->gid);
  if (known->home.empty()) known->home = "/";
  return *known;
}

}  // namespace s2z::guest
