// proto/ must match upstream Nomad name for name, not only on the wire:
// generated code in Go and here is addressed by these names.
#include <doctest/doctest.h>

#include "hashicorp/nomad/plugins/base/proto/base.pb.h"

namespace base = hashicorp::nomad::plugins::base::proto;

TEST_CASE("CoreGrade is a top-level enum of hashicorp.nomad.plugins.base.proto, as in Nomad 1.10") {
  const auto* grade = base::CoreGrade_descriptor();
  CHECK(grade->full_name() == "hashicorp.nomad.plugins.base.proto.CoreGrade");
  CHECK(grade->containing_type() == nullptr);
  CHECK(grade->FindValueByName("Performance")->number() == 0);
  CHECK(grade->FindValueByName("Efficiency")->number() == 1);
  const auto* field = base::ClientTopologyCore::descriptor()->FindFieldByName("core_grade");
  REQUIRE(field != nullptr);
  CHECK(field->number() == 4);
  CHECK(field->enum_type() == grade);
  // Same bytes as before the move: field 4, varint 1.
  base::ClientTopologyCore core;
  core.set_core_grade(base::Efficiency);
  CHECK(core.SerializeAsString() == std::string("\x20\x01", 2));
}
