// A small model of the go-cty values Nomad produces when it decodes an HCL
// config against a plugin's hclspec, and their msgpack encoding exactly as
// go-cty's msgpack marshaller writes them (docs/nomad-plugin-protocol.md §3.3).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace s2z::standin {

// An arbitrary-precision decimal number kept as text digits, so that the
// int / float64 / decimal-string choice go-cty makes can be reproduced.
// value = (negative ? -1 : 1) * digits * 10^exponent; digits has no leading
// or trailing zeros ("" means zero).
struct Decimal {
  bool negative = false;
  std::string digits;
  int64_t exponent = 0;

  // Parses a decimal literal ("5", "-1.25", "1e3", "0.10"). Fails with
  // kInvalidArgument on anything else (HCL: "a number is required").
  static Result<Decimal> parse(const std::string& text);

  bool isIntegral() const { return digits.empty() || exponent >= 0; }
  // True and sets *out if the value is integral and fits in int64.
  bool toInt64(int64_t* out) const;
  // True and sets *out if the value is exactly one float64.
  bool toExactDouble(double* out) const;
  // Fixed-point text with the minimal digits (go big.Float Text('f', -1)).
  std::string fixedText() const;

  bool operator==(const Decimal&) const = default;
};

class CtyValue {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kList, kMap };

  CtyValue() = default;
  static CtyValue null() { return CtyValue(); }
  static CtyValue boolean(bool b);
  static CtyValue number(Decimal d);
  static CtyValue string(std::string s);
  // list, set and tuple values all encode as msgpack arrays.
  static CtyValue list(std::vector<CtyValue> items);
  // map and object values both encode as msgpack maps with sorted keys.
  static CtyValue map(std::map<std::string, CtyValue> fields);

  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::kNull; }
  bool boolValue() const { return bool_; }
  const Decimal& numberValue() const { return number_; }
  const std::string& stringValue() const { return string_; }
  const std::vector<CtyValue>& items() const { return items_; }
  const std::map<std::string, CtyValue>& fields() const { return fields_; }

  // Encodes like go-cty msgpack.Marshal with the value's own type: nil,
  // bools, smallest-width ints, float64, decimal strings for numbers that are
  // neither, arrays, and maps with keys in byte-wise ascending order.
  std::string toMsgpack() const;

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  Decimal number_;
  std::string string_;
  std::vector<CtyValue> items_;
  std::map<std::string, CtyValue> fields_;  // std::string compares byte-wise
};

}  // namespace s2z::standin
