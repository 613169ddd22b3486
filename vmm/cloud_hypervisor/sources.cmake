# Cloud Hypervisor backend and Kata configuration reader, compiled into s2z_vmm.
# Included by vmm/CMakeLists.txt (include(cloud_hypervisor/sources.cmake OPTIONAL)),
# which adds S2Z_VMM_CH_SOURCES to the library's sources and links S2Z_VMM_CH_LIBS.
set(_s2z_ch_dir ${CMAKE_CURRENT_LIST_DIR})
list(APPEND S2Z_VMM_CH_SOURCES
  ${_s2z_ch_dir}/ch_version.cpp
  ${_s2z_ch_dir}/ch_probe.cpp
  ${_s2z_ch_dir}/ch_http.cpp
  ${_s2z_ch_dir}/ch_json.cpp
  ${_s2z_ch_dir}/ch_api_client.cpp
  ${_s2z_ch_dir}/ch_snapshot_dir.cpp
  ${_s2z_ch_dir}/ch_backend.cpp
)
list(APPEND S2Z_VMM_CH_LIBS nlohmann_json::nlohmann_json spdlog::spdlog)
