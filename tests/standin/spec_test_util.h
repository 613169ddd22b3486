// Small builders for hclspec.Spec messages used by the stand-in tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "standin/spec_encoder.h"

namespace s2z::standin::testutil {

inline hclspec::Spec attr(const std::string& type, bool required = false,
                          const std::string& name = "") {
  hclspec::Spec s;
  s.mutable_attr()->set_type(type);
  s.mutable_attr()->set_required(required);
  s.mutable_attr()->set_name(name);
  return s;
}

inline hclspec::Spec object(std::vector<std::pair<std::string, hclspec::Spec>> children) {
  hclspec::Spec s;
  auto* attrs = s.mutable_object()->mutable_attributes();
  for (auto& [k, v] : children) (*attrs)[k] = v;
  return s;
}

inline hclspec::Spec block(const hclspec::Spec& nested, bool required = false) {
  hclspec::Spec s;
  s.mutable_block_value()->set_required(required);
  *s.mutable_block_value()->mutable_nested() = nested;
  return s;
}

inline hclspec::Spec blockList(const hclspec::Spec& nested, uint64_t minItems = 0) {
  hclspec::Spec s;
  s.mutable_block_list()->set_min_items(minItems);
  *s.mutable_block_list()->mutable_nested() = nested;
  return s;
}

inline hclspec::Spec blockMap(const hclspec::Spec& nested, std::vector<std::string> labels) {
  hclspec::Spec s;
  for (auto& l : labels) s.mutable_block_map()->add_labels(l);
  *s.mutable_block_map()->mutable_nested() = nested;
  return s;
}

inline hclspec::Spec blockAttrs(const std::string& type) {
  hclspec::Spec s;
  s.mutable_block_attrs()->set_type(type);
  return s;
}

inline hclspec::Spec literal(const std::string& expr) {
  hclspec::Spec s;
  s.mutable_literal()->set_value(expr);
  return s;
}

inline hclspec::Spec withDefault(const hclspec::Spec& primary, const hclspec::Spec& dflt) {
  hclspec::Spec s;
  *s.mutable_default_()->mutable_primary() = primary;
  *s.mutable_default_()->mutable_default_() = dflt;
  return s;
}

inline std::string bytes(std::initializer_list<int> b) {
  std::string out;
  for (int x : b) out.push_back(static_cast<char>(x));
  return out;
}

inline std::string str(const std::string& s) {
  return std::string(1, static_cast<char>(0xa0 | s.size())) + s;
}

}  // namespace s2z::standin::testutil
