# Network part of the agent (taps, addresses, rtnetlink plumbing, health
# responder). Included by agent/CMakeLists.txt, which adds these sources to
# s2z_agent.
set(S2Z_AGENT_NET_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/tap_device.cpp
  ${CMAKE_CURRENT_LIST_DIR}/address_pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/rtnetlink.cpp
  ${CMAKE_CURRENT_LIST_DIR}/host_network.cpp
  ${CMAKE_CURRENT_LIST_DIR}/health_responder.cpp
  # Nomad group networks: the tap in the alloc's netns, TC redirects to eth0
  ${CMAKE_CURRENT_LIST_DIR}/netns.cpp
  ${CMAKE_CURRENT_LIST_DIR}/netlink_request.cpp
  ${CMAKE_CURRENT_LIST_DIR}/link_query.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tc_redirect.cpp
  ${CMAKE_CURRENT_LIST_DIR}/group_network_backend.cpp
)
