#include "standin/spec_encoder.h"

#include <set>

#include "standin/hcl_literal.h"
#include "standin/hcl_type.h"

namespace s2z::standin {

namespace {

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

std::string nameOr(const std::string& name, const std::string& implied) {
  return name.empty() ? implied : name;
}

// Collects the argument and block names a spec reads from one body (what
// hcldec turns into the body schema); `implied` is the Object key, if any.
void collectNames(const hclspec::Spec& spec, const std::string& implied,
                  std::set<std::string>& names) {
  switch (spec.block_case()) {
    case hclspec::Spec::kObject:
      for (const auto& [key, child] : spec.object().attributes()) collectNames(child, key, names);
      break;
    case hclspec::Spec::kArray:
      for (const auto& child : spec.array().values()) collectNames(child, "", names);
      break;
    case hclspec::Spec::kAttr: names.insert(nameOr(spec.attr().name(), implied)); break;
    case hclspec::Spec::kBlockValue: names.insert(nameOr(spec.block_value().name(), implied)); break;
    case hclspec::Spec::kBlockAttrs: names.insert(nameOr(spec.block_attrs().name(), implied)); break;
    case hclspec::Spec::kBlockList: names.insert(nameOr(spec.block_list().name(), implied)); break;
    case hclspec::Spec::kBlockSet: names.insert(nameOr(spec.block_set().name(), implied)); break;
    case hclspec::Spec::kBlockMap: names.insert(nameOr(spec.block_map().name(), implied)); break;
    case hclspec::Spec::kDefault:
      // Default children get no implied name (hclspecutils), as in Nomad.
      collectNames(spec.default_().primary(), "", names);
      collectNames(spec.default_().default_(), "", names);
      break;
    case hclspec::Spec::kLiteral:
    case hclspec::Spec::BLOCK_NOT_SET:
      break;
  }
}

class BodyDecoder {
 public:
  // `path` prefixes names in error messages ("config.scale_to_zero").
  Result<CtyValue> decodeBlockBody(const hclspec::Spec& spec, const YAML::Node& body,
                                   const std::string& path) {
    if (body.IsDefined() && !body.IsNull() && !body.IsMap()) {
      return invalid("Unsupported block body for \"" + path + "\": a map of arguments is required");
    }
    std::set<std::string> names;
    collectNames(spec, "", names);
    if (body.IsMap()) {
      for (const auto& kv : body) {
        std::string key = kv.first.as<std::string>();
        if (!names.count(key)) {
          return invalid("Unsupported argument; An argument named \"" + key +
                         "\" is not expected here" + (path.empty() ? "" : " (in " + path + ")") +
                         ".");
        }
      }
    }
    return eval(spec, body, "", path);
  }

