#include "standin/hcl_type.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace s2z::standin {

namespace {

Error typeError(const std::string& path, const std::string& what) {
  return makeError(ErrorCode::kInvalidArgument,
                   "Incorrect attribute value type; Inappropriate value for attribute \"" + path +
                       "\": " + what + ".");
}

// Recursive-descent parser over the type expression text.
class TypeParser {
 public:
  explicit TypeParser(const std::string& text) : text_(text) {}

  Result<HclType> parseAll() {
    auto type = parseType();
    if (!type.ok()) return type;
    skipSpace();
    if (pos_ != text_.size()) return fail("unexpected text after type");
    return type;
  }

 private:
  Error fail(const std::string& why) const {
    return makeError(ErrorCode::kInvalidArgument,
                     "invalid type expression \"" + text_ + "\": " + why);
  }
  void skipSpace() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool consume(char c) {
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  std::string identifier() {
    skipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_' ||
            text_[pos_] == '-')) {
      ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  Result<HclType> parseType() {
    std::string name = identifier();
    HclType t;
    if (name == "string") { t.kind = HclType::Kind::kString; return t; }
    if (name == "number") { t.kind = HclType::Kind::kNumber; return t; }
    if (name == "bool") { t.kind = HclType::Kind::kBool; return t; }
    if (name == "any") { t.kind = HclType::Kind::kAny; return t; }
    if (!consume('(')) return fail("unknown type \"" + name + "\"");
    if (name == "list" || name == "set" || name == "map") {
      t.kind = name == "list" ? HclType::Kind::kList
               : name == "set" ? HclType::Kind::kSet : HclType::Kind::kMap;
      auto elem = parseType();
      if (!elem.ok()) return elem;
      t.elements.push_back(std::move(*elem));
    } else if (name == "tuple") {
      t.kind = HclType::Kind::kTuple;
      if (!consume('[')) return fail("tuple needs a list of types");
      while (!consume(']')) {
        auto elem = parseType();
        if (!elem.ok()) return elem;
        t.elements.push_back(std::move(*elem));
        consume(',');
      }
    } else if (name == "object") {
      t.kind = HclType::Kind::kObject;
      if (!consume('{')) return fail("object needs a map of attribute types");
      while (!consume('}')) {
        std::string attr = identifier();
        if (attr.empty()) return fail("attribute name expected");
        if (!consume('=') && !consume(':')) return fail("'=' expected after " + attr);
        auto elem = parseType();
        if (!elem.ok()) return elem;
        t.attributes.emplace(attr, std::move(*elem));
        consume(',');
      }
    } else {
      return fail("unknown type constructor \"" + name + "\"");
    }
    if (!consume(')')) return fail("')' expected");
    return t;
  }

  const std::string& text_;
  size_t pos_ = 0;
};

bool isQuoted(const YAML::Node& node) { return node.Tag() == "!"; }

bool isYamlNull(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return true;
  if (!node.IsScalar() || isQuoted(node)) return false;
  const std::string& s = node.Scalar();
  return s == "~" || s == "null" || s == "Null" || s == "NULL";
}

Result<CtyValue> scalarToString(const YAML::Node& node) {
  // A plain YAML number arrives from JSON as a number; HCL prints it
  // canonically when converting to string ("5.0" -> "5").
  if (!isQuoted(node)) {
    auto number = Decimal::parse(node.Scalar());
    if (number.ok()) return CtyValue::string(number->fixedText());
  }
  return CtyValue::string(node.Scalar());
}

Result<CtyValue> convertCollection(const YAML::Node& node, const HclType& type,
                                   const std::string& path) {
  std::vector<CtyValue> items;
  if (!node.IsSequence()) {
    return typeError(path, type.kind == HclType::Kind::kTuple ? "tuple required" : "list of " +
                                                                   std::string("values required"));
  }
  if (type.kind == HclType::Kind::kTuple && node.size() != type.elements.size()) {
    return typeError(path, "tuple required with " + std::to_string(type.elements.size()) +
                               " elements");
  }
  for (size_t i = 0; i < node.size(); ++i) {
    const HclType& elemType =
        type.kind == HclType::Kind::kTuple ? type.elements[i] : type.elements.front();
    auto item = convertYaml(node[i], elemType, path + "[" + std::to_string(i) + "]");
    if (!item.ok()) return item;
    items.push_back(std::move(*item));
  }
  if (type.kind == HclType::Kind::kSet) {
    // cty sets of primitives iterate in a stable sorted order without duplicates.
    std::sort(items.begin(), items.end(), [](const CtyValue& a, const CtyValue& b) {
      return a.toMsgpack() < b.toMsgpack();
    });
    items.erase(std::unique(items.begin(), items.end(),
                            [](const CtyValue& a, const CtyValue& b) {
                              return a.toMsgpack() == b.toMsgpack();
                            }),
                items.end());
  }
  return CtyValue::list(std::move(items));
}

Result<CtyValue> convertMapping(const YAML::Node& node, const HclType& type,
                                const std::string& path) {
  if (!node.IsMap()) {
    return typeError(path, type.kind == HclType::Kind::kObject ? "object required"
                                                               : "map of values required");
  }
  std::map<std::string, CtyValue> fields;
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    const HclType* elemType = nullptr;
    if (type.kind == HclType::Kind::kMap) {
      elemType = &type.elements.front();
    } else {
      auto it = type.attributes.find(key);
      if (it == type.attributes.end()) return typeError(path, "unsupported attribute \"" + key + "\"");
      elemType = &it->second;
    }
    auto item = convertYaml(kv.second, *elemType, path + "." + key);
    if (!item.ok()) return item;
    fields.emplace(key, std::move(*item));
  }
  if (type.kind == HclType::Kind::kObject) {
    for (const auto& [name, unused] : type.attributes) {
      if (!fields.count(name)) return typeError(path, "attribute \"" + name + "\" is required");
    }
  }
  return CtyValue::map(std::move(fields));
}

}  // namespace

