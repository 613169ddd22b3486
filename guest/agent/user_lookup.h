// Who the workload runs as, looked up in the task's root filesystem. A static
// binary cannot use glibc's NSS (getpwnam needs shared modules), and the
// files that count are the image's, not the initramfs's: so we parse
// <root>/etc/passwd and <root>/etc/group ourselves.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::guest {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary, from /etc/group
  std::string name;           // empty for a numeric user not in /etc/passwd
  std::string home;           // empty when unknown
};

// user: "" -> root (uid 0 with root's passwd entry when present); "name" ->
// /etc/passwd; "uid" or "uid:gid" numeric -> as is (home and groups from a
// passwd entry with that uid, if any). Unknown name -> kNotFound
// `unknown user "x": not in the root filesystem's /etc/passwd`.
Result<Credentials> lookupUser(const std::string& rootDir, const std::string& user);

}  // namespace s2z::guest
