# Kata configuration reader, compiled into s2z_vmm via cloud_hypervisor/sources.cmake.
find_package(tomlplusplus REQUIRED)  # Debian libtomlplusplus-dev (scripts/install-deps.sh)
list(APPEND S2Z_VMM_CH_SOURCES ${CMAKE_CURRENT_LIST_DIR}/kata_config.cpp)
list(APPEND S2Z_VMM_CH_LIBS tomlplusplus::tomlplusplus)
