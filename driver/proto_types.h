// Short aliases for the generated Nomad protocol namespaces, used only in
// driver/ (nothing below the driver sees protobuf types).
#pragma once

#include "hashicorp/nomad/plugins/base/proto/base.grpc.pb.h"
#include "hashicorp/nomad/plugins/drivers/proto/driver.grpc.pb.h"
#include "hashicorp/nomad/plugins/shared/hclspec/hcl_spec.pb.h"
#include "hashicorp/nomad/plugins/shared/structs/proto/attribute.pb.h"

namespace s2z::driver {
namespace pb = ::hashicorp::nomad::plugins::drivers::proto;
namespace basepb = ::hashicorp::nomad::plugins::base::proto;
namespace structspb = ::hashicorp::nomad::plugins::shared::structs;
}  // namespace s2z::driver
