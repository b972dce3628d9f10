# tierswapctl's D-Bus side (status, watch, demote/promote, reload, doctor,
# completion): helpers that are not commands, and the libraries they use.
target_sources(tierswapctl PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/status_view.cpp
  ${CMAKE_CURRENT_LIST_DIR}/bus_errors.cpp
  ${CMAKE_CURRENT_LIST_DIR}/doctor_checks.cpp)
target_link_libraries(tierswapctl PRIVATE tierswap_dbus_client tierswap_hostfs tierswap_policy tierswap_swap)
# doctor: the policy engine's GPU (NVML) and power (UPower, sysfs) readers.
target_link_libraries(tierswapctl PRIVATE tierswap_gpu_signals tierswap_power tierswap_upower tierswap_logind)
