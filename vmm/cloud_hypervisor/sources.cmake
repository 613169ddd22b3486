# Cloud Hypervisor backend and Kata configuration reader (vmm/kata), compiled into s2z_vmm.
# Included by vmm/CMakeLists.txt (include(cloud_hypervisor/sources.cmake OPTIONAL)),
# which adds S2Z_VMM_CH_SOURCES to the library's sources and links S2Z_VMM_CH_LIBS.
list(APPEND S2Z_VMM_CH_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/ch_version.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ch_probe.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ch_http.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ch_json.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ch_api_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ch_snapshot_dir.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ch_backend.cpp
)
list(APPEND S2Z_VMM_CH_LIBS nlohmann_json::nlohmann_json spdlog::spdlog)
include(${CMAKE_CURRENT_LIST_DIR}/../kata/sources.cmake)
