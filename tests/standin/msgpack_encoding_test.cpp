// The stand-in must encode configs byte for byte as Nomad does (hcldec +
// go-cty msgpack), otherwise driver tests through it would prove nothing.
#include <doctest/doctest.h>

#include "spec_test_util.h"
#include "standin/cty_value.h"
#include "standin/hcl_literal.h"

using namespace s2z::standin;
using namespace s2z::standin::testutil;

namespace {

std::string encode(const hclspec::Spec& spec, const std::string& yaml) {
  auto r = encodeWithSpec(spec, YAML::Load(yaml));
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  return *r;
}

std::string encodeError(const hclspec::Spec& spec, const std::string& yaml) {
  auto r = encodeWithSpec(spec, YAML::Load(yaml));
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

std::string numberAttr(const std::string& yamlValue) {
  auto spec = object({{"n", attr("number")}});
  std::string full = encode(spec, "n: " + yamlValue);
  // fixmap(1) "n" <value>
  REQUIRE(full.substr(0, 3) == bytes({0x81, 0xa1, 'n'}));
  return full.substr(3);
}

}  // namespace

TEST_CASE("protocol doc example: absent block is nil, default literal applies, keys sorted") {
  auto spec = object({
      {"image_dir", attr("string")},
      {"vcpus", withDefault(attr("number", false, "vcpus"), literal("1"))},
      {"gc", block(object({{"enabled", attr("bool")}}))},
  });
  std::string expected = bytes({0x83}) + str("gc") + bytes({0xc0}) + str("image_dir") + str("/v") +
                         str("vcpus") + bytes({0x01});
  CHECK(encode(spec, "image_dir: /v") == expected);
}

TEST_CASE("a present value overrides the default") {
  auto spec = object({{"vcpus", withDefault(attr("number", false, "vcpus"), literal("1"))}});
  CHECK(encode(spec, "vcpus: 4") == bytes({0x81}) + str("vcpus") + bytes({0x04}));
}

TEST_CASE("empty body: every declared attribute present, with its empty form") {
  auto inner = object({{"x", attr("string")}});
  auto spec = object({
      {"a", attr("string")},
      {"b", block(inner)},
      {"c", blockAttrs("string")},
      {"d", blockList(inner)},
      {"e", blockMap(inner, {"name"})},
  });
  std::string expected = bytes({0x85}) + str("a") + bytes({0xc0}) + str("b") + bytes({0xc0}) +
                         str("c") + bytes({0xc0}) + str("d") + bytes({0x90}) + str("e") +
                         bytes({0x80});
  CHECK(encode(spec, "{}") == expected);
  CHECK(encodeWithSpec(spec, YAML::Node()).value() == expected);
}

TEST_CASE("integers use the smallest msgpack width, like go-cty with compact ints") {
  CHECK(numberAttr("0") == bytes({0x00}));
  CHECK(numberAttr("127") == bytes({0x7f}));
  CHECK(numberAttr("128") == bytes({0xcc, 0x80}));
  CHECK(numberAttr("255") == bytes({0xcc, 0xff}));
  CHECK(numberAttr("256") == bytes({0xcd, 0x01, 0x00}));
  CHECK(numberAttr("65536") == bytes({0xce, 0x00, 0x01, 0x00, 0x00}));
  CHECK(numberAttr("4294967296") == bytes({0xcf, 0, 0, 0, 1, 0, 0, 0, 0}));
  CHECK(numberAttr("-1") == bytes({0xff}));
  CHECK(numberAttr("-32") == bytes({0xe0}));
  CHECK(numberAttr("-33") == bytes({0xd0, 0xdf}));
  CHECK(numberAttr("-129") == bytes({0xd1, 0xff, 0x7f}));
  CHECK(numberAttr("1e3") == bytes({0xcd, 0x03, 0xe8}));
  CHECK(numberAttr("5.0") == bytes({0x05}));
}

TEST_CASE("non-integral numbers: float64 when exact, decimal string otherwise") {
  CHECK(numberAttr("1.5") == bytes({0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}));
  CHECK(numberAttr("-0.25") == bytes({0xcb, 0xbf, 0xd0, 0, 0, 0, 0, 0, 0}));
  // 0.1 is not exactly a float64: go-cty falls back to the decimal text.
  CHECK(numberAttr("0.1") == str("0.1"));
  // Larger than int64 and not an exact float64.
  CHECK(numberAttr("9223372036854775809") == str("9223372036854775809"));
}

TEST_CASE("HCL conversions: quoted numbers and bools become typed values") {
  CHECK(numberAttr("\"5\"") == bytes({0x05}));
  auto spec = object({{"b", attr("bool")}, {"s", attr("string")}});
  CHECK(encode(spec, "b: \"true\"\ns: 42") ==
        bytes({0x82}) + str("b") + bytes({0xc3}) + str("s") + str("42"));
}

TEST_CASE("map keys are sorted byte-wise") {
  auto spec = object({{"m", attr("map(number)")}});
  std::string got = encode(spec, "m: { b: 1, a: 2, B: 3, _: 4 }");
  std::string expected = bytes({0x81}) + str("m") + bytes({0x84}) + str("B") + bytes({3}) +
                         str("_") + bytes({4}) + str("a") + bytes({2}) + str("b") + bytes({1});
  CHECK(got == expected);
}

TEST_CASE("lists, block lists and block maps") {
  auto port = object({{"port", attr("number")}});
  auto spec = object({{"tags", attr("list(string)")},
                      {"rule", blockList(port)},
                      {"vol", blockMap(object({{"ro", attr("bool")}}), {"name"})}});
  std::string got = encode(spec,
                           "tags: [x, y]\n"
                           "rule: [{port: 80}, {port: 443}]\n"
                           "vol: { data: { ro: true } }\n");
  std::string expected = bytes({0x83}) + str("rule") + bytes({0x92, 0x81}) + str("port") +
                         bytes({0x50, 0x81}) + str("port") + bytes({0xcd, 0x01, 0xbb}) +
                         str("tags") + bytes({0x92}) + str("x") + str("y") + str("vol") +
                         bytes({0x81}) + str("data") + bytes({0x81}) + str("ro") + bytes({0xc3});
  CHECK(got == expected);
}

TEST_CASE("strings of 32..255 bytes use str8") {
  std::string s(40, 'k');
  auto spec = object({{"s", attr("string")}});
  CHECK(encode(spec, "s: " + s) == bytes({0x81}) + str("s") + bytes({0xd9, 40}) + s);
}

TEST_CASE("any attributes keep the YAML shape") {
  auto spec = object({{"v", attr("any")}});
  CHECK(encode(spec, "v: [1, \"2\", true, {k: null}]") ==
        bytes({0x81}) + str("v") + bytes({0x94, 0x01}) + str("2") + bytes({0xc3, 0x81}) + str("k") +
            bytes({0xc0}));
}

TEST_CASE("literal defaults: strings, bools, objects") {
  CHECK(evalHclLiteral("\"5m\"").value().toMsgpack() == str("5m"));
  CHECK(evalHclLiteral("true").value().toMsgpack() == bytes({0xc3}));
  CHECK(evalHclLiteral("{ enabled = true, idle = \"10s\" }").value().toMsgpack() ==
        bytes({0x82}) + str("enabled") + bytes({0xc3}) + str("idle") + str("10s"));
  CHECK(evalHclLiteral("[1, 2.5]").value().toMsgpack() ==
        bytes({0x92, 0x01, 0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0}));
  CHECK_FALSE(evalHclLiteral("upper(\"x\")").ok());
}

TEST_CASE("rejections name the offending key like the client") {
  auto spec = object({{"kernel", attr("string", true)},
                      {"memory", attr("number")},
                      {"sz", block(object({{"enabled", attr("bool")}}))}});
  std::string unknown = encodeError(spec, "kernel: /k\nkernal_args: x");
  CHECK(unknown.find("Unsupported argument") != std::string::npos);
  CHECK(unknown.find("kernal_args") != std::string::npos);

  std::string missing = encodeError(spec, "memory: 5");
  CHECK(missing.find("Missing required argument") != std::string::npos);
  CHECK(missing.find("kernel") != std::string::npos);

  std::string wrongType = encodeError(spec, "kernel: /k\nmemory: lots");
  CHECK(wrongType.find("Incorrect attribute value type") != std::string::npos);
  CHECK(wrongType.find("memory") != std::string::npos);

  std::string nested = encodeError(spec, "kernel: /k\nsz: { enabled: true, idle: 5 }");
  CHECK(nested.find("idle") != std::string::npos);

  std::string notBool = encodeError(spec, "kernel: /k\nsz: { enabled: maybe }");
  CHECK(notBool.find("sz.enabled") != std::string::npos);
}

TEST_CASE("required blocks and minimum block counts") {
  auto inner = object({{"x", attr("string")}});
  CHECK(encodeError(object({{"b", block(inner, true)}}), "{}").find("Missing b block") !=
        std::string::npos);
  CHECK(encodeError(object({{"l", blockList(inner, 1)}}), "{}").find("Insufficient l blocks") !=
        std::string::npos);
}

TEST_CASE("raw mode encodes YAML as-is without a schema") {
  auto r = encodeRaw(YAML::Load("{b: 1, a: x, c: \"7\", d: [true]}"));
  REQUIRE(r.ok());
  CHECK(*r == bytes({0x84}) + str("a") + str("x") + str("b") + bytes({0x01}) + str("c") + str("7") +
                  str("d") + bytes({0x91, 0xc3}));
}
