# Tests of the agent's network part (taps, addresses, netlink plumbing, health
# responder). Included from tests/agent/CMakeLists.txt.
#   agent_net_unit_tests         label unit: address pool on temp files, no root
#   agent_net_integration_tests  label integration: root, each case in its own netns
add_executable(agent_net_unit_tests
  ${CMAKE_CURRENT_LIST_DIR}/net_main_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/net_address_pool_test.cpp
)
target_link_libraries(agent_net_unit_tests PRIVATE s2z_agent doctest::doctest)
add_test(NAME agent_net_unit_tests COMMAND agent_net_unit_tests)
set_tests_properties(agent_net_unit_tests PROPERTIES LABELS unit TIMEOUT 60)

add_executable(agent_net_integration_tests
  ${CMAKE_CURRENT_LIST_DIR}/net_main_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/net_tap_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/net_host_network_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/net_health_responder_test.cpp
)
target_link_libraries(agent_net_integration_tests PRIVATE s2z_agent doctest::doctest
  nlohmann_json::nlohmann_json)
add_test(NAME agent_net_integration_tests COMMAND agent_net_integration_tests)
set_tests_properties(agent_net_integration_tests PROPERTIES LABELS integration TIMEOUT 120)
