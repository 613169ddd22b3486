// The documented shapes of Cloud Hypervisor API request bodies (OpenAPI
// cloud-hypervisor.yaml plus the Rust RestoreConfig for net_fds; see
// vmm/cloud_hypervisor/API_FACTS.md), as the stand-in checks them: required
// fields present, no field the API does not know, every field of its type.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "vmm/cloud_hypervisor/ch_version.h"

namespace s2z::tests::ch {

// One endpoint: method and, if it takes one, the schema of its body.
struct EndpointSpec {
  std::string_view endpoint;   // "vm.create"
  std::string_view method;     // "PUT" / "GET"
  std::string_view bodySchema; // "" when the endpoint takes no body
};

// nullptr for an endpoint the API does not have.
const EndpointSpec* findEndpoint(std::string_view endpoint);

// Checks body against schema as the given version defines it (net_fds on
// restore from v40; memory_restore_mode and resume from v52).
// kInvalidArgument naming the first offending field path.
Result<void> validateBody(std::string_view schema, const nlohmann::json& body,
                          const vmm::ch::ChVersion& version);

}  // namespace s2z::tests::ch
