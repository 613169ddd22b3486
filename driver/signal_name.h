// Signal names as Nomad sends them ("SIGHUP", "SIGTERM") to numbers.
#pragma once

#include <optional>
#include <string_view>

namespace s2z::driver {

// "SIGHUP" or "HUP" (case-insensitive) -> SIGHUP; nullopt for an unknown name.
std::optional<int> signalNumber(std::string_view name);

}  // namespace s2z::driver
