#include "standin/cty_value.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <msgpack.hpp>

namespace s2z::standin {

namespace {

Error notANumber(const std::string& text) {
  return makeError(ErrorCode::kInvalidArgument, "a number is required, got \"" + text + "\"");
}

void normalize(Decimal& d) {
  size_t lead = d.digits.find_first_not_of('0');
  if (lead == std::string::npos) {
    d = Decimal{};
    return;
  }
  d.digits.erase(0, lead);
  size_t trail = d.digits.find_last_not_of('0');
  d.exponent += static_cast<int64_t>(d.digits.size() - 1 - trail);
  d.digits.erase(trail + 1);
}

void packValue(msgpack::packer<msgpack::sbuffer>& pk, const CtyValue& v);

void packNumber(msgpack::packer<msgpack::sbuffer>& pk, const Decimal& d) {
  // Same order of checks as go-cty: exact int64, exact float64, else text.
  int64_t i = 0;
  double f = 0;
  if (d.toInt64(&i)) {
    pk.pack_int64(i);
  } else if (d.toExactDouble(&f)) {
    pk.pack_double(f);
  } else {
    std::string text = d.fixedText();
    pk.pack_str(static_cast<uint32_t>(text.size()));
    pk.pack_str_body(text.data(), static_cast<uint32_t>(text.size()));
  }
}

void packValue(msgpack::packer<msgpack::sbuffer>& pk, const CtyValue& v) {
  switch (v.kind()) {
    case CtyValue::Kind::kNull: pk.pack_nil(); return;
    case CtyValue::Kind::kBool:
      if (v.boolValue()) pk.pack_true(); else pk.pack_false();
      return;
    case CtyValue::Kind::kNumber: packNumber(pk, v.numberValue()); return;
    case CtyValue::Kind::kString: {
      const std::string& s = v.stringValue();
      pk.pack_str(static_cast<uint32_t>(s.size()));
      pk.pack_str_body(s.data(), static_cast<uint32_t>(s.size()));
      return;
    }
    case CtyValue::Kind::kList:
      pk.pack_array(static_cast<uint32_t>(v.items().size()));
      for (const auto& item : v.items()) packValue(pk, item);
      return;
    case CtyValue::Kind::kMap:
      pk.pack_map(static_cast<uint32_t>(v.fields().size()));
      for (const auto& [key, item] : v.fields()) {
        pk.pack_str(static_cast<uint32_t>(key.size()));
        pk.pack_str_body(key.data(), static_cast<uint32_t>(key.size()));
        packValue(pk, item);
      }
      return;
  }
}

}  // namespace

Result<Decimal> Decimal::parse(const std::string& input) {
  std::string text = input;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  size_t pos = text.find_first_not_of(" \t\n");
  if (pos == std::string::npos) return notANumber(input);
  Decimal d;
  if (text[pos] == '-' || text[pos] == '+') {
    d.negative = text[pos] == '-';
    ++pos;
  }
  bool sawDigit = false;
  bool sawPoint = false;
  for (; pos < text.size(); ++pos) {
    char c = text[pos];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      d.digits.push_back(c);
      if (sawPoint) --d.exponent;
      sawDigit = true;
    } else if (c == '.' && !sawPoint) {
      sawPoint = true;
    } else {
      break;
    }
  }
  if (!sawDigit) return notANumber(input);
  if (pos < text.size()) {
    if (text[pos] != 'e' && text[pos] != 'E') return notANumber(input);
    ++pos;
    bool expNegative = false;
    if (pos < text.size() && (text[pos] == '-' || text[pos] == '+')) {
      expNegative = text[pos] == '-';
      ++pos;
    }
    if (pos >= text.size()) return notANumber(input);
    int64_t exp = 0;
    for (; pos < text.size(); ++pos) {
      if (!std::isdigit(static_cast<unsigned char>(text[pos]))) return notANumber(input);
      if (exp < 1000000) exp = exp * 10 + (text[pos] - '0');
    }
    d.exponent += expNegative ? -exp : exp;
  }
  normalize(d);
  return d;
}

bool Decimal::toInt64(int64_t* out) const {
  if (digits.empty()) {
    *out = 0;
    return true;
  }
  if (exponent < 0 || static_cast<int64_t>(digits.size()) + exponent > 19) return false;
  std::string full = digits + std::string(static_cast<size_t>(exponent), '0');
  // 19 digits may still overflow; compare against the int64 limits as text.
  const std::string limit = negative ? "9223372036854775808" : "9223372036854775807";
  if (full.size() == 19 && full > limit) return false;
  unsigned long long magnitude = std::strtoull(full.c_str(), nullptr, 10);
  if (negative) {
    *out = magnitude == 9223372036854775808ULL ? std::numeric_limits<int64_t>::min()
                                                : -static_cast<int64_t>(magnitude);
  } else {
    *out = static_cast<int64_t>(magnitude);
  }
  return true;
}

bool Decimal::toExactDouble(double* out) const {
  std::string text = (negative ? "-" : "") + (digits.empty() ? "0" : digits) + "e" +
                     std::to_string(exponent);
  double f = std::strtod(text.c_str(), nullptr);
  if (!std::isfinite(f)) return false;
  // Every double has a finite decimal expansion; print it in full and compare.
  char buf[1200];
  std::snprintf(buf, sizeof buf, "%.1074e", f);
  auto back = Decimal::parse(buf);
  if (!back.ok() || !(*back == *this)) return false;
  *out = f;
  return true;
}

std::string Decimal::fixedText() const {
  if (digits.empty()) return "0";
  std::string out = negative ? "-" : "";
  if (exponent >= 0) return out + digits + std::string(static_cast<size_t>(exponent), '0');
  int64_t intDigits = static_cast<int64_t>(digits.size()) + exponent;
  if (intDigits > 0) {
    return out + digits.substr(0, static_cast<size_t>(intDigits)) + "." +
           digits.substr(static_cast<size_t>(intDigits));
  }
  return out + "0." + std::string(static_cast<size_t>(-intDigits), '0') + digits;
}

CtyValue CtyValue::boolean(bool b) {
  CtyValue v;
  v.kind_ = Kind::kBool;
  v.bool_ = b;
  return v;
}

CtyValue CtyValue::number(Decimal d) {
  CtyValue v;
  v.kind_ = Kind::kNumber;
  v.number_ = std::move(d);
  return v;
}

CtyValue CtyValue::string(std::string s) {
  CtyValue v;
  v.kind_ = Kind::kString;
  v.string_ = std::move(s);
  return v;
}

CtyValue CtyValue::list(std::vector<CtyValue> items) {
  CtyValue v;
  v.kind_ = Kind::kList;
  v.items_ = std::move(items);
  return v;
}

CtyValue CtyValue::map(std::map<std::string, CtyValue> fields) {
  CtyValue v;
  v.kind_ = Kind::kMap;
  v.fields_ = std::move(fields);
  return v;
}

std::string CtyValue::toMsgpack() const {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  packValue(pk, *this);
  return std::string(buffer.data(), buffer.size());
}

}  // namespace s2z::standin
