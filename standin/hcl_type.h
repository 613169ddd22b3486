// HCL type expressions as used in hclspec Attr/BlockAttrs ("string",
// "list(number)", "object({a = string})") and the conversion of a YAML value
// to such a type the way HCL converts JSON input before hcldec returns it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/result.h"
#include "standin/cty_value.h"

namespace s2z::standin {

struct HclType {
  enum class Kind { kString, kNumber, kBool, kAny, kList, kSet, kMap, kTuple, kObject };
  Kind kind = Kind::kAny;
  std::vector<HclType> elements;          // list/set/map: one; tuple: each
  std::map<std::string, HclType> attributes;  // object

  // Parses a type expression over string, number, bool, any, list(), set(),
  // map(), tuple([...]) and object({...}). Fails with kInvalidArgument.
  static Result<HclType> parse(const std::string& expression);
};

// Converts a YAML node to a value of `type` (e.g. "5" -> number 5, "true" ->
// bool, number -> string). `path` names the attribute in error messages.
// Fails with kInvalidArgument ("Incorrect attribute value type; ...").
Result<CtyValue> convertYaml(const YAML::Node& node, const HclType& type, const std::string& path);

// Infers a value the way the HCL JSON parser does for an `any` attribute:
// quoted scalars are strings, plain scalars null/bool/number when they look
// like one, sequences tuples, maps objects.
Result<CtyValue> inferYaml(const YAML::Node& node, const std::string& path);

}  // namespace s2z::standin