Result<HclType> HclType::parse(const std::string& expression) {
  return TypeParser(expression).parseAll();
}

Result<CtyValue> convertYaml(const YAML::Node& node, const HclType& type, const std::string& path) {
  if (isYamlNull(node)) return CtyValue::null();
  switch (type.kind) {
    case HclType::Kind::kAny:
      return inferYaml(node, path);
    case HclType::Kind::kString:
      if (!node.IsScalar()) return typeError(path, "string required");
      return scalarToString(node);
    case HclType::Kind::kNumber: {
      if (!node.IsScalar()) return typeError(path, "number required");
      auto number = Decimal::parse(node.Scalar());
      if (!number.ok()) return typeError(path, "a number is required");
      return CtyValue::number(std::move(*number));
    }
    case HclType::Kind::kBool:
      if (node.IsScalar() && node.Scalar() == "true") return CtyValue::boolean(true);
      if (node.IsScalar() && node.Scalar() == "false") return CtyValue::boolean(false);
      return typeError(path, "a bool is required");
    case HclType::Kind::kList:
    case HclType::Kind::kSet:
    case HclType::Kind::kTuple:
      return convertCollection(node, type, path);
    case HclType::Kind::kMap:
    case HclType::Kind::kObject:
      return convertMapping(node, type, path);
  }
  return typeError(path, "unsupported type");
}

Result<CtyValue> inferYaml(const YAML::Node& node, const std::string& path) {
  if (isYamlNull(node)) return CtyValue::null();
  if (node.IsScalar()) {
    if (isQuoted(node)) return CtyValue::string(node.Scalar());
    const std::string& s = node.Scalar();
    if (s == "true") return CtyValue::boolean(true);
    if (s == "false") return CtyValue::boolean(false);
    auto number = Decimal::parse(s);
    if (number.ok()) return CtyValue::number(std::move(*number));
    return CtyValue::string(s);
  }
  if (node.IsSequence()) {
    std::vector<CtyValue> items;
    for (size_t i = 0; i < node.size(); ++i) {
      auto item = inferYaml(node[i], path + "[" + std::to_string(i) + "]");
      if (!item.ok()) return item;
      items.push_back(std::move(*item));
    }
    return CtyValue::list(std::move(items));
  }
  std::map<std::string, CtyValue> fields;
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    auto item = inferYaml(kv.second, path + "." + key);
    if (!item.ok()) return item;
    fields.emplace(key, std::move(*item));
  }
  return CtyValue::map(std::move(fields));
}

}  // namespace s2z::standin
