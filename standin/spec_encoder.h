// Encodes a YAML config body the way the Nomad client encodes an agent
// `plugin { config {} }` block or a job's `task.config {}`: decoded against the
// plugin's hclspec (hcldec semantics), then msgpack-encoded by go-cty
// (docs/nomad-plugin-protocol.md §3.3).
#pragma once

#include <string>

#include <yaml-cpp/yaml.h>

#include "common/result.h"
#include "hashicorp/nomad/plugins/shared/hclspec/hcl_spec.pb.h"
#include "standin/cty_value.h"

namespace s2z::standin {

namespace hclspec = hashicorp::nomad::plugins::shared::hclspec;

// Decodes `body` (a YAML map, or null/undefined for an empty body) against
// `spec`: every attribute declared in the spec is present in the result
// (absent Attr/Block/BlockAttrs -> null, BlockList/BlockSet -> empty list,
// BlockMap -> empty map, Default -> its default), values are converted to the
// declared types. Fails with kInvalidArgument like the client does: unknown
// keys ("Unsupported argument"), missing required attributes or blocks
// ("Missing required argument"), wrong types ("Incorrect attribute value type").
Result<CtyValue> decodeBody(const hclspec::Spec& spec, const YAML::Node& body);

// decodeBody + msgpack: the bytes the client sends in msgpack_config /
// msgpack_driver_config.
Result<std::string> encodeWithSpec(const hclspec::Spec& spec, const YAML::Node& body);

// Encodes a YAML value as-is, without any schema (map keys sorted, plain
// scalars inferred as null/bool/number, quoted ones kept as strings). For
// tests that must hand malformed configs straight to a plugin.
Result<std::string> encodeRaw(const YAML::Node& body);

}  // namespace s2z::standin
