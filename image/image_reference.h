// Nomad's `image` values as skopeo transports, with docker's naming rules:
//   registry.example.com/team/app:1.2   -> docker://registry.example.com/team/app:1.2
//   app:1.2, team/app                   -> docker://docker.io/library/app:1.2,
//                                          docker://docker.io/team/app:latest
//   repo@sha256:<64 hex>                -> by digest
//   oci-archive:PATH, docker-archive:PATH, oci:DIR[:tag]  (local, as is)
// A first component with a '.' or ':' or "localhost" is a registry host.
#pragma once

#include <string>

#include "common/result.h"

namespace s2z::image {

// kInvalidArgument naming what is wrong ("image \"a b\": ...").
Result<std::string> skopeoReference(const std::string& image);

// True for the local transports (no registry, no credentials).
bool isLocalReference(const std::string& skopeoRef);

// The registry host[:port] of a docker:// reference (skopeoReference's
// output); empty for a local one.
std::string registryHost(const std::string& skopeoRef);

}  // namespace s2z::image
