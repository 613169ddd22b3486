// Test helper: encodes a config the way the Nomad client does (protocol doc
// §3.3) from the driver's own hclspec schema: every schema key present, keys
// sorted, nil for absent values, Default literals filled in, smallest integer
// encodings. The user config is given as JSON (what HCL would hold).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "hashicorp/nomad/plugins/shared/hclspec/hcl_spec.pb.h"

namespace s2z::driver::test {

std::string encodeLikeNomad(const hashicorp::nomad::plugins::shared::hclspec::Spec& spec,
                            const nlohmann::json& user);

}  // namespace s2z::driver::test