 private:
  static YAML::Node child(const YAML::Node& body, const std::string& name) {
    if (!body.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    return body[name];
  }
  static bool absent(const YAML::Node& n) { return !n.IsDefined() || n.IsNull(); }
  static std::string join(const std::string& path, const std::string& name) {
    return path.empty() ? name : path + "." + name;
  }

  Result<CtyValue> eval(const hclspec::Spec& spec, const YAML::Node& body,
                        const std::string& implied, const std::string& path) {
    switch (spec.block_case()) {
      case hclspec::Spec::kObject: {
        std::map<std::string, CtyValue> fields;
        for (const auto& [key, childSpec] : spec.object().attributes()) {
          auto v = eval(childSpec, body, key, path);
          if (!v.ok()) return v;
          fields.emplace(key, std::move(*v));
        }
        return CtyValue::map(std::move(fields));
      }
      case hclspec::Spec::kArray: {
        std::vector<CtyValue> items;
        for (const auto& childSpec : spec.array().values()) {
          auto v = eval(childSpec, body, "", path);
          if (!v.ok()) return v;
          items.push_back(std::move(*v));
        }
        return CtyValue::list(std::move(items));
      }
      case hclspec::Spec::kAttr: return evalAttr(spec.attr(), body, implied, path);
      case hclspec::Spec::kBlockValue: return evalBlock(spec.block_value(), body, implied, path);
      case hclspec::Spec::kBlockAttrs: return evalBlockAttrs(spec.block_attrs(), body, implied, path);
      case hclspec::Spec::kBlockList:
        return evalBlockList(spec.block_list().name(), spec.block_list().min_items(),
                             spec.block_list().max_items(), spec.block_list().nested(), body,
                             implied, path);
      case hclspec::Spec::kBlockSet:
        return evalBlockList(spec.block_set().name(), spec.block_set().min_items(),
                             spec.block_set().max_items(), spec.block_set().nested(), body,
                             implied, path);
      case hclspec::Spec::kBlockMap: return evalBlockMap(spec.block_map(), body, implied, path);
      case hclspec::Spec::kDefault: {
        auto primary = eval(spec.default_().primary(), body, "", path);
        if (!primary.ok() || !primary->isNull()) return primary;
        return eval(spec.default_().default_(), body, "", path);
      }
      case hclspec::Spec::kLiteral: return evalHclLiteral(spec.literal().value());
      case hclspec::Spec::BLOCK_NOT_SET: return CtyValue::null();
    }
    return CtyValue::null();
  }

  Result<CtyValue> evalAttr(const hclspec::Attr& attr, const YAML::Node& body,
                            const std::string& implied, const std::string& path) {
    std::string name = nameOr(attr.name(), implied);
    YAML::Node node = child(body, name);
    if (absent(node)) {
      if (attr.required()) {
        return invalid("Missing required argument; The argument \"" + join(path, name) +
                       "\" is required, but no definition was found.");
      }
      return CtyValue::null();
    }
    auto type = HclType::parse(attr.type().empty() ? "any" : attr.type());
    if (!type.ok()) return type.error().wrap("attribute \"" + join(path, name) + "\"");
    return convertYaml(node, *type, join(path, name));
  }

  Result<CtyValue> evalBlock(const hclspec::Block& block, const YAML::Node& body,
                             const std::string& implied, const std::string& path) {
    std::string name = nameOr(block.name(), implied);
    YAML::Node node = child(body, name);
    if (absent(node)) {
      if (block.required()) {
        return invalid("Missing " + name + " block; A block of type \"" + name +
                       "\" is required here.");
      }
      return CtyValue::null();
    }
    if (node.IsSequence()) {
      if (node.size() != 1) return invalid("Duplicate " + name + " block; only one is allowed.");
      node = node[0];
    }
    if (!block.has_nested()) return CtyValue::map({});
    return decodeBlockBody(block.nested(), node, join(path, name));
  }

  Result<CtyValue> evalBlockAttrs(const hclspec::BlockAttrs& spec, const YAML::Node& body,
                                  const std::string& implied, const std::string& path) {
    std::string name = nameOr(spec.name(), implied);
    YAML::Node node = child(body, name);
    if (absent(node)) {
      if (spec.required()) {
        return invalid("Missing " + name + " block; A block of type \"" + name +
                       "\" is required here.");
      }
      return CtyValue::null();
    }
    auto elem = HclType::parse(spec.type().empty() ? "any" : spec.type());
    if (!elem.ok()) return elem.error().wrap("block \"" + join(path, name) + "\"");
    HclType mapType;
    mapType.kind = HclType::Kind::kMap;
    mapType.elements.push_back(std::move(*elem));
    return convertYaml(node, mapType, join(path, name));
  }

  Result<CtyValue> evalBlockList(const std::string& specName, uint64_t minItems, uint64_t maxItems,
                                 const hclspec::Spec& nested, const YAML::Node& body,
                                 const std::string& implied, const std::string& path) {
    std::string name = nameOr(specName, implied);
    YAML::Node node = child(body, name);
    std::vector<YAML::Node> blocks;
    if (!absent(node)) {
      if (node.IsSequence()) {
        for (const auto& b : node) blocks.push_back(b);
      } else {
        blocks.push_back(node);
      }
    }
    if (blocks.size() < minItems) {
      return invalid("Insufficient " + name + " blocks; At least " + std::to_string(minItems) +
                     " \"" + name + "\" blocks are required.");
    }
    if (maxItems > 0 && blocks.size() > maxItems) {
      return invalid("Too many " + name + " blocks; No more than " + std::to_string(maxItems) +
                     " \"" + name + "\" blocks are allowed.");
    }
    std::vector<CtyValue> items;
    for (size_t i = 0; i < blocks.size(); ++i) {
      auto v = decodeBlockBody(nested, blocks[i], join(path, name) + "[" + std::to_string(i) + "]");
      if (!v.ok()) return v;
      items.push_back(std::move(*v));
    }
    return CtyValue::list(std::move(items));
  }

  Result<CtyValue> evalLabels(const hclspec::BlockMap& spec, const YAML::Node& node, int level,
                              const std::string& path) {
    if (!node.IsMap()) {
      return invalid("Missing label for \"" + path + "\"; a map keyed by " +
                     spec.labels(level) + " is required.");
    }
    std::map<std::string, CtyValue> fields;
    for (const auto& kv : node) {
      std::string label = kv.first.as<std::string>();
      std::string childPath = path + "." + label;
      auto v = level + 1 < spec.labels_size() ? evalLabels(spec, kv.second, level + 1, childPath)
                                              : decodeBlockBody(spec.nested(), kv.second, childPath);
      if (!v.ok()) return v;
      fields.emplace(label, std::move(*v));
    }
    return CtyValue::map(std::move(fields));
  }

  Result<CtyValue> evalBlockMap(const hclspec::BlockMap& spec, const YAML::Node& body,
                                const std::string& implied, const std::string& path) {
    std::string name = nameOr(spec.name(), implied);
    if (spec.labels_size() == 0) return invalid("block map \"" + name + "\" declares no labels");
    YAML::Node node = child(body, name);
    if (absent(node)) return CtyValue::map({});
    return evalLabels(spec, node, 0, join(path, name));
  }
};

}  // namespace

Result<CtyValue> decodeBody(const hclspec::Spec& spec, const YAML::Node& body) {
  return BodyDecoder().decodeBlockBody(spec, body, "");
}

Result<std::string> encodeWithSpec(const hclspec::Spec& spec, const YAML::Node& body) {
  auto value = decodeBody(spec, body);
  if (!value.ok()) return value.error();
  return value->toMsgpack();
}

Result<std::string> encodeRaw(const YAML::Node& body) {
  auto value = inferYaml(body, "");
  if (!value.ok()) return value.error();
  return value->toMsgpack();
}

}  // namespace s2z::standin
