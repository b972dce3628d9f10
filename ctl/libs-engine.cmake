# Libraries tierswapctl check/plan use (included by ctl/CMakeLists.txt).
target_link_libraries(tierswapctl PRIVATE tierswap_engine)
