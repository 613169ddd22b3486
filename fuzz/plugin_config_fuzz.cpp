// Plugin config as Nomad sends it (msgpack from go-cty, protocol doc §3.3):
// driver/plugin_config.h decodePluginConfig over arbitrary bytes. Properties: no
// crash, leak, UB or huge allocation (the sanitizers and libFuzzer's
// -malloc_limit_mb), and every refusal is INVALID_ARGUMENT with a message.
#include "driver/plugin_config.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = s2z::driver::decodePluginConfig(s2z::fuzz::bytesOf(data, size));
  s2z::fuzz::expectOkOrInvalid(config, "plugin config");
  return 0;
}
