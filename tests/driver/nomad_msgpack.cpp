#include "tests/driver/nomad_msgpack.h"

#include <msgpack.hpp>

#include <map>
#include <stdexcept>

namespace s2z::driver::test {
namespace {

namespace hclspec = hashicorp::nomad::plugins::shared::hclspec;
using Packer = msgpack::packer<msgpack::sbuffer>;

void packJson(Packer& pk, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: pk.pack_nil(); break;
    case nlohmann::json::value_t::boolean: v.get<bool>() ? pk.pack_true() : pk.pack_false(); break;
    case nlohmann::json::value_t::number_integer: pk.pack(v.get<int64_t>()); break;
    case nlohmann::json::value_t::number_unsigned: pk.pack(v.get<uint64_t>()); break;
    case nlohmann::json::value_t::number_float: pk.pack_double(v.get<double>()); break;
    case nlohmann::json::value_t::string: pk.pack(v.get<std::string>()); break;
    case nlohmann::json::value_t::array:
      pk.pack_array(static_cast<uint32_t>(v.size()));
      for (const auto& item : v) packJson(pk, item);
      break;
    case nlohmann::json::value_t::object: {
      std::map<std::string, nlohmann::json> sorted;
      for (const auto& [k, item] : v.items()) sorted[k] = item;
      pk.pack_map(static_cast<uint32_t>(sorted.size()));
      for (const auto& [k, item] : sorted) {
        pk.pack(k);
        packJson(pk, item);
      }
      break;
    }
    default: throw std::runtime_error("unsupported json value");
  }
}

void packSpec(Packer& pk, const hclspec::Spec& spec, const nlohmann::json* user);

void packObject(Packer& pk, const hclspec::Object& object, const nlohmann::json* user) {
  // Byte-wise sorted keys, like go-cty.
  std::map<std::string, const hclspec::Spec*> keys;
  for (const auto& [name, child] : object.attributes()) keys[name] = &child;
  if (user != nullptr && user->is_object()) {
    for (const auto& [k, v] : user->items()) {
      if (!keys.count(k)) throw std::runtime_error("HCL would reject unknown key " + k);
    }
  }
  pk.pack_map(static_cast<uint32_t>(keys.size()));
  for (const auto& [name, child] : keys) {
    pk.pack(name);
    const nlohmann::json* value = nullptr;
    if (user != nullptr && user->is_object() && user->contains(name)) value = &(*user)[name];
    packSpec(pk, *child, value);
  }
}

void packSpec(Packer& pk, const hclspec::Spec& spec, const nlohmann::json* user) {
  switch (spec.block_case()) {
    case hclspec::Spec::kObject: packObject(pk, spec.object(), user); break;
    case hclspec::Spec::kAttr:
      if (user == nullptr) pk.pack_nil();
      else packJson(pk, *user);
      break;
    case hclspec::Spec::kBlockValue:
      if (user == nullptr) pk.pack_nil();
      else packSpec(pk, spec.block_value().nested(), user);
      break;
    case hclspec::Spec::kDefault:
      if (user != nullptr) packSpec(pk, spec.default_().primary(), user);
      else packSpec(pk, spec.default_().default_(), nullptr);
      break;
    case hclspec::Spec::kLiteral:
      packJson(pk, nlohmann::json::parse(spec.literal().value()));
      break;
    default: throw std::runtime_error("spec kind not supported by the test encoder");
  }
}

}  // namespace

std::string encodeLikeNomad(const hclspec::Spec& spec, const nlohmann::json& user) {
  msgpack::sbuffer buffer;
  Packer pk(buffer);
  packSpec(pk, spec, &user);
  return std::string(buffer.data(), buffer.size());
}

}  // namespace s2z::driver::test
